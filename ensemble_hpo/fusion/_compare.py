"""Cross-validated comparison of fusion methods on the same ensemble members."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone

from ..metrics import PredictionScorer, get_prediction_scorer
from ._averaging import HardVoting, SoftVoting, WeightedAverage
from ._base import (
    CLASSIFICATION,
    BaseFuser,
    check_features,
    check_predictions,
    check_sample_weight,
    check_target,
    check_weights,
    infer_task,
)
from ._cv import make_folds
from ._optimized import OptimizedWeights, loss_for_scoring
from ._stacking import Stacking

__all__ = ["compare_fusers", "default_fusers"]


def default_fusers(task: str, random_state: int | None = None,
                   scoring: Any = None) -> dict[str, BaseFuser]:
    """Every fuser that applies to ``task``; the learned ones fit and report in ``scoring``."""
    fusers: list[BaseFuser] = [WeightedAverage(), SoftVoting()]
    if task == CLASSIFICATION:
        fusers.append(HardVoting())
    fusers += [OptimizedWeights(loss=loss_for_scoring(scoring)),
               Stacking(scoring=scoring, random_state=random_state)]
    return {type(fuser).__name__: fuser for fuser in fusers}


def _named(fusers: Any) -> dict[str, BaseFuser]:
    """Name fusers given as a mapping or a sequence (class name, numbered if repeated)."""
    if isinstance(fusers, Mapping):
        named = {str(name): fuser for name, fuser in fusers.items()}
    elif isinstance(fusers, Sequence) and not isinstance(fusers, str):
        named = {}
        for fuser in fusers:
            base = type(fuser).__name__
            name, n = base, 1
            while name in named:
                n += 1
                name = f"{base}#{n}"
            named[name] = fuser
    else:
        named = {}
    if not named or not all(isinstance(f, BaseFuser) for f in named.values()):
        raise ValueError(
            "The 'fusers' parameter must be None or a non-empty list/dict of BaseFuser "
            f"instances. Got {fusers!r} instead."
        )
    return named


def _cross_validate(
    fuser: BaseFuser,
    folds: list[tuple[np.ndarray, np.ndarray]],
    scorer: PredictionScorer,
    data: dict[str, Any],
) -> dict[str, float]:
    """Fit a clone of ``fuser`` on each training fold and score it on the held-out fold."""
    predictions, y, X, sample_weight = (data[k] for k in ("predictions", "y", "X", "sample_weight"))
    scores, seconds = [], []
    for train, test in folds:
        start = time.perf_counter()
        fitted = clone(fuser).fit(
            predictions[:, train],
            y[train],
            weights=data["weights"],
            X=None if X is None else X[train],
            sample_weight=None if sample_weight is None else sample_weight[train],
        )
        seconds.append(time.perf_counter() - start)
        fused = fitted.combine(predictions[:, test], None if X is None else X[test])
        weight = None if sample_weight is None else sample_weight[test]
        scores.append(scorer(y[test], fused, sample_weight=weight))
    return {"cv_score": float(np.mean(scores)), "cv_std": float(np.std(scores)),
            "fit_seconds": float(np.mean(seconds))}


def compare_fusers(
    predictions: Any,
    y: Any,
    fusers: Sequence[BaseFuser] | Mapping[str, BaseFuser] | None = None,
    *,
    weights: Any = None,
    X: Any = None,
    scoring: str | Callable | PredictionScorer | None = None,
    cv: Any = 5,
    random_state: int | None = None,
    sample_weight: Any = None,
) -> pd.DataFrame:
    """Cross-validated score of several fusion methods on the same members.

    The rows of the out-of-fold matrix are split into folds; on each, a clone
    of every fuser is fitted on the training rows and its :meth:`combine` is
    scored on the held-out rows, so fusers that learn (optimised weights,
    stacking) are judged on data they did not see. All fusers share the folds.

    Parameters
    ----------
    predictions : array-like of shape (n_members, n_samples[, n_classes])
        Members' out-of-fold predictions.
    y : array-like of shape (n_samples,)
        Target (integer labels ``0..n_classes-1`` for classification).
    fusers : list or dict of BaseFuser, default=None
        Fusers to compare (a dict gives their names); None compares every
        fuser that applies to the task with default parameters.
    weights : array-like of shape (n_members,), default=None
        Selection weights given to every fuser.
    X : array-like of shape (n_samples, n_features), default=None
        Original features (for stacking with passthrough).
    scoring : str, callable, PredictionScorer or None, default=None
        Greater-is-better scorer; None is the task default.
    cv : int or splitter, default=5
        Outer folds; an int gives shuffled (stratified) K-fold.
    random_state : int or None, default=None
        Seed of the fold shuffling (also given to the default Stacking).
    sample_weight : array-like of shape (n_samples,), default=None
        Per-sample weights for fitting and scoring.

    Returns
    -------
    table : pandas.DataFrame
        One row per fuser, best first, with columns ``fusion``, ``cv_score``
        (mean over folds), ``cv_std`` and ``fit_seconds`` (mean per fold).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> y = rng.normal(size=80)
    >>> P = y + rng.normal(0, [[0.5], [1.0], [2.0]], size=(3, 80))
    >>> table = compare_fusers(P, y, random_state=0)
    >>> list(table.columns)
    ['fusion', 'cv_score', 'cv_std', 'fit_seconds']
    >>> len(table)
    4
    """
    predictions = check_predictions(predictions)
    task = infer_task(predictions)
    n_classes = predictions.shape[2] if task == CLASSIFICATION else None
    y = check_target(y, predictions.shape[1], n_classes)
    named = default_fusers(task, random_state) if fusers is None else _named(fusers)
    data = {
        "predictions": predictions,
        "y": y,
        "weights": check_weights(weights, predictions.shape[0]),
        "X": check_features(X, predictions.shape[1]),
        "sample_weight": check_sample_weight(sample_weight, predictions.shape[1]),
    }
    scorer = get_prediction_scorer(scoring, task)
    folds = make_folds(cv, y, task, random_state)
    rows = [
        {"fusion": name, **_cross_validate(fuser, folds, scorer, data)}
        for name, fuser in named.items()
    ]
    table = pd.DataFrame(rows, columns=["fusion", "cv_score", "cv_std", "fit_seconds"])
    return table.sort_values("cv_score", ascending=False, kind="stable").reset_index(drop=True)
