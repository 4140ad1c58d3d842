"""Does leaving candidates worse than a constant prediction out of selection help the ensemble?

Seen on breast_cancer (fair 300 s suite, seed 0): the greedy ensemble gave 28 % of its weight
to two 1-nearest-neighbour candidates whose out-of-fold log loss (1.18, 1.27) is worse than
predicting the class frequencies (0.66), and lost to its own best single candidate on test
(0.1108 vs 0.0885). A 1-NN candidate's out-of-fold rows come from one fold model (probabilities
0 and 1) while its test rows come from the average of five (``benchmarks/results/self_oof.md``:
kNN test/OOF log loss 0.60), so the weight fitted on its out-of-fold rows does not carry over.

On every table of the portfolio repository (all stored configurations of the seven
``models="auto"`` families, 5-fold out-of-fold and fold-averaged test predictions, seed 0),
``GreedySelector()`` selects on the out-of-fold predictions of

* ``all``: every configuration (what ``fit`` does);
* ``beats_constant``: only those whose out-of-fold loss is lower than the constant prediction's
  (class frequencies of the training rows / their mean);

and the weighted average is scored on the test rows, against the best single configuration
by out-of-fold loss.

Usage::

    python -m benchmarks.portfolio.run run --max-evals 0      # unpack the committed packs
    python -m benchmarks.portfolio.member_filter --out benchmarks/results/
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from benchmarks._markdown import markdown
from benchmarks.portfolio import _offline
from benchmarks.portfolio._store import Repository
from benchmarks.tables._report import sign_test
from ensemble_hpo.metrics import get_prediction_scorer
from ensemble_hpo.selection import GreedySelector

AUTO_FAMILIES = ["xgboost", "hist_gradient_boosting", "random_forest", "extra_trees",
                 "logistic", "ridge", "knn"]


def constant_prediction(y: np.ndarray, task: str, n_classes: int | None) -> np.ndarray:
    if task == "regression":
        return np.full(len(y), y.mean())
    prior = np.bincount(y, minlength=n_classes) / len(y)
    return np.tile(prior, (len(y), 1))


def table_row(repo: Repository, table: str) -> dict:
    d = repo.load_table(table, AUTO_FAMILIES)
    task = "regression" if d["task"] == "regression" else "classification"
    score = get_prediction_scorer(None, task)
    oof, test = d["oof"].astype(np.float64), d["test"].astype(np.float64)
    oof_loss = np.array([-score(d["y_train"], p) for p in oof])
    constant = -score(d["y_train"], constant_prediction(d["y_train"], task, d["n_classes"]))
    best = int(np.argmin(oof_loss))
    row = {"table": table, "task": task, "candidates": len(oof),
           "worse_than_constant": int((oof_loss >= constant).sum()),
           "best_single": -score(d["y_test"], test[best])}
    keep = {"all": np.ones(len(oof), bool), "beats_constant": oof_loss < constant}
    for name, mask in keep.items():
        weights = GreedySelector().fit(oof[mask], d["y_train"]).weights_
        row[name] = -score(d["y_test"], np.tensordot(weights, test[mask], axes=1))
        row[f"{name}_weight_on_worse"] = float(weights[oof_loss[mask] >= constant].sum())
    return row


def summary(frame: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for task, group in [("all", frame)] + list(frame.groupby("task")):
        for variant in ("all", "beats_constant"):
            rel = group[variant] / group.best_single - 1
            vs = group[variant] / group["all"] - 1
            better, worse, p = sign_test(vs.to_numpy())
            rows.append({
                "task": task, "variant": variant, "tables": len(group),
                "<= best single": f"{int((rel <= 0).sum())}/{len(group)}",
                "mean rel vs best single": f"{rel.mean():+.2%}",
                "vs all: better / worse": f"{better} / {worse}",
                "vs all: mean": f"{vs.mean():+.2%}",
                "sign p": f"{p:.3g}" if better + worse else "",
                "tables weighting worse-than-constant":
                    int((group[f"{variant}_weight_on_worse"] > 0).sum()),
            })
    return pd.DataFrame(rows).set_index("task")


def main(argv: list[str] | None = None) -> int:
    args = _offline.parser(__doc__.splitlines()[0]).parse_args(argv)
    frame = _offline.per_table(args.repo, table_row)
    text = "\n".join([
        "# Selection without candidates worse than a constant prediction (portfolio repository)",
        "", "Command: `python -m benchmarks.portfolio.member_filter --out benchmarks/results/` "
        "(see its docstring). Per table: `member_filter.csv`.", "",
        markdown(summary(frame)), ""])
    _offline.write(args.out, "member_filter", frame, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
