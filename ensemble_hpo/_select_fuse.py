"""The one select-and-fuse step behind ``fit`` and ``reselect``: population in, ensemble out.

It selects members from every finished candidate's out-of-fold predictions, fits the fuser
on them, and estimates the result honestly (selection and fusion repeated inside the outer
folds, :mod:`ensemble_hpo._nested`), together with the fusion comparison. It knows nothing
of estimators or run folders: the estimators only compose it.
"""

from __future__ import annotations

import numbers
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from threadpoolctl import threadpool_limits

from ensemble_hpo._checks import CLASSIFICATION
from ensemble_hpo._folds import first_partition, groups_kwargs
from ensemble_hpo._nested import nested_scores
from ensemble_hpo._resolve import make_selector
from ensemble_hpo._stage_progress import StageProgress
from ensemble_hpo.ensemble._cost import ensemble_latency
from ensemble_hpo.ensemble._fitted import Ensemble, _dense, members_from_weights
from ensemble_hpo.fusion import WeightedAverage, default_fusers
from ensemble_hpo.metrics import get_prediction_scorer
from ensemble_hpo.population import STATUS_SKIPPED, Candidate, Population

__all__ = ["SelectionData", "SelectionResult", "comparison_fusers", "select_and_fuse",
           "select_within_budget"]

Splits = Sequence[tuple[np.ndarray, np.ndarray]]


@dataclass
class SelectionData:
    """The rows selection and fusion learn from: encoded target, outer folds and extras."""

    y: np.ndarray
    task: str
    splits: Splits
    n_classes: int | None = None
    sample_weight: np.ndarray | None = None
    groups: np.ndarray | None = None
    X: Any = None  # original features, only for a fuser that looks at them (passthrough)
    transformer: Any = None  # fitted preprocessing that gives such a fuser its view of X

    @property
    def outer_folds(self) -> Splits:
        """The folds that cross-validate the selected ensemble: ``splits``, or their first
        repeat when the search's folds repeat (a row is held out once per repeat)."""
        return first_partition(list(self.splits), len(self.y)) or list(self.splits)


@dataclass
class SelectionResult:
    ensemble: Ensemble
    selector: Any
    fusion_comparison: pd.DataFrame
    cv_score: float  # nested, held-out estimate of the fitted ensemble
    selection_score: float  # on the rows it was selected on: optimistic
    best: Candidate


class NothingToEnsembleError(RuntimeError):
    """No candidate finished: the search stopped first, or every candidate failed."""


