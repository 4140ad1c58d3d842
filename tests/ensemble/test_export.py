"""Exporting fitted ensembles to scikit-learn estimators, checked against the ensemble's output."""

from __future__ import annotations

import pickle
from typing import Any

import numpy as np
import pytest
import sklearn
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sklearn.base import clone, is_classifier, is_regressor
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris
from sklearn.ensemble import (
    StackingClassifier,
    StackingRegressor,
    VotingClassifier,
    VotingRegressor,
)
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.model_selection import cross_val_score
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier
from sklearn.utils.validation import check_is_fitted
from test_cost import cancer_data, with_fuser
from threadpoolctl import threadpool_limits

from ensemble_hpo import EnsembleClassifier, EnsembleRegressor
from ensemble_hpo.ensemble import Ensemble
from ensemble_hpo.ensemble._export import (
    FittedEnsembleModel,
    FoldAverage,
    LogRatioFeatures,
    _vote_weights,
    to_sklearn,
)
from ensemble_hpo.fusion import (
    BaseFuser,
    HardVoting,
    OptimizedWeights,
    SoftVoting,
    Stacking,
    WeightedAverage,
)
from ensemble_hpo.fusion._stacking import log_ratio_features
from ensemble_hpo.selection import GreedySelector


@pytest.fixture(scope="module", autouse=True)
def _single_blas_thread():
    with threadpool_limits(limits=1):
        yield


@pytest.fixture(scope="module")
def iris_fit():
    X, y = load_iris(return_X_y=True, as_frame=True)
    labels = load_iris().target_names[y]  # string labels: exports must map classes back
    clf = EnsembleClassifier(models=["logistic", "knn"], n_trials=6, cv=3,
                             random_state=0, selection=GreedySelector(max_iter=20)).fit(X, labels)
    assert len(clf.ensemble_) >= 2
    oof = clf.population_.predictions([m.number for m in clf.ensemble_.members])
    return X, np.searchsorted(clf.classes_, labels), clf, oof


@pytest.fixture(scope="module")
def diabetes_fit():
    X, y = load_diabetes(return_X_y=True)
    reg = EnsembleRegressor(models=["ridge", "knn"], n_trials=6, cv=3, random_state=0,
                            selection=GreedySelector(max_iter=20)).fit(X, y)
    assert len(reg.ensemble_) >= 2
    oof = reg.population_.predictions([m.number for m in reg.ensemble_.members])
    return X, y, reg, oof


@pytest.fixture(scope="module")
def cancer_members():
    return cancer_data()


def _refit_with(ensemble: Ensemble, oof: np.ndarray, y: np.ndarray, fuser: BaseFuser) -> Ensemble:
    """The same members with another fuser, fitted on their OOF predictions."""
    return with_fuser(ensemble.members, oof, y, fuser)


def _assert_same_classifier_output(model: Any, ensemble: Ensemble, X: np.ndarray,
                                   classes: np.ndarray) -> None:
    fused = ensemble.combine(X)
    np.testing.assert_array_equal(model.predict(X), classes[np.argmax(fused, axis=1)])
    if hasattr(model, "predict_proba"):
        np.testing.assert_allclose(model.predict_proba(X), fused, rtol=1e-10, atol=1e-12)


# -- to_sklearn ---------------------------------------------------------------------------------
def test_default_fit_exports_to_a_soft_voting_classifier(iris_fit):
    X, _, clf, _ = iris_fit
    model = to_sklearn(clf)
    assert isinstance(model, VotingClassifier) and model.voting == "soft"
    np.testing.assert_allclose(model.weights, clf.ensemble_.fuser.weights_)
    np.testing.assert_array_equal(model.classes_, clf.classes_)
    np.testing.assert_allclose(model.predict_proba(X), clf.predict_proba(X), rtol=1e-10)
    np.testing.assert_array_equal(model.predict(X), clf.predict(X))
    names = [f"{m.family}_{m.number}" for m in clf.ensemble_.members]
    assert list(model.named_estimators_) == names
    for member, est in zip(clf.ensemble_.members, model.estimators_, strict=True):
        assert isinstance(est, FoldAverage) and est.estimators_ == member.models
    assert model.n_features_in_ == X.shape[1]
    restored = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(restored.predict(X), model.predict(X))


@pytest.mark.parametrize("fuser", [SoftVoting(), OptimizedWeights(), HardVoting(),
                                   HardVoting(weighted=False), Stacking(random_state=0)],
                         ids=["soft", "optimized", "hard", "hard-unweighted", "stacking"])
