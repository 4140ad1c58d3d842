"""Search strategies: thin factories of Optuna samplers plus optional seeding hooks.

A strategy is deliberately small: it makes an ``optuna.samplers.BaseSampler``
(so every strategy works with any Optuna study, storage and parallel worker)
and may propose trials to run first (grid points, hypergradient paths).
"""

from __future__ import annotations

import copy
import warnings
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna
from optuna.distributions import FloatDistribution, IntDistribution
from optuna.samplers import BaseSampler

from ensemble_hpo._checks import ParameterConflict
from ensemble_hpo.spaces import SearchSpace

__all__ = [
    "BayesianSearch",
    "EvolutionarySearch",
    "GradientSearch",
    "GridSearch",
    "RandomSearch",
    "SamplerStrategy",
    "SearchContext",
    "SearchStrategy",
    "STRATEGIES",
    "make_strategy",
]


@dataclass
class SearchContext:
    """What a strategy may look at before the search starts."""

    space: SearchSpace
    n_trials: int | None
    seed: int | None
    X: Any = None
    y: np.ndarray | None = None
    splits: list[tuple[np.ndarray, np.ndarray]] | None = None
    linear_features: Any = None  # callable returning X preprocessed for linear models


class SearchStrategy(ABC):
    """Base class of search strategies.

    Subclasses implement :meth:`make_sampler`; :meth:`initial_trials` is a no-op
    hook for strategies that know some points to try first.
    """

    name: str = "custom"

    @abstractmethod
    def make_sampler(self, space: SearchSpace, *, seed: int | None) -> BaseSampler:
        """Return a fresh Optuna sampler for ``space``."""

    def initial_trials(self, context: SearchContext) -> list[dict[str, Any]]:
        """Flat trial params to enqueue before sampling (default: none)."""
        return []

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({fields})"


class SamplerStrategy(SearchStrategy):
    """Wrap any ready-made Optuna sampler (a user's custom ``BaseSampler`` included)."""

    name = "sampler"

    def __init__(self, sampler: BaseSampler) -> None:
        self.sampler = sampler

    def make_sampler(self, space: SearchSpace, *, seed: int | None) -> BaseSampler:
        # A copy per fit, as the contract says: the sampler's random state advances as it
        # samples, so reusing the user's object made a second fit search other candidates.
        return copy.deepcopy(self.sampler)


class RandomSearch(SearchStrategy):
    """Random search, or quasi-random with ``qmc="sobol"`` / ``"halton"``."""

    name = "random"

    def __init__(self, qmc: str | None = None) -> None:
        if qmc not in (None, "sobol", "halton"):
            raise ValueError(f"The 'qmc' parameter must be None, 'sobol' or 'halton'. Got {qmc!r} instead.")
        self.qmc = qmc

    def make_sampler(self, space: SearchSpace, *, seed: int | None) -> BaseSampler:
        if self.qmc is None:
            return optuna.samplers.RandomSampler(seed=seed)
        return optuna.samplers.QMCSampler(qmc_type=self.qmc, scramble=True, seed=seed)


class BayesianSearch(SearchStrategy):
    """Bayesian optimisation: TPE (default) or a Gaussian process (``method="gp"``, needs torch)."""

    name = "bayesian"

    def __init__(self, method: str = "tpe", n_startup_trials: int = 10) -> None:
        if method not in ("tpe", "gp"):
            raise ValueError(f"The 'method' parameter must be 'tpe' or 'gp'. Got {method!r} instead.")
        self.method = method
        self.n_startup_trials = n_startup_trials

    def make_sampler(self, space: SearchSpace, *, seed: int | None) -> BaseSampler:
        if self.method == "gp":
            try:
                import torch  # noqa: F401
            except ImportError as exc:
                raise ImportError(
                    "The 'gp' search strategy needs PyTorch (Optuna's GPSampler uses it). Install it "
                    "with: pip install torch (the CPU build is enough), or use the 'tpe' strategy."
                ) from exc
            # Optuna's GPSampler models the intersection of the trials' spaces, like CMA-ES.
            _warn_without_shared_numeric("gp", space)
            return optuna.samplers.GPSampler(seed=seed, n_startup_trials=self.n_startup_trials)
        # multivariate+group model the conditional family space jointly; constant_liar
        # keeps parallel workers from proposing the same point.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.TPESampler(
                seed=seed, n_startup_trials=self.n_startup_trials, multivariate=True, group=True,
                constant_liar=True,
            )