def select_and_fuse(population: Population, selector: Any, fuser: Any, data: SelectionData, *,
                    scoring: Any, random_state: int | None, deadline: float | None = None,
                    verbose: int = 0) -> SelectionResult:
    """Select, fuse and estimate; raise when no candidate finished."""
    completed = population.completed()
    if not population.candidates:
        raise NothingToEnsembleError(
            "The search stopped before any candidate finished, so there is nothing to ensemble. "
            "Give it more time (time_budget) or more trials (n_trials)."
        )
    if not completed:
        reasons = sorted({f"{c.status}: {c.error}" for c in population.candidates})
        advice = ""
        if all(c.status in ("timeout", STATUS_SKIPPED) for c in population.candidates):
            advice = (" No candidate could finish its cross-validation in the time given: "
                      "raise time_budget (or trial_timeout), or use fewer cv folds or rows.")
        raise NothingToEnsembleError(
            f"Every one of the {len(population.candidates)} candidates failed, so there is "
            "nothing to ensemble." + advice + " Failure reasons: " + "; ".join(reasons[:10])
        )
    numbers_ = [c.number for c in completed]
    predictions = population.predictions(numbers_)
    y, groups, sample_weight = data.y, data.groups, data.sample_weight
    progress = StageProgress(["selection", "fusion", "fusion comparison"], enabled=bool(verbose))
    # One BLAS/OpenMP thread, for fit and reselect alike: selection and fusion work on
    # small matrices, where thread start-up and oversubscription cost more than they give
    # (measured 4x in fit; reselect without the limit ran the fusion comparison 16x slower
    # on the loaded 2-core machine).
    with progress, threadpool_limits(limits=1):
        selector.fit(predictions, y, sample_weight=sample_weight, **groups_kwargs(selector, groups))
        weights = np.asarray(selector.weights_, dtype=np.float64)
        scores = {c.number: c.score for c in completed}
        members = members_from_weights(numbers_, weights, population, scores=scores)
        progress.done("selection", "fusion", candidates=len(completed), members=len(members),
                      oof=float(getattr(selector, "score_", np.nan)),
                      best_single=float(max(scores.values())))
        member_predictions = predictions[[numbers_.index(m.number) for m in members]]
        fuser_X = None if data.transformer is None else _dense(data.transformer.transform(data.X))
        fuser, transformer = _fitted_or_average(fuser, member_predictions, y, members, fuser_X,
                                                data.transformer, sample_weight, groups)
        progress.done("fusion", "fusion comparison", fuser=type(fuser).__name__)
        nested = nested_scores(
            predictions, y, data.outer_folds, selector=selector,
            fusers=comparison_fusers(fuser, y, data.outer_folds, data.task, scoring=scoring,
                                     random_state=random_state),
            X=fuser_X, scorer=get_prediction_scorer(scoring, data.task),
            sample_weight=sample_weight, groups=groups, deadline=deadline)
        progress.done("fusion comparison")
    ensemble = Ensemble(members=members, fuser=fuser, task=data.task, n_classes=data.n_classes,
                        feature_transformer=transformer)
    best = max(completed, key=lambda c: c.score)
    return SelectionResult(
        ensemble=ensemble, selector=selector, fusion_comparison=nested.table,
        cv_score=nested.scores[type(fuser).__name__],
        selection_score=_in_sample_score(ensemble.fuser, member_predictions,
                                         None if transformer is None else fuser_X, data, scoring),
        best=best,
    )


def nested_best_single(population: Population, data: SelectionData, scoring: Any) -> float:
    """Held-out score of choosing the best single candidate, the choice repeated inside the
    outer folds as ``cv_score_`` repeats selection and fusion.

    ``best_score_`` is the best of N out-of-fold scores, chosen on the rows it is scored
    on: beside the nested ``cv_score_`` it made the ensemble look worse than it is (the
    report said it lost by 0.0033 on breast_cancer where, nested alike, it won by 0.0008;
    audit). Needs only the stored out-of-fold predictions, never the models.
    """
    completed = population.completed()
    predictions = population.predictions([c.number for c in completed])
    with threadpool_limits(limits=1):
        nested = nested_scores(predictions, data.y, data.outer_folds,
                               selector=make_selector("best", None, scoring),
                               fusers={"best": WeightedAverage()},
                               scorer=get_prediction_scorer(scoring, data.task),
                               sample_weight=data.sample_weight, groups=data.groups)
    return nested.scores["best"]


def _fitted_or_average(fuser: Any, member_predictions: np.ndarray, y: np.ndarray,
                       members: Sequence[Any], X: Any, transformer: Any,
                       sample_weight: np.ndarray | None, groups: np.ndarray | None) -> tuple[Any, Any]:
    """``fuser`` fitted on the members, or their weighted average when it fails to fit.

    Stacking under a Poisson deviance failed after the whole search (its linear meta-learner
    predicted counts <= 0), and without a run folder every candidate was lost (audit). The
    fallback is announced, and the fusion comparison scores it under its own name.
    """
    weights = [m.weight for m in members]
    try:
        return fuser.fit(member_predictions, y, weights=weights, X=X, sample_weight=sample_weight,
                         **groups_kwargs(fuser, groups)), transformer
    except Exception as exc:  # noqa: BLE001 - any failure: keep the search's work
        warnings.warn(
            f"The fusion {type(fuser).__name__} failed on the selected members ({type(exc).__name__}: "
            f"{exc}); the ensemble uses their weighted average (WeightedAverage) instead.",
            UserWarning, stacklevel=4)
        return WeightedAverage().fit(member_predictions, y, weights=weights,
                                     sample_weight=sample_weight), None


