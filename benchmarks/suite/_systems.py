"""System adapters: each fits on the train split within the budget and predicts the test split.

An adapter returns one or more :class:`Outcome` (ensemble_hpo yields two: the fused
ensemble and its own best single candidate, from the same fit).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import pickle
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.suite._data import Split, categorical_columns

#: Threads per system. ensemble_hpo's default trains candidates on one thread; on the shared,
#: oversubscribed 2-core machine OpenMP libraries with 2 threads ran up to 20x slower, so
#: every system gets one thread (override with SUITE_THREADS on an idle machine); for
#: ensemble_hpo that is its ``n_jobs`` (parallel trials, each candidate on one thread).
THREADS = int(os.environ.get("SUITE_THREADS", "1"))
#: Repeats of ensemble_hpo's 5 outer folds (1: its default ``cv=5``; more: repeated k-fold
#: bagging, a ``RepeatedStratifiedKFold``/``RepeatedKFold``), set by ``tables.run --cv-repeats``.
CV_REPEATS = 1

#: ``models`` of ensemble_hpo: ``"auto"`` (its default) or ``"no_log_twins"`` (the default
#: families of the task without the log-target twins ``"auto"`` may add), set by
#: ``tables.run --models`` or the SUITE_MODELS environment variable.
MODELS = os.environ.get("SUITE_MODELS", "auto")


def _models(task: str) -> Any:
    if MODELS == "auto":
        return "auto"
    if MODELS != "no_log_twins":
        raise ValueError(f"unknown MODELS {MODELS!r}")
    from ensemble_hpo.spaces import DEFAULT_FAMILIES, get_family

    return [name for name in DEFAULT_FAMILIES if get_family(name).supports(task)]

#: Interpreter with AutoGluon installed (it pins pandas < 2.4, so it lives in its own venv).
AUTOGLUON_PYTHON = os.environ.get("SUITE_AUTOGLUON_PYTHON", "/tmp/ag_venv/bin/python")
#: File in each run folder kept with ``SUITE_KEEP_RUNS``: the fitted estimator and its split.
KEPT_FIT = "suite_fit.joblib"


@dataclass
class Outcome:
    system: str
    pred: np.ndarray | None
    fit_time: float
    n_trials: float = np.nan
    note: str = ""
    leaderboard: pd.DataFrame | None = field(default=None, repr=False)


class NotInstalled(Exception):
    """The system's package is missing; recorded as 'not installed'."""


# -- ensemble_hpo ------------------------------------------------------------------------------
def _cv_kwargs(task: str, seed: int) -> dict[str, Any]:
    """``cv`` of ensemble_hpo: its default, or 5 folds repeated ``CV_REPEATS`` times."""
    if CV_REPEATS <= 1:
        return {}
    from sklearn.model_selection import RepeatedKFold, RepeatedStratifiedKFold

    kind = RepeatedStratifiedKFold if task == "classification" else RepeatedKFold
    return {"cv": kind(n_splits=5, n_repeats=CV_REPEATS, random_state=seed)}


#: Regression target transform of the ensemble_hpo adapter: None, or "signlog" (fitted on
#: sign(y)·log1p(|y|), every prediction mapped back with the inverse; no bias correction, so
#: the back-transformed mean is the median-like one). Scores of the fitted model (cv_score_,
#: best_score_) are then in the transformed space; test losses are on the original scale.
TARGET_TRANSFORM: str | None = None


def target_maps(task: str) -> tuple[Callable[[np.ndarray], np.ndarray], Callable[[np.ndarray], np.ndarray]]:
    """(forward, inverse) of :data:`TARGET_TRANSFORM` for ``task`` (identity when off)."""
    if TARGET_TRANSFORM is None or task != "regression":
        return (lambda y: y), (lambda z: z)
    if TARGET_TRANSFORM != "signlog":
        raise ValueError(f"unknown TARGET_TRANSFORM {TARGET_TRANSFORM!r}")
    return (lambda y: np.sign(y) * np.log1p(np.abs(y))), (lambda z: np.sign(z) * np.expm1(np.abs(z)))


def transformed(split: Split) -> Split:
    """``split`` with its targets in the space the adapter fits (see :data:`TARGET_TRANSFORM`)."""
    if TARGET_TRANSFORM is None or split.task != "regression":
        return split
    forward, _ = target_maps(split.task)
    return dataclasses.replace(split, y_train=forward(np.asarray(split.y_train, dtype=float)),
                               y_test=forward(np.asarray(split.y_test, dtype=float)))


