"""Tests of the hypergradient (gradient-based L2 tuning) core of the search stage."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import log_loss, mean_squared_error
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.preprocessing import StandardScaler

from ensemble_hpo.search._hypergradient import (
    HypergradientResult,
    _LogisticFold,
    _RidgeFold,
    hypergradient_search,
    sklearn_param_from_log_lambda,
    validation_loss_and_grad,
)


def _scaled(loader):
    X, y = loader(return_X_y=True)
    return StandardScaler().fit_transform(X), y


@pytest.fixture(scope="module")
def diabetes():
    X, y = _scaled(load_diabetes)
    return X, y, list(KFold(4, shuffle=True, random_state=0).split(X))


@pytest.fixture(scope="module")
def cancer():
    X, y = _scaled(load_breast_cancer)
    return X, y, list(StratifiedKFold(4, shuffle=True, random_state=0).split(X, y))


@pytest.fixture(scope="module")
def wine():
    X, y = _scaled(load_wine)
    return X, y, list(StratifiedKFold(3, shuffle=True, random_state=0).split(X, y))


@pytest.fixture(scope="module")
def weights():
    return np.random.default_rng(0).uniform(0.2, 3.0, size=600)


def _central_difference(X, y, splits, model, log_lambda, sample_weight=None, h=1e-4):
    def loss(value):
        return validation_loss_and_grad(X, y, splits, model, value, sample_weight=sample_weight)[0]

    return (loss(log_lambda + h) - loss(log_lambda - h)) / (2 * h)


def _sklearn_model(model, log_lambda):
    if model == "ridge":
        return Ridge(**sklearn_param_from_log_lambda(model, log_lambda))
    return LogisticRegression(
        **sklearn_param_from_log_lambda(model, log_lambda),
        tol=1e-12,
        max_iter=10_000,
        solver="newton-cholesky",
    )


def _sklearn_cv_loss(X, y, splits, model, log_lambda, sample_weight=None):
    sw = np.ones(len(y)) if sample_weight is None else sample_weight
    losses = []
    for train, valid in splits:
        est = _sklearn_model(model, log_lambda).fit(X[train], y[train], sample_weight=sw[train])
        if model == "ridge":
            losses.append(mean_squared_error(y[valid], est.predict(X[valid]), sample_weight=sw[valid]))
        else:
            proba = est.predict_proba(X[valid])
            losses.append(log_loss(y[valid], proba, sample_weight=sw[valid], labels=est.classes_))
    return float(np.mean(losses))


# ------------------------------------------------------------------ hypergradients


@pytest.mark.parametrize("log_lambda", [-4.0, 0.0, 3.0, 7.0])
@pytest.mark.parametrize("weighted", [False, True])
def test_ridge_hypergradient_matches_finite_difference(diabetes, weights, log_lambda, weighted):
    X, y, splits = diabetes
    sw = weights[: len(y)] if weighted else None
    _, grad = validation_loss_and_grad(X, y, splits, "ridge", log_lambda, sample_weight=sw)
    fd = _central_difference(X, y, splits, "ridge", log_lambda, sample_weight=sw)
    assert grad == pytest.approx(fd, rel=1e-4, abs=1e-8)


@pytest.mark.parametrize("log_lambda", [-8.0, -2.0, 0.0, 3.0, 6.0])
def test_logistic_hypergradient_matches_finite_difference(cancer, log_lambda):
    X, y, splits = cancer
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        _, grad = validation_loss_and_grad(X, y, splits, "logistic", log_lambda)
        fd = _central_difference(X, y, splits, "logistic", log_lambda)
    assert grad == pytest.approx(fd, rel=1e-3, abs=1e-7)


def test_weighted_logistic_hypergradient_matches_finite_difference(cancer, weights):
    X, y, splits = cancer
    sw = weights[: len(y)]
    _, grad = validation_loss_and_grad(X, y, splits, "logistic", 1.0, sample_weight=sw)
    fd = _central_difference(X, y, splits, "logistic", 1.0, sample_weight=sw)
    assert grad == pytest.approx(fd, rel=1e-3)


@pytest.mark.parametrize("log_lambda", [-3.0, 0.0, 4.0])
def test_multinomial_hypergradient_matches_finite_difference(wine, log_lambda):
    X, y, splits = wine
    _, grad = validation_loss_and_grad(X, y, splits, "logistic", log_lambda)
    fd = _central_difference(X, y, splits, "logistic", log_lambda)
    assert grad == pytest.approx(fd, rel=1e-3, abs=1e-7)


# ------------------------------------------------------ scikit-learn parametrisation


@pytest.mark.parametrize("log_lambda", [-3.0, 0.0, 4.0])
@pytest.mark.parametrize("weighted", [False, True])
def test_ridge_coefficients_match_sklearn(diabetes, weights, log_lambda, weighted):
    X, y, _ = diabetes
    sw = weights[: len(y)] if weighted else np.ones(len(y))
    theta = _RidgeFold(X, y, sw, X[:3], y[:3], sw[:3]).coefficients(np.exp(log_lambda))
    est = _sklearn_model("ridge", log_lambda).fit(X, y, sample_weight=sw)
    np.testing.assert_allclose(theta[1:], est.coef_, rtol=1e-8, atol=1e-8)
    assert theta[0] == pytest.approx(est.intercept_, rel=1e-10)


@pytest.mark.parametrize("log_lambda", [-3.0, 0.0, 4.0])
@pytest.mark.parametrize("weighted", [False, True])
def test_logistic_coefficients_match_sklearn(cancer, weights, log_lambda, weighted):
    X, y, _ = cancer
    sw = weights[: len(y)] if weighted else np.ones(len(y))
    fold = _LogisticFold(X, y, sw, X[:3], y[:3], sw[:3], n_classes=2)
    theta = fold.coefficients(np.exp(log_lambda))[:, 0]
    est = _sklearn_model("logistic", log_lambda).fit(X, y, sample_weight=sw)
    np.testing.assert_allclose(theta[1:], est.coef_[0], rtol=1e-6, atol=1e-8)
    assert theta[0] == pytest.approx(est.intercept_[0], rel=1e-6, abs=1e-8)


def test_multinomial_coefficients_match_sklearn(wine):
    X, y, _ = wine
    sw = np.ones(len(y))
    theta = _LogisticFold(X, y, sw, X[:3], y[:3], sw[:3], n_classes=3).coefficients(1.0)
    est = _sklearn_model("logistic", 0.0).fit(X, y)
    np.testing.assert_allclose(theta[1:].T, est.coef_, rtol=1e-6, atol=1e-8)
    # Softmax intercepts are defined up to a common shift; compare them centred.
    np.testing.assert_allclose(
        theta[0] - theta[0].mean(), est.intercept_ - est.intercept_.mean(), atol=1e-7
    )


@pytest.mark.parametrize(
    ("dataset", "model", "log_lambda"),
    [("diabetes", "ridge", 1.0), ("cancer", "logistic", -1.0), ("wine", "logistic", 0.5)],
)
def test_validation_loss_equals_sklearn_cv_loss(request, dataset, model, log_lambda):
    X, y, splits = request.getfixturevalue(dataset)
    loss, _ = validation_loss_and_grad(X, y, splits, model, log_lambda)
    assert loss == pytest.approx(_sklearn_cv_loss(X, y, splits, model, log_lambda), rel=1e-7)


def test_sklearn_param_mapping():
    assert sklearn_param_from_log_lambda("ridge", np.log(3.0)) == {"alpha": pytest.approx(3.0)}
    assert sklearn_param_from_log_lambda("logistic", np.log(4.0)) == {"C": pytest.approx(0.25)}


# ------------------------------------------------------------------------- search


def _grid_best(X, y, splits, model):
    grid = np.linspace(-10.0, 10.0, 81)
    return min(validation_loss_and_grad(X, y, splits, model, value)[0] for value in grid)


@pytest.fixture(scope="module")
def grid_best(diabetes, cancer):
    return {
        "ridge": _grid_best(*diabetes, "ridge"),
        "logistic": _grid_best(*cancer, "logistic"),
    }


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
@pytest.mark.parametrize(("dataset", "model"), [("diabetes", "ridge"), ("cancer", "logistic")])
def test_search_reaches_grid_optimum_from_poor_start(
    request, grid_best, optimizer, dataset, model
):
    X, y, splits = request.getfixturevalue(dataset)
    res = hypergradient_search(
        X, y, splits, model=model, init_log_lambda=8.0, optimizer=optimizer, n_steps=30
    )
    assert isinstance(res, HypergradientResult)
    assert res.log_lambdas[0] == 8.0
    assert res.best_loss < 0.9 * res.losses[0]
    assert res.best_loss <= grid_best[model] * (1 + 1e-3)
    best = int(np.argmin(res.losses))
    assert res.best_log_lambda == res.log_lambdas[best]
    assert res.best_loss == res.losses[best]
    assert res.sklearn_param == sklearn_param_from_log_lambda(model, res.best_log_lambda)


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
def test_trace_records_true_losses_and_gradients(diabetes, optimizer):
    X, y, splits = diabetes
    res = hypergradient_search(X, y, splits, model="ridge", init_log_lambda=5.0,
                               optimizer=optimizer, n_steps=8)
    assert len(res.log_lambdas) == len(res.losses) == len(res.gradients) <= 8
    for value, loss, grad in zip(res.log_lambdas, res.losses, res.gradients, strict=True):
        expected = validation_loss_and_grad(X, y, splits, "ridge", value)
        assert (loss, grad) == pytest.approx(expected, rel=1e-10)


def test_adam_uses_exactly_n_steps_and_lbfgs_points_are_distinct(diabetes):
    X, y, splits = diabetes
    adam = hypergradient_search(X, y, splits, model="ridge", optimizer="adam", n_steps=7)
    assert len(adam.log_lambdas) == 7
    lbfgs = hypergradient_search(X, y, splits, model="ridge", init_log_lambda=8.0, n_steps=50)
    assert len(set(lbfgs.log_lambdas)) == len(lbfgs.log_lambdas) < 50


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
def test_bounds_are_respected(diabetes, optimizer):
    X, y, splits = diabetes
    # The optimum (log lambda ~ 1) lies below the box, so the search must stop at its edge.
    res = hypergradient_search(X, y, splits, model="ridge", init_log_lambda=4.0,
                               optimizer=optimizer, n_steps=25, bounds=(2.5, 6.0))
    assert all(2.5 <= value <= 6.0 for value in res.log_lambdas)
    assert res.best_log_lambda == pytest.approx(2.5, abs=1e-3)


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
def test_search_is_deterministic(cancer, optimizer):
    X, y, splits = cancer
    kwargs = dict(model="logistic", init_log_lambda=3.0, optimizer=optimizer, n_steps=6)
    assert hypergradient_search(X, y, splits, **kwargs) == hypergradient_search(
        X, y, splits, **kwargs
    )


def test_multinomial_search_improves(wine):
    X, y, splits = wine
    res = hypergradient_search(X, y, splits, model="logistic", init_log_lambda=6.0, n_steps=12)
    assert res.best_loss < 0.5 * res.losses[0]
    assert set(res.sklearn_param) == {"C"}


@settings(max_examples=25, deadline=None)
@given(
    data=arrays(
        np.float64,
        st.tuples(st.integers(8, 30), st.integers(1, 6)),
        elements=st.floats(-5, 5, allow_nan=False),
    ),
    log_lambda=st.floats(-6, 6),
)
def test_ridge_loss_matches_sklearn_on_arbitrary_data(data, log_lambda):
    X, y = data[:, :-1] if data.shape[1] > 1 else data, data[:, -1] * 2.0 + 1.0
    splits = list(KFold(2).split(X))
    loss, grad = validation_loss_and_grad(X, y, splits, "ridge", log_lambda)
    assert np.isfinite(grad)
    assert loss == pytest.approx(
        _sklearn_cv_loss(X, y, splits, "ridge", log_lambda), rel=1e-6, abs=1e-9
    )


# ------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"model": "lasso"}, "'model' parameter"),
        ({"optimizer": "sgd"}, "'optimizer' parameter"),
        ({"n_steps": 0}, "'n_steps' parameter"),
        ({"n_steps": 2.5}, "'n_steps' parameter"),
        ({"n_steps": True}, "'n_steps' parameter"),
        ({"learning_rate": 0.0}, "'learning_rate' parameter"),
        ({"bounds": (3.0, 1.0)}, "'bounds' parameter"),
        ({"bounds": (-np.inf, 1.0)}, "'bounds' parameter"),
        ({"bounds": 5.0}, "'bounds' parameter"),
        ({"init_log_lambda": 20.0}, "'init_log_lambda' parameter"),
        ({"sample_weight": -np.ones(40)}, "'sample_weight' parameter"),
        ({"sample_weight": np.ones(3)}, "'sample_weight' parameter"),
    ],
)
def test_bad_search_parameters_raise(kwargs, match):
    X = np.random.default_rng(0).normal(size=(40, 3))
    y = X[:, 0] + 0.1
    splits = list(KFold(2).split(X))
    params = {"model": "ridge"} | kwargs
    with pytest.raises(ValueError, match=match):
        hypergradient_search(X, y, splits, **params)


@pytest.mark.parametrize(
    ("X", "y", "splits", "model", "match"),
    [
        (np.ones(6), np.ones(6), None, "ridge", "'X' parameter"),
        (np.full((6, 2), np.nan), np.ones(6), None, "ridge", "'X' parameter"),
        ([["a", "b"]] * 6, np.ones(6), None, "ridge", "numeric"),
        (np.ones((6, 2)), np.ones(5), None, "ridge", "'y' parameter"),
        (np.ones((6, 2)), [0, 1, 2, 0, 1, 0.5], None, "logistic", "'y' parameter"),
        (np.ones((6, 2)), [0, 0, 0, 2, 2, 2], None, "logistic", "'y' parameter"),
        (np.ones((6, 2)), np.ones(6), [], "ridge", "'splits' parameter"),
        (np.ones((6, 2)), np.ones(6), [([0, 1], [9])], "ridge", "'splits' parameter"),
        (np.ones((6, 2)), np.ones(6), [([0, 1], [])], "ridge", "'splits' parameter"),
        (np.ones((6, 2)), np.ones(6), [([0.0, 1.0], [2])], "ridge", "'splits' parameter"),
        (np.ones((6, 2)), np.ones(6), [([0, 1],)], "ridge", "'splits' parameter"),
        (np.ones((6, 2)), [0, 0, 0, 1, 1, 1], [([0, 1], [3, 4])], "logistic", "every class"),
    ],
)
def test_bad_data_raise(X, y, splits, model, match):
    splits = [([0, 1, 2, 3], [4, 5])] if splits is None else splits
    with pytest.raises(ValueError, match=match):
        validation_loss_and_grad(X, y, splits, model, 0.0)


def test_single_step_budget_evaluates_only_the_start(cancer):
    X, y, splits = cancer
    for optimizer in ("lbfgs", "adam"):
        res = hypergradient_search(X, y, splits, model="logistic", init_log_lambda=-1.5,
                                   optimizer=optimizer, n_steps=1)
        assert res.log_lambdas == [-1.5]
        assert res.best_log_lambda == -1.5
        assert res.sklearn_param == {"C": pytest.approx(np.exp(1.5))}


def test_hypergradient_points_are_snapped_onto_the_familys_distributions():
    """Audit: a stepped C got off-grid values, an int C truncated 1.59 to 1 (three equal
    candidates), a categorical C raised AttributeError."""
    import dataclasses

    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    from ensemble_hpo.search._strategy import _clip
    from ensemble_hpo.spaces import get_family

    logistic = get_family("logistic")

    def with_c(distribution):
        return dataclasses.replace(logistic, params={**logistic.params, "C": distribution})

    stepped = with_c(FloatDistribution(0.5, 50, step=0.5))
    assert _clip(stepped, {"C": 2.718}) == {"C": 2.5}
    assert _clip(stepped, {"C": 80.0}) == {"C": 50.0}
    whole = with_c(IntDistribution(1, 50))
    assert _clip(whole, {"C": 1.5916}) == {"C": 2} and isinstance(_clip(whole, {"C": 1.59})["C"], int)
    assert _clip(with_c(CategoricalDistribution([0.1, 1.0])), {"C": 1.2}) is None


def test_the_gradient_strategy_with_a_categorical_c_warns_and_still_searches():
    from sklearn.datasets import load_breast_cancer

    from ensemble_hpo import EnsembleClassifier

    X, y = load_breast_cancer(return_X_y=True)
    with pytest.warns(UserWarning, match="seeds only numeric ranges"):
        model = EnsembleClassifier(models=[{"base": "logistic", "params": {"C": [0.1, 1.0, 10.0]}}],
                                   search="gradient", n_trials=3, cv=3, random_state=0,
                                   warm_start_configs=None).fit(X[:200], y[:200])
    assert (model.leaderboard_["status"] == "ok").all()
