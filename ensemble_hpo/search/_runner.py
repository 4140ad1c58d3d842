"""Drives an Optuna study: sequentially in this process or across worker processes."""

from __future__ import annotations

import contextlib
import datetime
import os
import secrets
import sys
import time
import warnings
from collections.abc import Callable, Collection, Iterator, Sequence
from pathlib import Path
from typing import Any

import joblib
import optuna
from joblib import Parallel, delayed
from optuna.trial import TrialState

from ensemble_hpo._compat import mark_trial_failed
from ensemble_hpo._process import is_dead_local_process, process_tag
from ensemble_hpo.population import STATUS_SKIPPED
from ensemble_hpo.search._strategy import SearchStrategy
from ensemble_hpo.spaces import SearchSpace
from ensemble_hpo.storage import make_storage, storage_kind

__all__ = ["DASK_WORKER_ATTR", "FINISHED", "SEARCH_TASK_ATTR", "ClusterError", "FailStaleTrials",
           "WithinBudget", "attempt_seed", "check_cluster", "count_finished", "enqueue_new",
           "fail_stale_trials", "live_dask_workers", "new_params", "optimize", "quiet_optuna",
           "resumed_seed", "worker_facts"]

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
# A live worker tags its trial within microseconds of creating it; an untagged
# RUNNING trial older than this belongs to a process that died at that instant.
_ORPHAN_SECONDS = 60.0
# Trials run by a Dask worker also carry "<scheduler id>/<worker address>": the scheduler
# knows at once when a worker's connection drops, on any machine, whereas Optuna's
# heartbeats take their grace period and the pid check only sees this machine.
DASK_WORKER_ATTR = "dask_worker"
# ... and the index of the search task (one per ``n_jobs``) that ran them.
SEARCH_TASK_ATTR = "search_task"
# How long a run waits for its first Dask worker before it gives up (seconds).
_WAIT_FOR_WORKERS = 60.0


class ClusterError(ValueError):
    """The Dask cluster cannot run this search (found before any candidate is trained)."""


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


# Finished trials that used no budget: a killed worker's, one started past the budget, and
# one never started because its family was out of time (it counted, and a resume with
# n_trials=4 after 1 ok, 1 timeout and 1 skipped trained only one more; audit).
_NOT_COUNTED = ("interrupted", "surplus", STATUS_SKIPPED)
# How long the budget guard waits for an earlier trial's worker to tag it, polling.
_TAG_GRACE_SECONDS = 1.0
_TAG_POLL_SECONDS = 0.05


def count_finished(study: optuna.Study) -> int:
    """Trials that used budget: finished ones, minus those interrupted or surplus."""
    return sum(
        t.user_attrs.get("status") not in _NOT_COUNTED
        for t in study.get_trials(deepcopy=False, states=FINISHED)
    )


def _uses_budget(trial: optuna.trial.FrozenTrial) -> bool:
    """The one rule for "this trial counts towards ``n_trials``".

    Finished trials count unless interrupted or surplus. A RUNNING trial counts once its
    worker has tagged it: an untagged one was either created a moment ago by a live
    worker, or belongs to a process killed in the instant between creating and tagging
    it (see :func:`_settled_trials`).
    """
    if trial.state in FINISHED:
        return trial.user_attrs.get("status") not in _NOT_COUNTED
    return trial.state == TrialState.RUNNING and "worker" in trial.user_attrs


def count_started(study: optuna.Study) -> int:
    """Trials finished or in progress, across every worker sharing the study."""
    return sum(map(_uses_budget, study.get_trials(deepcopy=False)))