def run_ensemble_hpo(split: Split, budget: float, seed: int) -> list[Outcome]:
    import tempfile

    from ensemble_hpo import EnsembleClassifier, EnsembleRegressor

    cls = EnsembleClassifier if split.task == "classification" else EnsembleRegressor
    # A run folder keeps every candidate's fold models (in memory only the ensemble's are kept),
    # so that the selection variants below can be scored on the same population.
    keep = os.environ.get("SUITE_KEEP_RUNS")  # a folder: keep each run for offline analysis
    if keep:
        run_dir = Path(keep) / f"{split.name}_s{seed}"
        shutil.rmtree(run_dir, ignore_errors=True)
        context = contextlib.nullcontext(str(run_dir))
    else:
        context = tempfile.TemporaryDirectory(prefix="suite_ehpo_")
    _, inverse = target_maps(split.task)
    fitted = transformed(split)  # the split itself unless TARGET_TRANSFORM is set
    with context as run_dir:
        model = cls(time_budget=budget, random_state=seed, run_dir=run_dir, n_jobs=THREADS,
                    models=_models(split.task), **_cv_kwargs(split.task, seed))
        start = time.time()
        model.fit(fitted.X_train, fitted.y_train)
        fit_time = time.time() - start
        board = model.leaderboard_.copy()
        n_done = int((board["status"] == "ok").sum())
        best = model.best_candidate_
        outcomes = [
            Outcome("ensemble_hpo", inverse(predict_test_rows(model, fitted)), fit_time, len(board),
                    f"{len(model.ensemble_)} members, cv {model.cv_score_:.5f}", board),
            Outcome("ehpo_best_single", inverse(model.predict_candidate(fitted.X_test)), fit_time,
                    n_done, f"#{best.number} {best.family}, cv {model.best_score_:.5f}"),
        ]
        if keep:
            import joblib

            joblib.dump({"model": model, "split": fitted}, Path(run_dir) / KEPT_FIT)
        for name, selection in SELECTION_VARIANTS.items():
            model.reselect(fitted.X_train, fitted.y_train, selection=selection())
            outcomes.append(Outcome(name, inverse(predict_test_rows(model, fitted)), fit_time,
                                    len(board), f"{len(model.ensemble_)} members, cv {model.cv_score_:.5f}"))
    return outcomes


def kept_runs(folder: Path) -> list[Path]:
    """Run folders kept under ``folder`` (``SUITE_KEEP_RUNS``), sorted by name."""
    return sorted(p for p in folder.iterdir() if (p / KEPT_FIT).exists())


def load_kept_run(path: Path) -> tuple[Any, Split]:
    """The fitted ensemble_hpo estimator and the data split of one kept run folder."""
    import joblib

    saved = joblib.load(path / KEPT_FIT)
    return saved["model"], saved["split"]


def _greedy(prune: float | None):
    from ensemble_hpo.selection import GreedySelector

    return GreedySelector(prune=prune)


def _greedy_cv():
    from ensemble_hpo.selection import CrossValidatedSelector

    return CrossValidatedSelector(random_state=0)


#: Other selections re-run on the default run's population (nothing retrained): evidence for the
#: default, reported separately from the systems' ranks.
SELECTION_VARIANTS = {"ehpo_plain_caruana": partial(_greedy, None),
                      "ehpo_prune50": partial(_greedy, 0.5), "ehpo_greedy_cv": _greedy_cv}


def predict_test_rows(model, split: Split) -> np.ndarray:
    """The ensemble's test-row output the suite scores: probabilities or values."""
    if split.task == "classification":
        return model.predict_proba(split.X_test)
    return model.predict(split.X_test)


# -- Optuna TPE over XGBoost -----------------------------------------------------------------
def _xgb_frame(X: pd.DataFrame, categories: dict[str, pd.Index]) -> pd.DataFrame:
    X = X.copy()
    for col, cats in categories.items():
        X[col] = pd.Categorical(X[col], categories=cats)
    return X


