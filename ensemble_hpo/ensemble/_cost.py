"""Prediction cost of a fitted ensemble, and trimming it to a member count or latency budget."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.utils.validation import _num_samples
from threadpoolctl import threadpool_limits

from .._checks import CLASSIFICATION, check_predictions, check_sample_weight
from ..fusion._base import check_target
from ._export import as_ensemble
from ._fitted import Ensemble, Member

__all__ = ["member_seconds_per_row", "prediction_cost", "trim_ensemble"]

def _seconds_per_row(predict: Callable[[], Any], n_rows: int, repeats: int) -> float:
    """Median over ``repeats`` of the wall time of one batch prediction, divided by its rows."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        predict()
        times.append(time.perf_counter() - start)
    return float(np.median(times)) / n_rows


def _check_repeats(repeats: Any) -> None:
    if isinstance(repeats, bool) or not isinstance(repeats, (int, np.integer)) or repeats < 1:
        raise ValueError(
            f"The 'repeats' parameter must be a positive int. Got {repeats!r} instead."
        )


def _check_batch(X: Any) -> int:
    n_rows = _num_samples(X) if X is not None else 0
    if n_rows == 0:
        raise ValueError(
            "The 'X' parameter must be a non-empty batch of rows to time predictions on. "
            f"Got {type(X).__name__} with no rows instead."
        )
    return n_rows


def prediction_cost(ensemble: Any, X: Any, *, repeats: int = 3) -> pd.DataFrame:
    """Per-row prediction time of every member and of the whole ensemble.

    Every member, then the ensemble (all members plus the fuser), predicts the
    whole batch ``X`` ``repeats`` times; the median wall time
    (``time.perf_counter``) divided by the number of rows is reported. Batch
    timing amortises per-call overhead, so one-row latencies are higher.

    Parameters
    ----------
    ensemble : Ensemble or fitted estimator with an ``ensemble_`` attribute
    X : array-like or DataFrame of shape (n_samples, n_features)
        A representative batch, as the members see it at predict time.
    repeats : int, default=3
        Timed repetitions per component.

    Returns
    -------
    cost : pandas.DataFrame
        One row per member (in ensemble order) and a last ``"ensemble"`` row, with
        columns ``component`` (``"member"`` / ``"ensemble"``), ``number``,
        ``family``, ``weight``, ``n_models`` and ``seconds_per_row``. The
        ensemble row has ``number`` <NA>, ``family`` ``"ensemble"``, the total
        weight and number of models.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from ensemble_hpo import EnsembleClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = EnsembleClassifier(models=["logistic"], n_trials=2, cv=3, random_state=0).fit(X, y)
    >>> cost = prediction_cost(clf, X)
    >>> cost["component"].iloc[-1], bool((cost["seconds_per_row"] > 0).all())
    ('ensemble', True)
    """
    ensemble, _ = as_ensemble(ensemble)
    _check_repeats(repeats)
    member_cost = _member_seconds_per_row(ensemble, X, repeats)
    rows = [
        {"component": "member", "number": m.number, "family": m.family, "weight": m.weight,
         "n_models": len(m.models), "seconds_per_row": cost}
        for m, cost in zip(ensemble.members, member_cost, strict=True)
    ]
    rows.append(
        {"component": "ensemble", "number": None, "family": "ensemble",
         "weight": float(ensemble.weights.sum()),
         "n_models": sum(len(m.models) for m in ensemble.members),
         "seconds_per_row": _ensemble_seconds_per_row(ensemble, X, repeats)}
    )
    cost = pd.DataFrame(rows)
    cost["number"] = cost["number"].astype("Int64")
    return cost


def _member_seconds_per_row(ensemble: Ensemble, X: Any, repeats: int) -> np.ndarray:
    return member_seconds_per_row(ensemble.members, X, task=ensemble.task,
                                  n_classes=ensemble.n_classes, repeats=repeats)


def member_seconds_per_row(members: Sequence[Member], X: Any, *, task: str,
                           n_classes: int | None, repeats: int = 1) -> np.ndarray:
    """Seconds per row for each member (all its models) to predict the batch ``X``."""
    n_rows = _check_batch(X)
    return np.array([
        _seconds_per_row(lambda m=m: m.predict(X, task, n_classes), n_rows, repeats)
        for m in members
    ])


