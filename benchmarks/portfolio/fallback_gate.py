"""What does falling back to the best single candidate buy on issue 16's count, and cost?

Issue 16 asks that the ensemble be at least as good as its own best single candidate on 90 %
of the 60 tables, and lists "fall back to fewer members or the best single when the ensemble
does not generalise". A fallback turns a table into a tie, which the count accepts, so any
gate raises the count; the question is how much of the ensemble's gain it gives up.

Per table of the portfolio repository (all stored configurations of the ``models="auto"``
families, seed-0 split, ``fit``'s 5 folds): ``GreedySelector()`` on all out-of-fold rows, and
the paired per-row loss difference ``d_i = loss(ensemble, i) - loss(best single, i)`` (log
loss per row; squared error per row for regression, whose mean orders RMSE the same way):

* ``in-sample``: ``t = mean(d) / se(d)`` on the rows selection was fitted on (optimistic);
* ``held-out``: per fold, greedy selection and the best single chosen on the other four folds'
  rows, ``d`` on the held fold's rows (nested: the rows were not used to select).

Gate ``z``: keep the ensemble when ``t < -z``, else predict with the best single candidate.
Reported per gate: tables where the result is at least as good as the best single on test,
and the mean / median relative change of test loss against the best single. From the
repository root (about a minute)::

    python -m benchmarks.portfolio.run run --max-evals 0      # unpack the committed packs
    python -m benchmarks.portfolio.fallback_gate --out benchmarks/results/
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from benchmarks._markdown import markdown
from benchmarks.portfolio import _offline
from benchmarks.portfolio._store import Repository
from benchmarks.portfolio.member_filter import AUTO_FAMILIES
from benchmarks.tables._report import sign_test
from ensemble_hpo.selection import GreedySelector

EPS = np.finfo(np.float64).eps
GATES = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0)


def row_losses(y: np.ndarray, pred: np.ndarray, task: str) -> np.ndarray:
    """Per-row log loss (probabilities clipped as the library's scorer) or squared error."""
    if task == "regression":
        return (pred - y) ** 2
    picked = pred[np.arange(len(y)), y.astype(int)] / pred.sum(axis=1)
    return -np.log(np.clip(picked, EPS, 1.0))


def total(losses: np.ndarray, task: str) -> float:
    return float(np.sqrt(losses.mean())) if task == "regression" else float(losses.mean())


def t_stat(d: np.ndarray) -> float:
    se = d.std(ddof=1) / np.sqrt(len(d))
    return float(d.mean() / se) if se > 0 else 0.0


def greedy_weights(oof: np.ndarray, y: np.ndarray) -> np.ndarray:
    with threadpool_limits(limits=1):
        return GreedySelector().fit(oof, y).weights_


def table_row(repo: Repository, table: str) -> dict:
    d = repo.load_table(table, AUTO_FAMILIES)
    task = "regression" if d["task"] == "regression" else "classification"
    y, fold = d["y_train"], d["fold"]
    oof, test = d["oof"].astype(np.float64), d["test"].astype(np.float64)
    losses = np.stack([row_losses(y, p, task) for p in oof])
    best = int(np.argmin(losses.mean(axis=1)))
    weights = greedy_weights(oof, y)
    in_sample = row_losses(y, np.tensordot(weights, oof, axes=1), task) - losses[best]
    held_out = np.empty(len(y))
    for k in np.unique(fold):
        fit_rows, held = fold != k, fold == k
        w = greedy_weights(oof[:, fit_rows], y[fit_rows])
        single = int(np.argmin(losses[:, fit_rows].mean(axis=1)))
        held_out[held] = (row_losses(y[held], np.tensordot(w, oof[:, held], axes=1), task)
                          - losses[single, held])
    ensemble = total(row_losses(d["y_test"], np.tensordot(weights, test, axes=1), task), task)
    single = total(row_losses(d["y_test"], test[best], task), task)
    return {"table": table, "task": d["task"], "n_train": len(y), "candidates": len(oof),
            "members": int((weights > 0).sum()), "t_in_sample": t_stat(in_sample),
            "t_held_out": t_stat(held_out), "rel_change": ensemble / single - 1}


def gate_summary(frame: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for kind in ("in_sample", "held_out"):
        for z in GATES:
            fallback = frame[f"t_{kind}"] >= -z
            rel = frame["rel_change"].where(~fallback, 0.0)
            better, worse, p = sign_test((rel - frame["rel_change"]).to_numpy())
            rows.append({"gate": f"{kind}, z = {z:g}", "fallbacks": int(fallback.sum()),
                         "<= best single": f"{int((rel <= 0).sum())}/{len(frame)}",
                         "mean rel change": f"{rel.mean():+.2%}",
                         "median rel change": f"{rel.median():+.2%}",
                         "vs no gate: better / worse": f"{better} / {worse}",
                         "sign p": f"{p:.3g}" if better + worse else ""})
    return pd.DataFrame(rows).set_index("gate")


def main(argv: list[str] | None = None) -> int:
    args = _offline.parser(__doc__.splitlines()[0]).parse_args(argv)
    frame = _offline.per_table(args.repo, table_row)
    plain = frame["rel_change"]
    text = "\n".join([
        "# Falling back to the best single candidate: the count bought and the gain given up",
        "", "Command: `python -m benchmarks.portfolio.fallback_gate --out benchmarks/results/` "
        "(see its docstring). Per table: `fallback_gate.csv`. Without a gate: ensemble <= best "
        f"single on {int((plain <= 0).sum())}/{len(frame)} tables, mean {plain.mean():+.2%}, "
        f"median {plain.median():+.2%}. 'vs no gate' counts tables where the gated result is "
        "better / worse than the plain ensemble on test.", "",
        markdown(gate_summary(frame)), ""])
    _offline.write(args.out, "fallback_gate", frame, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