def run_optuna_xgboost(split: Split, budget: float, seed: int) -> list[Outcome]:
    import optuna
    import xgboost as xgb
    from sklearn.model_selection import KFold, StratifiedKFold

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    start = time.time()
    cats = {c: pd.Index(sorted(split.X_train[c].dropna().astype(str).unique()))
            for c in categorical_columns(split.X_train)}
    X = _xgb_frame(split.X_train.assign(**{c: split.X_train[c].astype(str).where(
        split.X_train[c].notna()) for c in cats}), cats)
    y = split.y_train
    is_clf = split.task == "classification"
    cv_cls = StratifiedKFold if is_clf else KFold
    folds = list(cv_cls(5, shuffle=True, random_state=seed).split(X, y))

    deadline = start + budget * 0.85

    class _StopAtDeadline(xgb.callback.TrainingCallback):
        # study.optimize(timeout=...) only checks between trials; without this a single
        # slow trial (1000 rounds x 5 folds) ran 4x past the budget on a loaded machine.
        def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
            return time.time() > deadline

    def make(params: dict[str, Any], n_estimators: int, early: int | None,
             callbacks: list[Any] | None = None) -> Any:
        kwargs = dict(params, n_estimators=n_estimators, tree_method="hist",
                      enable_categorical=True, n_jobs=THREADS, random_state=seed,
                      early_stopping_rounds=early, max_cat_to_onehot=1, callbacks=callbacks)
        if is_clf:
            kwargs["eval_metric"] = "mlogloss" if split.n_classes > 2 else "logloss"
            return xgb.XGBClassifier(**kwargs)
        return xgb.XGBRegressor(eval_metric="rmse", **kwargs)

    def objective(trial: optuna.Trial) -> float:
        params = {
            "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.3, log=True),
            "max_depth": trial.suggest_int("max_depth", 2, 10),
            "min_child_weight": trial.suggest_float("min_child_weight", 0.1, 20, log=True),
            "subsample": trial.suggest_float("subsample", 0.5, 1.0),
            "colsample_bytree": trial.suggest_float("colsample_bytree", 0.4, 1.0),
            "reg_lambda": trial.suggest_float("reg_lambda", 1e-3, 10, log=True),
            "reg_alpha": trial.suggest_float("reg_alpha", 1e-3, 10, log=True),
        }
        oof = np.zeros((len(y), split.n_classes) if is_clf else len(y))
        rounds = []
        for tr, va in folds:
            model = make(params, 1000, 50, [_StopAtDeadline()])
            model.fit(X.iloc[tr], y[tr], eval_set=[(X.iloc[va], y[va])], verbose=False)
            if time.time() > deadline:
                raise optuna.TrialPruned("budget spent mid-trial")
            rounds.append(model.best_iteration + 1)
            oof[va] = model.predict_proba(X.iloc[va]) if is_clf else model.predict(X.iloc[va])
        trial.set_user_attr("n_estimators", int(np.mean(rounds)))
        from benchmarks.suite._metrics import primary_loss, score_predictions

        return primary_loss(split.task, score_predictions(split.task, y, oof, split.n_classes))

    study = optuna.create_study(direction="minimize",
                                sampler=optuna.samplers.TPESampler(seed=seed))
    # 15 % of the budget is kept for refitting the best configuration on all training rows.
    study.optimize(objective, timeout=budget * 0.85)
    if not any(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials):
        raise RuntimeError("no XGBoost trial finished within the budget")
    best = study.best_trial
    final = make(best.params, best.user_attrs["n_estimators"], None)
    final.fit(X, y, verbose=False)
    X_test = _xgb_frame(split.X_test.assign(**{c: split.X_test[c].astype(str).where(
        split.X_test[c].notna()) for c in cats}), cats)
    pred = final.predict_proba(X_test) if is_clf else final.predict(X_test)
    n_done = sum(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
    return [Outcome("optuna_xgboost", pred, time.time() - start, n_done,
                    f"best n_estimators {best.user_attrs['n_estimators']}")]


# -- scikit-learn stacking -----------------------------------------------------------------------
def run_sklearn_stacking(split: Split, budget: float, seed: int) -> list[Outcome]:
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import (
        HistGradientBoostingClassifier,
        HistGradientBoostingRegressor,
        RandomForestClassifier,
        RandomForestRegressor,
        StackingClassifier,
        StackingRegressor,
    )
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler
    from threadpoolctl import threadpool_limits

    cats = categorical_columns(split.X_train)
    nums = [c for c in split.X_train.columns if c not in cats]
    prep = ColumnTransformer([
        ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), nums),
        ("cat", make_pipeline(SimpleImputer(strategy="most_frequent"),
                              OneHotEncoder(handle_unknown="ignore", sparse_output=False)), cats),
    ])
    if split.task == "classification":
        base = [("rf", RandomForestClassifier(n_jobs=THREADS, random_state=seed)),
                ("hgb", HistGradientBoostingClassifier(random_state=seed)),
                ("lr", LogisticRegression(max_iter=2000)),
                ("knn", KNeighborsClassifier())]
        stack = StackingClassifier(base, final_estimator=LogisticRegression(max_iter=2000), cv=5)
    else:
        base = [("rf", RandomForestRegressor(n_jobs=THREADS, random_state=seed)),
                ("hgb", HistGradientBoostingRegressor(random_state=seed)),
                ("ridge", Ridge()), ("knn", KNeighborsRegressor())]
        stack = StackingRegressor(base, cv=5)
    X_train = split.X_train.copy()
    X_test = split.X_test.copy()
    for col in cats:
        # SimpleImputer cannot mix str and float NaN in one object column reliably.
        X_train[col] = X_train[col].astype(str).where(X_train[col].notna(), np.nan)
        X_test[col] = X_test[col].astype(str).where(X_test[col].notna(), np.nan)
    model = make_pipeline(prep, stack)
    start = time.time()
    # One OpenMP thread: on the shared, oversubscribed 2-core machine HistGB with 2 threads
    # was ~20x slower. Thread count does not change the fitted models, only the fit time.
    with threadpool_limits(limits=THREADS):
        model.fit(X_train, split.y_train)
    fit_time = time.time() - start
    pred = model.predict_proba(X_test) if split.task == "classification" else model.predict(X_test)
    return [Outcome("sklearn_stacking", pred, fit_time, 4, "no budget: default models, no tuning")]


