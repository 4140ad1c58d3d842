"""Cost of the honest cv_score_ (issue 15): selection and fusion repeated inside the outer folds.

On kept 60 s populations of the 60-table benchmark (``benchmarks/tables``, run folders under
``--runs``), times, on one BLAS thread as ``fit`` does:

* ``plain``: one selection and one fusion on all rows (what ``fit`` did before);
* ``nested_own``: the nested score of the fitted fuser alone (selection + fusion per outer fold);
* ``nested_all``: the nested score plus the fusion comparison of every default fuser (what
  ``fit`` now does when time is left).

    python -m benchmarks.bench_nested_cost --runs /work/bench_runs/tables_60s --limit 12
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from benchmarks._markdown import markdown
from benchmarks.suite._systems import kept_runs, load_kept_run
from ensemble_hpo._nested import nested_scores
from ensemble_hpo._select_fuse import comparison_fusers
from ensemble_hpo.metrics import get_prediction_scorer

OUT = Path(__file__).parent / "results" / "nested_cost.md"


def _seconds(call) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def measure(path: Path) -> dict:
    model, _ = load_kept_run(path)
    numbers = [c.number for c in model.population_.completed()]
    predictions = model.population_.predictions(numbers)
    y, splits = model.selection_target_, model.cv_splits_
    scorer = get_prediction_scorer(model.scoring, model._task)
    selector, fuser = model.selector_, model.ensemble_.fuser

    def plain() -> None:
        fitted = type(selector)(**selector.get_params()).fit(predictions, y)
        chosen = np.flatnonzero(fitted.weights_)
        type(fuser)(**fuser.get_params()).fit(predictions[chosen], y, weights=fitted.weights_[chosen])

    def nested(fusers) -> None:
        nested_scores(predictions, y, splits, selector=selector, fusers=fusers, scorer=scorer)

    with threadpool_limits(limits=1):
        row = {"table": path.name, "candidates": len(numbers), "rows": len(y),
               "fit_s": float(model.fit_time_), "plain_s": _seconds(plain),
               "nested_own_s": _seconds(lambda: nested({type(fuser).__name__: fuser})),
               "nested_all_s": _seconds(lambda: nested(comparison_fusers(
                   fuser, y, splits, model._task, scoring=model.scoring,
                   random_state=model.random_state)))}
    row["nested_all_share_of_fit"] = row["nested_all_s"] / row["fit_s"]
    return row


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=Path, default=Path("/work/bench_runs/tables_60s"))
    parser.add_argument("--limit", type=int, default=12)
    args = parser.parse_args()
    rows = [measure(path) for path in kept_runs(args.runs)[: args.limit]]
    frame = pd.DataFrame(rows)
    summary = frame[["plain_s", "nested_own_s", "nested_all_s", "nested_all_share_of_fit"]].median()
    text = "\n".join([
        "# Cost of the nested cv_score_ and fusion comparison (issue 15)", "",
        f"Command: `python -m benchmarks.bench_nested_cost --runs {args.runs} --limit {args.limit}` "
        "(kept 60 s populations of the 60-table benchmark, 5 outer folds, default selection "
        "and fusion, one BLAS thread; shared 2-core machine with benchmarks running beside it).", "",
        markdown(frame, "{:.3f}"), "",
        "Medians: " + ", ".join(f"{k} {v:.3f}" for k, v in summary.items()), "",
    ])
    OUT.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
