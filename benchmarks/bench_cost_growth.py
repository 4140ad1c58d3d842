"""Cost growth: fit time, out-of-fold storage, selection time and memory against rows and candidates.

Run from the repository root (about 8-12 minutes on the shared 2-core machine)::

    python -m benchmarks.bench_cost_growth                 # full run, writes the report
    python -m benchmarks.bench_cost_growth --quick         # small sizes, to check the script

Writes ``benchmarks/results/cost_growth.md``, ``cost_growth.csv``, ``cost_growth_rows.png`` and
``cost_growth_population.png``. Data: scikit-learn's ``make_classification`` (binary, 20
features), one table of the largest size whose first 10k / 100k / 1M rows are the smaller
sizes. A synthetic generator, not a real table up-sampled with noise: duplicated noisy rows
land on both sides of a CV split, which flatters the trees and changes their fit time.

Three experiments, every one through the library's own code:

* **rows**: a few candidates per family (fixed, capped hyperparameters, ``FAMILIES``) trained
  by the library's ``CandidateEvaluator`` on 3 shared stratified folds, one thread each, two at
  a time (``n_jobs=2`` processes, as ``fit(n_jobs=2)`` runs them), their out-of-fold
  predictions and fold models saved by ``FileArtifactStore`` in a run folder; then selection
  on them, and on 100 candidates perturbed from them, at each row count.
* **population**: 100 / 1,000 / 5,000 candidates at 10k rows, written through the same
  store. Not a real search (5,000 real candidates are too slow here): each is a real 10k-row
  candidate's out-of-fold probabilities with logit noise, clipped and renormalised.
* **search**: a real 200-trial TPE search of logistic regression at 10k rows
  (``EnsembleClassifier(run_dir=...)``), for fit time and wall time per trial against the
  population size so far; its growth to 5,000 is extrapolated, and labelled so.

Selection (``GreedySelector(max_iter=50)`` on ``Population.predictions``) runs in a fresh
subprocess per measurement: ``ru_maxrss`` minus the baseline after imports, and the
``tracemalloc`` peak (numpy reports its allocations to it) of a second, identical pass.
"""

from __future__ import annotations

import argparse
import csv
import inspect
import json
import os
import resource
import shutil
import subprocess
import sys
import time
import tracemalloc
import warnings
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path(__file__).parent / "results"
ROOT = Path(__file__).resolve().parents[1]
N_FOLDS = 3
MAX_ITER = 50
N_JOBS = 2
PERTURBED_PER_ROWS = 100  # candidates of the selection-vs-rows library
# Fixed, capped hyperparameters: two configurations per family, the same at every row count.
FAMILIES: dict[str, list[dict[str, Any]]] = {
    "logistic": [{"C": 1.0}, {"C": 0.01}],
    "hist_gradient_boosting": [
        {"learning_rate": 0.1, "max_leaf_nodes": 31, "min_samples_leaf": 20,
         "l2_regularization": 1e-6, "max_iter": 100},
        {"learning_rate": 0.05, "max_leaf_nodes": 15, "min_samples_leaf": 50,
         "l2_regularization": 1.0, "max_iter": 100},
    ],
    "xgboost": [
        {"learning_rate": 0.1, "max_depth": 6, "n_estimators": 100},
        {"learning_rate": 0.05, "max_depth": 4, "n_estimators": 100, "subsample": 0.8},
    ],
    "random_forest": [
        {"n_estimators": 20, "max_depth": 12, "max_features": "sqrt", "max_samples": 0.5},
        {"n_estimators": 20, "max_depth": 8, "max_features": 0.5, "max_samples": 0.5},
    ],
}


# --------------------------------------------------------------------------- data and fits


