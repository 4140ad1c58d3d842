"""A genetic algorithm sampler for mixed, categorical and conditional spaces."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from optuna.distributions import BaseDistribution, CategoricalDistribution
from optuna.study import Study, StudyDirection
from optuna.trial import FrozenTrial, TrialState

from ensemble_hpo._compat import set_trial_system_attr
from ensemble_hpo.search._grid import is_choice
from ensemble_hpo.search._pso import from_unit, to_unit
from ensemble_hpo.search._sampler_base import RandomFallbackSampler

__all__ = ["GeneticSampler"]

PARENTS_ATTR = "ensemble_hpo:ga_parents"
PARENT_PARAMS_ATTR = "ensemble_hpo:ga_parent_params"
FORCED_MUTATION_ATTR = "ensemble_hpo:ga_forced_mutation"

# Standard deviation of a numeric mutation in normalised [0, 1] space.
_MUTATION_SCALE = 0.1
_CROSSOVERS = ("uniform",)


def _contains(distribution: BaseDistribution, value: Any) -> bool:
    """Whether ``value`` can be used for ``distribution`` (a parent may have had another range)."""
    if isinstance(distribution, CategoricalDistribution):
        return is_choice(value, distribution.choices)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return distribution.low <= value <= distribution.high


def _unique_params(trials: Sequence[FrozenTrial]) -> list[FrozenTrial]:
    """First trial of each distinct parameter set; clones would crowd the elite pool."""
    seen: set[str] = set()
    unique = []
    for trial in trials:
        key = repr(sorted(trial.params.items()))
        if key not in seen:
            seen.add(key)
            unique.append(trial)
    return unique


class GeneticSampler(RandomFallbackSampler):
    """Genetic algorithm over mixed, categorical and conditional search spaces.

    Once ``population_size`` trials have been started, each new trial gets two
    parents, chosen by tournament selection among the best ``population_size``
    completed trials (respecting the study direction). The parents' parameters
    are stored in the trial's system attributes, so crossover can happen lazily,
    one parameter at a time, as the objective asks for it (uniform crossover):
    a requested parameter comes from a random parent that has a valid value for
    it, or is sampled at random when neither has. This makes conditional spaces
    work naturally: the ``"family"`` categorical is inherited like any other
    parameter, and a child of two different-family parents takes each of its
    family's parameters from whichever parent has them.

    Each inherited parameter mutates with probability ``mutation_rate``: numeric
    parameters take a Gaussian step (scale 0.1) in normalised, log-aware
    ``[0, 1]`` space; categorical parameters are resampled uniformly. One
    parameter of the parents, drawn per trial, always mutates, so that children
    are rarely clones; duplicate parameter sets are dropped from the elite pool.

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
        self._check_single_objective(study)
        self._validate_params()
        if trial.number < self.population_size or "fixed_params" in trial.system_attrs:
            return
        completed = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        parents = self._select_parents(completed, study.direction)
        if parents is None:
            return
        set_trial_system_attr(study, trial, PARENTS_ATTR, [p.number for p in parents])
        parent_params = [dict(p.params) for p in parents]
        set_trial_system_attr(study, trial, PARENT_PARAMS_ATTR, parent_params)
        # One parameter always mutates, otherwise low mutation rates mostly breed clones.
        names = sorted({name for params in parent_params for name in params})
        if names:
            forced = names[self._rng.randint(len(names))]
            set_trial_system_attr(study, trial, FORCED_MUTATION_ATTR, forced)

    def sample_independent(
        self,
        study: Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        parents: Sequence[Mapping[str, Any]] = trial.system_attrs.get(PARENT_PARAMS_ATTR, ())
        dist = param_distribution
        # A parent of another family lacks the parameter; ``p.get`` would give None, which is a
        # valid choice of some categoricals (max_depth), so membership is checked first.
        values = [p[param_name] for p in parents if param_name in p and _contains(dist, p[param_name])]
        if not values:
            return self._random_sampler.sample_independent(
                study, trial, param_name, param_distribution
            )
        value = values[self._rng.randint(len(values))]
        forced = trial.system_attrs.get(FORCED_MUTATION_ATTR) == param_name
        if self._rng.uniform() < self._mutation_probability(parents) or forced:
            value = self._mutate(study, trial, param_name, param_distribution, value)
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

    def _mutate(
        self,
        study: Study,
        trial: FrozenTrial,
        param_name: str,
        distribution: BaseDistribution,
        value: Any,
    ) -> Any:
        if isinstance(distribution, CategoricalDistribution):
            return self._random_sampler.sample_independent(study, trial, param_name, distribution)
        u = to_unit(value, distribution) + self._rng.normal(scale=_MUTATION_SCALE)
        return from_unit(u, distribution)
