"""Turn the estimators' short-hand parameters (names, ints) into stage objects."""

from __future__ import annotations

import numbers
from collections.abc import Iterable
from typing import Any

import numpy as np
from sklearn.base import clone
from sklearn.model_selection import (
    GroupKFold,
    KFold,
    StratifiedGroupKFold,
    StratifiedKFold,
)

__all__ = ["make_fuser", "make_selector", "make_splits"]


def make_selector(selection: Any, random_state: int | None, scoring: Any = None) -> Any:
    """A selector by name, optimising the same ``scoring`` as the search."""
    from ensemble_hpo import selection as sel

    named = {
        "greedy": lambda: sel.GreedySelector(scoring=scoring, random_state=random_state),
        "caruana": lambda: sel.GreedySelector(scoring=scoring, random_state=random_state),
        "greedy_cv": lambda: sel.CrossValidatedSelector(scoring=scoring, random_state=random_state),
        "best": lambda: sel.BestSingleSelector(scoring=scoring),
    }
    if isinstance(selection, str):
        if selection not in named:
            raise ValueError(
                f"The 'selection' parameter must be one of {sorted(named)} or a selector object. "
                f"Got {selection!r} instead."
            )
        return named[selection]()
    if hasattr(selection, "fit"):
        return clone(selection)
    raise ValueError(
        "The 'selection' parameter must be a name or a selector with a fit method. "
        f"Got {selection!r} instead."
    )


def make_fuser(fusion: Any, random_state: int | None, scoring: Any = None) -> Any:
    """A fuser by name; the learned ones (optimised weights, stacking) fit in ``scoring``."""
    from ensemble_hpo import fusion as fus
    from ensemble_hpo.fusion._optimized import loss_for_scoring

    named = {
        "average": lambda: fus.WeightedAverage(),
        "weighted_average": lambda: fus.WeightedAverage(),
        "soft_voting": lambda: fus.SoftVoting(),
        "hard_voting": lambda: fus.HardVoting(),
        "optimized": lambda: fus.OptimizedWeights(loss=loss_for_scoring(scoring)),
        "stacking": lambda: fus.Stacking(scoring=scoring, random_state=random_state),
    }
    if isinstance(fusion, str):
        if fusion not in named:
            raise ValueError(
                f"The 'fusion' parameter must be one of {sorted(named)} or a fuser object. "
                f"Got {fusion!r} instead."
            )
        return named[fusion]()
    if hasattr(fusion, "combine"):
        return clone(fusion)
    raise ValueError(f"The 'fusion' parameter must be a name or a fuser object. Got {fusion!r} instead.")


def check_cv(cv: Any) -> None:
    """Reject a bad ``cv`` before any data is looked at."""
    valid = (isinstance(cv, numbers.Integral) and not isinstance(cv, bool) and cv >= 2) or hasattr(
        cv, "split") or (isinstance(cv, Iterable) and not isinstance(cv, (str, bytes)))
    if not valid:
        raise ValueError(
            f"The 'cv' parameter must be an int >= 2 or a CV splitter. Got {cv!r} instead."
        )


def _splitter(cv: Any, task: str, groups: Any, random_state: int | None) -> Any:
    check_cv(cv)
    if isinstance(cv, numbers.Integral):
        if groups is not None:
            return StratifiedGroupKFold(cv, shuffle=True, random_state=random_state) \
                if task == "classification" else GroupKFold(cv)
        if task == "classification":
            return StratifiedKFold(cv, shuffle=True, random_state=random_state)
        return KFold(cv, shuffle=True, random_state=random_state)
    if hasattr(cv, "split"):
        return cv
    if isinstance(cv, Iterable) and not isinstance(cv, (str, bytes)):
        return _PredefinedSplits(list(cv))
    raise ValueError(f"The 'cv' parameter must be an int >= 2 or a CV splitter. Got {cv!r} instead.")


class _PredefinedSplits:
    """An explicit list of (train, valid) index pairs, as scikit-learn's ``cv`` accepts."""

    def __init__(self, splits: list[tuple[Any, Any]]) -> None:
        self.splits = splits

    def split(self, X: Any = None, y: Any = None, groups: Any = None) -> Iterable[tuple[Any, Any]]:
        return iter(self.splits)

    def get_n_splits(self, X: Any = None, y: Any = None, groups: Any = None) -> int:
        return len(self.splits)


def n_splits_of(cv: Any) -> int | None:
    if isinstance(cv, numbers.Integral):
        return int(cv)
    if isinstance(cv, (list, tuple)):
        return len(cv)
    get = getattr(cv, "get_n_splits", None)
    try:
        return int(get()) if get else None
    except TypeError:
        return None


def make_splits(
    cv: Any, X: Any, y: np.ndarray, *, task: str, groups: Any = None, random_state: int | None = None
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Materialise the folds shared by every candidate; they must partition the rows."""
    splitter = _splitter(cv, task, groups, random_state)
    splits = [(np.asarray(tr), np.asarray(va)) for tr, va in splitter.split(X, y, groups)]
    counts = np.zeros(len(y), dtype=int)
    for _, valid in splits:
        counts[valid] += 1
    if not np.all(counts == 1):
        raise ValueError(
            "The 'cv' parameter must produce folds whose validation parts cover every row exactly "
            f"once (like KFold), because every candidate keeps out-of-fold predictions. Got "
            f"{type(splitter).__name__}, which leaves {(counts == 0).sum()} rows uncovered and "
            f"{(counts > 1).sum()} covered more than once."
        )
    return splits