def make_data(n_rows: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import make_classification

    return make_classification(n_samples=n_rows, n_features=20, n_informative=10, n_redundant=4,
                               flip_y=0.05, class_sep=0.8, random_state=0)


def _fit_one(X: np.ndarray, y: np.ndarray, splits: list, number: int, family: str,
             params: dict[str, Any], store_path: str) -> dict[str, Any]:
    """One candidate through the library's evaluator and store (runs in a worker process)."""
    from ensemble_hpo._preprocessing import infer_column_kinds
    from ensemble_hpo.metrics import PredictionScorer
    from ensemble_hpo.population import CandidateEvaluator, FileArtifactStore, PipelineBuilder
    from ensemble_hpo.spaces import get_family

    # One thread per candidate, as the search sets it (n_threads=1), two candidates at a time.
    evaluator = CandidateEvaluator(X, y, splits, "classification",
                                   PredictionScorer("neg_log_loss", "classification"),
                                   n_classes=2, n_threads=1)
    estimator = PipelineBuilder(infer_column_kinds(X), "classification")(get_family(family), params, 0)
    result = evaluator.evaluate(estimator)
    FileArtifactStore(store_path).save(number, result.predictions, result.models)
    return {"number": number, "family": family, "params": json.dumps(params),
            "fit_time": result.fit_time, "score": result.score}


def fit_candidates(X: np.ndarray, y: np.ndarray, run_dir: Path) -> list[dict[str, Any]]:
    """Every configuration of ``FAMILIES`` on ``X``; artifacts in ``run_dir``'s store."""
    from joblib import Parallel, delayed
    from sklearn.model_selection import StratifiedKFold

    from ensemble_hpo._run_folder import RunFolder

    store = RunFolder(run_dir).artifact_store()
    splits = list(StratifiedKFold(N_FOLDS, shuffle=True, random_state=0).split(X, y))
    jobs = [(family, params) for family, configs in FAMILIES.items() for params in configs]
    rows = Parallel(n_jobs=N_JOBS)(
        delayed(_fit_one)(X, y, splits, number, family, params, str(store.path))
        for number, (family, params) in enumerate(jobs))
    np.save(run_dir / "y.npy", y)
    return rows


def artifact_bytes(run_dir: Path, kind: str, numbers: Sequence[int]) -> list[int]:
    """Bytes on disk of each candidate's ``oof.npy`` or ``models.pkl`` file."""
    from ensemble_hpo._run_folder import RunFolder

    folder = Path(RunFolder(run_dir).artifact_store().path)
    return [(folder / f"{int(n):06d}.{kind}").stat().st_size for n in numbers]


# --------------------------------------------------------------------------- perturbed candidates


def perturb(base: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A plausible other candidate: tempered log-probabilities plus row noise, renormalised."""
    logp = np.log(np.clip(base, 1e-7, 1.0))
    z = rng.uniform(0.7, 1.3) * logp + rng.uniform(0.05, 0.6) * rng.standard_normal(base.shape)
    z -= z.max(axis=-1, keepdims=True)
    p = np.exp(z)
    return (p / p.sum(axis=-1, keepdims=True)).astype(np.float32)


def write_perturbed(source: Path, bases: Sequence[int], n: int, dest: Path, seed: int = 0) -> float:
    """``n`` perturbed candidates in ``dest``'s store (cycling over ``bases``); seconds taken."""
    from ensemble_hpo._run_folder import RunFolder

    src, out = RunFolder(source).artifact_store(), RunFolder(dest).artifact_store()
    base_arrays = [np.asarray(src.load_predictions(b)) for b in bases]
    rng = np.random.default_rng(seed)
    start = time.perf_counter()
    for number in range(n):
        # No fold models: only the out-of-fold file matters for storage and selection.
        out.save(number, perturb(base_arrays[number % len(bases)], rng), [])
    shutil.copy(source / "y.npy", dest / "y.npy")
    return time.perf_counter() - start


# --------------------------------------------------------------------------- selection child


def _rss() -> int:
    """Peak resident bytes of this process's memory (VmHWM, which ``clear_refs`` resets).

    ``ru_maxrss`` is the same counter, but also the peak of exited threads' time (kept by the
    kernel apart), which the reset does not clear: after imports it stayed at the import peak.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def _reset_peak_rss() -> None:
    """Reset the high-water mark (Linux ``clear_refs`` 5), so the import peak cannot hide smaller ones."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass  # not Linux or not allowed: the baseline is then the import peak (an underestimate)


def memmap_option() -> str | None:
    """Name of a ``Population.predictions`` keyword that keeps the stack memory-mapped, if any."""
    from ensemble_hpo.population import Population

    params = inspect.signature(Population.predictions).parameters
    return next((name for name in ("out", "mmap", "memmap", "mmap_mode") if name in params), None)


def _build(population: Any, numbers: list[int], memmap: Path | None) -> np.ndarray:
    if memmap is None:
        return population.predictions(numbers)
    option = memmap_option()
    value = str(memmap) if option == "out" else True
    return population.predictions(numbers, **{option: value})


def selection_child(run_dir: Path, n_models: int, memmap: bool) -> dict[str, Any]:
    """Build the prediction array and select, timing both and measuring memory (fresh process)."""
    from ensemble_hpo._run_folder import RunFolder
    from ensemble_hpo.population import Candidate, Population
    from ensemble_hpo.selection import GreedySelector

    y = np.load(run_dir / "y.npy")
    numbers = list(range(n_models))
    candidates = [Candidate(n, None, {}, "ok", None) for n in numbers]
    population = Population(candidates, RunFolder(run_dir).artifact_store())
    out_file = run_dir / "stack.npy" if memmap else None
    _reset_peak_rss()
    baseline = _rss()
    start = time.perf_counter()
    preds = _build(population, numbers, out_file)
    build_s, after_build = time.perf_counter() - start, _rss()
    start = time.perf_counter()
    selector = GreedySelector(max_iter=MAX_ITER).fit(preds, y)
    select_s, after_fit = time.perf_counter() - start, _rss()
    facts = {"array_bytes": int(preds.nbytes), "shape": list(preds.shape),
             "stack_type": type(preds).__name__, "distinct": int(np.count_nonzero(selector.weights_)),
             "score": float(selector.score_)}
    del preds, selector  # the traced pass starts from the same state (and maps its own file)
    second = None if out_file is None else out_file.with_name("stack_traced.npy")
    traced = _traced_pass(population, numbers, second, y)
    return {**facts, "baseline": baseline, "after_build": after_build, "after_fit": after_fit,
            "build_s": build_s, "select_s": select_s, **traced}


def _traced_pass(population: Any, numbers: list[int], out_file: Path | None,
                 y: np.ndarray) -> dict[str, int]:
    """tracemalloc peaks of a second build and selection (numpy allocations, not file pages)."""
    from ensemble_hpo.selection import GreedySelector

    tracemalloc.start()
    preds = _build(population, numbers, out_file)
    build_peak = tracemalloc.get_traced_memory()[1]
    held = tracemalloc.get_traced_memory()[0]
    tracemalloc.reset_peak()
    GreedySelector(max_iter=MAX_ITER).fit(preds, y)
    select_peak = tracemalloc.get_traced_memory()[1] - held
    tracemalloc.stop()
    return {"traced_build_peak": build_peak, "traced_held": held, "traced_select_peak": select_peak}


def measure_selection(run_dir: Path, n_models: int, memmap: bool = False) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "benchmarks.bench_cost_growth", "--selection-child",
           str(run_dir), str(n_models)] + (["--memmap"] if memmap else [])
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=ROOT).stdout
    result = json.loads(out.strip().splitlines()[-1])
    for name in ("stack.npy", "stack_traced.npy"):
        (run_dir / name).unlink(missing_ok=True)
    return {**result, **chunk_reference(n_models, result["shape"])}