class GridSearch(SearchStrategy):
    """Exhaustive grid: every point exactly once.

    Continuous ranges are discretised into ``resolution`` points (log-spaced on
    log scales, endpoints included); integer ranges with more values likewise.
    With a trial budget smaller than the grid, ``allow_truncation=False`` raises
    before anything is trained.
    """

    name = "grid"

    def __init__(self, resolution: int = 5, allow_truncation: bool = False) -> None:
        if int(resolution) < 2:
            raise ValueError(f"The 'resolution' parameter must be >= 2. Got {resolution!r} instead.")
        self.resolution = int(resolution)
        self.allow_truncation = allow_truncation

    def points(self, space: SearchSpace) -> list[dict[str, Any]]:
        from ensemble_hpo.search._grid import expand_grid

        points = []
        for family in space.families:
            for local in expand_grid(dict(family.params), resolution=self.resolution,
                                     conditions={k: dict(v) for k, v in family.conditions.items()}):
                points.append(space.to_trial_params(family.name, local))
        return points

    def check_budget(self, space: SearchSpace, n_trials: int | None, *, tried: int = 0,
                     spent: int = 0, other_trials: int = 0) -> int:
        """Raise unless ``n_trials`` leaves room for every grid point not yet tried.

        ``tried``: points a resumed study already tried; ``spent``: its trials that count
        toward ``n_trials`` (finished, waiting or about to be queued), of which
        ``other_trials`` are not grid points (warm starts, an earlier search). Returns the
        grid size.
        """
        size = len(self.points(space))
        pending = size - tried
        room = None if n_trials is None else max(0, n_trials - spent)
        if room is not None and pending > room and not self.allow_truncation:
            raise ParameterConflict(
                f"The grid has {size} points (resolution={self.resolution}), {pending} of them "
                f"not yet tried, but the 'n_trials' budget of {n_trials} leaves room for "
                f"{room} ({other_trials} trial(s) of the study are not grid points: warm starts "
                "or an earlier search). Raise n_trials, lower the resolution, or pass "
                "allow_truncation=True to evaluate only the first points."
            )
        return size

    def make_sampler(self, space: SearchSpace, *, seed: int | None) -> BaseSampler:
        from ensemble_hpo.search._grid import GridSampler

        return GridSampler(self.points(space), seed=seed)


class EvolutionarySearch(SearchStrategy):
    """Evolutionary search: ``"genetic"`` (mixed/conditional spaces), ``"cmaes"`` or ``"pso"``.

    CMA-ES and PSO move only the numeric parameters present in every trial; on a
    multi-family or purely conditional space there are none, every trial is random, and
    :meth:`make_sampler` warns (``UserWarning``) and suggests ``"genetic"`` or ``"tpe"``.
    """

    name = "evolutionary"

    def __init__(self, method: str = "genetic", population_size: int | None = None) -> None:
        if method not in ("genetic", "cmaes", "pso"):
            raise ValueError(
                f"The 'method' parameter must be 'genetic', 'cmaes' or 'pso'. Got {method!r} instead."
            )
        self.method = method
        self.population_size = population_size

    def make_sampler(self, space: SearchSpace, *, seed: int | None) -> BaseSampler:
        if self.method in ("cmaes", "pso"):
            _warn_without_shared_numeric(self.method, space)
        if self.method == "cmaes":
            return optuna.samplers.CmaEsSampler(
                seed=seed, popsize=self.population_size,
                independent_sampler=optuna.samplers.RandomSampler(seed=seed),
            )
        if self.method == "pso":
            from ensemble_hpo.search._pso import PSOSampler

            return PSOSampler(swarm_size=self.population_size or 10, seed=seed)
        from ensemble_hpo.search._genetic import GeneticSampler

        return GeneticSampler(population_size=self.population_size or 20, seed=seed)


def _warn_without_shared_numeric(method: str, space: SearchSpace) -> None:
    """Warn when ``method`` (cmaes, pso, gp) would degrade to random sampling on ``space``."""
    if _has_shared_numeric_param(space):
        return
    warnings.warn(
        f"The '{method}' strategy only moves numeric hyperparameters that every trial "
        f"shares, and this search space has none (it is conditional or has several model "
        f"families: {list(space.family_names)}), so every trial is sampled at random. Use the "
        "'genetic' or 'tpe' strategy for such spaces, or restrict the search to one model "
        "family with numeric hyperparameters.",
        UserWarning, stacklevel=3,
    )


def _has_shared_numeric_param(space: SearchSpace) -> bool:
    """Whether every trial of ``space`` samples some numeric parameter (what CMA-ES, PSO, GP move).

    Parameter names are prefixed by their family, so with several families no name is
    shared; within one family, conditional parameters are absent from some trials.
    """
    if len(space.families) != 1:
        return False
    family = space.families[0]
    return any(
        name not in family.conditions and isinstance(dist, (IntDistribution, FloatDistribution))
        for name, dist in family.params.items()
    )


