"""Contracts every registered selector and fuser keeps, as Optuna tests every sampler (issue 18).

Out-of-fold predictions of real fold models (breast cancer: logistic, knn, random forest,
naive Bayes; diabetes: ridge, knn, random forest) stand in for a population.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import KFold, StratifiedKFold, cross_val_predict
from sklearn.naive_bayes import GaussianNB
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ensemble_hpo._resolve import make_fuser, make_selector
from ensemble_hpo.fusion import FUSERS
from ensemble_hpo.selection import SELECTORS


@functools.cache
def population(task: str) -> tuple[np.ndarray, np.ndarray]:
    if task == "classification":
        X, y = load_breast_cancer(return_X_y=True)
        models = [make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)),
                  KNeighborsClassifier(15), RandomForestClassifier(50, random_state=0),
                  GaussianNB()]
        cv, method = StratifiedKFold(5, shuffle=True, random_state=0), "predict_proba"
    else:
        X, y = load_diabetes(return_X_y=True)
        models = [Ridge(), KNeighborsRegressor(15), RandomForestRegressor(50, random_state=0)]
        cv, method = KFold(5, shuffle=True, random_state=0), "predict"
    oof = np.stack([cross_val_predict(m, X, y, cv=cv, method=method) for m in models])
    return oof.astype(np.float32), y


def _tasks_of_fuser(name: str) -> list[str]:
    return ["classification"] if name == "hard_voting" else ["classification", "regression"]


@pytest.mark.parametrize("task", ["classification", "regression"])
@pytest.mark.parametrize("name", sorted(SELECTORS))
def test_selector_contract(name, task):
    predictions, y = population(task)
    selector = make_selector(name, 0)
    weights = selector.fit(predictions, y).weights_
    assert weights.shape == (len(predictions),)
    assert (weights >= 0).all() and weights.sum() == pytest.approx(1.0)
    assert np.isfinite(selector.score_)
    again = clone(make_selector(name, 0)).fit(predictions, y).weights_
    np.testing.assert_array_equal(weights, again)  # seeded: reproducible
    ones = make_selector(name, 0).fit(predictions, y, sample_weight=np.ones(len(y))).weights_
    np.testing.assert_allclose(ones, weights)  # unit weights change nothing


@pytest.mark.parametrize("name", sorted(FUSERS))
def test_fuser_contract(name):
    for task in _tasks_of_fuser(name):
        predictions, y = population(task)
        fuser = make_fuser(name, 0).fit(predictions, y)
        fused = fuser.combine(predictions[:, :40])
        if task == "classification":
            assert fused.shape == (40, predictions.shape[2])
            np.testing.assert_allclose(fused.sum(axis=1), 1.0)
            assert (fused >= 0).all()
        else:
            assert fused.shape == (40,)
        refit = clone(make_fuser(name, 0)).fit(predictions, y)
        np.testing.assert_allclose(refit.combine(predictions[:, :40]), fused)
        ones = make_fuser(name, 0).fit(predictions, y, sample_weight=np.ones(len(y)))
        np.testing.assert_allclose(ones.combine(predictions[:, :40]), fused, rtol=1e-6,
                                   atol=1e-9)


@pytest.mark.parametrize("task, scoring", [("classification", "r2"),
                                           ("regression", "accuracy")])
@pytest.mark.parametrize("name", sorted(SELECTORS))
def test_a_selector_refuses_a_metric_of_the_other_task(name, task, scoring):
    """Audit: r2 on class probabilities scored the class codes as numbers and chose weights
    (score_ 0.89); accuracy on regression values failed deep in scikit-learn."""
    predictions, y = population(task)
    selector = make_selector(name, 0)
    params = selector.get_params()
    key = "scoring" if "scoring" in params else next(k for k in params if k.endswith("__scoring"))
    with pytest.raises(ValueError, match="The 'scoring' parameter must"):
        selector.set_params(**{key: scoring}).fit(predictions, y)


@pytest.mark.parametrize("fuser, name", [("stacking", "scoring"), ("optimized", "loss")])
def test_a_fuser_refuses_a_regression_metric_for_class_probabilities(fuser, name):
    predictions, y = population("classification")
    with pytest.raises(ValueError, match=f"The '{name}' parameter must be a classification"):
        make_fuser(fuser, 0).set_params(**{name: "r2"}).fit(predictions, y)
    if fuser == "stacking":  # a metric that cannot score the target, before any meta-learner
        regression, values = population("regression")
        with pytest.raises(ValueError, match="The 'scoring' parameter must be a regression"):
            make_fuser(fuser, 0).set_params(scoring="accuracy").fit(regression, values)
        with pytest.raises(ValueError, match="The 'scoring' parameter must be able to score"):
            make_fuser(fuser, 0).set_params(scoring="neg_mean_poisson_deviance").fit(
                regression - 200, values - 200)


@pytest.mark.parametrize("name", sorted(SELECTORS))
def test_a_selector_predicts_only_from_predictions_laid_out_as_at_fit(name):
    """Audit: predict_ensemble checked only the number of models: one class column, a 2-D
    array for a classification fit, NaN or rows summing to 5 came back as "probabilities"."""
    predictions, y = population("classification")
    selector = make_selector(name, 0).fit(predictions, y)
    np.testing.assert_allclose(selector.predict_ensemble(predictions).sum(axis=1), 1.0, rtol=1e-6)
    with_nan = predictions.copy()
    with_nan[0, 3] = np.nan
    bad = {"one class column": predictions[..., :1], "2-D": predictions[..., 1],
           "NaN": with_nan, "rows summing to 5": predictions * 5}
    for what, wrong in bad.items():
        with pytest.raises(ValueError, match="The 'predictions' parameter must"):
            selector.predict_ensemble(wrong)
            pytest.fail(what)


def _every_stage():
    from ensemble_hpo.selection import CostAwareSelector  # not a registry name: needs costs

    return ([make_selector(name, 0) for name in sorted(SELECTORS)]
            + [make_fuser(name, 0) for name in sorted(FUSERS)] + [CostAwareSelector(costs=[1.0])])


@pytest.mark.parametrize("stage", _every_stage(), ids=lambda stage: type(stage).__name__)
def test_init_stores_only_its_parameters(stage):
    """scikit-learn's rule, stricter than its own check (which lets parents' parameters
    through): CostAwareSelector set six GreedySelector options it does not offer (audit)."""
    fresh = type(stage)(**stage.get_params(deep=False))
    assert set(vars(fresh)) == set(fresh.get_params(deep=False))
