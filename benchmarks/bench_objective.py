"""Ensemble-aware search against candidate search, paired (issue 18, item 3).

For each table and seed, fits the default estimator twice, with ``objective="candidate"``
and ``objective="ensemble"``, same budget, ``n_jobs``, seed and split (the arms alternate
which goes first, so load drift does not favour one), and records the test loss of the
ensemble and of its best single candidate. The report gives, per arm, wins, mean relative
change of test loss and a two-sided sign test (``scipy.stats.binomtest``). Resumable: rows
already in the CSV are skipped.

    python -m benchmarks.bench_objective --budget 30 --seeds 0 --tables pima_diabetes \
        births14_lbw aids2_death email_spam olive_area vote92_choice kershaw_pitch \
        smoking_marital liver_alt wage2_wage card_lwage exam_london
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import binomtest
from sklearn.metrics import log_loss, root_mean_squared_error

from benchmarks._markdown import markdown
from benchmarks.tables._data import load_table_split
from ensemble_hpo import EnsembleClassifier, EnsembleRegressor

RESULTS = Path(__file__).parent / "results"
ARMS = ("candidate", "ensemble")


def _loss(task: str, y: np.ndarray, prediction: np.ndarray, n_classes: int | None,
          classes: np.ndarray | None) -> float:
    if task == "classification":
        # A class absent from the training rows has no column: it gets probability 0.
        full = np.zeros((len(y), n_classes))
        full[:, classes] = prediction
        return float(log_loss(y, np.clip(full, 1e-15, 1), labels=np.arange(n_classes)))
    return float(root_mean_squared_error(y, prediction))


def fit_arm(table: str, seed: int, arm: str, budget: float, n_jobs: int) -> dict:
    split = load_table_split(table, seed)
    classification = split.task == "classification"
    cls = EnsembleClassifier if classification else EnsembleRegressor
    load = os.getloadavg()[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = cls(time_budget=budget, n_jobs=n_jobs, random_state=seed, objective=arm)
        start = time.time()
        model.fit(split.X_train, split.y_train)
        fit_s = time.time() - start
        predict = model.predict_proba if classification else model.predict
        ensemble = predict(split.X_test)
        best = model.predict_candidate(split.X_test)
    n_classes = split.n_classes if classification else None
    classes = getattr(model, "classes_", None)
    return {"table": table, "seed": seed, "task": split.task, "arm": arm,
            "ensemble_loss": _loss(split.task, split.y_test, ensemble, n_classes, classes),
            "best_single_loss": _loss(split.task, split.y_test, best, n_classes, classes),
            "candidates": len(model.leaderboard_), "members": len(model.ensemble_),
            "fit_s": round(fit_s, 1), "load1": round(load, 2), "budget": budget}


def report(frame: pd.DataFrame) -> str:
    wide = frame.pivot_table(index=["table", "seed"], columns="arm", values="ensemble_loss")
    wide = wide.dropna()
    rel = 100 * (wide["ensemble"] / wide["candidate"] - 1)
    better, worse = int((rel < 0).sum()), int((rel > 0).sum())
    p = binomtest(better, better + worse).pvalue if better + worse else float("nan")
    lines = [f"Paired over {len(wide)} table-seed pairs: `objective=\"ensemble\"` has the lower "
             f"test loss on {better}, the higher on {worse} (sign test p = {p:.3g}); mean "
             f"relative change of test loss {rel.mean():+.2f} %, median {rel.median():+.2f} %.",
             ""]
    table = wide.assign(rel_change_pct=rel).reset_index()
    lines.append(markdown(table.set_index("table")))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=30.0)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--tables", nargs="+", required=True)
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--out", type=Path, default=RESULTS / "objective")
    args = parser.parse_args(argv)
    csv = args.out.with_suffix(".csv")
    frame = pd.read_csv(csv) if csv.exists() else pd.DataFrame()
    done = set() if frame.empty else set(zip(frame.table, frame.seed, frame.arm, strict=True))
    for i, (table, seed) in enumerate((t, s) for t in args.tables for s in args.seeds):
        for arm in ARMS if i % 2 == 0 else ARMS[::-1]:
            if (table, seed, arm) in done:
                continue
            row = fit_arm(table, seed, arm, args.budget, args.n_jobs)
            print(row, flush=True)
            frame = pd.concat([frame, pd.DataFrame([row])], ignore_index=True)
            frame.to_csv(csv, index=False)
    command = "python -m benchmarks.bench_objective " + " ".join(sys.argv[1:] if argv is None else argv)
    args.out.with_suffix(".md").write_text(
        f"# Ensemble-aware search (objective) against candidate search\n\n`{command}`\n\n"
        f"{report(frame)}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
