"""Leave-one-table-out simulation of the warm-start phase (issue 17, item 3).

For every table of the repository: mine the portfolios on the *other* tables of the same task
(:func:`benchmarks.portfolio.build.build_portfolio`; the held-out table is never used, not even
for the cost estimates), then simulate a warm start on the held-out table at several budgets:

* two parallel workers take configurations in portfolio order; each occupies its worker for
  its ``cpu_seconds`` on that table (a failed or timed-out configuration occupies it too and
  yields nothing);
* the configurations finished by the budget form the population (if none has finished, the
  first to finish: ``fit`` always ends with at least one candidate);
* ``GreedySelector()`` on the population's OOF predictions, the ensemble scored on the
  table's test rows (log loss / RMSE), also as a normalised loss (see ``build.py``).

Strategies compared: ``ensemble`` (mined for the greedy ensemble), ``single`` (mined for the
best single model), ``defaults`` (today's warm start: the ``-d0``/``-d1`` configurations in
``SearchSpace.portfolio()`` order for ``models="auto"``, cheapest families first),
``random`` (all candidates in a seeded random order, mean over 5 seeds: what a search without
warm start does while its sampler is still random) and ``defaults+random`` (today's defaults,
then the other candidates in random order, 5 seeds: today's warm start followed by random
sampling).

This is a **simulation of the warm-start phase only**: no sampler trials follow the portfolio,
no process start-up or selection/fusion time is charged, and costs are CPU seconds measured on a
contended machine. A portfolio that ends before the budget simply stops growing.

From the repository root::

    nice -n 10 python -m benchmarks.portfolio.loto --out benchmarks/results/portfolio_loto
"""

from __future__ import annotations

import argparse
import csv
import heapq
import json
import pickle
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import binomtest

from benchmarks.portfolio.build import (
    DEFAULT_REPO,
    TASKS,
    Evaluator,
    TaskData,
    build_portfolio,
    default_families,
    load_configs,
    load_task,
)

BUDGETS = (2, 5, 10, 15, 20, 30, 60, 120, 300)
REPORT_BUDGETS = (10, 30, 60, 300)
N_WORKERS = 2
RANDOM_SEEDS = (0, 1, 2, 3, 4)
STRATEGIES = ("ensemble", "ensemble+random", "single", "nearest", "via_nearest", "defaults",
              "defaults+random", "random")


def defaults_order(data: TaskData) -> list[int]:
    """Today's warm start for ``models="auto"`` as candidate indices (``SearchSpace.portfolio()`` order)."""
    from ensemble_hpo.spaces import SearchSpace

    configs = load_configs()
    by_params = {}
    for j, cid in enumerate(data.config_ids):
        c = configs[cid]
        by_params[(c["family"], _key(c["params"]))] = j
    order = []
    space = SearchSpace.from_models("auto", task=data.task)
    for flat in _today_portfolio(space):
        family, params = SearchSpace.from_trial_params(flat)
        key = (family, _key(params))
        if key not in by_params:
            raise KeyError(f"today's default {family} {params} is not in the repository's candidates")
        order.append(by_params[key])
    return order


def _today_portfolio(space: Any) -> list[dict[str, Any]]:
    try:
        return space.portfolio("defaults")
    except TypeError:  # before SearchSpace.portfolio took a kind
        return space.portfolio()


def _key(params: dict[str, Any]) -> str:
    return repr(sorted((k, float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v)
                       for k, v in params.items()))


def finish_times(order: Sequence[int], cpu: np.ndarray, n_workers: int = N_WORKERS) -> np.ndarray:
    """End time of each configuration of ``order`` run on ``n_workers`` greedy workers."""
    free = [0.0] * n_workers
    heapq.heapify(free)
    ends = np.empty(len(order))
    for i, j in enumerate(order):
        start = heapq.heappop(free)
        ends[i] = start + cpu[j]
        heapq.heappush(free, ends[i])
    return ends