def _settled_trials(study: optuna.Study, number: int) -> list[optuna.trial.FrozenTrial]:
    """The study's trials numbered below ``number``, once their live workers have tagged them.

    A live worker tags its trial as soon as the budget guard runs, so an untagged RUNNING
    trial is either younger than :data:`_TAG_GRACE_SECONDS` (waited for) or a dead
    process's (it uses no budget, and is not waited for again). Without the wait a racing
    worker's trial would be missed (one trial too many); counting every untagged trial
    instead lost one trial of the budget when a run was resumed right after a SIGKILL in
    that instant (7 of 8 candidates, seen in CI).
    """
    def earlier() -> list[optuna.trial.FrozenTrial]:
        return [t for t in study.get_trials(deepcopy=False) if t.number < number]

    def fresh_untagged(trials: list[optuna.trial.FrozenTrial]) -> bool:
        now = datetime.datetime.now()
        return any(t.state == TrialState.RUNNING and "worker" not in t.user_attrs
                   and t.datetime_start is not None
                   and (now - t.datetime_start).total_seconds() < _TAG_GRACE_SECONDS for t in trials)

    trials, waited = earlier(), 0.0
    while waited < _TAG_GRACE_SECONDS and fresh_untagged(trials):
        time.sleep(_TAG_POLL_SECONDS)
        waited += _TAG_POLL_SECONDS
        trials = earlier()
    return trials


class StopAtTrials:
    """Callback stopping this worker once the whole study has ``n_trials`` trials.

    Workers sharing a study can each pass this check in the same instant; the
    :class:`WithinBudget` guard turns the trials they start too many into surplus.
    """

    def __init__(self, n_trials: int) -> None:
        self.n_trials = n_trials

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if count_started(study) >= self.n_trials:
            study.stop()


class StopWhenOrphaned:
    """Callback stopping a worker process whose parent (the fitting process) has died.

    A fit killed with SIGTERM left its loky workers training until the budget was spent,
    into a folder nothing read, racing the resumed fit's own workers (audit). A process
    whose parent dies is re-parented, so its parent id changes; the check runs after each
    trial, so at most the candidate in flight finishes.
    """

    def __init__(self) -> None:
        self.parent = os.getppid()

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if os.getppid() != self.parent:
            study.stop()


class WithinBudget:
    """Runs the objective only for trials within the study's budget of ``n_trials``.

    Two workers that both saw ``n_trials - 1`` trials started would each start one
    more (measured: 4 candidates for ``n_trials=3`` with ``n_jobs=2``). The storage
    numbers trials in the order they are created, so a trial is within the budget
    when fewer than ``n_trials`` counted trials come before it. One that is not is
    pruned before it samples anything, marked ``status="surplus"`` (it is no
    candidate and uses no budget), and stops its worker.
    """

    def __init__(self, objective: Any, n_trials: int) -> None:
        self.objective = objective
        self.n_trials = n_trials

    def __call__(self, trial: optuna.Trial) -> Any:
        # Tagged before counting, so that workers racing with this one wait for it only
        # for the moment between Optuna creating the trial and this line.
        trial.set_user_attr("worker", process_tag())
        before = sum(map(_uses_budget, _settled_trials(trial.study, trial.number)))
        if before >= self.n_trials:
            trial.set_user_attr("status", "surplus")
            trial.study.stop()
            raise optuna.TrialPruned(f"the study already has its {self.n_trials} trials")
        return self.objective(trial)


# () -> (scheduler id, tags of its live workers), or None when the scheduler cannot tell.
LiveDaskWorkers = Callable[[], "tuple[str, Collection[str]] | None"]


