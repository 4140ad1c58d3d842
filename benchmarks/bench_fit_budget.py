"""Does ``fit`` as a whole respect ``time_budget``? (issue 18, the deadline object)

Fits the default estimator with ``time_budget`` and ``n_jobs=2`` on tables of the 60-table
suite (``benchmarks.tables``; the multiclass ones overran most at 60 s) and records
``fit_time_`` and where it went (``fit_timings_``: search, selection and fusion, refit,
prediction cost). Wall times on this shared machine are noisy; the load average before each
fit is recorded beside them.

    python -m benchmarks.bench_fit_budget --budget 60 --tables mathplacement_rec nycflights_origin \
        vote92_choice kershaw_pitch diamonds_price
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

import pandas as pd

from benchmarks._markdown import markdown
from benchmarks.tables._data import load_table_split
from ensemble_hpo import EnsembleClassifier, EnsembleRegressor

OUT = Path(__file__).parent / "results" / "fit_budget.md"


def measure(table: str, budget: float, seed: int) -> dict:
    split = load_table_split(table, seed)
    cls = EnsembleClassifier if split.task == "classification" else EnsembleRegressor
    run_dir = tempfile.mkdtemp(prefix="fit_budget-")
    load = os.getloadavg()[0]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = cls(time_budget=budget, n_jobs=2, random_state=seed, run_dir=run_dir)
            start = time.time()
            model.fit(split.X_train, split.y_train)
            wall = time.time() - start
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
    timings = {f"{k}_s": round(v, 1) for k, v in model.fit_timings_.items()}
    return {"table": table, "seed": seed, "rows": len(split.y_train), "budget_s": budget,
            "fit_s": round(wall, 1), "over_pct": round(100 * (wall / budget - 1), 1),
            **timings, "candidates": len(model.leaderboard_), "load1": round(load, 2)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=60.0)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--tables", nargs="+", required=True)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    rows = []
    for table in args.tables:
        for seed in args.seeds:
            rows.append(measure(table, args.budget, seed))
            print(rows[-1], flush=True)
    frame = pd.DataFrame(rows)
    command = "python -m benchmarks.bench_fit_budget " + " ".join(sys.argv[1:] if argv is None else argv)
    table = markdown(frame.set_index("table"), fmt="{:.1f}")
    args.out.write_text(f"# fit time against time_budget\n\n`{command}`\n\n{table}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
