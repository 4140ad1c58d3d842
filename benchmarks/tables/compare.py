"""Paired comparison of two runs of ``benchmarks.tables.run`` (e.g. ``--cv-repeats 1`` vs ``2``).

Only the (table, seed) pairs that both runs finished are compared. Per system: tables where
the ensemble is at least as good as its own best single candidate (as in the tables
report). Paired, per table on the losses averaged over seeds: the relative change of the
ensemble's test loss and of the best single candidate's (B / A − 1; negative: B is better),
with wins and a two-sided sign test. From the repository root::

    python -m benchmarks.tables.compare /work/runs_out/rb1/tables_60s.csv \
        /work/runs_out/rb2/tables_60s.csv --names cv5 cv5x2 --out benchmarks/results/paired.md
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

import pandas as pd

from benchmarks.tables import _report
from benchmarks.tables.run import read_csv

KEY = ["table", "seed"]


def paired_rows(a: pd.DataFrame, b: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The ok rows of ``a`` and ``b`` restricted to the (table, seed) pairs both have."""
    a, b = (f[f["status"] == "ok"] for f in (a, b))
    both = a[KEY].merge(b[KEY], on=KEY)
    return a.merge(both, on=KEY), b.merge(both, on=KEY)


def paired_changes(a: pd.DataFrame, b: pd.DataFrame, column: str) -> pd.Series:
    """Per table: mean over seeds of ``column`` in ``b`` / in ``a`` − 1."""
    mean_a = a.groupby("table", sort=False)[column].mean()
    mean_b = b.groupby("table", sort=False)[column].mean()
    return mean_b.loc[mean_a.index] / mean_a - 1.0


def _paired_line(label: str, rel: pd.Series) -> dict[str, str]:
    better, worse, p = _report.sign_test(rel.to_numpy())
    return {"paired (B vs A)": label, "tables": str(len(rel)),
            "mean rel change": f"{100 * rel.mean():+.2f} %",
            "median rel change": f"{100 * rel.median():+.2f} %",
            "B better / worse": f"{better} / {worse}", "sign test p": f"{p:.3g}"}


def report(a: pd.DataFrame, b: pd.DataFrame, names: tuple[str, str], command: str) -> str:
    a, b = paired_rows(a, b)
    lines = [f"# Paired 60-table runs: A = {names[0]}, B = {names[1]}", "",
             f"Command: `{command}`. Pairs (table, seed) both finished: {len(a)} on "
             f"{a['table'].nunique()} tables, seeds {sorted(a['seed'].unique().tolist())}. "
             f"Commits: A {sorted(a['commit'].astype(str).unique())}, "
             f"B {sorted(b['commit'].astype(str).unique())}.", "",
             "## Ensemble at least as good as its own best single candidate", ""]
    for name, frame in zip(names, (a, b), strict=True):
        lines += [f"### {name}", "", _report._table(_report.summary(_report.per_table(frame))), ""]
    tasks = a.groupby("table", sort=False)["task"].first()
    ensemble = paired_changes(a, b, "ensemble_loss")
    single = paired_changes(a, b, "best_single_loss")
    rows = [_paired_line("ensemble test loss", ensemble), _paired_line("best single test loss", single)]
    for task in _report.TASKS:
        rel = ensemble[tasks.loc[ensemble.index] == task]
        if len(rel):
            rows.append(_paired_line(f"ensemble, {task}", rel))
    candidates = paired_changes(a, b, "candidates_ok")
    lines += ["## Paired changes", "", _report._table(pd.DataFrame(rows)), "",
              f"Finished candidates, B / A − 1 per table: median {100 * candidates.median():+.1f} %, "
              f"mean {100 * candidates.mean():+.1f} %.", "",
              "## Per table (means over seeds)", ""]
    per = pd.DataFrame({
        "task": tasks,
        f"ensemble {names[0]}": a.groupby("table", sort=False)["ensemble_loss"].mean(),
        f"ensemble {names[1]}": b.groupby("table", sort=False)["ensemble_loss"].mean(),
        "ensemble B/A−1": ensemble.map(lambda v: f"{100 * v:+.2f} %"),
        "best single B/A−1": single.map(lambda v: f"{100 * v:+.2f} %"),
        f"candidates {names[0]}": a.groupby("table", sort=False)["candidates_ok"].mean().round().astype(int),
        f"candidates {names[1]}": b.groupby("table", sort=False)["candidates_ok"].mean().round().astype(int),
    }).reset_index(names="table")
    lines += [_report._table(per), ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("a", type=Path, help="tables CSV of system A")
    parser.add_argument("b", type=Path, help="tables CSV of system B")
    parser.add_argument("--names", nargs=2, default=("A", "B"))
    parser.add_argument("--out", type=Path, required=True, help="markdown file to write")
    args = parser.parse_args(argv)
    command = "python -m benchmarks.tables.compare " + shlex.join(sys.argv[1:] if argv is None else argv)
    text = report(read_csv(args.a), read_csv(args.b), tuple(args.names), command)
    args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
