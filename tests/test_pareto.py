"""The accuracy-latency front (issue 19): pareto_front_, keep_front_point and the selector behind it."""

from __future__ import annotations

import copy
import dataclasses
import time

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.datasets import load_breast_cancer, load_diabetes

from ensemble_hpo import EnsembleClassifier, EnsembleRegressor
from ensemble_hpo._pareto import FRONT_COLUMNS, _front, accuracy_latency_front, pick_point
from ensemble_hpo.population import Population
from ensemble_hpo.selection import CostAwareSelector, GreedySelector

PARAMS = dict(models=["knn", "random_forest", "extra_trees"], search="random",
              n_trials=16, cv=3, random_state=0)


@pytest.fixture(scope="module")
def cancer_data():
    X, y = load_breast_cancer(return_X_y=True)
    return X[:360], y[:360]


# Without logistic regression: on these 360 rows one logistic model beats every ensemble on
# held-out rows, and the front is a single point. Deterministic costs instead of timings, which
# vary with the machine's load: seconds per row by family, distinct per candidate.
_FAMILY_COST = {"knn": 2e-5, "random_forest": 6e-5, "extra_trees": 4e-5}


def _fixed_costs(population):
    return np.array([_FAMILY_COST[c.family] * (1 + c.number / 100)
                     for c in population.completed()])


def _fixed_timer(self, population, X, n_classes):
    family = {c.number: c.family for c in population.candidates}
    return lambda numbers: [_FAMILY_COST[family[n]] * (1 + n / 100) for n in numbers]


def _fix_timings(patch: pytest.MonkeyPatch) -> None:
    patch.setattr("ensemble_hpo._pareto.candidate_costs", _fixed_costs)
    patch.setattr("ensemble_hpo._base_ensemble.candidate_costs", _fixed_costs)
    patch.setattr("ensemble_hpo._base_ensemble._BaseEnsemble._member_timer", _fixed_timer)


@pytest.fixture(scope="module")
def fitted(cancer_data):
    with pytest.MonkeyPatch.context() as patch:
        _fix_timings(patch)
        return EnsembleClassifier(**PARAMS).fit(*cancer_data)


@pytest.fixture
def model(fitted, monkeypatch):
    # keep_front_point changes the estimator: each test gets its own copy of the fitted one,
    # and selects again with the costs the front was built with.
    _fix_timings(monkeypatch)
    return copy.deepcopy(fitted)


# -- the selector ------------------------------------------------------------------------------
def _library(seed: int, n_models: int = 6, n_rows: int = 400):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n_rows)
    logits = (2 * y - 1) * rng.uniform(0.2, 2.0, (n_models, 1)) + rng.normal(size=(n_models, n_rows))
    p1 = 1 / (1 + np.exp(-logits))
    return np.stack([1 - p1, p1], axis=-1).astype(np.float32), y


@pytest.mark.parametrize("seed", range(4))
def test_a_zero_penalty_is_plain_greedy_selection(seed):
    preds, y = _library(seed)
    costs = np.random.default_rng(seed).uniform(1, 5, len(preds))
    plain = GreedySelector(max_iter=20).fit(preds, y)
    free = CostAwareSelector(costs=costs, penalty=0.0, max_iter=20).fit(preds, y)
    np.testing.assert_array_equal(free.weights_, plain.weights_)
    assert free.cost_ == pytest.approx(costs[plain.weights_ > 0].sum())


def test_a_large_penalty_keeps_the_best_model_per_cost():
    preds, y = _library(7)
    costs = np.arange(1.0, len(preds) + 1)
    selector = CostAwareSelector(costs=costs, penalty=1e3, max_iter=10).fit(preds, y)
    # One member, the one maximising score - penalty * cost: the cheapest model.
    assert np.flatnonzero(selector.weights_).tolist() == [0]


def test_a_penalty_never_makes_the_ensemble_costlier():
    preds, y = _library(3, n_models=10)
    costs = np.random.default_rng(3).uniform(1, 5, len(preds))
    spent = [CostAwareSelector(costs=costs, penalty=p, max_iter=25).fit(preds, y).cost_
             for p in (0.0, 0.001, 0.01, 0.1)]
    assert spent == sorted(spent, reverse=True)
    assert spent[-1] < spent[0]


@pytest.mark.parametrize("costs", [None, [1.0, 2.0], [1.0] * 5 + [-1.0], [1.0] * 5 + [np.nan]])
def test_bad_costs_are_refused(costs):
    preds, y = _library(0)
    with pytest.raises(ValueError, match="The 'costs' parameter must be 6 finite non-negative"):
        CostAwareSelector(costs=costs).fit(preds, y)


# -- the front -----------------------------------------------------------------------------------
def _score(front: pd.DataFrame) -> pd.Series:
    return front["cv_score"] if front["cv_score"].notna().all() else front["selection_score"]


