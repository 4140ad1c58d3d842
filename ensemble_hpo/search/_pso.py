"""Particle swarm optimisation as a stateless Optuna sampler."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
from optuna.distributions import BaseDistribution, FloatDistribution, IntDistribution
from optuna.study import Study, StudyDirection
from optuna.trial import FrozenTrial, TrialState

from ensemble_hpo.search._sampler_base import RandomFallbackSampler

__all__ = ["PSOSampler"]

NumericDistribution = IntDistribution | FloatDistribution

# Velocities are clamped so that one step never crosses more than half of a
# normalised dimension; without it particles oscillate between the bounds.
_MAX_VELOCITY = 0.5


def _is_numeric(distribution: BaseDistribution) -> bool:
    return isinstance(distribution, (IntDistribution, FloatDistribution))


def _bounds(distribution: NumericDistribution) -> tuple[float, float]:
    low, high = float(distribution.low), float(distribution.high)
    if distribution.log:
        return math.log(low), math.log(high)
    return low, high


def to_unit(value: float, distribution: NumericDistribution) -> float:
    """Map ``value`` to ``[0, 1]``, in log space for log-scaled distributions."""
    low, high = _bounds(distribution)
    if high == low:
        return 0.5
    x = math.log(value) if distribution.log else float(value)
    return min(1.0, max(0.0, (x - low) / (high - low)))


def from_unit(u: float, distribution: NumericDistribution) -> float | int:
    """Map ``u`` in ``[0, 1]`` back to a valid value of ``distribution`` (step and bounds)."""
    low, high = _bounds(distribution)
    x = low + min(1.0, max(0.0, float(u))) * (high - low)
    if distribution.log:
        x = math.exp(x)
    step = distribution.step
    if step is not None:
        x = distribution.low + round((x - distribution.low) / step) * step
    x = min(distribution.high, max(distribution.low, x))
    if isinstance(distribution, IntDistribution):
        return int(round(x))
    return float(x)


def numeric_intersection(trials: Iterable[FrozenTrial]) -> dict[str, NumericDistribution]:
    """Numeric, non-degenerate distributions shared (identically) by all ``trials``."""
    space: dict[str, BaseDistribution] | None = None
    for trial in trials:
        if space is None:
            space = dict(trial.distributions)
        else:
            space = {
                name: dist
                for name, dist in space.items()
                if trial.distributions.get(name) == dist
            }
    if not space:
        return {}
    return {
        name: dist
        for name, dist in sorted(space.items())
        if _is_numeric(dist) and not dist.single()
    }


def best_trial(trials: Iterable[FrozenTrial], direction: StudyDirection) -> FrozenTrial | None:
    """The best completed trial of ``trials`` for ``direction``, or ``None``."""
    done = [t for t in trials if t.state == TrialState.COMPLETE and t.value is not None]
    if not done:
        return None
    key = (lambda t: t.value) if direction == StudyDirection.MINIMIZE else (lambda t: -t.value)
    return min(done, key=key)


def _position(params: Mapping[str, Any], space: Mapping[str, NumericDistribution]) -> np.ndarray:
    return np.array([to_unit(params[name], dist) for name, dist in space.items()])


class PSOSampler(RandomFallbackSampler):
    """Particle swarm optimisation over the numeric part of a search space.

    The sampler keeps no state between trials: each particle's trajectory is
    rebuilt from the study's trials, so it works with any storage and with
    several processes. Trial ``n`` moves particle ``n % swarm_size``; the first
    ``swarm_size`` trials (the first generation) are random.

    Numeric parameters (int and float, log-scaled ones in log space) are
    normalised to ``[0, 1]``. Only numeric parameters present with the same
    distribution in every completed trial form the swarm's space; categorical
    and conditional parameters are sampled independently at random. PSO is
    therefore meant for numeric, single-family spaces; use
    :class:`~ensemble_hpo.search._genetic.GeneticSampler` for categorical or
    conditional spaces.

    Parameters
    ----------
    swarm_size : int, default=10
        Number of particles.
    inertia : float, default=0.7
        Weight of a particle's previous velocity.
    cognitive : float, default=1.5
        Pull towards the particle's own best position.
    social : float, default=1.5
        Pull towards the swarm's best position.
    seed : int or None, default=None
        Seed of the random number generators.

    Examples
    --------
    >>> import optuna
    >>> optuna.logging.set_verbosity(optuna.logging.WARNING)
    >>> study = optuna.create_study(sampler=PSOSampler(swarm_size=5, seed=0))
    >>> study.optimize(lambda t: (t.suggest_float("x", -5, 5) - 1) ** 2, n_trials=30)
    >>> study.best_value < 1.0
    True
    """

    def __init__(
        self,
        *,
        swarm_size: int = 10,
        inertia: float = 0.7,
        cognitive: float = 1.5,
        social: float = 1.5,
        seed: int | None = None,
    ) -> None:
        self.swarm_size = swarm_size
        self.inertia = inertia
        self.cognitive = cognitive
        self.social = social
        super().__init__(seed)

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        self._check_single_objective(study, trial)
        self._validate_params()

    def infer_relative_search_space(
        self, study: Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        completed = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        return dict(numeric_intersection(completed))

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        if not search_space or trial.number < self.swarm_size:
            return {}
        trials = study.get_trials(deepcopy=False)
        position = self._next_position(trials, trial.number, search_space, study.direction)
        if position is None:
            return {}
        pairs = zip(position, search_space.items(), strict=True)
        return {name: from_unit(u, dist) for u, (name, dist) in pairs}


    def _validate_params(self) -> None:
        if not isinstance(self.swarm_size, int) or self.swarm_size < 1:
            raise ValueError(
                "The 'swarm_size' parameter must be a positive int. "
                f"Got {self.swarm_size!r} instead."
            )
        for name in ("inertia", "cognitive", "social"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or value < 0:
                raise ValueError(
                    f"The '{name}' parameter must be a non-negative float. Got {value!r} instead."
                )

    def _next_position(
        self,
        trials: list[FrozenTrial],
        number: int,
        space: Mapping[str, NumericDistribution],
        direction: StudyDirection,
    ) -> np.ndarray | None:
        """Move the particle of trial ``number``; ``None`` if it has no usable history."""
        in_space = [t for t in trials if t.number < number and all(k in t.params for k in space)]
        history = [t for t in in_space if t.number % self.swarm_size == number % self.swarm_size]
        if not history:
            return None
        x = _position(history[-1].params, space)
        velocity = x - _position(history[-2].params, space) if len(history) > 1 else 0.0 * x
        own_best = best_trial(history, direction)
        swarm_best = best_trial(in_space, direction)
        p = x if own_best is None else _position(own_best.params, space)
        g = p if swarm_best is None else _position(swarm_best.params, space)
        r1, r2 = self._rng.uniform(size=(2, len(x)))
        velocity = (
            self.inertia * velocity + self.cognitive * r1 * (p - x) + self.social * r2 * (g - x)
        )
        velocity = np.clip(velocity, -_MAX_VELOCITY, _MAX_VELOCITY)
        return np.clip(x + velocity, 0.0, 1.0)

