"""Drives an Optuna study: sequentially in this process or across worker processes."""

from __future__ import annotations

import contextlib
import datetime
import os
import socket
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import joblib
import optuna
from joblib import Parallel, delayed
from optuna.trial import TrialState

from ensemble_hpo._compat import mark_trial_failed
from ensemble_hpo.search._strategy import SearchStrategy
from ensemble_hpo.spaces import SearchSpace
from ensemble_hpo.storage import make_storage

__all__ = ["count_finished", "enqueue_new", "fail_stale_trials", "optimize", "quiet_optuna"]

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
# A live worker tags its trial within microseconds of creating it; an untagged
# RUNNING trial older than this belongs to a process that died at that instant.
_ORPHAN_SECONDS = 60.0


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
    """Trials that used budget: finished ones, minus those a killed process interrupted."""
    return sum(
        t.user_attrs.get("status") != "interrupted"
        for t in study.get_trials(deepcopy=False, states=FINISHED)
    )


def count_started(study: optuna.Study) -> int:
    """Trials finished or in progress, across every worker sharing the study.

    A RUNNING trial without a ``worker`` attribute was killed in the instant between
    its creation and the objective's first line; it is not counted.
    """
    running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    return count_finished(study) + sum("worker" in t.user_attrs for t in running)


class StopAtTrials:
    """Callback stopping this worker once the whole study has ``n_trials`` trials.

    Counting running trials keeps the overshoot to at most (workers − 1) trials
    when several processes share one study.
    """

    def __init__(self, n_trials: int) -> None:
        self.n_trials = n_trials

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if count_started(study) >= self.n_trials:
            study.stop()


def _is_dead_local_worker(worker: str | None) -> bool:
    host, _, pid = (worker or "").rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False  # another machine's trial: RDB heartbeats handle those
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def fail_stale_trials(study: optuna.Study) -> list[int]:
    """Mark RUNNING trials whose worker process on this machine is gone as FAIL.

    Live workers (this machine or others) keep their trials, so this is safe while
    other workers run. Returns the numbers of the trials marked.
    """
    now = datetime.datetime.now()
    stale = [t for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
             if _is_dead_local_worker(t.user_attrs.get("worker"))
             or ("worker" not in t.user_attrs and t.datetime_start is not None
                 and (now - t.datetime_start).total_seconds() > _ORPHAN_SECONDS)]
    for trial in stale:
        mark_trial_failed(study, trial, status="interrupted")
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
        optimize_shared(study, objective, total_trials=total_trials, deadline=deadline)


def optimize_shared(study: optuna.Study, objective: Any, *, total_trials: int | None,
                    deadline: float | None, callbacks: Sequence[Any] = ()) -> None:
    """Run trials until the *study* (all workers together) has ``total_trials`` or ``deadline``."""
    if total_trials is None:
        optimize(study, objective, n_trials=None, deadline=deadline, callbacks=callbacks)
        return
    remaining = total_trials - count_started(study)
    if remaining > 0:
        optimize(study, objective, n_trials=remaining, deadline=deadline,
                 callbacks=[StopAtTrials(total_trials), *callbacks])


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
    on_worker_done: Callable[[], None] | None = None,
) -> None:
    """Run the study in ``n_jobs`` loky worker processes sharing one storage.

    Separate processes isolate crashes (a segfaulting candidate kills a worker,
    not the run) and sidestep the GIL for pure-Python model code. With
    ``backend="dask"`` (or a ``dask.distributed.Client``) the workers are Dask tasks.
    ``on_worker_done`` is called in this process each time a worker stops, while
    the others may still run their last trial.
    """
    with _joblib_backend(backend):
        _run_workers(storage, study_name, strategy, space, objective, pruner=pruner, n_jobs=n_jobs,
                     seed=seed, total_trials=total_trials, deadline=deadline,
                     on_worker_done=on_worker_done)


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
    _check_workers_share_key(client)
    with joblib.parallel_config(backend="dask", wait_for_workers_timeout=60):
        with client.as_current():
            yield


def _check_workers_share_key(client: Any) -> None:
    """Fail before training when a worker would sign artifacts this process must refuse.

    Dask workers on other machines sign the fold models they write with their own user's
    key; without this check the mismatch surfaced only when selection loaded the members,
    after the whole search.
    """
    from ensemble_hpo._signing import key_fingerprint

    local = key_fingerprint()
    others = sorted(address for address, theirs in client.run(key_fingerprint).items()
                    if theirs != local)
    if others:
        raise ValueError(
            f"The Dask workers {others} sign run-folder artifacts with another key than this "
            "process, so every candidate they train would be refused after the search. Give "
            "every machine the same key file (ENSEMBLE_HPO_KEY_FILE) before starting them.")


def _run_workers(storage: Any, study_name: str, strategy: SearchStrategy, space: SearchSpace,
                 objective: Any, *, pruner: Any, n_jobs: int, seed: int | None,
                 total_trials: int | None, deadline: float | None,
                 on_worker_done: Callable[[], None] | None) -> None:
    # The active joblib backend decides where workers run: loky processes by default,
    # Dask tasks inside ``_joblib_backend("dask")``. Unordered results let this process
    # use the core a finished worker frees while the last trials still run.
    finished = Parallel(n_jobs=n_jobs, return_as="generator_unordered")(
        delayed(_work)(i, storage, study_name, strategy, space, pruner, seed, objective, total_trials,
                       deadline)
        for i in range(n_jobs)
    )
    for _ in finished:
        if on_worker_done is not None:
            on_worker_done()