def _in_sample_score(fuser: Any, member_predictions: np.ndarray, X: Any, data: SelectionData,
                     scoring: Any) -> float:
    """The fitted ensemble's score on the rows it was selected and fused on, in the user's metric.

    A selector's own ``score_`` is in its own metric: ``GreedySelector(scoring="accuracy")``
    gave ``selection_score_`` 0.96 beside log losses of -0.12 (audit). The members' weighted
    average scored -0.0959 where the fitted hard-voting ensemble's in-sample log loss was
    -0.414 (audit): the score is of what the fuser makes of the members.
    """
    blend = fuser.combine(np.asarray(member_predictions, np.float64), X)
    scorer = get_prediction_scorer(scoring, data.task)
    return float(scorer(data.y, blend, sample_weight=data.sample_weight))


def select_within_budget(population: Population, fuser: Any, data: SelectionData, *,
                         max_members: int, latency_budget: float | None, X: Any,
                         scoring: Any, random_state: int | None) -> SelectionResult:
    """Greedy selection with at most ``max_members`` members, fewer until ``X`` is predicted
    within ``latency_budget`` seconds per row (what ``trim`` does).

    Only the given fuser is estimated (nested, as in ``fit``); the others of the comparison
    are skipped. Raises when even the best one-member ensemble is too slow.
    """
    for k in range(max_members, 0, -1):
        selector = make_selector("greedy", random_state, scoring, {"max_members": k})
        # An expired deadline: the nested estimate covers this fuser only.
        result = select_and_fuse(population, selector, clone(fuser), data, scoring=scoring,
                                 random_state=random_state, deadline=time.time())
        if latency_budget is None:
            return result
        latency = ensemble_latency(result.ensemble, X)
        if latency <= latency_budget:
            return result
    raise ValueError(
        "The 'latency_budget' parameter must be at least the latency of the best one-member "
        f"ensemble, {latency:.3g} seconds per row. Got {latency_budget:.3g} instead.")


def comparison_fusers(fuser: Any, y: np.ndarray, splits: Splits, task: str, *, scoring: Any,
                      random_state: int | None) -> dict[str, Any]:
    """The fitted ensemble's fuser first (always scored), then every default one.

    Fusers with their own inner CV (stacking) get at most as many inner folds as the
    rarest class has rows in the smallest outer training part.
    """
    inner = _inner_folds(y, splits, task)
    chosen = type(fuser).__name__
    fusers = {chosen: _with_inner_cv(fuser, max(inner, 2))}
    for name, default in default_fusers(task, random_state, scoring).items():
        if name == chosen and repr(default.get_params()) == repr(fuser.get_params()):
            continue
        if "cv" in default.get_params() and inner < 2:
            continue
        fusers[name if name != chosen else f"{name} (defaults)"] = _with_inner_cv(default, inner)
    return fusers


def _inner_folds(y: np.ndarray, splits: Splits, task: str) -> int:
    """Largest inner K-fold (at most 5) every outer training part can feed."""
    if task == CLASSIFICATION:
        counts = [np.bincount(y[train]) for train, _ in splits]
        rows = min(int(c[c > 0].min()) for c in counts)
    else:
        rows = min(len(train) for train, _ in splits) // 2
    return min(5, rows)


def _with_inner_cv(fuser: Any, inner: int) -> Any:
    params = fuser.get_params()
    if isinstance(params.get("cv"), numbers.Integral) and params["cv"] > inner:
        return clone(fuser).set_params(cv=inner)
    return fuser