def test_fit_records_a_front_of_non_dominated_points(fitted):
    front = fitted.pareto_front_
    assert list(front.columns) == FRONT_COLUMNS
    assert set(front["final_models"]) == {"folds", "refit"}
    assert front["cv_score"].notna().all()  # no time budget: every point is cross-validated
    for _, part in front.groupby("final_models"):
        # Cheapest first, and each point scores strictly better than every cheaper one.
        assert part["seconds_per_row"].is_monotonic_increasing
        assert part["cv_score"].is_monotonic_increasing and part["cv_score"].is_unique
    assert (front["seconds_per_row"] > 0).all()
    assert (front["n_members"] == front["members"].map(len)).all()
    assert all(abs(sum(w) - 1.0) < 1e-9 for w in front["weights"])
    # Scores are in the user's metric (log loss by default: negative, greater is better).
    assert (front["cv_score"] < 0).all()


def test_refit_points_cost_a_fold_share_of_their_twins(fitted):
    front = fitted.pareto_front_
    folds = front[front["final_models"] == "folds"].set_index("members")
    refit = front[front["final_models"] == "refit"].set_index("members")
    shared = folds.index.intersection(refit.index)
    assert len(shared) > 0
    np.testing.assert_allclose(refit.loc[shared, "seconds_per_row"],
                               folds.loc[shared, "seconds_per_row"] / 3)
    np.testing.assert_allclose(refit.loc[shared, "cv_score"], folds.loc[shared, "cv_score"])


def test_the_front_spans_a_real_trade_off(fitted):
    folds = fitted.pareto_front_.query("final_models == 'folds'")
    assert len(folds) >= 2, "the fixture's front should have several points"
    assert folds["n_members"].iloc[0] < folds["n_members"].iloc[-1]
    # Costs are the members' summed costs (here the fixed ones).
    for _, row in folds.iterrows():
        family = {c.number: c.family for c in fitted.population_.candidates}
        expected = sum(_FAMILY_COST[family[n]] * (1 + n / 100) for n in row["members"])
        assert row["seconds_per_row"] == pytest.approx(expected)



def test_keeping_a_point_by_latency_budget(model, cancer_data):
    X, _ = cancer_data
    front = model.pareto_front_
    folds = front[front["final_models"] == "folds"]
    budget = float(folds["seconds_per_row"].iloc[-2]) * 1.0001
    model.keep_front_point(latency_budget=budget, final_models="folds")
    row = folds.iloc[-2]
    assert sorted(m.number for m in model.ensemble_.members) == sorted(row["members"])
    assert model.cv_score_ == pytest.approx(row["cv_score"])
    assert all(len(m.models) == 3 for m in model.ensemble_.members)
    assert not hasattr(model, "prediction_cost_")  # described the old ensemble
    assert model.predict_proba(X[:4]).shape == (4, 2)
    assert model.leaderboard_["weight"].sum() == pytest.approx(1.0)
    # The other points stay keepable: their members' models were not dropped.
    model.keep_front_point(0)
    model.keep_front_point(folds.index[-1])
    assert model.cv_score_ == pytest.approx(folds["cv_score"].iloc[-1])
    assert model.predict_proba(X[:4]).shape == (4, 2)


def test_the_budget_pick_is_the_best_point_that_fits(fitted):
    front = fitted.pareto_front_
    for budget in np.geomspace(front["seconds_per_row"].min(), front["seconds_per_row"].max(), 7):
        row = front.iloc[pick_point(front, budget)]
        fits = front[front["seconds_per_row"] <= budget]
        assert row["seconds_per_row"] <= budget
        assert row["cv_score"] == fits["cv_score"].max()


def test_keeping_a_refit_point_retrains_one_model_per_member(model, cancer_data):
    X, y = cancer_data
    front = model.pareto_front_
    label = front.index[front["final_models"] == "refit"][-1]
    with pytest.raises(ValueError, match="The 'X' and 'y' parameters must be the training data"):
        model.keep_front_point(label)
    with pytest.raises(ValueError, match="needs the X, y, sample_weight and groups given to fit"):
        model.keep_front_point(label, X=X[::-1], y=y[::-1])
    model.keep_front_point(label, X=X, y=y)
    assert sorted(m.number for m in model.ensemble_.members) == sorted(front.loc[label, "members"])
    assert all(len(m.models) == 1 for m in model.ensemble_.members)
    assert model.cv_score_ == pytest.approx(front.loc[label, "cv_score"])
    cost = model.prediction_cost_
    assert int(cost["n_models"].iloc[-1]) == front.loc[label, "n_members"]
    assert np.mean(model.predict(X) == y) > 0.9


def test_every_front_member_keeps_its_models_without_a_run_dir(fitted):
    store = fitted.population_.store
    members = {n for point in fitted.pareto_front_["members"] for n in point}
    assert all(store.has_models(n) for n in members)
    # ... and the others are dropped, as before (a run without run_dir keeps few models).
    completed = {c.number for c in fitted.population_.completed()}
    assert any(not store.has_models(n) for n in completed - members - {fitted.best_candidate_.number})


