"""Portfolio construction from the evaluation repository (issue 17, item 2).

A *portfolio* is an ordered list of configurations that a warm-started search runs first.
This module mines two kinds from the repository of out-of-fold (OOF) and test predictions
(``benchmarks/portfolio/README.md``), per task (classification, regression):

* **ensemble portfolio** (``objective="ensemble"``): greedy forward selection of
  configurations; the value of a portfolio on a table is the test loss of the greedy
  ensemble (``ensemble_hpo.selection.GreedySelector()`` with its defaults, Caruana selection
  with replacement, exactly as ``fit`` selects) chosen on the OOF predictions of the
  portfolio's configurations, averaged over the training tables on a normalised loss.
* **single-best portfolio** (``objective="single"``): the same greedy loop, but a portfolio
  is worth the test loss of its single configuration with the best OOF loss (what a search
  that keeps one model would return).

Both are **time-aware**: each step adds the configuration with the largest marginal gain in
mean normalised loss per second of fit time (mean ``cpu_seconds`` over the training tables;
CPU, not wall, seconds, because the repository was built beside another benchmark and its wall
times are inflated by contention), so every prefix is a good portfolio for a shorter budget.
Once no configuration lowers the mean loss any more, the portfolio stops (``stop="no_gain"``,
the default): a configuration that does not help on average is better left to the sampler.

Decisions (and why):

* **Tasks: classification and regression**, not binary/multiclass/regression, because
  ``SearchSpace`` knows only those two and a portfolio must be picked before the data's
  number of classes is looked at; logistic is a candidate on classification only, ridge on
  regression only (that is what the repository evaluated).
* **Normalised loss**, per table: ``(loss - best) / (median - best)`` where ``best`` and
  ``median`` are the lowest and the median test loss of the single candidate configurations
  on that table. 0 is the best single configuration, 1 a typical one, negative values are
  ensembles better than every single model. The median (not the worst, not the default)
  is robust to the diverging configurations of a random sample (a knn with one neighbour,
  an SVM that fails) and scales tables whose losses differ by orders of magnitude to a
  comparable range; a rank-based error (TabRepo) would throw away how much an ensemble
  beats the best single configuration, which is exactly what a portfolio for ensembles is
  built for. An empty portfolio is worth the loss of the constant prior prediction (class
  frequencies of the training rows, or their mean).
* **Quality measured on the test split of the training tables** (``quality="test"``): the
  ensemble is selected on OOF predictions, as in ``fit``, and judged on rows it was not
  selected on, so a configuration that looks good out of fold but generalises badly (the
  breast_cancer failure of the README) is not rewarded. No held-out table is ever used:
  :mod:`benchmarks.portfolio.loto` mines without it.
* **Candidates**: configurations of the families ``models="auto"`` uses
  (``DEFAULT_FAMILIES``) evaluated, with any status, on every table of the task, so that a
  repository still being filled rank by rank gives a balanced candidate set. A configuration
  that failed or timed out on a table costs its CPU seconds there and adds nothing.

From the repository root (writes the package data file; ``--evaluate`` first fills the
repository with what it lacks, about 1.5 hours of the 2-core machine from nothing for
``--max-rank 6``, resumable)::

    nice -n 10 python -m benchmarks.portfolio.build --evaluate --max-rank 6 \
        --out ensemble_hpo/spaces/portfolio.json
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing
import sys
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.portfolio._store import Repository
from ensemble_hpo.metrics import get_prediction_scorer
from ensemble_hpo.selection import GreedySelector

DEFAULT_REPO = Path("/work/portfolio_repo")
CONFIGS_FILE = Path(__file__).with_name("configs.json")
TASKS = ("classification", "regression")
FORMAT_VERSION = 1


def default_families() -> tuple[str, ...]:
    from ensemble_hpo.spaces import DEFAULT_FAMILIES

    return DEFAULT_FAMILIES


def load_configs() -> dict[str, dict[str, Any]]:
    """``{config id: {"family", "params", "rank", ...}}`` from ``configs.json``."""
    with open(CONFIGS_FILE) as fh:
        return {c["id"]: c for c in json.load(fh)["configs"]}


@dataclass
class TaskData:
    """The repository of one task, aligned over a common candidate set.

    ``oof[t]``/``test[t]`` hold one row per candidate (zeros where the candidate has no
    predictions on table ``t``; ``ok[t]`` says which rows are real).
    """

    task: str
    tables: list[str]
    config_ids: list[str]
    families: list[str]
    ok: np.ndarray            # (n_tables, n_configs) bool
    cpu: np.ndarray           # (n_tables, n_configs) CPU seconds (failed and timed out ones too)
    oof: list[np.ndarray]
    test: list[np.ndarray]
    y_train: list[np.ndarray]
    y_test: list[np.ndarray]
    single_oof: np.ndarray    # (n_tables, n_configs) OOF loss of each configuration (inf if not ok)
    single_test: np.ndarray   # (n_tables, n_configs) test loss
    prior_test: np.ndarray    # (n_tables,) test loss of the constant prior prediction
    n_evaluations: int = 0    # evaluations stored for these tables and families (any status)

    def index(self, table: str) -> int:
        return self.tables.index(table)


def _prior(y_train: np.ndarray, n_test: int, n_classes: int | None) -> np.ndarray:
    if n_classes:
        freq = np.bincount(y_train.astype(int), minlength=n_classes) / len(y_train)
        return np.tile(freq, (n_test, 1))
    return np.full(n_test, float(np.mean(y_train)))


def load_task(repo: Path, task: str, families: Sequence[str] | None = None,
              tables: Sequence[str] | None = None, max_rank: int | None = None) -> TaskData:
    """Load every table of ``task`` and align it over the configurations evaluated on all of them.

    ``max_rank``: only configurations of rank below it (the first ``max_rank`` of each family
    in ``configs.json``), so that a result can be reproduced while the repository grows.
    """
    store = Repository(Path(repo))
    families = tuple(families or default_families())
    names = store.tables()
    raw: dict[str, dict[str, Any]] = {}
    for name in names if tables is None else tables:
        with np.load(store.table_path(name)) as meta:
            if str(meta["task"]) != task:
                continue
        records: dict[str, dict[str, Any]] = {}
        for family in families:
            for record in store.records(name, family):
                records[record["config_id"]] = record
        raw[name] = {"records": records, "data": store.load_table(name, list(families))}
    if not raw:
        raise ValueError(f"no {task} table in {repo}")
    common = set.intersection(*(set(r["records"]) for r in raw.values()))
    if max_rank is not None:
        ranks = {cid: c["rank"] for cid, c in load_configs().items()}
        common = {cid for cid in common if ranks[cid] < max_rank}
    config_ids = sorted(common, key=_config_sort_key)
    scorer = get_prediction_scorer(None, task)
    out = TaskData(task=task, tables=list(raw), config_ids=config_ids,
                   families=[c.rsplit("-", 1)[0] for c in config_ids],
                   ok=np.zeros((len(raw), len(config_ids)), bool),
                   cpu=np.zeros((len(raw), len(config_ids))), oof=[], test=[], y_train=[], y_test=[],
                   single_oof=np.full((len(raw), len(config_ids)), np.inf),
                   single_test=np.full((len(raw), len(config_ids)), np.inf),
                   prior_test=np.zeros(len(raw)),
                   n_evaluations=sum(len(r["records"]) for r in raw.values()))
    for t, r in enumerate(raw.values()):
        d = r["data"]
        row_of = {cid: i for i, cid in enumerate(d["ids"])}
        oof = np.zeros((len(config_ids),) + d["oof"].shape[1:], np.float32)
        test = np.zeros((len(config_ids),) + d["test"].shape[1:], np.float32)
        for j, cid in enumerate(config_ids):
            out.cpu[t, j] = float(r["records"][cid].get("cpu_seconds") or 0.0)
            if cid in row_of:
                out.ok[t, j] = True
                oof[j], test[j] = d["oof"][row_of[cid]], d["test"][row_of[cid]]
                out.single_oof[t, j] = -scorer(d["y_train"], oof[j].astype(float))
                out.single_test[t, j] = -scorer(d["y_test"], test[j].astype(float))
        out.oof.append(oof)
        out.test.append(test)
        out.y_train.append(d["y_train"])
        out.y_test.append(d["y_test"])
        out.prior_test[t] = -scorer(d["y_test"], _prior(d["y_train"], len(d["y_test"]), d["n_classes"]))
    return out


def _config_sort_key(config_id: str) -> tuple[str, int, str]:
    family, _, tail = config_id.rpartition("-")
    return (family, 0 if tail.startswith("d") else 1, tail)


@dataclass
class Evaluator:
    """Losses of populations on the tables of one :class:`TaskData`, memoised per (table, members).

    ``ensemble_loss`` is the test loss of ``GreedySelector()`` (the library's default
    selection) fitted on the OOF predictions of the population's successful members; it
    depends on the member *set* only (members are passed in index order), so populations
    reached in different orders share one cache entry.
    """

    data: TaskData
    selector_params: dict[str, Any] = field(default_factory=dict)
    n_jobs: int = 1
    _cache: dict[tuple[int, tuple[int, ...]], float] = field(default_factory=dict)
    _pool: Any = None

    def __post_init__(self) -> None:
        self._scorer = get_prediction_scorer(None, self.data.task)
        ok = np.where(self.data.ok, self.data.single_test, np.nan)
        self.best = np.nanmin(ok, axis=1)
        self.median = np.nanmedian(ok, axis=1)
        self.scale = np.maximum(self.median - self.best, 1e-12)

    def normalise(self, t: int, loss: float) -> float:
        return float((loss - self.best[t]) / self.scale[t])

    def members(self, t: int, population: Iterable[int]) -> tuple[int, ...]:
        return tuple(sorted({j for j in population if self.data.ok[t, j]}))

    def ensemble_loss(self, t: int, population: Iterable[int]) -> float:
        members = self.members(t, population)
        if not members:
            return float(self.data.prior_test[t])
        key = (t, members)
        if key not in self._cache:
            self._cache[key] = self._compute(key)
        return self._cache[key]

    def _compute(self, key: tuple[int, tuple[int, ...]]) -> float:
        t, members = key
        if len(members) == 1:
            return float(self.data.single_test[t, members[0]])
        idx = np.array(members)
        weights = GreedySelector(**self.selector_params).fit(
            self.data.oof[t][idx], self.data.y_train[t]).weights_
        blend = np.tensordot(weights, self.data.test[t][idx].astype(np.float64), axes=1)
        return float(-self._scorer(self.data.y_test[t], blend))

    def prefetch(self, populations: Iterable[tuple[int, Iterable[int]]]) -> None:
        """Memoise the ensemble losses of ``(table, population)`` pairs over ``n_jobs`` processes.

        Mining is dominated by these ``GreedySelector`` fits (one per table and candidate at
        every step), which are independent: a forked pool shares the data copy-on-write, so
        only the keys and losses travel. Created on first use, kept for the evaluator's life.
        """
        keys = {(t, self.members(t, pop)) for t, pop in populations}
        todo = sorted(k for k in keys if k not in self._cache and len(k[1]) > 1)
        if self.n_jobs <= 1 or len(todo) < 2 * self.n_jobs:
            return
        if self._pool is None:
            global _FORKED
            _FORKED = self
            self._pool = multiprocessing.get_context("fork").Pool(self.n_jobs)
            weakref.finalize(self, self._pool.terminate)
        chunk = max(1, len(todo) // (4 * self.n_jobs))
        self._cache.update(zip(todo, self._pool.map(_forked_loss, todo, chunksize=chunk), strict=True))

    def single_loss(self, t: int, population: Iterable[int]) -> float:
        """Test loss of the member with the best OOF loss (a search that keeps one model)."""
        members = self.members(t, population)
        if not members:
            return float(self.data.prior_test[t])
        best = members[int(np.argmin(self.data.single_oof[t, list(members)]))]
        return float(self.data.single_test[t, best])

    def loss(self, t: int, population: Iterable[int], objective: str) -> float:
        if objective == "ensemble":
            return self.ensemble_loss(t, population)
        if objective == "single":
            return self.single_loss(t, population)
        raise ValueError(f"objective must be 'ensemble' or 'single', got {objective!r}")


_FORKED: Evaluator | None = None  # the evaluator a forked prefetch worker computes with


def _forked_loss(key: tuple[int, tuple[int, ...]]) -> float:
    assert _FORKED is not None
    return _FORKED._compute(key)


@dataclass(frozen=True)
class Step:
    config_id: str
    mean_loss: float       # mean normalised loss of the portfolio up to and with this step
    gain: float            # decrease of the mean normalised loss
    cpu_seconds: float     # mean CPU seconds of the configuration over the training tables


def build_portfolio(ev: Evaluator, tables: Sequence[int], *, objective: str = "ensemble",
                    time_aware: bool = True, stop: str = "no_gain",
                    max_size: int | None = None) -> list[Step]:
    """Greedy forward selection of configurations on the tables ``tables`` (indices into ``ev.data``).

    Each step adds the candidate with the largest ``gain / cpu_seconds`` (``time_aware``) or
    the largest gain; ties go to the cheaper configuration. With ``stop="no_gain"`` the loop
    ends when no candidate lowers the mean normalised loss; with ``stop="all"`` it keeps
    adding the least harmful candidate until all are in.
    """
    data = ev.data
    tables = list(tables)
    cost = np.maximum(data.cpu[tables].mean(axis=0), 1e-3)
    chosen: list[int] = []
    current = float(np.mean([ev.normalise(t, ev.loss(t, (), objective)) for t in tables]))
    steps: list[Step] = []
    remaining = list(range(len(data.config_ids)))
    while remaining and (max_size is None or len(chosen) < max_size):
        if objective == "ensemble":
            ev.prefetch((t, chosen + [c]) for c in remaining for t in tables)
        values = np.array([np.mean([ev.normalise(t, ev.loss(t, chosen + [c], objective)) for t in tables])
                           for c in remaining])
        gains = current - values
        if gains.max() <= 0 and stop == "no_gain":
            break
        costs = cost[remaining]
        crit = gains / costs if (time_aware and gains.max() > 0) else gains
        order = np.lexsort((costs, -crit))  # best criterion first, then cheapest
        pick = remaining[int(order[0])]
        k = remaining.index(pick)
        steps.append(Step(data.config_ids[pick], float(values[k]), float(gains[k]), float(cost[pick])))
        chosen.append(pick)
        current = float(values[k])
        remaining.remove(pick)
    return steps


def portfolio_entries(steps: Sequence[Step], configs: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"id": s.config_id, "family": configs[s.config_id]["family"],
             "params": configs[s.config_id]["params"], "cpu_seconds": round(s.cpu_seconds, 3),
             "mean_normalised_loss": round(s.mean_loss, 4)} for s in steps]


def build_file(repo: Path, *, families: Sequence[str] | None = None,
               max_rank: int | None = None, n_jobs: int = 1) -> dict[str, Any]:
    """The content of ``ensemble_hpo/spaces/portfolio.json``: mined on every table of the repository."""
    configs = load_configs()
    families = tuple(families or default_families())
    out: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "created_utc": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "source": "benchmarks/portfolio/build.py (issue 17); evaluations in benchmarks/portfolio/README.md",
        "method": ("time-aware greedy forward selection (gain in mean normalised test loss of the "
                   "GreedySelector ensemble per CPU second), stopped when no configuration helps"),
        "families": list(families),
        "max_rank": max_rank,
        "tasks": {},
    }
    for task in TASKS:
        data = load_task(repo, task, families, max_rank=max_rank)
        ev = Evaluator(data, n_jobs=n_jobs)
        steps = build_portfolio(ev, range(len(data.tables)))
        out["tasks"][task] = {
            "tables": data.tables,
            "n_candidates": len(data.config_ids),
            "n_evaluations": data.n_evaluations,
            "configs": portfolio_entries(steps, configs),
        }
    return out


def evaluate_missing(repo: Path, families: Sequence[str], max_rank: int | None) -> None:
    """Run the repository runner for ``families`` up to ``max_rank`` (stored ones are skipped)."""
    from benchmarks.portfolio import run

    argv = ["run", "--out", str(repo), "--families", ",".join(families)]
    if max_rank is not None:
        argv += ["--max-rank", str(max_rank)]
    status = run.main(argv)
    if status != 0:
        raise SystemExit(f"the repository runner stopped with status {status}; rerun to resume")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repo", type=Path, default=DEFAULT_REPO)
    parser.add_argument("--out", type=Path, default=Path("ensemble_hpo/spaces/portfolio.json"))
    parser.add_argument("--families", default=None,
                        help="comma-separated candidate families (default: DEFAULT_FAMILIES)")
    parser.add_argument("--max-rank", type=int, default=None,
                        help="only the first K configurations of each family (default: all "
                             "evaluated on every table of the task)")
    parser.add_argument("--evaluate", action="store_true",
                        help="first evaluate what the repository lacks (benchmarks.portfolio.run: "
                             "these families, up to --max-rank, on the 60 tables; resumes), so "
                             "that one command rebuilds the portfolio on a fresh machine")
    parser.add_argument("--n-jobs", type=int, default=2,
                        help="processes for the ensemble fits of the mining (same result as 1)")
    args = parser.parse_args(argv)
    families = args.families.split(",") if args.families else None
    if args.evaluate:
        evaluate_missing(args.repo, families or list(default_families()), args.max_rank)
    content = build_file(args.repo, families=families, max_rank=args.max_rank, n_jobs=args.n_jobs)
    args.out.write_text(json.dumps(content, indent=1) + "\n")
    for task, entry in content["tasks"].items():
        print(f"{task}: {len(entry['configs'])} configurations of {entry['n_candidates']} candidates, "
              f"{len(entry['tables'])} tables, {entry['n_evaluations']} evaluations")
        for c in entry["configs"]:
            print(f"  {c['id']:<32} {c['cpu_seconds']:7.2f} s  "
                  f"mean normalised loss {c['mean_normalised_loss']:.4f}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
