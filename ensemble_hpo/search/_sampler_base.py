"""Shared plumbing of this project's Optuna samplers (PSO, genetic)."""

from __future__ import annotations

from typing import Any

import numpy as np
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler, RandomSampler
from optuna.study import Study
from optuna.trial import FrozenTrial

from ensemble_hpo._compat import mark_trial_failed

__all__ = ["RandomFallbackSampler"]


class RandomFallbackSampler(BaseSampler):
    """A seeded sampler whose parameters fall back to random sampling by default.

    Subclasses override the relative hooks or ``sample_independent`` where they
    know better; everything else is sampled like ``RandomSampler(seed)``.
    """

    def __init__(self, seed: int | None = None) -> None:
        self.seed = seed
        self._rng = np.random.RandomState(seed)
        self._random_sampler = RandomSampler(seed=seed)

    def reseed_rng(self) -> None:
        self._rng.seed()
        self._random_sampler.reseed_rng()

    def infer_relative_search_space(self, study: Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        return {}

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        return {}

    def sample_independent(
        self, study: Study, trial: FrozenTrial, param_name: str, param_distribution: BaseDistribution
    ) -> Any:
        return self._random_sampler.sample_independent(study, trial, param_name, param_distribution)

    @staticmethod
    def _check_single_objective(study: Study, trial: FrozenTrial) -> None:
        if len(study.directions) > 1:
            # Optuna has already created the trial: left RUNNING, it stayed in a persistent
            # storage as a live claimant (audit).
            mark_trial_failed(study, trial, status="failed")
            raise ValueError(
                "This sampler does not support multi-objective optimisation: it optimises one objective. "
                f"Got a study with {len(study.directions)} objectives instead."
            )
