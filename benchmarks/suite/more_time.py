"""Does more time make each system better? Two suite results compared run by run.

Issue 16 asks that more time never make ensemble_hpo worse on average (the winner's curse of
picking among more candidates). This compares the test loss of every (seed, data set, system)
that ran at both budgets: the relative change from the short to the long budget, how many
runs got better or worse, and a two-sided sign test. The ensemble_hpo selection variants
(``ehpo_*``, re-selected on the same population) are included: they say whether a different
selection would have kept the extra candidates from hurting. From the repository root::

    python -m benchmarks.suite.more_time benchmarks/results/suite_60s_2core_all.csv \
        benchmarks/results/suite_300s_2core_all.csv --out benchmarks/results/suite_more_time.md
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

import pandas as pd

from benchmarks.suite._report import SYSTEM_ORDER, VARIANTS, add_primary
from benchmarks.tables._report import _table, sign_test

KEYS = ["seed", "dataset", "system"]


def paired(short: pd.DataFrame, long: pd.DataFrame) -> pd.DataFrame:
    """One row per (seed, data set, system) that ran ok at both budgets, with ``rel``."""
    cols = [*KEYS, "task", "loss"]
    a = add_primary(short[short["status"] == "ok"])[cols]
    b = add_primary(long[long["status"] == "ok"])[[*KEYS, "loss"]]
    both = a.merge(b, on=KEYS, suffixes=("_short", "_long"))
    return both.assign(rel=both["loss_long"] / both["loss_short"] - 1.0)


def per_system(pairs: pd.DataFrame) -> pd.DataFrame:
    order = [s for s in (*SYSTEM_ORDER, *VARIANTS) if s in set(pairs["system"])]
    rows = []
    for system in order:
        rel = pairs.loc[pairs["system"] == system, "rel"].to_numpy()
        better, worse, p = sign_test(rel)
        rows.append({"system": system, "runs": len(rel), "better / worse": f"{better} / {worse}",
                     "mean change": rel.mean(), "median change": float(pd.Series(rel).median()),
                     "largest loss": rel.max(), "sign test p": p})
    return pd.DataFrame(rows)


def report(pairs: pd.DataFrame, budgets: tuple[float, float], command: str) -> str:
    short, long = budgets
    pct = {c: "{:+.2%}" for c in ("mean change", "median change", "largest loss")}
    per_run = pairs.pivot_table(index=["dataset", "seed"], columns="system", values="rel")
    per_run = per_run[[c for c in (*SYSTEM_ORDER, *VARIANTS) if c in per_run.columns]]
    per_run = per_run.reset_index().rename(columns={"seed": "seed "})
    return "\n".join([
        f"# More time: test loss at {long:g} s against {short:g} s, per system",
        "",
        f"Command: `{command}`. Relative change = loss at {long:g} s / loss at {short:g} s − 1 "
        "(negative: more time helped), over the runs (data set x seed) that finished at both "
        "budgets; sign test two-sided, ties dropped.",
        "",
        _table(per_system(pairs), formats={**pct, "sign test p": "{:.3g}"}),
        "",
        "## Per run",
        "",
        _table(per_run, formats={c: "{:+.2%}" for c in per_run.columns}),
        "",
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("short", type=Path, help="suite CSV at the shorter budget")
    parser.add_argument("long", type=Path, help="suite CSV at the longer budget")
    parser.add_argument("--out", type=Path, required=True, help="markdown file to write")
    args = parser.parse_args(argv)
    short, long = pd.read_csv(args.short), pd.read_csv(args.long)
    budgets = (float(short["budget"].iloc[0]), float(long["budget"].iloc[0]))
    command = "python -m benchmarks.suite.more_time " + shlex.join(sys.argv[1:] if argv is None else argv)
    text = report(paired(short, long), budgets, command)
    args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
