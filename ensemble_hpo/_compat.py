"""The one place that touches other libraries' private API, each use explained."""

from __future__ import annotations

import optuna
from optuna.trial import FrozenTrial, TrialState

__all__ = ["all_trials", "mark_trial_failed", "set_trial_system_attr"]


def mark_trial_failed(study: optuna.Study, trial: FrozenTrial, *, status: str) -> None:
    """Set a RUNNING trial of *another* (dead) process to FAIL.

    Optuna's public API only finishes trials through their own ``Trial`` object or
    ``study.tell``; ``tell`` refuses trials owned by another process's sampler
    state on some storages, so we go through the storage as Optuna's own
    ``fail_stale_trials`` does.
    """
    storage = study._storage  # noqa: SLF001 - no public handle to the storage
    storage.set_trial_user_attr(trial._trial_id, "status", status)  # noqa: SLF001
    storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)  # noqa: SLF001


def set_trial_system_attr(study: optuna.Study, trial: FrozenTrial, key: str, value: object) -> None:
    """Write a system attribute on a trial from inside a sampler hook.

    Samplers receive a ``FrozenTrial``; Optuna's own samplers (GridSampler,
    NSGA-II) record their bookkeeping through the storage the same way.
    """
    study._storage.set_trial_system_attr(trial._trial_id, key, value)  # noqa: SLF001


def all_trials(study: optuna.Study) -> list[FrozenTrial]:
    """Every trial of the study as stored, bypassing study views such as Hyperband's.

    Pruners like Hyperband hand samplers a study filtered to one bracket; grid
    claims must be checked against every trial.
    """
    return study._storage.get_all_trials(study._study_id, deepcopy=False)  # noqa: SLF001
