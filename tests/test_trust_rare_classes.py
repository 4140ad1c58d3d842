"""Issue 15 (trust): every classifier family survives a rare class in a training fold.

With ``cv=3``, a class with one row is missing from one training fold (labels
``{0, 2}``) and has a single row in the others; a class with two rows has a
single row in two training folds. Real data throughout: iris with one row of the
middle class, and digits with two rows of digit 5.
"""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_digits, load_iris
from sklearn.ensemble import HistGradientBoostingClassifier
from threadpoolctl import threadpool_limits
from xgboost import XGBClassifier

from ensemble_hpo import EnsembleClassifier
from ensemble_hpo.ensemble import to_sklearn
from ensemble_hpo.population._evaluate import SubsetLabelClassifier
from ensemble_hpo.spaces._builtin import BUILTIN_FAMILIES
from ensemble_hpo.spaces._early_stopping import (
    EarlyStoppingClassifier,
    RareClassHistGradientBoostingClassifier,
    rare_class_split,
)


@pytest.fixture(scope="module", autouse=True)
def _single_thread():
    # OpenMP pools sized for the machine crawl when other processes share its cores.
    with threadpool_limits(limits=1):
        yield


CLASSIFIER_FAMILIES = [name for name, f in BUILTIN_FAMILIES.items() if f.supports("classification")]


def _keep_rows(X: pd.DataFrame, y: pd.Series, rare: int, n_rare: int) -> tuple[pd.DataFrame, pd.Series]:
    y = pd.Series(np.asarray(y))
    keep = np.sort(np.r_[np.flatnonzero(y != rare), np.flatnonzero(y == rare)[:n_rare]])
    return X.iloc[keep].reset_index(drop=True), y.iloc[keep].reset_index(drop=True)


def iris_one_middle_row() -> tuple[pd.DataFrame, pd.Series]:
    """101 rows: 50 of class 0, 1 of class 1, 50 of class 2."""
    X, y = load_iris(return_X_y=True, as_frame=True)
    return _keep_rows(X, y, rare=1, n_rare=1)


def digits_two_rows_of_five() -> tuple[pd.DataFrame, pd.Series]:
    """The first 300 digits (about 30 per class), of which only 2 fives."""
    X, y = load_digits(return_X_y=True, as_frame=True)
    return _keep_rows(X.iloc[:300], y.iloc[:300], rare=5, n_rare=2)


DATA = {"iris_one_row": (iris_one_middle_row, 1), "digits_two_rows": (digits_two_rows_of_five, 5)}


def _fit(X: pd.DataFrame, y: pd.Series, **params) -> EnsembleClassifier:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the rare class is warned about, by design
        return EnsembleClassifier(cv=3, random_state=0, **params).fit(X, y)


def _check_ensemble(clf: EnsembleClassifier, X: pd.DataFrame, y: pd.Series, rare: int) -> None:
    failed = clf.leaderboard_[clf.leaderboard_["status"] != "ok"]
    assert failed.empty, failed[["family", "status", "error"]].to_string()
    proba = clf.predict_proba(X)
    labels = np.unique(y)
    assert proba.shape == (len(X), len(labels))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)
    np.testing.assert_array_equal(clf.classes_, labels)
    assert rare in clf.classes_


@pytest.mark.parametrize("data", list(DATA))
@pytest.mark.parametrize("family", CLASSIFIER_FAMILIES)
def test_every_family_completes_with_a_rare_class(family, data):
    if BUILTIN_FAMILIES[family].requires:
        pytest.importorskip(family)
    load, rare = DATA[data]
    X, y = load()
    clf = _fit(X, y, models=[family], n_trials=1)
    _check_ensemble(clf, X, y, rare)
    # Every candidate's out-of-fold predictions are probabilities over all classes.
    oof = clf.population_.predictions([c.number for c in clf.population_.completed()])
    assert oof.shape[1:] == (len(X), len(np.unique(y)))
    np.testing.assert_allclose(oof.sum(axis=2), 1.0, atol=1e-5)


def test_default_ensemble_on_iris_with_one_middle_class_row():
    """The reproduction of the issue: XGBoost and HistGradientBoosting used to fail on every fold."""
    X, y = iris_one_middle_row()
    clf = _fit(X, y, n_trials=6)
    assert {"xgboost", "hist_gradient_boosting"} <= set(clf.leaderboard_["family"])
    _check_ensemble(clf, X, y, rare=1)


