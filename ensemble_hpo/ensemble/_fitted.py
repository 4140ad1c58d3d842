"""The fitted ensemble: selected members with their models, plus the fuser that combines them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ensemble_hpo._outputs import model_output

__all__ = ["Ensemble", "Member"]


@dataclass
class Member:
    """One selected candidate: its models (fold models averaged, or one refit model)."""

    number: int
    family: str
    params: dict[str, Any]
    weight: float
    models: list[Any] = field(repr=False)
    cv_score: float | None = None

    def predict(self, X: Any, task: str, n_classes: int | None) -> np.ndarray:
        """Average of the member's models: probabilities (classification) or values."""
        outputs = [model_output(m, X, task, n_classes) for m in self.models]
        return np.mean(outputs, axis=0)


@dataclass
class Ensemble:
    """Selected members and the fitted fuser that combines their predictions.

    ``predict_members`` returns the stacked member outputs, shaped
    (n_members, n_samples[, n_classes]) like the selection stage's input.
    """

    members: list[Member]
    fuser: Any
    task: str
    n_classes: int | None = None
    # Fitted transformer giving the fuser its view of X (stacking with passthrough only).
    feature_transformer: Any = None

    @property
    def weights(self) -> np.ndarray:
        return np.array([m.weight for m in self.members])

    def predict_members(self, X: Any) -> np.ndarray:
        return np.stack([m.predict(X, self.task, self.n_classes) for m in self.members])

    def fuser_features(self, X: Any) -> np.ndarray | None:
        if self.feature_transformer is None:
            return None
        return _dense(self.feature_transformer.transform(X))

    def combine(self, X: Any) -> np.ndarray:
        return self.fuser.combine(self.predict_members(X), X=self.fuser_features(X))

    def summary(self) -> pd.DataFrame:
        return pd.DataFrame(
            [{"number": m.number, "family": m.family, "weight": m.weight, "cv_score": m.cv_score,
              "n_models": len(m.models), "params": m.params} for m in self.members]
        )

    def __len__(self) -> int:
        return len(self.members)


def _dense(X: Any) -> np.ndarray:
    return np.asarray(X.toarray() if hasattr(X, "toarray") else X, dtype=np.float64)


def members_from_weights(
    numbers: Sequence[int], weights: np.ndarray, population: Any, *, scores: dict[int, float]
) -> list[Member]:
    """Members for every candidate with non-zero weight, heaviest first."""
    chosen = [(n, float(w)) for n, w in zip(numbers, weights, strict=True) if w > 0]
    chosen.sort(key=lambda item: (-item[1], item[0]))
    by_number = {c.number: c for c in population.candidates}
    return [
        Member(number=n, family=by_number[n].family, params=by_number[n].params, weight=w,
               models=population.store.load_models(n), cv_score=scores.get(n))
        for n, w in chosen
    ]
