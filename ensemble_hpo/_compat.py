"""The one place that touches other libraries' private API, each use explained."""

from __future__ import annotations

import optuna
from optuna.trial import FrozenTrial, TrialState

__all__ = ["mark_trial_failed"]


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
