"""Every reported score is honest and in the user's metric (issue 15, part 2)."""

from __future__ import annotations

import time

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer, load_diabetes

from ensemble_hpo import EnsembleClassifier, EnsembleRegressor
from ensemble_hpo.fusion import WeightedAverage
from ensemble_hpo.metrics import get_prediction_scorer

FAST = dict(n_trials=6, cv=3, random_state=0)


@pytest.fixture(scope="module")
def cancer():
    return load_breast_cancer(return_X_y=True, as_frame=True)


def _oof(model):
    numbers = [c.number for c in model.population_.completed()]
    return model.population_.predictions(numbers).astype(np.float64)


def _nested_average_score(model, y, scoring):
    """Oracle: select on the other folds' out-of-fold rows, average, score the held-out rows."""
    predictions = _oof(model)
    fused = np.empty(predictions.shape[1:])
    for train, valid in model.cv_splits_:
        selector = clone(model.selector_).fit(predictions[:, train], y[train])
        fused[valid] = np.tensordot(selector.weights_, predictions[:, valid], axes=1)
    return get_prediction_scorer(scoring, "classification")(y, fused)


def test_cv_score_repeats_selection_inside_the_outer_folds(cancer):
    X, y = cancer
    model = EnsembleClassifier(**FAST).fit(X, y)
    y_enc = np.asarray(y)
    assert model.cv_score_ == pytest.approx(_nested_average_score(model, y_enc, None), rel=1e-6)
    # The in-sample selection score keeps its own name and differs from the honest one.
    assert model.selection_score_ != pytest.approx(model.cv_score_, rel=1e-9)
    assert model.selection_score_ >= model.best_score_ - 1e-9


def test_cv_score_is_not_optimistic_on_a_target_with_no_signal(cancer):
    X, _ = cancer
    y = np.random.default_rng(0).integers(0, 2, len(X))
    model = EnsembleClassifier(models=["logistic", "knn", "random_forest"], n_trials=12, cv=3,
                               random_state=0).fit(X, y)
    # Greedy selection on the rows it scores finds noise that cancels; held out it does not.
    assert model.selection_score_ > model.cv_score_ + 1e-3
    assert model.cv_score_ < -0.68  # log loss of coin flips is 0.693


@pytest.mark.parametrize("fusion", ["stacking", "hard_voting", "optimized", "average"])
def test_cv_score_is_the_fitted_fuser_in_the_users_metric(cancer, fusion):
    X, y = cancer
    model = EnsembleClassifier(scoring="accuracy", fusion=fusion, **FAST).fit(X, y)
    table = model.fusion_comparison_.set_index("fusion")["cv_score"]
    assert 0.5 < model.cv_score_ <= 1.0  # an accuracy, not a log loss
    assert model.cv_score_ == table[type(model.ensemble_.fuser).__name__]
    assert table.between(0.0, 1.0).all()
    fuser = model.ensemble_.fuser
    if fusion == "stacking":
        assert fuser.scoring == "accuracy" and 0.5 < fuser.cv_score_ <= 1.0
    if fusion == "optimized":
        assert fuser.loss == "accuracy"


@pytest.mark.parametrize("fusion", ["hard_voting", "soft_voting", "stacking"])
def test_the_in_sample_score_is_of_the_fitted_ensemble(cancer, fusion):
    # Audit: selection_score_ was the selection-weighted average's score whatever the fusion
    # (hard voting: -0.0959 shown, the fitted ensemble's in-sample log loss was -0.414).
    X, y = cancer
    model = EnsembleClassifier(fusion=fusion, **FAST).fit(X, y)
    members = [m.number for m in model.ensemble_.members]
    fused = model.ensemble_.fuser.combine(model.population_.predictions(members).astype(np.float64))
    expected = get_prediction_scorer(None, "classification")(np.asarray(y), fused)
    assert model.selection_score_ == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("scoring", ["neg_root_mean_squared_error", "r2"])
def test_learned_fusers_fit_in_an_equivalent_analytic_loss(scoring):
    X, y = load_diabetes(return_X_y=True)
    model = EnsembleRegressor(models=["ridge", "knn"], fusion="optimized", scoring=scoring,
                              **FAST).fit(X, y)
    assert model.ensemble_.fuser.loss == "squared_error"  # the same optimum, exact gradients
    assert model.cv_score_ == model.fusion_comparison_.set_index("fusion")["cv_score"]["OptimizedWeights"]


def test_fusion_comparison_scores_fixed_weight_fusers_on_held_out_rows(cancer):
    X, y = cancer
    model = EnsembleClassifier(fusion="stacking", **FAST).fit(X, y)
    table = model.fusion_comparison_.set_index("fusion")["cv_score"]
    # WeightedAverage's row is the nested score, not the in-sample selection score.
    assert table["WeightedAverage"] == pytest.approx(
        _nested_average_score(model, np.asarray(y), None), rel=1e-6)
    assert table["WeightedAverage"] != pytest.approx(model.selection_score_, rel=1e-9)


def test_a_custom_fuser_is_compared_beside_the_defaults(cancer):
    X, y = cancer
    model = EnsembleClassifier(fusion=WeightedAverage(), **FAST).fit(X, y)
    assert set(model.fusion_comparison_["fusion"]) == {
        "WeightedAverage", "SoftVoting", "HardVoting", "OptimizedWeights", "Stacking"}


def test_out_of_time_fit_still_scores_its_own_fuser_and_skips_the_rest(cancer, monkeypatch):
    # The budget runs out before selection. Simulated (a 0.5 s budget was flaky under load:
    # sometimes no candidate finished at all).
    X, y = cancer
    select = EnsembleClassifier._select

    def select_after_the_deadline(self, population, selector, fuser, data, deadline, **kwargs):
        return select(self, population, selector, fuser, data, time.time() - 1.0, **kwargs)

    monkeypatch.setattr(EnsembleClassifier, "_select", select_after_the_deadline)
    model = EnsembleClassifier(models=["logistic"], n_trials=2, cv=3, random_state=0,
                               fusion="stacking").fit(X, y)
    assert np.isfinite(model.cv_score_)
    assert "Stacking" in set(model.fusion_comparison_["fusion"])
    assert len(model.fusion_comparison_) < 5
