"""How a candidate becomes a fitted pipeline: the family's preprocessing, then its model."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.pipeline import Pipeline

__all__ = ["PipelineBuilder"]


class PipelineBuilder:
    """Builds ``Pipeline(prep → model)`` for a family, with the family's preprocessing kind.

    Parameters
    ----------
    column_kinds : the column facts of the training data (``InputInfo.column_kinds``)
    task : {"classification", "regression"}
    """

    def __init__(self, column_kinds: Any, task: str) -> None:
        self.column_kinds = column_kinds
        self.task = task

    def __call__(self, family: Any, params: dict[str, Any], seed: int | None) -> Pipeline:
        from ensemble_hpo._preprocessing import make_preprocessor

        model = family.build(self.task, params, random_state=seed)
        prep = make_preprocessor(family.preprocessing, self.column_kinds)
        return Pipeline([("prep", prep), ("model", model)])

    def fuser_transformer(self, fuser: Any, X: Any) -> Any:
        """Fitted preprocessing for a fuser that looks at the original features (passthrough)."""
        if not getattr(fuser, "passthrough", False):
            return None
        from ensemble_hpo._preprocessing import make_preprocessor

        return make_preprocessor("linear", self.column_kinds).fit(X)

    def linear_features(self, X: Any) -> np.ndarray:
        """X scaled and one-hot encoded as linear families see it (for hypergradient search)."""
        from ensemble_hpo._preprocessing import make_preprocessor

        out = make_preprocessor("linear", self.column_kinds).fit_transform(X)
        return np.asarray(out.toarray() if hasattr(out, "toarray") else out, dtype=np.float64)
