"""Real-run check of the mined warm start (issue 17, item 4): ``fit`` with a leave-one-table-out
mined portfolio against today's defaults, same budget, same seed.

For each table: the portfolio is mined on the *other* tables of its task
(:func:`benchmarks.portfolio.build.build_portfolio`, the same code and candidates as the
shipped file), then ``EnsembleClassifier/EnsembleRegressor(time_budget=..., n_jobs=2,
random_state=seed)`` is fitted on the table's split (``load_table_split(table, seed=0)``, the
split the repository was built on) twice: ``warm_start_configs="mined"`` with the LOTO
portfolio in place of the shipped file, and ``warm_start_configs="defaults"``. The shipped file
is never touched: the LOTO content replaces :func:`ensemble_hpo.spaces._portfolio.load_portfolio`
in this process only (the warm-start trials are enqueued by the parent process, so the worker
processes need not see it). Test loss (log loss / RMSE) of the fitted ensemble on the test rows.

Resumable: rows already in ``--out`` are skipped. From the repository root::

    nice -n 10 python -m benchmarks.portfolio.bench_warm_start --budget 30 --seed 0 \\
        --out benchmarks/results/portfolio_warm_start_30s.csv --max-rank 5
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np

from benchmarks.portfolio.build import (
    DEFAULT_REPO,
    Evaluator,
    build_portfolio,
    default_families,
    load_configs,
    load_task,
    portfolio_entries,
)

#: ``warm_start_configs`` of the two arms: the LOTO-mined list (opt-in name ``"mined"``) and
#: today's defaults. Not ``"portfolio"``: it means ``"defaults"`` while the mined list is opt-in.
ARMS = ("mined", "defaults")
#: Every arm ``--arms`` accepts; ``"none"`` is ``warm_start_configs=None`` (the sampler from the
#: first trial), the "no warm start" line of the any-time comparison.
KNOWN_ARMS = ("mined", "defaults", "none")
COLUMNS = ["table", "task", "seed", "budget", "arm", "test_loss", "n_candidates", "n_ok",
           "n_members", "portfolio_length", "warm_start_run", "fit_seconds", "load_before",
           "finished_utc"]


class LotoPortfolios:
    """LOTO-mined portfolio contents per table (one :class:`Evaluator` per task, memoised).

    ``orders``: ``{table: {"ensemble": [config ids]}}`` written by ``loto.py``
    (``<out>_orders.json``); a table found there uses that order (the very portfolio the
    simulation scored) instead of being mined again.
    """

    def __init__(self, repo: Path, max_rank: int | None,
                 orders: dict[str, dict[str, list[str]]] | None = None) -> None:
        self.repo, self.max_rank = repo, max_rank
        self._evaluators: dict[str, Evaluator] = {}
        self._configs = load_configs()
        self._orders = orders or {}

    def content(self, table: str, task: str) -> dict[str, Any]:
        if table in self._orders:
            ids = self._orders[table]["ensemble"]
            configs = [{"id": i, "family": self._configs[i]["family"], "params": self._configs[i]["params"]}
                       for i in ids]
            return {"format_version": 1, "families": list(default_families()),
                    "tasks": {task: {"configs": configs}}}
        if task not in self._evaluators:
            self._evaluators[task] = Evaluator(load_task(self.repo, task, max_rank=self.max_rank))
        ev = self._evaluators[task]
        others = [t for t, name in enumerate(ev.data.tables) if name != table]
        if len(others) == len(ev.data.tables):
            raise KeyError(f"{table} is not a {task} table of {self.repo}")
        steps = build_portfolio(ev, others)
        return {"format_version": 1, "families": list(default_families()),
                "tasks": {task: {"tables": [ev.data.tables[t] for t in others],
                                 "configs": portfolio_entries(steps, self._configs)}}}


def fit_one(split: Any, seed: int, budget: float, arm: str, content: dict[str, Any]) -> dict[str, Any]:
    from benchmarks.suite._metrics import primary_loss, score_predictions
    from ensemble_hpo import EnsembleClassifier, EnsembleRegressor
    from ensemble_hpo.spaces import SearchSpace, _portfolio

    cls = EnsembleClassifier if split.task == "classification" else EnsembleRegressor
    warm_start = None if arm == "none" else arm
    model = cls(time_budget=budget, n_jobs=2, random_state=seed, warm_start_configs=warm_start)
    load_before = os.getloadavg()[0]
    start = time.time()
    with mock.patch.object(_portfolio, "load_portfolio", lambda: content), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        space = SearchSpace.from_models("auto", task=split.task)
        expected = [] if warm_start is None else space.portfolio(arm)
        model.fit(split.X_train, split.y_train)
    # how many of the warm-start configurations were run (a check that the arm took effect)
    run = [t.params for t in model.trials_]
    warm_start_run = sum(params in run for params in expected)
    fit_seconds = time.time() - start
    classification = split.task == "classification"
    pred = model.predict_proba(split.X_test) if classification else model.predict(split.X_test)
    loss = primary_loss(split.task, score_predictions(split.task, split.y_test, pred, split.n_classes))
    board = model.leaderboard_
    return {"table": split.name, "task": split.task, "seed": seed, "budget": budget, "arm": arm,
            "test_loss": loss, "n_candidates": len(board), "n_ok": int((board["status"] == "ok").sum()),
            "n_members": len(model.ensemble_), "warm_start_run": f"{warm_start_run}/{len(expected)}",
            "portfolio_length": len(content["tasks"][split.task]["configs"]) if arm == "mined" else "",
            "fit_seconds": round(fit_seconds, 1), "load_before": round(load_before, 2),
            "finished_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repo", type=Path, default=DEFAULT_REPO)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/portfolio_warm_start_30s.csv"))
    parser.add_argument("--budget", type=float, default=30.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-rank", type=int, default=None)
    parser.add_argument("--tables", default="all",
                        help="comma-separated, or 'all' (the 60 tables, fixed pseudo-random order)")
    parser.add_argument("--arms", default=",".join(ARMS),
                        help=f"comma-separated warm starts to fit, in order, of {', '.join(KNOWN_ARMS)}")
    parser.add_argument("--suite", action="store_true",
                        help="the development suite's data sets (benchmarks/suite) with the shipped "
                             "portfolio, mined on the 60 tables, none of which is in the suite")
    parser.add_argument("--max-minutes", type=float, default=None, help="stop starting new tables after")
    parser.add_argument("--orders", nargs="*", type=Path, default=(),
                        help="loto.py's <out>_orders.json files (LOTO orders to reuse)")
    parser.add_argument("--report", nargs="+", type=Path, default=None,
                        help="print the markdown results of these CSVs instead of fitting")
    args = parser.parse_args(argv)
    if args.report:
        print(report(args.report))
        return 0
    unknown = set(args.arms.split(",")) - set(KNOWN_ARMS)
    if unknown:
        parser.error(f"unknown arms {sorted(unknown)}; known: {', '.join(KNOWN_ARMS)}")
    from benchmarks.tables._data import PORTFOLIO_TABLES, table_task

    if args.suite:
        return run_suite(args)
    tables = list(PORTFOLIO_TABLES) if args.tables == "all" else args.tables.split(",")
    if args.tables == "all":  # interleave tasks so a partial run covers both
        tables = sorted(tables, key=lambda t: (hash_order(t), t))
    orders: dict[str, Any] = {}
    for path in args.orders:
        orders.update(json.loads(path.read_text()))
    loto = LotoPortfolios(args.repo, args.max_rank, orders)

    def table_arms(table: str) -> tuple[Any, dict[str, Any]]:
        from benchmarks.tables._data import load_table_split

        return load_table_split(table, 0), loto.content(table, table_task(table))

    run_tables(args, tables, table_arms)
    return 0


def run_suite(args: argparse.Namespace) -> int:
    """The development suite with the shipped portfolio (no table of it was mined from)."""
    from benchmarks.suite._data import SUITE_DATASETS, load_split
    from ensemble_hpo.spaces._portfolio import load_portfolio

    shipped = dict(load_portfolio())
    run_tables(args, list(SUITE_DATASETS), lambda name: (load_split(name, 0), shipped))
    return 0


def run_tables(args: argparse.Namespace, tables: list[str], table_arms: Any) -> None:
    """Fit both arms on each table not yet in ``args.out``; append one CSV row per fit."""
    from benchmarks.suite._data import short_name

    done = set()
    if args.out.exists():
        with open(args.out) as fh:
            done = {(r["table"], int(r["seed"]), float(r["budget"]), r["arm"]) for r in csv.DictReader(fh)}
    else:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        with open(args.out, "w", newline="") as fh:
            csv.DictWriter(fh, fieldnames=COLUMNS).writeheader()
    t0 = time.time()
    for table in tables:
        if args.max_minutes is not None and time.time() - t0 > 60 * args.max_minutes:
            print("time limit reached", flush=True)
            break
        todo = [a for a in args.arms.split(",") if (short_name(table), args.seed, args.budget, a) not in done]
        if not todo:
            continue
        split, content = table_arms(table)
        for arm in todo:
            row = fit_one(split, args.seed, args.budget, arm, content)
            with open(args.out, "a", newline="") as fh:
                csv.DictWriter(fh, fieldnames=COLUMNS).writerow(row)
            print(f"{split.name} {arm}: {row['test_loss']:.5g} ({row['n_ok']} ok candidates, "
                  f"{row['fit_seconds']} s)", flush=True)


def hash_order(name: str) -> int:
    """A fixed pseudo-random table order (CRC32), so partial runs are not alphabetical."""
    import zlib

    return zlib.crc32(name.encode())


def report(paths: list[Path]) -> str:
    """Markdown results of one or more CSVs: every arm against ``defaults``, per budget.

    Per budget: wins / losses / ties of each other arm against the defaults (lower test loss
    wins), the sign test, the median and mean relative change, by task; then every table's
    losses and the finished candidates per arm.
    """
    import pandas as pd

    df = pd.concat([pd.read_csv(p) for p in paths], ignore_index=True)
    lines: list[str] = []
    for budget, part in df.groupby("budget"):
        wide = _wide(part, "test_loss")
        arms = [a for a in KNOWN_ARMS if a in wide and a != "defaults"]
        lines += [f"### {budget:g} s", ""]
        seeds = sorted(part["seed"].unique())
        for arm in arms:
            both = wide[[arm, "defaults"]].dropna()
            views = [(f"seed {s}", both.xs(s, level="seed", drop_level=False)) for s in seeds]
            if len(seeds) > 1:  # tables with both arms at every seed, losses averaged over seeds
                per_table = both.groupby(level=["table", "task"])
                complete = per_table.size() == len(seeds)
                views.append(("mean over seeds", per_table.mean()[complete]))
            for label, view in views:
                lines.append(f"- **{arm}** against defaults, {label}: "
                             + _versus_line(view[arm], view["defaults"], arm))
                for task, rows in view.groupby(level="task"):
                    lines.append(f"  - {task}: " + _versus_line(rows[arm], rows["defaults"], arm))
        lines += ["", _table_rows(part, wide, arms), ""]
    return "\n".join(lines)


def _wide(df: Any, value: str) -> Any:
    return df.pivot_table(index=["table", "task", "seed"], columns="arm", values=value, aggfunc="first")


def _versus_line(arm: Any, defaults: Any, name: str) -> str:
    from scipy.stats import binomtest

    wins, losses = int((arm < defaults).sum()), int((arm > defaults).sum())
    p = binomtest(wins, wins + losses).pvalue if wins + losses else float("nan")
    change = arm / defaults - 1
    return (f"{len(arm)} tables: {name} wins {wins} ({wins / max(len(arm), 1):.0%}), loses {losses}, "
            f"ties {len(arm) - wins - losses}; sign test p = {p:.2g}; relative change of test loss: "
            f"median {np.median(change):+.2%}, mean {np.mean(change):+.2%}")


def _table_rows(part: Any, wide: Any, arms: list[str]) -> str:
    ok = _wide(part, "n_ok")
    shown = ["defaults", *arms]
    head = ("| table | task | seed | " + " | ".join(shown) + " | "
            + " | ".join(f"{a} change" for a in arms) + " | ok candidates (" + " / ".join(shown) + ") |")
    rows = [head, "|" + "---|" * (5 + 2 * len(arms))]
    first = arms[0] if arms else "defaults"
    order = (wide[first] / wide["defaults"]).dropna().sort_values().index  # both arms finished
    for key in order:
        losses = " | ".join(f"{wide.loc[key, a]:.5g}" for a in shown)
        changes = " | ".join(f"{wide.loc[key, a] / wide.loc[key, 'defaults'] - 1:+.2%}" for a in arms)
        counts = " / ".join("" if np.isnan(ok.loc[key, a]) else f"{ok.loc[key, a]:.0f}" for a in shown)
        rows.append(f"| {key[0]} | {key[1]} | {key[2]} | {losses} | {changes} | {counts} |")
    return "\n".join(rows)


if __name__ == "__main__":
    sys.exit(main())