def chunk_reference(n_models: int, shape: list[int]) -> dict[str, int]:
    """Bytes of one float64 chunk of the (log-loss-reduced: true-class) library and the running sum."""
    from ensemble_hpo._checks import model_chunks

    row_elements = shape[1]  # log loss keeps the true-class column only
    first = next(model_chunks(n_models, row_elements))
    return {"chunk_bytes": (first.stop - first.start) * row_elements * 8,
            "running_bytes": row_elements * 8}


# --------------------------------------------------------------------------- real search


def real_search(X: np.ndarray, y: np.ndarray, run_dir: Path, n_trials: int) -> list[dict[str, Any]]:
    """A real TPE search of logistic regression; per-trial fit time and wall time."""
    from ensemble_hpo import EnsembleClassifier

    clf = EnsembleClassifier(models=["logistic"], search="tpe", n_trials=n_trials, cv=N_FOLDS,
                             n_jobs=N_JOBS, run_dir=str(run_dir), warm_start_configs=None,
                             random_state=0)
    start = time.perf_counter()
    clf.fit(X, y)
    total = time.perf_counter() - start
    trials = sorted((t for t in clf.trials_ if t.datetime_complete), key=lambda t: t.datetime_complete)
    first = min(t.datetime_start for t in trials)
    return [{"trial": i + 1, "fit_time": t.user_attrs.get("fit_time", np.nan),
             "done_s": (t.datetime_complete - first).total_seconds(),
             "trial_s": (t.datetime_complete - t.datetime_start).total_seconds(),
             "fit_total_s": total, "search_s": clf.fit_timings_.get("search", np.nan),
             "n_rows": len(y)}
            for i, t in enumerate(trials)]


# --------------------------------------------------------------------------- experiments


def rows_experiment(X: np.ndarray, y: np.ndarray, sizes: Sequence[int], work: Path,
                    memmap: bool) -> tuple[list[dict], list[dict]]:
    """Fits, storage and selection at each row count; returns (candidate rows, selection rows)."""
    fits, selections = [], []
    for n in sizes:
        run_dir = work / f"rows_{n}"
        t0 = time.perf_counter()
        cands = fit_candidates(X[:n], y[:n], run_dir)
        numbers = [c["number"] for c in cands]
        for c, oof, models in zip(cands, artifact_bytes(run_dir, "oof.npy", numbers),
                                  artifact_bytes(run_dir, "models.pkl", numbers), strict=True):
            fits.append({**c, "rows": n, "oof_bytes": oof, "models_bytes": models})
        print(f"rows {n}: {len(cands)} candidates in {time.perf_counter() - t0:.0f} s", flush=True)
        selections += selection_rows(run_dir, len(numbers), "real candidates", n, memmap)
        library = work / f"rows_{n}_library"
        write_perturbed(run_dir, numbers, PERTURBED_PER_ROWS, library)
        selections += selection_rows(library, PERTURBED_PER_ROWS, "perturbed", n, memmap)
        shutil.rmtree(library)
    return fits, selections


