"""Selection variants scored offline on the kept runs of ``benchmarks.tables.run``.

Every kept run folder holds a population: each finished candidate's out-of-fold predictions
and fold models. Per run and variant, the selector is fitted on the out-of-fold predictions
(as ``fit`` does) and the test loss of the weighted average of its members' test predictions
is recorded (fold models averaged: what the default fuser, ``"average"``, predicts). A
candidate's test predictions are computed once and cached in ``<run>/test_predictions.npz``,
so new variants cost only their selection. From the repository root::

    python -m benchmarks.tables.reselect --runs-dir /work/bench_runs/tables_60s \
        --out benchmarks/results/

Outputs: ``tables_<budget>s_reselect.csv`` (one row per run and variant) and
``tables_<budget>s_reselect.md`` (per variant: tables where it is at least as good as the
best single candidate, mean and median relative change, and a paired sign test against the
default ``greedy``). The variant ``greedy`` must reproduce the run's own ``ensemble_loss``;
the report shows the largest difference.
"""

from __future__ import annotations

import argparse
import math
import shlex
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from benchmarks.suite._metrics import primary_loss, score_predictions
from benchmarks.suite._systems import kept_runs, load_kept_run
from benchmarks.tables import _report
from benchmarks.tables.run import cached_test_predictions, compress_models, read_csv, write_csv

#: Relative differences below this are ties (float summation order, not a different model).
TIE = 1e-9


def _selector(name: str, **params) -> Callable[[], object]:
    """Factory of ``ensemble_hpo.selection.<name>(**params)`` (imported when called)."""
    def make():
        from ensemble_hpo import selection

        return getattr(selection, name)(**params)
    return make


#: name -> factory of an unfitted selector. ``greedy`` is today's default.
VARIANTS: dict[str, Callable[[], object]] = {
    "greedy": _selector("GreedySelector"),
    "best_single": _selector("BestSingleSelector"),
    "greedy_cv": _selector("CrossValidatedSelector", random_state=0),
    "greedy_25": _selector("GreedySelector", max_iter=25),
    "greedy_bag20": _selector("GreedySelector", n_bags=20, random_state=0),
}
VARIANTS.update({f"guarded_{gain:g}": _selector("GuardedGreedySelector", min_gain=gain,
                                                random_state=0)
                 for gain in (0.002, 0.005, 0.01, np.inf)})
# Greedy selection over the ``size`` candidates with the best out-of-fold scores: a cap on
# how many candidates every greedy step compares (the winner's curse grows with that number).
VARIANTS.update({f"greedy_top{size}": _selector("GreedySelector", prune=size)
                 for size in (25, 50, 100, 200)})
VARIANTS["greedy_100"] = _selector("GreedySelector", max_iter=100)


class ShrunkToBest:
    """Greedy weights shrunk toward the best single candidate: ``(1 - share) * w + share * e_best``.

    A soft fallback: by convexity of log loss and squared error the blend is never worse on
    test than the same mix of the two losses. Benchmark-only; not a library selector.
    """

    def __init__(self, share: float) -> None:
        self.share = share

    def fit(self, predictions: np.ndarray, y: np.ndarray) -> ShrunkToBest:
        from ensemble_hpo.selection import GreedySelector

        greedy = GreedySelector().fit(predictions, y)
        self.single_scores_ = greedy.single_scores_
        self.weights_ = (1.0 - self.share) * np.asarray(greedy.weights_, dtype=np.float64)
        self.weights_[int(np.argmax(greedy.single_scores_))] += self.share
        return self


class ShrunkToBestCV:
    """:class:`ShrunkToBest` with the share chosen on held-out rows.

    For each of 5 stratified folds of the selection rows, greedy selection and the best
    single candidate are found on the other folds and every share in ``shares`` blends them
    on the held fold; the share whose concatenated held-out predictions score best (ties:
    the smallest) is applied to the selection on all rows.
    """

    def __init__(self, shares: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)) -> None:
        self.shares = shares

    def fit(self, predictions: np.ndarray, y: np.ndarray) -> ShrunkToBestCV:
        from ensemble_hpo._folds import make_folds
        from ensemble_hpo.metrics import get_prediction_scorer

        task = "classification" if predictions.ndim == 3 else "regression"
        scorer = get_prediction_scorer(None, task)
        held_out = np.zeros((len(self.shares),) + predictions.shape[1:])
        for train, valid in make_folds(5, y, task=task, random_state=0):
            blend = ShrunkToBest(0.0).fit(predictions[:, train], y[train])
            greedy = blend.weights_
            best = np.zeros_like(greedy)
            best[int(np.argmax(blend.single_scores_))] = 1.0
            for i, share in enumerate(self.shares):
                w = (1.0 - share) * greedy + share * best
                held_out[i, valid] = np.tensordot(w, predictions[:, valid], axes=1)
        scores = [scorer(y, pred) for pred in held_out]
        self.share_ = self.shares[int(np.argmax(scores))]
        self.weights_ = ShrunkToBest(self.share_).fit(predictions, y).weights_
        return self