@pytest.mark.parametrize("kwargs, message", [
    ({}, "Exactly one of the 'point' and 'latency_budget'"),
    ({"point": 0, "latency_budget": 1.0}, "Exactly one of the 'point' and 'latency_budget'"),
    ({"point": 999}, "The 'point' parameter must be a row label of pareto_front_"),
    ({"latency_budget": 1e-15}, "The 'latency_budget' parameter must be at least the cheapest"),
    ({"latency_budget": 1.0, "final_models": "bagged"}, "The 'final_models' parameter must be"),
])
def test_bad_front_choices_leave_the_estimator_unchanged(model, kwargs, message):
    before = [m.number for m in model.ensemble_.members]
    with pytest.raises(ValueError, match=message):
        model.keep_front_point(**kwargs)
    assert [m.number for m in model.ensemble_.members] == before
    assert hasattr(model, "prediction_cost_")


def test_a_population_without_timings_has_an_empty_front(fitted):
    # Run folders of older versions recorded no prediction timings.
    population = fitted.population_
    old = Population([dataclasses.replace(c, predict_seconds_per_row=None)
                      for c in population.candidates], population.store)
    data = fitted._stored_selection_data()
    front = accuracy_latency_front(old, data, scoring=None)
    assert front.empty and list(front.columns) == FRONT_COLUMNS


def test_past_the_deadline_points_carry_only_the_in_sample_score(fitted):
    data = fitted._stored_selection_data()
    front = accuracy_latency_front(fitted.population_, data, scoring=None,
                                   deadline=time.time() - 1)
    assert len(front) > 0 and front["cv_score"].isna().all()
    assert front["selection_score"].notna().all()
    # ... and only the unpenalised ensemble is selected (with a metric scored call by call,
    # the sweep took 75 s of a 20 s fit).
    assert front["penalty"].eq(0.0).all() and len(front) <= 2  # it and its refit twin
    full = accuracy_latency_front(fitted.population_, data, scoring=None)
    assert full["penalty"].gt(0).any()


def test_a_regressor_front_is_in_the_users_metric():
    X, y = load_diabetes(return_X_y=True)
    model = EnsembleRegressor(models=["ridge", "knn", "extra_trees"], search="random", n_trials=9,
                              cv=3, scoring="neg_mean_absolute_error", random_state=0).fit(X, y)
    front = model.pareto_front_  # real timings here
    assert len(front) > 0 and np.isfinite(front["seconds_per_row"]).all()
    assert (front["seconds_per_row"] > 0).all()
    # Mean absolute error on diabetes is about 40-60; the score is its negative.
    assert front["cv_score"].between(-80, -30).all()
    cheapest = front["seconds_per_row"].idxmin()
    assert front.loc[cheapest, "final_models"] == "refit"
    model.keep_front_point(latency_budget=float(front["seconds_per_row"].min()), X=X, y=y)
    assert len(model.ensemble_) == front.loc[cheapest, "n_members"]
    assert model.cv_score_ == pytest.approx(front.loc[cheapest, "cv_score"])


# -- the front's invariants on any set of points ---------------------------------------------------
_points = st.lists(st.tuples(st.floats(1e-7, 1e-2), st.floats(-5, 0), st.sampled_from(["folds",
                                                                                      "refit"])),
                   min_size=1, max_size=25)


@given(_points)
@settings(max_examples=200, deadline=None)
def test_the_front_keeps_exactly_the_non_dominated_points(points):
    frame = pd.DataFrame([{"cv_score": s, "selection_score": s, "seconds_per_row": c,
                           "n_members": 1, "members": (i,), "weights": (1.0,),
                           "final_models": k, "penalty": 0.0}
                          for i, (c, s, k) in enumerate(points)], columns=FRONT_COLUMNS)
    front = _front(frame)
    for kind, part in frame.groupby("final_models"):
        kept = front[front["final_models"] == kind]
        for _, row in part.iterrows():
            # Dominated: some other point of its kind is at most as costly and scores better,
            # or as well and is cheaper.
            others = part.drop(index=row.name)
            dominated = ((others["seconds_per_row"] <= row["seconds_per_row"])
                         & (others["cv_score"] > row["cv_score"])).any() or \
                        ((others["seconds_per_row"] < row["seconds_per_row"])
                         & (others["cv_score"] >= row["cv_score"])).any()
            on_front = (kept["members"] == row["members"]).any()
            if dominated:
                assert not on_front
        # Every non-dominated (cost, score) pair is represented on the front.
        best = part.sort_values(["seconds_per_row", "cv_score"], ascending=[True, False])
        assert kept["cv_score"].max() == part["cv_score"].max()
        assert kept["seconds_per_row"].min() == best["seconds_per_row"].iloc[0]