def _ensemble_seconds_per_row(ensemble: Ensemble, X: Any, repeats: int) -> float:
    return _seconds_per_row(lambda: ensemble.combine(X), _check_batch(X), repeats)


def ensemble_latency(ensemble: Ensemble, X: Any, *, repeats: int = 3) -> float:
    """Seconds per row for the whole ensemble to predict the batch ``X``, on one thread."""
    with threadpool_limits(limits=1):
        return _ensemble_seconds_per_row(ensemble, X, repeats)


# -- trimming ------------------------------------------------------------------------------------
def trim_ensemble(
    ensemble: Any,
    *,
    max_members: int | None = None,
    latency_budget: float | None = None,
    X: Any = None,
    oof_predictions: Any = None,
    y: Any = None,
    sample_weight: Any = None,
    scoring: Any = None,
    repeats: int = 3,
) -> Ensemble:
    """A smaller ensemble: at most ``max_members`` members and/or within a latency budget.

    Members are ranked, then taken in rank order while they fit the limits:

    * without ``oof_predictions``: heaviest first (fuser weights, then selection
      weights);
    * with ``oof_predictions`` and ``y``: forward selection on the out-of-fold
      data, each step adding the member whose inclusion gives the best score of
      the weighted average of the members chosen so far.

    With ``latency_budget``, member and fuser costs are measured with
    :func:`prediction_cost` on ``X``; a member that would push the estimated
    per-row latency over the budget is skipped (a cheaper one further down the
    ranking may still fit). The trimmed ensemble is then timed as a whole and,
    while over budget, its last-ranked member is dropped.

    The kept members' selection weights are renormalised to sum to one and the
    fuser is cloned and refitted on their out-of-fold predictions. Without
    ``oof_predictions``, only the fixed-weight fusers (WeightedAverage,
    SoftVoting, HardVoting) can be refitted, since they learn only from the weights.

    Parameters
    ----------
    ensemble : Ensemble or fitted estimator with an ``ensemble_`` attribute
    max_members : int, default=None
        Maximum number of members.
    latency_budget : float, default=None
        Maximum per-row prediction time of the whole ensemble, in seconds
        (as measured by :func:`prediction_cost` on ``X``).
    X : array-like or DataFrame, default=None
        Batch to time predictions on (required with ``latency_budget``). When the
        fuser uses the original features (stacking with passthrough), ``X`` must
        be the training rows of ``oof_predictions``.
    oof_predictions : array-like of shape (n_members, n_samples[, n_classes]), default=None
        The members' out-of-fold predictions, in ensemble member order.
    y : array-like of shape (n_samples,), default=None
        Target of ``oof_predictions``; encoded labels ``0..n_classes-1`` for classification.
    sample_weight : array-like of shape (n_samples,), default=None
        Sample weights for ranking and refitting on ``oof_predictions``.
    scoring : str or callable, default=None
        Score used to rank members on ``oof_predictions`` (task default when None).
    repeats : int, default=3
        Timed repetitions per component.

    Returns
    -------
    trimmed : Ensemble
        A new ensemble (the members' models are shared, not copied); the input
        ensemble itself when nothing needs trimming.

    Raises
    ------
    ValueError
        If no limit is given, a limit is invalid, the latency budget is below even
        the cheapest one-member ensemble, or a learned fuser (OptimizedWeights,
        Stacking) must be refitted without ``oof_predictions`` and ``y``.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from ensemble_hpo import EnsembleClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = EnsembleClassifier(models=["logistic", "knn"], n_trials=4, cv=3,
    ...                          random_state=0).fit(X, y)
    >>> small = trim_ensemble(clf, max_members=1)
    >>> len(small), float(small.weights.sum())
    (1, 1.0)
    """
    ensemble, _ = as_ensemble(ensemble)
    check_trim_limits(max_members, latency_budget, X)
    _check_repeats(repeats)
    oof, y, sample_weight = _check_oof(ensemble, oof_predictions, y, sample_weight)
    n_members = len(ensemble.members)
    cap = n_members if max_members is None else min(int(max_members), n_members)
    ranking = (_weight_ranking(ensemble) if oof is None
               else _oof_ranking(ensemble, oof, y, sample_weight, scoring))
    if latency_budget is None:
        kept = ranking[:cap]
    else:
        kept = _within_budget(ensemble, ranking, cap, float(latency_budget), X, repeats)
    refit = _Refit(oof=oof, y=y, sample_weight=sample_weight, X=X)
    trimmed = _subset(ensemble, kept, refit)
    if latency_budget is not None:
        trimmed = _shrink_to_budget(ensemble, trimmed, kept, float(latency_budget), X,
                                    repeats, refit)
    return trimmed


