"""Out-of-bag (forests) and leave-one-out (kNN) predictions against K-fold out-of-fold ones.

Issue #16 item 2 asks whether a forest's out-of-bag predictions and a kNN's leave-one-out
predictions tell the truth about test better or more cheaply than the K-fold out-of-fold
predictions every candidate gets today. For each of the 60 portfolio tables (the suite's
split, subsampled to 5000 rows), each of ``random_forest``, ``extra_trees`` and ``knn``, and
configurations drawn from the family's search space (plus its portfolio default), two arms:

* ``kfold``: what ``fit`` does today: one model per fold of the default 5-fold split
  (``make_folds``, seeded like ``fit``), out-of-fold predictions, test = mean of the fold
  models' predictions.
* ``self``: one model on all training rows; out-of-fold = its out-of-bag predictions
  (forests; extra trees need ``bootstrap=True`` for that, so this arm's extra trees are
  bootstrapped) or leave-one-out predictions (kNN: ``kneighbors()`` without ``X`` leaves
  each row out); test = the one model's predictions.

Both arms use the library's pipelines (preprocessing + model) and score with the library's
scorer in the suite's metric (log loss, RMSE). Per (table, seed, family, config) the CSV
keeps OOF loss, test loss and fit seconds of both arms. The report compares:

* honesty: test / OOF loss (1 = the OOF score is the test score; < 1: pessimistic);
* ranking: within a (table, seed, family), the test regret of the configuration with the
  best OOF score (what selection would pick) against the best test loss among them;
* cost: self / kfold fit seconds;
* quality: the self arm's test loss against the kfold arm's (wins, sign test).

Usage::

    python -m benchmarks.bench_self_oof --tables all --seeds 0 1 --n-jobs 2 \
        --out benchmarks/results/
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
from joblib import Parallel, delayed
from sklearn.base import clone

from benchmarks._markdown import markdown
from benchmarks.tables._data import PORTFOLIO_TABLES, load_table_split
from benchmarks.tables._report import sign_test
from ensemble_hpo._folds import make_folds
from ensemble_hpo._outputs import model_output
from ensemble_hpo._validation import validate_fit_data
from ensemble_hpo.metrics import get_prediction_scorer
from ensemble_hpo.population import PipelineBuilder
from ensemble_hpo.population._evaluate import CandidateEvaluator
from ensemble_hpo.spaces import get_family

optuna.logging.set_verbosity(optuna.logging.WARNING)

FAMILIES = ("random_forest", "extra_trees", "knn")
N_SAMPLED = 4
COLUMNS = ("table", "seed", "task", "n_train", "family", "config", "params", "kfold_oof",
           "kfold_test", "kfold_seconds", "self_oof", "self_covered", "self_test", "self_seconds",
           "error")


def sampled_configs(family: str, n: int, seed: int) -> list[dict]:
    """The portfolio default plus ``n`` configurations drawn from the family's space."""
    fam = get_family(family)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    drawn = [fam.suggest(study.ask(), prefix=False) for _ in range(n)]
    return [dict(c) for c in fam.portfolio[:1]] + drawn


def loo_knn_output(pipe, X, y: np.ndarray, task: str, n_classes: int | None) -> np.ndarray:
    """Leave-one-out predictions of a fitted kNN pipeline on its own training rows.

    ``kneighbors()`` without ``X`` returns each training row's neighbours without the row
    itself; the weighting follows scikit-learn's (``distance``: 1/d, exact matches win).
    """
    knn = pipe[-1]
    dist, ind = knn.kneighbors()
    if knn.weights == "distance":
        with np.errstate(divide="ignore"):
            weights = 1.0 / dist
        exact = ~np.isfinite(weights)
        rows = exact.any(axis=1)
        weights[rows] = exact[rows].astype(float)
    else:
        weights = np.ones_like(dist)
    weights /= weights.sum(axis=1, keepdims=True)
    if task != "classification":
        return (weights * y[ind]).sum(axis=1)
    proba = np.zeros((len(y), n_classes))
    for k in range(ind.shape[1]):
        np.add.at(proba, (np.arange(len(y)), y[ind[:, k]]), weights[:, k])
    return proba


def self_arm(pipe, X, y, task, n_classes, family):
    """Fit once on all rows; return (OOF predictions, fitted pipeline, seconds)."""
    start = time.perf_counter()
    pipe = clone(pipe)
    if family == "extra_trees":
        pipe.set_params(model__bootstrap=True)
    if family != "knn":
        pipe.set_params(model__oob_score=True)
    pipe.fit(X, y)
    if family == "knn":
        oof = loo_knn_output(pipe, X, y, task, n_classes)
    else:
        model = pipe[-1]
        raw = model.oob_decision_function_ if task == "classification" else model.oob_prediction_
        raw = np.asarray(raw, dtype=np.float64)  # NaN where a row was in every tree's bag
        if task == "classification":
            oof = np.zeros((len(y), n_classes))
            oof[:, np.asarray(model.classes_, dtype=np.intp)] = raw
        else:
            oof = raw
    return oof, pipe, time.perf_counter() - start