def test_multiclass_exports_reproduce_every_fuser(iris_fit, fuser):
    X, y, clf, oof = iris_fit
    ensemble = _refit_with(clf.ensemble_, oof, y, fuser)
    model = to_sklearn(ensemble, classes=clf.classes_)
    expected_type = StackingClassifier if isinstance(fuser, Stacking) else VotingClassifier
    assert isinstance(model, expected_type)
    _assert_same_classifier_output(model, ensemble, X, clf.classes_)
    assert model.predict(X).dtype.kind == "U"  # mapped back to the string labels


@pytest.mark.parametrize("fuser", [WeightedAverage(), HardVoting(), OptimizedWeights(),
                                   Stacking(random_state=0)],
                         ids=["average", "hard", "optimized", "stacking"])
def test_binary_exports_reproduce_every_fuser(cancer_members, fuser):
    X, y, members, oof = cancer_members
    ensemble = with_fuser(members, oof, y, fuser)
    model = to_sklearn(ensemble)
    _assert_same_classifier_output(model, ensemble, X, np.arange(2))
    if isinstance(fuser, HardVoting):
        assert model.voting == "hard" and not hasattr(model, "predict_proba")
        assert model.weights == [5, 3, 2]  # selection weights 0.5/0.3/0.2 as exact vote counts


def test_stacking_export_uses_log_ratio_meta_features(cancer_members):
    X, y, members, oof = cancer_members
    ensemble = with_fuser(members, oof, y, Stacking(random_state=0))
    model = to_sklearn(ensemble)
    assert model.stack_method_ == ["decision_function"] * 3
    meta = model.final_estimator_.named_steps["log_ratio"].transform(model.transform(X))
    np.testing.assert_array_equal(meta, log_ratio_features(ensemble.predict_members(X)))
    # The refit folds are the fuser's: its int cv, shuffled with its seed.
    assert model.cv.get_n_splits() == 5 and model.cv.random_state == 0
    refit = pickle.loads(pickle.dumps(model)).fit(X, y)
    assert refit.score(X, y) > 0.95


def test_a_refitted_stacking_export_fits_its_final_estimator_out_of_fold():
    """Audit: with frozen members and cv='prefit', clone(export).fit refitted the final
    estimator on the members' in-sample outputs (test R2 0.386 -> -0.176, weight moved to
    an overfitting kNN) and cross_val_score gave 0.9 for a model that scores 0.39."""
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    train, test = np.arange(265), np.arange(265, len(y))
    reg = EnsembleRegressor(models=["ridge", "knn"], n_trials=6, cv=3, fusion="stacking",
                            random_state=0, warm_start_configs=None)
    reg.fit(X.iloc[train], y.iloc[train])
    export = reg.to_sklearn()
    held_out = export.score(X.iloc[test], y.iloc[test])
    assert held_out == pytest.approx(reg.score(X.iloc[test], y.iloc[test]))
    refit = clone(export).fit(X.iloc[train], y.iloc[train])
    assert refit.score(X.iloc[test], y.iloc[test]) > held_out - 0.05
    estimate = cross_val_score(export, X.iloc[train], y.iloc[train], cv=3, error_score="raise")
    assert estimate.mean() < held_out + 0.15


@pytest.mark.parametrize("fuser", [None, SoftVoting(), OptimizedWeights(),
                                   Stacking(random_state=0),
                                   Stacking(final_estimator=LinearRegression(), random_state=0)],
                         ids=["fitted", "soft", "optimized", "stacking", "stacking-linear"])
def test_regression_exports_reproduce_the_ensemble(diabetes_fit, fuser):
    X, y, reg, oof = diabetes_fit
    ensemble = reg.ensemble_ if fuser is None else _refit_with(reg.ensemble_, oof, y, fuser)
    model = to_sklearn(ensemble)
    expected_type = StackingRegressor if isinstance(fuser, Stacking) else VotingRegressor
    assert isinstance(model, expected_type)
    np.testing.assert_allclose(model.predict(X), ensemble.combine(X), rtol=1e-10)


