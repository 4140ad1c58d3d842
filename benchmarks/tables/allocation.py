"""Time allocation at a fixed budget, by table size, from the committed 60-table results.

Issue #16 item 5: at a fixed budget, how much should go to the search, to repeats of the
K-fold bagging and to a second layer, and does that depend on the table's size? No new
runs: this reads what earlier sessions measured and splits it by training rows.

* **Search share** (``tables_60s_reselect.csv``): the ensemble selected from the candidates
  that finished in the first half (``greedy@0.5``) or quarter (``greedy@0.25``) of the search
  against all of them (``greedy``): what it costs to give part of the search's time away.
* **Bagging repeats, if free** (``tables_60s_rebag.csv``): selection on out-of-fold
  predictions averaged over 3 shuffles of the folds (``rebag3``) against one (``base``).
* **Bagging repeats, paid** (``tables_60s_paired_cv5.csv`` / ``_cv5x2.csv``): real 60 s runs,
  ``cv`` 5-fold once against 5-fold twice (each candidate costs twice as much); and on the 15
  tables with fewer than 1000 training rows (``tables_60s_small_cv5.csv`` / ``_cv5x3.csv``),
  5-fold once against three times.
* **Second layer, if free** (``tables_60s_reselect.csv``): a stacking fuser on the greedy
  members (``fuse_Stacking``) against their weighted average (``fuse_WeightedAverage``), and
  the ``auto`` fuser (stacking only where it wins on held-out rows) against ``greedy``.

Per table the losses are averaged over the seeds both arms have, the relative change is
variant / reference - 1 (negative: the variant is better) and the sign test counts tables.

Usage::

    python -m benchmarks.tables.allocation --out benchmarks/results/
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks._markdown import markdown
from benchmarks.tables._report import sign_test

RESULTS = Path(__file__).resolve().parents[1] / "results"
#: Training-row bins (the runner subsamples tables to 5000 rows, so at most 3750 train).
SIZE_BINS = (0, 1000, 3000, np.inf)
SIZE_LABELS = ("< 1000 rows", "1000-2999 rows", ">= 3000 rows")


def _run_sizes(results: Path) -> pd.DataFrame:
    runs = pd.read_csv(results / "tables_60s.csv")[["table", "seed", "n_train"]]
    runs["run"] = runs.table + "_s" + runs.seed.astype(str)
    return runs


def _long(frame: pd.DataFrame, sizes: pd.DataFrame, loss: str) -> pd.DataFrame:
    """``(table, variant, loss)`` rows from a per-run CSV keyed by ``run``."""
    joined = frame.merge(sizes, on="run")
    return joined[["table", "seed", "n_train", "variant", loss]].rename(columns={loss: "loss"})


def offline_variants(results: Path) -> pd.DataFrame:
    sizes = _run_sizes(results)
    reselect = _long(pd.read_csv(results / "tables_60s_reselect.csv"), sizes, "test_loss")
    rebag = _long(pd.read_csv(results / "tables_60s_rebag.csv"), sizes, "test_loss")
    return pd.concat([reselect, rebag], ignore_index=True)


def paid_repeats(results: Path, prefix: str, variants: tuple[str, str]) -> pd.DataFrame:
    frames = []
    for variant in variants:
        frame = pd.read_csv(results / f"{prefix}_{variant}.csv")
        frame = frame[frame.status == "ok"]
        frames.append(frame.assign(variant=variant)[["table", "seed", "n_train", "variant",
                                                     "ensemble_loss", "candidates_ok"]]
                      .rename(columns={"ensemble_loss": "loss"}))
    return pd.concat(frames, ignore_index=True)


def paired(frame: pd.DataFrame, variant: str, reference: str) -> pd.DataFrame:
    """Per table: relative change of the seed-mean loss, on the seeds both arms have."""
    wide = frame[frame.variant.isin([variant, reference])].pivot_table(
        index=["table", "seed", "n_train"], columns="variant", values="loss").dropna()
    per_table = wide.groupby(level="table").mean()
    per_table["n_train"] = wide.reset_index().groupby("table").n_train.mean()
    per_table["rel"] = per_table[variant] / per_table[reference] - 1
    per_table["size"] = pd.cut(per_table.n_train, SIZE_BINS, right=False, labels=SIZE_LABELS)
    return per_table


def _line(rel: pd.Series) -> dict:
    better, worse, p = sign_test(rel.to_numpy())
    return {"tables": len(rel), "mean rel change": f"{rel.mean():+.2%}",
            "median rel change": f"{rel.median():+.2%}", "better / worse": f"{better} / {worse}",
            "sign test p": f"{p:.3g}"}


COMPARISONS = (
    ("search share: half the search (greedy@0.5 vs greedy)", "offline", "greedy@0.5", "greedy"),
    ("search share: a quarter (greedy@0.25 vs greedy)", "offline", "greedy@0.25", "greedy"),
    ("bagging repeats if free (rebag3 vs base)", "offline", "rebag3", "base"),
    ("bagging repeats paid, real 60 s runs (cv5x2 vs cv5)", "paid", "cv5x2", "cv5"),
    ("bagging repeats paid, small tables, real 60 s runs (cv5x3 vs cv5)", "paid_small", "cv5x3",
     "cv5"),
    ("second layer if free (fuse_Stacking vs fuse_WeightedAverage)", "offline", "fuse_Stacking",
     "fuse_WeightedAverage"),
    ("second layer where it wins on held-out rows (fuse_auto vs greedy)", "offline", "fuse_auto",
     "greedy"),
)


def table(results: Path) -> pd.DataFrame:
    sources = {"offline": offline_variants(results),
               "paid": paid_repeats(results, "tables_60s_paired", ("cv5", "cv5x2"))}
    if (results / "tables_60s_small_cv5x3.csv").exists():
        sources["paid_small"] = paid_repeats(results, "tables_60s_small", ("cv5", "cv5x3"))
    rows = []
    for label, source, variant, reference in COMPARISONS:
        if source not in sources:
            continue
        per_table = paired(sources[source], variant, reference)
        for size, group in [("all", per_table)] + list(per_table.groupby("size", observed=True)):
            rows.append({"comparison": label, "training rows": size, **_line(group.rel)})
    return pd.DataFrame(rows).set_index("comparison")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    text = "\n".join([
        "# Time allocation at a fixed budget, by table size (issue #16 item 5)",
        "",
        "Command: `python -m benchmarks.tables.allocation --out benchmarks/results/` (reads the "
        "committed 60-table CSVs; see the module docstring for each comparison).",
        "",
        markdown(table(args.results)),
        "",
    ])
    (args.out / "time_allocation.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
