"""Greedy forward ensemble selection with replacement (Caruana et al. 2004, 2006)."""

from __future__ import annotations

import functools
import math
import numbers
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from sklearn.utils import check_random_state

from .._threads import thread_controller
from ._base import BaseSelector, Scoring, top_models
from ._diversity import CorrelationTracker
from ._library import MODELS_PRODUCT_ERROR, CandidateLibrary
from ._validation import check_float, check_int

# Scores this close count as tied, so that rounding noise between the fast and generic
# paths (or identical models) cannot change which model wins.
_TIE_RTOL = 1e-12


@dataclass(frozen=True)
class _Run:
    order: np.ndarray
    trajectory: np.ndarray
    objective: np.ndarray
    best_iteration: int


class _DiversityPenalty:
    """``strength * rho(E)``, rho = count-weighted mean pairwise correlation (self pairs = 1).

    Keeping ``rho`` as a sum over member pairs makes the penalty of every
    candidate ensemble "E + j" an O(1) update from the cached correlations of j
    with the current members.
    """

    def __init__(self, tracker: CorrelationTracker, strength: float, n_models: int) -> None:
        self.tracker = tracker
        self.strength = strength
        self.with_members = np.zeros(n_models)  # sum over members m of count_m * corr(j, m)
        self.pair_sum = 0.0
        self.count = 0

    def add(self, index: int) -> None:
        self.pair_sum += 2.0 * self.with_members[index] + 1.0
        corr = np.nan_to_num(self.tracker.corr_with(index))
        corr[index] = 1.0
        self.with_members += corr
        self.count += 1

    def __call__(self, candidates: np.ndarray) -> np.ndarray:
        pairs = self.pair_sum + 2.0 * self.with_members[candidates] + 1.0
        return self.strength * pairs / (self.count + 1) ** 2


def _pick(objective: np.ndarray, candidates: np.ndarray, counts: np.ndarray) -> int:
    """Position in ``candidates`` of the winner: best, then already a member, then lowest index."""
    objective = np.nan_to_num(objective, nan=-np.inf)
    best = objective.max()
    tied = np.flatnonzero(objective >= best - _TIE_RTOL * max(1.0, abs(best)))
    members = tied[counts[candidates[tied]] > 0]
    pool = members if len(members) else tied
    return int(pool[np.argmin(candidates[pool])])


class _Penalty(Protocol):
    def __call__(self, candidates: np.ndarray) -> np.ndarray: ...

    def add(self, index: int) -> None: ...


# Slack added to every bound: far above the rounding of a float64 mean of logs (about
# 1e-13 in the worst case for log-loss values below 40) and far below score gaps that
# matter, so a bound never skips a candidate that the full pass could pick.
_BOUND_SLACK = 1e-9
# Candidates scored per call while skipping, most promising first. Measured on 300 x
# 20,000 binary (benchmarks/bench_selection_speed.py): 4 scored 380 candidates in 50 steps,
# 8 scored 605 for the same time.
_BATCH = 4
# With at most this many eligible candidates they are all scored: the bounds cost a float32
# pass over the library and a tightening pass over some of it, about as much as scoring
# 15-30 candidates.
_REFRESH = 16


