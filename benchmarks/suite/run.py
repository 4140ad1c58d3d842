"""Run the benchmark suite and write raw CSV, markdown table, mean ranks and a rank figure.

Usage (from the repository root)::

    python -m benchmarks.suite.run --budget 60 --seeds 0 --datasets all --systems all \
        --out benchmarks/results/

Systems run one at a time; every finished (data set, system) row is written to the CSV
at once, so an interrupted run is still usable (``--report-only`` rebuilds the report).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import traceback
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks._merge import upsert
from benchmarks.suite._data import SUITE_DATASETS, load_split, short_name
from benchmarks.suite._metrics import score_predictions
from benchmarks.suite._report import write_report
from benchmarks.suite._systems import OUTPUT_NAMES, SYSTEMS, NotInstalled, Outcome


def _pick(value: str, choices: tuple[str, ...] | list[str], what: str) -> list[str]:
    if value == "all":
        return list(choices)
    picked = [v.strip() for v in value.split(",") if v.strip()]
    by_short = {short_name(c): c for c in choices}
    out = []
    for v in picked:
        if v in choices:
            out.append(v)
        elif v in by_short:
            out.append(by_short[v])
        else:
            raise SystemExit(f"The {what} must be 'all' or a comma list of {list(choices)}. "
                             f"Got {v!r} instead.")
    return out


def _load_average() -> float:
    return os.getloadavg()[0]


def _rows_for(outcomes: list[Outcome], split, base: dict) -> list[dict]:
    rows = []
    for out in outcomes:
        row = dict(base, system=out.system, status="ok", fit_time=out.fit_time,
                   n_trials=out.n_trials, note=out.note)
        row.update(score_predictions(split.task, split.y_test, out.pred, split.n_classes))
        rows.append(row)
    return rows


def _failed_rows(system: str, status: str, note: str, base: dict) -> list[dict]:
    return [dict(base, system=name, status=status, note=note[:300])
            for name in OUTPUT_NAMES[system]]


def run_suite(budget: float, seeds: list[int], datasets: list[str], systems: list[str],
              out_dir: Path, tag: str, resume: bool = False) -> Path:
    """Run every (seed, data set, system) and rewrite the CSV after each one."""
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path = out_dir / f"{tag}.csv"
    boards_path = out_dir / f"{tag}_leaderboards.csv"
    rows: list[dict] = []
    boards: list[pd.DataFrame] = []
    if resume and csv_path.exists():
        rows = pd.read_csv(csv_path).to_dict("records")
        if boards_path.exists():
            boards = [pd.read_csv(boards_path)]
    done = {(r["seed"], r["dataset"], r["system"]) for r in rows if r["status"] == "ok"}
    for seed in seeds:
        for name in datasets:
            split = load_split(name, seed)
            for system in systems:
                if all((seed, split.name, o) in done for o in OUTPUT_NAMES[system]):
                    continue
                rows = [r for r in rows if not (r["seed"] == seed and r["dataset"] == split.name
                                                and r["system"] in OUTPUT_NAMES[system])]
                base = dict(budget=budget, seed=seed, dataset=split.name, task=split.task,
                            n_classes=split.n_classes or 0, n_train=len(split.X_train),
                            n_test=len(split.X_test), n_rows_original=split.n_rows_original,
                            load_1min=_load_average())
                print(f"[{time.strftime('%H:%M:%S')}] {split.name} / {system} "
                      f"(budget {budget:g}s, seed {seed}, load {base['load_1min']:.2f})",
                      flush=True)
                try:
                    outcomes = SYSTEMS[system](split, budget, seed)
                    new = _rows_for(outcomes, split, base)
                    for out in outcomes:
                        if out.leaderboard is not None:
                            boards.append(out.leaderboard.assign(dataset=split.name, seed=seed,
                                                                 budget=budget))
                except NotInstalled as exc:
                    new = _failed_rows(system, "not installed", str(exc), base)
                except Exception as exc:  # a crashing system is a result, not a stop
                    traceback.print_exc()
                    new = _failed_rows(system, "failed", f"{type(exc).__name__}: {exc}", base)
                for r in new:
                    print(f"    {r['system']:<18} {r['status']:<8} fit {r.get('fit_time', np.nan):7.1f}s"
                          f"  {_metric_text(r)}", flush=True)
                rows.extend(new)
                pd.DataFrame(rows).to_csv(csv_path, index=False)
                if boards:
                    pd.concat(boards, ignore_index=True).to_csv(boards_path, index=False)
    return csv_path


def merge_runs(out_dir: Path, tag: str, others: list[str]) -> None:
    """Append other runs' results and leaderboards to ``tag``'s: later runs win on overlap,
    except a failed row over an ok one, and a leaderboard comes whole from a run whose results
    row for it is ok (merged by candidate number, two runs' candidates were mixed; audit)."""
    results, boards = None, None
    for t in [tag, *others]:
        result_path, board_path = out_dir / f"{t}.csv", out_dir / f"{t}_leaderboards.csv"
        result = pd.read_csv(result_path) if result_path.exists() else pd.DataFrame()
        results = result if results is None else upsert(results, result, ["seed", "dataset", "system"])
        if board_path.exists():
            board = _finished_boards(pd.read_csv(board_path), result)
            boards = board if boards is None else upsert(boards, board, ["seed", "dataset"],
                                                         keep_ok=False)
    if results is not None and not results.empty:
        results.to_csv(out_dir / f"{tag}.csv", index=False)
    if boards is not None:
        boards.to_csv(out_dir / f"{tag}_leaderboards.csv", index=False)


def _finished_boards(boards: pd.DataFrame, results: pd.DataFrame) -> pd.DataFrame:
    """The leaderboards of (seed, dataset) pairs whose results hold an ok row."""
    if "status" not in results or boards.empty:
        return boards
    ok = results[results["status"] == "ok"][["seed", "dataset"]].drop_duplicates()
    return boards.merge(ok, on=["seed", "dataset"], how="inner")


def _metric_text(row: dict) -> str:
    keys = ("log_loss", "roc_auc", "rmse")
    return "  ".join(f"{k} {row[k]:.5f}" for k in keys if k in row and pd.notna(row[k]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=60.0, help="seconds per system fit")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--datasets", default="all", help=f"'all' or comma list of {SUITE_DATASETS}")
    parser.add_argument("--systems", default="all", help=f"'all' or comma list of {list(SYSTEMS)}")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--tag", default=None, help="file stem; default suite_<budget>s")
    parser.add_argument("--resume", action="store_true",
                        help="keep the CSV's finished rows and run only the missing ones")
    parser.add_argument("--merge-from", nargs="*", default=[],
                        help="tags of runs (e.g. run in parallel) whose CSVs are merged in first")
    parser.add_argument("--report-only", action="store_true", help="rebuild report from the CSV")
    args = parser.parse_args(argv)
    tag = args.tag or f"suite_{args.budget:g}s"
    command = "python -m benchmarks.suite.run " + " ".join(sys.argv[1:] if argv is None else argv)
    if not args.report_only:
        uptime_before = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
        run_suite(args.budget, args.seeds, _pick(args.datasets, SUITE_DATASETS, "datasets"),
                  _pick(args.systems, list(SYSTEMS), "systems"), args.out, tag, args.resume)
        uptime_after = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
        pd.DataFrame({"when": ["start", "end"], "uptime": [uptime_before, uptime_after]}).to_csv(
            args.out / f"{tag}_uptime.csv", index=False)
    if args.merge_from:
        merge_runs(args.out, tag, args.merge_from)
    write_report(args.out, tag, command)
    return 0


if __name__ == "__main__":
    sys.exit(main())