def simulate(ev: Evaluator, t: int, order: Sequence[int], budgets: Sequence[float]) -> list[dict[str, Any]]:
    """Ensemble test loss on table ``t`` after a warm start in ``order`` for each budget."""
    data = ev.data
    order = list(order)
    ends = finish_times(order, data.cpu[t])
    ok = np.array([data.ok[t, j] for j in order], bool)
    rows = []
    for budget in budgets:
        population = [j for j, e, k in zip(order, ends, ok, strict=True) if e <= budget and k]
        if not population and ok.any():
            first = int(np.argmin(np.where(ok, ends, np.inf)))
            population = [order[first]]
        loss = ev.ensemble_loss(t, population)
        rows.append({"budget": budget, "test_loss": loss, "norm_loss": ev.normalise(t, loss),
                     "n_population": len(population),
                     "n_started": int(np.sum(ends - data.cpu[t][order] < budget))})
    return rows


def run_task(repo: Path, task: str, budgets: Sequence[float], log: Any = print,
             max_rank: int | None = None, held_out: Sequence[str] | None = None,
             cache: Path | None = None, orders_out: dict[str, Any] | None = None,
             strategies: Sequence[str] = STRATEGIES, k_nearest: int = 10,
             n_jobs: int = 1) -> list[dict[str, Any]]:
    """LOTO rows of every held-out table of ``task`` (all, or those of ``held_out``).

    ``strategies``: which of :data:`STRATEGIES` to simulate (the mined ones cost the mining).
    ``nearest`` mines the ensemble portfolio on the ``k_nearest`` other tables closest to the
    held-out one by meta-features (``benchmarks/portfolio/meta.py``).

    ``cache``: a pickle of the evaluator's memo (ensemble losses per table and member set),
    loaded if it matches the candidates and tables, saved after every table, so that a rerun
    with other strategies or budgets costs little. ``orders_out`` receives the mined orders.
    """
    data = load_task(repo, task, max_rank=max_rank)
    ev = Evaluator(data, n_jobs=n_jobs)
    signature = (task, tuple(data.config_ids), tuple(data.tables))
    if cache is not None and cache.exists():
        with open(cache, "rb") as fh:
            stored = pickle.load(fh)
        if stored["signature"] == signature:
            ev._cache.update(stored["memo"])
    n = len(data.tables)
    defaults = defaults_order(data)
    meta = None
    if "nearest" in strategies or "via_nearest" in strategies:
        from benchmarks.portfolio.meta import repository_meta

        n_train = {name: len(y) for name, y in zip(data.tables, data.y_train, strict=True)}
        meta = repository_meta(data.tables, n_train)
    rows: list[dict[str, Any]] = []
    t0 = time.time()
    for t, table in enumerate(data.tables):
        if held_out is not None and table not in held_out:
            continue
        others = [u for u in range(n) if u != t]
        orders = _orders(ev, t, others, defaults, strategies, meta, k_nearest)
        if orders_out is not None:
            orders_out[table] = {k: [data.config_ids[j] for j in orders[k][0]]
                                 for k in ("ensemble", "single", "nearest", "via_nearest", "defaults")
                                 if k in orders}
        for strategy, variants in orders.items():
            sims = [simulate(ev, t, order, budgets) for order in variants]
            for b, budget in enumerate(budgets):
                rows.append({
                    "table": table, "task": task, "strategy": strategy, "budget": budget,
                    "test_loss": float(np.mean([s[b]["test_loss"] for s in sims])),
                    "norm_loss": float(np.mean([s[b]["norm_loss"] for s in sims])),
                    "n_population": float(np.mean([s[b]["n_population"] for s in sims])),
                    "portfolio_length": float(np.mean([len(o) for o in variants])),
                    "n_candidates": len(data.config_ids), "n_train_tables": n - 1,
                })
        log(f"{task} {t + 1}/{n} {table}: ensemble portfolio {len(orders['ensemble'][0])} configs, "
            f"{time.time() - t0:.0f} s")
        if cache is not None:
            tmp = cache.with_suffix(".tmp")
            with open(tmp, "wb") as fh:
                pickle.dump({"signature": signature, "memo": ev._cache}, fh)
            tmp.replace(cache)
    return rows


def _mined(ev: Evaluator, tables: Sequence[int], objective: str) -> list[int]:
    return [ev.data.config_ids.index(s.config_id)
            for s in build_portfolio(ev, tables, objective=objective)]


