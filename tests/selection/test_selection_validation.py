"""Input validation and property-based checks over shapes and dtypes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ensemble_hpo.selection import GreedySelector, UniformTopKSelector

RNG = np.random.default_rng(0)
REG = RNG.normal(size=(3, 10))
Y_REG = RNG.normal(size=10)
CLF = RNG.dirichlet(np.ones(3), size=(3, 10))
Y_CLF = np.arange(10) % 3


@pytest.mark.parametrize(
    "preds, y, match",
    [
        (np.ones(10), Y_REG, r"'predictions' parameter must be a 2-D array .* shape \(10,\)"),
        (np.ones((2, 10, 3, 1)), Y_REG, "or a 3-D array"),
        (np.ones((0, 10)), Y_REG, "Got shape \\(0, 10\\)"),
        (np.where(np.arange(30).reshape(3, 10) == 4, np.nan, REG), Y_REG, "NaN"),
        (CLF * 2, Y_CLF, r"probabilities in \[0, 1\]"),
        (np.ones((3, 10, 1)), Y_CLF, "at least 2 classes"),
        (np.array([["a"] * 10] * 3), Y_REG, "must hold numbers"),
        (REG, Y_REG[:5], r"'y' parameter must be a 1-D array of length n_samples=10"),
        (CLF, np.array(list("abcdabcdab")), "exactly 3 distinct labels"),
        (REG, np.full(10, np.inf), "'y' parameter must hold finite numbers"),
        (CLF, np.array(["a", "b", None, "a", "b", "c", "a", "b", "c", "a"], dtype=object),
         "'y' parameter must hold labels that can be sorted"),
    ],
)
def test_bad_data_raises(preds: np.ndarray, y: np.ndarray, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        GreedySelector(max_iter=2).fit(preds, y)


@pytest.mark.parametrize(
    "params, match",
    [
        ({"max_iter": 0}, "'max_iter' parameter must be an integer >= 1"),
        ({"max_iter": 2.5}, "'max_iter'"),
        ({"init_size": -1}, "'init_size'"),
        ({"prune": 0}, "'prune'"),
        ({"prune": 1.5}, r"'prune' parameter must be a float in \(0.0, 1.0\]"),
        ({"n_bags": 0}, "'n_bags'"),
        ({"bag_fraction": 0.0}, "'bag_fraction'"),
        ({"max_members": 0}, "'max_members'"),
        ({"diversity": -0.1}, "'diversity'"),
        ({"fast_metrics": "yes"}, "'fast_metrics'"),
        ({"scoring": "no_such_metric"}, "'scoring' parameter"),
    ],
)
def test_bad_params_raise_before_work(params: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        GreedySelector(**params).fit(REG, Y_REG)


def test_a_numpy_float_prune_is_a_share_of_the_library() -> None:
    """Audit: np.float32(0.5) was refused as 'an integer >= 1'."""
    preds = RNG.dirichlet(np.ones(3), size=(8, 30))
    y = np.arange(30) % 3
    kept = GreedySelector(max_iter=5, prune=np.float32(0.25)).fit(preds, y)
    same = GreedySelector(max_iter=5, prune=0.25).fit(preds, y)
    np.testing.assert_array_equal(kept.weights_, same.weights_)
    assert np.count_nonzero(kept.weights_) <= 2  # ceil(0.25 * 8) models kept


def test_bad_sample_weight_and_k() -> None:
    with pytest.raises(ValueError, match="'sample_weight' parameter must be a 1-D array"):
        GreedySelector().fit(REG, Y_REG, sample_weight=np.ones(3))
    with pytest.raises(ValueError, match="non-negative"):
        GreedySelector().fit(REG, Y_REG, sample_weight=-np.ones(10))
    with pytest.raises(ValueError, match="'k' parameter"):
        UniformTopKSelector(k=0).fit(REG, Y_REG)


@settings(max_examples=40, deadline=None)
@given(
    n_models=st.integers(1, 6),
    n_samples=st.integers(2, 25),
    n_classes=st.sampled_from([0, 2, 3]),
    dtype=st.sampled_from([np.float32, np.float64, np.int64]),
    init_size=st.integers(0, 3),
    max_members=st.one_of(st.none(), st.integers(1, 3)),
    seed=st.integers(0, 2**16),
)
def test_any_valid_shape_and_dtype(
    n_models: int,
    n_samples: int,
    n_classes: int,
    dtype: type,
    init_size: int,
    max_members: int | None,
    seed: int,
) -> None:
    rng = np.random.default_rng(seed)
    if n_classes:
        raw = rng.integers(0, 3, size=(n_models, n_samples, n_classes)) + 1
        preds = raw / raw.sum(axis=2, keepdims=True)
        preds = preds.astype(np.float32 if dtype is np.float32 else np.float64)
        y = rng.integers(0, n_classes, n_samples)
    else:
        preds = rng.integers(-5, 5, size=(n_models, n_samples)).astype(dtype)
        y = rng.normal(size=n_samples)
    sel = GreedySelector(max_iter=4, init_size=init_size, max_members=max_members, prune=None)
    sel.fit(preds, y)
    assert sel.weights_.shape == (n_models,)
    assert (sel.weights_ >= 0).all() and sel.weights_.sum() == pytest.approx(1.0)
    assert sel.score_ >= np.max(sel.single_scores_) - 1e-9
    if max_members is not None:
        assert np.count_nonzero(sel.weights_) <= max_members
    assert len(sel.order_) == min(init_size, n_models, max_members or n_models) + 4
