"""A real multi-process cluster: a `dask scheduler`, two `dask worker`s, PostgreSQL, one folder.

The processes share nothing but the network, the PostgreSQL study and the run folder (on a
real cluster: an NFS mount). The main test kills one Dask worker (and its nanny) with SIGKILL
while it trains a candidate, and checks that the run still completes with its whole budget,
that the trial it was running is marked interrupted (and replaced), and that every trial
finished before the kill is untouched with readable, verified artifacts.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from ensemble_hpo.search._runner import (
    DASK_WORKER_ATTR,
    SEARCH_TASK_ATTR,
    ClusterError,
    _cluster_problems,
    _joblib_backend,
    attempt_seed,
    fail_stale_trials,
)
from ensemble_hpo.storage import make_storage

PG_HOST, PG_PORT = "127.0.0.1", 54329
PG_ADMIN = f"postgresql://postgres@{PG_HOST}:{PG_PORT}/postgres"
TESTS = Path(__file__).resolve().parent
STUDY = "ensemble_hpo"
# Enough trials (~1 s each) that worker_a, the slowest to start (a Dask task), still finishes
# one and starts another before the run and the extra worker have used the budget.
N_TRIALS = 20


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait(condition: Callable[[], Any], timeout: float, what: str, procs: dict[str, Any]) -> Any:
    """Poll ``condition`` until it returns something truthy; fail with every log on timeout."""
    end = time.time() + timeout
    while time.time() < end:
        value = condition()
        if value:
            return value
        for name, proc in procs.items():
            if proc.popen.poll() is not None and name != "worker_a":
                pytest.fail(f"{name} exited with {proc.popen.returncode} while waiting for {what}:\n"
                            + _logs(procs))
        time.sleep(0.1)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}:\n" + _logs(procs))


def _logs(procs: dict[str, Any]) -> str:
    return "\n".join(f"--- {name} ---\n{p.log.read_text()[-3000:]}" for name, p in procs.items()
                     if p.log.exists())


class _Proc:
    """A subprocess in its own session, so that killing its group also kills its children."""

    def __init__(self, args: list[str], log: Path, env: dict[str, str]) -> None:
        self.log = log
        with open(log, "wb") as out:
            self.popen = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env,
                                          start_new_session=True)

    def kill(self) -> None:
        try:
            os.killpg(self.popen.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.popen.wait(timeout=30)


@pytest.fixture
def processes() -> Iterator[dict[str, _Proc]]:
    """Started processes by name, all killed (with their children) however the test ends."""
    procs: dict[str, _Proc] = {}
    try:
        yield procs
    finally:
        for proc in procs.values():
            proc.kill()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh database on the PostgreSQL that .ci/services.sh starts, dropped afterwards."""
    try:
        import psycopg

        conn = psycopg.connect(PG_ADMIN, connect_timeout=3, autocommit=True)
    except Exception as exc:  # noqa: BLE001 - any failure means: no server to test against
        pytest.skip(f"PostgreSQL is not running on {PG_HOST}:{PG_PORT} (.ci/services.sh starts "
                    f"it): {type(exc).__name__}")
    name = f"ehpo_cluster_{uuid.uuid4().hex[:10]}"
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE {name}")
    try:
        yield f"postgresql://postgres@{PG_HOST}:{PG_PORT}/{name}"
    finally:
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.close()


def _dask_cli() -> str:
    pytest.importorskip("distributed")
    dask = shutil.which("dask")
    if dask is None:
        pytest.skip("the 'dask' command line (pip install 'ensemble_hpo[dask]') is not on PATH")
    return dask


def _config(path: Path) -> Path:
    config = {
        "name": "cluster",
        "data": {"builtin": "breast_cancer"},
        "search": {
            "strategy": "random",
            # Sleeps in fit so that a trial lasts long enough for the kill to land inside it;
            # a continuous parameter, so two equal parameter sets could only be duplicated work.
            "models": [{"name": "sleepy", "classifier": "_estimators_for_tests.SleepyClassifier",
                        "params": {"sleep": {"type": "float", "low": 0.4, "high": 0.6}}}],
            "n_trials": N_TRIALS, "warm_start": None,
        },
        "cv": 2, "parallel": {"n_jobs": 2}, "random_state": 0, "verbose": 0,
    }
    path.write_text(yaml.safe_dump(config))
    return path


def _trials(storage: Any) -> list[optuna.trial.FrozenTrial]:
    try:
        study_id = storage.get_study_id_from_name(STUDY)
    except KeyError:
        return []
    return storage.get_all_trials(study_id, deepcopy=False)