VARIANTS.update({f"shrink_{share:g}": (lambda share=share: ShrunkToBest(share))
                 for share in (0.25, 0.5, 0.75)})
VARIANTS["shrink_cv"] = ShrunkToBestCV
VARIANTS.update({f"{name}@{fraction:g}": VARIANTS[name] for name in ("greedy", "best_single", "guarded_0.005")
                 for fraction in (0.25, 0.5)})


@contextmanager
def fold_models_readable(run_dir: Path) -> Iterator[None]:
    """Decompress the run's fold models for the block (the runner zstd-compresses them when
    the disk runs low) and compress them again afterwards."""
    compressed = sorted(str(f) for f in (run_dir / "artifacts").glob("*.models.pkl.zst"))
    if compressed:
        subprocess.run(["zstd", "-d", "-q", "--rm", *compressed], check=True)
    try:
        yield
    finally:
        if compressed:
            compress_models(run_dir)


def append_rows(frame: pd.DataFrame, rows: list[dict], out_csv: Path) -> pd.DataFrame:
    """``frame`` with ``rows`` appended, written to ``out_csv`` (so a killed run keeps them)."""
    new = pd.DataFrame(rows)
    frame = pd.concat([frame, new], ignore_index=True) if not frame.empty else new
    write_csv(frame, out_csv)
    return frame


def score_run(run_dir: Path, variants: dict[str, Callable[[], object]],
              fusions: bool) -> list[dict]:
    """One row per variant: its members and test loss on this run's split."""
    model, split = load_kept_run(run_dir)
    population = model.population_
    completed = population.completed()
    numbers = sorted(c.number for c in completed)
    oof = population.predictions(numbers)
    y = model.selection_target_
    rows = []
    for name, make in variants.items():
        # "<variant>@<fraction>": the population as it was after that fraction of its
        # candidates (trial numbers are in start order), as with a shorter budget.
        used = len(numbers) if "@" not in name else math.ceil(float(name.split("@")[1]) * len(numbers))
        selector = make()
        start = time.perf_counter()
        with threadpool_limits(limits=1):
            selector.fit(oof[:used], y)
        seconds = time.perf_counter() - start
        weights = np.asarray(selector.weights_, dtype=np.float64)
        chosen = np.flatnonzero(weights > 0)
        tests = cached_test_predictions(run_dir, model, split, [numbers[i] for i in chosen])
        pred = sum(weights[i] / weights[chosen].sum() * tests[numbers[i]] for i in chosen)
        loss = primary_loss(split.task, score_predictions(split.task, split.y_test, pred,
                                                          split.n_classes))
        rows.append({"run": run_dir.name, "variant": name, "test_loss": loss,
                     "members": len(chosen), "candidates": used,
                     "selection_seconds": round(seconds, 3)})
    if fusions:
        rows += score_fusions(run_dir, model, split)
    return rows


def score_fusions(run_dir: Path, model, split) -> list[dict]:
    """Every default fuser on the fitted ensemble's members, and ``fuse_auto``: the fuser
    with the best nested (held-out) score in the run's ``fusion_comparison_``."""
    from ensemble_hpo.fusion import default_fusers

    members = model.ensemble_.members
    numbers = [m.number for m in members]
    weights = [m.weight for m in members]
    oof = model.population_.predictions(numbers)
    tests = cached_test_predictions(run_dir, model, split, numbers)
    test = np.stack([tests[n] for n in numbers])
    task = model.ensemble_.task
    losses = {}
    for name, fuser in default_fusers(task, random_state=0).items():
        with threadpool_limits(limits=1):
            fuser.fit(oof, model.selection_target_, weights=weights)
            pred = fuser.combine(test)
        losses[name] = primary_loss(split.task, score_predictions(split.task, split.y_test, pred,
                                                                  split.n_classes))
    board = model.fusion_comparison_.dropna(subset=["cv_score"])
    chosen = str(board.loc[board["cv_score"].idxmax(), "fusion"]).replace(" (defaults)", "")
    rows = [{"run": run_dir.name, "variant": f"fuse_{name}", "test_loss": loss,
             "members": len(numbers)} for name, loss in losses.items()]
    rows.append({"run": run_dir.name, "variant": "fuse_auto", "test_loss": losses[chosen],
                 "members": len(numbers), "chosen": chosen})
    return rows