def test_exported_voting_model_can_be_refitted_from_scratch(cancer_members):
    X, y, members, oof = cancer_members
    ensemble = with_fuser(members[:2], oof[:2], y, WeightedAverage())
    model = clone(to_sklearn(ensemble, classes=np.array(["benign?", "malignant?"])))
    with pytest.raises(NotFittedError):
        check_is_fitted(model.estimators[0][1])
    labels = np.array(["a", "b"])[y]
    model.fit(X, labels)
    assert set(model.predict(X)) == {"a", "b"} and model.score(X, labels) > 0.9
    assert all(len(est.estimators_) == 3 for est in model.estimators_)


def test_stacking_with_passthrough_cannot_be_exported(cancer_members):
    X, y, members, oof = cancer_members
    fuser = Stacking(passthrough=True, random_state=0)
    scaler = StandardScaler().fit(X)
    fuser.fit(oof, y, weights=[m.weight for m in members], X=scaler.transform(X))
    ensemble = Ensemble(members=members, fuser=fuser, task="classification", n_classes=2,
                        feature_transformer=scaler)
    with pytest.raises(ValueError, match="passthrough=True.*raw X"):
        to_sklearn(ensemble)


def test_stacking_whose_meta_learner_missed_a_class_cannot_be_exported(iris_fit):
    X, y, clf, oof = iris_fit
    rows = y < 2  # every member still predicts 3 classes, the meta-learner sees only 2
    fuser = Stacking(random_state=0).fit(oof[:, rows], y[rows], weights=clf.ensemble_.weights)
    ensemble = Ensemble(members=clf.ensemble_.members, fuser=fuser, task="classification",
                        n_classes=3)
    with pytest.raises(ValueError, match=r"classes \[0, 1\], not all of 0..2"):
        to_sklearn(ensemble)


class _MedianFuser(BaseFuser):
    def __init__(self) -> None:
        pass

    def _fit(self, predictions, y, weights, X, sample_weight) -> None:
        self.weights_ = None

    def _combine(self, predictions, X):
        return np.median(predictions, axis=0)


def test_unsupported_fuser_and_bad_classes_are_rejected(cancer_members):
    X, y, members, oof = cancer_members
    with pytest.raises(ValueError, match="Got _MedianFuser instead"):
        to_sklearn(with_fuser(members, oof, y, _MedianFuser()))
    ensemble = with_fuser(members, oof, y, WeightedAverage())
    for classes in (["b", "a"], ["a"], ["a", "a"]):
        with pytest.raises(ValueError, match="'classes' parameter must be 2 sorted, distinct"):
            to_sklearn(ensemble, classes=classes)
    with pytest.raises(ValueError, match="'ensemble' parameter must be a fitted Ensemble"):
        to_sklearn(LogisticRegression())


# -- FittedEnsembleModel --------------------------------------------------------------------------
def test_fitted_model_predicts_like_the_estimator(iris_fit):
    X, y, clf, _ = iris_fit
    model = FittedEnsembleModel(ensemble=clf.ensemble_, classes=clf.classes_).fit()
    assert is_classifier(model) and model.n_members_ == len(clf.ensemble_)
    np.testing.assert_array_equal(model.classes_, clf.classes_)
    np.testing.assert_allclose(model.predict_proba(X), clf.predict_proba(X))
    np.testing.assert_array_equal(model.predict(X), clf.predict(X))
    assert model.score(X, clf.classes_[y]) == pytest.approx(clf.score(X, clf.classes_[y]))
    assert model.n_features_in_ == X.shape[1]
    # It exports like the estimator it came from.
    np.testing.assert_allclose(to_sklearn(model).predict_proba(X), clf.predict_proba(X))


def test_fitted_model_checks_inputs_like_the_estimator(iris_fit):
    X, _, clf, _ = iris_fit
    model = FittedEnsembleModel(ensemble=clf.ensemble_, classes=clf.classes_,
                                feature_info=clf.feature_info_).fit()
    np.testing.assert_array_equal(model.feature_names_in_, X.columns)
    with pytest.warns(UserWarning):
        np.testing.assert_allclose(model.predict_proba(X.to_numpy()), clf.predict_proba(X))
    with pytest.raises(ValueError, match="feature names should match"):
        model.predict(X.iloc[:, ::-1])


def test_fitted_model_clone_is_unfitted_with_the_same_params(iris_fit):
    X, _, clf, _ = iris_fit
    model = FittedEnsembleModel(ensemble=clf.ensemble_, classes=clf.classes_).fit()
    assert set(model.get_params()) == {"ensemble", "classes", "feature_info"}
    copy = clone(model)
    with pytest.raises(NotFittedError):
        copy.predict(X)
    np.testing.assert_array_equal(copy.get_params()["classes"], clf.classes_)
    assert isinstance(copy.ensemble, Ensemble) and len(copy.ensemble) == len(clf.ensemble_)
    np.testing.assert_array_equal(copy.fit().predict(X), model.predict(X))
    restored = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(restored.predict(X), model.predict(X))