def table_rows(name: str, seed: int) -> list[dict]:
    split = load_table_split(name, seed)
    task = split.task
    X, _, info = validate_fit_data(split.X_train, split.y_train, task=task, cv_n_splits=5,
                                 rare_classes="warn")
    y = np.asarray(split.y_train)
    X_test = split.X_test
    scorer = get_prediction_scorer(None, task)
    builder = PipelineBuilder(info.column_kinds, task)
    splits = make_folds(5, y, task=task, random_state=seed, X=X, repeated=True)
    evaluator = CandidateEvaluator(X=X, y=y, splits=splits, task=task, scorer=scorer,
                                   n_classes=split.n_classes, n_threads=1)
    rows = []
    for family in FAMILIES:
        for i, params in enumerate(sampled_configs(family, N_SAMPLED, seed)):
            pipe = builder(get_family(family), params, seed)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                result = evaluator.evaluate(pipe)
                fold_test = np.mean([model_output(m, X_test, task, split.n_classes)
                                     for m in result.models], axis=0)
                oof, full, seconds = self_arm(pipe, X, y, task, split.n_classes, family)
                self_test = model_output(full, X_test, task, split.n_classes)
            covered = np.isfinite(oof).all(axis=1) if oof.ndim > 1 else np.isfinite(oof)
            rows.append({
                "table": name, "seed": seed, "task": task, "n_train": len(y), "family": family,
                "config": i, "params": repr(params),
                "kfold_oof": -result.score, "kfold_test": -scorer(split.y_test, fold_test),
                "kfold_seconds": result.fit_time,
                "self_oof": -scorer(y[covered], oof[covered]), "self_covered": covered.mean(),
                "self_test": -scorer(split.y_test, self_test), "self_seconds": seconds,
                "error": None,
            })
    return rows


def _one(name: str, seed: int) -> list[dict]:
    try:
        return table_rows(name, seed)
    except Exception as exc:  # noqa: BLE001 - one failing table must not stop the others
        row = dict.fromkeys(COLUMNS) | {"table": name, "seed": seed}
        return [row | {"error": f"{type(exc).__name__}: {exc}"}]


def summarise(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per family: honesty, ranking regret, cost and test quality of both arms."""
    ok = frame.dropna(subset=["kfold_oof", "self_oof"])
    out = []
    groups = [((f, t), r) for (f, t), r in ok.groupby(["family", "task"])]
    groups += [((f, "all"), r) for f, r in ok.groupby("family")]
    for (family, task), rows in groups:
        regrets = {"kfold": [], "self": []}
        for _, group in rows.groupby(["table", "seed"]):
            best_test = group[["kfold_test", "self_test"]].min().min()
            for arm in regrets:
                picked = group.loc[group[f"{arm}_oof"].idxmin(), f"{arm}_test"]
                regrets[arm].append(picked / best_test - 1)
        per_table = rows.groupby("table")[["kfold_test", "self_test"]].mean()
        self_vs_kfold = per_table.self_test / per_table.kfold_test - 1
        better, worse, p = sign_test(self_vs_kfold.to_numpy())
        out.append({
            "family": family, "task": task, "configs": len(rows), "tables": rows.table.nunique(),
            "kfold test/OOF (median)": (rows.kfold_test / rows.kfold_oof).median(),
            "self test/OOF (median)": (rows.self_test / rows.self_oof).median(),
            "kfold |log test/OOF| (median)": np.abs(np.log(rows.kfold_test / rows.kfold_oof)).median(),
            "self |log test/OOF| (median)": np.abs(np.log(rows.self_test / rows.self_oof)).median(),
            "kfold pick regret (mean)": np.mean(regrets["kfold"]),
            "self pick regret (mean)": np.mean(regrets["self"]),
            "self/kfold seconds (median)": (rows.self_seconds / rows.kfold_seconds).median(),
            "self/kfold test (mean)": self_vs_kfold.mean(),
            "self better/worse (tables)": f"{better}/{worse}",
            "sign p": p,
        })
    return pd.DataFrame(out).set_index("family")


def write_report(frame: pd.DataFrame, path: Path, command: str) -> None:
    summary = summarise(frame)
    errors = frame[frame.error.notna()]
    lines = [
        "# Out-of-bag / leave-one-out vs K-fold out-of-fold predictions",
        "",
        f"Command: `{command}`. See the docstring of `benchmarks/bench_self_oof.py` for the arms.",
        f"Rows: {len(frame) - len(errors)} configurations on {frame.table.nunique()} tables, "
        f"seeds {sorted(frame.seed.unique().tolist())}; failed tables: {len(errors)}.",
        "Losses: log loss (classification), RMSE (regression), on the suite's 25 % test rows.",
        "Pick regret: test loss of the configuration with the best OOF score / best test loss "
        "among the family's configurations on that table and seed - 1.",
        "Self vs kfold test: per table, mean over seeds and configurations.",
        "",
        markdown(summary, fmt="{:.4g}"),
    ]
    if len(errors):
        lines += ["", "Failed:", ""] + [f"- {r.table} seed {r.seed}: {r.error}"
                                         for r in errors.itertuples()]
    path.write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", default="all")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args(argv)
    csv = args.out / "self_oof.csv"
    command = ("python -m benchmarks.bench_self_oof --tables all --seeds "
               f"{' '.join(map(str, args.seeds))} --n-jobs {args.n_jobs} --out {args.out}/")
    if not args.report_only:
        names = list(PORTFOLIO_TABLES) if args.tables == "all" else args.tables.split(",")
        done = pd.read_csv(csv) if csv.exists() else pd.DataFrame(columns=["table", "seed"])
        finished = set(zip(done.table, done.seed, strict=True))
        todo = [(n, s) for s in args.seeds for n in names if (n, s) not in finished]
        for rows in Parallel(n_jobs=args.n_jobs, return_as="generator_unordered")(
                delayed(_one)(n, s) for n, s in todo):
            frame = pd.DataFrame(rows, columns=list(COLUMNS))
            frame.to_csv(csv, mode="a", header=not csv.exists(), index=False)
            print(frame.table.iloc[0], frame.seed.iloc[0], len(frame), flush=True)
    write_report(pd.read_csv(csv), args.out / "self_oof.md", command)
    print((args.out / "self_oof.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