def selection_rows(run_dir: Path, n_models: int, kind: str, n_rows: int,
                   memmap: bool) -> list[dict[str, Any]]:
    """One measurement in memory, and one memory-mapped when the library offers it."""
    oof = sum(artifact_bytes(run_dir, "oof.npy", range(n_models)))
    modes = [False, True] if memmap else [False]
    out = []
    for mapped in modes:
        result = measure_selection(run_dir, n_models, memmap=mapped)
        out.append({"kind": kind, "rows": n_rows, "candidates": n_models, "oof_total_bytes": oof,
                    "stack": "memmap" if mapped else "memory", **result})
        print(f"  select {kind} {n_models} x {n_rows} ({out[-1]['stack']}): build "
              f"{result['build_s']:.2f} s, select {result['select_s']:.2f} s", flush=True)
    return out


def population_experiment(base_run: Path, sizes: Sequence[int], n_rows: int, work: Path,
                          memmap: bool) -> tuple[list[dict], float]:
    folder = work / "population"
    n_base = len(list((base_run / "artifacts").glob("*.oof.npy")))
    write_s = write_perturbed(base_run, range(n_base), max(sizes), folder)
    print(f"population: wrote {max(sizes)} candidates in {write_s:.0f} s", flush=True)
    rows = []
    for k in sizes:
        rows += selection_rows(folder, k, "population", n_rows, memmap)
    shutil.rmtree(folder)
    return rows, write_s


# --------------------------------------------------------------------------- summaries


def slope(x: Sequence[float], y: Sequence[float]) -> float:
    """Exponent b of y ~ x**b (least squares on logs)."""
    return float(np.polyfit(np.log(np.asarray(x, float)), np.log(np.asarray(y, float)), 1)[0])


def fit_table(fits: list[dict]) -> tuple[list[str], dict[str, float]]:
    import pandas as pd

    frame = pd.DataFrame(fits)
    med = frame.groupby(["family", "rows"])["fit_time"].median().unstack("family")
    slopes = {f: slope(med.index, med[f]) for f in med.columns}
    lines = ["| rows | " + " | ".join(med.columns) + " |", "|---" * (len(med.columns) + 1) + "|"]
    lines += [f"| {n:,} | " + " | ".join(f"{v:.2f}" for v in med.loc[n]) + " |" for n in med.index]
    lines.append("| **exponent** (fit time ~ rows^b) | "
                 + " | ".join(f"**{slopes[f]:.2f}**" for f in med.columns) + " |")
    return lines, slopes


def storage_table(fits: list[dict]) -> list[str]:
    import pandas as pd

    frame = pd.DataFrame(fits)
    lines = ["| rows | oof bytes / candidate | oof bytes, all candidates | bytes / row / candidate "
             "| fold-model bytes / candidate (median; min-max) |", "|---|---|---|---|---|"]
    for n, g in frame.groupby("rows"):
        lines.append(f"| {n:,} | {g.oof_bytes.median():,.0f} | {g.oof_bytes.sum():,} ({len(g)}) | "
                     f"{g.oof_bytes.median() / n:.2f} | {g.models_bytes.median():,.0f}; "
                     f"{g.models_bytes.min():,}-{g.models_bytes.max():,} |")
    by_family = frame.groupby(["family", "rows"]).models_bytes.median().unstack("rows")
    lines += ["", "Fold-model bytes per candidate by family (median of 2, three fold models):", "",
              "| family | " + " | ".join(f"{n:,} rows" for n in by_family.columns) + " |",
              "|---" * (len(by_family.columns) + 1) + "|"]
    lines += [f"| {f} | " + " | ".join(f"{v / 1e6:.2f} MB" for v in by_family.loc[f]) + " |"
              for f in by_family.index]
    return lines


def _mb(value: float) -> str:
    return f"{value / 1e6:,.1f}"


