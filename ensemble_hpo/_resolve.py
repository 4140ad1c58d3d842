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


def _with_run_defaults(cls: type, options: dict[str, Any], *, scoring: Any,
                       random_state: int | None) -> Any:
    """``cls(**options)``, with the run's metric and seed wherever the class takes them.

    Selectors and fusers that learn optimise the user's ``scoring`` (OptimizedWeights
    through the equivalent ``loss``), and seeded ones follow ``random_state``; explicit
    options win.
    """
    from ensemble_hpo.fusion._optimized import loss_for_scoring

    params = cls().get_params()
    defaults = {"scoring": scoring, "random_state": random_state, "loss": loss_for_scoring(scoring)}
    kwargs = {k: v for k, v in defaults.items() if k in params}
    return cls(**{**kwargs, **options})


def _resolve_named(value: Any, registry: dict[str, type], what: str, noun: str, method: str, *,
                   scoring: Any, random_state: int | None, options: dict[str, Any]) -> Any:
    if isinstance(value, str):
        if value not in registry:
            raise ValueError(f"The '{what}' parameter must be one of {sorted(registry)} or a "
                             f"{noun} object. Got {value!r} instead.")
        return _with_run_defaults(registry[value], options, scoring=scoring,
                                  random_state=random_state)
    if hasattr(value, method):
        return clone(value)
    raise ValueError(f"The '{what}' parameter must be a name or a {noun} object with a {method} "
                     f"method. Got {value!r} instead.")


def make_selector(selection: Any, random_state: int | None, scoring: Any = None,
                  options: dict[str, Any] | None = None) -> Any:
    """A selector by name (:data:`ensemble_hpo.selection.SELECTORS`), optimising ``scoring``."""
    from ensemble_hpo.selection import SELECTORS

    return _resolve_named(selection, SELECTORS, "selection", "selector", "fit", scoring=scoring,
                          random_state=random_state, options=options or {})


def make_fuser(fusion: Any, random_state: int | None, scoring: Any = None,
               options: dict[str, Any] | None = None) -> Any:
    """A fuser by name (:data:`ensemble_hpo.fusion.FUSERS`); learned ones fit in ``scoring``."""
    from ensemble_hpo.fusion import FUSERS

    return _resolve_named(fusion, FUSERS, "fusion", "fuser", "combine", scoring=scoring,
                          random_state=random_state, options=options or {})


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
