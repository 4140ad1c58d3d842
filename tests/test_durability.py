"""Durable runs: resume after SIGKILL, concurrent workers on shared storages, Dask."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import optuna
import pytest
import yaml

from ensemble_hpo import EnsembleClassifier
from ensemble_hpo.persistence import UntrustedArtifactError
from ensemble_hpo.population import FileArtifactStore
from ensemble_hpo.storage import OwnedJournalLock, make_storage

PG_ADMIN = "postgresql://postgres@127.0.0.1:54329/postgres"


def _postgres_url() -> str | None:
    try:
        import psycopg

        conn = psycopg.connect(PG_ADMIN, connect_timeout=3, autocommit=True)
    except Exception:
        return None
    name = f"ehpo_{uuid.uuid4().hex[:10]}"
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE {name}")
    conn.close()
    return f"postgresql://postgres@127.0.0.1:54329/{name}"


SCRIPT = textwrap.dedent(
    """
    import sys
    from sklearn.datasets import load_breast_cancer
    from ensemble_hpo import EnsembleClassifier
    X, y = load_breast_cancer(return_X_y=True)
    EnsembleClassifier(models=["logistic", "knn", "extra_trees"], search="random", n_trials=int(sys.argv[2]),
                       cv=3, random_state=0, run_dir=sys.argv[1], warm_start_configs=None).fit(X, y)
    """
)


def _study(run_dir: Path) -> optuna.Study:
    storage = make_storage(f"journal://{run_dir / 'study.log'}")
    return optuna.load_study(study_name="ensemble_hpo", storage=storage)


def test_sigkill_mid_search_then_resume_loses_and_retrains_nothing(tmp_path):
    run_dir = tmp_path / "run"
    script = tmp_path / "fit.py"
    script.write_text(SCRIPT)
    proc = subprocess.Popen([sys.executable, str(script), str(run_dir), "40"])
    artifacts = run_dir / "artifacts"
    deadline = time.time() + 120
    # Artifacts are written just before their trial completes, so 5 files mean at least
    # 4 COMPLETE trials (a sequential run starts the next trial only after that).
    while time.time() < deadline and len(list(artifacts.glob("*.oof.npy"))) < 5:
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = {t.number: t for t in _study(run_dir).trials if t.state == optuna.trial.TrialState.COMPLETE}
    assert len(before) >= 4
    store = FileArtifactStore(artifacts)
    assert all(n in store for n in before)  # every finished candidate kept its artifacts

    n_total = len(before) + 3
    X, y = __import__("sklearn.datasets", fromlist=["x"]).load_breast_cancer(return_X_y=True)
    resumed = EnsembleClassifier(models=["logistic", "knn", "extra_trees"], search="random",
                                 n_trials=n_total, cv=3, random_state=0, run_dir=str(run_dir),
                                 warm_start_configs=None).fit(X, y)
    after = _study(run_dir).trials
    complete = [t for t in after if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete) == n_total
    for number, trial in before.items():  # finished candidates untouched, not retrained
        assert after[number].datetime_complete == trial.datetime_complete
        assert after[number].user_attrs["fit_time"] == trial.user_attrs["fit_time"]
    interrupted = [t for t in after if t.user_attrs.get("status") == "interrupted"]
    assert len(interrupted) <= 1
    ok = resumed.leaderboard_[resumed.leaderboard_["status"] == "ok"]
    assert len(ok) == n_total
    assert set(resumed.ensemble_.summary()["number"]) <= set(ok["number"])


def _worker_config(tmp_path: Path) -> Path:
    config = {
        "name": "shared",
        "data": {"builtin": "breast_cancer"},
        # A continuous space: two equal parameter sets can only come from duplicated work.
        "search": {"strategy": "random", "models": ["logistic"], "n_trials": 12,
                   "warm_start": None},
        "cv": 3, "random_state": 0, "verbose": 0,
    }
    path = tmp_path / "shared.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.parametrize("backend", ["journal", "postgresql"])
def test_concurrent_workers_share_one_study_without_loss_or_duplicates(backend, tmp_path):
    url = f"journal://{tmp_path / 'study.log'}" if backend == "journal" else _postgres_url()
    if url is None:
        pytest.skip("PostgreSQL is not running on 127.0.0.1:54329 (.ci/services.sh starts it)")
    # 30 trials: with 12, a worker that started first (a cold clone compiles its .pyc files
    # while the others wait) could finish them all before the others joined (CI, 2026-12-07).
    config, run_dir, n_trials, n_workers = _worker_config(tmp_path), tmp_path / "run", 30, 3
    workers = [
        subprocess.Popen([sys.executable, "-m", "ensemble_hpo.cli", "worker", str(config),
                          "--storage", url, "--run-dir", str(run_dir), "--n-trials", str(n_trials)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(n_workers)
    ]
    for w in workers:
        _, err = w.communicate(timeout=300)
        assert w.returncode == 0, err
    study = optuna.load_study(study_name="ensemble_hpo", storage=make_storage(url))
    numbers = [t.number for t in study.trials]
    assert numbers == list(range(len(numbers)))  # no trial lost
    # Exactly the budget: a worker that started one trial too many in the same instant
    # as another had it pruned as surplus before it sampled or trained anything.
    trials = [t for t in study.trials if t.user_attrs.get("status") != "surplus"]
    assert len(trials) == n_trials
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    assert all(t.state == optuna.trial.TrialState.PRUNED and not t.params
               for t in study.trials if t not in trials)
    assert len({t.user_attrs["worker"] for t in trials}) >= 2  # the work was really shared
    store = FileArtifactStore(run_dir / "artifacts")
    assert all(t.number in store for t in trials)
    params = [tuple(sorted(t.params.items())) for t in trials]
    assert len(set(params)) == len(params)  # none duplicated

    # The main process then selects from the shared population without training more.
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split

    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    X_train, _, y_train, _ = train_test_split(X, y, test_size=0.25, stratify=y, random_state=0)
    model = EnsembleClassifier(models=["logistic"], search="random", n_trials=len(trials),
                               cv=3, random_state=0, storage=url, run_dir=str(run_dir),
                               warm_start_configs=None).fit(X_train, y_train)
    assert len(model.leaderboard_) == len(trials)
    assert model.selection_score_ >= model.best_score_ - 1e-9
    assert np.isfinite(model.cv_score_)


@pytest.mark.parametrize("objective", ["candidate", "ensemble"])
def test_dask_local_cluster_run_gives_an_ensemble(tmp_path, objective):
    distributed = pytest.importorskip("distributed")
    from sklearn.datasets import load_breast_cancer

    X, y = load_breast_cancer(return_X_y=True)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        model = EnsembleClassifier(models=["logistic", "knn"], n_trials=6, cv=3, n_jobs=2, backend=client,
                                   run_dir=str(tmp_path / "run"), random_state=0,
                                   objective=objective).fit(X, y)
    assert len(model.leaderboard_) >= 6
    assert (model.leaderboard_["status"] == "ok").all()
    assert len({t.user_attrs["worker"] for t in model.trials_}) == 2
    assert model.predict(X[:3]).shape == (3,)
    complete = [t for t in model.trials_ if t.value is not None]
    # Dask workers compute each gain from the shared run folder's stored predictions.
    assert all(("ensemble_score" in t.user_attrs) == (objective == "ensemble") for t in complete)
    assert (model.leaderboard_["score"].sort_values().tolist()
            == sorted(t.user_attrs["score"] for t in complete))


def test_file_store_round_trips_artifacts_and_reads_folders_of_earlier_versions(tmp_path):
    import joblib
    import numpy as np
    from sklearn.datasets import load_breast_cancer
    from sklearn.ensemble import RandomForestClassifier

    X, y = load_breast_cancer(return_X_y=True)
    forest = RandomForestClassifier(n_estimators=5, random_state=0).fit(X, y)
    proba = forest.predict_proba(X)
    store = FileArtifactStore(tmp_path)
    store.save(0, proba, [forest])
    # Written atomically: only the finished files remain, no temporary leftovers.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["000000.models.pkl", "000000.oof.npy"]
    assert store.load_predictions(0).dtype == np.float32
    np.testing.assert_array_equal(store.load_models(0)[0].predict_proba(X), proba)
    # Run folders written before models were pickled directly still resume, but they are
    # unsigned, so only when trusted (issue 15).
    joblib.dump([forest], tmp_path / "000001.models.joblib")
    np.save(tmp_path / "000001.oof.npy", proba.astype(np.float32))
    assert 1 in store and store.has_models(1)
    with pytest.raises(UntrustedArtifactError, match="trusted=True"):
        store.load_models(1)
    trusted = FileArtifactStore(tmp_path, trusted=True)
    np.testing.assert_array_equal(trusted.load_models(1)[0].predict_proba(X), proba)


def test_ctrl_c_in_a_sequential_run_leaves_an_interrupted_trial_that_resume_replaces(tmp_path, monkeypatch):
    from ensemble_hpo.population import CandidateEvaluator

    X, y = __import__("sklearn.datasets", fromlist=["x"]).load_breast_cancer(return_X_y=True)
    kwargs = dict(models=["logistic", "knn"], search="random", n_trials=4, cv=3, random_state=0,
                  run_dir=str(tmp_path / "run"), warm_start_configs=None)
    evaluate, calls = CandidateEvaluator.evaluate, []

    def interrupted_on_the_third(self, *args, **kw):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return evaluate(self, *args, **kw)

    monkeypatch.setattr(CandidateEvaluator, "evaluate", interrupted_on_the_third)
    with pytest.raises(KeyboardInterrupt):
        EnsembleClassifier(**kwargs).fit(X, y)
    monkeypatch.setattr(CandidateEvaluator, "evaluate", evaluate)
    resumed = EnsembleClassifier(**kwargs).fit(X, y)
    statuses = {t.number: t.user_attrs.get("status") for t in _study(tmp_path / "run").trials}
    assert statuses[2] == "interrupted"
    assert (resumed.leaderboard_["status"] == "ok").sum() == 4


@pytest.mark.parametrize(("search", "n_jobs"), [("random", 1), ("tpe", 1), ("genetic", 1), ("tpe", 2)])
def test_extending_a_seeded_run_proposes_new_configurations(tmp_path, search, n_jobs):
    """Before, the resumed sampler restarted its seeded stream: 4 of 8 configurations repeated.

    One continuous parameter (logistic C), so that only a restarted stream repeats a value
    (TPE workers may meet on a small discrete space such as knn's).
    """
    from sklearn.datasets import load_breast_cancer

    X, y = load_breast_cancer(return_X_y=True)
    kwargs = dict(models=["logistic"], search=search, cv=3, random_state=0, n_jobs=n_jobs,
                  run_dir=str(tmp_path), warm_start_configs=None)
    EnsembleClassifier(n_trials=4, **kwargs).fit(X[:200], y[:200])
    EnsembleClassifier(n_trials=8, **kwargs).fit(X[:200], y[:200])
    trials = [t for t in _study(tmp_path).get_trials() if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(trials) == 8
    assert len({repr(sorted(t.params.items())) for t in trials}) == 8


def test_a_worker_whose_fit_died_stops_after_its_trial(monkeypatch):
    """A fit killed with SIGTERM left its loky workers training until the budget was spent,
    racing the resumed fit's workers (audit): a re-parented worker now stops its study."""
    from ensemble_hpo.search import _runner

    stops = []

    class Study:
        def stop(self):
            stops.append(True)

    monkeypatch.setattr(_runner.os, "getppid", lambda: 4242)
    check = _runner.StopWhenOrphaned()
    check(Study(), None)
    assert not stops
    monkeypatch.setattr(_runner.os, "getppid", lambda: 1)  # the parent died: re-parented
    check(Study(), None)
    assert stops


def test_a_candidate_that_crashes_its_worker_process_does_not_end_the_fit():
    # Audit: with n_jobs=2 one candidate ending its process (as a segfault does) broke
    # loky's pool, and the fit failed and lost every finished candidate.
    from _estimators_for_tests import FlakyClassifier
    from optuna.distributions import CategoricalDistribution
    from sklearn.datasets import load_breast_cancer

    from ensemble_hpo.spaces import ModelFamily

    X, y = load_breast_cancer(return_X_y=True)
    crashy = ModelFamily("crashy", classifier=FlakyClassifier,
                         params={"mode": CategoricalDistribution(["crash"])})
    model = EnsembleClassifier(models=[crashy, "knn", "logistic"], search="random", n_trials=8,
                               cv=3, n_jobs=2, random_state=0, warm_start_configs=None)
    with pytest.warns(RuntimeWarning, match="worker process died while training a candidate"):
        model.fit(X[:200], y[:200])
    board = model.leaderboard_
    assert (board["status"] == "interrupted").any()
    finished = board[board["status"] == "ok"]
    assert len(finished) >= 2
    # The new workers draw new parameters (with the first ones' seeds they proposed them again).
    assert finished["params"].map(repr).is_unique
    assert model.predict(X[:5]).shape == (5,)


def _ended_process_tag() -> str:
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    return f"{socket.gethostname()}:{ended.pid}"


def test_a_journal_lock_left_by_an_ended_process_is_broken_at_once(tmp_path):
    """Audit: a fit killed while writing its journal left the lock, and every later fit on
    the folder waited Optuna's 30 s grace period. A live owner's lock is kept."""
    journal = tmp_path / "study.log"
    lock = Path(str(journal) + ".lock")
    lock.write_text(_ended_process_tag())
    start = time.monotonic()
    study = optuna.create_study(storage=make_storage(f"journal://{journal}"))
    study.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=2)
    assert time.monotonic() - start < 10 and not lock.exists()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        lock.write_text(f"{socket.gethostname()}:{live.pid}")
        waiting = OwnedJournalLock(str(journal))
        done = threading.Thread(target=waiting.acquire, daemon=True)
        done.start()
        done.join(2.0)
        assert done.is_alive()  # still waiting for the live owner
        lock.unlink()  # the owner releases it
        done.join(5.0)
        assert not done.is_alive() and lock.read_text() == f"{socket.gethostname()}:{os.getpid()}"
    finally:
        live.kill()