def selection_table(rows: list[dict], first: str) -> list[str]:
    lines = [f"| {first} | stack | array MB | oof on disk MB | build s | select s | ns / (cand x row x iter) "
             "| peak RSS - baseline MB | peak / array | peak / chunk | selection's own peak "
             "(tracemalloc) MB | own peak / chunk | chunk MB | 1.5 chunk + running MB |",
             "|---" * 14 + "|"]
    for r in rows:
        peak = r["after_fit"] - r["baseline"]
        cells = [f"{r['rows']:,}" if first == "rows" else f"{r['candidates']:,}", r["stack"],
                 _mb(r["array_bytes"]), _mb(r["oof_total_bytes"]), f"{r['build_s']:.2f}",
                 f"{r['select_s']:.2f}", f"{ns_per_cell(r):.2f}", _mb(peak),
                 f"{peak / r['array_bytes']:.2f}", f"{peak / r['chunk_bytes']:.1f}",
                 _mb(r["traced_select_peak"]), f"{r['traced_select_peak'] / r['chunk_bytes']:.1f}",
                 _mb(r["chunk_bytes"]), _mb(1.5 * r["chunk_bytes"] + r["running_bytes"])]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def ns_per_cell(r: dict) -> float:
    return r["select_s"] / (r["candidates"] * r["rows"] * MAX_ITER) * 1e9


def search_table(trials: list[dict], targets: Sequence[int]) -> tuple[list[str], dict[str, float]]:
    import pandas as pd

    frame = pd.DataFrame(trials)
    n = len(frame)
    bins = np.array_split(np.arange(n), 4)
    lines = ["| trials | median fit time per candidate s | median trial wall s | "
             "completions per s (wall) |", "|---|---|---|---|"]
    for idx in bins:
        part = frame.iloc[idx]
        span = part.done_s.iloc[-1] - (frame.done_s.iloc[idx[0] - 1] if idx[0] else 0.0)
        lines.append(f"| {idx[0] + 1}-{idx[-1] + 1} | {part.fit_time.median():.3f} | "
                     f"{part.trial_s.median():.3f} | {len(part) / max(span, 1e-9):.1f} |")
    fit_b = slope(frame.trial, frame.fit_time.clip(lower=1e-6))
    wall_b = slope(frame.trial, frame.trial_s.clip(lower=1e-6))
    # Linear in the trial number: the extrapolation assumes the trend of the measured trials
    # continues; a slope within noise of zero (or below) is extrapolated flat at the last quarter.
    coef = np.polyfit(frame.trial, frame.trial_s, 1)
    last = float(frame.trial_s.iloc[bins[-1]].median())
    extra = {"fit_exponent": fit_b, "wall_exponent": wall_b, "wall_slope": float(coef[0]),
             "search_s": float(frame.search_s.iloc[0]), "fit_total_s": float(frame.fit_total_s.iloc[0]),
             "n_rows": int(frame.n_rows.iloc[0])}
    for t in targets:
        extra[f"extrapolated_trial_s_{t}"] = max(last, float(np.polyval(coef, t)))
    return lines, extra


# --------------------------------------------------------------------------- figures and files


