"""Repeated k-fold bagging measured offline on the kept runs of ``benchmarks.tables.run``.

Question (issue #16): does selecting on out-of-fold predictions averaged over several
shuffles of the folds (as AutoGluon bags) make the greedy ensemble generalise better
relative to its best single candidate?

Why it might: each row's out-of-fold prediction comes from ONE fold model, while a member
predicts test rows with the average of its K fold models. Averaging already removes part of
the variance that mixing candidates removes on the out-of-fold rows, so selection on single
fold models overstates what diversity buys at test time. With R repeats each row's
out-of-fold prediction is the average of R models, closer to what is used at test time.

Per kept run: the ``--top`` candidates by out-of-fold score plus the fitted ensemble's members
form the pool. Each pool candidate is rebuilt from its family, parameters and seed and
retrained on ``--repeats - 1`` more shuffles of 5 folds (each shuffle's folds shared by the
pool). Within the pool, with today's greedy selector:

- ``base``: selection and best single on the run's one-shuffle out-of-fold predictions,
  test predictions of the 5 fold models (what the run did, restricted to the pool);
- ``rebag``: selection and best single on the out-of-fold predictions averaged over the
  shuffles, test predictions averaged over all fold models.

The extra training is not charged to a budget here: this isolates the effect of better
out-of-fold predictions on selection. From the repository root::

    python -m benchmarks.tables.rebag --runs-dir /work/bench_runs/tables_60s --out benchmarks/results/

Outputs ``tables_60s_rebag.csv`` (one row per run and variant; the retrained candidates'
predictions are cached in ``<run>/rebag_r<R>.npz``) and ``tables_60s_rebag.md``.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from benchmarks.suite._metrics import primary_loss, score_predictions
from benchmarks.suite._systems import kept_runs, load_kept_run
from benchmarks.tables import _report
from benchmarks.tables.reselect import TIE, cached_test_predictions
from benchmarks.tables.run import compress_models, read_csv, write_csv


def _pool(model, top: int) -> list[int]:
    completed = sorted(model.population_.completed(), key=lambda c: -c.score)
    numbers = [c.number for c in completed[:top]]
    return sorted(set(numbers) | {m.number for m in model.ensemble_.members})


def _retrain(model, split, numbers: list[int], repeat: int) -> tuple[dict, dict]:
    """Out-of-fold and test predictions of ``numbers`` on the ``repeat``-th extra shuffle."""
    from ensemble_hpo._fit_plan import encode_target
    from ensemble_hpo._folds import make_folds
    from ensemble_hpo._validation import validate_fit_data, validate_predict_data
    from ensemble_hpo.metrics import get_prediction_scorer
    from ensemble_hpo.population import CandidateEvaluator, PipelineBuilder
    from ensemble_hpo.search._objective import candidate_seed
    from ensemble_hpo.spaces import SearchSpace

    task = model._task
    X, y, info = validate_fit_data(split.X_train, split.y_train, task=task, cv_n_splits=5,
                                   sample_weight=None, groups=None, rare_classes="warn")
    y_enc, classes = encode_target(y, task)
    seed = 1000 * repeat + (model.random_state or 0)
    splits = make_folds(5, y_enc, task=task, random_state=seed)
    n_classes = None if classes is None else len(classes)
    evaluator = CandidateEvaluator(X=X, y=y_enc, splits=splits, task=task,
                                   scorer=get_prediction_scorer(model.scoring, task),
                                   n_classes=n_classes, n_threads=1)
    space = SearchSpace.from_models(model.models, task=task)
    builder = PipelineBuilder(info.column_kinds, task)
    by_number = {c.number: c for c in model.population_.completed()}
    X_test = validate_predict_data(split.X_test, model.feature_info_)
    oof, test = {}, {}
    for number in numbers:
        c = by_number[number]
        est = builder(space.family(c.family), dict(c.params), candidate_seed(model.random_state, number))
        result = evaluator.evaluate(est)
        oof[number] = result.predictions.astype(np.float64)
        test[number] = np.mean([evaluator._predict(m, X_test) for m in result.models], axis=0)
    return oof, test


def cached_rebag(run_dir: Path, model, split, numbers: list[int], repeat: int):
    path = run_dir / f"rebag_r{repeat}.npz"
    cache: dict[str, np.ndarray] = {}
    if path.exists():
        with np.load(path) as stored:
            cache = {k: stored[k] for k in stored.files}
    missing = [n for n in numbers if f"oof_{n}" not in cache]
    if missing:
        oof, test = _retrain(model, split, missing, repeat)
        cache.update({f"oof_{n}": v for n, v in oof.items()})
        cache.update({f"test_{n}": v for n, v in test.items()})
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, **cache)
        tmp.replace(path)
    return ({n: cache[f"oof_{n}"] for n in numbers}, {n: cache[f"test_{n}"] for n in numbers})


def _score(split, pred) -> float:
    return primary_loss(split.task, score_predictions(split.task, split.y_test, pred, split.n_classes))


def _select(oof: np.ndarray, y: np.ndarray, test: np.ndarray, split, scoring) -> dict:
    from ensemble_hpo.metrics import get_prediction_scorer
    from ensemble_hpo.selection import GreedySelector

    with threadpool_limits(limits=1):
        selector = GreedySelector().fit(oof, y)
    w = np.asarray(selector.weights_, dtype=np.float64)
    w = w / w.sum()
    scorer = get_prediction_scorer(scoring, "classification" if split.task == "classification"
                                   else "regression")
    best = int(np.argmax([scorer(y, p) for p in oof]))
    return {"test_loss": _score(split, np.tensordot(w, test, axes=1)),
            "best_single_loss": _score(split, test[best]), "members": int((w > 0).sum())}


def score_run(run_dir: Path, top: int, repeats: int) -> list[dict]:
    model, split = load_kept_run(run_dir)
    numbers = _pool(model, top)
    oof1 = model.population_.predictions(numbers).astype(np.float64)
    tests = cached_test_predictions(run_dir, model, split, numbers)
    test1 = np.stack([tests[n] for n in numbers])
    y = model.selection_target_
    oofs, testss = [oof1], [test1]
    for repeat in range(1, repeats):
        oof_r, test_r = cached_rebag(run_dir, model, split, numbers, repeat)
        oofs.append(np.stack([oof_r[n] for n in numbers]))
        testss.append(np.stack([test_r[n] for n in numbers]))
    variants = [("base", oof1, test1)]
    for r in range(2, repeats + 1):
        variants.append((f"rebag{r}", np.mean(oofs[:r], axis=0), np.mean(testss[:r], axis=0)))
    # Better test predictions alone (selection on one shuffle).
    variants.append((f"testbag{repeats}", oof1, np.mean(testss, axis=0)))
    # What the extra repeats would cost inside the search: the pool's fit seconds per repeat
    # against the whole search's (both summed over candidates, so n_jobs cancels).
    board = model.leaderboard_
    share = float(board.loc[board["number"].isin(numbers), "fit_time"].sum()
                  / board["fit_time"].fillna(0).sum())
    return [{"run": run_dir.name, "variant": name, "pool": len(numbers),
             "repeat_cost_share": share, **_select(oof, y, test, split, model.scoring)}
            for name, oof, test in variants]


def summary(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.assign(table=frame["run"].str.rsplit("_s", n=1).str[0])
    base = frame[frame["variant"] == "base"].set_index("run")["test_loss"]
    rows = []
    for name, g in frame.groupby("variant", sort=False):
        per = g.groupby("table")[["test_loss", "best_single_loss"]].mean()
        rel = per["test_loss"] / per["best_single_loss"] - 1.0
        vs = g.set_index("run")["test_loss"] / base.reindex(g["run"]).to_numpy() - 1.0
        vs = vs.where(vs.abs() > TIE, 0.0).groupby(g.set_index("run")["table"]).mean()
        better, worse, p = _report.sign_test(vs.to_numpy())
        rows.append({"variant": name, "runs": len(g), "tables": len(per),
                     "<= own best single": f"{int((rel <= 0).sum())}/{len(per)}",
                     "median rel change": f"{rel.median():+.2%}", "mean rel change": f"{rel.mean():+.2%}",
                     "ensemble vs base": f"{vs.mean():+.2%}", "better/worse vs base": f"{better}/{worse}",
                     "sign p": f"{p:.3g}", "members (mean)": f"{g['members'].mean():.1f}"})
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs-dir", type=Path, default=Path("/work/bench_runs/tables_60s"))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--runs", nargs="*", default=None, help="run folder names (default: all)")
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    out_csv, out_md = args.out / "tables_60s_rebag.csv", args.out / "tables_60s_rebag.md"
    command = "python -m benchmarks.tables.rebag " + shlex.join(sys.argv[1:] if argv is None else argv)
    frame = read_csv(out_csv)
    if not args.report_only:
        for run_dir in kept_runs(args.runs_dir):
            if args.runs and run_dir.name not in args.runs:
                continue
            if not frame.empty and run_dir.name in set(frame["run"]):
                continue
            start = time.perf_counter()
            compressed = sorted(str(f) for f in (run_dir / "artifacts").glob("*.models.pkl.zst"))
            if compressed:
                subprocess.run(["zstd", "-d", "-q", "--rm", *compressed], check=True)
            try:
                new = pd.DataFrame(score_run(run_dir, args.top, args.repeats))
            finally:
                if compressed:
                    compress_models(run_dir)
            frame = pd.concat([frame, new], ignore_index=True) if not frame.empty else new
            write_csv(frame, out_csv)
            print(f"{run_dir.name}: {time.perf_counter() - start:.0f} s", flush=True)
    table = summary(frame)
    lines = ["# Repeated k-fold bagging, offline on the kept 60-table runs", "",
             f"Command: `{command}`. Pool per run: the top {args.top} candidates by out-of-fold "
             "score plus the fitted ensemble's members. See the module docstring of "
             "`benchmarks/tables/rebag.py` for the variants. Relative change: ensemble vs its own "
             "best single candidate (per table, losses averaged over seeds).", "",
             _report._table(table), ""]
    out_md.write_text("\n".join(lines))
    print(out_md.read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
