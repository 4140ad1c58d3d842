"""ensemble_hpo (defaults) against its own best single candidate on the 60 portfolio tables.

One fit per (table, seed) through the suite adapter ``run_ensemble_hpo``; each run folder
(population with out-of-fold predictions, every candidate's test predictions, the split; the
fold models only with ``--keep models``) is kept under ``--runs-dir`` so that other selections
can be scored offline (``benchmarks.tables.reselect``). From the repository root::

    python -m benchmarks.tables.run --budget 60 --seeds 0 1 --tables all --out benchmarks/results/
    python -m benchmarks.tables.run --budget 60 --out benchmarks/results/ --report-only

Outputs (stem ``tables_<budget>s``): ``.csv`` (one row per table and seed, rewritten after
every table), ``_families.csv`` (per run and family: best-OOF candidate's OOF and test
loss) and the ``.md`` report. Rows already in the CSV with status ``ok`` are skipped, so a
killed run resumes where it stopped; failed rows are retried.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
import time
import traceback
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks._merge import upsert
from benchmarks._provenance import code_commit
from benchmarks.bench_oof_vs_test import family_gaps
from benchmarks.suite import _systems
from benchmarks.suite._metrics import primary_loss, score_predictions
from benchmarks.suite._systems import load_kept_run, run_ensemble_hpo
from benchmarks.tables import _report
from benchmarks.tables._data import PORTFOLIO_TABLES, load_table_split, table_info

KEY = ["table", "seed"]
#: Every candidate's test predictions, kept in its run folder (see keep_predictions_only).
CACHE = "test_predictions.npz"


def paths(out: Path, budget: float) -> dict[str, Path]:
    stem = f"tables_{budget:g}s"
    return {"csv": out / f"{stem}.csv", "families": out / f"{stem}_families.csv",
            "md": out / f"{stem}.md"}


def read_csv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path) if path.exists() and path.stat().st_size else pd.DataFrame()


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    """Write atomically: a kill mid-write leaves the previous file."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    frame.to_csv(tmp, index=False)
    os.replace(tmp, path)


def run_one(table: str, seed: int, budget: float, runs_dir: Path) -> tuple[dict, pd.DataFrame]:
    """Fit one table and seed; the CSV row and the per-family OOF/test rows."""
    info = table_info(table)
    split = load_table_split(table, seed)
    row: dict = {"table": table, "seed": seed, "task": info["task"], "n_rows": split.n_rows_original,
                 "n_train": len(split.X_train), "n_test": len(split.X_test),
                 "n_features": split.X_train.shape[1], "n_classes": split.n_classes,
                 "metric": "log_loss" if split.task == "classification" else "rmse",
                 "load_before": round(os.getloadavg()[0], 2)}
    os.environ["SUITE_KEEP_RUNS"] = str(runs_dir)
    start = time.time()
    outcomes = {o.system: o for o in run_ensemble_hpo(split, budget, seed)}
    row["wall_time"] = round(time.time() - start, 1)
    row["load_after"] = round(os.getloadavg()[0], 2)

    def loss(name: str) -> float:
        pred = outcomes[name].pred
        return primary_loss(split.task, score_predictions(split.task, split.y_test, pred,
                                                          split.n_classes))

    row["ensemble_loss"] = loss("ensemble_hpo")
    row["best_single_loss"] = loss("ehpo_best_single")
    row["rel_change"] = row["ensemble_loss"] / row["best_single_loss"] - 1.0
    for name in _systems.SELECTION_VARIANTS:  # reselected on the same population, for reference
        if name in outcomes:
            row[f"{name}_loss"] = loss(name)
    row["fit_time"] = round(outcomes["ensemble_hpo"].fit_time, 1)
    # The kept file holds the estimator as fitted (before the adapter's reselect variants).
    run_dir = runs_dir / f"{split.name}_s{seed}"
    # The kept split is the one the model was fitted on (targets transformed with --target-transform).
    model, fitted_split = load_kept_run(run_dir)
    board = model.leaderboard_
    row["members"] = len(model.ensemble_)
    row["member_families"] = "|".join(sorted({m.family for m in model.ensemble_.members}))
    row["candidates_ok"] = int((board["status"] == "ok").sum())
    row["candidates_total"] = len(board)
    row["best_single"] = f"#{model.best_candidate_.number} {model.best_candidate_.family}"
    row["best_single_oof_loss"] = -float(model.best_score_)
    row["ensemble_cv_loss"] = -float(model.cv_score_)
    row["ensemble_selection_loss"] = -float(getattr(model, "selection_score_", np.nan))
    row["fusion"] = type(model.ensemble_.fuser).__name__
    gaps = family_gaps(model, fitted_split)
    gaps.insert(0, "seed", seed)
    gaps.insert(0, "table", table)
    row["worst_family_ratio"] = float(gaps["ratio"].max()) if len(gaps) else np.nan
    row["run_dir"] = str(run_dir)
    return row, gaps


