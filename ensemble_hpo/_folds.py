"""The one fold maker, shared by the search's outer folds and every stage that cross-validates.

``fit``'s outer folds, stacking's meta-learner folds, ``greedy_cv``'s selection folds, the
fusion comparison and the SVM's calibration folds all come from :func:`make_folds`, so they
follow one rule: an int is a shuffled K-fold (stratified for classification), a group K-fold
when there are ``groups`` (a group never sits on both sides, otherwise rows of one group
inform each other's held-out scores), and a splitter object gets the groups too. Every
validation part together must cover each row exactly once, because out-of-fold predictions
are kept per row. Only the search's outer folds may repeat (``repeated=True``, e.g.
``RepeatedStratifiedKFold``): every row is then covered the same number of times, its
out-of-fold prediction is the average over the repeats, and the stages that cross-validate
the selected ensemble use the first repeat (:func:`first_partition`).
"""

from __future__ import annotations

import inspect
import numbers
import warnings
from collections.abc import Iterable
from typing import Any

import numpy as np
from sklearn.model_selection import GroupKFold, KFold, StratifiedGroupKFold, StratifiedKFold

from ensemble_hpo._checks import CLASSIFICATION

__all__ = [
    "check_cv",
    "check_fold_weights",
    "check_groups",
    "check_stage_folds",
    "first_partition",
    "k_fold_splitter",
    "groups_kwargs",
    "make_folds",
    "n_splits_of",
    "take_rows",
]

Folds = list[tuple[np.ndarray, np.ndarray]]


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


def check_cv(cv: Any) -> None:
    """Reject a bad ``cv`` before any data is looked at."""
    # A str has a split method too: cv="a" failed in split() (audit).
    valid = not isinstance(cv, (str, bytes)) and (
        (isinstance(cv, numbers.Integral) and not isinstance(cv, bool) and cv >= 2)
        or hasattr(cv, "split") or isinstance(cv, Iterable))
    if not valid:
        raise ValueError(
            f"The 'cv' parameter must be an int >= 2 or a CV splitter. Got {cv!r} instead.")


def check_fold_weights(splits: Folds, sample_weight: np.ndarray | None) -> None:
    """Refuse folds whose training or held-out rows all weigh zero: every candidate failed on
    them after training ("Weights sum to zero"; audit)."""
    if sample_weight is None:
        return
    empty = [i for i, (train, valid) in enumerate(splits)
             if not sample_weight[train].sum() > 0 or not sample_weight[valid].sum() > 0]
    if empty:
        raise ValueError(
            "The 'sample_weight' parameter must give the training and the held-out rows of every "
            f"cross-validation fold a positive total. Got folds {empty} with a side whose rows "
            "all weigh 0 instead (a zero-weight group kept whole?).")


def n_splits_of(cv: Any) -> int | None:
    """Number of folds of one repeat of ``cv``, when it can be known before seeing the data.

    A repeated splitter (``RepeatedKFold``: ``n_repeats`` shuffles of ``n_splits`` folds)
    counts the folds of one shuffle: each of them must hold every class.
    """
    if isinstance(cv, numbers.Integral):
        return int(cv)
    if isinstance(cv, (list, tuple)):
        return len(cv)
    get = getattr(cv, "get_n_splits", None)
    try:
        n_splits = int(get()) if get else None
    except (TypeError, ValueError):
        # Known from the groups only (LeaveOneGroupOut: "groups should not be None"; fit
        # failed at once with the group splitter the README recommends; audit).
        return None
    repeats = getattr(cv, "n_repeats", 1)
    return n_splits // repeats if n_splits is not None and isinstance(repeats, int) else n_splits


def make_folds(cv: Any, y: np.ndarray, *, task: str, groups: Any = None,
               random_state: int | None = None, X: Any = None, repeated: bool = False) -> Folds:
    """``(train, valid)`` index pairs whose validation parts partition the rows.

    Parameters
    ----------
    cv : int >= 2, CV splitter or iterable of (train, valid) pairs
    y : ndarray of shape (n_samples,)
        Encoded target (stratifies classification folds).
    task : {"classification", "regression"}
    groups : array-like of shape (n_samples,), default=None
        With an int ``cv``, a group K-fold with at most one fold per group; a splitter
        object receives them in ``split``.
    random_state : int, default=None
        Shuffling seed of an int ``cv``.
    X : array-like, default=None
        Passed to a splitter object that looks at the features.
    repeated : bool, default=False
        Accept validation parts that cover every row the same number of times (several
        partitions, as a repeated K-fold makes) instead of exactly once.
    """
    check_cv(cv)
    n_rows = len(y)
    if isinstance(cv, numbers.Integral):
        splitter: Any = k_fold_splitter(int(cv), y, task, groups, random_state)
    elif hasattr(cv, "split"):
        splitter = cv
    else:
        return _groups_apart(_partitioning(list(cv), n_rows, cv, repeated), groups, cv)
    features = np.zeros((n_rows, 1)) if X is None else X
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        folds = list(splitter.split(features, y, groups))
    for warning in caught:
        message = str(warning.message)
        if "groups parameter is ignored" in message:
            # Whether its folds happen to keep groups apart depends on the rows: refuse always.
            _mixed_groups(splitter, "ignores 'groups'")
        # A class with fewer rows than folds is reported once, by fit's data checks; the
        # stratified split still spreads the rows it has.
        if "least populated class" not in message:
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    return _groups_apart(_partitioning(folds, n_rows, splitter, repeated), groups, splitter)