def test_killed_dask_worker_loses_no_finished_trial_and_the_run_completes(
        tmp_path, processes, postgres_url, monkeypatch):
    dask = _dask_cli()
    shared = tmp_path / "shared"  # the one folder every process sees (NFS on real hosts)
    shared.mkdir()
    run_dir, config = shared / "run", _config(shared / "cluster.yaml")
    key = tmp_path / "signing.key"  # one key for every process (copied to each host for real)
    env = dict(os.environ, ENSEMBLE_HPO_KEY_FILE=str(key), MPLBACKEND="Agg",
               PYTHONPATH=os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setenv("ENSEMBLE_HPO_KEY_FILE", str(key))
    port, port_a = _free_port(), _free_port()
    scheduler = f"tcp://127.0.0.1:{port}"
    processes["scheduler"] = _Proc([dask, "scheduler", "--host", "127.0.0.1", "--port", str(port),
                                    "--no-dashboard"], tmp_path / "scheduler.log", env)
    for name, extra in (("worker_a", ["--worker-port", str(port_a)]), ("worker_b", [])):
        local = tmp_path / name  # each worker's own scratch folder, not shared
        processes[name] = _Proc([dask, "worker", scheduler, "--host", "127.0.0.1", "--name", name,
                                 "--nthreads", "1", "--no-dashboard", "--local-directory", str(local),
                                 *extra], tmp_path / f"{name}.log", env)
    processes["run"] = _Proc([sys.executable, "-m", "ensemble_hpo.cli", "run", str(config),
                              "--scheduler", scheduler, "--storage", postgres_url,
                              "--output", str(run_dir), "--quiet"], tmp_path / "run.log", env)
    # The extra worker starts with the run (whichever makes the study first, the other joins
    # it), so that it takes part however slowly the machine starts processes.
    processes["extra"] = _Proc([sys.executable, "-m", "ensemble_hpo.cli", "worker", str(config),
                                "--storage", postgres_url, "--run-dir", str(run_dir)],
                               tmp_path / "extra.log", env)
    storage = make_storage(postgres_url)

    def on_a(trial: optuna.trial.FrozenTrial) -> bool:
        return trial.user_attrs.get(DASK_WORKER_ATTR, "").endswith(f"/tcp://127.0.0.1:{port_a}")

    def victim() -> optuna.trial.FrozenTrial | None:
        trials = _trials(storage)
        complete = [t for t in trials if t.state == TrialState.COMPLETE]
        # The dead worker's own finished trials (artifacts it wrote) must survive too.
        if len(complete) < 2 or not any(on_a(t) for t in complete):
            return None
        # Still in its first fold (no fold score reported): at least 0.4 s of fit left.
        return next((t for t in trials if t.state == TrialState.RUNNING and on_a(t)
                     and not t.intermediate_values), None)

    target = _wait(victim, 60, "a trial running on worker_a after it finished one", processes)
    processes["worker_a"].kill()  # SIGKILL to the worker and its nanny: the machine is gone
    before = {t.number: t for t in _trials(storage) if t.state == TrialState.COMPLETE}
    assert target.number not in before, "the kill did not land mid-trial"

    assert processes["run"].popen.wait(timeout=120) == 0, _logs(processes)
    assert processes["extra"].popen.wait(timeout=60) == 0, _logs(processes)

    after = {t.number: t for t in _trials(storage)}
    assert not [t.number for t in after.values() if t.state == TrialState.RUNNING]
    # The dead worker's trial failed as interrupted, so it did not use budget: replaced.
    assert after[target.number].state == TrialState.FAIL
    assert after[target.number].user_attrs["status"] == "interrupted"
    complete = [t for t in after.values() if t.state == TrialState.COMPLETE]
    # Dask re-ran worker_a's task on worker_b; it must neither double the budget nor repeat work.
    assert N_TRIALS <= len(complete) <= N_TRIALS + 2
    params = [tuple(sorted(t.params.items())) for t in complete]
    assert len(set(params)) == len(params)
    for number, trial in before.items():  # finished before the kill: untouched
        assert after[number].state == TrialState.COMPLETE
        assert after[number].value == trial.value
        assert after[number].datetime_complete == trial.datetime_complete
    tags = {t.user_attrs.get(DASK_WORKER_ATTR, "/extra").partition("/")[2] for t in complete}
    assert {f"tcp://127.0.0.1:{port_a}", "extra"} <= tags and len(tags) == 3  # A, B and the extra

    from ensemble_hpo.persistence import load_model
    from ensemble_hpo.population import FileArtifactStore

    store = FileArtifactStore(run_dir / "artifacts")  # verifies each signature on load
    for trial in complete:
        assert store.load_predictions(trial.number).shape[1] == 2
        assert len(store.load_models(trial.number)) == 2  # one model per fold
    summary = json.loads((run_dir / "summary.json").read_text())
    # Every trial is a candidate but a surplus one (started past the budget, never sampled).
    assert summary["n_candidates"] == sum(t.user_attrs.get("status") != "surplus" for t in after.values())
    model = load_model(run_dir / "model.ehpo")
    from sklearn.datasets import load_breast_cancer

    X = load_breast_cancer(as_frame=True).data
    assert model.predict(X.iloc[:3]).shape == (3,)
    assert not list((run_dir / "artifacts").glob(".cluster-check-*"))


def test_trials_of_lost_dask_workers_fail_and_others_are_kept():
    study = optuna.create_study(direction="maximize")
    tags = {"lost": "S1/tcp://10.0.0.2:4000", "live": "S1/tcp://10.0.0.1:4000",
            "other cluster": "S2/tcp://10.0.0.2:4000"}
    numbers = {}
    for name, tag in tags.items():
        trial = study.ask()
        trial.set_user_attr(DASK_WORKER_ATTR, tag)
        trial.set_user_attr("worker", f"another-host:{os.getpid()}")
        numbers[name] = trial.number
    live = ("S1", {"S1/tcp://10.0.0.1:4000"})
    assert fail_stale_trials(study, lambda: live) == [numbers["lost"]]
    states = {name: study.trials[n].state for name, n in numbers.items()}
    assert states == {"lost": TrialState.FAIL, "live": TrialState.RUNNING,
                      "other cluster": TrialState.RUNNING}
    assert study.trials[numbers["lost"]].user_attrs["status"] == "interrupted"
    # A scheduler that cannot answer proves nothing: every trial is kept.
    assert fail_stale_trials(study, lambda: None) == []


def test_cluster_check_names_each_worker_and_what_to_do():
    local = {"version": "1.0", "key": b"k"}
    good = {"version": "1.0", "key": b"k", "folder": True, "storage": None}
    facts = {
        "tcp://a:1": good,
        "tcp://b:1": ModuleNotFoundError("No module named 'ensemble_hpo'"),
        "tcp://c:1": dict(good, key=b"other", folder=False),
        "tcp://d:1": dict(good, version="0.9", storage="cannot open the study 'ensemble_hpo'"),
    }
    problems = _cluster_problems(facts, local, Path("/nfs/run/artifacts"))
    text = "\n".join(problems)
    assert "tcp://a:1" not in text
    assert "tcp://b:1 failed the check: ModuleNotFoundError" in text and "Install ensemble_hpo" in text
    assert "tcp://c:1 would sign run-folder artifacts with another key" in text
    assert "tcp://c:1 does not see the run folder '/nfs/run/artifacts'" in text
    assert "tcp://d:1 runs ensemble_hpo 0.9" in text and "tcp://d:1: cannot open the study" in text
    assert len(problems) == 5


def test_unreachable_scheduler_fails_at_once_with_a_clear_error():
    pytest.importorskip("distributed")
    import dask

    address = f"tcp://127.0.0.1:{_free_port()}"  # nothing listens there
    start = time.time()
    with dask.config.set({"distributed.comm.timeouts.connect": "2s"}):
        with pytest.raises(ClusterError, match="could not be reached"):
            with _joblib_backend(address):
                pass
    assert time.time() - start < 20


def test_extra_worker_refuses_a_run_folder_that_is_not_the_runs(tmp_path, capsys):
    from ensemble_hpo.cli import EXIT_DATA, EXIT_USAGE, main

    url = f"journal://{tmp_path / 'study.log'}"
    study = optuna.create_study(study_name=STUDY, storage=make_storage(url), direction="maximize")
    study.add_trial(optuna.trial.create_trial(value=0.9, params={}, distributions={}))
    (tmp_path / "run" / "artifacts").mkdir(parents=True)  # the run's folder holds no artifact 0
    config = _config(tmp_path / "cluster.yaml")
    code = main(["worker", str(config), "--storage", url, "--run-dir", str(tmp_path / "private")])
    assert code == EXIT_DATA
    assert "holds none of the artifacts of the study's 1 finished trials" in capsys.readouterr().err
    assert not (tmp_path / "private").exists()  # refused before anything was written
    code = main(["worker", str(config), "--storage", str(tmp_path / "study.db")])
    assert code == EXIT_USAGE
    assert "The '--storage' option must be a storage other processes can open" in capsys.readouterr().err



def test_a_rerun_of_a_lost_workers_task_samples_new_parameters():
    # Dask re-runs the search task of a killed worker elsewhere; with the first attempt's
    # seed, its sampler would propose the parameters that attempt already trained.
    study = optuna.create_study(direction="maximize")
    study.add_trial(optuna.trial.create_trial(value=0.5, user_attrs={SEARCH_TASK_ATTR: 1}))
    assert attempt_seed(7, 0, study.trials) == 7  # first attempt of task 0: its own seed
    assert attempt_seed(None, 1, study.trials) is None
    retry = attempt_seed(7, 1, study.trials)
    assert retry != 7
    distribution = optuna.distributions.FloatDistribution(0.0, 1.0)

    def first(seed: int | None) -> float:
        sampler = optuna.samplers.RandomSampler(seed=seed)
        return sampler.sample_independent(study, study.ask(), "x", distribution)

    assert first(7) != first(retry)
