"""Prediction cost and ensemble trimming on real members (fold models on bundled data sets)."""

from __future__ import annotations

import dataclasses
import functools
import time
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from ensemble_hpo.ensemble import Ensemble, Member, prediction_cost, trim_ensemble
from ensemble_hpo.fusion import (
    HardVoting,
    OptimizedWeights,
    SoftVoting,
    Stacking,
    WeightedAverage,
)
from ensemble_hpo.selection import GreedySelector


@pytest.fixture(scope="module", autouse=True)
def _single_blas_thread():
    # Oversubscribed BLAS threads on a loaded 2-core machine make timings erratic.
    with threadpool_limits(limits=1):
        yield


# Selection weights of the three members: the slow forest is the lightest.
WEIGHTS = np.array([0.5, 0.3, 0.2])


def _models(task: str) -> list[tuple[str, Any]]:
    if task == "classification":
        return [("logistic", make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))),
                ("knn", make_pipeline(StandardScaler(), KNeighborsClassifier(n_neighbors=15))),
                ("random_forest", RandomForestClassifier(n_estimators=40, random_state=0))]
    return [("ridge", make_pipeline(StandardScaler(), Ridge())),
            ("knn", make_pipeline(StandardScaler(), KNeighborsRegressor(n_neighbors=15))),
            ("random_forest", RandomForestRegressor(n_estimators=40, max_depth=8,
                                                     random_state=0))]


def fold_members(X: np.ndarray, y: np.ndarray, task: str) -> tuple[list[Member], np.ndarray]:
    """Three members with 3 fold models each, like a search's candidates, and their OOF output."""
    kind = StratifiedKFold if task == "classification" else KFold
    folds = list(kind(n_splits=3, shuffle=True, random_state=0).split(X, y))
    members, oof = [], []
    for number, ((family, model), weight) in enumerate(zip(_models(task), WEIGHTS, strict=True)):
        fitted = [clone(model).fit(X[train], y[train]) for train, _ in folds]
        out = np.zeros((len(y), len(np.unique(y))) if task == "classification" else len(y))
        for fold_model, (_, test) in zip(fitted, folds, strict=True):
            out[test] = (fold_model.predict_proba(X[test]) if task == "classification"
                         else fold_model.predict(X[test]))
        members.append(Member(number=number, family=family, params={}, weight=float(weight),
                              models=fitted))
        oof.append(out)
    return members, np.stack(oof)


def with_fuser(members: list[Member], oof: np.ndarray, y: np.ndarray, fuser: Any) -> Ensemble:
    task = "classification" if oof.ndim == 3 else "regression"
    fuser.fit(oof, y, weights=[m.weight for m in members])
    return Ensemble(members=members, fuser=fuser, task=task,
                    n_classes=oof.shape[2] if oof.ndim == 3 else None)


@functools.cache
def cancer_data() -> tuple[np.ndarray, np.ndarray, list[Member], np.ndarray]:
    """Breast-cancer members, built once per session (test_export.py shares them)."""
    X, y = load_breast_cancer(return_X_y=True)
    members, oof = fold_members(X, y, "classification")
    return X, y, members, oof


@pytest.fixture(scope="module")
def cancer_members():
    return cancer_data()


@pytest.fixture(scope="module")
def diabetes_members():
    X, y = load_diabetes(return_X_y=True)
    members, oof = fold_members(X, y, "regression")
    return X, y, members, oof


def _cost_of(cost, family: str) -> float:
    return float(cost.loc[cost["family"] == family, "seconds_per_row"].iloc[0])


# -- prediction_cost ----------------------------------------------------------------------------
@pytest.mark.parametrize("data", ["cancer_members", "diabetes_members"])
def test_prediction_cost_has_a_row_per_member_and_one_for_the_ensemble(data, request):
    X, y, members, oof = request.getfixturevalue(data)
    ensemble = with_fuser(members, oof, y, WeightedAverage())
    cost = prediction_cost(ensemble, X[:150], repeats=2)
    assert cost["component"].tolist() == ["member"] * 3 + ["ensemble"]
    assert cost["number"].iloc[:3].tolist() == [0, 1, 2]
    assert cost["number"].isna().tolist() == [False] * 3 + [True]
    assert cost["family"].tolist()[:3] == [m.family for m in members]
    assert cost["n_models"].tolist() == [3, 3, 3, 9]
    assert np.all(cost["seconds_per_row"] > 0)
    # The ensemble runs every member, so it cannot be much cheaper than the slowest one.
    assert cost["seconds_per_row"].iloc[-1] > 0.5 * cost["seconds_per_row"].iloc[:3].max()


def test_prediction_cost_accepts_a_dataframe_batch(cancer_members):
    X, y, members, oof = cancer_members
    ensemble = with_fuser(members[:1], oof[:1], y, WeightedAverage())
    cost = prediction_cost(ensemble, pd.DataFrame(X[:50]), repeats=1)
    assert len(cost) == 2 and np.all(cost["seconds_per_row"] > 0)