def test_fitted_regression_model(diabetes_fit):
    X, y, reg, _ = diabetes_fit
    model = FittedEnsembleModel(ensemble=reg.ensemble_).fit(X, y)
    assert is_regressor(model) and not hasattr(model, "predict_proba")
    np.testing.assert_allclose(model.predict(X), reg.predict(X))
    assert model.score(X, y) == pytest.approx(reg.score(X, y))
    with pytest.raises(ValueError, match="'classes' parameter must be None for a regression"):
        FittedEnsembleModel(ensemble=reg.ensemble_, classes=[0, 1]).fit()


def test_fitted_model_rejects_non_ensembles():
    with pytest.raises(ValueError, match="'ensemble' parameter must be a fitted Ensemble"):
        FittedEnsembleModel().fit()
    with pytest.raises(NotFittedError):
        FittedEnsembleModel().predict(np.zeros((1, 2)))


# -- FoldAverage, LogRatioFeatures, vote weights --------------------------------------------------
def test_fold_average_averages_its_models():
    X, y = load_iris(return_X_y=True)
    estimators = [LogisticRegression(max_iter=500), DecisionTreeClassifier(max_depth=2,
                                                                          random_state=0)]
    model = FoldAverage(estimators=estimators).fit(X, y)
    assert is_classifier(model)
    expected = np.mean([clone(e).fit(X, y).predict_proba(X) for e in estimators], axis=0)
    np.testing.assert_allclose(model.predict_proba(X), expected)
    np.testing.assert_array_equal(model.predict(X), np.argmax(expected, axis=1))
    np.testing.assert_allclose(model.decision_function(X), np.log(np.clip(expected, 1e-15, 1)))


def test_fold_average_pads_classes_a_fold_model_never_saw():
    X, y = load_iris(return_X_y=True)
    partial = LogisticRegression(max_iter=500).fit(X[y > 0], y[y > 0])  # never saw class 0
    full = LogisticRegression(max_iter=500).fit(X, y)
    model = FoldAverage(estimators=[partial, full])
    model.estimators_, model.classes_ = [partial, full], np.arange(3)
    proba = model.predict_proba(X)
    np.testing.assert_allclose(proba[:, 0], full.predict_proba(X)[:, 0] / 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)


def test_fold_average_rejects_empty_and_mixed_estimators():
    X, y = load_diabetes(return_X_y=True)
    with pytest.raises(ValueError, match="non-empty list of estimators"):
        FoldAverage(estimators=[]).fit(X, y)
    with pytest.raises(ValueError, match="only classifiers or only regressors"):
        FoldAverage(estimators=[LinearRegression(), LogisticRegression()]).fit(X, y > 100)
    model = FoldAverage(estimators=[LinearRegression()]).fit(X, y)
    assert is_regressor(model) and not hasattr(model, "predict_proba")


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 5).flatmap(lambda k: arrays(
    np.float64, st.tuples(st.integers(1, 4), st.integers(1, 6), st.just(k)),
    elements=st.floats(0.0, 1.0))))
def test_log_ratio_features_match_stacking_exactly(raw):
    # Any probabilities, including exact zeros and ones that hit the log floor.
    proba = raw / np.where(raw.sum(axis=2, keepdims=True) > 0, raw.sum(axis=2, keepdims=True), 1)
    n_members, _, k = proba.shape
    log_proba = np.log(np.clip(proba, 1e-15, 1.0))
    scores = [p[:, 1] - p[:, 0] if k == 2 else p for p in log_proba]
    stacked = np.hstack([s.reshape(s.shape[0], -1) for s in scores])
    features = LogRatioFeatures(n_classes=k).fit(stacked).transform(stacked)
    np.testing.assert_array_equal(features, log_ratio_features(proba))


def test_log_ratio_features_check_their_input():
    with pytest.raises(ValueError, match="multiple of 3 columns"):
        LogRatioFeatures(n_classes=3).fit(np.zeros((2, 4)))
    with pytest.raises(ValueError, match="'n_classes' parameter must be an int >= 2"):
        LogRatioFeatures(n_classes=1).fit(np.zeros((2, 4)))