def fail_stale_trials(study: optuna.Study, live_dask_workers: LiveDaskWorkers | None = None) -> list[int]:
    """Mark RUNNING trials whose worker is gone as FAIL (``status="interrupted"``).

    A worker is gone when its process on this machine no longer exists, or when its trial
    carries a Dask tag of the current scheduler (see :data:`DASK_WORKER_ATTR`) that is no
    longer among ``live_dask_workers()`` (the scheduler's workers now; None when unknown).
    Live workers (this machine or others) keep their trials, so this is safe while other
    workers run; trials of other machines outside Dask are left to Optuna's RDB heartbeats.
    An interrupted trial does not count towards ``n_trials`` (see :func:`count_finished`),
    so the workers left run a replacement. Returns the numbers of the trials marked.
    """
    now = datetime.datetime.now()
    running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    # The scheduler is asked only after the trials were read: a worker registers before it
    # can start a trial, so every trial read here belongs to a worker the answer includes.
    live = None
    if live_dask_workers is not None and any(DASK_WORKER_ATTR in t.user_attrs for t in running):
        live = live_dask_workers()
    stale = [t for t in running
             if is_dead_local_process(t.user_attrs.get("worker"))
             or _is_lost_dask_worker(t.user_attrs.get(DASK_WORKER_ATTR), live)
             or ("worker" not in t.user_attrs and DASK_WORKER_ATTR not in t.user_attrs
                 and t.datetime_start is not None
                 and (now - t.datetime_start).total_seconds() > _ORPHAN_SECONDS)]
    marked = []
    for trial in stale:
        try:
            mark_trial_failed(study, trial, status="interrupted")
        except optuna.exceptions.UpdateFinishedTrialError:
            continue  # another worker's sweep (or the trial's own end) got there first
        marked.append(trial.number)
    return marked


def _is_lost_dask_worker(tag: str | None, live: tuple[str, Collection[str]] | None) -> bool:
    if tag is None or live is None:
        return False
    scheduler, workers = live
    # Only the current scheduler's workers are judged: a study may be shared by the runs
    # of several clusters, whose workers this scheduler does not know.
    return tag.startswith(scheduler + "/") and tag not in workers


class FailStaleTrials:
    """Optuna callback: after each trial, fail the trials of workers that died meanwhile.

    Without it a trial of a killed worker stayed RUNNING until the next run, and it
    counted as started, so the search stopped one candidate short of its budget.
    """

    def __init__(self, live_dask_workers: LiveDaskWorkers | None) -> None:
        self.live_dask_workers = live_dask_workers

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        fail_stale_trials(study, self.live_dask_workers)


def _dask_worker() -> Any:
    """The Dask worker running this code, or None (never imports Dask itself)."""
    distributed = sys.modules.get("distributed")
    if distributed is None:
        return None
    try:
        return distributed.get_worker()
    except ValueError:
        return None


def _scheduler_workers(client: Any) -> tuple[str, set[str]]:
    """The scheduler's id and its live workers as ``"<scheduler id>/<address>"`` tags."""
    info = client.scheduler_info(n_workers=-1)
    return info["id"], {f"{info['id']}/{address}" for address in info["workers"]}


def live_dask_workers(client: Any = None) -> tuple[str, Collection[str]] | None:
    """The scheduler of ``client`` (default: this worker's) and its live workers' tags."""
    if client is None:
        if _dask_worker() is None:
            return None
        import distributed

        client = distributed.get_client()
    try:
        return _scheduler_workers(client)
    except Exception:  # noqa: BLE001 - an unreachable scheduler proves no worker dead
        return None


class _DaskTaggedObjective:
    """Tags each trial with the Dask worker and search task running it, then runs the objective."""

    def __init__(self, objective: Any, tag: str, task: int) -> None:
        self.objective = objective
        self.tag = tag
        self.task = task

    def __call__(self, trial: optuna.Trial) -> Any:
        trial.set_user_attr(DASK_WORKER_ATTR, self.tag)
        trial.set_user_attr(SEARCH_TASK_ATTR, self.task)
        return self.objective(trial)