class GradientSearch(SearchStrategy):
    """Hypergradient descent on the L2 strength of logistic / ridge regression.

    The points visited by the optimiser (``"lbfgs"`` or ``"adam"`` on log λ) are
    enqueued as real candidates; the remaining budget goes to TPE over the full space.
    """

    name = "gradient"

    def __init__(self, optimizer: str = "lbfgs", n_steps: int = 10, init_log_lambda: float = 0.0) -> None:
        if optimizer not in ("lbfgs", "adam"):
            raise ValueError(
                f"The 'optimizer' parameter must be 'lbfgs' or 'adam'. Got {optimizer!r} instead."
            )
        self.optimizer = optimizer
        self.n_steps = n_steps
        self.init_log_lambda = init_log_lambda

    def make_sampler(self, space: SearchSpace, *, seed: int | None) -> BaseSampler:
        return BayesianSearch().make_sampler(space, seed=seed)

    def initial_trials(self, context: SearchContext) -> list[dict[str, Any]]:
        from ensemble_hpo.search._hypergradient import hypergradient_search

        targets = {"logistic": "logistic", "ridge": "ridge"}
        families = [f for f in context.space.families if f.name in targets]
        if not families or context.linear_features is None:
            return []
        X = context.linear_features()
        y = np.asarray(context.y)
        result = hypergradient_search(
            X, y, context.splits, model=targets[families[0].name], optimizer=self.optimizer,
            n_steps=self.n_steps, init_log_lambda=self.init_log_lambda,
        )
        family = families[0]
        trials = []
        to_params = _lambda_to_params(family.name)
        for log_lambda in result.log_lambdas:
            point = _clip(family, to_params(log_lambda))
            if point is None:
                warnings.warn(f"The 'gradient' strategy seeds only numeric ranges; {family.name}'s "
                              f"{sorted(to_params(log_lambda))} is not one, so its search starts "
                              "without hypergradient points.", UserWarning, stacklevel=3)
                return []
            params = context.space.to_trial_params(family.name, point)
            if params not in trials:  # snapped points can coincide
                trials.append(params)
        return trials


def _lambda_to_params(family: str) -> Any:
    from ensemble_hpo.search._hypergradient import sklearn_param_from_log_lambda

    model = "logistic" if family == "logistic" else "ridge"
    return lambda log_lambda: sklearn_param_from_log_lambda(model, log_lambda)


def _clip(family: Any, params: dict[str, float]) -> dict[str, Any] | None:
    """A hypergradient point as a point of the family's declared distributions, or None.

    Clipped to the range and snapped to its step (rounded for an int): off-grid values were
    trained as they were, and an int ``C`` truncated 1.59 to 1 (audit). A parameter that is
    not a numeric range (a categorical ``C``) cannot take the point: None.
    """
    snapped: dict[str, Any] = {}
    for key, value in params.items():
        dist = family.params.get(key)
        if dist is None:
            snapped[key] = value
            continue
        if not isinstance(dist, FloatDistribution | IntDistribution):
            return None
        value = float(np.clip(value, dist.low, dist.high))
        if dist.step is not None:
            value = dist.low + round((value - dist.low) / dist.step) * dist.step
            value = min(value, dist.high)
        snapped[key] = int(round(value)) if isinstance(dist, IntDistribution) else value
    return snapped


#: The search stage's names, read by the estimators and the YAML configuration alike.
STRATEGIES: dict[str, Any] = {
    "random": lambda: RandomSearch(),
    "sobol": lambda: RandomSearch(qmc="sobol"),
    "halton": lambda: RandomSearch(qmc="halton"),
    "tpe": lambda: BayesianSearch("tpe"),
    "bayesian": lambda: BayesianSearch("tpe"),
    "gp": lambda: BayesianSearch("gp"),
    "grid": lambda: GridSearch(),
    "evolutionary": lambda: EvolutionarySearch("genetic"),
    "genetic": lambda: EvolutionarySearch("genetic"),
    "cmaes": lambda: EvolutionarySearch("cmaes"),
    "pso": lambda: EvolutionarySearch("pso"),
    "gradient": lambda: GradientSearch(),
}


def make_strategy(search: Any) -> SearchStrategy:
    """Resolve a strategy name, a :class:`SearchStrategy` or an Optuna sampler."""
    if isinstance(search, SearchStrategy):
        return search
    if isinstance(search, BaseSampler):
        return SamplerStrategy(search)
    if isinstance(search, str) and search in STRATEGIES:
        return STRATEGIES[search]()
    raise ValueError(
        f"The 'search' parameter must be one of {sorted(STRATEGIES)}, a SearchStrategy or an "
        f"optuna.samplers.BaseSampler. Got {search!r} instead."
    )
