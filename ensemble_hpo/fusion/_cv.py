"""Cross-validation splits over the rows of an out-of-fold prediction matrix."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.model_selection import KFold, StratifiedKFold, check_cv

from .._folds import group_folds
from ._base import CLASSIFICATION, is_positive_int

__all__ = ["make_folds"]


def make_folds(
    cv: Any, y: np.ndarray, task: str, random_state: int | None, groups: np.ndarray | None = None
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Return ``(train, test)`` index pairs whose test parts partition the rows.

    An int gives shuffled (stratified for classification) K-fold; shuffling
    matters because OOF matrices are often ordered by the original data. With
    ``groups``, an int gives group K-fold, so no group is on both sides.
    """
    if groups is not None and is_positive_int(cv, minimum=2):
        return group_folds(int(cv), y, groups, classification=task == CLASSIFICATION,
                           random_state=random_state)
    if is_positive_int(cv, minimum=2):
        kind = StratifiedKFold if task == CLASSIFICATION else KFold
        splitter = kind(n_splits=int(cv), shuffle=True, random_state=random_state)
    elif isinstance(cv, (int, np.integer)) or cv is None:
        raise ValueError(
            f"The 'cv' parameter must be an int >= 2 or a splitter. Got {cv!r} instead."
        )
    else:
        splitter = check_cv(cv, y, classifier=task == CLASSIFICATION)
    folds = list(splitter.split(np.zeros((y.shape[0], 1)), y))
    counts = np.bincount(np.concatenate([test for _, test in folds]), minlength=y.shape[0])
    if not np.all(counts == 1):
        raise ValueError(
            "The 'cv' parameter must yield test folds that cover every sample exactly once. "
            f"Got {cv!r} instead."
        )
    return folds
