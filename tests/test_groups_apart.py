"""With ``groups``, no fold may hold rows of one group on both sides, whatever made the folds."""

from __future__ import annotations

import time

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import GroupKFold, KFold, RepeatedStratifiedKFold

from ensemble_hpo import EnsembleClassifier
from ensemble_hpo._folds import make_folds

X, Y = load_breast_cancer(return_X_y=True)
GROUPS = np.arange(len(Y)) // 5  # 114 groups of 5 consecutive rows


def _model(cv, tmp_path) -> EnsembleClassifier:
    return EnsembleClassifier(models=["logistic"], n_trials=2, cv=cv, random_state=0,
                              warm_start_configs=None, run_dir=str(tmp_path / "run"))


@pytest.mark.parametrize("cv", [KFold(5, shuffle=True, random_state=0),
                                RepeatedStratifiedKFold(n_splits=5, n_repeats=2, random_state=0)],
                         ids=["KFold", "RepeatedStratifiedKFold"])
def test_a_splitter_that_ignores_groups_is_refused_before_training(cv, tmp_path):
    start = time.perf_counter()
    with pytest.raises(ValueError, match=r"The 'cv' parameter must keep each group on one side "
                                         r"of every fold .* Got \w*KFold, which ignores 'groups'"):
        _model(cv, tmp_path).fit(X, Y, groups=GROUPS)
    assert time.perf_counter() - start < 5
    # Nothing trained, nothing half-written: no candidate in the run folder.
    assert not list((tmp_path / "run").glob("artifacts/*"))


def test_a_group_splitter_and_an_int_cv_keep_groups_apart(tmp_path):
    for cv in (GroupKFold(4), 4):
        model = _model(cv, tmp_path / str(cv)).fit(X, Y, groups=GROUPS)
        for train, valid in model.cv_splits_:
            assert not np.intersect1d(GROUPS[train], GROUPS[valid]).size


def test_explicit_folds_are_checked_against_groups():
    halves = [(np.arange(0, 300), np.arange(300, len(Y))), (np.arange(300, len(Y)), np.arange(0, 300))]
    assert len(make_folds(halves, Y, task="classification", groups=GROUPS)) == 2  # 300 = 60 groups
    split_group = [(np.arange(0, 302), np.arange(302, len(Y))),
                   (np.arange(302, len(Y)), np.arange(0, 302))]
    with pytest.raises(ValueError, match=r"Got list, which has 1 group\(s\) on both sides of fold 0 "
                                         r"\(e.g. 60\)"):
        make_folds(split_group, Y, task="classification", groups=GROUPS)
    # Without groups the same folds are fine.
    assert len(make_folds(split_group, Y, task="classification")) == 2


def test_a_fusers_own_splitter_that_mixes_groups_fails_before_the_search(tmp_path):
    from ensemble_hpo.fusion import Stacking

    model = _model(GroupKFold(4), tmp_path).set_params(fusion=Stacking(cv=KFold(3)))
    start = time.perf_counter()
    with pytest.raises(ValueError, match=r"Stacking: The 'cv' parameter must keep each group"):
        model.fit(X, Y, groups=GROUPS)
    assert time.perf_counter() - start < 5
    assert not list((tmp_path / "run").glob("artifacts/*"))
    model.set_params(fusion=Stacking(cv=GroupKFold(3))).fit(X, Y, groups=GROUPS)


