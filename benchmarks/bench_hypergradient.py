"""Benchmark: hypergradient search of the L2 strength against a log-uniform grid.

For each data set, report the best CV loss of a dense 81-point grid over
log(lambda) in [-10, 10], then for L-BFGS-B and Adam started at log(lambda) = 8:
the number of evaluations needed to come within 0.1% of that grid optimum, the
best loss reached, and the wall time per evaluation.

Run: ``python benchmarks/bench_hypergradient.py``
"""

from __future__ import annotations

import time

import numpy as np
from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.preprocessing import StandardScaler

from ensemble_hpo.search._hypergradient import hypergradient_search, validation_loss_and_grad

TOLERANCE = 1e-3


def _datasets():
    for name, loader, model in [
        ("diabetes", load_diabetes, "ridge"),
        ("breast_cancer", load_breast_cancer, "logistic"),
        ("wine (3 classes)", load_wine, "logistic"),
    ]:
        X, y = loader(return_X_y=True)
        X = StandardScaler().fit_transform(X)
        cv = KFold(5, shuffle=True, random_state=0) if model == "ridge" else StratifiedKFold(
            5, shuffle=True, random_state=0
        )
        yield name, model, X, y, list(cv.split(X, y))


def _evals_to_reach(losses: list[float], target: float) -> int | None:
    hits = [i + 1 for i, loss in enumerate(losses) if loss <= target]
    return hits[0] if hits else None


def main() -> None:
    print(f"{'data':22s} {'method':8s} {'evals':>5s} {'to 0.1%':>7s} {'best loss':>12s} "
          f"{'s/eval':>7s}")
    for name, model, X, y, splits in _datasets():
        start = time.perf_counter()
        grid = np.linspace(-10.0, 10.0, 81)
        grid_losses = [validation_loss_and_grad(X, y, splits, model, v)[0] for v in grid]
        grid_time = (time.perf_counter() - start) / grid.size
        best = min(grid_losses)
        print(f"{name:22s} {'grid':8s} {grid.size:5d} {'-':>7s} {best:12.6g} {grid_time:7.3f}")
        for optimizer in ("lbfgs", "adam"):
            start = time.perf_counter()
            res = hypergradient_search(X, y, splits, model=model, init_log_lambda=8.0,
                                       optimizer=optimizer, n_steps=30)
            per_eval = (time.perf_counter() - start) / len(res.losses)
            reach = _evals_to_reach(res.losses, best * (1 + TOLERANCE))
            print(f"{name:22s} {optimizer:8s} {len(res.losses):5d} {str(reach):>7s} "
                  f"{res.best_loss:12.6g} {per_eval:7.3f}")


if __name__ == "__main__":
    main()