def check_trim_limits(max_members: Any, latency_budget: Any, X: Any) -> None:
    if max_members is None and latency_budget is None:
        raise ValueError(
            "The 'max_members' or 'latency_budget' parameter must be set to trim an ensemble. "
            "Got None for both instead."
        )
    if max_members is not None and (
        isinstance(max_members, bool) or not isinstance(max_members, (int, np.integer))
        or max_members < 1
    ):
        raise ValueError(
            f"The 'max_members' parameter must be a positive int or None. Got {max_members!r} "
            "instead."
        )
    if latency_budget is None:
        return
    if (isinstance(latency_budget, bool) or not isinstance(latency_budget, (int, float, np.number))
            or not np.isfinite(latency_budget) or latency_budget <= 0):
        raise ValueError(
            "The 'latency_budget' parameter must be a positive number of seconds per row or "
            f"None. Got {latency_budget!r} instead."
        )
    if X is None:
        raise ValueError(
            "The 'X' parameter must be a batch of rows to time predictions on when "
            "latency_budget is set. Got None instead."
        )


def _check_oof(ensemble: Ensemble, oof: Any, y: Any,
               sample_weight: Any) -> tuple[np.ndarray | None, np.ndarray | None, Any]:
    if oof is None and y is None:
        return None, None, None
    if oof is None or y is None:
        missing = "oof_predictions" if oof is None else "y"
        raise ValueError(
            f"The 'oof_predictions' and 'y' parameters must be given together. Got None for "
            f"'{missing}' instead."
        )
    oof = check_predictions(oof, dtype=np.float64)
    expected = (len(ensemble.members),) + (
        (ensemble.n_classes,) if ensemble.task == CLASSIFICATION else ())
    if oof.shape[:1] + oof.shape[2:] != expected:
        raise ValueError(
            "The 'oof_predictions' parameter must have shape (n_members, n_samples"
            f"{', n_classes' if ensemble.task == CLASSIFICATION else ''}) with {expected} in "
            f"ensemble member order. Got shape {oof.shape} instead."
        )
    y = check_target(y, oof.shape[1], ensemble.n_classes)
    return oof, y, check_sample_weight(sample_weight, oof.shape[1])


def _weight_ranking(ensemble: Ensemble) -> list[int]:
    fuser_weights = getattr(ensemble.fuser, "weights_", None)
    if fuser_weights is None:
        fuser_weights = ensemble.weights
    selection = ensemble.weights
    return sorted(range(len(ensemble.members)),
                  key=lambda i: (-fuser_weights[i], -selection[i], i))


def _oof_ranking(ensemble: Ensemble, oof: np.ndarray, y: np.ndarray,
                 sample_weight: np.ndarray | None, scoring: Any) -> list[int]:
    """Members in the order the selection stage's greedy search first adds them.

    Greedy selection with replacement (:class:`~ensemble_hpo.selection.GreedySelector`, in
    ``scoring``) over the members' out-of-fold predictions, run long enough to reach every
    member; members it never adds follow by weight. Trimming thus ranks with the selection
    stage's own forward selection rather than a second selection loop of its own.
    """
    from ensemble_hpo.selection import GreedySelector

    n_members = len(ensemble.members)
    selector = GreedySelector(scoring=scoring, max_iter=max(50, 4 * n_members))
    selector.fit(oof, y, sample_weight=sample_weight)
    first_added = list(dict.fromkeys(int(i) for i in selector.order_))
    never = [i for i in _weight_ranking(ensemble) if i not in first_added]
    return first_added + never


def _within_budget(ensemble: Ensemble, ranking: list[int], cap: int, budget: float,
                   X: Any, repeats: int) -> list[int]:
    member_cost = _member_seconds_per_row(ensemble, X, repeats)
    overhead = _fuser_seconds_per_row(ensemble, X, repeats)
    kept: list[int] = []
    total = overhead
    for i in ranking:
        if len(kept) == cap:
            break
        if total + member_cost[i] <= budget:
            kept.append(i)
            total += member_cost[i]
    if not kept:
        fastest = int(np.argmin(member_cost))
        _raise_budget_impossible(ensemble, fastest, member_cost[fastest] + overhead, budget)
    return kept