def test_early_stopping_holdouts_keep_every_class_in_the_fitting_part():
    """A class held by one group must not be held out whole by the early-stopping split."""
    from ensemble_hpo.spaces._early_stopping import group_holdout

    y = np.repeat([0, 1, 2], [40, 40, 10])
    groups = np.concatenate([np.arange(40) // 4, 10 + np.arange(40) // 4, [20] * 10])
    for seed in range(30):
        fit, val = group_holdout(groups, 0.3, seed, y=y)
        assert set(y[fit]) == {0, 1, 2}
        assert not set(groups[fit]) & set(groups[val]) and len(val)
        assert sorted(np.concatenate([fit, val])) == list(range(len(y)))


@pytest.mark.parametrize("seed", range(6))
def test_boosters_with_groups_learn_a_class_that_one_group_holds(seed):
    """Before, XGBoost fitted without the rows of a class the early-stopping split held out
    whole, and never predicted it (P = 0.000 against 0.917); HistGradientBoosting failed on
    an unseen label."""
    from xgboost import XGBClassifier

    from ensemble_hpo.spaces._early_stopping import (
        EarlyStoppingClassifier,
        RareClassHistGradientBoostingClassifier,
    )

    rng = np.random.default_rng(seed)
    X = rng.normal(size=(100, 4))
    y = np.repeat([2, 0, 1], [10, 45, 45])
    X[:10] += 3.0  # the class held by group 0 is easy to recognise
    groups = np.concatenate([[0] * 10, 1 + np.arange(90) // 10])
    xgb = EarlyStoppingClassifier(estimator=XGBClassifier(n_estimators=50, n_jobs=1),
                                  validation_fraction=0.2, random_state=seed)
    hgb = RareClassHistGradientBoostingClassifier(early_stopping=True, validation_fraction=0.2,
                                                  random_state=seed)
    for model in (xgb, hgb):
        model.fit(X, y, groups=groups)
        assert list(model.classes_) == [0, 1, 2]
        assert model.predict_proba(X[:10])[:, 2].mean() > 0.2  # 0 when fitted without it


def test_svm_with_groups_calibrates_when_a_fold_misses_a_class():
    """Every svm candidate failed: its calibration folds kept groups whole and one missed a class."""
    rng = np.random.default_rng(7)
    X = rng.normal(size=(100, 4))
    y = np.array(["rare"] * 10 + ["a"] * 45 + ["b"] * 45)
    X[:10] += 3.0
    groups = np.concatenate([[0] * 10, 1 + np.arange(90) // 10])
    clf = EnsembleClassifier(models=["svm"], n_trials=3, cv=3, random_state=7,
                             warm_start_configs="portfolio").fit(X, y, groups=groups)
    assert (clf.leaderboard_["status"] == "ok").all()


def test_the_ensemble_objectives_selection_keeps_groups_apart(monkeypatch):
    """Audit: objective="ensemble" fitted greedy_cv's held-out folds without the groups."""
    from ensemble_hpo.selection import CrossValidatedSelector

    seen = []
    fit = CrossValidatedSelector.fit

    def recording(self, predictions, y, sample_weight=None, groups=None):
        seen.append(groups is not None and len(groups) == len(y))
        return fit(self, predictions, y, sample_weight=sample_weight, groups=groups)

    monkeypatch.setattr(CrossValidatedSelector, "fit", recording)
    EnsembleClassifier(models=["logistic", "knn"], n_trials=4, cv=3, random_state=0, search="random",
                       selection="greedy_cv", objective="ensemble").fit(X[:200], Y[:200],
                                                                         groups=GROUPS[:200])
    assert len(seen) > 4 and all(seen)


def test_leave_one_group_out_is_a_cv_fit_takes():
    """Audit: its fold count needs the groups, and fit failed before any check."""
    from sklearn.model_selection import LeaveOneGroupOut

    groups = np.arange(200) // 40  # 5 groups
    model = EnsembleClassifier(models=["logistic"], n_trials=2, cv=LeaveOneGroupOut(),
                               random_state=0, warm_start_configs=None).fit(X[:200], Y[:200],
                                                                             groups=groups)
    assert len(model.cv_splits_) == 5
    for train, valid in model.cv_splits_:
        assert not set(groups[train]) & set(groups[valid])


def test_a_fold_whose_held_out_rows_all_weigh_zero_is_refused_before_training():
    """Audit: a zero-weight group kept whole made one fold's held-out rows weigh 0, and every
    candidate failed after training."""
    from sklearn.model_selection import GroupKFold

    groups = np.arange(300) // 100  # 3 groups
    weights = np.where(groups == 1, 0.0, 1.0)
    start = time.perf_counter()
    with pytest.raises(ValueError, match=r"training and the held-out rows of every .* Got folds "):
        EnsembleClassifier(models=["logistic"], n_trials=2, cv=GroupKFold(3)).fit(
            X[:300], Y[:300], sample_weight=weights, groups=groups)
    assert time.perf_counter() - start < 5


def test_stacking_with_too_few_groups_per_fold_is_refused_before_training(tmp_path):
    """Audit: fusion="stacking" with 2 groups and cv=2 failed after the whole search: in the
    nested estimate each fold's training rows hold one group, too few for its group folds."""
    two_groups = np.arange(len(Y)) % 2
    model = EnsembleClassifier(models=["logistic"], n_trials=2, cv=2, random_state=0,
                               warm_start_configs=None, fusion="stacking",
                               run_dir=str(tmp_path / "run"))
    with pytest.raises(ValueError, match="Stacking splits by group inside each fold .* Got 1"):
        model.fit(X, Y, groups=two_groups)
    assert not list((tmp_path / "run").glob("artifacts/*"))
    three_groups = np.arange(len(Y)) % 3
    model.set_params(cv=3, run_dir=None).fit(X, Y, groups=three_groups)
    assert np.isfinite(model.cv_score_)