@pytest.mark.parametrize("repeats", [0, -1, 1.5, True, "3"])
def test_prediction_cost_rejects_bad_repeats(cancer_members, repeats):
    X, y, members, oof = cancer_members
    ensemble = with_fuser(members, oof, y, WeightedAverage())
    with pytest.raises(ValueError, match="'repeats' parameter must be a positive int"):
        prediction_cost(ensemble, X, repeats=repeats)


def test_prediction_cost_rejects_empty_batch_and_non_ensembles(cancer_members):
    X, y, members, oof = cancer_members
    ensemble = with_fuser(members, oof, y, WeightedAverage())
    with pytest.raises(ValueError, match="non-empty batch"):
        prediction_cost(ensemble, X[:0])
    with pytest.raises(ValueError, match="'ensemble' parameter must be a fitted Ensemble"):
        prediction_cost("not an ensemble", X)


# -- trim_ensemble: member count ----------------------------------------------------------------
def test_trim_keeps_heaviest_members_and_renormalises(cancer_members):
    X, y, members, oof = cancer_members
    ensemble = with_fuser(members, oof, y, WeightedAverage())
    trimmed = trim_ensemble(ensemble, max_members=2)
    assert [m.family for m in trimmed.members] == ["logistic", "knn"]
    np.testing.assert_allclose(trimmed.weights, [0.625, 0.375])
    np.testing.assert_allclose(trimmed.fuser.weights_, [0.625, 0.375])
    assert trimmed.fuser is not ensemble.fuser
    # The original ensemble is untouched.
    assert len(ensemble) == 3 and ensemble.weights.sum() == pytest.approx(1.0)
    expected = 0.625 * members[0].predict(X, "classification", 2) + 0.375 * members[1].predict(
        X, "classification", 2)
    np.testing.assert_allclose(trimmed.combine(X), expected, atol=1e-12)


@pytest.mark.parametrize("fuser", [WeightedAverage(), SoftVoting(), HardVoting()])
def test_fixed_weight_fusers_are_refitted_without_oof(cancer_members, fuser):
    X, y, members, oof = cancer_members
    ensemble = with_fuser(members, oof, y, fuser)
    trimmed = trim_ensemble(ensemble, max_members=1)
    assert len(trimmed) == 1 and trimmed.weights.sum() == pytest.approx(1.0)
    assert type(trimmed.fuser) is type(fuser) and trimmed.fuser.n_members_ == 1
    proba = trimmed.combine(X)
    assert proba.shape == (len(X), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)


@pytest.mark.parametrize("fuser", [OptimizedWeights(), Stacking(random_state=0)])
def test_learned_fusers_need_oof_predictions(cancer_members, fuser):
    X, y, members, oof = cancer_members
    ensemble = with_fuser(members, oof, y, fuser)
    with pytest.raises(ValueError, match="'oof_predictions' and 'y' parameters must be given to "
                                         f"refit the {type(fuser).__name__}"):
        trim_ensemble(ensemble, max_members=2)
    trimmed = trim_ensemble(ensemble, max_members=2, oof_predictions=oof, y=y)
    assert len(trimmed) == 2 and trimmed.weights.sum() == pytest.approx(1.0)
    assert trimmed.fuser.n_members_ == 2
    # The fuser is a clone refitted on the kept members' OOF predictions and renormalised weights.
    kept = [m.number for m in trimmed.members]
    expected = clone(fuser).fit(oof[kept], y, weights=trimmed.weights)
    np.testing.assert_allclose(trimmed.combine(X), expected.combine(
        np.stack([m.predict(X, "classification", 2) for m in trimmed.members])))
    np.testing.assert_allclose(trimmed.fuser.combine(oof[kept]), expected.combine(oof[kept]))


def test_oof_ranking_keeps_the_best_blend(diabetes_members):
    X, y, members, oof = diabetes_members
    ensemble = with_fuser(members, oof, y, OptimizedWeights())
    trimmed = trim_ensemble(ensemble, max_members=1, oof_predictions=oof, y=y)
    rmse = np.sqrt(((oof - y) ** 2).mean(axis=1))
    assert trimmed.members[0].number == int(np.argmin(rmse))
    np.testing.assert_allclose(trimmed.fuser.weights_, [1.0])
    only = trimmed.members[0].predict(X, "regression", None)
    np.testing.assert_allclose(trimmed.combine(X), only)


def test_trim_keeps_the_members_greedy_selection_adds_first(diabetes_members):
    X, y, members, oof = diabetes_members
    # Weights that disagree with the OOF blend (the worst member heaviest): the ranking must
    # come from greedy selection on the OOF predictions, not from the weights.
    members = [dataclasses.replace(m, weight=w) for m, w in zip(members, [0.2, 0.3, 0.5],
                                                                   strict=True)]
    ensemble = with_fuser(members, oof, y, WeightedAverage())
    order = GreedySelector(max_iter=50).fit(oof, y).order_
    first_two = list(dict.fromkeys(int(i) for i in order))[:2]
    assert len(first_two) == 2  # greedy blends two members here, so the test is informative
    trimmed = trim_ensemble(ensemble, max_members=2, oof_predictions=oof, y=y)
    assert sorted(m.number for m in trimmed.members) == sorted(members[i].number for i in first_two)