def plot_rows(fits: list[dict], selections: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    frame = pd.DataFrame(fits)
    fig, axes = plt.subplots(1, 4, figsize=(20, 4.4))
    for family, g in frame.groupby("family"):
        med = g.groupby("rows").fit_time.median()
        axes[0].plot(med.index, med.values, "o-", label=family)
    axes[0].set(title="fit time per candidate (3 folds, 1 thread)", ylabel="seconds")
    oof = frame.groupby("rows").oof_bytes.median()
    models = frame.groupby("rows").models_bytes.median()
    axes[1].plot(oof.index, oof.values, "o-", label="out-of-fold file")
    axes[1].plot(models.index, models.values, "s--", label="fold models (median)")
    axes[1].set(title="storage per candidate", ylabel="bytes")
    _selection_curves(axes[2], [r for r in selections if r["stack"] == "memory"], "rows")
    library = [r for r in selections if r["kind"] == "perturbed"]
    _memory_curves(axes[3], library, "rows")
    axes[3].set(title=f"selection peak memory ({PERTURBED_PER_ROWS} candidates)")
    for ax in axes:
        ax.set(xscale="log", yscale="log", xlabel="rows")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _selection_curves(ax: Any, rows: list[dict], x: str) -> None:
    for kind in sorted({r["kind"] for r in rows}):
        part = sorted((r for r in rows if r["kind"] == kind), key=lambda r: r[x])
        xs = [r[x] for r in part]
        label = f"{kind} ({part[0]['candidates']} cand.)" if x == "rows" else kind
        ax.plot(xs, [r["select_s"] for r in part], "o-", label=f"selection s, {label}")
        ax.plot(xs, [r["build_s"] for r in part], "^:", label=f"build array s, {label}")
    ax.set(title=f"selection ({MAX_ITER} iterations) and array build", ylabel="seconds")


def _memory_curves(ax: Any, rows: list[dict], x: str) -> None:
    """Peaks against the full array and the target; a zero RSS delta (under the import peak) is left out."""
    for stack in sorted({r["stack"] for r in rows}):
        part = sorted((r for r in rows if r["stack"] == stack), key=lambda r: r[x])
        rss = [(r[x], r["after_fit"] - r["baseline"]) for r in part if r["after_fit"] > r["baseline"]]
        if rss:
            ax.plot(*zip(*rss, strict=True), "o-", label=f"peak RSS - baseline ({stack})")
        ax.plot([r[x] for r in part], [r["traced_select_peak"] for r in part], "s--",
                label=f"selection's own peak, tracemalloc ({stack})")
    part = sorted((r for r in rows if r["stack"] == "memory"), key=lambda r: r[x])
    xs = [r[x] for r in part]
    ax.plot(xs, [r["array_bytes"] for r in part], "k:", label="full prediction array")
    ax.plot(xs, [1.5 * r["chunk_bytes"] + r["running_bytes"] for r in part], "r:",
            label="target: 1.5 chunk + running sum")
    ax.set(ylabel="bytes")


def plot_population(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.4))
    part = sorted((r for r in rows if r["stack"] == "memory"), key=lambda r: r["candidates"])
    xs = [r["candidates"] for r in part]
    axes[0].plot(xs, [r["oof_total_bytes"] for r in part], "o-", label="out-of-fold files")
    axes[0].set(title=f"storage ({part[0]['rows']:,} rows, binary)", ylabel="bytes")
    _selection_curves(axes[1], part, "candidates")
    _memory_curves(axes[2], rows, "candidates")
    axes[2].set(title="selection peak memory")
    for ax in axes:
        ax.set(xscale="log", yscale="log", xlabel="candidates")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_csv(path: Path, fits: list[dict], selections: list[dict], trials: list[dict]) -> None:
    """One long table: experiment, rows, candidates, what, value."""
    out = []
    for f in fits:
        for what in ("fit_time", "score", "oof_bytes", "models_bytes"):
            out.append(("rows_fit", f["rows"], 1, f"{f['family']} {f['params']}", what, f[what]))
    for s in selections:
        tag = f"{s['kind']} {s['stack']}"
        for what in ("build_s", "select_s", "array_bytes", "oof_total_bytes", "baseline", "after_build",
                     "after_fit", "traced_build_peak", "traced_select_peak", "chunk_bytes",
                     "running_bytes", "distinct"):
            out.append(("selection", s["rows"], s["candidates"], tag, what, s[what]))
    for t in trials:
        for what in ("fit_time", "trial_s", "done_s"):
            out.append(("search_logistic_tpe", None, t["trial"], "logistic", what, t[what]))
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["experiment", "rows", "candidates", "what", "quantity", "value"])
        writer.writerows(out)


# --------------------------------------------------------------------------- report


def code_label() -> str:
    """The commit measured; a frozen snapshot (``git archive``, no .git) names it in ``CODE_COMMIT``."""
    from benchmarks._provenance import code_commit

    commit = code_commit("benchmarks/bench_cost_growth.py")
    return commit if commit != "unknown" else os.environ.get("CODE_COMMIT", "unknown") + " (snapshot)"


def header(args: argparse.Namespace, command: str, memmap: str | None) -> list[str]:
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    stack = (f"`Population.predictions(..., {memmap}=...)` (memory-mapped) and in memory"
             if memmap else "in memory only: `Population.predictions` has no memory-mapped path "
             "in this code")
    return [
        "# Cost growth: rows and candidates", "",
        f"Command: `{command}`", "",
        f"Date: {now}; code {code_label()}; machine: "
        f"{os.cpu_count()} cores shared with other jobs (absolute times are noisy), Python "
        f"{sys.version.split()[0]}, numpy {np.__version__}.", "",
        "Data: `make_classification(n_samples=1_000_000, n_features=20, n_informative=10, "
        "n_redundant=4, flip_y=0.05, class_sep=0.8, random_state=0)`, binary; each row count is "
        "the first rows of that table. Synthetic rather than a real table up-sampled with "
        "noise, whose near-duplicate rows would straddle the CV folds.", "",
        f"Candidates: the library's `CandidateEvaluator` (family pipeline: preprocessing + model), "
        f"{N_FOLDS} shared stratified folds, 1 thread per candidate, {N_JOBS} candidates at a time "
        f"(joblib processes); artifacts written by `FileArtifactStore` (`RunFolder(...).artifact_store()`). "
        "Hyperparameters (two per family, the same at every row count; family defaults otherwise):", "",
        *[f"- `{f}`: " + "; ".join(f"`{c}`" for c in cfgs) for f, cfgs in FAMILIES.items()], "",
        f"Selection: `GreedySelector(max_iter={MAX_ITER}).fit(Population.predictions(numbers), y)`, "
        f"log loss, in a fresh subprocess per row of the tables; prediction array built {stack}.", "",
    ]