def summary(frame: pd.DataFrame, base: pd.DataFrame) -> pd.DataFrame:
    """Per variant: tables at least as good as the best single, changes, sign test vs greedy."""
    merged = frame.merge(base[["run", "table", "task", "seed", "best_single_loss"]], on="run")
    default = merged[merged["variant"] == "greedy"].set_index("run")["test_loss"]
    rows = []
    for name, g in merged.groupby("variant", sort=False):
        per = g.groupby("table").agg(loss=("test_loss", "mean"), single=("best_single_loss", "mean"),
                                     task=("task", "first"))
        rel = per["loss"] / per["single"] - 1.0
        medians = g.groupby("table")[["test_loss", "best_single_loss"]].median()
        med = medians["test_loss"] <= medians["best_single_loss"]  # as _report.per_table
        vs = g.set_index("run")["test_loss"] / default.reindex(g["run"]).to_numpy() - 1.0
        vs = vs.where(vs.abs() > TIE, 0.0)
        vs_table = vs.groupby(g.set_index("run")["table"]).mean()
        better, worse, p = _report.sign_test(vs_table.to_numpy())
        row = {"variant": name, "runs": len(g), "tables": len(per),
               "<= best single (mean over seeds)": f"{int((rel <= 0).sum())}/{len(per)}",
               "(median over seeds)": f"{int(med.sum())}/{len(per)}"}
        for task in _report.TASKS:
            sub = rel[per["task"] == task]
            row[task] = f"{int((sub <= 0).sum())}/{len(sub)}"
        row.update({"median rel change": float(rel.median()), "mean rel change": float(rel.mean()),
                    "vs greedy: mean": float(vs_table.mean()),
                    "vs greedy better/worse": f"{better}/{worse}", "sign test p": p,
                    "members (mean)": float(g["members"].mean()),
                    "selection s (mean)": float(g["selection_seconds"].mean())})
        rows.append(row)
    return pd.DataFrame(rows)


def write_report(frame: pd.DataFrame, base: pd.DataFrame, path: Path, command: str) -> None:
    table = summary(frame, base)
    check = frame[frame["variant"] == "greedy"].merge(base[["run", "ensemble_loss"]], on="run")
    gap = float((check["test_loss"] / check["ensemble_loss"] - 1.0).abs().max())
    fmt = {c: "{:+.2%}" for c in ("median rel change", "mean rel change", "vs greedy: mean")}
    fmt.update({"sign test p": "{:.3g}", "members (mean)": "{:.1f}", "selection s (mean)": "{:.2f}"})
    _report.FORMATS.update(fmt)
    lines = [
        "# Selection variants on the kept runs of the 60-table benchmark",
        "",
        f"Command: `{command}`. Runs: {frame['run'].nunique()}; populations and splits as in "
        "`tables_60s.csv`. Test loss of the weighted average of each variant's members. "
        "Relative change against the run's best single candidate (per table, losses averaged "
        "over seeds); 'vs greedy' is the paired relative change against today's default, "
        "with a two-sided sign test over tables (ties dropped).",
        "",
        f"Reproduction check: variant `greedy` against the fitted ensemble's test loss, largest "
        f"relative difference {gap:.2e}.",
        "",
        _report._table(table),
        "",
    ]
    path.write_text("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs-dir", type=Path, default=Path("/work/bench_runs/tables_60s"))
    parser.add_argument("--budget", type=float, default=60.0)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--variants", nargs="*", default=None, help="default: all")
    parser.add_argument("--fusions", action=argparse.BooleanOptionalAction, default=True,
                        help="also score every default fuser on the fitted ensemble's members")
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    stem = f"tables_{args.budget:g}s"
    base = read_csv(args.out / f"{stem}.csv")
    base = base[base["status"] == "ok"].assign(run=lambda f: f["run_dir"].map(lambda p: Path(p).name))
    out_csv, out_md = args.out / f"{stem}_reselect.csv", args.out / f"{stem}_reselect.md"
    command = "python -m benchmarks.tables.reselect " + shlex.join(sys.argv[1:] if argv is None else argv)
    variants = {k: v for k, v in VARIANTS.items() if args.variants is None or k in args.variants}
    frame = read_csv(out_csv)
    if not args.report_only:
        for run_dir in kept_runs(args.runs_dir):
            if run_dir.name not in set(base["run"]):
                continue
            done = set() if frame.empty else set(frame.loc[frame["run"] == run_dir.name, "variant"])
            todo = {k: v for k, v in variants.items() if k not in done}
            fusions = args.fusions and "fuse_auto" not in done
            if not todo and not fusions:
                continue
            print(f"{run_dir.name}: {', '.join(todo)}{' + fusers' if fusions else ''}", flush=True)
            with fold_models_readable(run_dir):
                frame = append_rows(frame, score_run(run_dir, todo, fusions), out_csv)
    write_report(frame, base, out_md, command)
    print(out_md.read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