def cached_test_predictions(run_dir: Path, model, split, numbers: list[int]) -> dict[int, np.ndarray]:
    """Test predictions of ``numbers`` (fold models averaged), cached in the run folder."""
    path = run_dir / CACHE
    cache: dict[int, np.ndarray] = {}
    if path.exists():
        with np.load(path) as stored:
            cache = {int(k): stored[k] for k in stored.files}
    missing = [n for n in numbers if n not in cache]
    for number in missing:
        cache[number] = np.asarray(model.predict_candidate(split.X_test, number), dtype=np.float64)
    if missing:
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, **{str(k): v for k, v in cache.items()})
        tmp.replace(path)
    return {n: cache[n] for n in numbers}


def keep_predictions_only(run_dir: Path) -> int:
    """Cache every finished candidate's test predictions, then delete the fold models.

    A kept 60 s run holds 0.6-1.5 GB of fold models (the 60-table runs of 2026-12-07 filled
    a 250 GB disk); offline reselection (``benchmarks.tables.reselect``) needs only the
    out-of-fold predictions and these cached test predictions. The kept model can no longer
    predict afterwards. Returns the number of model files deleted.
    """
    model, split = load_kept_run(run_dir)
    numbers = sorted(c.number for c in model.population_.completed())
    cached_test_predictions(run_dir, model, split, numbers)
    files = sorted((run_dir / "artifacts").glob("*.models.pkl*"))
    for path in files:
        path.unlink()
    return len(files)


