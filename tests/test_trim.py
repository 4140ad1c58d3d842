"""trim() selects again through the one select-and-fuse step (issue 18), capped by members or latency."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer

from ensemble_hpo import EnsembleClassifier

PARAMS = dict(models=["logistic", "knn", "random_forest"], search="random", n_trials=8, cv=3,
              random_state=0)


@pytest.fixture(scope="module")
def cancer():
    X, y = load_breast_cancer(return_X_y=True)
    return X[:300], y[:300]


@pytest.fixture
def kept_run(cancer, tmp_path):
    return EnsembleClassifier(**PARAMS, run_dir=str(tmp_path / "run")).fit(*cancer)


def test_trim_of_a_run_folder_reselects_with_a_cap_and_an_honest_score(kept_run, cancer):
    X, y = cancer
    model = kept_run
    candidates = len(model.leaderboard_)
    assert len(model.ensemble_) >= 2, "the fixture must have something to trim"
    model.trim(max_members=1)
    assert len(model.ensemble_) == 1
    assert len(model.leaderboard_) == candidates  # every candidate stays on the leaderboard
    assert model.leaderboard_["weight"].sum() == pytest.approx(1.0)
    assert np.isfinite(model.cv_score_)
    # One member: the nested estimate reselects the best single candidate in each outer fold,
    # which is at most as good as the best candidate's own score on all of them.
    assert model.cv_score_ <= model.best_score_ + 1e-12
    assert list(model.fusion_comparison_["fusion"]) == [type(model.ensemble_.fuser).__name__]
    assert model.predict_proba(X[:5]).shape == (5, 2)


def test_trim_to_a_latency_budget(kept_run, cancer, monkeypatch):
    # A deterministic cost model (one second per member and row) instead of noisy timings.
    monkeypatch.setattr("ensemble_hpo._select_fuse.ensemble_latency",
                        lambda ensemble, X: float(len(ensemble)))
    X, _ = cancer
    model = kept_run
    members = len(model.ensemble_)
    model.trim(latency_budget=members - 0.5, X=X[:50])
    assert len(model.ensemble_) == members - 1
    assert np.isfinite(model.cv_score_)


def test_an_impossible_latency_budget_leaves_the_estimator_unchanged(kept_run, cancer):
    X, _ = cancer
    model = kept_run
    ensemble, board = model.ensemble_, model.leaderboard_.copy()
    with pytest.raises(ValueError, match="'latency_budget' parameter must be at least"):
        model.trim(latency_budget=1e-12, X=X[:50])
    assert model.ensemble_ is ensemble
    assert model.leaderboard_.equals(board)


def test_reselect_keeps_every_candidate_on_the_leaderboard(cancer):
    X, y = cancer
    model = EnsembleClassifier(**PARAMS).fit(X, y)  # in memory: only members' models kept
    candidates = len(model.leaderboard_)
    model.reselect(X, y, selection="best")
    assert len(model.leaderboard_) == candidates
    assert model.leaderboard_["weight"].sum() == pytest.approx(1.0)
