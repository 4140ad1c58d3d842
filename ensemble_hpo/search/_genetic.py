"""A genetic algorithm sampler for mixed, categorical and conditional spaces."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from optuna.distributions import BaseDistribution, CategoricalDistribution, IntDistribution
from optuna.study import Study, StudyDirection
from optuna.trial import FrozenTrial, TrialState

from ensemble_hpo._compat import set_trial_system_attr
from ensemble_hpo.search._grid import is_choice, value_fits
from ensemble_hpo.search._pso import from_unit, to_unit
from ensemble_hpo.search._sampler_base import RandomFallbackSampler

__all__ = ["GeneticSampler"]

PARENTS_ATTR = "ensemble_hpo:ga_parents"
PARENT_PARAMS_ATTR = "ensemble_hpo:ga_parent_params"
FORCED_MUTATION_ATTR = "ensemble_hpo:ga_forced_mutation"
CHILD_ATTR = "ensemble_hpo:ga_child"
ATTEMPTS_ATTR = "ensemble_hpo:ga_breeding_attempts"

# Standard deviation of a numeric mutation in normalised [0, 1] space.
_MUTATION_SCALE = 0.1
_CROSSOVERS = ("uniform",)
# Breeding attempts before a child that repeats an earlier trial is accepted anyway.
_CLONE_RETRIES = 20


def _can_change(distribution: BaseDistribution) -> bool:
    """Whether a mutation can give another value: two choices, or a range wider than a point."""
    if isinstance(distribution, CategoricalDistribution):
        return len(distribution.choices) > 1
    return distribution.high > distribution.low


def _params_key(params: Mapping[str, Any]) -> str:
    return repr(sorted(params.items()))


def _unique_params(trials: Sequence[FrozenTrial]) -> list[FrozenTrial]:
    """First trial of each distinct parameter set; clones would crowd the elite pool."""
    seen: set[str] = set()
    unique = []
    for trial in trials:
        key = _params_key(trial.params)
        if key not in seen:
            seen.add(key)
            unique.append(trial)
    return unique


class GeneticSampler(RandomFallbackSampler):
    """Genetic algorithm over mixed, categorical and conditional search spaces.

    Once ``population_size`` trials have been started, each new trial gets two
    parents, chosen by tournament selection among the best ``population_size``
    completed trials (respecting the study direction), and is bred whole before the
    objective asks for anything (:meth:`_breed`): the parameter names of one parent
    (conditional spaces: the ``"family"`` categorical and that family's parameters),
    each value from either parent where both have it (uniform crossover), then
    mutation. A child that repeats an earlier trial exactly is bred again (up to 20
    times). A parameter the plan lacks (a mutated choice that opens another branch)
    is inherited from a parent that has it, or sampled at random.

    Each parameter mutates with probability ``mutation_rate``: numeric
    parameters take a Gaussian step (scale 0.1) in normalised, log-aware
    ``[0, 1]`` space (at least one grid step for integers and stepped ranges);
    categorical parameters take another choice. One parameter that can change always
    mutates; duplicate parameter sets are dropped from the elite pool.

    Parameters
    ----------
    population_size : int, default=20
        Size of the random first generation and of the elite pool parents
        are drawn from.
    mutation_rate : float or None, default=0.1
        Per-parameter mutation probability. ``None`` means ``1 / n_params``,
        where ``n_params`` counts the distinct parameters of both parents.
    crossover : {"uniform"}, default="uniform"
        Crossover operator.
    tournament_size : int, default=3
        Number of pool members competing for each parent slot.
    seed : int or None, default=None
        Seed of the random number generators.

    Examples
    --------
    >>> import optuna
    >>> optuna.logging.set_verbosity(optuna.logging.WARNING)
    >>> def objective(trial):
    ...     kind = trial.suggest_categorical("kind", ["a", "b"])
    ...     x = trial.suggest_float(f"{kind}__x", -5, 5)
    ...     return (x - 1) ** 2 + (kind == "b")
    >>> study = optuna.create_study(sampler=GeneticSampler(population_size=10, seed=0))
    >>> study.optimize(objective, n_trials=60)
    >>> study.best_value < 1.0
    True
    """

    def __init__(
        self,
        *,
        population_size: int = 20,
        mutation_rate: float | None = 0.1,
        crossover: str = "uniform",
        tournament_size: int = 3,
        seed: int | None = None,
    ) -> None:
        self.population_size = population_size
        self.mutation_rate = mutation_rate
        self.crossover = crossover
        self.tournament_size = tournament_size
        super().__init__(seed)

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        self._check_single_objective(study, trial)
        self._validate_params()
        if trial.number < self.population_size or "fixed_params" in trial.system_attrs:
            return
        completed = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        parents = self._select_parents(completed, study.direction)
        if parents is None:
            return
        set_trial_system_attr(study, trial, PARENTS_ATTR, [p.number for p in parents])
        set_trial_system_attr(study, trial, PARENT_PARAMS_ATTR, [dict(p.params) for p in parents])
        taken = {_params_key(t.params) for t in study.get_trials(deepcopy=False) if t.params}
        for attempt in range(_CLONE_RETRIES):
            child, forced = self._breed(parents, heat=attempt / _CLONE_RETRIES)
            if _params_key(child) not in taken:
                break
        set_trial_system_attr(study, trial, CHILD_ATTR, child)
        set_trial_system_attr(study, trial, ATTEMPTS_ATTR, attempt + 1)
        if forced is not None:
            set_trial_system_attr(study, trial, FORCED_MUTATION_ATTR, forced)

    def _breed(self, parents: Sequence[FrozenTrial],
               heat: float = 0.0) -> tuple[dict[str, Any], str | None]:
        """A child's parameters (crossover, then mutation) and the parameter forced to mutate.

        The child is planned whole before the objective asks for anything, so a clone of an
        earlier trial can be bred again (a lazy, per-parameter child of a genetic search was
        an exact repeat of an earlier trial 39-56 % of the time). It takes the parameter
        names of one parent (both, when they share them), values from either parent where
        both have one (from its own where they disagree on the structure), and one parameter
        that can change always mutates. ``heat`` in ``[0, 1)`` (the share of attempts spent on
        clones) raises the mutation rate and step: a converged pool has explored its parents'
        near neighbours.
        """
        rate = min(1.0, self._mutation_probability([parents[0].params, parents[1].params]) + heat)
        scale = _MUTATION_SCALE * (1.0 + 4.0 * heat)
        first = int(self._rng.randint(2))
        own, other = parents[first], parents[1 - first]
        same = set(own.params) == set(other.params)
        child: dict[str, Any] = {}
        for name, value in own.params.items():
            if same and self._rng.uniform() < 0.5 and value_fits(own.distributions[name],
                                                                 other.params[name]):
                value = other.params[name]
            if self._rng.uniform() < rate:
                value = self._mutate(own.distributions[name], value, scale)
            child[name] = value
        mutable = sorted(n for n, d in own.distributions.items()
                         if _can_change(d) and (same or n not in other.params))
        # A numeric step is a local move; a forced categorical one (the family, a kernel) jumps
        # to another branch, which half the children taking it made the search worse than random.
        numeric = [n for n in mutable if not isinstance(own.distributions[n], CategoricalDistribution)]
        mutable = numeric or mutable
        if not mutable:
            return child, None
        forced = mutable[self._rng.randint(len(mutable))]
        child[forced] = self._mutate(own.distributions[forced], child[forced], scale)
        return child, forced

    def sample_independent(
        self,
        study: Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        planned = trial.system_attrs.get(CHILD_ATTR, {})
        if param_name in planned and value_fits(param_distribution, planned[param_name]):
            return planned[param_name]
        # A parameter off the plan (a mutated choice opened another branch): inherit it lazily.
        parents: Sequence[Mapping[str, Any]] = trial.system_attrs.get(PARENT_PARAMS_ATTR, ())
        dist = param_distribution
        # A parent of another family lacks the parameter; ``p.get`` would give None, which is a
        # valid choice of some categoricals (max_depth), so membership is checked first.
        values = [p[param_name] for p in parents if param_name in p and value_fits(dist, p[param_name])]
        if not values:
            return self._random_sampler.sample_independent(
                study, trial, param_name, param_distribution
            )
        value = values[self._rng.randint(len(values))]
        if self._rng.uniform() < self._mutation_probability(parents):
            value = self._mutate(param_distribution, value)
        return value

    def _validate_params(self) -> None:
        for name in ("population_size", "tournament_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 2:
                raise ValueError(
                    f"The '{name}' parameter must be an int >= 2. Got {value!r} instead."
                )
        rate = self.mutation_rate
        if rate is not None and not (isinstance(rate, (int, float)) and 0 <= rate <= 1):
            raise ValueError(
                "The 'mutation_rate' parameter must be a float in [0, 1] or None. "
                f"Got {rate!r} instead."
            )
        if self.crossover not in _CROSSOVERS:
            raise ValueError(
                f"The 'crossover' parameter must be one of {_CROSSOVERS}. "
                f"Got {self.crossover!r} instead."
            )

    def _select_parents(
        self, completed: Sequence[FrozenTrial], direction: StudyDirection
    ) -> tuple[FrozenTrial, FrozenTrial] | None:
        """Two tournament winners from the elite pool; ``None`` before two trials completed."""
        sign = 1.0 if direction == StudyDirection.MINIMIZE else -1.0
        ranked = sorted(
            (t for t in completed if t.value is not None), key=lambda t: sign * t.value
        )
        pool = _unique_params(ranked)[: self.population_size]
        if len(pool) < 2:
            return None
        first = self._tournament(len(pool), exclude=None)
        second = self._tournament(len(pool), exclude=first)
        return pool[first], pool[second]

    def _tournament(self, pool_size: int, exclude: int | None) -> int:
        # The pool is sorted best first, so the smallest drawn rank wins.
        candidates = [i for i in range(pool_size) if i != exclude]
        size = min(self.tournament_size, len(candidates))
        drawn = self._rng.choice(len(candidates), size=size, replace=False)
        return candidates[int(drawn.min())]

    def _mutation_probability(self, parents: Sequence[Mapping[str, Any]]) -> float:
        if self.mutation_rate is not None:
            return float(self.mutation_rate)
        n_params = len({name for p in parents for name in p})
        return 1.0 / max(n_params, 1)

    def _mutate(self, distribution: BaseDistribution, value: Any,
                scale: float = _MUTATION_SCALE) -> Any:
        """Another value of ``distribution`` near ``value`` (the same only when none other exists)."""
        if isinstance(distribution, CategoricalDistribution):
            others = [c for c in distribution.choices if not is_choice(c, [value])]
            return others[self._rng.randint(len(others))] if others else value
        u, step = to_unit(value, distribution), self._rng.normal(scale=scale)
        for candidate in (u + step, u - step):  # the other way when a bound clipped the step
            mutated = from_unit(candidate, distribution)
            if mutated != value or not _can_change(distribution):
                return mutated
        if not (isinstance(distribution, IntDistribution) or distribution.step):
            return mutated  # a float a zero step left in place: nothing to round back
        # A small step rounded back onto an int or stepped grid: one grid step, inside the bounds.
        grid = distribution.step or 1
        return value + grid if value + grid <= distribution.high else value - grid
