"""GuardedGreedySelector: small greedy gains must hold on held-out rows."""

from __future__ import annotations

import numpy as np
import pytest
from selection_data import classification_library, noise_library, regression_library

from ensemble_hpo.selection import CrossValidatedSelector, GreedySelector, GuardedGreedySelector
from ensemble_hpo.selection._guarded import _one_standard_error_steps


def _fresh_rmse(weights: np.ndarray, n_models: int) -> float:
    """RMSE of ``weights`` on 5,000 new rows drawn like ``noise_library``'s."""
    rng = np.random.default_rng(1)
    y = rng.normal(size=5000)
    good = y + rng.normal(scale=0.3, size=5000)
    fresh = np.vstack([good, good + rng.normal(scale=1.0, size=(n_models - 1, 5000))])
    return float(np.sqrt(np.mean((weights @ fresh - y) ** 2)))


def test_small_noisy_gain_is_cut_back_and_that_is_right_on_new_rows() -> None:
    preds, y = noise_library(n_rows=1000, n_junk=20)
    plain = GreedySelector().fit(preds, y)
    assert np.count_nonzero(plain.weights_) > 1
    sel = GuardedGreedySelector(random_state=0).fit(preds, y)
    assert sel.checked_ and 0 < sel.gain_ < 0.005
    assert sel.n_steps_ < int(plain.best_iteration_) + 1
    assert sel.cv_curve_ is not None and sel.cv_curve_.shape[0] >= sel.n_steps_
    assert _fresh_rmse(sel.weights_, len(preds)) < _fresh_rmse(plain.weights_, len(preds))


def test_large_gain_keeps_greedy_selection_unchanged() -> None:
    rng = np.random.default_rng(0)
    y = rng.normal(size=400)
    preds = y + rng.normal(scale=[[0.5], [0.55], [0.6]], size=(3, 400))
    plain = GreedySelector().fit(preds, y)
    sel = GuardedGreedySelector(random_state=0).fit(preds, y)
    assert sel.gain_ > 0.005 and not sel.checked_ and sel.cv_curve_ is None
    np.testing.assert_array_equal(sel.weights_, plain.weights_)
    assert sel.n_steps_ == int(plain.best_iteration_) + 1


@pytest.mark.parametrize("library", ["breast_cancer", "wine", "diabetes"])
def test_real_libraries_min_gain_bounds(library: str) -> None:
    """min_gain=0 is plain greedy selection; inf always checks and never lengthens the path."""
    preds, y = regression_library() if library == "diabetes" else classification_library(library)
    plain = GreedySelector().fit(preds, y)
    never = GuardedGreedySelector(min_gain=0.0, random_state=0).fit(preds, y)
    np.testing.assert_array_equal(never.weights_, plain.weights_)
    assert not never.checked_
    always = GuardedGreedySelector(min_gain=float("inf"), random_state=0).fit(preds, y)
    assert always.checked_
    assert 1 <= always.n_steps_ <= int(plain.best_iteration_) + 1
    kept = np.bincount(np.asarray(plain.order_)[:always.n_steps_], minlength=len(preds))
    np.testing.assert_allclose(always.weights_, kept / kept.sum())
    assert always.score_ <= plain.score_ + 1e-12  # a prefix of the in-sample best path


def test_one_standard_error_rule_picks_the_shortest_close_path() -> None:
    sizes = np.ones(4)
    # Step 3 is best by 0.02 on average, but the fold-to-fold spread of that gap is large.
    folds = np.array([[-1.00, -0.99, -0.98], [-1.00, -0.95, -0.90],
                      [-1.00, -1.05, -1.10], [-1.00, -1.01, -0.94]])
    assert _one_standard_error_steps(folds, sizes, folds.mean(axis=0)) == 1
    # A consistent improvement is kept.
    steady = np.array([[-1.0, -0.9, -0.8]] * 4) + np.array([[0.0], [0.01], [-0.01], [0.02]])
    assert _one_standard_error_steps(steady, sizes, steady.mean(axis=0)) == 3


def test_groups_keep_each_group_on_one_side_of_the_check(monkeypatch) -> None:
    preds, y = noise_library(n_rows=80)
    groups = np.repeat(np.arange(20), 4)
    seen = []
    import ensemble_hpo.selection._base as base  # where every selector makes its folds

    real = base.make_folds

    def spy(*args, **kwargs):
        splits = real(*args, **kwargs)
        seen.append(splits)
        return splits

    monkeypatch.setattr(base, "make_folds", spy)
    GuardedGreedySelector(min_gain=float("inf"), random_state=0).fit(preds, y, groups=groups)
    assert seen
    for train, valid in seen[0]:
        assert not set(groups[train]) & set(groups[valid])


@pytest.mark.parametrize(("params", "message"), [
    ({"min_gain": -0.1}, "The 'min_gain' parameter must be a non-negative number"),
    ({"min_gain": "high"}, "The 'min_gain' parameter must be a non-negative number"),
    ({"greedy": GreedySelector(n_bags=3)}, "The 'greedy' parameter must be None or a "
                                           "GreedySelector with n_bags=1"),
    ({"cv": 1}, "cv"),
])
def test_bad_parameters_fail_before_selection(params: dict, message: str) -> None:
    preds, y = noise_library()
    with pytest.raises(ValueError, match=message):
        GuardedGreedySelector(**params).fit(preds, y)


def test_few_rows_use_fewer_folds_and_too_few_skip_the_check(monkeypatch) -> None:
    import ensemble_hpo.selection._base as base  # where every selector makes its folds

    folds_used = []
    real = base.make_folds
    monkeypatch.setattr(base, "make_folds",
                        lambda k, *a, **kw: folds_used.append(k) or real(k, *a, **kw))
    preds, y = noise_library(n_rows=6)
    sel = GuardedGreedySelector(min_gain=float("inf"), cv=5).fit(preds, y)
    assert sel.checked_ and folds_used == [3]
    # Classification: no more folds than the largest class has rows (4 of 10 rows).
    labels = np.array([0, 0, 0, 1, 1, 1, 1, 2, 2, 2])
    rng = np.random.default_rng(0)
    probs = np.eye(3)[labels] * 0.5 + rng.uniform(0.05, 0.3, size=(3, 10, 3))
    probs /= probs.sum(axis=-1, keepdims=True)
    sel = GuardedGreedySelector(min_gain=float("inf"), cv=5).fit(probs, labels)
    assert sel.checked_ and folds_used[-1] == 4
    # The cross-validated selector holds rows out by the same rule.
    CrossValidatedSelector(cv=5).fit(preds, y)
    CrossValidatedSelector(cv=5).fit(probs, labels)
    assert folds_used[-2:] == [3, 4]
    one_row_each = GuardedGreedySelector(min_gain=float("inf")).fit(preds[:, :3], y[:3])
    assert not one_row_each.checked_ and one_row_each.cv_curve_ is None
