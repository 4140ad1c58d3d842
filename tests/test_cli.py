"""The ensemble-hpo command line, through real subprocesses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.datasets import load_iris

TINY = {
    "name": "tiny",
    "data": {"builtin": "iris", "test_size": 0.3},
    "search": {"strategy": "random", "models": ["logistic", "knn"], "n_trials": 3},
    "cv": 3,
    "random_state": 0,
    "verbose": 0,
}


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run([sys.executable, "-m", "ensemble_hpo.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture()
def tiny_config(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(TINY))
    return path


@pytest.mark.parametrize("command", [[], ["run"], ["resume"], ["predict"], ["report"], ["worker"]])
def test_help_everywhere(command, tmp_path):
    result = _cli(*command, "--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "usage: ensemble-hpo" in result.stdout


def test_run_predict_and_resume(tiny_config, tmp_path):
    run_dir = tmp_path / "out"
    result = _cli("run", str(tiny_config), "-o", str(run_dir), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "held-out test" in result.stdout and "best single" in result.stdout
    # Each number says what it is: the nested estimate, and the optimistic in-sample one.
    assert "selection and fusion repeated inside the folds" in result.stdout
    assert "in-sample" in result.stdout and "optimistic" in result.stdout
    for name in ("config.yaml", "summary.json", "leaderboard.csv", "model.ehpo", "study.log",
                 "fusion_comparison.csv", "prediction_cost.csv"):
        assert (run_dir / name).exists(), name
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["n_candidates"] == 3
    # Selection on all out-of-fold rows is never worse than its best single there (in-sample).
    assert summary["selection_score_in_sample"] >= summary["oof_score_best_candidate"] - 1e-9
    # Choosing the best single inside the folds can only do worse than its own best score.
    assert summary["cv_score_best_single"] <= summary["oof_score_best_candidate"] + 1e-12
    assert np.isfinite(summary["cv_score_ensemble"])
    assert summary["ensemble_seconds_per_row"] > 0
    assert {row["fusion"] for row in summary["fusion_comparison"]} >= {"WeightedAverage", "Stacking"}

    X, _ = load_iris(return_X_y=True, as_frame=True)
    X.head(7).to_csv(tmp_path / "rows.csv", index=False)
    result = _cli("predict", str(run_dir), str(tmp_path / "rows.csv"), "-o", str(tmp_path / "p.csv"),
                  cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    predictions = pd.read_csv(tmp_path / "p.csv")
    assert len(predictions) == 7 and "proba_0" in predictions.columns

    # Resume with a larger budget: the 3 finished candidates are kept, 2 new ones trained.
    result = _cli("resume", str(run_dir), "--set", "search.n_trials=5", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    board = pd.read_csv(run_dir / "leaderboard.csv")
    assert sorted(board["number"]) == [0, 1, 2, 3, 4]

    # Re-select and re-fuse the finished population without training anything.
    result = _cli("resume", str(run_dir), "--no-train", "--set", "fusion.method=hard_voting",
                  "--quiet", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    again = pd.read_csv(run_dir / "leaderboard.csv")
    assert sorted(again["number"]) == [0, 1, 2, 3, 4]
    assert list(again["fit_time"]) == list(board.set_index("number").loc[again["number"], "fit_time"])


def test_existing_run_folder_is_not_overwritten(tiny_config, tmp_path):
    run_dir = tmp_path / "out"
    assert _cli("run", str(tiny_config), "-o", str(run_dir), cwd=tmp_path).returncode == 0
    again = _cli("run", str(tiny_config), "-o", str(run_dir), cwd=tmp_path)
    assert again.returncode == 3
    assert "already holds a run" in again.stderr


def test_bad_config_value_names_key_value_and_allowed(tmp_path):
    bad = dict(TINY, search={**TINY["search"], "strategy": "annealing"})
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(bad))
    result = _cli("run", str(path), "-o", str(tmp_path / "never"), cwd=tmp_path)
    assert result.returncode == 2
    assert "search.strategy" in result.stderr and "annealing" in result.stderr and "'tpe'" in result.stderr
    assert not (tmp_path / "never").exists()


def test_set_override_with_unknown_key_is_rejected(tiny_config, tmp_path):
    result = _cli("run", str(tiny_config), "--set", "search.n_trails=5", cwd=tmp_path)
    assert result.returncode == 2
    assert "search.n_trails" in result.stderr


def test_missing_files_give_data_exit_code(tmp_path):
    assert _cli("run", str(tmp_path / "nope.yaml"), cwd=tmp_path).returncode == 2
    assert _cli("resume", str(tmp_path), cwd=tmp_path).returncode == 3
    assert _cli("predict", str(tmp_path), "x.csv", cwd=tmp_path).returncode == 3


def test_run_storage_opens_in_optuna_dashboard(tiny_config, tmp_path):
    pytest.importorskip("optuna_dashboard")
    import json as _json
    import socket
    import time
    import urllib.request

    run_dir = tmp_path / "out"
    assert _cli("run", str(tiny_config), "-o", str(run_dir), cwd=tmp_path).returncode == 0
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(["optuna-dashboard", str(run_dir / "study.log"), "--host", "127.0.0.1",
                               "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        body = None
        for _ in range(60):  # bounded wait for the server to come up
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=2) as r:
                    body = _json.loads(r.read())
                break
            except OSError:
                time.sleep(0.5)
        assert body is not None, "optuna-dashboard did not answer"
        assert [s["study_name"] for s in body["study_summaries"]] == ["ensemble_hpo"]
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_report_command_writes_html_and_figures(tiny_config, tmp_path):
    run_dir = tmp_path / "out"
    assert _cli("run", str(tiny_config), "-o", str(run_dir), cwd=tmp_path).returncode == 0
    result = _cli("report", str(run_dir), "--no-learning-curves", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    html = (run_dir / "report" / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 5
    assert (run_dir / "report" / "figures" / "ensemble_weights.png").exists()
    assert _cli("report", str(tmp_path / "nope"), cwd=tmp_path).returncode == 3


def test_a_relative_data_path_is_found_from_any_directory_later(tmp_path, monkeypatch):
    """The run folder kept 'wine.csv' as written: resume and report from elsewhere failed,
    and report needed the table even without learning curves (audit)."""
    from ensemble_hpo.cli import main

    X, y = load_iris(return_X_y=True, as_frame=True)
    work, elsewhere = tmp_path / "work", tmp_path / "elsewhere"
    work.mkdir()
    elsewhere.mkdir()
    X.assign(species=y).to_csv(work / "iris.csv", index=False)
    config = {**TINY, "data": {"path": "iris.csv", "target": "species", "test_size": 0.3}}
    (work / "tiny.yaml").write_text(yaml.safe_dump(config))
    monkeypatch.chdir(work)
    assert main(["run", "tiny.yaml", "-o", str(tmp_path / "run"), "-q"]) == 0
    stored = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert stored["data"]["path"] == str(work / "iris.csv")
    monkeypatch.chdir(elsewhere)
    assert main(["report", str(tmp_path / "run"), "--no-learning-curves"]) == 0
    # resume --set with a relative path, from the table's directory: recorded absolute too.
    monkeypatch.chdir(work)
    (work / "iris.csv").rename(work / "moved.csv")
    assert main(["resume", str(tmp_path / "run"), "--set", "data.path=moved.csv", "-q"]) == 0
    stored = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert stored["data"]["path"] == str(work / "moved.csv")
    monkeypatch.chdir(elsewhere)
    (work / "moved.csv").unlink()  # without curves the table is not read at all
    assert main(["report", str(tmp_path / "run"), "--no-learning-curves"]) == 0


def test_a_semicolon_csv_with_question_marks_runs_with_sep_and_na_values(tmp_path, capsys):
    """Audit: a ';'-separated file showed one column 'sepal length (cm);...' and no word
    why; '?' for missing made a number column a category. data.sep and data.na_values read
    it, at run and at predict."""
    from ensemble_hpo.cli import main

    X, y = load_iris(return_X_y=True, as_frame=True)
    table = X.assign(species=y).astype({"petal width (cm)": object})
    table.loc[::15, "petal width (cm)"] = "?"
    table.to_csv(tmp_path / "iris.csv", sep=";", index=False)
    config = {**TINY, "data": {"path": str(tmp_path / "iris.csv"), "target": "species"}}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    assert main(["run", str(tmp_path / "c.yaml"), "-o", str(tmp_path / "a"), "-q"]) == 3
    assert "looks ';'-separated: set 'data.sep: ';''" in capsys.readouterr().err
    config["data"].update(sep=";", na_values=["?"])
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(["run", str(tmp_path / "c.yaml"), "-o", str(tmp_path / "b"), "-q"]) == 0
    assert not [w for w in caught if "read as categorical" in str(w.message)]
    out = tmp_path / "pred.csv"
    assert main(["predict", str(tmp_path / "b"), str(tmp_path / "iris.csv"), "-o", str(out)]) == 0
    assert len(pd.read_csv(out)) == len(table)
