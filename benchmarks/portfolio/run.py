"""Build the evaluation repository: every configuration of configs.json on the portfolio tables.

Resumable and interleaved: configurations run rank by rank (rank 0 = each family's default,
then the sampled ones in order), and within a rank table by table and family by family, so
any prefix of the run is a balanced repository (the first K configurations of every family on
every table). What is stored is skipped on restart. From the repository root::

    python -m benchmarks.portfolio.run run --max-hours 10            # or --max-evals N
    python -m benchmarks.portfolio.run run --tables pima_diabetes,mice_weight --families ridge,knn \\
        --max-rank 3 --out /tmp/prepo --scores /tmp/prepo/scores.csv   # smoke
    python -m benchmarks.portfolio.run status                        # counts per family and table
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
import traceback
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._provenance import code_commit
from benchmarks.portfolio import _pack, _store
from benchmarks.portfolio.configs import CONFIGS_FILE, load_configs

DEFAULT_OUT = Path("/work/portfolio_repo")
DEFAULT_SCORES = Path(__file__).resolve().parents[1] / "results" / "portfolio_repo_scores.csv"


def _names(value: str, universe: list[str], what: str) -> list[str]:
    if value in ("all", ""):
        return list(universe)
    names = [v.strip() for v in value.split(",") if v.strip()]
    unknown = [n for n in names if n not in universe]
    if unknown:
        raise SystemExit(f"unknown {what}: {unknown}; known: {', '.join(universe)}")
    return names


def _tables() -> list[str]:
    from benchmarks.tables._data import PORTFOLIO_TABLES

    return list(PORTFOLIO_TABLES)


def _table_task(name: str) -> str:
    from benchmarks.tables._data import table_task

    return table_task(name)


def plan(tables: list[str], families: list[str], by_family: dict[str, list[dict]],
         max_rank: int | None) -> list[tuple[str, dict]]:
    """The interleaved order: rank, then table, then family (families the task supports)."""
    from ensemble_hpo.spaces import get_family

    depth = max(len(by_family[f]) for f in families)
    if max_rank is not None:
        depth = min(depth, max_rank)
    supported = {t: [f for f in families if get_family(f).supports(_table_task(t))] for t in tables}
    order = []
    for rank in range(depth):
        for table in tables:
            for family in supported[table]:
                if rank < len(by_family[family]):
                    order.append((table, by_family[family][rank]))
    return order


def _log(message: str) -> None:
    print(time.strftime("%H:%M:%S ", time.gmtime()) + message, flush=True)


def cmd_run(args: argparse.Namespace) -> int:
    import ensemble_hpo
    from benchmarks.portfolio._evaluate import evaluate_config, setup_table, start_fork_server

    data = load_configs(args.configs)
    families = _names(args.families, data["families"], "families")
    tables = _names(args.tables, _tables(), "tables")
    by_family: dict[str, list[dict]] = defaultdict(list)
    for config in data["configs"]:
        by_family[config["family"]].append(config)
    repo = _store.Repository(args.out)
    lock = repo.lock()
    # SIGTERM ends the run like Ctrl-C: the child in flight is killed, nothing half-written.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if not args.no_packs:
        unpacked = _pack.unpack(repo, args.packs)
        _log(f"{unpacked} evaluations unpacked from {args.packs} (the rest was stored already)")
    n_rows = _store.rebuild_csv(repo, args.scores)
    done = repo.done_ids()
    order = [(t, c) for t, c in plan(tables, families, by_family, args.max_rank)
             if c["id"] not in done.get((t, c["family"]), set())]
    code = code_commit("benchmarks/portfolio", "benchmarks/tables")
    _log(f"ensemble_hpo from {ensemble_hpo.__file__} (code {code}); repository {args.out} "
         f"({n_rows} evaluations stored, score CSV {args.scores} rebuilt); {len(order)} to go in this plan "
         f"({len(tables)} tables, {len(families)} families, cpu limit {args.cpu_limit:g}s, "
         f"wall limit {args.wall_limit:g}s)")
    start_fork_server()
    setups: dict[str, Any] = {}
    broken: set[str] = set()
    start = time.time()
    deadline = None if args.max_hours is None else start + 3600 * args.max_hours
    counts: Counter = Counter()
    try:
        for table, config in order:
            if args.max_evals is not None and sum(counts.values()) >= args.max_evals:
                _log(f"stop: --max-evals {args.max_evals} reached")
                break
            if deadline is not None and time.time() >= deadline:
                _log(f"stop: --max-hours {args.max_hours:g} reached")
                break
            if table in broken:
                continue
            if table not in setups:
                try:
                    setups[table] = setup_table(table, args.seed)
                    repo.ensure_table(setups[table])
                except Exception:  # noqa: BLE001 - one unloadable table must not stop the run
                    _log(f"{table}: cannot be set up, skipped:\n{traceback.format_exc()}")
                    broken.add(table)
                    continue
            setup = setups[table]
            record, oof, test = evaluate_config(setup, config, cpu_limit=args.cpu_limit,
                                                wall_limit=args.wall_limit)
            record["code"] = code
            repo.append(table, config["family"], record, oof, test)
            _store.append_csv(args.scores, _store.csv_row(table, setup.task, len(setup.y_train),
                                                          len(setup.y_test), record))
            counts[record["status"]] += 1
            n = sum(counts.values())
            losses = (f"oof {record['oof_loss']:.4g} test {record['test_loss']:.4g} "
                      f"fit {record['fit_seconds']:.1f}s cpu {record['cpu_seconds']:.1f}s"
                      if record["status"] == "ok" else record.get("error", "")[:120])
            _log(f"#{n} {table} {config['id']} {record['status']} {losses} "
                 f"wall {record['wall_seconds']:.1f}s load {record['load1']}")
    finally:
        hours = (time.time() - start) / 3600
        n = sum(counts.values())
        _log(f"done: {n} evaluations in {hours:.2f} h ({n / max(hours, 1e-9):.0f}/h) {dict(counts)}; "
             f"repository {repo.size_bytes() / 1e6:.1f} MB")
        lock.close()
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    import pandas as pd

    repo = _store.Repository(args.out)
    rows = []
    for (table, family), _ in sorted(repo.done_ids().items()):
        for record in repo.records(table, family):
            rows.append({"table": table, "family": family, "status": record["status"],
                         "rank": record["rank"], "cpu_seconds": record.get("cpu_seconds", np.nan),
                         "wall_seconds": record["wall_seconds"]})
    if not rows:
        print(f"{args.out}: no evaluations stored")
        return 0
    frame = pd.DataFrame(rows)
    pd.set_option("display.width", 200)
    pd.set_option("display.max_rows", 500)
    per_family = frame.pivot_table(index="family", columns="status", values="rank", aggfunc="count",
                                   fill_value=0)
    per_family["total"] = per_family.sum(axis=1)
    per_family["mean_cpu_s"] = frame.groupby("family")["cpu_seconds"].mean().round(2)
    per_family["mean_wall_s"] = frame.groupby("family")["wall_seconds"].mean().round(2)
    # Ranks complete: configurations 0..K-1 stored on every (table, family) seen so far.
    complete = frame.groupby(["table", "family"])["rank"].apply(
        lambda r: next(k for k in range(len(r) + 1) if k not in set(r)))
    per_family["ranks_complete_min"] = complete.groupby("family").min()
    print(f"{args.out}: {len(frame)} evaluations, {frame['table'].nunique()} tables, "
          f"{repo.size_bytes() / 1e6:.1f} MB of npz "
          f"({repo.size_bytes() / 1e6 / len(frame) * 1000:.1f} MB per 1,000 evaluations)\n")
    print(per_family.to_string())
    per_table = frame.pivot_table(index="table", columns="status", values="rank", aggfunc="count",
                                  fill_value=0)
    per_table["total"] = per_table.sum(axis=1)
    per_table["families"] = frame.groupby("table")["family"].nunique()
    print()
    print(per_table.to_string())
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="evaluate (resumes what is stored)")
    status = sub.add_parser("status", help="counts per family and table")
    pack = sub.add_parser("pack", help="write the evaluations no pack holds yet to a new pack (commit it)")
    for p in (run, status, pack):
        p.add_argument("--out", type=Path, default=DEFAULT_OUT,
                       help=f"repository folder for the arrays (default {DEFAULT_OUT})")
    for p in (run, pack):
        p.add_argument("--packs", type=Path, default=_pack.PACKS_DIR,
                       help=f"folder of the committed packs (default {_pack.PACKS_DIR})")
    run.add_argument("--no-packs", action="store_true",
                     help="do not unpack the committed packs into the repository first")
    run.add_argument("--scores", type=Path, default=DEFAULT_SCORES, help="score CSV (rebuilt, appended)")
    run.add_argument("--configs", type=Path, default=CONFIGS_FILE)
    run.add_argument("--tables", default="all", help="comma-separated names or 'all'")
    run.add_argument("--families", default="all", help="comma-separated names or 'all'")
    run.add_argument("--max-rank", type=int, default=None,
                     help="only the first K configurations of each family")
    run.add_argument("--max-evals", type=int, default=None, help="stop after N new evaluations")
    run.add_argument("--max-hours", type=float, default=None, help="stop after H hours")
    run.add_argument("--cpu-limit", type=float, default=60.0,
                     help="CPU seconds per configuration (5 folds + test prediction); timeout beyond")
    run.add_argument("--wall-limit", type=float, default=1200.0,
                     help="wall-clock backstop per configuration, seconds")
    run.add_argument("--seed", type=int, default=0, help="split seed of load_table_split")
    args = parser.parse_args(argv)
    commands = {"run": cmd_run, "status": cmd_status, "pack": cmd_pack}
    return commands[args.command](args)


def cmd_pack(args: argparse.Namespace) -> int:
    repo = _store.Repository(args.out)
    with repo.lock():
        paths, count = _pack.write_pack(repo, args.packs)
    if not paths:
        _log(f"nothing to pack: every evaluation in {args.out} is in {args.packs} already")
    for path in paths:
        _log(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")
    _log(f"{count} evaluations packed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
