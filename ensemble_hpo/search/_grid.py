"""Exhaustive grid search over an explicit list of points, safe for shared storages."""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.samplers import BaseSampler
from optuna.study import Study
from optuna.trial import FrozenTrial, TrialState

from ensemble_hpo._compat import all_trials, set_trial_system_attr

__all__ = ["GridSampler", "expand_grid", "grid_size"]

GRID_ATTR_PREFIX = "ensemble_hpo:grid:"
# Claim value of a trial that found every point taken: it must not evaluate anything.
EXHAUSTED = -1
# A point whose trial failed is retried once (e.g. when resuming an interrupted
# study); failing twice means the point itself is broken, so it counts as done.
_MAX_ATTEMPTS = 2
# Claim conflicts need two processes picking the same point within one storage
# round trip; they resolve in a few attempts, so hitting this bound means a bug.
_MAX_CLAIM_ATTEMPTS = 100


def _axis(distribution: BaseDistribution, resolution: int) -> list[Any]:
    """The finite values one parameter takes in the grid."""
    if isinstance(distribution, CategoricalDistribution):
        return list(distribution.choices)
    if distribution.single():
        return [distribution.low]
    is_int = isinstance(distribution, IntDistribution)
    step = distribution.step
    if step is not None:
        n_values = int(round((distribution.high - distribution.low) / step)) + 1
        if n_values <= resolution:
            values = [distribution.low + i * step for i in range(n_values)]
            return [int(v) if is_int else float(v) for v in values]
    low, high = float(distribution.low), float(distribution.high)
    spacing = np.geomspace if distribution.log else np.linspace
    spaced = spacing(low, high, resolution)
    if step is not None:
        spaced = distribution.low + np.round((spaced - distribution.low) / step) * step
        spaced = np.clip(spaced, distribution.low, distribution.high)
    if is_int:
        return sorted({int(round(v)) for v in spaced})
    return sorted({float(v) for v in spaced})


def _validate_expand_args(
    distributions: Mapping[str, BaseDistribution],
    resolution: int,
    conditions: Mapping[str, Mapping[str, Sequence[Any]]],
) -> None:
    is_int = isinstance(resolution, (int, np.integer)) and not isinstance(resolution, bool)
    if not is_int or resolution < 2:
        raise ValueError(
            f"The 'resolution' parameter must be an int >= 2. Got {resolution!r} instead."
        )
    for name, dist in distributions.items():
        if not isinstance(dist, (CategoricalDistribution, IntDistribution, FloatDistribution)):
            raise ValueError(
                f"The 'distributions' parameter must map names to optuna distributions. "
                f"Got {dist!r} for {name!r} instead."
            )
    for child, parents in conditions.items():
        unknown = [p for p in parents if p not in distributions]
        if child in distributions and unknown:
            raise ValueError(
                "The 'conditions' parameter must only use parents in 'distributions'. "
                f"Got unknown parents {unknown} for {child!r} instead."
            )


def _apply_conditions(
    point: dict[str, Any], conditions: Mapping[str, Mapping[str, Sequence[Any]]]
) -> dict[str, Any]:
    """Drop inactive children, repeating until stable so that chains of conditions work."""
    changed = True
    while changed:
        changed = False
        for child, parents in conditions.items():
            active = all(
                parent in point and point[parent] in allowed for parent, allowed in parents.items()
            )
            if child in point and not active:
                del point[child]
                changed = True
    return point


def _point_key(point: Mapping[str, Any]) -> str:
    return json.dumps(sorted(point.items(), key=lambda kv: kv[0]), default=repr)


def expand_grid(
    distributions: Mapping[str, BaseDistribution],
    *,
    resolution: int = 5,
    conditions: Mapping[str, Mapping[str, Sequence[Any]]] | None = None,
) -> list[dict[str, Any]]:
    """Enumerate a finite grid over ``distributions``.

    Categoricals take all their choices; integers take all their values when
    there are at most ``resolution`` of them and otherwise ``resolution``
    evenly spaced values (log-spaced for log distributions; rounding can merge
    a few, duplicates are removed); floats take ``resolution`` evenly spaced
    values (log-spaced for log distributions) including both endpoints, snapped
    to ``step`` when there is one.

    Parameters
    ----------
    distributions : dict of str to BaseDistribution
        Parameter names and their Optuna distributions.
    resolution : int, default=5
        Number of values per numeric parameter (at least 2).
    conditions : dict of str to dict of str to list, default=None
        ``{child: {parent: allowed_values}}``: ``child`` only appears in points
        whose ``parent`` value is in ``allowed_values`` (for every listed
        parent). Points that become identical are kept once. Conditions on
        children absent from ``distributions`` are ignored, so one mapping can
        serve every model family.

    Returns
    -------
    list of dict
        The grid points, in the order of the Cartesian product.

    Examples
    --------
    >>> from optuna.distributions import CategoricalDistribution, FloatDistribution
    >>> space = {
    ...     "kernel": CategoricalDistribution(["linear", "rbf"]),
    ...     "gamma": FloatDistribution(1e-3, 1e-1, log=True),
    ... }
    >>> grid = expand_grid(space, resolution=3, conditions={"gamma": {"kernel": ["rbf"]}})
    >>> len(grid)
    4
    >>> grid[0]
    {'kernel': 'linear'}
    """
    conditions = {} if conditions is None else conditions
    _validate_expand_args(distributions, resolution, conditions)
    names = list(distributions)
    axes = [_axis(distributions[name], int(resolution)) for name in names]
    points: dict[str, dict[str, Any]] = {}
    for values in itertools.product(*axes):
        point = _apply_conditions(dict(zip(names, values, strict=True)), conditions)
        points.setdefault(_point_key(point), point)
    return list(points.values())


