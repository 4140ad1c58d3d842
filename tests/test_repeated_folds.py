"""Repeated k-fold bagging: a repeated splitter as ``cv`` averages out-of-fold predictions."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import (
    KFold,
    RepeatedKFold,
    RepeatedStratifiedKFold,
    ShuffleSplit,
    StratifiedKFold,
)

from ensemble_hpo import EnsembleClassifier, EnsembleRegressor
from ensemble_hpo._folds import first_partition, make_folds, n_splits_of
from ensemble_hpo._select_fuse import SelectionData
from ensemble_hpo.metrics import get_prediction_scorer
from ensemble_hpo.population import CandidateEvaluator


def test_repeated_splitter_folds_are_kept_only_where_repeats_are_allowed(cancer):
    _, y = cancer
    cv = RepeatedStratifiedKFold(n_splits=4, n_repeats=3, random_state=0)
    folds = make_folds(cv, y, task="classification", repeated=True)
    assert len(folds) == 12
    with pytest.raises(ValueError, match="cover every row exactly once"):
        make_folds(cv, y, task="classification")


def test_uneven_coverage_is_refused_even_with_repeats(cancer):
    _, y = cancer
    with pytest.raises(ValueError, match="the same number of times"):
        make_folds(ShuffleSplit(n_splits=3, random_state=0), y, task="classification",
                   repeated=True)
    # Every row held out twice, but no prefix of folds partitions the rows.
    halves = [(np.arange(1, 10, 2), np.arange(0, 10, 2)), (np.arange(0, 10, 2), np.arange(1, 10, 2))]
    mixed = [halves[0], (np.arange(5, 10), np.arange(5)), halves[1], (np.arange(5), np.arange(5, 10))]
    assert len(make_folds(halves * 2, np.zeros(10), task="regression", repeated=True)) == 4
    with pytest.raises(ValueError, match="the same number of times"):
        make_folds(mixed, np.zeros(10), task="regression", repeated=True)


def test_first_partition_is_the_first_repeat(cancer):
    _, y = cancer
    folds = make_folds(RepeatedKFold(n_splits=5, n_repeats=2, random_state=1), y,
                       task="regression", repeated=True)
    first = first_partition(folds, len(y))
    assert len(first) == 5
    assert sorted(np.concatenate([v for _, v in first]).tolist()) == list(range(len(y)))
    plain = make_folds(5, y, task="classification", random_state=0)
    assert first_partition(plain, len(y)) == plain
    data = SelectionData(y=y, task="classification", splits=folds)
    assert [v.tolist() for _, v in data.outer_folds] == [v.tolist() for _, v in first]


def test_n_splits_of_counts_one_repeat():
    assert n_splits_of(RepeatedStratifiedKFold(n_splits=4, n_repeats=3)) == 4
    assert n_splits_of(RepeatedKFold(n_splits=2, n_repeats=5)) == 2
    assert n_splits_of(KFold(3)) == 3


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_out_of_fold_predictions_average_the_repeats(cancer, task):
    X, y = cancer
    X = X[:, :8]
    estimator = LogisticRegression(max_iter=500) if task == "classification" else Ridge()
    target = y if task == "classification" else X[:, 0] * 3.0 + y
    kwargs = {"task": task, "n_classes": 2 if task == "classification" else None,
              "scorer": get_prediction_scorer(None, task)}
    repeats = [list(StratifiedKFold(3, shuffle=True, random_state=seed).split(X, y)) for seed in (0, 1)]
    alone = [CandidateEvaluator(X=X, y=target, splits=folds, **kwargs).evaluate(estimator)
             for folds in repeats]
    both = CandidateEvaluator(X=X, y=target, splits=repeats[0] + repeats[1], **kwargs).evaluate(estimator)
    expected = (alone[0].predictions.astype(np.float64) + alone[1].predictions) / 2
    np.testing.assert_allclose(both.predictions, expected, rtol=1e-5, atol=1e-6)
    assert len(both.models) == 6 and len(both.fold_scores) == 6
    assert both.fold_scores == alone[0].fold_scores + alone[1].fold_scores
    # Averaging two shuffles' predictions is a bag: its score beats the mean of theirs here.
    assert both.score == pytest.approx(kwargs["scorer"](target, both.predictions))


def test_classifier_with_repeated_folds_bags_every_member(cancer):
    X, y = cancer
    cv = RepeatedStratifiedKFold(n_splits=3, n_repeats=2, random_state=0)
    clf = EnsembleClassifier(models=["logistic", "random_forest"], n_trials=4, cv=cv,
                             random_state=0).fit(X, y)
    assert all(len(m.models) == 6 for m in clf.ensemble_.members)
    assert len(clf.cv_splits_) == 6
    assert np.isfinite(clf.cv_score_) and clf.selection_score_ >= clf.best_score_
    proba = clf.predict_proba(X[:5])
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    # reselect checks the data against the fit's (all twelve folds) and selects again.
    clf.reselect(X, y, selection="best")
    assert len(clf.ensemble_.members) == 1


def test_rare_class_check_counts_the_folds_of_one_repeat(iris):
    X, y = iris
    keep = np.r_[np.flatnonzero(y != 2), np.flatnonzero(y == 2)[:4]]  # 4 rows of class 2
    cv = RepeatedStratifiedKFold(n_splits=4, n_repeats=3, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        clf = EnsembleClassifier(models=["logistic"], n_trials=2, cv=cv, random_state=0)
        clf.fit(X[keep], y[keep])
    assert clf.predict_proba(X[:3]).shape == (3, 3)


def test_regressor_with_repeated_folds_in_a_run_folder_resumes(diabetes, tmp_path):
    X, y = diabetes
    params = {"models": ["ridge"], "n_trials": 3, "random_state": 0, "run_dir": str(tmp_path),
              "cv": RepeatedKFold(n_splits=3, n_repeats=2, random_state=0)}
    first = EnsembleRegressor(**params).fit(X, y)
    again = EnsembleRegressor(**params).fit(X, y)
    assert again.leaderboard_["score"].tolist() == first.leaderboard_["score"].tolist()
    np.testing.assert_allclose(again.predict(X[:4]), first.predict(X[:4]))


@pytest.mark.parametrize(("task", "kind"), [("classification", RepeatedStratifiedKFold),
                                            ("regression", RepeatedKFold)])
def test_yaml_cv_with_repeats_builds_a_repeated_splitter(tmp_path, task, kind):
    from ensemble_hpo.config import build_estimator, load_config

    path = tmp_path / "run.yaml"
    path.write_text("data: {builtin: diabetes}\ncv: {n_splits: 4, n_repeats: 3}\nrandom_state: 7\n")
    cv = build_estimator(load_config(path), task, None).cv
    assert isinstance(cv, kind) and cv.n_repeats == 3 and cv.cvargs["n_splits"] == 4
    assert cv.random_state == 7
    path.write_text("data: {builtin: diabetes}\ncv: {n_splits: 4}\n")
    assert build_estimator(load_config(path), task, None).cv == 4
    path.write_text("data: {builtin: diabetes}\ncv: 3\n")
    assert build_estimator(load_config(path), task, None).cv == 3


@pytest.mark.parametrize("cv", ["{n_splits: 5, n_repeats: 0}", "{n_splits: 1}", "1",
                                "{n_splits: 5, repeats: 2}"])
def test_yaml_cv_rejects_bad_values(tmp_path, cv):
    from ensemble_hpo.config import ConfigError, load_config

    path = tmp_path / "run.yaml"
    path.write_text(f"data: {{builtin: diabetes}}\ncv: {cv}\n")
    with pytest.raises(ConfigError, match="cv"):
        load_config(path)
