"""Built-in regression families fit the standardised target: results do not depend on its units."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_diabetes
from sklearn.linear_model import LinearRegression, Ridge
from sklearn.svm import SVR

from ensemble_hpo.spaces import (
    BUILTIN_FAMILIES,
    LogTargetRegressor,
    ModelFamily,
    StandardizedTargetRegressor,
    family_from_spec,
    get_family,
)

REGRESSION_FAMILIES = [name for name, family in BUILTIN_FAMILIES.items()
                       if family.supports("regression") and not name.endswith("_log")]


def _diabetes(n: int = 300) -> tuple[np.ndarray, np.ndarray]:
    X, y = load_diabetes(return_X_y=True)
    return X[:n], y[:n]


def test_predicts_on_the_scale_of_y():
    X, y = _diabetes()
    model = StandardizedTargetRegressor(regressor=LinearRegression()).fit(X, 1e6 * y)
    inner = model.regressor_.predict(X)
    assert abs(inner.mean()) < 0.1 and 0.5 < inner.std() < 1.0  # fitted on the standardised y
    np.testing.assert_allclose(model.predict(X), LinearRegression().fit(X, 1e6 * y).predict(X),
                               rtol=1e-9)


def test_svr_no_longer_depends_on_the_target_units():
    # SVR's epsilon (0.1) and C are in the target's units: on y * 1000 the raw SVR is
    # nearly a constant, the standardised one fits as well as on y.
    X, y = _diabetes()
    raw = SVR().fit(X, 1000 * y).predict(X) / 1000
    scaled = StandardizedTargetRegressor(regressor=SVR()).fit(X, 1000 * y).predict(X) / 1000
    rmse = {name: float(np.sqrt(np.mean((p - y) ** 2))) for name, p in
            (("raw", raw), ("scaled", scaled))}
    assert rmse["scaled"] < 0.8 * rmse["raw"], rmse


class _RecordsFitArguments(LinearRegression):
    def fit(self, X, y, sample_weight=None, groups=None):
        self.seen_ = {"sample_weight": sample_weight, "groups": groups}
        return super().fit(X, y, sample_weight=sample_weight)


def test_forwards_weights_and_groups_only_where_taken():
    X, y = _diabetes()
    weights, groups = np.linspace(0.5, 2.0, len(y)), np.arange(len(y)) % 5
    model = StandardizedTargetRegressor(regressor=_RecordsFitArguments())
    model.fit(X, y, sample_weight=weights, groups=groups)
    np.testing.assert_array_equal(model.regressor_.seen_["groups"], groups)
    np.testing.assert_array_equal(model.regressor_.seen_["sample_weight"], weights)
    StandardizedTargetRegressor(regressor=Ridge()).fit(X, y, groups=groups)  # no groups in Ridge.fit
    assert clone(model).get_params()["regressor"].__class__ is _RecordsFitArguments


@pytest.mark.parametrize("name", REGRESSION_FAMILIES)
def test_every_builtin_regression_family_ignores_the_targets_offset_and_units(name):
    # Without the standardisation XGBoost predicted 3 distinct values on y + 1e9 (float32
    # labels) and zeroed most leaves on y * 1e-6 (reg_alpha); a random forest lost precision.
    family = get_family(name)
    family.check_available() if family.requires else None
    X, y = _diabetes()
    config = dict(family.portfolio[0])
    reference = family.build("regression", config, random_state=0).fit(X, y).predict(X)
    for scale, offset in ((1e-6, 0.0), (1.0, 1e9)):
        estimator = family.build("regression", config, random_state=0)
        moved = (estimator.fit(X, scale * y + offset).predict(X) - offset) / scale
        # Not bit-equal: the standardised targets differ in their last bits, which may
        # break a tie between two splits differently.
        assert np.sqrt(np.mean((moved - reference) ** 2)) < 0.05 * y.std(), (scale, offset)


def test_log_twins_standardise_on_the_log_scale():
    twin = get_family("xgboost_log")
    assert not twin.scale_target  # the twin's own outer transform must see y itself
    estimator = twin.build("regression", dict(twin.portfolio[0]), random_state=0)
    assert isinstance(estimator, LogTargetRegressor)
    assert isinstance(estimator.regressor, StandardizedTargetRegressor)
    X, y = _diabetes()
    assert estimator.fit(X, y).predict(X).min() > 0


def test_a_family_scales_only_when_it_says_so():
    assert all(get_family(name).scale_target for name in REGRESSION_FAMILIES)
    own = ModelFamily("own", regressor=Ridge)
    assert isinstance(own.build("regression", {}), Ridge)
    assert isinstance(get_family("svm").build("classification", {}), object)
    assert not isinstance(get_family("knn").build("classification", {}), StandardizedTargetRegressor)


def test_specs_inherit_scale_target_from_their_base_and_may_turn_it_off():
    assert family_from_spec({"base": "svm", "name": "svm2"}).scale_target
    raw = family_from_spec({"base": "svm", "name": "svm_raw", "scale_target": False})
    assert isinstance(raw.build("regression", {"C": 1.0, "kernel": "rbf", "gamma": 0.1}), SVR)
    assert not family_from_spec({"name": "mine", "regressor": "sklearn.linear_model.Ridge",
                                 "params": {"alpha": [0.1, 1.0]}}).scale_target
    with pytest.raises(ValueError, match="'scale_target' of model family spec 'svm2' must be true"):
        family_from_spec({"base": "svm", "name": "svm2", "scale_target": "yes"})


def test_specs_keep_their_base_familys_relative_cost():
    assert family_from_spec({"base": "svm", "name": "svm2"}).relative_cost == \
        get_family("svm").relative_cost


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_an_mlp_candidate_that_uses_up_max_iter_does_not_warn(task):
    import warnings

    from sklearn.datasets import load_breast_cancer
    from sklearn.exceptions import ConvergenceWarning

    X, y = load_breast_cancer(return_X_y=True) if task == "classification" else _diabetes()
    family = get_family("mlp")
    params = {**family.portfolio[0]}
    estimator = family.build(task, params, random_state=0)
    inner = estimator.regressor if task == "regression" else estimator
    inner.set_params(max_iter=2, early_stopping=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        estimator.fit(X[:200], y[:200])
    assert not [w for w in caught if issubclass(w.category, ConvergenceWarning)]
