"""Input validation, scikit-learn compatibility and output invariants of the fusers."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.base import clone
from sklearn.datasets import load_iris
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import Ridge
from sklearn.model_selection import KFold

from ensemble_hpo.fusion import (
    BaseFuser,
    HardVoting,
    OptimizedWeights,
    SoftVoting,
    Stacking,
    WeightedAverage,
    compare_fusers,
)

ALL_FUSERS = [
    WeightedAverage(),
    SoftVoting(),
    HardVoting(weighted=False),
    OptimizedWeights(loss="neg_brier_score", max_iter=7),
    Stacking(final_estimator=Ridge(alpha=2.0), passthrough=True, cv=KFold(3), random_state=4),
]
WEIGHT_FUSERS = [WeightedAverage, SoftVoting, HardVoting, OptimizedWeights]


def _random_members(rng, n_members, n_samples, n_classes):
    P = rng.dirichlet(np.ones(n_classes), size=(n_members, n_samples))
    return P, rng.integers(0, n_classes, size=n_samples)


@pytest.fixture(scope="module")
def iris_members():
    X, y = load_iris(return_X_y=True)
    rng = np.random.default_rng(0)
    # Noisy versions of the one-hot truth: valid, real-label probability members.
    P = 0.6 * np.eye(3)[y] + 0.4 * rng.dirichlet(np.ones(3), size=(3, y.shape[0]))
    return X, y, P


# ---------------------------------------------------------------- sklearn API


@pytest.mark.parametrize("fuser", ALL_FUSERS, ids=lambda f: type(f).__name__)
def test_clone_and_get_params(fuser):
    params = fuser.get_params()
    copy = clone(fuser)
    assert type(copy) is type(fuser)
    assert set(copy.get_params()) == set(params)
    for name, value in params.items():
        assert repr(copy.get_params()[name]) == repr(value)
    assert isinstance(fuser, BaseFuser)


def test_params_are_keyword_only():
    with pytest.raises(TypeError):
        HardVoting(False)
    with pytest.raises(TypeError):
        Stacking(None)


def test_set_params_and_clone_of_fitted(iris_members):
    X, y, P = iris_members
    fuser = OptimizedWeights().set_params(max_iter=3).fit(P, y)
    assert fuser.get_params()["max_iter"] == 3
    fresh = clone(fuser)
    with pytest.raises(NotFittedError):
        fresh.combine(P)


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "predictions, match",
    [
        (np.ones(5), "or a 3-D array"),
        (np.ones((2, 5, 3, 1)), "or a 3-D array"),
        (np.full((2, 5), np.nan), "only finite values"),
        (np.full((2, 5, 2), 1.5), r"probabilities in \[0, 1\]"),
        (np.ones((0, 5)), r"Got shape \(0, 5\)"),
        ("abc", "must hold numbers"),
    ],
)
def test_bad_predictions(predictions, match):
    with pytest.raises(ValueError, match=f"The 'predictions' parameter {match}|{match}"):
        WeightedAverage().fit(predictions, np.zeros(5))


@pytest.mark.parametrize(
    "weights, match",
    [
        ([1.0, -0.5, 1.0], "non-negative"),
        ([0.0, 0.0, 0.0], "positive sum"),
        ([1.0, 1.0], "length n_members=3"),
        ([1.0, np.nan, 1.0], "finite"),
    ],
)
def test_bad_weights(iris_members, weights, match):
    X, y, P = iris_members
    with pytest.raises(ValueError, match=f"The 'weights' parameter must .*{match}"):
        WeightedAverage().fit(P, y, weights=weights)


def test_bad_targets_features_and_sample_weight(iris_members):
    X, y, P = iris_members
    with pytest.raises(ValueError, match="The 'y' parameter must be a 1-D array of length"):
        WeightedAverage().fit(P, y[:-1])
    with pytest.raises(ValueError, match=r"integer labels in 0..2 .* Got values \[0, 1, 3\]"):
        WeightedAverage().fit(P, np.where(y == 2, 3, y))
    with pytest.raises(ValueError, match="integer labels"):
        WeightedAverage().fit(P, y + 0.5)
    with pytest.raises(ValueError, match="The 'X' parameter must have n_samples=150 rows"):
        Stacking(passthrough=True).fit(P, y, X=X[:10])
    with pytest.raises(ValueError, match="The 'sample_weight' parameter must be finite and non-n"):
        OptimizedWeights().fit(P, y, sample_weight=-np.ones_like(y))
    with pytest.raises(ValueError, match="The 'sample_weight' parameter must be a 1-D array"):
        OptimizedWeights().fit(P, y, sample_weight=np.ones(3))


def test_probability_round_off_is_tolerated(iris_members):
    X, y, P = iris_members
    nudged = P.copy()
    nudged[0, 0] = [1.0 + 1e-8, -1e-8, 0.0]
    fused = WeightedAverage().fit(nudged, y).combine(nudged)
    assert fused.min() >= 0.0


def test_combine_checks_layout(iris_members):
    X, y, P = iris_members
    fuser = WeightedAverage().fit(P, y)
    with pytest.raises(ValueError, match=r"layout seen at fit time, \(3, 3\)"):
        fuser.combine(P[:2])
    two_classes = P[..., :2] / P[..., :2].sum(axis=-1, keepdims=True)
    with pytest.raises(ValueError, match="layout seen at fit time"):
        fuser.combine(two_classes)
    with pytest.raises(ValueError, match="layout seen at fit time"):
        fuser.combine(P[:, :, 0])
    with pytest.raises(NotFittedError):
        SoftVoting().combine(P)


def test_hard_voting_rejects_regression():
    with pytest.raises(ValueError, match="HardVoting supports classification only"):
        HardVoting().fit(np.ones((3, 10)), np.zeros(10))


def test_bad_fuser_params(iris_members):
    X, y, P = iris_members
    cases = [
        (HardVoting(weighted="yes"), "The 'weighted' parameter must be a bool"),
        (OptimizedWeights(max_iter=0), "The 'max_iter' parameter must be a positive int"),
        (OptimizedWeights(loss="squared_error"), "The 'loss' parameter must suit a classif"),
        (OptimizedWeights(loss="not_a_scorer"), "The 'loss' parameter must be None"),
        (Stacking(cv=1), r"The 'cv' parameter must be an int >= 2"),
        (Stacking(cv="a"), r"The 'cv' parameter must be an int >= 2"),  # failed in split()
        (Stacking(passthrough="yes"), "The 'passthrough' parameter must be a bool"),
        (Stacking(final_estimator=Ridge()), "The 'final_estimator' parameter must be an est"),
        (Stacking(passthrough=True), "The 'X' parameter must be given when passthrough"),
    ]
    for fuser, match in cases:
        with pytest.raises(ValueError, match=match):
            fuser.fit(P, y)


def test_stacking_rejects_non_partition_cv(iris_members):
    from sklearn.model_selection import ShuffleSplit

    X, y, P = iris_members
    with pytest.raises(ValueError, match="cover every row exactly once"):
        Stacking(cv=ShuffleSplit(n_splits=2, random_state=0)).fit(P, y)


def test_compare_fusers_rejects_bad_fusers(iris_members):
    X, y, P = iris_members
    for bad in ([], [Ridge()], "WeightedAverage"):
        with pytest.raises(ValueError, match="The 'fusers' parameter must be None or"):
            compare_fusers(P, y, bad)


# ---------------------------------------------------------------- invariants


@settings(max_examples=40, deadline=None)
@given(
    n_members=st.integers(1, 5),
    n_samples=st.integers(1, 25),
    n_classes=st.integers(2, 5),
    fuser_index=st.integers(0, len(WEIGHT_FUSERS) - 1),
    seed=st.integers(0, 2**32 - 1),
)
def test_combine_returns_probability_matrix(n_members, n_samples, n_classes, fuser_index, seed):
    rng = np.random.default_rng(seed)
    P, y = _random_members(rng, n_members, n_samples, n_classes)
    weights = rng.integers(0, 3, size=n_members).astype(float)
    weights[rng.integers(n_members)] += 1.0  # at least one selected member
    fuser = WEIGHT_FUSERS[fuser_index]().fit(P, y, weights=weights)
    fused = fuser.combine(P)
    assert fused.shape == (n_samples, n_classes)
    assert np.all(np.isfinite(fused)) and np.all(fused >= 0) and np.all(fused <= 1 + 1e-12)
    np.testing.assert_allclose(fused.sum(axis=1), 1.0, atol=1e-12)
    assert np.all(fuser.weights_ >= 0) and fuser.weights_.sum() == pytest.approx(1.0)


@settings(max_examples=25, deadline=None)
@given(
    n_members=st.integers(1, 5),
    n_samples=st.integers(1, 25),
    fuser_index=st.integers(0, 2),
    seed=st.integers(0, 2**32 - 1),
)
def test_regression_combine_stays_in_member_range(n_members, n_samples, fuser_index, seed):
    rng = np.random.default_rng(seed)
    P = rng.normal(scale=10.0, size=(n_members, n_samples))
    y = rng.normal(scale=10.0, size=n_samples)
    fused = [WeightedAverage, SoftVoting, OptimizedWeights][fuser_index]().fit(P, y).combine(P)
    assert fused.shape == (n_samples,)
    # Convex weights: the blend lies between the members.
    assert np.all(fused >= P.min(axis=0) - 1e-9) and np.all(fused <= P.max(axis=0) + 1e-9)


def test_a_fuser_written_the_scikit_learn_way_still_fits():
    """The library's own parameter hook is _check_params(task): a subclass calling
    scikit-learn's _validate_params() (parameter constraints) broke when the hook took its
    name (review)."""
    from numbers import Real

    from sklearn.utils._param_validation import Interval

    from ensemble_hpo.fusion import BaseFuser

    class Tempered(BaseFuser):
        _parameter_constraints = {"temperature": [Interval(Real, 0, None, closed="neither")]}

        def __init__(self, temperature=1.0):
            self.temperature = temperature

        def _fit(self, predictions, y, weights, X, sample_weight):
            self._validate_params()
            self.weights_ = weights

        def _combine(self, predictions, X):
            return np.tensordot(self.weights_, predictions, axes=1)

    rng = np.random.default_rng(0)
    P, y = rng.dirichlet(np.ones(3), size=(2, 30)), rng.integers(0, 3, 30)
    assert Tempered().fit(P, y).combine(P).shape == (30, 3)
    with pytest.raises(ValueError, match="temperature"):
        Tempered(temperature=-1.0).fit(P, y)