def check_stage_folds(stage: Any, y: np.ndarray, *, task: str, groups: np.ndarray | None,
                      splits: Folds | None = None) -> None:
    """Make a selector's or fuser's own splitter folds once on ``y``, so that one that would
    mix ``groups`` fails before the search rather than after it (an int ``cv`` always
    makes group folds).

    A stage that splits by group is also fitted on each of ``splits``' training parts for
    the nested estimate, where it needs 2 groups: ``fusion="stacking"`` with 2 groups and
    ``cv=2`` failed after the whole search ("at least 2 groups ... Got 1").
    """
    cv = stage.get_params().get("cv") if hasattr(stage, "get_params") else None
    if groups is None or cv is None:
        return
    _check_groups_per_training_part(stage, groups, splits)
    if isinstance(cv, numbers.Integral):
        return
    try:
        make_folds(cv, y, task=task, groups=groups)
    except ValueError as exc:
        raise ValueError(f"{type(stage).__name__}: {exc}") from None


def _check_groups_per_training_part(stage: Any, groups: np.ndarray, splits: Folds | None) -> None:
    if splits is None or not groups_kwargs(stage, groups):
        return
    fewest = min(len(np.unique(groups[train])) for train, _ in splits)
    if fewest < 2:
        raise ValueError(
            f"{type(stage).__name__} splits by group inside each fold of the search (for the "
            "nested estimate), so every fold's training rows must hold at least 2 groups. Got "
            f"{fewest} in some fold instead. Give more groups (3 or more), or choose a selection "
            "and fusion without their own folds.")


def _groups_apart(folds: Folds, groups: Any, source: Any) -> Folds:
    """``folds``, after checking no group has rows on both sides of a fold.

    A group on both sides lets its rows inform each other's held-out predictions, so every
    out-of-fold score would be optimistic: silently wrong, hence an error. One rule for
    every split (the search's, the selectors' and stacking's inner folds), whatever made it.
    """
    if groups is None:
        return folds
    groups = np.asarray(groups)
    for i, (train, valid) in enumerate(folds):
        shared = np.intersect1d(groups[train], groups[valid])
        if shared.size:
            _mixed_groups(source, f"has {shared.size} group(s) on both sides of fold {i} "
                                  f"(e.g. {shared.tolist()[0]!r})")
    return folds


def _mixed_groups(source: Any, what: str) -> None:
    raise ValueError(
        "The 'cv' parameter must keep each group on one side of every fold when 'groups' is "
        f"given. Got {type(source).__name__}, which {what}. Use a group splitter (GroupKFold, "
        "StratifiedGroupKFold, LeaveOneGroupOut) or an int cv, or pass no groups.")


def k_fold_splitter(k: int, y: np.ndarray, task: str, groups: Any, random_state: int | None) -> Any:
    """The splitter an int ``cv`` means: shuffled K folds, stratified for classification,
    by group when ``groups`` are given."""
    classification = task == CLASSIFICATION
    if groups is None:
        kind = StratifiedKFold if classification else KFold
        return kind(k, shuffle=True, random_state=random_state)
    n_groups = len(np.unique(np.asarray(groups)))
    if n_groups < 2:
        raise ValueError("The 'groups' parameter must hold at least 2 groups to cross-validate. "
                         f"Got {n_groups} instead.")
    k = min(k, n_groups)
    return (StratifiedGroupKFold(k, shuffle=True, random_state=random_state) if classification
            else GroupKFold(k))


def _partitioning(folds: list[tuple[Any, Any]], n_rows: int, source: Any,
                  repeated: bool = False) -> Folds:
    folds = [(np.asarray(train), np.asarray(valid)) for train, valid in folds]
    counts = np.bincount(np.concatenate([valid for _, valid in folds]).astype(np.intp),
                         minlength=n_rows) if folds else np.zeros(n_rows, dtype=int)
    times = int(counts[0]) if repeated and n_rows else 1
    if times < 1 or not np.all(counts == times) or (repeated and first_partition(folds, n_rows) is None):
        wanted = ("the same number of times (like KFold or RepeatedKFold)" if repeated
                  else "exactly once (like KFold)")
        raise ValueError(
            f"The 'cv' parameter must produce folds whose validation parts cover every row {wanted}, "
            "because out-of-fold predictions are kept per row. Got "
            f"{type(source).__name__}, which leaves {(counts == 0).sum()} rows uncovered and "
            f"covers the others between {counts.min(initial=0, where=counts > 0)} and "
            f"{counts.max(initial=0)} times.")
    return folds


def first_partition(folds: Folds, n_rows: int) -> Folds | None:
    """The leading folds whose validation parts cover every row exactly once (the first repeat
    of a repeated K-fold; all of them for a plain K-fold), or None when no prefix does."""
    seen: set[int] = set()
    for end, (_, valid) in enumerate(folds, start=1):
        if seen.intersection(valid.tolist()):
            return None
        seen.update(valid.tolist())
        if len(seen) == n_rows:
            return folds[:end]
    return None


def take_rows(X: Any, idx: np.ndarray) -> Any:
    """Rows ``idx`` of a DataFrame, array or sparse matrix (by position)."""
    return X.iloc[idx] if hasattr(X, "iloc") else X[idx]