def new_params(study: optuna.Study, params: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The trial params not already present in the study, without repeats, in order.

    A trial still waiting to run holds its params as ``fixed_params`` only.
    """
    seen = [t.params or t.system_attrs.get("fixed_params", {})
            for t in study.get_trials(deepcopy=False)]
    fresh: list[dict[str, Any]] = []
    for p in params:
        if p not in seen:
            seen.append(p)
            fresh.append(p)
    return fresh


#: User attribute of an enqueued trial: the ``host:pid`` of the process that queued it.
ENQUEUED_BY = "enqueued_by"


#: User attribute ``strategy`` of a queued warm-start configuration (not the strategy's own).
WARM_START = "warm start"


def enqueue_new(study: optuna.Study, params: Sequence[dict[str, Any]],
                warm_start: Sequence[dict[str, Any]] = ()) -> int:
    """Enqueue trial params not already present in the study (so resumes never repeat them);
    those of ``warm_start`` are labelled as such (the report's history drew portfolio points
    as the sampler's proposals; a gradient search's own queued points are its own)."""
    fresh = new_params(study, params)
    for p in fresh:
        attrs: dict[str, Any] = {ENQUEUED_BY: process_tag()}
        if p in warm_start:
            attrs["strategy"] = WARM_START
        study.enqueue_trial(dict(p), user_attrs=attrs, skip_if_exists=True)
    return len(fresh)


def holds_work(trial: optuna.trial.FrozenTrial) -> bool:
    """Whether ``trial`` is finished work or work under way: complete, running, or queued by a
    process that may still run it (a dead process's queued warm starts are nothing)."""
    if trial.state in (TrialState.COMPLETE, TrialState.RUNNING):
        return True
    return (trial.state == TrialState.WAITING
            and not is_dead_local_process(trial.user_attrs.get(ENQUEUED_BY)))


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
    # Dask runs this again on another worker when the worker running it dies (up to the
    # scheduler's 'allowed-failures'). That is safe: it runs new trials, never the dead
    # worker's one again, and the budget counts what the whole study has started.
    storage = make_storage(storage)
    worker_seed = None if seed is None else seed + 7919 * worker
    live = None
    dask_worker = _dask_worker()
    if dask_worker is not None:
        import distributed

        scheduler_id = _scheduler_workers(distributed.get_client())[0]
        objective = _DaskTaggedObjective(objective, f"{scheduler_id}/{dask_worker.address}", worker)
        live = live_dask_workers
        trials = storage.get_all_trials(storage.get_study_id_from_name(study_name), deepcopy=False)
        worker_seed = attempt_seed(worker_seed, worker, trials)
    sampler = strategy.make_sampler(space, seed=worker_seed)
    # A Dask worker outlives the client by design; a local worker stops with its fit.
    orphan_check = [] if dask_worker is not None else [StopWhenOrphaned()]
    with quiet_optuna():
        study = optuna.load_study(study_name=study_name, storage=storage, sampler=sampler,
                                  pruner=pruner)
        optimize_shared(study, objective, total_trials=total_trials, deadline=deadline,
                        callbacks=orphan_check, live_dask_workers=live)


def attempt_seed(seed: int | None, task: int, trials: Sequence[optuna.trial.FrozenTrial]) -> int | None:
    """The sampler seed of one attempt at search task ``task``, given the study's ``trials``.

    The first attempt keeps ``seed``. A re-run of a lost worker's task (the study already
    has trials of that task) gets another one: with the first attempt's seed its sampler
    would propose that attempt's parameters again, training finished candidates twice.
    The study only grows, so each re-run gets a seed of its own.
    """
    if not any(t.user_attrs.get(SEARCH_TASK_ATTR) == task for t in trials):
        return seed
    return resumed_seed(seed, len(trials))


def resumed_seed(seed: int | None, n_trials: int) -> int | None:
    """The sampler seed for a study that already holds ``n_trials`` trials.

    A fresh study (no trials) keeps ``seed``, so a run is reproducible. A resumed or
    extended one gets another: with the first run's seed, a seeded sampler's random
    stream starts over and proposes the finished candidates' parameters again (4 of 8
    configurations were repeats after extending a random or TPE search from 4 to 8 trials).
    """
    if seed is None or n_trials == 0:
        return seed
    return (seed + 104_729 * n_trials) % 2**32  # numpy seeds stop at 2**32 - 1


def optimize_shared(study: optuna.Study, objective: Any, *, total_trials: int | None,
                    deadline: float | None, callbacks: Sequence[Any] = (),
                    live_dask_workers: LiveDaskWorkers | None = None) -> None:
    """Run trials until the *study* (all workers together) has ``total_trials`` or ``deadline``.

    Before it starts and after each trial it fails the trials of workers that died (see
    :func:`fail_stale_trials`), so that a lost worker's trial is replaced, not waited for.
    """
    fail_stale_trials(study, live_dask_workers)
    sweep = FailStaleTrials(live_dask_workers)
    if total_trials is None:
        optimize(study, objective, n_trials=None, deadline=deadline, callbacks=[sweep, *callbacks])
        return
    remaining = total_trials - count_started(study)
    if remaining > 0:
        # The sweep runs before the stop check, so a dead worker's trial is not counted.
        optimize(study, WithinBudget(objective, total_trials), n_trials=remaining, deadline=deadline,
                 callbacks=[sweep, StopAtTrials(total_trials), *callbacks])


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

    Separate processes isolate crashes (a segfaulting candidate kills a worker, not the
    run: the workers are started again, at most :data:`MAX_WORKER_RESTARTS` times, and the
    dead worker's trial is recorded as interrupted) and sidestep the GIL for pure-Python
    model code. With
    ``backend="dask"`` (or a ``dask.distributed.Client``) the workers are Dask tasks.
    ``on_worker_done`` is called in this process each time a worker stops, while
    the others may still run their last trial.
    """
    with _joblib_backend(backend, storage=storage, study_name=study_name,
                         folder=_artifact_folder(objective)):
        _run_workers(storage, study_name, strategy, space, objective, pruner=pruner, n_jobs=n_jobs,
                     seed=seed, total_trials=total_trials, deadline=deadline,
                     on_worker_done=on_worker_done)


def _artifact_folder(objective: Any) -> Path | None:
    folder = getattr(getattr(objective, "store", None), "path", None)
    return None if folder is None else Path(folder)


@contextlib.contextmanager
def _joblib_backend(backend: Any, *, storage: Any = None, study_name: str | None = None,
                    folder: Path | None = None) -> Iterator[None]:
    """Make joblib run on ``backend``; for Dask, check its workers can run this search first."""
    if backend in (None, "loky"):
        yield
        return
    try:
        import distributed
    except ImportError as exc:
        raise ImportError("The dask backend needs: pip install 'ensemble_hpo[dask]'") from exc
    own = None
    if isinstance(backend, distributed.Client):
        client = backend
    elif backend == "dask":
        try:
            client = distributed.get_client()
        except ValueError as exc:
            raise ClusterError(
                "The 'backend' parameter 'dask' needs a running dask.distributed.Client in this "
                "process; pass the Client itself or the scheduler's address "
                "('tcp://host:8786'). Got 'dask' with no client instead.") from exc
    elif isinstance(backend, str):
        client = own = _connect(distributed, backend)
    else:
        raise ValueError("The 'backend' parameter must be None, 'loky', 'dask', a scheduler "
                         f"address or a dask.distributed.Client. Got {backend!r} instead.")
    try:
        check_cluster(client, storage=storage, study_name=study_name, folder=folder)
        with joblib.parallel_config(backend="dask", wait_for_workers_timeout=_WAIT_FOR_WORKERS):
            with client.as_current():
                yield
    finally:
        if own is not None:
            own.close()


def _connect(distributed: Any, address: str) -> Any:
    try:
        return distributed.Client(address)
    except (OSError, TimeoutError) as exc:
        raise ClusterError(
            f"The Dask scheduler {address!r} could not be reached ({exc}). Start it with "
            "'dask scheduler --port PORT' and pass its address as printed ('tcp://host:PORT'); "
            "a firewall must let this machine reach that port.") from exc


def check_cluster(client: Any, *, storage: Any = None, study_name: str | None = None,
                  folder: Path | None = None) -> None:
    """Fail before training when the Dask workers cannot run this search.

    Waits for a first worker, then asks every worker whether it imports the same
    ensemble_hpo, signs with this process's key (otherwise every fold model it writes
    would be refused after the search), sees the run folder this process writes to, and
    opens the study storage. Workers that join later are not checked.

    Raises
    ------
    ClusterError
        Naming each failing worker and what to do about it.
    """
    try:
        client.wait_for_workers(1, timeout=_WAIT_FOR_WORKERS)
    except TimeoutError as exc:
        address = client.scheduler.address
        raise ClusterError(
            f"No Dask worker joined the scheduler {address!r} within {_WAIT_FOR_WORKERS:.0f} s. "
            f"Start workers with 'dask worker {address}'.") from exc
    from ensemble_hpo import __version__
    from ensemble_hpo._signing import key_fingerprint

    token = None
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        token = (folder / f".cluster-check-{secrets.token_hex(8)}", secrets.token_hex(16))
        token[0].write_text(token[1])
    try:
        # A function of this package, pickled by reference: a worker without the package
        # fails to unpickle it, which on_error="return" reports per worker.
        facts = client.run(worker_facts, token, storage, study_name, on_error="return")
    finally:
        if token is not None:
            token[0].unlink(missing_ok=True)
    local = {"version": __version__, "key": key_fingerprint()}
    problems = _cluster_problems(facts, local, folder)
    if problems:
        raise ClusterError("The Dask workers cannot run this search:\n- " + "\n- ".join(problems))


def worker_facts(token: tuple[Path, str] | None, storage: Any, study_name: str | None) -> dict[str, Any]:
    """What :func:`check_cluster` needs to know from one worker (runs on the worker)."""
    from ensemble_hpo import __version__
    from ensemble_hpo._signing import key_fingerprint

    facts: dict[str, Any] = {"version": __version__, "key": key_fingerprint(), "folder": True,
                             "storage": None}
    if token is not None:
        path, secret = token
        try:
            facts["folder"] = path.read_text() == secret
        except OSError:
            facts["folder"] = False
    if storage is not None and study_name is not None:
        facts["storage"] = _storage_problem(storage, study_name)
    return facts


def _storage_problem(storage: Any, study_name: str) -> str | None:
    kind = storage_kind(storage)
    if kind is None:
        return f"the storage {storage!r} is private to the process that made it"
    if kind == "journal":
        # Opening a journal that is not there would create an empty one on this machine.
        path = str(storage).removeprefix("journal://")
        if not os.path.exists(path):
            return f"the journal file {path!r} does not exist here"
    try:
        make_storage(storage).get_study_id_from_name(study_name)
    except Exception as exc:  # noqa: BLE001 - reported to the user with the worker's name
        return (f"cannot open the study {study_name!r} in {_redact(storage)}: "
                f"{type(exc).__name__}: {exc}")[:500]
    return None


def _redact(url: Any) -> str:
    """The storage URL without its password (error messages end up in logs)."""
    text = str(url)
    scheme, sep, rest = text.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not sep or not at or ":" not in credentials:
        return repr(text)
    return repr(f"{scheme}://{credentials.split(':', 1)[0]}:***@{host}")


def _cluster_problems(facts: dict[str, Any], local: dict[str, Any], folder: Path | None) -> list[str]:
    problems = []
    for address, fact in sorted(facts.items()):
        if isinstance(fact, BaseException):
            hint = (" Install ensemble_hpo (the same version as here) in every worker's Python "
                    "environment." if isinstance(fact, ImportError) else "")
            problems.append(f"{address} failed the check: {type(fact).__name__}: {fact}.{hint}")
            continue
        if fact["version"] != local["version"]:
            problems.append(f"{address} runs ensemble_hpo {fact['version']}, this process "
                            f"{local['version']}: install the same version everywhere.")
        if fact["key"] != local["key"]:
            problems.append(
                f"{address} would sign run-folder artifacts with another key than this process, so "
                "every candidate it trains would be refused after the search. Give every machine "
                "the same key file (ENSEMBLE_HPO_KEY_FILE) before starting the workers.")
        if not fact["folder"]:
            problems.append(
                f"{address} does not see the run folder {str(folder)!r} this process writes to. "
                "Put the run folder on a file system every worker mounts at the same path (NFS).")
        if fact["storage"] is not None:
            problems.append(f"{address}: {fact['storage']}. The study storage must be reachable "
                            "from every worker (a PostgreSQL URL with a host name they resolve, "
                            "not localhost).")
    return problems


#: Times the local worker processes are started again after one died (a candidate that
#: crashed its process); after that the search stops and the finished candidates are used.
MAX_WORKER_RESTARTS = 3


def _run_workers(storage: Any, study_name: str, strategy: SearchStrategy, space: SearchSpace,
                 objective: Any, *, pruner: Any, n_jobs: int, seed: int | None,
                 total_trials: int | None, deadline: float | None,
                 on_worker_done: Callable[[], None] | None) -> None:
    # The active joblib backend decides where workers run: loky processes by default,
    # Dask tasks inside ``_joblib_backend("dask")``. Unordered results let this process
    # use the core a finished worker frees while the last trials still run.
    for restart in range(MAX_WORKER_RESTARTS + 1):
        # Restarted workers with the first ones' seeds proposed their parameters again.
        attempt = seed if restart == 0 else resumed_seed(seed, len(_load(storage, study_name).trials))
        finished = Parallel(n_jobs=n_jobs, return_as="generator_unordered")(
            delayed(_work)(i, storage, study_name, strategy, space, pruner, attempt, objective,
                           total_trials, deadline)
            for i in range(n_jobs)
        )
        try:
            for _ in finished:
                if on_worker_done is not None:
                    on_worker_done()
            return
        except Exception as exc:
            if type(exc).__name__ == "KilledWorker":
                raise _dask_gave_up(exc) from exc
            if type(exc).__name__ != "TerminatedWorkerError":
                raise
            # A candidate crashed its process (a segfault in native code, os._exit): loky
            # broke the whole pool, and the fit failed with every finished candidate (audit).
            # New workers fail the dead one's trial (their stale-trial sweep) and go on.
            out_of_time = deadline is not None and time.time() >= deadline
            warnings.warn(
                f"A worker process died while training a candidate ({str(exc).splitlines()[0]}); "
                "its candidate is recorded as failed. " + (
                    "The search stops here." if out_of_time or restart == MAX_WORKER_RESTARTS
                    else "The search goes on in new worker processes."),
                RuntimeWarning, stacklevel=2)
            if out_of_time:
                break
    _fail_trials_of_dead_workers(storage, study_name)


def _load(storage: Any, study_name: str) -> optuna.Study:
    with quiet_optuna():
        return optuna.load_study(study_name=study_name, storage=make_storage(storage))


def _fail_trials_of_dead_workers(storage: Any, study_name: str) -> None:
    fail_stale_trials(_load(storage, study_name), None)


def _dask_gave_up(exc: BaseException) -> ClusterError:
    # Dask re-runs a lost worker's task elsewhere, but only 'allowed-failures' times.
    return ClusterError(
        f"Dask lost the workers running one search task too often and gave up ({exc}). "
        "The study keeps every finished trial and the run folder their artifacts: run "
        "again on the same run folder and storage ('ensemble-hpo resume RUN_DIR') to "
        "continue, or raise the scheduler's 'distributed.scheduler.allowed-failures'.")
