"""Pool several runs of ``benchmarks.tables.run`` with the same defaults: each finished
(file, table, seed) row is one replicate, so a table run twice with seeds 0 and 1 counts
4 times. Writes the ensemble-vs-best-single counts (mean and median over the replicates)
and the per-table rows. From the repository root::

    python -m benchmarks.tables.pooled benchmarks/results/tables_60s_10cb2ad_fresh.csv \
        benchmarks/results/tables_60s_f89f4ce_fresh.csv \
        benchmarks/results/tables_60s_scaled_mlp_B.csv --out benchmarks/results/tables_60s_pooled.md

Only pool runs of the same library defaults: the script cannot tell (it lists the commits).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

import pandas as pd

from benchmarks.tables import _report
from benchmarks.tables.run import read_csv


def pooled_rows(paths: list[Path]) -> pd.DataFrame:
    """The finished rows of every file, each tagged with its file (replicates stay apart)."""
    frames = []
    for path in paths:
        frame = read_csv(path)
        if frame.empty:
            raise ValueError(f"The file {str(path)!r} holds no rows.")
        frames.append(frame[frame["status"] == "ok"].assign(source=path.name))
    return pd.concat(frames, ignore_index=True)


def report(rows: pd.DataFrame, command: str) -> str:
    tables = _report.per_table(rows)
    per_file = rows.groupby("source", sort=False).agg(
        rows=("table", "size"), tables=("table", "nunique"),
        commits=("commit", lambda c: ", ".join(sorted(c.astype(str).unique()))))
    return "\n".join([
        "# Pooled 60-table runs", "", f"Command: `{command}`.", "",
        "Each finished (file, table, seed) row is one replicate.", "",
        _report._table(per_file.reset_index()), "",
        "## Ensemble at least as good as its own best single candidate", "",
        _report._table(_report.summary(tables)), "",
        "## Per table", "", _report._table(tables), ""])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("csv", type=Path, nargs="+", help="results CSVs of benchmarks.tables.run")
    parser.add_argument("--out", type=Path, required=True, help="markdown report to write")
    args = parser.parse_args(argv)
    command = "python -m benchmarks.tables.pooled " + shlex.join(
        sys.argv[1:] if argv is None else argv)
    args.out.write_text(report(pooled_rows(args.csv), command), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
