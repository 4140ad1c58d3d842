"""Selection and fusion variants re-run on the suite's search populations, scored on test data.

The benchmark suite can keep every ensemble_hpo run (``SUITE_KEEP_RUNS=<folder>``): the run
folder with every candidate's models, plus the fitted estimator and the data split. This
script re-runs selection and fusion on those populations with ``reselect`` (nothing is
retrained) and scores each variant on the held-out test rows, so that defaults can be
chosen from search populations rather than hand-made model libraries::

    SUITE_KEEP_RUNS=/tmp/suite_runs python -m benchmarks.suite.run --budget 60 --seeds 0 \\
        --systems ensemble_hpo --out /tmp/suite_keep --tag keep
    python benchmarks/bench_ensemble_variants.py /tmp/suite_runs

Writes ``benchmarks/results/ensemble_variants.md``.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._markdown import markdown  # noqa: E402
from benchmarks.suite._metrics import primary_loss, score_predictions  # noqa: E402
from benchmarks.suite._systems import kept_runs, load_kept_run, predict_test_rows  # noqa: E402
from ensemble_hpo.fusion import OptimizedWeights, Stacking, WeightedAverage  # noqa: E402
from ensemble_hpo.selection import (  # noqa: E402
    BestSingleSelector,
    CrossValidatedSelector,
    GreedySelector,
)

RESULTS = Path(__file__).parent / "results" / "ensemble_variants.md"

#: name -> (selection, fusion) factories.
VARIANTS: dict[str, tuple[Callable[[], Any], Callable[[], Any]]] = {
    "prune 0.5 (suite run's default)": (lambda: GreedySelector(prune=0.5), WeightedAverage),
    "plain Caruana (prune None)": (lambda: GreedySelector(prune=None), WeightedAverage),
    "greedy_cv": (lambda: CrossValidatedSelector(random_state=0), WeightedAverage),
    "bagged 20 (prune 0.5)": (lambda: GreedySelector(n_bags=20, prune=0.5, random_state=0),
                              WeightedAverage),
    "25 iterations (prune 0.5)": (lambda: GreedySelector(max_iter=25, prune=0.5), WeightedAverage),
    "prune 0.25": (lambda: GreedySelector(prune=0.25), WeightedAverage),
    "prune 0.5 + optimized weights": (lambda: GreedySelector(prune=0.5), OptimizedWeights),
    "prune 0.5 + stacking": (lambda: GreedySelector(prune=0.5), lambda: Stacking(random_state=0)),
    "best single": (BestSingleSelector, WeightedAverage),
}


def evaluate_run(path: Path) -> list[dict[str, Any]]:
    model, split = load_kept_run(path)
    rows = []
    single = primary_loss(split.task, score_predictions(
        split.task, split.y_test, model.predict_candidate(split.X_test), split.n_classes))
    for name, (selection, fusion) in VARIANTS.items():
        start = time.perf_counter()
        model.reselect(split.X_train, split.y_train, selection=selection(), fusion=fusion())
        loss = primary_loss(split.task, score_predictions(
            split.task, split.y_test, predict_test_rows(model, split), split.n_classes))
        rows.append({"run": path.name, "variant": name, "loss": loss, "best_single_loss": single,
                     "members": len(model.ensemble_), "oof": model.cv_score_,
                     "seconds": time.perf_counter() - start})
    return rows


def summarise(results: pd.DataFrame, command: str) -> str:
    results = results.copy()
    results["change_%"] = 100 * (results["loss"] - results["best_single_loss"]) / results[
        "best_single_loss"]
    results["rank"] = results.groupby("run")["loss"].rank(method="average")
    tol = 1e-9
    overall = results.groupby("variant", sort=False).agg(
        mean_rank=("rank", "mean"),
        beats_single=("change_%", lambda c: int((c < -tol).sum())),
        ties=("change_%", lambda c: int((c.abs() <= tol).sum())),
        loses=("change_%", lambda c: int((c > tol).sum())),
        mean_change_pct=("change_%", "mean"),
        median_change_pct=("change_%", "median"),
        members=("members", "mean"),
    )
    per_run = results.pivot_table(index="run", columns="variant", values="change_%", sort=False)
    return "\n".join([
        "# Selection and fusion variants on search populations (test loss)",
        "",
        f"Command: `{command}`.",
        "",
        f"{results['run'].nunique()} runs (data set x seed) of the benchmark suite's default "
        "ensemble_hpo fit; each variant re-runs selection and fusion on the same population "
        "(nothing retrained) and is scored on the suite's held-out test rows (log loss / RMSE, "
        "lower is better). *change* = relative test loss change against the run's best single "
        "candidate (negative = the ensemble is better).",
        "",
        markdown(overall, "{:.3f}"),
        "",
        "## Test loss change against the best single candidate (%) per run",
        "",
        markdown(per_run, "{:+.2f}"),
        "",
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, help="folder given to SUITE_KEEP_RUNS")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    rows = []
    for path in kept_runs(args.runs):
        print(f"[{time.strftime('%H:%M:%S')}] {path.name}", flush=True)
        rows += evaluate_run(path)
    command = "python benchmarks/bench_ensemble_variants.py " + " ".join(
        sys.argv[1:] if argv is None else argv)
    text = summarise(pd.DataFrame(rows), command)
    args.output.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