def _via_nearest(data: TaskData, t: int, others: list[int], meta: dict[str, dict[str, float]] | None,
                 k_nearest: int) -> list[int]:
    """The tables a shipped per-table portfolio would use for ``t``: those of its nearest table.

    A shipped file can hold one list per repository table ``u``, mined on the ``k_nearest``
    tables closest to ``u`` (``u`` included); ``fit`` would take the list of the table nearest
    to the user's. Here ``t`` is held out of both steps.
    """
    from benchmarks.portfolio.meta import nearest

    assert meta is not None
    pool = {data.tables[u]: meta[data.tables[u]] for u in others}
    closest = nearest(meta[data.tables[t]], pool, 1)[0]
    return [data.index(name) for name in nearest(meta[closest], pool, k_nearest)]


def _orders(ev: Evaluator, t: int, others: list[int], defaults: list[int], strategies: Sequence[str],
            meta: dict[str, dict[str, float]] | None, k_nearest: int) -> dict[str, list[list[int]]]:
    """The candidate orders of each strategy for held-out table ``t`` (random ones: one per seed)."""
    data = ev.data
    n_configs = len(data.config_ids)

    def then_random(head: list[int]) -> list[list[int]]:
        rest = [j for j in range(n_configs) if j not in head]
        return [head + list(np.random.default_rng(s).permutation(rest)) for s in RANDOM_SEEDS]

    orders: dict[str, list[list[int]]] = {"defaults": [defaults]}
    if "ensemble" in strategies or "ensemble+random" in strategies:
        orders["ensemble"] = [_mined(ev, others, "ensemble")]
        orders["ensemble+random"] = then_random(orders["ensemble"][0])
    if "single" in strategies:
        orders["single"] = [_mined(ev, others, "single")]
    if "nearest" in strategies:
        from benchmarks.portfolio.meta import nearest

        assert meta is not None
        pool = {data.tables[u]: meta[data.tables[u]] for u in others}
        near = [data.index(name) for name in nearest(meta[data.tables[t]], pool, k_nearest)]
        orders["nearest"] = [_mined(ev, near, "ensemble")]
    if "via_nearest" in strategies:
        orders["via_nearest"] = [_mined(ev, _via_nearest(data, t, others, meta, k_nearest), "ensemble")]
    if "random" in strategies:
        orders["random"] = [list(np.random.default_rng(s).permutation(n_configs)) for s in RANDOM_SEEDS]
    if "defaults+random" in strategies:
        orders["defaults+random"] = then_random(defaults)
    return {k: v for k, v in orders.items() if k in strategies or k == "defaults"}


def summarise(rows: list[dict[str, Any]], budgets: Sequence[float], baseline: str = "defaults",
              candidates: Sequence[str] = ("ensemble", "ensemble+random", "single", "nearest",
                                           "via_nearest", "random", "defaults+random"),
              means: bool = True) -> list[str]:
    """Markdown lines: per budget, mean normalised loss of every strategy and wins against ``baseline``."""
    import pandas as pd

    df = pd.DataFrame(rows)
    lines: list[str] = []
    strategies = [s for s in STRATEGIES if s in set(df.strategy)]
    if means:
        lines += _means(df, strategies, budgets)
    lines.append(f"Per table against `{baseline}` (lower test loss wins; ties are equal losses, "
                 "e.g. the same population; two-sided sign test over the non-tied tables):\n")
    lines.append("| budget (s) | strategy | wins | losses | ties | win share | sign test p |")
    lines.append("|---|---|---|---|---|---|---|")
    for budget in budgets:
        sub = df[df.budget == budget].pivot(index="table", columns="strategy", values="test_loss")
        for s in candidates:
            if s not in sub:
                continue
            diff = sub[s] - sub[baseline]
            tol = 1e-9 * np.maximum(sub[baseline].abs(), 1.0)
            wins, losses = int((diff < -tol).sum()), int((diff > tol).sum())
            ties = len(diff) - wins - losses
            p = binomtest(wins, wins + losses).pvalue if wins + losses else 1.0
            lines.append(f"| {budget:g} | {s} | {wins} | {losses} | {ties} | "
                         f"{wins / len(diff):.0%} | {p:.2g} |")
    lines.append("")
    return lines


