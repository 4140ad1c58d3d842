"""No parameter combination fails late or silently does nothing (issue 15, part 4)."""

from __future__ import annotations

import numpy as np
import optuna
import pytest
from sklearn.datasets import load_breast_cancer

import ensemble_hpo.fusion._cv as fusion_cv
import ensemble_hpo.selection._crossval as selection_cv
from ensemble_hpo import EnsembleClassifier
from ensemble_hpo.persistence import UntrustedModelError

QUICK = dict(models=["logistic"], n_trials=2, cv=3, random_state=0, warm_start_configs=None)


@pytest.fixture(scope="module")
def cancer():
    X, y = load_breast_cancer(return_X_y=True)
    return X[:200], y[:200]


@pytest.mark.parametrize("params, message", [
    (dict(storage="sqlite:///unused.db"), "'run_dir' parameter must be set when 'storage' is"),
    (dict(pruner=optuna.pruners.MedianPruner(), trial_timeout=30.0), "'pruner' parameter has no effect"),
    (dict(backend="dask"), "'run_dir' parameter must be set with a Dask backend"),
])
def test_combinations_that_would_fail_late_fail_before_training(cancer, params, message, tmp_path,
                                                                 monkeypatch):
    monkeypatch.chdir(tmp_path)
    trained = []
    monkeypatch.setattr("ensemble_hpo.population._evaluate.CandidateEvaluator.evaluate",
                        lambda *a, **k: trained.append(1))
    with pytest.raises(ValueError, match=message):
        EnsembleClassifier(**{**QUICK, **params}).fit(*cancer)
    assert not trained
    assert not (tmp_path / "unused.db").exists()


def test_storage_with_a_run_dir_refits_from_the_folder(cancer, tmp_path):
    # The case: storage without run_dir failed on the second fit ("artifacts missing").
    params = dict(QUICK, storage=f"sqlite:///{tmp_path / 'study.db'}", run_dir=str(tmp_path / "run"))
    first = EnsembleClassifier(**params).fit(*cancer)
    second = EnsembleClassifier(**params).fit(*cancer)
    assert (second.leaderboard_["status"] == "ok").all()
    assert second.cv_score_ == pytest.approx(first.cv_score_)


def _checked(original, seen):
    def group_folds(n_splits, y, groups, **kwargs):
        folds = original(n_splits, y, groups, **kwargs)
        for train, valid in folds:
            assert not set(groups[train]) & set(groups[valid]), "a group on both sides"
        seen.append(len(y))
        return folds
    return group_folds


def test_groups_reach_stacking_and_greedy_cv_inner_splits(cancer, monkeypatch):
    X, y = cancer
    groups = np.arange(len(y)) // 8  # 25 groups of 8 neighbouring rows
    stacking_seen, selection_seen = [], []
    monkeypatch.setattr(fusion_cv, "group_folds", _checked(fusion_cv.group_folds, stacking_seen))
    monkeypatch.setattr(selection_cv, "group_folds",
                        _checked(selection_cv.group_folds, selection_seen))
    model = EnsembleClassifier(models=["logistic", "knn"], n_trials=4, cv=3, random_state=0,
                               selection="greedy_cv", fusion="stacking").fit(X, y, groups=groups)
    # Once on all rows and once per outer fold (nested score), for the selector and the fuser.
    assert len(selection_seen) >= 1 + 3 and len(stacking_seen) >= 1 + 3
    assert len(y) in selection_seen and len(y) in stacking_seen
    assert np.isfinite(model.cv_score_)
    stacking_seen.clear()
    model.reselect(X, y, groups=groups)
    assert stacking_seen


def test_groups_of_the_wrong_length_are_refused_by_fusers_and_selectors():
    from ensemble_hpo.fusion import Stacking
    from ensemble_hpo.selection import GreedySelector

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 40)
    P = np.stack([np.column_stack([1 - p, p]) for p in rng.uniform(0.1, 0.9, (3, 40))])
    with pytest.raises(ValueError, match="'groups' parameter must have shape"):
        Stacking().fit(P, y, groups=np.zeros(39))
    with pytest.raises(ValueError, match="'groups' parameter must have shape"):
        GreedySelector().fit(P, y, groups=np.zeros(39))


def test_a_foreign_run_folder_is_refused_unless_trusted(cancer, tmp_path, monkeypatch):
    run_dir = str(tmp_path / "run")
    EnsembleClassifier(run_dir=run_dir, **QUICK).fit(*cancer)
    # A teammate's folder: signed with another key than this user's.
    monkeypatch.setenv("ENSEMBLE_HPO_KEY_FILE", str(tmp_path / "other" / "signing.key"))
    with pytest.raises(UntrustedModelError, match="trusted=True"):
        EnsembleClassifier(run_dir=run_dir, **QUICK).fit(*cancer)
    model = EnsembleClassifier(run_dir=run_dir, trusted=True, **QUICK).fit(*cancer)
    assert (model.leaderboard_["status"] == "ok").all()


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_groups_reach_the_boosters_early_stopping_split(cancer, monkeypatch, task):
    from ensemble_hpo import EnsembleRegressor
    from ensemble_hpo.spaces import _early_stopping

    X, y = cancer
    groups = np.arange(len(y)) // 8
    calls = []
    original = _early_stopping.group_holdout

    def recording(fold_groups, fraction, random_state=None):
        split = original(fold_groups, fraction, random_state)
        fit, val = split
        assert not set(fold_groups[fit]) & set(fold_groups[val]), "a group on both sides"
        calls.append(len(fold_groups))
        return split

    monkeypatch.setattr(_early_stopping, "group_holdout", recording)
    cls = EnsembleClassifier if task == "classification" else EnsembleRegressor
    target = y if task == "classification" else y + np.random.default_rng(0).normal(0, 0.1, len(y))
    model = cls(models=["hist_gradient_boosting", "xgboost"], n_trials=2, cv=3, random_state=0,
                warm_start_configs="portfolio").fit(X, target, groups=groups)
    assert (model.leaderboard_["status"] == "ok").all()
    # Every fold of both boosters held its early-stopping rows out by whole groups.
    assert len(calls) >= 2 * 3 and set(calls) <= {len(train) for train, _ in model.cv_splits_}
