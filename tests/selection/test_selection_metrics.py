"""The vectorised metrics choose exactly what the generic scorer path chooses."""

from __future__ import annotations

import numpy as np
import pytest
from selection_data import classification_library, regression_library

from ensemble_hpo.metrics import PredictionScorer
from ensemble_hpo.selection import GreedySelector

CASES = [
    ("breast_cancer", "neg_log_loss"),
    ("breast_cancer", "accuracy"),
    ("breast_cancer", "balanced_accuracy"),
    ("breast_cancer", "roc_auc"),
    ("breast_cancer", "average_precision"),
    ("wine", "neg_log_loss"),
    ("wine", "accuracy"),
    ("wine", "balanced_accuracy"),
    ("wine", "roc_auc_ovr"),
    ("wine", "roc_auc_ovr_weighted"),
    ("diabetes", "neg_root_mean_squared_error"),
    ("diabetes", "neg_mean_absolute_error"),
    ("diabetes", "r2"),
]


def _library(name: str) -> tuple[np.ndarray, np.ndarray]:
    return regression_library() if name == "diabetes" else classification_library(name)


WEIGHTED = {"neg_log_loss", "balanced_accuracy", "roc_auc_ovr_weighted", "r2", "average_precision"}


@pytest.mark.parametrize(
    "dataset, scoring, weighted",
    [(d, s, False) for d, s in CASES] + [(d, s, True) for d, s in CASES if s in WEIGHTED],
)
def test_fast_path_matches_generic_path(dataset: str, scoring: str, weighted: bool) -> None:
    preds, y = _library(dataset)
    sw = np.random.default_rng(0).uniform(0.5, 2.0, len(y)) if weighted else None
    fast = GreedySelector(max_iter=8, scoring=scoring).fit(preds, y, sample_weight=sw)
    slow = GreedySelector(max_iter=8, scoring=scoring, fast_metrics=False)
    slow.fit(preds, y, sample_weight=sw)
    np.testing.assert_array_equal(fast.order_, slow.order_)
    np.testing.assert_allclose(fast.trajectory_, slow.trajectory_, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(fast.single_scores_, slow.single_scores_, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("dataset, scoring", CASES)
def test_score_matches_sklearn_scorer_on_blend(dataset: str, scoring: str) -> None:
    preds, y = _library(dataset)
    sel = GreedySelector(max_iter=5, scoring=scoring).fit(preds, y)
    task = "regression" if preds.ndim == 2 else "classification"
    expected = PredictionScorer(scoring, task)(y, sel.predict_ensemble(preds))
    assert sel.score_ == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_callable_scorer_uses_generic_path() -> None:
    preds, y = regression_library()

    def neg_max_error(y_true: np.ndarray, y_pred: np.ndarray) -> float:
        return -float(np.max(np.abs(y_true - y_pred)))

    sel = GreedySelector(max_iter=5, scoring=neg_max_error).fit(preds, y)
    assert sel.score_ == pytest.approx(neg_max_error(y, sel.predict_ensemble(preds)))
    assert sel.score_ >= sel.single_scores_.max()


def test_default_scoring_is_log_loss_and_rmse() -> None:
    preds, y = classification_library("breast_cancer")
    a = GreedySelector(max_iter=5).fit(preds, y)
    b = GreedySelector(max_iter=5, scoring="neg_log_loss").fit(preds, y)
    np.testing.assert_array_equal(a.order_, b.order_)
    rp, ry = regression_library()
    c = GreedySelector(max_iter=5).fit(rp, ry)
    assert c.score_ == pytest.approx(-np.sqrt(np.mean((c.predict_ensemble(rp) - ry) ** 2)))


def test_balanced_accuracy_drops_a_class_whose_rows_all_weigh_zero() -> None:
    """As scikit-learn; the fast metric divided 0 / 0 and every candidate scored NaN."""
    from sklearn.metrics import balanced_accuracy_score

    preds, y = classification_library("wine")
    sw = np.where(y == 2, 0.0, 1.0)
    fast = GreedySelector(max_iter=8, scoring="balanced_accuracy").fit(preds, y, sample_weight=sw)
    slow = GreedySelector(max_iter=8, scoring="balanced_accuracy", fast_metrics=False)
    slow.fit(preds, y, sample_weight=sw)
    expected = [balanced_accuracy_score(y, p.argmax(axis=1), sample_weight=sw) for p in preds]
    np.testing.assert_allclose(fast.single_scores_, expected, rtol=1e-9)
    np.testing.assert_array_equal(fast.order_, slow.order_)
    assert np.isfinite(fast.score_)


def test_a_label_scorer_is_called_once_per_distinct_label_vector() -> None:
    """scoring="f1" called scikit-learn once per candidate and step: a 20 s fit took 120 s."""
    from sklearn.metrics import f1_score

    from ensemble_hpo.selection._metrics import GenericMetric, make_batch_metric

    preds, y = classification_library("breast_cancer")

    def plain_f1(y_true, y_pred):  # the same metric, not known to read labels only
        return f1_score(y_true, np.argmax(y_pred, axis=1))

    memo = GreedySelector(max_iter=8, scoring="f1").fit(preds, y)
    plain = GreedySelector(max_iter=8, scoring=plain_f1).fit(preds, y)
    np.testing.assert_array_equal(memo.order_, plain.order_)
    np.testing.assert_allclose(memo.trajectory_, plain.trajectory_)
    metric = make_batch_metric("f1", "classification", 2, y, None)
    assert isinstance(metric, GenericMetric)
    sums = np.concatenate([preds, preds * 2.0, preds[::-1]]).astype(np.float64)
    scores = metric.score_sums(sums.copy(), 1.0)
    assert len(metric._by_labels) == len({p.argmax(axis=1).tobytes() for p in preds})
    np.testing.assert_allclose(scores[: len(preds)], [f1_score(y, p.argmax(axis=1)) for p in preds])


def test_average_precision_has_a_vectorised_path_for_binary_targets() -> None:
    from ensemble_hpo.selection._metrics import AveragePrecision, GenericMetric, make_batch_metric

    _, y = classification_library("breast_cancer")
    assert isinstance(make_batch_metric("average_precision", "classification", 2, y, None),
                      AveragePrecision)
    _, y3 = classification_library("wine")
    assert isinstance(make_batch_metric("average_precision", "classification", 3, y3, None),
                      GenericMetric)  # multiclass: scikit-learn decides


@pytest.mark.parametrize("name", ["batch_binary_auc", "batch_binary_average_precision"])
def test_identical_candidates_get_exactly_the_same_score(name):
    """Review: running sums over all rows at once put identical candidates 7e-13 apart, so
    ties between duplicates were broken by position."""
    from ensemble_hpo.selection import _metrics

    rng = np.random.default_rng(0)
    row = np.round(rng.random(3000), 3)
    positive, weight = rng.random(3000) < 0.3, rng.uniform(0, 1000, 3000)
    scores = getattr(_metrics, name)(np.tile(row, (300, 1)), positive, weight)
    assert len(np.unique(scores)) == 1