def _means(df: Any, strategies: Sequence[str], budgets: Sequence[float]) -> list[str]:
    lines = []
    lines.append("Mean normalised test loss over the tables (0 = best single configuration of the "
                 "table, 1 = its median configuration; lower is better):\n")
    lines.append("| budget (s) | " + " | ".join(strategies) + " |")
    lines.append("|---|" + "---|" * len(strategies))
    for budget in budgets:
        sub = df[df.budget == budget]
        means = sub.groupby("strategy").norm_loss.mean()
        lines.append(f"| {budget:g} | " + " | ".join(f"{means[s]:.3f}" for s in strategies) + " |")
    lines.append("")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repo", type=Path, default=DEFAULT_REPO)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/portfolio_loto"),
                        help="output stem: writes <out>.csv and <out>.md")
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--budgets", default=",".join(str(b) for b in BUDGETS))
    parser.add_argument("--csv-only", action="store_true",
                        help="write <out>.csv only (run tasks in separate processes, then --report)")
    parser.add_argument("--report", nargs="*", type=Path, default=None,
                        help="no computation: merge these CSVs (and their _orders.json) into "
                             "<out>.csv, <out>_orders.json and write <out>.md")
    parser.add_argument("--max-rank", type=int, default=None,
                        help="only the first K configurations of each family (default: all "
                             "evaluated on every table of the task)")
    parser.add_argument("--held-out", default=None,
                        help="comma-separated held-out tables (default: every table of the task)")
    parser.add_argument("--strategies", default=",".join(s for s in STRATEGIES if "nearest" not in s),
                        help=f"comma-separated, of {', '.join(STRATEGIES)}")
    parser.add_argument("--k-nearest", type=int, default=10,
                        help="tables the 'nearest' strategy mines on (closest by meta-features)")
    parser.add_argument("--n-jobs", type=int, default=1,
                        help="processes for the ensemble fits of the mining (forked, same results)")
    parser.add_argument("--cache", type=Path, default=None,
                        help="pickle of the ensemble-loss memo, reused by a rerun (one per task)")
    args = parser.parse_args(argv)
    budgets = [float(b) for b in args.budgets.split(",")]
    if args.report is not None:
        import pandas as pd

        frame = pd.concat([pd.read_csv(path) for path in args.report])
        frame.to_csv(args.out.with_suffix(".csv"), index=False)
        orders: dict[str, Any] = {}
        for path in args.report:
            sibling = path.with_name(f"{path.stem}_orders.json")
            if sibling.exists():
                orders.update(json.loads(sibling.read_text()))
        if orders:
            Path(f"{args.out}_orders.json").write_text(json.dumps(orders, indent=0) + "\n")
        rows = frame.to_dict("records")
        write_report(args.out.with_suffix(".md"), rows, budgets, args.repo, args.max_rank)
        return 0
    rows = []
    orders: dict[str, Any] = {}
    t0 = time.time()
    held_out = args.held_out.split(",") if args.held_out else None
    for task in args.tasks.split(","):
        cache = args.cache.with_name(f"{args.cache.stem}_{task}.pkl") if args.cache else None
        rows += run_task(args.repo, task, budgets, log=lambda m: print(m, flush=True),
                         max_rank=args.max_rank, held_out=held_out, cache=cache, orders_out=orders,
                         strategies=args.strategies.split(","), k_nearest=args.k_nearest,
                         n_jobs=args.n_jobs)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    Path(f"{args.out}_orders.json").write_text(json.dumps(orders, indent=0) + "\n")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out.with_suffix(".csv"), "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {args.out.with_suffix('.csv')} ({time.time() - t0:.0f} s)")
    if not args.csv_only:
        write_report(args.out.with_suffix(".md"), rows, budgets, args.repo, args.max_rank)
    return 0


