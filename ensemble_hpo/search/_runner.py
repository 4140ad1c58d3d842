"""Drives an Optuna study: sequentially in this process or across worker processes."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence
from typing import Any

import joblib
import optuna
from joblib import Parallel, delayed
from optuna.study import MaxTrialsCallback
from optuna.trial import TrialState

from ensemble_hpo.search._strategy import SearchStrategy
from ensemble_hpo.spaces import SearchSpace
from ensemble_hpo.storage import make_storage

__all__ = ["count_finished", "enqueue_new", "fail_stale_trials", "optimize", "quiet_optuna"]

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


@contextlib.contextmanager
def quiet_optuna(verbose: int = 0) -> Iterator[None]:
    """Silence Optuna's per-trial logs for the duration, then restore the caller's level.

    Failed candidates are reported in the leaderboard, so Optuna's per-failure
    tracebacks are only shown with ``verbose >= 2``.
    """
    previous = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.INFO if verbose > 1 else optuna.logging.ERROR)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(previous)


def count_finished(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=FINISHED))


def fail_stale_trials(study: optuna.Study) -> list[int]:
    """Mark RUNNING trials left by a killed process as FAIL; return their numbers.

    Call only when no other worker is running on the study (e.g. at resume).
    """
    stale = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    for trial in stale:
        study._storage.set_trial_user_attr(trial._trial_id, "status", "interrupted")
        study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
    return [t.number for t in stale]


def enqueue_new(study: optuna.Study, params: Sequence[dict[str, Any]]) -> int:
    """Enqueue trial params not already present in the study (so resumes never repeat them)."""
    seen = [t.params for t in study.get_trials(deepcopy=False)]
    added = 0
    for p in params:
        if p not in seen:
            study.enqueue_trial(dict(p), skip_if_exists=True)
            seen.append(p)
            added += 1
    return added


def _remaining(deadline: float | None) -> float | None:
    return None if deadline is None else max(0.0, deadline - time.time())


def optimize(
    study: optuna.Study,
    objective: Any,
    *,
    n_trials: int | None,
    deadline: float | None,
    callbacks: Sequence[Any] = (),
) -> None:
    """Run ``n_trials`` more trials (or until ``deadline``) in this process."""
    if n_trials is not None and n_trials <= 0:
        return
    study.optimize(objective, n_trials=n_trials, timeout=_remaining(deadline), catch=(Exception,),
                   callbacks=list(callbacks), gc_after_trial=False)


def _work(
    worker: int, storage: Any, study_name: str, strategy: SearchStrategy, space: SearchSpace,
    pruner: Any, seed: int | None, objective: Any, total_trials: int | None, deadline: float | None,
) -> None:
    sampler = strategy.make_sampler(space, seed=None if seed is None else seed + 7919 * worker)
    with quiet_optuna():
        study = optuna.load_study(study_name=study_name, storage=make_storage(storage), sampler=sampler,
                                  pruner=pruner)
        callbacks = [] if total_trials is None else [MaxTrialsCallback(total_trials, states=None)]
        if total_trials is not None and len(study.trials) >= total_trials:
            return
        optimize(study, objective, n_trials=None if deadline else total_trials, deadline=deadline,
                 callbacks=callbacks)


def optimize_in_processes(
    storage: str,
    study_name: str,
    strategy: SearchStrategy,
    space: SearchSpace,
    objective: Any,
    *,
    pruner: Any,
    n_jobs: int,
    backend: Any = None,
    seed: int | None,
    total_trials: int | None,
    deadline: float | None,
) -> None:
    """Run the study in ``n_jobs`` loky worker processes sharing one storage.

    Separate processes isolate crashes (a segfaulting candidate kills a worker,
    not the run) and sidestep the GIL for pure-Python model code. With
    ``backend="dask"`` (or a ``dask.distributed.Client``) the workers are Dask tasks.
    """
    with _joblib_backend(backend):
        _run_workers(storage, study_name, strategy, space, objective, pruner=pruner, n_jobs=n_jobs,
                     seed=seed, total_trials=total_trials, deadline=deadline)


@contextlib.contextmanager
def _joblib_backend(backend: Any) -> Iterator[None]:
    if backend in (None, "loky"):
        yield
        return
    try:
        import distributed
    except ImportError as exc:
        raise ImportError("The dask backend needs: pip install 'ensemble_hpo[dask]'") from exc
    if isinstance(backend, distributed.Client):
        client = backend
    elif backend == "dask":
        client = distributed.get_client()
    elif isinstance(backend, str):
        client = distributed.Client(backend)  # a scheduler address
    else:
        raise ValueError("The 'backend' parameter must be None, 'loky', 'dask', a scheduler "
                         f"address or a dask.distributed.Client. Got {backend!r} instead.")
    with joblib.parallel_config(backend="dask", wait_for_workers_timeout=60):
        with client.as_current():
            yield


def _run_workers(storage: Any, study_name: str, strategy: SearchStrategy, space: SearchSpace,
                 objective: Any, *, pruner: Any, n_jobs: int, seed: int | None,
                 total_trials: int | None, deadline: float | None) -> None:
    # The active joblib backend decides where workers run: loky processes by default,
    # Dask tasks inside ``_joblib_backend("dask")``.
    Parallel(n_jobs=n_jobs)(
        delayed(_work)(i, storage, study_name, strategy, space, pruner, seed, objective, total_trials,
                       deadline)
        for i in range(n_jobs)
    )