def memory_notes() -> list[str]:
    return [
        "Memory columns: *peak RSS - baseline* is the peak resident set (`VmHWM`, the counter behind "
        "`ru_maxrss`) after selection minus the same after imports (the high-water mark reset "
        "there through `/proc/self/clear_refs`, so the import peak does not hide smaller ones), "
        "so it includes the prediction array "
        "`Population.predictions` builds (and any file pages of the memory-mapped out-of-fold "
        "files it touched, which RSS counts). "
        "*selection's own peak* is the `tracemalloc` peak of a second identical "
        "`GreedySelector.fit` above what was held before it (numpy reports its allocations to "
        "tracemalloc): the memory selection adds on top of its input. *chunk* is one block of "
        "candidates as the selection library reads them (`_checks.model_chunks` over the "
        "log-loss-reduced, true-class column, float64); *running* is the running ensemble sum "
        "(one float64 per row). The issue's target is selection at most 1.5 chunk + running.", "",
    ]


def growth_paragraph(slopes: dict[str, float], fits: list[dict], sel_rows: list[dict],
                     pop_rows: list[dict], search: dict[str, float]) -> list[str]:
    mem = [r for r in sel_rows + pop_rows if r["stack"] == "memory"]
    ns = [ns_per_cell(r) for r in mem if r["candidates"] * r["rows"] >= 1_000_000]
    per_cell = [f["oof_bytes"] / f["rows"] for f in fits]
    pop = sorted((r for r in pop_rows if r["stack"] == "memory"), key=lambda r: r["candidates"])
    lib = sorted((r for r in sel_rows if r["kind"] == "perturbed" and r["stack"] == "memory"),
                 key=lambda r: r["rows"])
    in_rows = slope([r["rows"] for r in lib], [r["select_s"] for r in lib])
    in_cands = slope([r["candidates"] for r in pop], [r["select_s"] for r in pop])
    build = slope([r["candidates"] for r in pop], [r["build_s"] for r in pop])
    own = [r["traced_select_peak"] / r["array_bytes"] for r in mem]
    peak = [r["after_fit"] - r["baseline"] for r in mem]
    ratio = [p / r["array_bytes"] for p, r in zip(peak, mem, strict=True)]
    fit_text = ", ".join(f"{f} {b:.2f}" for f, b in sorted(slopes.items()))
    extrapolated = ", ".join(f"{search[k]:.2f} s per trial at trial {k.rsplit('_', 1)[1]}"
                             for k in search if k.startswith("extrapolated"))
    return [
        "## What grows how", "",
        f"- **Fit time per candidate** grows as rows^b with b = {fit_text} (median of two "
        "configurations per family, 3 folds, one thread).",
        f"- **Selection time** is linear in candidates x rows x iterations: "
        f"{min(ns):.2f}-{max(ns):.2f} ns per candidate-row-iteration over every library with at "
        f"least 1M candidate-rows (exponent {in_rows:.2f} in rows at {PERTURBED_PER_ROWS} "
        f"candidates, {in_cands:.2f} in candidates at {pop[0]['rows']:,} rows). Building the "
        f"array (`Population.predictions`) grows with the same product (exponent {build:.2f} in "
        "candidates).",
        f"- **Out-of-fold storage**: {min(per_cell):.2f}-{max(per_cell):.2f} bytes per row per "
        "candidate (float32 x 2 classes + the 128-byte `.npy` header), linear in both; "
        f"{pop[-1]['candidates']:,} candidates x {pop[-1]['rows']:,} rows = "
        f"{pop[-1]['oof_total_bytes'] / 1e6:,.0f} MB.",
        f"- **Selection peak memory** (array in memory): selection's own allocations are "
        f"{min(own):.2f}-{max(own):.2f} x the prediction array; with the array it reads, the RSS "
        f"peak is {min(peak) / 1e6:,.0f}-{max(peak) / 1e6:,.0f} MB, {min(ratio):.2f}-"
        f"{max(ratio):.2f} x the array.",
        f"- **Search** (real, logistic, TPE, {N_JOBS} workers): fit time per candidate grows with "
        f"exponent {search['fit_exponent']:.2f} in the trial number; wall time per trial grows by "
        f"{search['wall_slope'] * 1000:.3f} ms per earlier trial (least squares). **Extrapolated**, "
        "not measured (that straight line, or flat at the last quarter's median when the line is "
        f"lower): {extrapolated}.", "",
    ]