def test_trim_to_all_members_returns_the_ensemble(diabetes_members):
    X, y, members, oof = diabetes_members
    ensemble = with_fuser(members, oof, y, WeightedAverage())
    assert trim_ensemble(ensemble, max_members=5) is ensemble


# -- trim_ensemble: latency budget ----------------------------------------------------------------
class _Delayed(ClassifierMixin, BaseEstimator):
    """A fitted classifier whose predict_proba first sleeps: a known minimum latency."""

    def __init__(self, *, estimator: Any = None, delay: float = 0.0) -> None:
        self.estimator = estimator
        self.delay = delay

    @property
    def classes_(self) -> np.ndarray:
        return self.estimator.classes_

    def predict_proba(self, X: Any) -> np.ndarray:
        time.sleep(self.delay)
        return self.estimator.predict_proba(X)


def test_latency_budget_skips_slow_members(cancer_members):
    X, y, members, oof = cancer_members
    X, delay = X[:200], 0.3  # large enough that a busy machine cannot blur fast and slow
    # Only logistic is fast; the others sleep at every call. The slowest member is the
    # heaviest, so the budget must skip members, not stop at the first one over it.
    slowed = [dataclasses.replace(m, weight=w, models=m.models if m.family == "logistic" else
                                  [_Delayed(estimator=f, delay=delay) for f in m.models])
              for m, w in zip(members, [0.2, 0.3, 0.5], strict=True)]
    ensemble = with_fuser(slowed, oof, y, WeightedAverage())
    alone = with_fuser(slowed[:1], oof[:1], y, WeightedAverage())
    fast = prediction_cost(alone, X)["seconds_per_row"].iloc[-1]
    slow_bound = 3 * delay / len(X)  # three fold models, each sleeping once per batch
    assert fast < slow_bound / 4, fast
    budget = float(np.sqrt(fast * slow_bound))
    trimmed = trim_ensemble(ensemble, latency_budget=budget, X=X)
    assert [m.family for m in trimmed.members] == ["logistic"]
    assert trimmed.weights.tolist() == [1.0]
    assert trimmed.members[0].models is members[0].models


def test_generous_budget_and_member_cap_combine(cancer_members):
    X, y, members, oof = cancer_members
    ensemble = with_fuser(members, oof, y, WeightedAverage())
    trimmed = trim_ensemble(ensemble, max_members=2, latency_budget=1.0, X=X[:50], repeats=1)
    assert [m.family for m in trimmed.members] == ["logistic", "knn"]


def test_impossible_budget_names_the_fastest_member(cancer_members):
    X, y, members, oof = cancer_members
    ensemble = with_fuser(members, oof, y, WeightedAverage())
    # Which member measures fastest depends on the machine's load (logistic usually; knn
    # when another process ran during logistic's single timing), so any member may be named.
    names = "|".join(f"#{m.number}, {m.family}" for m in ensemble.members)
    with pytest.raises(ValueError, match=rf"fastest member \(({names})\).*measured "
                                         r"[0-9.e-]+ seconds per row\. Got 1e-12 instead"):
        trim_ensemble(ensemble, latency_budget=1e-12, X=X[:50], repeats=1)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "'max_members' or 'latency_budget' parameter must be set"),
        ({"max_members": 0}, "'max_members' parameter must be a positive int"),
        ({"max_members": 1.0}, "'max_members' parameter must be a positive int"),
        ({"latency_budget": -1.0, "X": "x"}, "'latency_budget' parameter must be a positive"),
        ({"latency_budget": float("nan"), "X": "x"}, "'latency_budget' parameter must be"),
        ({"latency_budget": 1.0}, "'X' parameter must be a batch of rows"),
        ({"max_members": 1, "y": [0, 1]}, "must be given together. Got None for 'oof_predictions'"),
    ],
)
def test_trim_rejects_bad_arguments(cancer_members, kwargs, message):
    X, y, members, oof = cancer_members
    ensemble = with_fuser(members, oof, y, WeightedAverage())
    with pytest.raises(ValueError, match=message):
        trim_ensemble(ensemble, **kwargs)


def test_trim_rejects_misaligned_oof(cancer_members):
    X, y, members, oof = cancer_members
    ensemble = with_fuser(members, oof, y, WeightedAverage())
    with pytest.raises(ValueError, match="'oof_predictions' parameter must have shape"):
        trim_ensemble(ensemble, max_members=1, oof_predictions=oof[:2], y=y)
    with pytest.raises(ValueError, match="'y' parameter must be a 1-D array"):
        trim_ensemble(ensemble, max_members=1, oof_predictions=oof, y=y[:-1])
