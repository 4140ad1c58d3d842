"""Regression families on the raw target against the standardised target (``scale_target``).

Issue #16 item 4 asks why regression lags. SVR's ``epsilon`` and ``C`` and the MLP's
initialisation and learning rate are in the target's units, and the tree families are
invariant to the target's scale only up to float precision. For each regression table of
the portfolio list (the suite's split of seed 0, the first ``--max-rows`` training rows) and
each built-in regression family, the family's first portfolio configuration is scored by
5-fold cross-validated RMSE twice, through the library's preprocessing: ``raw`` (the
estimator itself) and ``scaled`` (wrapped in ``StandardizedTargetRegressor``, as
``ModelFamily(scale_target=True)`` builds it). The report gives, per family, the tables where
the scaled arm is better / worse, a sign test, and the relative change of RMSE (scaled / raw
− 1; negative: scaling helps). Usage::

    python -m benchmarks.bench_target_scaling --out benchmarks/results/
"""

from __future__ import annotations

import argparse
import dataclasses
import shlex
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import KFold, cross_val_predict
from sklearn.pipeline import make_pipeline

from benchmarks._markdown import markdown
from benchmarks._provenance import code_commit
from benchmarks.tables._data import PORTFOLIO_TABLES, load_table_split, table_task
from benchmarks.tables._report import sign_test
from ensemble_hpo._preprocessing import infer_column_kinds, make_preprocessor
from ensemble_hpo.spaces import BUILTIN_FAMILIES

FAMILIES = [name for name, family in BUILTIN_FAMILIES.items()
            if family.supports("regression") and not name.endswith("_log")]


def cv_rmse(name: str, scaled: bool, X: pd.DataFrame, y: np.ndarray) -> tuple[float, float]:
    """5-fold cross-validated RMSE and seconds of the family's first portfolio configuration."""
    family = dataclasses.replace(BUILTIN_FAMILIES[name], scale_target=scaled)
    estimator = family.build("regression", dict(family.portfolio[0]), random_state=0)
    pipeline = make_pipeline(make_preprocessor(family.preprocessing, infer_column_kinds(X)), estimator)
    start = time.perf_counter()
    pred = cross_val_predict(pipeline, X, y, cv=KFold(5, shuffle=True, random_state=0))
    return float(np.sqrt(np.mean((pred - y) ** 2))), time.perf_counter() - start


def run(max_rows: int, families: list[str]) -> pd.DataFrame:
    rows = []
    for table in (t for t in PORTFOLIO_TABLES if table_task(t) == "regression"):
        split = load_table_split(table, 0)
        X, y = split.X_train.iloc[:max_rows], np.asarray(split.y_train, dtype=float)[:max_rows]
        for name in families:
            (raw, raw_s), (scaled, scaled_s) = (cv_rmse(name, s, X, y) for s in (False, True))
            rows.append({"table": table, "family": name, "target_std": float(y.std()),
                         "raw_rmse": raw, "scaled_rmse": scaled, "rel_change": scaled / raw - 1.0,
                         "raw_seconds": raw_s, "scaled_seconds": scaled_s})
            print(f"{table:22s} {name:24s} raw {raw:.5g} scaled {scaled:.5g}", flush=True)
    return pd.DataFrame(rows)


def report(frame: pd.DataFrame, command: str, commit: str) -> str:
    lines = ["# Regression families on the raw and on the standardised target (issue 16, item 4)", "",
             f"Command: `{command}` (code {commit}). 5-fold CV RMSE of each family's first portfolio "
             f"configuration on {frame['table'].nunique()} regression tables of the portfolio list "
             "(seed-0 split, first training rows). Relative change: scaled / raw − 1 (negative: "
             "the standardised target is better).", "", "## Per family", ""]
    summary = []
    for name, group in frame.groupby("family", sort=False):
        rel = group["rel_change"].to_numpy()
        better, worse, p = sign_test(np.where(np.abs(rel) < 1e-9, 0.0, rel))
        summary.append({"family": name, "better / worse": f"{better} / {worse}", "sign p": p,
                         "median": f"{100 * np.median(rel):+.2f} %", "mean": f"{100 * rel.mean():+.2f} %",
                         "best": f"{100 * rel.min():+.1f} %", "worst": f"{100 * rel.max():+.1f} %"})
    per_table = frame.drop(columns=["raw_seconds", "scaled_seconds"])
    lines += [markdown(pd.DataFrame(summary), floatfmt="{:.3g}", index=False), "",
              "## Per table and family", "", markdown(per_table, floatfmt="{:.5g}", index=False), ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-rows", type=int, default=2000)
    parser.add_argument("--families", default=",".join(FAMILIES))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")  # convergence warnings of the raw-target MLPs
    given = sys.argv[1:] if argv is None else argv
    command = "python -m benchmarks.bench_target_scaling " + shlex.join(given)
    frame = run(args.max_rows, args.families.split(","))
    args.out.mkdir(parents=True, exist_ok=True)
    frame.to_csv(args.out / "target_scaling.csv", index=False)
    (args.out / "target_scaling.md").write_text(report(frame, command, code_commit("ensemble_hpo")))
    print((args.out / "target_scaling.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