def write_report(args: argparse.Namespace, command: str, memmap: str | None, fits: list[dict],
                 sel_rows: list[dict], pop_rows: list[dict], trials: list[dict], write_s: float,
                 out: Path) -> None:
    fit_lines, slopes = fit_table(fits)
    search_lines, search = search_table(trials, (1_000, 5_000))
    lines = [
        *header(args, command, memmap),
        "## Against rows", "",
        "### Fit time per candidate (seconds, median of the family's two configurations)", "",
        *fit_lines, "",
        "### Storage on disk per candidate (run folder's `artifacts/`)", "",
        *storage_table(fits), "",
        f"### Selection against rows (the {len(FAMILIES) * 2} real candidates; "
        f"{PERTURBED_PER_ROWS} perturbed from them)", "",
        *memory_notes(),
        "Real candidates:", "",
        *selection_table([r for r in sel_rows if r["kind"] == "real candidates"], "rows"), "",
        f"{PERTURBED_PER_ROWS} candidates (perturbed from the real ones, written through the store):", "",
        *selection_table([r for r in sel_rows if r["kind"] == "perturbed"], "rows"), "",
        "![cost against rows](cost_growth_rows.png)", "",
        f"## Against population size ({pop_rows[0]['rows']:,} rows)", "",
        f"Not a real search: the candidates are the {len(FAMILIES) * 2} real {pop_rows[0]['rows']:,}-row "
        "candidates above, each copy's log-probabilities tempered by a factor in U(0.7, 1.3) plus "
        "N(0, s^2) row noise with s in U(0.05, 0.6), renormalised (softmax), float32, written with "
        f"`FileArtifactStore.save` ({max(r['candidates'] for r in pop_rows):,} candidates in "
        f"{write_s:.0f} s); each size is the first candidates of that folder.", "",
        *selection_table(pop_rows, "candidates"), "",
        "![cost against population size](cost_growth_population.png)", "",
        f"### Fit time against population size: a real search ({len(trials)} trials)", "",
        f"`EnsembleClassifier(models=['logistic'], search='tpe', n_trials={len(trials)}, cv={N_FOLDS}, "
        f"n_jobs={N_JOBS}, run_dir=..., warm_start_configs=None, random_state=0).fit(X, y)` on the "
        f"first {search['n_rows']:,} rows: "
        f"search {search['search_s']:.0f} s of a {search['fit_total_s']:.0f} s fit. Fit time is the "
        "candidate's own (3 folds); trial wall is its start-to-finish time in the study, sampler "
        "and storage included.", "",
        *search_lines, "",
        *growth_paragraph(slopes, fits, sel_rows, pop_rows, search),
    ]
    out.write_text("\n".join(lines) + "\n")


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--population", type=int, nargs="+", default=[100, 1_000, 5_000])
    parser.add_argument("--search-trials", type=int, default=200)
    parser.add_argument("--work", type=Path, default=Path("/tmp/cost_growth/runs"))
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--quick", action="store_true", help="small sizes, to check the script")
    parser.add_argument("--keep", action="store_true", help="keep the run folders")
    parser.add_argument("--selection-child", nargs=2, metavar=("RUN_DIR", "N_MODELS"))
    parser.add_argument("--memmap", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.rows, args.population, args.search_trials = [2_000, 20_000], [50, 200], 20
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.selection_child:
        print(json.dumps(selection_child(Path(args.selection_child[0]), int(args.selection_child[1]),
                                         args.memmap)))
        return 0
    warnings.filterwarnings("ignore")
    command = "python -m benchmarks.bench_cost_growth " + " ".join(sys.argv[1:] if argv is None else argv)
    memmap = memmap_option()
    shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True)
    X, y = make_data(max(args.rows))
    fits, sel_rows = rows_experiment(X, y, sorted(args.rows), args.work, memmap is not None)
    base = args.work / f"rows_{min(args.rows)}"
    pop_rows, write_s = population_experiment(base, sorted(args.population), min(args.rows),
                                              args.work, memmap is not None)
    trials = real_search(X[: min(args.rows)], y[: min(args.rows)], args.work / "search",
                         args.search_trials)
    args.out.mkdir(parents=True, exist_ok=True)
    write_csv(args.out / "cost_growth.csv", fits, sel_rows + pop_rows, trials)
    plot_rows(fits, sel_rows, args.out / "cost_growth_rows.png")
    plot_population(pop_rows, args.out / "cost_growth_population.png")
    write_report(args, command, memmap, fits, sel_rows, pop_rows, trials, write_s,
                 args.out / "cost_growth.md")
    if not args.keep:
        shutil.rmtree(args.work, ignore_errors=True)
    print((args.out / "cost_growth.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