class _BoundedSearch:
    """Exact candidate skipping for log loss.

    A candidate's score is ``M_j - log(count + 1)`` with ``M_j`` the mean clipped log of
    ``running + p_j``. Each step bounds every ``M_j`` from above (:meth:`LogLoss.
    tangent_bound`), rounding accounted for: first all of them by the tangent bound,
    linear in ``p_j`` (one float32 product of the library with a row vector), then, once
    a candidate has been scored, the candidates the tangent cannot rule out by the
    tighter quadratic bound (their rows only, gathered and squared, with coefficients
    computed per block of samples). Candidates are
    scored exactly in order of their bound, best first, until no bound reaches the tie
    threshold of the best objective found: exactly the candidates a full pass could
    pick. Penalties subtract a known per-candidate amount from the objective, so they
    are subtracted from the bounds too and skipping stays exact with them.

    Measured on 300 x 20,000 binary, 50 steps (``benchmarks/bench_selection_speed.py``):
    254 of 15,000 candidates scored, 1,641 bounds tightened (33 per step), 0.15 s. Quadratic
    bounds for every candidate (a second pass, over a squared copy of the library) scored
    about as many candidates 1.7x slower: the library and its squares (48 MB) no longer
    fit the 32 MB L3 cache, which the library alone does. Expanding the bounds around the
    models' row mean alone tightened 15 % more (1,887) and scored 20 % more (305); around
    the ensemble's mean alone, 2,716 and 489. A cheaper bound carried over from the
    previous step (``M_j`` grows by at most a per-row supremum over all candidates) left
    130-300 candidates open per step and saved no time; dropping the squares' rows of
    easy samples left 3,000-6,000 in all.
    """

    def __init__(self, library: CandidateLibrary) -> None:
        self.library = library
        # For the benchmark's record: candidates scored, library passes, bounds tightened.
        self.scored = 0
        self.passes = 0
        self.tightened = 0

    def scores(
        self, running: np.ndarray, count: int, eligible: np.ndarray, penalty: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Scores and objectives of ``eligible``; -inf for candidates that cannot win."""
        if len(eligible) <= _REFRESH:
            scores = self.library.score(running, count, eligible)
            self.scored += len(eligible)
            return scores, (scores if penalty is None else scores - penalty)
        bounds = _StepBounds(self, running, count, eligible, penalty)
        scores = np.full(len(eligible), -np.inf)
        objective = np.full(len(eligible), -np.inf)
        open_ = np.ones(len(eligible), dtype=bool)
        best = -np.inf
        while True:
            # x - rtol * max(1, |x|) grows with x, so a bound below the threshold of the best
            # objective found so far is below the final tie threshold too: never picked.
            threshold = best - _TIE_RTOL * max(1.0, abs(best))
            pending = open_ & (bounds.upper >= threshold)
            if best > -np.inf and bounds.tighten(pending):
                continue
            pending = np.flatnonzero(pending)
            if len(pending) == 0:
                break
            batch = pending[np.argsort(-bounds.upper[pending], kind="stable")[:_BATCH]]
            found = self.library.score(running, count, eligible[batch])
            self.scored += len(batch)
            open_[batch] = False
            scores[batch] = found
            objective[batch] = found if penalty is None else found - penalty[batch]
            best = max(best, float(np.nan_to_num(objective[batch], nan=-np.inf).max()))
        return scores, objective


class _StepBounds:
    """Upper bounds on the objectives of one step's eligible candidates (slack included)."""

    def __init__(
        self,
        search: _BoundedSearch,
        running: np.ndarray,
        count: int,
        eligible: np.ndarray,
        penalty: np.ndarray | None,
    ) -> None:
        self.search, self.eligible, self.count = search, eligible, count
        self.penalty = np.zeros(len(eligible)) if penalty is None else penalty
        lib = search.library
        self.tight = np.zeros(len(eligible), dtype=bool)
        if count == 0 and lib.singles_known():
            self.upper = _with_slack(lib.single_scores()[eligible]) - self.penalty  # exact
            self.tight[:] = True
            return
        # A streamed library keeps no row statistics: the bounds are centred on the ensemble
        # and use 1 as every row's largest probability (both valid, a little looser).
        high, mean = (None, None) if lib.streamed else lib.row_stats()
        tangent, constant, self.quadratic_constant = lib.metric.tangent_bound(
            running, count, mean, high)
        linear = lib.project(tangent)[eligible]
        search.passes += 1
        upper = constant + _inflated(linear, len(tangent), lib.project_error())
        self.upper = _with_slack(upper - math.log(count + 1)) - self.penalty
        self.coefficients = functools.partial(lib.metric.quadratic_coefficients, running, count,
                                              mean, high)

    def tighten(self, pending: np.ndarray) -> bool:
        """Quadratic bounds for the pending candidates that lack one; False if none do."""
        stale = np.flatnonzero(pending & ~self.tight)
        if len(stale) == 0:
            return False
        self.tight[stale] = True
        self.search.tightened += len(stale)
        library = self.search.library
        linear, square = library.project_models(self.eligible[stale], self.coefficients)
        n, error = library.row_elements, MODELS_PRODUCT_ERROR
        quadratic = self.quadratic_constant + _inflated(linear, n, error) - _deflated(square, n,
                                                                                      error)
        upper = _with_slack(quadratic - math.log(self.count + 1)) - self.penalty[stale]
        self.upper[stale] = np.minimum(self.upper[stale], upper)
        return True


# Products with rounding error ``error`` (relative) are inflated where they are added to a
# bound and deflated where they are subtracted; ``2**-149`` per row covers float32 underflow.


def _inflated(product: np.ndarray, n_rows: int, error: float) -> np.ndarray:
    return product * (1.0 + error) + n_rows * 2.0**-149


def _deflated(product: np.ndarray, n_rows: int, error: float) -> np.ndarray:
    return np.maximum(product * (1.0 - error) - n_rows * 2.0**-149, 0.0)


def _with_slack(upper: np.ndarray) -> np.ndarray:
    upper = upper + _BOUND_SLACK * (1.0 + np.abs(upper))
    return np.where(np.isnan(upper), np.inf, upper)


def _greedy_run(
    library: CandidateLibrary,
    candidates: np.ndarray,
    singles: np.ndarray,
    *,
    n_iter: int,
    init_size: int,
    max_members: int | None,
    penalty: _Penalty | None,
    skip: bool = True,
) -> _Run:
    """Greedy path over ``candidates``; ``skip=False`` scores every candidate every step.

    With a metric that supports it (:attr:`BatchMetric.bounded`: log loss) candidates
    that provably cannot be picked are not scored (:class:`_BoundedSearch`); the chosen
    members, trajectory and objective are those of the full pass, penalty or not.
    """
    running = library.zeros()
    counts = np.zeros(library.n_models, dtype=np.intp)
    order: list[int] = []
    trajectory: list[float] = []
    objectives: list[float] = []
    search = _BoundedSearch(library) if skip and library.bounded else None

    def evaluate(eligible: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if search is not None:
            return search.scores(
                running, len(order), eligible, None if penalty is None else penalty(eligible))
        scores = library.score(running, len(order), eligible)
        return scores, (scores - penalty(eligible) if penalty is not None else scores)

    def add(index: int, score: float, objective: float) -> None:
        if penalty is not None:
            penalty.add(index)
        library.add(running, index)
        counts[index] += 1
        order.append(index)
        trajectory.append(score)
        objectives.append(objective)

    # One BLAS thread: the library products are single matrix-vector passes, which threads
    # slowed down 10-30x on the shared 2-core machine (thread start-up, contention).
    with thread_controller().limit(limits=1):
        for index in candidates[_sorted_init(singles[candidates], init_size)]:
            scores, objective = evaluate(np.array([index]))
            add(int(index), float(scores[0]), float(objective[0]))
        for _ in range(n_iter):
            full = max_members is not None and np.count_nonzero(counts) >= max_members
            eligible = np.flatnonzero(counts) if full else candidates
            scores, objective = evaluate(eligible)
            pos = _pick(objective, eligible, counts)
            add(int(eligible[pos]), float(scores[pos]), float(objective[pos]))
    obj = np.asarray(objectives)
    return _Run(np.asarray(order, dtype=np.intp), np.asarray(trajectory), obj, _first_best(obj))


def _sorted_init(singles: np.ndarray, k: int) -> np.ndarray:
    """Positions of the ``k`` best singles, with the greedy steps' tie rule (lower position).

    Identical models can score an ulp apart (BLAS may round rows at different offsets
    differently), so an exact sort would let rounding pick between duplicates.
    """
    values = np.nan_to_num(singles, nan=-np.inf)
    remaining = np.ones(len(values), dtype=bool)
    picks = []
    for _ in range(min(k, len(values))):
        best = values[remaining].max()
        slack = _TIE_RTOL * max(1.0, abs(best)) if np.isfinite(best) else 0.0
        pos = int(np.flatnonzero(remaining & (values >= best - slack))[0])
        picks.append(pos)
        remaining[pos] = False
    return np.asarray(picks, dtype=np.intp)


def _first_best(objective: np.ndarray) -> int:
    """First step within rounding of the maximum: on a plateau the smaller ensemble wins."""
    objective = np.nan_to_num(objective, nan=-np.inf)
    best = objective.max()
    return int(np.argmax(objective >= best - _TIE_RTOL * max(1.0, abs(best))))


def _is_fraction(prune: object) -> bool:
    """A ``prune`` given as a share of the library: any real that is not an integer (numpy's
    float32 0.5 was refused as 'an integer >= 1'; audit)."""
    return isinstance(prune, numbers.Real) and not isinstance(prune, (numbers.Integral, bool))


class GreedySelector(BaseSelector):
    """Greedy ensemble selection with replacement (Caruana et al., 2004, 2006).

    Starting from an empty (or sorted-initialised) ensemble, every iteration adds
    the library model that most improves the ensemble's score; models may be
    added repeatedly, so weights are selection counts divided by the ensemble
    size. The path is trimmed to its best iteration. All candidates of an
    iteration are scored in one vectorised pass over a running ensemble sum
    (fast paths for log loss, (balanced) accuracy, ROC AUC, RMSE/MSE, MAE, R²;
    any other scorer is called once per candidate). With log loss, candidates that
    provably cannot be picked are not scored at all (same members, trajectory and
    scores; ``benchmarks/results/selection_speed.md``: 0.15 s, 31.7x AutoGluon's
    ``EnsembleSelection`` on 300 x 20,000 x 50 in one run, less on CPUs with a faster
    ``log``).

    Parameters
    ----------
    max_iter : int, default=50
        Greedy additions after the sorted initialisation; the untrimmed ensemble
        has ``init_size + max_iter`` members (with repeats).
    scoring : str, callable, PredictionScorer or None, default=None
        Greater-is-better scorer (scikit-learn name, ``make_scorer`` object or
        ``f(y_true, y_pred)``). None means "neg_log_loss" for 3-D predictions and
        "neg_root_mean_squared_error" for 2-D.
    init_size : int, default=0
        Sorted initialisation: start with the ``init_size`` best single models.
    prune : int, float or None, default=None
        Library pruning before selection: keep the ``prune`` best models (int)
        or the best ``ceil(prune * n_models)`` models (float in (0, 1]); None
        keeps all (plain Caruana). Pruning to the better half helped on
        hand-made model libraries (``benchmarks/results/selection_variants.md``)
        but not on search populations (``ensemble_variants.md``): a search that
        concentrates on one family leaves only that family in the better half,
        and the diversity greedy selection needs is pruned away.
    n_bags : int, default=1
        Bagged selection: run ``n_bags`` selections, each on a random
        ``bag_fraction`` of the (pruned) library, and average their weights.
        With ``n_bags=1`` the whole library is used.
    bag_fraction : float, default=0.5
        Fraction of the library drawn (without replacement) per bag.
    max_members : int or None, default=None
        Cap on distinct members; once reached, only current members can be re-added.
    diversity : float, default=0.0
        Penalty strength. Greedy steps and trimming maximise the objective
        ``score(E) - diversity * |best single score| * rho(E)``, where ``rho`` is
        the count-weighted mean pairwise Pearson correlation of the members'
        predictions (self pairs count 1). Scaling by the best single score lets
        one value work across metrics. 0 is plain Caruana. ``trajectory_``
        records the unpenalised score, ``objective_`` the penalised one; with a
        penalty the kept ensemble may score below the best single model.
    fast_metrics : bool, default=True
        Use the vectorised metric implementations when available; False forces
        the generic per-candidate scorer (same choices, much slower).
    random_state : int, RandomState or None, default=None
        Seed for bagging.

    Attributes
    ----------
    weights_ : ndarray of shape (n_models,)
        Non-negative weights summing to 1 (averaged over bags).
    order_ : ndarray of int
        Model chosen at each step (init members first). Shape (n_steps,), or
        (n_bags, n_steps) when ``n_bags > 1``.
    trajectory_ : ndarray of float
        Ensemble score after each step; same shape as ``order_``.
    objective_ : ndarray of float
        Penalised objective after each step (equals ``trajectory_`` when
        ``diversity=0``); same shape as ``order_``.
    best_iteration_ : int or ndarray of int
        First step maximising ``objective_``; its ensemble is kept (per bag
        when ``n_bags > 1``).
    score_ : float
        Score of the final weighted ensemble on the selection data.
    single_scores_ : ndarray of shape (n_models,)
        Score of every model on its own.
    task_, classes_, n_models_
        See :class:`BaseSelector`.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> y = rng.normal(size=200)
    >>> preds = y + rng.normal(scale=[[0.5], [0.6], [2.0]], size=(3, 200))
    >>> sel = GreedySelector(max_iter=10).fit(preds, y)
    >>> sel.weights_.round(2)
    array([0.57, 0.43, 0.  ])
    >>> bool(sel.score_ >= sel.single_scores_.max())
    True
    """

    def __init__(
        self,
        *,
        max_iter: int = 50,
        scoring: Scoring = None,
        init_size: int = 0,
        prune: int | float | None = None,
        n_bags: int = 1,
        bag_fraction: float = 0.5,
        max_members: int | None = None,
        diversity: float = 0.0,
        fast_metrics: bool = True,
        random_state: int | np.random.RandomState | None = None,
    ) -> None:
        self.max_iter = max_iter
        self.scoring = scoring
        self.init_size = init_size
        self.prune = prune
        self.n_bags = n_bags
        self.bag_fraction = bag_fraction
        self.max_members = max_members
        self.diversity = diversity
        self.fast_metrics = fast_metrics
        self.random_state = random_state

    def _validate_params(self, task: str | None = None) -> None:
        check_int(self.max_iter, "max_iter", 1)
        check_int(self.init_size, "init_size", 0)
        check_int(self.n_bags, "n_bags", 1)
        check_int(self.max_members, "max_members", 1, allow_none=True)
        check_float(self.bag_fraction, "bag_fraction", 0.0, 1.0, low_open=True)
        check_float(self.diversity, "diversity", 0.0, math.inf, low_open=False)
        if _is_fraction(self.prune):
            check_float(self.prune, "prune", 0.0, 1.0, low_open=True)
        else:
            check_int(self.prune, "prune", 1, allow_none=True)
        if not isinstance(self.fast_metrics, bool):
            raise ValueError(
                f"The 'fast_metrics' parameter must be a bool. Got {self.fast_metrics!r} instead."
            )
        super()._validate_params(task)

    def _pool(self, singles: np.ndarray) -> np.ndarray:
        n_models = len(singles)
        if self.prune is None:
            return np.arange(n_models)
        keep = math.ceil(self.prune * n_models) if _is_fraction(self.prune) else self.prune
        return np.sort(top_models(singles, min(keep, n_models)))

    def _bags(self, pool: np.ndarray) -> list[np.ndarray]:
        if self.n_bags == 1:
            return [pool]
        rng = check_random_state(self.random_state)
        size = max(1, round(self.bag_fraction * len(pool)))
        return [np.sort(rng.choice(pool, size=size, replace=False)) for _ in range(self.n_bags)]

    def _fit(
        self, predictions: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None
    ) -> np.ndarray:
        metric = self._batch_metric(y, sample_weight, fast=self.fast_metrics)
        library = CandidateLibrary(predictions, metric)
        singles = library.single_scores()
        self.single_scores_ = singles
        tracker = CorrelationTracker(predictions) if self.diversity > 0 else None
        strength = self.diversity * max(abs(float(np.nanmax(singles))), 1e-12)
        runs = []
        for bag in self._bags(self._pool(singles)):
            penalty = None
            if tracker is not None:
                penalty = _DiversityPenalty(tracker, strength, library.n_models)
            runs.append(
                _greedy_run(
                    library,
                    bag,
                    singles,
                    n_iter=self.max_iter,
                    init_size=min(self.init_size, len(bag), self.max_members or len(bag)),
                    max_members=self.max_members,
                    penalty=penalty,
                )
            )
        return self._store_runs(runs, library.n_models)

    def _store_runs(self, runs: list[_Run], n_models: int) -> np.ndarray:
        weights = np.zeros(n_models)
        for run in runs:
            kept = run.order[: run.best_iteration + 1]
            weights += np.bincount(kept, minlength=n_models) / len(kept)
        if len(runs) == 1:
            self.order_, self.trajectory_ = runs[0].order, runs[0].trajectory
            self.objective_ = runs[0].objective
            self.best_iteration_ = runs[0].best_iteration
        else:
            self.order_ = np.stack([run.order for run in runs])
            self.trajectory_ = np.stack([run.trajectory for run in runs])
            self.objective_ = np.stack([run.objective for run in runs])
            self.best_iteration_ = np.array([run.best_iteration for run in runs])
        return weights / len(runs)
