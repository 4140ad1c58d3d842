"""The accuracy-latency front of a fitted population: which ensembles are worth their cost.

Greedy selection with a prediction-cost penalty (:class:`~ensemble_hpo.selection.
CostAwareSelector`, after Maier et al. 2024) is run for a sweep of penalties. Each distinct
ensemble is estimated honestly (selection with the same penalty repeated inside the outer
folds, :mod:`ensemble_hpo._nested`), and costed from the prediction seconds per row every
candidate's fold models took on their validation rows during the search. Every ensemble
also has a cheaper twin with ``final_models="refit"``: one model per member instead of one
per fold. The front keeps the points no other point beats on both score and cost.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ensemble_hpo._nested import nested_scores
from ensemble_hpo._select_fuse import SelectionData
from ensemble_hpo.fusion import WeightedAverage
from ensemble_hpo.metrics import get_prediction_scorer
from ensemble_hpo.population import Population
from ensemble_hpo.selection import CostAwareSelector

__all__ = ["FRONT_COLUMNS", "PENALTIES", "accuracy_latency_front", "candidate_costs",
           "front_members", "front_selector", "pick_point"]

#: Penalties as a share of the unpenalised ensemble's |score| per its whole cost: at 1, an
#: ensemble as slow as the unpenalised one gives up its whole score. The grid spans plain
#: Caruana (0) to "one cheap model" (10); distinct ensembles are kept once.
PENALTIES = (0.0, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0)

FRONT_COLUMNS = ["cv_score", "selection_score", "seconds_per_row", "n_members", "members",
                 "weights", "final_models", "penalty"]


#: Candidate numbers -> seconds per row of each one's fold models on one batch.
MemberTimer = Callable[[Sequence[int]], Sequence[float]]


@dataclass
class _Point:
    penalty: float
    members: tuple[int, ...]
    weights: tuple[float, ...]
    selection_score: float
    seconds_per_row: float
    cv_score: float = float("nan")


def candidate_costs(population: Population) -> np.ndarray | None:
    """Prediction seconds per row of every completed candidate (None if any is unknown).

    Run folders written before these timings were recorded have none.
    """
    costs = np.array([np.nan if c.predict_seconds_per_row is None else c.predict_seconds_per_row
                      for c in population.completed()], dtype=np.float64)
    return costs if len(costs) and np.all(np.isfinite(costs)) else None


def front_selector(costs: np.ndarray, penalty: float, scoring: Any) -> CostAwareSelector:
    """The selector of one front point (``penalty`` in score units per second per row)."""
    return CostAwareSelector(costs=costs, penalty=penalty, scoring=scoring)


def accuracy_latency_front(population: Population, data: SelectionData, *, scoring: Any,
                           deadline: float | None = None,
                           penalties: Sequence[float] = PENALTIES,
                           measure: MemberTimer | None = None) -> pd.DataFrame:
    """The Pareto front of ensembles by cross-validated score and prediction seconds per row.

    Returns the non-dominated ensembles of each ``final_models`` kind (see :func:`_front`:
    the "folds" rows, then the "refit" ones, each cheapest first), with columns
    :data:`FRONT_COLUMNS`. ``cv_score`` is nested (held out) in the scorer's sign; past
    ``deadline`` (a ``time.time()`` value) it is NaN and only the optimistic, in-sample
    ``selection_score`` is filled. The penalised sweep costs candidates by the search's
    timings (each fold model predicting its validation rows); those small batches carry
    per-call overhead (3-4x the batch cost on breast_cancer), so with ``measure`` (candidate
    numbers -> seconds per row of their fold models on one batch, as ``prediction_cost_``
    times them) each front point's ``seconds_per_row`` is the sum of its members' measured
    costs. ``penalty`` is in score units per search-timed second per row. The ``"refit"`` rows
    share their ``"folds"`` twin's ``cv_score`` (an out-of-fold score estimates one model
    trained on the rows, which is what a refit member is) and cost one ``n_folds``-th of it.
    An empty frame when the timings are missing.
    """
    costs = candidate_costs(population)
    if costs is None:
        return pd.DataFrame(columns=FRONT_COLUMNS)
    numbers = [c.number for c in population.completed()]
    predictions = population.predictions(numbers)
    points = _sweep(predictions, data, costs, numbers, scoring, penalties, deadline)
    if measure is not None:
        _measured_costs(points, measure)
    scorer = get_prediction_scorer(scoring, data.task)
    for point in points:
        if deadline is not None and time.time() > deadline:
            break
        point.cv_score = nested_scores(
            predictions, data.y, data.outer_folds, selector=front_selector(costs, point.penalty, scoring),
            fusers={"average": WeightedAverage()}, scorer=scorer,
            sample_weight=data.sample_weight, groups=data.groups).scores["average"]
    return _front(_with_refit_twins(points, len(data.splits)))


def _sweep(predictions: np.ndarray, data: SelectionData, costs: np.ndarray,
           numbers: list[int], scoring: Any, penalties: Sequence[float],
           deadline: float | None = None) -> list[_Point]:
    """One ensemble per penalty, the unpenalised one first; past ``deadline`` only that one
    (with a metric scored by scikit-learn call by call, the sweep took 75 s of a 20 s fit)."""
    unit = None
    points: dict[tuple, _Point] = {}
    for share in sorted(penalties):
        if unit is not None and deadline is not None and time.time() > deadline:
            break
        penalty = 0.0 if unit is None else share * unit
        selector = front_selector(costs, penalty, scoring).fit(
            predictions, data.y, sample_weight=data.sample_weight)
        chosen = np.flatnonzero(selector.weights_)
        if unit is None:
            # Score units per second per row that make the plain ensemble's cost its |score|.
            unit = max(abs(selector.score_), 1e-12) / max(selector.cost_, 1e-12)
        key = tuple(chosen) + tuple(np.round(selector.weights_[chosen], 12))
        points.setdefault(key, _Point(
            penalty=penalty, members=tuple(numbers[i] for i in chosen),
            weights=tuple(float(w) for w in selector.weights_[chosen]),
            selection_score=float(selector.score_), seconds_per_row=float(selector.cost_)))
    return list(points.values())


def _measured_costs(points: list[_Point], measure: MemberTimer) -> None:
    numbers = sorted({n for point in points for n in point.members})
    cost = dict(zip(numbers, measure(numbers), strict=True))
    for point in points:
        point.seconds_per_row = float(sum(cost[n] for n in point.members))


def _with_refit_twins(points: list[_Point], n_folds: int) -> pd.DataFrame:
    rows = []
    for point in points:
        base = {"cv_score": point.cv_score, "selection_score": point.selection_score,
                "n_members": len(point.members), "members": point.members,
                "weights": point.weights, "penalty": point.penalty}
        rows.append({**base, "seconds_per_row": point.seconds_per_row, "final_models": "folds"})
        # One model per member instead of n_folds fold models: an estimate, not measured
        # (a refit model can be slower per row than a fold model, e.g. kNN on more rows).
        rows.append({**base, "seconds_per_row": point.seconds_per_row / n_folds,
                     "final_models": "refit"})
    return pd.DataFrame(rows, columns=FRONT_COLUMNS)


def _front(points: pd.DataFrame) -> pd.DataFrame:
    """The non-dominated rows of each ``final_models`` kind, cheapest first.

    One front per kind: a refit twin shares its ensemble's estimate and is cheaper, so a
    single front would hide every fold-model ensemble, the only kind kept without retraining.
    Scores are ``cv_score`` where every row has one, else ``selection_score``.
    """
    score = points["cv_score"] if points["cv_score"].notna().all() else points["selection_score"]
    points = points.assign(_score=score).sort_values(
        ["final_models", "seconds_per_row", "_score"], ascending=[True, True, False], kind="stable")
    # Cheapest first: a row is on its kind's front when it scores above every cheaper row.
    best_so_far = points.groupby("final_models")["_score"].transform(
        lambda s: s.cummax().shift(fill_value=-np.inf))
    return points[points["_score"] > best_so_far].drop(columns="_score").reset_index(drop=True)


def front_members(front: pd.DataFrame | None) -> set[int]:
    """Candidate numbers of every member of every front point (models to keep)."""
    if front is None or front.empty:
        return set()
    return {int(n) for members in front["members"] for n in members}


def pick_point(front: pd.DataFrame, latency_budget: float, final_models: str | None = None) -> int:
    """Position of the best-scoring front row within ``latency_budget`` seconds per row.

    ``final_models`` ("folds" or "refit") limits the choice to that kind; ties in score go
    to the cheaper row.
    """
    rows = front if final_models is None else front[front["final_models"] == final_models]
    if rows.empty:
        raise ValueError("The 'final_models' parameter must be None or a kind on the front "
                         f"{sorted(set(front['final_models']))}. Got {final_models!r} instead.")
    fits = rows[rows["seconds_per_row"] <= latency_budget]
    if fits.empty:
        cheapest = float(rows["seconds_per_row"].min())
        raise ValueError(
            "The 'latency_budget' parameter must be at least the cheapest point of the "
            f"accuracy-latency front, {cheapest:.3g} seconds per row. Got {latency_budget!r} "
            "instead.")
    score = fits["cv_score"] if fits["cv_score"].notna().all() else fits["selection_score"]
    best = fits[score >= score.max()]
    return int(front.index.get_loc(best["seconds_per_row"].idxmin()))