# -- FLAML ---------------------------------------------------------------------------------------
def run_flaml(split: Split, budget: float, seed: int) -> list[Outcome]:
    from threadpoolctl import threadpool_limits

    try:
        from flaml import AutoML
    except ImportError as exc:
        raise NotInstalled("flaml") from exc
    is_clf = split.task == "classification"
    automl = AutoML()
    X_train = split.X_train.copy()
    X_test = split.X_test.copy()
    for col in categorical_columns(X_train):
        cats = sorted(X_train[col].dropna().astype(str).unique())
        X_train[col] = pd.Categorical(X_train[col].astype(str).where(X_train[col].notna()), cats)
        X_test[col] = pd.Categorical(X_test[col].astype(str).where(X_test[col].notna()), cats)
    start = time.time()
    with threadpool_limits(limits=THREADS):
        automl.fit(X_train, split.y_train, task="classification" if is_clf else "regression",
                   metric="log_loss" if is_clf else "rmse", time_budget=budget, seed=seed,
                   verbose=0, n_jobs=THREADS)
    fit_time = time.time() - start
    pred = automl.predict_proba(X_test) if is_clf else automl.predict(X_test)
    n_trials = len(getattr(automl, "config_history", {}) or {})
    return [Outcome("flaml", pred, fit_time, n_trials, f"best {automl.best_estimator}")]


# -- AutoGluon (separate interpreter) --------------------------------------------------------------
def run_autogluon(split: Split, budget: float, seed: int, *, presets: str = "medium_quality",
                  name: str = "autogluon") -> list[Outcome]:
    """AutoGluon-Tabular with ``presets``: ``medium_quality`` (``autogluon``, the suite's
    first anchor) or ``best_quality`` (``autogluon_best``: bagging and multi-layer stacking)."""
    if not Path(AUTOGLUON_PYTHON).exists():
        raise NotInstalled(f"no interpreter at {AUTOGLUON_PYTHON}")
    with tempfile.TemporaryDirectory(prefix="suite_ag_") as tmp:
        # Plain dicts of numpy arrays: pandas 3 pickles do not load in the venv's pandas 2.
        train = {c: split.X_train[c].to_numpy() for c in split.X_train.columns}
        train["__target__"] = split.y_train
        test = {c: split.X_test[c].to_numpy() for c in split.X_test.columns}
        for obj, fname in ((train, "train.pkl"), (test, "test.pkl")):
            with open(Path(tmp) / fname, "wb") as fh:
                pickle.dump(obj, fh)
        cmd = [AUTOGLUON_PYTHON, "-m", "benchmarks.suite._autogluon_worker", tmp, split.task,
               str(split.n_classes or 0), str(budget), str(seed), presets]
        env = dict(os.environ, OMP_NUM_THREADS=str(THREADS), SUITE_THREADS=str(THREADS))
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=budget * 4 + 300,
                              cwd=Path(__file__).resolve().parents[2], env=env)
        if proc.returncode == 3:
            raise NotInstalled(proc.stderr.strip()[-200:])
        if proc.returncode != 0:
            raise RuntimeError(proc.stderr[-2000:])
        pred = np.load(Path(tmp) / "pred.npy")
        meta = pd.read_json(Path(tmp) / "meta.json", typ="series")
    return [Outcome(name, pred, float(meta["fit_time"]), float(meta["n_models"]),
                    str(meta["best"]))]


SYSTEMS: dict[str, Callable[[Split, float, int], list[Outcome]]] = {
    "ensemble_hpo": run_ensemble_hpo,
    "optuna_xgboost": run_optuna_xgboost,
    "sklearn_stacking": run_sklearn_stacking,
    "flaml": run_flaml,
    "autogluon": run_autogluon,
    "autogluon_best": partial(run_autogluon, presets="best_quality", name="autogluon_best"),
}

#: Row names each adapter produces (for "not installed" / "failed" rows).
OUTPUT_NAMES: dict[str, tuple[str, ...]] = {
    "ensemble_hpo": ("ensemble_hpo", "ehpo_best_single", *SELECTION_VARIANTS),
    "optuna_xgboost": ("optuna_xgboost",),
    "sklearn_stacking": ("sklearn_stacking",),
    "flaml": ("flaml",),
    "autogluon": ("autogluon",),
    "autogluon_best": ("autogluon_best",),
}

