"""PredictionScorer agrees with scikit-learn's scorers on stored predictions."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import accuracy_score, log_loss, roc_auc_score

from ensemble_hpo.metrics import PredictionScorer, check_scorer_fits, get_prediction_scorer


@settings(max_examples=50, deadline=None)
@given(n=st.integers(2, 60), k=st.integers(2, 6), seed=st.integers(0, 10_000), weighted=st.booleans())
def test_log_loss_fast_path_equals_sklearn(n, k, seed, weighted):
    rng = np.random.default_rng(seed)
    proba = rng.dirichlet(np.ones(k), size=n).astype(np.float32)
    proba[0, 0] = 0.0  # exercise clipping
    proba /= proba.sum(axis=1, keepdims=True)
    y = rng.integers(0, k, size=n)
    w = rng.uniform(0.1, 2.0, size=n) if weighted else None
    # The scorer renormalises float32 rows in float64; sklearn must see the same numbers.
    seen = proba.astype(np.float64)
    seen /= seen.sum(axis=1, keepdims=True)
    expected = -log_loss(y, seen, labels=np.arange(k), sample_weight=w)
    got = PredictionScorer("neg_log_loss", task="classification")(y, proba, sample_weight=w)
    assert got == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_generic_scorers_on_stored_probabilities(cancer):
    _, y = cancer
    rng = np.random.default_rng(0)
    p1 = np.clip(0.7 * y + 0.3 * rng.uniform(size=len(y)), 0, 1)
    proba = np.column_stack([1 - p1, p1])
    assert get_prediction_scorer("accuracy", "classification")(y, proba) == pytest.approx(
        accuracy_score(y, proba.argmax(axis=1)))
    assert get_prediction_scorer("roc_auc", "classification")(y, proba) == pytest.approx(
        roc_auc_score(y, p1))


def test_unknown_scoring_and_task_are_rejected():
    with pytest.raises(ValueError, match="The 'scoring' parameter must be a scikit-learn scorer"):
        PredictionScorer("nope", task="classification")
    with pytest.raises(ValueError, match="The 'task' parameter must be"):
        PredictionScorer("r2", task="ranking")


# roc_auc_ovr is NaN there in scikit-learn too (one-vs-rest AUC of an absent class).
@pytest.mark.parametrize("name", ["neg_brier_score", "roc_auc_ovo"])
def test_probability_scorers_score_rows_that_miss_a_class(name):
    """A held-out fold without class 2 failed ('different number of classes') for every
    probability scorer but log loss; now scored with every label, as scikit-learn would."""
    from sklearn.metrics import brier_score_loss, roc_auc_score

    from ensemble_hpo.selection import GreedySelector

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 60)
    proba = rng.dirichlet([1, 1, 1], size=60)
    expected = {
        "neg_brier_score": lambda labels, y_: -brier_score_loss(y_, proba, labels=labels),
        "roc_auc_ovo": lambda labels, y_: roc_auc_score(y_, proba, multi_class="ovo", labels=labels),
    }[name]
    assert PredictionScorer(name, "classification")(y, proba) == pytest.approx(expected([0, 1, 2], y))
    words = np.array(["ant", "bee", "cat"])
    scorer = PredictionScorer(name, "classification", classes=words)
    assert scorer(y, proba) == pytest.approx(expected(list(words), words[y]))
    assert np.isfinite(GreedySelector(scoring=name, max_iter=3).fit(np.stack([proba] * 2), y).score_)


def test_scikit_learns_loss_functions_are_refused_as_plain_callables():
    """Audit: scoring=mean_absolute_error was maximised (worst candidate kept, best_score_ +61)."""
    from sklearn.metrics import log_loss, make_scorer, mean_absolute_error, r2_score

    from ensemble_hpo.metrics import get_prediction_scorer

    for loss in (mean_absolute_error, log_loss):
        with pytest.raises(ValueError, match=f"loss '{loss.__name__}'"):
            get_prediction_scorer(loss, "regression")
    get_prediction_scorer(r2_score, "regression")  # greater is better: accepted
    get_prediction_scorer(make_scorer(mean_absolute_error, greater_is_better=False), "regression")


def _needs_every_class(y_true, proba):
    if len(np.unique(y_true)) < proba.shape[1]:
        raise ValueError("a class is missing")
    return 1.0


def test_a_long_target_is_checked_on_rows_that_hold_every_class():
    """The check scores about 1,000 of a long target's rows (selectors run on memory-mapped
    libraries); a class seen in one row only must be among them, or a metric that needs
    every class would be refused."""
    from sklearn.metrics import make_scorer

    scorer = get_prediction_scorer(make_scorer(_needs_every_class, response_method="predict_proba"),
                                   "classification")
    y = np.zeros(50_000, dtype=np.intp)
    y[1::2] = 1
    y[1] = 2  # the only row of class 2, off the evenly spread rows
    check_scorer_fits(scorer, y, 3)
    with pytest.raises(ValueError, match="must be able to score this target"):
        check_scorer_fits(scorer, y[2:], 3)