@pytest.fixture(scope="module")
def boosted_iris():
    X, y = iris_one_middle_row()
    return X, y, _fit(X, y, models=["xgboost", "hist_gradient_boosting"], n_trials=4)


def test_fold_that_never_saw_a_class_gives_it_probability_zero(boosted_iris):
    X, y, clf = boosted_iris
    rare_row = int(np.flatnonzero(y == 1)[0])
    (valid,) = [va for _, va in clf.cv_splits_ if rare_row in va]
    assert {c.family for c in clf.population_.completed()} == {"xgboost", "hist_gradient_boosting"}
    for candidate in clf.population_.completed():
        oof = clf.population_.predictions([candidate.number])[0]
        assert np.all(oof[valid, 1] == 0.0), candidate.family
        np.testing.assert_allclose(oof[valid].sum(axis=1), 1.0, atol=1e-5)
    for member in clf.ensemble_.members:  # their fold models are kept
        assert [list(m.classes_) for m in member.models].count([0, 2]) == 1


def test_pickled_and_exported_ensembles_predict_the_same(boosted_iris):
    X, _, clf = boosted_iris
    fold_models = [m for member in clf.ensemble_.members for m in member.models]
    # The rare-class path is really exercised: some member has a re-encoded fold model.
    assert any(isinstance(m, SubsetLabelClassifier) for m in fold_models)
    expected = clf.predict_proba(X)
    np.testing.assert_allclose(pickle.loads(pickle.dumps(clf)).predict_proba(X), expected)
    exported = to_sklearn(clf)
    np.testing.assert_allclose(exported.predict_proba(X), expected, atol=1e-7)
    np.testing.assert_array_equal(exported.predict(X), clf.predict(X))


def test_subset_label_classifier_keeps_original_codes():
    X, y = iris_one_middle_row()
    two = (y != 1).to_numpy()
    model = SubsetLabelClassifier(estimator=XGBClassifier(n_estimators=5, n_jobs=1))
    model.fit(X[two], y[two])
    np.testing.assert_array_equal(model.classes_, [0, 2])
    assert set(model.predict(X)) <= {0, 2}
    assert model.predict_proba(X).shape == (len(X), 2)
    restored = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(restored.predict_proba(X), model.predict_proba(X))


def test_rare_class_split_keeps_every_class_in_the_fitting_part():
    _, y = iris_one_middle_row()
    fit, val = rare_class_split(y.to_numpy(), 0.1, random_state=0)
    assert np.array_equal(np.sort(np.r_[fit, val]), np.arange(len(y)))
    assert set(y.iloc[fit]) == {0, 1, 2}
    assert set(y.iloc[val]) == {0, 2}
    assert len(val) == 10  # 5 of each splittable class
    assert rare_class_split(np.array([0, 1, 2]), 0.1) is None


def test_hist_gradient_boosting_still_stops_early_with_a_one_row_class():
    X, y = iris_one_middle_row()
    params = {"max_iter": 500, "early_stopping": True, "n_iter_no_change": 5, "random_state": 0}
    model = RareClassHistGradientBoostingClassifier(**params).fit(X, y)
    np.testing.assert_array_equal(model.classes_, [0, 1, 2])
    assert model.n_iter_ < 500 and len(model.validation_score_) == model.n_iter_ + 1
    # Where scikit-learn's own stratified split exists, the fit is scikit-learn's.
    X_full, y_full = load_iris(return_X_y=True)
    np.testing.assert_array_equal(
        RareClassHistGradientBoostingClassifier(**params).fit(X_full, y_full).predict_proba(X_full),
        HistGradientBoostingClassifier(**params).fit(X_full, y_full).predict_proba(X_full),
    )


def test_boosters_still_stop_early_with_a_one_row_class():
    X, y = iris_one_middle_row()
    model = EarlyStoppingClassifier(estimator=XGBClassifier(n_estimators=500, n_jobs=1),
                                    rounds=5, random_state=0).fit(X, y)
    assert model.best_iteration_ is not None and model.best_iteration_ < 499
