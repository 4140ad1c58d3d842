"""Group-aware folds over rows of stored predictions, shared by the stages that cross-validate.

When ``fit`` is given ``groups``, every internal split (stacking's meta-learner folds,
``greedy_cv``'s selection folds) must keep a group on one side, as the search's outer
folds do; otherwise rows of one group inform each other's held-out scores.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np
from sklearn.model_selection import GroupKFold, StratifiedGroupKFold

__all__ = ["check_groups", "group_folds", "groups_kwargs"]


def check_groups(groups: Any, n_samples: int) -> np.ndarray | None:
    """``groups`` as a 1-D array of ``n_samples`` labels, or None."""
    if groups is None:
        return None
    groups = np.asarray(groups)
    if groups.ndim != 1 or groups.shape[0] != n_samples:
        raise ValueError(f"The 'groups' parameter must have shape ({n_samples},). "
                         f"Got shape {groups.shape} instead.")
    return groups


def groups_kwargs(stage: Any, groups: np.ndarray | None) -> dict[str, Any]:
    """``groups`` as a keyword for ``stage.fit``, only when there are groups and it takes them.

    A user selector or fuser whose ``fit`` has no ``groups`` keeps working; it has no inner
    split for groups to reach.
    """
    if groups is None or "groups" not in inspect.signature(stage.fit).parameters:
        return {}
    return {"groups": groups}


def group_folds(n_splits: int, y: np.ndarray, groups: np.ndarray, *, classification: bool,
                random_state: int | None) -> list[tuple[np.ndarray, np.ndarray]]:
    """K-fold (stratified for classification) that never splits a group; K <= number of groups."""
    n_groups = len(np.unique(groups))
    if n_groups < 2:
        raise ValueError("The 'groups' parameter must hold at least 2 groups to cross-validate. "
                         f"Got {n_groups} instead.")
    k = min(int(n_splits), n_groups)
    splitter = (StratifiedGroupKFold(k, shuffle=True, random_state=random_state) if classification
                else GroupKFold(k))
    return list(splitter.split(np.zeros((len(y), 1)), y, groups))