def _fuser_seconds_per_row(ensemble: Ensemble, X: Any, repeats: int) -> float:
    # Timed on its own: the ensemble's time minus its members' is too noisy to budget with.
    predictions = ensemble.predict_members(X)
    features = ensemble.fuser_features(X)
    return _seconds_per_row(lambda: ensemble.fuser.combine(predictions, X=features),
                            _check_batch(X), repeats)


def _raise_budget_impossible(ensemble: Ensemble, index: int, latency: float,
                             budget: float) -> None:
    member = ensemble.members[index]
    raise ValueError(
        f"The 'latency_budget' parameter must be at least the latency of a one-member "
        f"ensemble: the fastest member (#{member.number}, {member.family}) plus the fuser "
        f"measured {latency:.3g} seconds per row. Got {budget:.3g} instead."
    )


def _shrink_to_budget(ensemble: Ensemble, trimmed: Ensemble, kept: list[int], budget: float,
                      X: Any, repeats: int, refit: _Refit) -> Ensemble:
    """Drop last-ranked members while the trimmed ensemble, timed as a whole, is over budget."""
    while True:
        latency = _ensemble_seconds_per_row(trimmed, X, repeats)
        if latency <= budget:
            return trimmed
        if len(kept) == 1:
            _raise_budget_impossible(ensemble, kept[0], latency, budget)
        kept = kept[:-1]
        trimmed = _subset(ensemble, kept, refit)


@dataclasses.dataclass
class _Refit:
    """What refitting a cloned fuser on a subset of members needs."""

    oof: np.ndarray | None
    y: np.ndarray | None
    sample_weight: np.ndarray | None
    X: Any


def _subset(ensemble: Ensemble, kept: Sequence[int], refit: _Refit) -> Ensemble:
    """Ensemble of the ``kept`` members (in their original order) with a refitted fuser."""
    kept = sorted(kept)
    if len(kept) == len(ensemble.members):
        return ensemble
    weights = ensemble.weights[kept] / ensemble.weights[kept].sum()
    members = [dataclasses.replace(ensemble.members[i], weight=float(w))
               for i, w in zip(kept, weights, strict=True)]
    return Ensemble(members=members, fuser=_refit_fuser(ensemble, kept, weights, refit),
                    task=ensemble.task, n_classes=ensemble.n_classes,
                    feature_transformer=ensemble.feature_transformer)


def _refit_fuser(ensemble: Ensemble, kept: list[int], weights: np.ndarray,
                 refit: _Refit) -> Any:
    fuser = clone(ensemble.fuser)
    if refit.oof is not None:
        fuser_X = None
        if ensemble.feature_transformer is not None:
            if refit.X is None or _num_samples(refit.X) != refit.oof.shape[1]:
                raise ValueError(
                    "The 'X' parameter must be the training rows of oof_predictions, because the "
                    "fuser uses the original features (passthrough). Got "
                    f"{'None' if refit.X is None else _num_samples(refit.X)} rows for "
                    f"{refit.oof.shape[1]} OOF rows instead."
                )
            fuser_X = ensemble.fuser_features(refit.X)
        return fuser.fit(refit.oof[kept], refit.y, weights=weights, X=fuser_X,
                         sample_weight=refit.sample_weight)
    if not getattr(fuser, "learns_from_predictions", True):
        # Their fit reads nothing but the weights: a one-row placeholder suffices.
        return fuser.fit(_placeholder_predictions(ensemble, len(kept)), np.zeros(1, dtype=int),
                         weights=weights)
    raise ValueError(
        f"The 'oof_predictions' and 'y' parameters must be given to refit the "
        f"{type(fuser).__name__} fuser on the kept members, since it learns from the members' "
        "out-of-fold predictions. Got None instead."
    )


def _placeholder_predictions(ensemble: Ensemble, n_members: int) -> np.ndarray:
    if ensemble.task == CLASSIFICATION:
        return np.full((n_members, 1, ensemble.n_classes), 1.0 / ensemble.n_classes)
    return np.zeros((n_members, 1))