def write_report(path: Path, rows: list[dict[str, Any]], budgets: Sequence[float], repo: Path,
                 max_rank: int | None = None) -> None:
    import pandas as pd

    df = pd.DataFrame(rows)
    per_task = ", ".join(f"{k}: {v}" for k, v in df.groupby("task").table.nunique().items())
    n_evals = int(df.groupby("table").n_candidates.first().sum())
    low, high = int(df.n_candidates.min()), int(df.n_candidates.max())
    candidates = str(low) if low == high else f"{low}-{high}"
    head = [
        "# Leave-one-table-out simulation of the warm-start phase (issue 17)",
        "",
        "Command (from the repository root): three processes (regression; the classification "
        "tables in two halves, alternate tables of the sorted list), then the report:",
        "",
        "```bash",
        'R="nice -n 10 python -m benchmarks.portfolio.loto --max-rank 6 --csv-only"',
        "$R --tasks regression --out /tmp/loto/reg --cache /tmp/loto/cache_reg &",
        "$R --tasks classification --held-out <classification tables 0, 2, 4, ...> "
        "--out /tmp/loto/clsA --cache /tmp/loto/cache_clsA &",
        "$R --tasks classification --held-out <classification tables 1, 3, 5, ...> "
        "--out /tmp/loto/clsB --cache /tmp/loto/cache_clsB; wait",
        "python -m benchmarks.portfolio.loto --report /tmp/loto/reg.csv /tmp/loto/clsA.csv "
        "/tmp/loto/clsB.csv --out benchmarks/results/portfolio_loto",
        "```",
        "",
        "(`python -m benchmarks.portfolio.loto --max-rank 6` alone does the same in one process, "
        "in about an hour of one core.)",
        "",
        "**A simulation of the warm-start phase, not of `fit`.** For each table, portfolios are "
        "mined on the other tables of its task; two workers run the portfolio's configurations "
        "in order, each costing its measured CPU seconds on the held-out table; the "
        "configurations finished by the budget are the population; `GreedySelector()` selects "
        "on their out-of-fold predictions and the ensemble is scored on the table's test rows. "
        "No sampler trials follow the portfolio (a portfolio that ends before the budget stops "
        "growing), no process start-up, selection or fusion time is charged, and the CPU "
        "seconds were measured on a contended machine. See `benchmarks/portfolio/loto.py`.",
        "",
        f"Repository used: {candidates} candidate "
        f"configurations per task (families of `models=\"auto\"`: {', '.join(default_families())}; "
        "those evaluated on every table of the task"
        + (f", the first {max_rank} of each family (`--max-rank {max_rank}`; xgboost has two "
           "defaults, so one more)" if max_rank else "")
        + f"), {df.table.nunique()} tables ({per_task}), {n_evals:,} evaluations, "
        f"repository `{repo}`.",
        "",
        "Strategies: `ensemble` = portfolio mined for the greedy ensemble (time-aware, stops when "
        "no configuration lowers the mean loss), `ensemble+random` = that portfolio then the other "
        "candidates in random order, `single` = mined for the best single model (time-aware), "
        "`defaults` = today's warm start (`SearchSpace.portfolio(\"defaults\")` for "
        "`models=\"auto\"`), `defaults+random` = today's defaults then the other candidates in "
        "random order, `random` = all candidates in random order (no warm start while the sampler "
        "is random); random orders are averaged over 5 seeds. The `+random` variants stand in for "
        "the sampler that follows the warm start in `fit`.",
        "",
    ]
    body = summarise(rows, budgets)
    present = set(df.strategy)
    for baseline, candidates in (("defaults+random", ("ensemble+random",)), ("single", ("ensemble",)),
                                 ("ensemble", ("nearest", "via_nearest"))):
        if baseline in present and present & set(candidates):
            body += summarise(rows, budgets, baseline=baseline, candidates=candidates, means=False)
    pop = df.pivot_table(index="budget", columns="strategy", values="n_population", aggfunc="mean")
    strategies = [s for s in STRATEGIES if s in pop]
    body += ["Mean population size (configurations finished, failed ones excluded) — once the "
             "candidates are exhausted, every order that contains them all gives the same "
             "population and the same ensemble:", "",
             "| budget (s) | " + " | ".join(strategies) + " |", "|---|" + "---|" * len(strategies)]
    body += [f"| {b:g} | " + " | ".join(f"{pop.loc[b, s]:.1f}" for s in strategies) + " |"
             for b in pop.index]
    lengths = df[df.budget == df.budget.max()].groupby(["task", "strategy"]).portfolio_length.mean()
    tail = ["", "Mean portfolio length (configurations) per task and strategy:", "",
            "| task | strategy | length |", "|---|---|---|"]
    tail += [f"| {task} | {s} | {v:.1f} |" for (task, s), v in lengths.items()]
    for task in sorted(df.task.unique()):
        tail += ["", f"### {task} only", ""]
        sub = [r for r in rows if r["task"] == task]
        tail += summarise(sub, budgets)
        tail += summarise(sub, budgets, baseline="defaults+random", candidates=("ensemble+random",),
                          means=False)
    path.write_text("\n".join(head + body + tail) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    sys.exit(main())