KILLED_IN_FIRST_CANDIDATE = textwrap.dedent(
    """
    import sys, time
    from optuna.distributions import FloatDistribution
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from ensemble_hpo import EnsembleClassifier
    from ensemble_hpo.spaces import ModelFamily

    class Sleepy(LogisticRegression):
        def fit(self, X, y, sample_weight=None):
            time.sleep(120)
            return super().fit(X, y)

    X, y = load_breast_cancer(return_X_y=True)
    # Two warm starts: one RUNNING when killed, one left WAITING.
    family = ModelFamily("sleepy", classifier=Sleepy, params={"C": FloatDistribution(0.1, 1.0)},
                         portfolio=({"C": 0.5}, {"C": 0.7}))
    EnsembleClassifier(models=[family], n_trials=3, cv=3, random_state=0,
                       run_dir=sys.argv[1]).fit(X[:150], y[:150])
    """
)


def test_a_fit_killed_in_its_first_candidate_does_not_block_the_corrected_fit(tmp_path):
    """Audit: the dead process's RUNNING trial (and its enqueued warm starts) made the study
    look active, and the corrected fit was refused though nothing had finished."""
    run_dir = tmp_path / "run"
    script = tmp_path / "fit.py"
    script.write_text(KILLED_IN_FIRST_CANDIDATE)
    proc = subprocess.Popen([sys.executable, str(script), str(run_dir)])
    deadline = time.time() + 120
    running = []
    while time.time() < deadline and not running and proc.poll() is None:
        time.sleep(0.3)
        if (run_dir / "study.log").exists():
            running = [t for t in _study(run_dir).trials if "worker" in t.user_attrs]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert running, "the fit never started a candidate"
    X, y = __import__("sklearn.datasets", fromlist=["x"]).load_breast_cancer(return_X_y=True)
    with pytest.warns(UserWarning, match="none of its .* trials finished .* replaced by a new study"):
        model = EnsembleClassifier(models=["logistic"], n_trials=2, cv=3, random_state=0,
                                   run_dir=str(run_dir)).fit(X[:200], y[:200])
    assert (model.leaderboard_["status"] == "ok").sum() == 2


def test_a_journal_line_cut_by_a_killed_writer_does_not_cost_the_run(tmp_path):
    """Session 26's note: a journal whose last line was cut short (its writer killed) resumed
    once, then the appended line had joined the cut one and the journal was unreadable."""
    from sklearn.datasets import load_breast_cancer

    X, y = load_breast_cancer(return_X_y=True)
    kw = dict(models=["logistic"], search="random", cv=3, random_state=0, warm_start_configs=None,
              run_dir=str(tmp_path / "run"))
    EnsembleClassifier(n_trials=2, **kw).fit(X[:150], y[:150])
    journal = tmp_path / "run" / "study.log"
    whole = journal.read_bytes()
    with open(journal, "ab") as handle:
        handle.write(b'{"op_code": 5, "worker_id": "ab')
    with pytest.warns(UserWarning, match="cut short .* 31 bytes were removed"):
        EnsembleClassifier(n_trials=3, **kw).fit(X[:150], y[:150])
    assert journal.read_bytes().startswith(whole)
    assert len(EnsembleClassifier(n_trials=4, **kw).fit(X[:150], y[:150]).trials_) == 4
