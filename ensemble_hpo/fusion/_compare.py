"""Cross-validated comparison of fusion methods on the same ensemble members."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from .._checks import CLASSIFICATION, check_predictions, check_sample_weight, task_of_predictions
from .._folds import check_groups, make_folds
from .._nested import nested_scores
from ..metrics import PredictionScorer, get_prediction_scorer
from ._averaging import HardVoting, SoftVoting, WeightedAverage
from ._base import BaseFuser, check_features, check_target, check_weights
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


class _GivenWeights:
    """A stand-in selector that keeps the caller's weights on every fold."""

    def __init__(self, weights: np.ndarray) -> None:
        self.weights = weights

    def fit(self, predictions: np.ndarray, y: np.ndarray, sample_weight: Any = None) -> _GivenWeights:
        self.weights_ = self.weights
        return self

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {"weights": self.weights}

    def set_params(self, **params: Any) -> _GivenWeights:
        self.weights = params.get("weights", self.weights)
        return self


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
    selector: Any = None,
    groups: Any = None,
) -> pd.DataFrame:
    """Cross-validated score of several fusion methods on the same members.

    The rows of the out-of-fold matrix are split into folds; on each, a clone
    of every fuser is fitted on the training rows and its :meth:`combine` is
    scored on the held-out rows, so fusers that learn (optimised weights,
    stacking) are judged on data they did not see. All fusers share the folds.
    Given a ``selector``, the member weights are chosen again on each fold's
    training rows too (as the estimators' ``fusion_comparison_`` does); otherwise
    ``weights`` are used as given, and if they were chosen on these same rows the
    fixed-weight fusers' scores are optimistic.

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
    selector : selector, default=None
        Chooses the member weights on each fold's training rows (``predictions``
        then holds every candidate); None keeps ``weights``.
    groups : array-like of shape (n_samples,), default=None
        Group labels: an int ``cv`` becomes group K-fold, and inner splits keep groups whole.

    Returns
    -------
    table : pandas.DataFrame
        One row per fuser, best first, with columns ``fusion``, ``cv_score``
        (score of the held-out predictions of all folds together), ``cv_std``
        (over folds) and ``fit_seconds`` (mean per fold). A fuser other than the first
        that raises is reported with NaN scores and a ``RuntimeWarning`` naming its error.

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
    predictions = check_predictions(predictions, dtype=np.float64)
    task = task_of_predictions(predictions)
    n_classes = predictions.shape[2] if task == CLASSIFICATION else None
    y = check_target(y, predictions.shape[1], n_classes)
    named = default_fusers(task, random_state) if fusers is None else _named(fusers)
    weights = check_weights(weights, predictions.shape[0])
    groups = check_groups(groups, predictions.shape[1])
    scorer = get_prediction_scorer(scoring, task)
    folds = make_folds(cv, y, task=task, groups=groups, random_state=random_state)
    return nested_scores(
        predictions, y, folds, selector=_GivenWeights(weights) if selector is None else selector,
        fusers=named, scorer=scorer, X=check_features(X, predictions.shape[1]),
        sample_weight=check_sample_weight(sample_weight, predictions.shape[1]), groups=groups,
    ).table
