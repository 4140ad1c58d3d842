"""Scratch folders of parallel runs without a run folder: removed by the next run once orphaned."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from ensemble_hpo import EnsembleClassifier
from ensemble_hpo.search import _scratch


@pytest.fixture
def scratch_places(tmp_path, monkeypatch):
    """The temporary folder and the RAM folder, both inside ``tmp_path``."""
    tmp, ram = tmp_path / "tmp", tmp_path / "ram"
    tmp.mkdir(), ram.mkdir()
    monkeypatch.setattr("tempfile.tempdir", str(tmp))
    monkeypatch.setattr(_scratch, "RAM_FOLDER", ram)
    return tmp, ram


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def _folder(parent: Path, name: str, owner: str | None) -> Path:
    folder = parent / f"ensemble_hpo-{name}"
    folder.mkdir()
    (folder / "study.log").write_text("x")
    if owner is not None:
        (folder / ".owner").write_text(owner)
    return folder


def test_only_folders_of_ended_local_processes_are_removed(scratch_places):
    tmp, ram = scratch_places
    host = socket.gethostname()
    dead = [_folder(tmp, "dead", f"{host}:{_dead_pid()}"), _folder(ram, "dead", f"{host}:{_dead_pid()}")]
    kept = [_folder(tmp, "live", f"{host}:{os.getpid()}"),
            _folder(tmp, "other-host", f"not-{host}:{_dead_pid()}"),
            _folder(ram, "no-owner", None)]
    (tmp / "not_ours").mkdir()

    assert sorted(_scratch.remove_orphaned_scratch()) == sorted(dead)
    assert not any(folder.exists() for folder in dead)
    assert all(folder.exists() for folder in kept)
    assert (tmp / "not_ours").exists()


def test_new_scratch_folders_name_this_process(scratch_places):
    tmp, ram = scratch_places
    artifacts, journal = _scratch.new_scratch_folders()
    assert artifacts.parent == tmp and journal.parent == ram
    for folder in (artifacts, journal):
        assert (folder / ".owner").read_text() == f"{socket.gethostname()}:{os.getpid()}"
    assert not _scratch.remove_orphaned_scratch()  # ours, and we are alive


KILLED_FIT = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    import tempfile
    from sklearn.datasets import load_breast_cancer
    from ensemble_hpo import EnsembleClassifier
    from ensemble_hpo.search import _scratch
    tempfile.tempdir = sys.argv[1]
    _scratch.RAM_FOLDER = Path(sys.argv[2])
    X, y = load_breast_cancer(return_X_y=True)
    EnsembleClassifier(models=["extra_trees"], search="random", n_trials=500, cv=3, n_jobs=2,
                       random_state=0, warm_start_configs=None).fit(X, y)
    """
)


def test_a_parallel_fit_removes_the_scratch_of_a_fit_killed_with_sigterm(scratch_places, tmp_path):
    """Audit: each fit killed with SIGTERM left 200-300 MB in /tmp and a journal in /dev/shm."""
    tmp, ram = scratch_places
    script = tmp_path / "fit.py"
    script.write_text(KILLED_FIT)
    process = subprocess.Popen([sys.executable, str(script), str(tmp), str(ram)])
    try:
        deadline = time.time() + 120
        while not list(tmp.glob("ensemble_hpo-*/artifacts/*")) and time.time() < deadline:
            time.sleep(0.2)  # until the workers have stored a candidate
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
    left = list(tmp.glob("ensemble_hpo-*")) + list(ram.glob("ensemble_hpo-*"))
    assert len(left) == 2  # what SIGTERM leaves behind: the artifacts and the journal

    X, y = _small_data()
    EnsembleClassifier(models=["logistic"], search="random", n_trials=2, cv=3, n_jobs=2,
                       random_state=0, warm_start_configs=None).fit(X, y)
    assert not any(folder.exists() for folder in left)
    assert not list(tmp.glob("ensemble_hpo-*")) and not list(ram.glob("ensemble_hpo-*"))


def _small_data():
    from sklearn.datasets import load_breast_cancer

    X, y = load_breast_cancer(return_X_y=True)
    return X[:150], y[:150]