@pytest.mark.parametrize(("weights", "expected"), [
    ([0.5, 0.3, 0.2], [5, 3, 2]),
    ([10 / 19, 8 / 19, 1 / 19], [10, 8, 1]),
    ([1 / 3, 2 / 3, 0.0], [1, 2, 0]),
])
def test_vote_weights_become_exact_counts(weights, expected):
    assert _vote_weights(np.array(weights)).tolist() == expected


def test_irrational_vote_weights_are_kept():
    weights = np.array([1 / np.sqrt(2), 1 - 1 / np.sqrt(2)])
    np.testing.assert_array_equal(_vote_weights(weights), weights)


@pytest.mark.parametrize("fusion", ["average", "stacking"])
def test_an_export_checks_new_X_as_the_estimator_does(fusion):
    """Audit: integer-labelled columns in reverse order were predicted from (off by up to 164
    on diabetes) where the estimator refuses them, and an array for a fit on named columns
    failed in the export where the estimator converts it (with a warning)."""
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    X, y = X.iloc[:200], y.iloc[:200]
    numbered = X.set_axis(range(X.shape[1]), axis=1)
    reg = EnsembleRegressor(models=["ridge", "knn"], n_trials=4, cv=3, random_state=0,
                            fusion=fusion, warm_start_configs=None).fit(numbered, y)
    export = reg.to_sklearn()
    with pytest.raises(ValueError, match="columns"):
        export.predict(numbered[numbered.columns[::-1]])
    named = EnsembleRegressor(models=["ridge", "knn"], n_trials=4, cv=3, random_state=0,
                              fusion=fusion, warm_start_configs=None).fit(X, y)
    with pytest.warns(UserWarning):
        from_array = named.to_sklearn().predict(X.to_numpy())
    np.testing.assert_allclose(from_array, named.predict(X), rtol=1e-10)
    refit = clone(named.to_sklearn()).fit(X, y)  # the check survives a clone and refit
    with pytest.raises(ValueError, match="missing"):
        refit.predict(X.drop(columns="bmi"))


def test_an_export_refits_with_sample_weight():
    """Audit: FoldAverage passed sample_weight to its pipelines (Pipeline.fit refused it)."""
    X, y = load_diabetes(return_X_y=True)
    w = np.random.default_rng(0).uniform(0.5, 2.0, len(y))
    reg = EnsembleRegressor(models=["ridge", "extra_trees"], n_trials=4, cv=3,
                            random_state=0).fit(X, y, sample_weight=w)
    export = reg.to_sklearn()
    weighted = clone(export).fit(X, y, sample_weight=w)
    unweighted = clone(export).fit(X, y)
    assert not np.allclose(weighted.predict(X), unweighted.predict(X))


def test_a_stacking_export_refits_with_sample_weight():
    """Audit: scikit-learn's stacking hands sample_weight to the final estimator, a pipeline
    that refused it."""
    X, y = load_breast_cancer(return_X_y=True)
    w = np.random.default_rng(0).uniform(0.5, 2.0, len(y))
    clf = EnsembleClassifier(models=["logistic", "extra_trees"], n_trials=4, cv=3, random_state=0,
                             fusion="stacking").fit(X, y, sample_weight=w)
    refit = clone(clf.to_sklearn()).fit(X, y, sample_weight=w)
    assert refit.score(X, y) > 0.9


class _GroupsRecorder(LinearRegression):
    def fit(self, X, y, sample_weight=None, groups=None):
        self.groups_seen_ = groups
        return super().fit(X, y, sample_weight=sample_weight)


def test_a_fold_average_refit_hands_groups_to_the_models_that_take_them():
    """Note of session 26: FoldAverage.fit routed no groups, so a refitted export's early
    stopping held out rows of groups it also fitted on."""
    X, y = load_diabetes(return_X_y=True)
    groups = np.arange(len(y)) % 7
    model = FoldAverage(estimators=[_GroupsRecorder(), LinearRegression()]).fit(X, y, groups=groups)
    np.testing.assert_array_equal(model.estimators_[0].groups_seen_, groups)
    with sklearn.config_context(enable_metadata_routing=True):
        voting = VotingRegressor([("a", FoldAverage(estimators=[_GroupsRecorder()])
                                   .set_fit_request(groups=True))]).fit(X, y, groups=groups)
    np.testing.assert_array_equal(voting.estimators_[0].estimators_[0].groups_seen_, groups)
