"""How much of a time budget does ``final_models="refit"`` need? Estimated on kept runs.

For each kept run of ``benchmarks.tables.run`` (a default 60 s fit, ``final_models="folds"``),
the refit of its ensemble is estimated as ``fit`` estimates it before refitting
(``FitPlan.refit_seconds``: each member's mean fold fit, scaled from a fold's training rows
to all rows), and compared with the budget; the fit's own time is listed beside it (a
fold in flight at the deadline runs past it). Nothing is retrained. From the repository root::

    python -m benchmarks.bench_refit_share --runs-dir /work/bench_runs/tables_s2 --budget 60 \
        --out benchmarks/results/refit_share.md
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from benchmarks.suite._systems import kept_runs, load_kept_run


def refit_estimate(model) -> float:
    """What ``fit`` estimates before refitting, from a fitted estimator."""
    from ensemble_hpo._fit_plan import estimate_refit_seconds

    return estimate_refit_seconds(model.ensemble_, model.population_, model.cv_splits_)


def measure(runs_dir: Path, budget: float) -> pd.DataFrame:
    rows = []
    for run in kept_runs(runs_dir):
        model, _ = load_kept_run(run)
        estimate = refit_estimate(model)
        rows.append({"run": run.name, "members": len(model.ensemble_.members),
                     "candidates": len(model.population_.completed()),
                     "refit_estimate_s": round(estimate, 2), "share_of_budget": estimate / budget,
                     "fit_time_s": round(model.fit_time_, 1)})
    return pd.DataFrame(rows)


def report(frame: pd.DataFrame, budget: float, command: str) -> str:
    share = frame["share_of_budget"]
    lines = [
        "# Refit share of a time budget (estimated on kept runs)", "",
        f"Command: `{command}`", "",
        f"{len(frame)} kept runs at {budget:g} s. Refit estimate as a share of the budget: "
        f"median {share.median():.1%}, 90th percentile {share.quantile(0.9):.1%}, "
        f"max {share.max():.1%}; above 10 % on {int((share > 0.10).sum())} runs, above 5 % on "
        f"{int((share > 0.05).sum())}.", "",
        "| run | members | candidates | refit estimate (s) | share of budget | fit time (s) |",
        "|---|---|---|---|---|---|",
    ]
    for r in frame.sort_values("share_of_budget", ascending=False).itertuples():
        lines.append(f"| {r.run} | {r.members} | {r.candidates} | {r.refit_estimate_s} | "
                     f"{r.share_of_budget:.1%} | {r.fit_time_s} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs-dir", type=Path, required=True)
    parser.add_argument("--budget", type=float, default=60.0)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    frame = measure(args.runs_dir, args.budget)
    command = "python -m benchmarks.bench_refit_share " + " ".join(sys.argv[1:] if argv is None else argv)
    args.out.write_text(report(frame, args.budget, command))
    print(args.out.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