def grid_size(
    distributions: Mapping[str, BaseDistribution],
    *,
    resolution: int = 5,
    conditions: Mapping[str, Mapping[str, Sequence[Any]]] | None = None,
) -> int:
    """Number of points :func:`expand_grid` returns for the same arguments."""
    return len(expand_grid(distributions, resolution=resolution, conditions=conditions))


def is_choice(value: Any, choices: Sequence[Any]) -> bool:
    # ``True == 1`` in Python, but a bool choice must not stand in for an int one.
    return any(value == c and isinstance(value, bool) == isinstance(c, bool) for c in choices)


def value_fits(distribution: BaseDistribution, value: Any) -> bool:
    """Whether ``value`` is a point of ``distribution``: a choice, or a number in its range and
    on its step grid (samplers that reuse values, the grid's points and a genetic child's
    inherited ones, gave off-grid values to stepped parameters; audit)."""
    if isinstance(distribution, CategoricalDistribution):
        return is_choice(value, distribution.choices)
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) or math.isnan(value):
        return False
    if not distribution.low <= value <= distribution.high:
        return False
    step = getattr(distribution, "step", None)
    if step is None:
        return True
    steps = (value - distribution.low) / step
    return abs(steps - round(steps)) <= 1e-8 * max(1.0, abs(steps))