def compress_models(run_dir: Path) -> int:
    """zstd-compress a run's fold-model files in place (``.models.pkl`` -> ``.models.pkl.zst``).

    Only used when the disk runs low (``--compress-below-gb``): the out-of-fold predictions
    stay readable, so selections can still be re-run; to predict with the models again,
    ``zstd -d --rm <run>/artifacts/*.zst`` first. Returns the number of files compressed.
    """
    files = sorted(str(p) for p in (run_dir / "artifacts").glob("*.models.pkl"))
    if files:
        subprocess.run(["nice", "-n", "19", "zstd", "-q", "-1", "--rm", "-T1", *files], check=True)
    return len(files)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=60.0, help="time_budget in seconds")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--tables", default="all", help="'all' or a comma list of table names")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"),
                        help="folder of the CSVs and the report")
    parser.add_argument("--runs-dir", type=Path, default=None,
                        help="kept run folders (default /work/bench_runs/tables_<budget>s)")
    parser.add_argument("--n-jobs", type=int, default=2, help="ensemble_hpo n_jobs")
    parser.add_argument("--cv-repeats", type=int, default=1,
                        help="repeats of the 5 outer folds (1: ensemble_hpo's default cv=5)")
    parser.add_argument("--target-transform", choices=["signlog"], default=None,
                        help="regression only: fit on sign(y)*log1p(|y|) and map predictions back "
                             "(test losses stay on the original scale)")
    parser.add_argument("--models", choices=["auto", "no_log_twins"], default="auto",
                        help="ensemble_hpo models: 'auto' (its default) or 'no_log_twins' (the "
                             "default families without the log-target twins that 'auto' adds on "
                             "skewed non-negative regression targets)")
    parser.add_argument("--compress-below-gb", type=float, default=30.0,
                        help="when the runs folder's disk has less free space than this after a "
                             "run, zstd-compress that run's fold models (see compress_models)")
    parser.add_argument("--keep", choices=["predictions", "models"], default="predictions",
                        help="what each kept run folder holds besides its population: "
                             "'predictions' (every candidate's test predictions; fold models "
                             "deleted, see keep_predictions_only) or 'models' (the fold models)")
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument("--merge-from", type=Path, nargs="*", default=[],
                        help="other tables CSVs (e.g. one per process) merged in before the "
                             "report; rows of this --out's CSV win on overlap")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    files = paths(args.out, args.budget)
    command = "python -m benchmarks.tables.run " + shlex.join(sys.argv[1:] if argv is None else argv)
    if args.report_only:
        frame, families = read_csv(files["csv"]), read_csv(files["families"])
        for other in args.merge_from:
            fam = other.with_name(other.stem + "_families.csv")
            frame = upsert(read_csv(other), frame, KEY)
            families = upsert(read_csv(fam), families, KEY)
        write_csv(frame, files["csv"])
        write_csv(families, files["families"])
        _report.write_report(files["csv"], files["families"], files["md"], command)
        print(files["md"].read_text())
        return 0

    tables = PORTFOLIO_TABLES if args.tables == "all" else [t.strip() for t in args.tables.split(",")]
    unknown = [t for t in tables if t not in PORTFOLIO_TABLES]
    if unknown:
        parser.error(f"unknown tables {unknown}")
    runs_dir = args.runs_dir or Path(f"/work/bench_runs/tables_{args.budget:g}s")
    runs_dir.mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)
    # The adapter reads its n_jobs from this module global (SUITE_THREADS, default 1).
    _systems.THREADS = args.n_jobs
    _systems.CV_REPEATS = args.cv_repeats
    _systems.TARGET_TRANSFORM = args.target_transform
    _systems.MODELS = args.models
    commit = code_commit("benchmarks")
    import ensemble_hpo

    print(f"ensemble_hpo from {ensemble_hpo.__file__} at {commit}; runs in {runs_dir}", flush=True)
    # Table outer, seed inner: a run stopped early still holds every seed of the tables it did,
    # so its prefix can be compared over seeds (the 60 tables take about 75 min per seed).
    for table in tables:
        for seed in args.seeds:
            frame = read_csv(files["csv"])
            if not frame.empty and ((frame["table"] == table) & (frame["seed"] == seed)
                                    & (frame["status"] == "ok")).any():
                continue
            started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            print(f"[{started}] {table} seed {seed} ...", flush=True)
            try:
                row, gaps = run_one(table, seed, args.budget, runs_dir)
                row["status"] = "ok"
                row["run_dir_mb"] = round(sum(f.stat().st_size for f in Path(row["run_dir"])
                                              .rglob("*") if f.is_file()) / 2**20)
                if args.keep == "predictions":
                    row["models_deleted"] = keep_predictions_only(Path(row["run_dir"]))
                free_gb = shutil.disk_usage(runs_dir).free / 2**30
                row["disk_free_gb"] = round(free_gb, 1)
                row["models_compressed"] = (compress_models(Path(row["run_dir"]))
                                            if free_gb < args.compress_below_gb else 0)
            except Exception as exc:  # noqa: BLE001 - recorded, the run goes on
                traceback.print_exc()
                row = {"table": table, "seed": seed, "task": table_info(table)["task"],
                       "status": f"failed: {type(exc).__name__}: {str(exc)[:300]}"}
                gaps = pd.DataFrame()
            row.update({"budget": args.budget, "n_jobs": args.n_jobs, "cv_repeats": args.cv_repeats,
                        "target_transform": args.target_transform or "none",
                        "models": args.models,
                        "commit": commit,
                        "started": started, "command": command})
            frame = upsert(read_csv(files["csv"]), pd.DataFrame([row]), KEY)
            write_csv(frame, files["csv"])
            families = read_csv(files["families"])
            # A retried run's family rows replace the old ones only where it finished: a failed
            # retry keeps the finished row (upsert), so its family rows stay too (review).
            if row["status"] == "ok" and not families.empty:
                families = families[~((families["table"] == table) & (families["seed"] == seed))]
            write_csv(pd.concat([families, gaps], ignore_index=True), files["families"])
            print(f"    {row['status']}: ensemble {row.get('ensemble_loss', np.nan):.5f} vs best "
                  f"single {row.get('best_single_loss', np.nan):.5f}, {row.get('members')} members,"
                  f" {row.get('candidates_ok')}/{row.get('candidates_total')} candidates, fit "
                  f"{row.get('fit_time')} s, load {row.get('load_before')}", flush=True)
            try:
                _report.write_report(files["csv"], files["families"], files["md"], command)
            except Exception:  # noqa: BLE001 - a report bug must not stop the measurements
                traceback.print_exc()
    return 0


if __name__ == "__main__":
    sys.exit(main())
