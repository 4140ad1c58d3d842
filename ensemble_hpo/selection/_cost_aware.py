"""Greedy ensemble selection with a prediction-cost penalty (hardware-aware selection).

Maier et al. (2024, "Hardware-aware ensemble selection") balance an ensemble's quality
against its inference cost. Here the greedy path of :class:`GreedySelector` maximises

    score(E) - penalty * cost(E),    cost(E) = sum of costs[j] over the distinct members j,

so re-adding a member is free, and a new member must pay for its prediction time with
enough score. ``penalty=0`` is plain Caruana selection. Sweeping ``penalty`` traces the
accuracy-latency front (:mod:`ensemble_hpo._pareto`).
"""

from __future__ import annotations

import math

import numpy as np

from ._greedy import GreedySelector, _greedy_run
from ._library import CandidateLibrary
from ._validation import check_float


class _CostPenalty:
    """``penalty * cost(E)``: the cost of a candidate ensemble "E + j" in O(1) per candidate."""

    def __init__(self, costs: np.ndarray, penalty: float) -> None:
        self.costs = costs
        self.penalty = penalty
        self.member = np.zeros(len(costs), dtype=bool)
        self.total = 0.0

    def add(self, index: int) -> None:
        if not self.member[index]:
            self.member[index] = True
            self.total += self.costs[index]

    def __call__(self, candidates: np.ndarray) -> np.ndarray:
        extra = np.where(self.member[candidates], 0.0, self.costs[candidates])
        return self.penalty * (self.total + extra)


class CostAwareSelector(GreedySelector):
    """Greedy selection with replacement that charges each distinct member its cost.

    Parameters
    ----------
    costs : array-like of shape (n_models,)
        Non-negative cost of each model, e.g. its prediction seconds per row.
    penalty : float, default=0.0
        Score units given up per unit of cost; 0 is plain greedy selection.
    max_iter, scoring, init_size, max_members
        As in :class:`GreedySelector` (no pruning, bagging or diversity penalty here).

    Attributes
    ----------
    cost_ : float
        Summed cost of the selected distinct members.
    weights_, order_, trajectory_, objective_, best_iteration_, score_, single_scores_
        As in :class:`GreedySelector`; ``objective_`` is the penalised score.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> y = rng.normal(size=300)
    >>> preds = y + rng.normal(scale=[[0.5], [0.55], [0.6]], size=(3, 300))
    >>> free = CostAwareSelector(costs=[1.0, 1.0, 1.0]).fit(preds, y)
    >>> cheap = CostAwareSelector(costs=[1.0, 1.0, 1.0], penalty=1.0).fit(preds, y)
    >>> int((free.weights_ > 0).sum()), int((cheap.weights_ > 0).sum())
    (3, 1)
    """

    def __init__(
        self,
        *,
        costs: np.ndarray | list[float] | None = None,
        penalty: float = 0.0,
        max_iter: int = 50,
        scoring: object = None,
        init_size: int = 0,
        max_members: int | None = None,
    ) -> None:
        self.costs = costs
        self.penalty = penalty
        self.max_iter = max_iter
        self.scoring = scoring
        self.init_size = init_size
        self.max_members = max_members

    # GreedySelector's options this selector does not offer, fixed at the class: __init__
    # stores only its parameters (it set these too, which scikit-learn's estimator checks
    # refuse; audit).
    prune = None
    n_bags = 1
    bag_fraction = 1.0
    diversity = 0.0
    fast_metrics = True
    random_state = None

    def _validate_params(self, task: str | None = None) -> None:
        check_float(self.penalty, "penalty", 0.0, math.inf, low_open=False)
        super()._validate_params(task)

    def _check_costs(self, n_models: int) -> np.ndarray:
        costs = None if self.costs is None else np.asarray(self.costs, dtype=np.float64)
        if costs is None or costs.shape != (n_models,) or not np.all(np.isfinite(costs)) \
                or np.any(costs < 0):
            raise ValueError(
                f"The 'costs' parameter must be {n_models} finite non-negative numbers, one per "
                f"model. Got {self.costs!r} instead.")
        return costs

    def _fit(
        self, predictions: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None
    ) -> np.ndarray:
        costs = self._check_costs(predictions.shape[0])
        library = CandidateLibrary(predictions, self._batch_metric(y, sample_weight, fast=True))
        singles = library.single_scores()
        self.single_scores_ = singles
        run = _greedy_run(library, np.arange(library.n_models), singles, n_iter=self.max_iter,
                          init_size=min(self.init_size, self.max_members or self.init_size),
                          max_members=self.max_members, penalty=_CostPenalty(costs, self.penalty))
        weights = self._store_runs([run], library.n_models)
        self.cost_ = float(costs[weights > 0].sum())
        return weights
