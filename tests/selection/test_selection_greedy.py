"""Behaviour of GreedySelector and the baseline selectors."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from selection_data import classification_library, regression_library

from ensemble_hpo.selection import (
    BaseSelector,
    BestSingleSelector,
    GreedySelector,
    UniformTopKSelector,
)
from ensemble_hpo.selection._greedy import _pick


def _assert_valid_weights(weights: np.ndarray, n_models: int) -> None:
    assert weights.shape == (n_models,)
    assert (weights >= 0).all()
    assert weights.sum() == pytest.approx(1.0)


def test_with_replacement_weights_are_counts() -> None:
    preds, y = classification_library("breast_cancer")
    sel = GreedySelector(max_iter=30).fit(preds, y)
    _assert_valid_weights(sel.weights_, len(preds))
    kept = sel.order_[: sel.best_iteration_ + 1]
    np.testing.assert_allclose(sel.weights_, np.bincount(kept, minlength=len(preds)) / len(kept))
    assert np.bincount(sel.order_).max() > 1  # some model was picked more than once
    assert len(sel.order_) == len(sel.trajectory_) == 30


def test_ensemble_beats_best_single_on_selection_data() -> None:
    for preds, y in (classification_library("wine"), regression_library()):
        sel = GreedySelector(max_iter=20).fit(preds, y)
        assert sel.score_ >= sel.single_scores_.max() - 1e-12
        assert sel.score_ == pytest.approx(sel.trajectory_[sel.best_iteration_])


def test_trimming_to_best_iteration() -> None:
    y = np.zeros(4)
    preds = np.array([np.full(4, 1.0), np.full(4, -1.0), np.full(4, 0.9)])
    sel = GreedySelector(max_iter=4, prune=None).fit(preds, y)
    # 0.9 alone (err 0.9), then -1 (mean -0.05, err 0.05); further additions only hurt.
    np.testing.assert_array_equal(sel.order_[:2], [2, 1])
    assert sel.best_iteration_ == int(np.argmax(sel.trajectory_)) == 1
    np.testing.assert_allclose(sel.weights_, [0.0, 0.5, 0.5])
    assert sel.trajectory_[2] < sel.trajectory_[1]


def test_tie_breaking_prefers_members_then_lowest_index() -> None:
    assert _pick(np.array([1.0, 1.0, 1.0]), np.array([0, 1, 2]), np.array([0, 0, 1])) == 2
    assert _pick(np.array([1.0, 1.0, 0.5]), np.array([4, 3, 5]), np.zeros(6, int)) == 1
    # Model 1 is perfect; re-adding it ties with adding model 0, and the member wins.
    y = np.array([0, 1, 0, 1])
    perfect = np.eye(2)[y]
    weak = np.full((4, 2), 0.5)
    sel = GreedySelector(max_iter=5, scoring="accuracy").fit(np.stack([weak, perfect]), y)
    np.testing.assert_array_equal(sel.order_, [1, 1, 1, 1, 1])
    same = np.stack([perfect] * 3)
    np.testing.assert_array_equal(GreedySelector(max_iter=3).fit(same, y).weights_, [1, 0, 0])


def test_deterministic() -> None:
    preds, y = classification_library("wine")
    a = GreedySelector(max_iter=15, n_bags=3, random_state=0).fit(preds, y)
    b = GreedySelector(max_iter=15, n_bags=3, random_state=0).fit(preds, y)
    np.testing.assert_array_equal(a.order_, b.order_)
    np.testing.assert_array_equal(a.weights_, b.weights_)


def test_max_members_caps_distinct_models() -> None:
    preds, y = regression_library()
    plain = GreedySelector(max_iter=30).fit(preds, y)
    assert np.count_nonzero(plain.weights_) > 2
    capped = GreedySelector(max_iter=30, max_members=2).fit(preds, y)
    assert len(np.unique(capped.order_)) <= 2
    _assert_valid_weights(capped.weights_, len(preds))


def test_sorted_initialisation_starts_with_top_models() -> None:
    preds, y = classification_library("breast_cancer")
    sel = GreedySelector(max_iter=5, init_size=3).fit(preds, y)
    top3 = np.argsort(-sel.single_scores_, kind="stable")[:3]
    np.testing.assert_array_equal(sel.order_[:3], top3)
    assert len(sel.order_) == 8
    assert sel.trajectory_[0] == pytest.approx(sel.single_scores_[top3[0]])


@pytest.mark.parametrize("prune, kept", [(3, 3), (0.5, 5)])
def test_pruning_restricts_to_top_models(prune: float, kept: int) -> None:
    preds, y = classification_library("breast_cancer")
    sel = GreedySelector(max_iter=20, prune=prune).fit(preds, y)
    allowed = np.argsort(-sel.single_scores_, kind="stable")[:kept]
    assert set(np.flatnonzero(sel.weights_)) <= set(allowed)
    assert set(sel.order_) <= set(allowed)


def test_bagging_averages_runs_on_subsets() -> None:
    preds, y = classification_library("wine")
    n_models = len(preds)
    sel = GreedySelector(max_iter=10, n_bags=6, bag_fraction=0.3, random_state=1).fit(preds, y)
    assert sel.order_.shape == sel.trajectory_.shape == (6, 10)
    expected = np.zeros(n_models)
    for order, best in zip(sel.order_, sel.best_iteration_, strict=True):
        assert len(np.unique(order)) <= round(0.3 * n_models)  # each bag sees 3 models
        expected += np.bincount(order[: best + 1], minlength=n_models) / (best + 1)
    np.testing.assert_allclose(sel.weights_, expected / 6)
    _assert_valid_weights(sel.weights_, n_models)
    other = GreedySelector(max_iter=10, n_bags=6, bag_fraction=0.3, random_state=2)
    assert not np.array_equal(other.fit(preds, y).order_, sel.order_)


def test_diversity_zero_is_plain_and_positive_changes_choice() -> None:
    preds, y = classification_library("breast_cancer")
    plain = GreedySelector(max_iter=20, prune=None).fit(preds, y)
    zero = GreedySelector(max_iter=20, diversity=0.0, prune=None).fit(preds, y)
    np.testing.assert_array_equal(plain.order_, zero.order_)
    strong = GreedySelector(max_iter=20, diversity=5.0, prune=None).fit(preds, y)
    assert len(np.unique(strong.order_)) > len(np.unique(plain.order_))
    assert strong.trajectory_[0] == pytest.approx(plain.trajectory_[0])


def test_float32_kept_without_upcasting_library() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 20_000)
    logits = (2 * y - 1) + rng.normal(scale=2.0, size=(100, 20_000))
    p1 = (1 / (1 + np.exp(-logits))).astype(np.float32)
    big = np.stack([1 - p1, p1], axis=2)  # 100 x 20000 x 2 float32 = 16 MB
    del logits, p1
    ref = GreedySelector(max_iter=3).fit(big.astype(np.float64), y)
    tracemalloc.start()
    sel = GreedySelector(max_iter=3).fit(big, y)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 1.5 * big.nbytes  # a float64 copy alone would be 2x
    assert sel.weights_.dtype == np.float64
    np.testing.assert_array_equal(sel.order_, ref.order_)


def test_arbitrary_labels_are_encoded_with_unique() -> None:
    preds, y = classification_library("wine")
    labels = np.array(["a", "b", "c"])[y]
    sel = GreedySelector(max_iter=5).fit(preds, labels)
    ref = GreedySelector(max_iter=5).fit(preds, y)
    np.testing.assert_array_equal(sel.classes_, ["a", "b", "c"])
    np.testing.assert_array_equal(sel.order_, ref.order_)


def test_baselines() -> None:
    preds, y = regression_library()
    best = BestSingleSelector().fit(preds, y)
    greedy = GreedySelector(max_iter=5).fit(preds, y)
    assert best.weights_[np.argmax(greedy.single_scores_)] == 1.0
    assert best.score_ == pytest.approx(greedy.single_scores_.max())
    topk = UniformTopKSelector(k=3).fit(preds, y)
    assert np.count_nonzero(topk.weights_) == 3
    np.testing.assert_allclose(topk.weights_[topk.weights_ > 0], 1 / 3)
    assert isinstance(topk, BaseSelector)
    assert greedy.score_ >= best.score_