class GridSampler(BaseSampler):
    """Evaluate each point of an explicit grid exactly once.

    Every trial claims one point index in its system attributes before the
    objective runs. A claim is kept only if, after writing it, no other live
    trial holds the same index, so two trials (threads or processes sharing a
    storage) never evaluate the same point. A point whose trial
    failed is claimed again once every untried point is taken (so resuming a
    study retries it and skips the evaluated ones), but a point that failed
    twice counts as done. A trial left ``RUNNING`` by a killed process keeps its
    point; mark such trials failed (e.g. Optuna's heartbeat) to retry them.
    Claims are keyed by a fingerprint of ``points``, so a different grid in the
    same study starts afresh.

    When every point is taken, the study is stopped (:meth:`optuna.study.Study.stop`,
    inside ``optimize``) and the trial that found nothing left is pruned at
    its first suggestion instead of repeating a point.

    Parameters
    ----------
    points : list of dict
        Full parameter dicts, one per grid point. Points may have different
        keys (e.g. one model family each); see :func:`expand_grid`.
    seed : int or None, default=None
        ``None`` evaluates points in the given order; an int evaluates them in
        a random order drawn from ``seed``, so a truncated search still covers
        the grid evenly.

    Examples
    --------
    >>> import optuna
    >>> optuna.logging.set_verbosity(optuna.logging.WARNING)
    >>> points = [{"x": 1}, {"x": 2}, {"x": 3}]
    >>> study = optuna.create_study(sampler=GridSampler(points))
    >>> study.optimize(lambda t: t.suggest_int("x", 0, 5) ** 2, n_trials=10)
    >>> sorted(t.params["x"] for t in study.trials if t.params)
    [1, 2, 3]
    """

    def __init__(self, points: Sequence[Mapping[str, Any]], *, seed: int | None = None) -> None:
        self.points = points
        self.seed = seed
        # Only used to spread concurrent claimers after a conflict.
        self._rng = np.random.RandomState(seed)

    @property
    def n_points(self) -> int:
        """Number of grid points."""
        return len(self.points)

    def claimed_trials(self, trials: Sequence[FrozenTrial]) -> list[FrozenTrial]:
        """The ``trials`` that tried a grid point (finished, failed or running)."""
        return _claimed(trials, self._claim_key())

    def tried_points(self, trials: Sequence[FrozenTrial]) -> int:
        """How many grid points ``trials`` tried (a failed one counts: it was tried)."""
        key = self._claim_key()
        return len({t.system_attrs[key] for t in _claimed(trials, key)})

    def reseed_rng(self) -> None:
        self._rng.seed()

    def infer_relative_search_space(
        self, study: Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        return {}

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        return {}

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        self._validate_points()
        key = self._claim_key()
        if "fixed_params" in trial.system_attrs or key in trial.system_attrs:
            return
        if self._claim(study, trial, key) == EXHAUSTED:
            try:
                study.stop()
            except RuntimeError:
                pass  # Outside ``optimize`` (ask-and-tell) there is no loop to stop.

    def sample_independent(
        self,
        study: Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        index = trial.system_attrs.get(self._claim_key())
        if index is None:
            raise RuntimeError(
                f"Trial {trial.number} holds no grid point: an enqueued trial must fix every "
                f"parameter the objective suggests (it lacks {param_name!r}), and GridSampler "
                "samples only the trials it prepared in before_trial."
            )
        if index == EXHAUSTED:
            raise optuna.TrialPruned("Every grid point is already evaluated or running.")
        point = self.points[index]
        if param_name not in point:
            raise ValueError(
                f"The grid point #{index} {dict(point)!r} has no value for parameter "
                f"{param_name!r}; every parameter the objective suggests must be in the point."
            )
        value = point[param_name]
        if not value_fits(param_distribution, value):
            raise ValueError(
                f"The grid point #{index} {dict(point)!r} sets {param_name!r} to {value!r}, "
                f"which is not a point of {param_distribution!r} (outside it or off its step)."
            )
        return value.item() if isinstance(value, np.generic) else value

    def _validate_points(self) -> None:
        points = self.points
        if (
            isinstance(points, (str, Mapping))
            or not isinstance(points, Sequence)
            or not points
            or not all(isinstance(p, Mapping) for p in points)
        ):
            raise ValueError(
                "The 'points' parameter must be a non-empty list of parameter dicts. "
                f"Got {type(points).__name__} instead."
            )

    def _claim_key(self) -> str:
        # Hashing every point costs ~1 s for a 2,000-point grid and this runs once per
        # parameter of every trial, so the key is cached for the (unchanged) point list.
        cached = getattr(self, "_cached_claim_key", None)
        if cached is not None and cached[0] is self.points:
            return cached[1]
        digest = hashlib.sha1(
            json.dumps([_point_key(p) for p in self.points]).encode()
        ).hexdigest()
        key = GRID_ATTR_PREFIX + digest[:16]
        self._cached_claim_key = (self.points, key)
        return key

    def _order(self) -> list[int]:
        if self.seed is None:
            return list(range(len(self.points)))
        return [int(i) for i in np.random.RandomState(self.seed).permutation(len(self.points))]

    def _claim(self, study: Study, trial: FrozenTrial, key: str) -> int:
        """Claim a free point index for ``trial`` and return it (or ``EXHAUSTED``).

        Safety: a claim is kept only when a read *after* writing it shows no other
        live claimant. Of two trials claiming the same index, the later reader
        always sees the earlier writer, so at most one keeps it.
        """
        order = self._order()
        conflicts = 0
        for _ in range(_MAX_CLAIM_ATTEMPTS):
            others = _other_trials(study, trial)
            free = _free_indices(others, key, order)
            if not free:
                set_trial_system_attr(study, trial, key, EXHAUSTED)
                return EXHAUSTED
            # Trials created just before this one are claiming concurrently and see
            # the same free list, so start at a different place; jitter after conflicts.
            offset = sum(1 for t in others if t.number < trial.number and _is_claiming(t, key))
            if conflicts:
                offset += self._rng.randint(len(free))
            candidate = free[offset % len(free)]
            set_trial_system_attr(study, trial, key, candidate)
            others = _other_trials(study, trial)
            if candidate not in _taken_indices(others, key):
                return candidate
            conflicts += 1
        set_trial_system_attr(study, trial, key, EXHAUSTED)
        raise RuntimeError(f"Trial {trial.number} could not claim a grid point.")


def _other_trials(study: Study, trial: FrozenTrial) -> list[FrozenTrial]:
    trials = all_trials(study)
    return [t for t in trials if t.number != trial.number]


def _is_claiming(trial: FrozenTrial, key: str) -> bool:
    return trial.state == TrialState.RUNNING and key not in trial.system_attrs


def _free_indices(trials: Sequence[FrozenTrial], key: str, order: Sequence[int]) -> list[int]:
    """Claimable indices: untried points first, then points that failed once, in ``order``."""
    taken = _taken_indices(trials, key)
    failures = Counter(
        t.system_attrs[key] for t in trials if t.state == TrialState.FAIL and key in t.system_attrs
    )
    free = [i for i in order if i not in taken and failures[i] < _MAX_ATTEMPTS]
    return sorted(free, key=lambda i: failures[i])  # stable: keeps ``order`` within a tier


def _taken_indices(trials: Sequence[FrozenTrial], key: str) -> set[int]:
    """Indices held by trials that evaluated, or may still evaluate, their point.

    A failed trial gives its point back (it may be tried again).
    """
    return {t.system_attrs[key] for t in _claimed(trials, key) if t.state != TrialState.FAIL}


def _claimed(trials: Sequence[FrozenTrial], key: str) -> list[FrozenTrial]:
    """Trials holding a point of the grid ``key``.

    A trial pruned before it sampled anything (one a worker started past the study's
    budget, see ``search._runner.WithinBudget``) never tried its point.
    """
    return [t for t in trials if key in t.system_attrs and t.system_attrs[key] != EXHAUSTED
            and not (t.state == TrialState.PRUNED and not t.params)]
