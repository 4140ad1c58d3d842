"""Diversity statistics and their sanity properties."""

from __future__ import annotations

import numpy as np
import pytest
from selection_data import classification_library, regression_library

from ensemble_hpo.selection import GreedySelector, diversity_report


def test_identical_models_are_fully_correlated_and_agree() -> None:
    preds, y = classification_library("wine")
    same = np.stack([preds[0]] * 3)
    report = diversity_report(same, y=y)
    assert report["mean_correlation"] == pytest.approx(1.0)
    assert report["mean_disagreement"] == 0.0
    assert report["ensemble_error"] == pytest.approx(report["mean_member_error"])


def test_correlation_and_disagreement_of_different_models() -> None:
    preds, y = classification_library("breast_cancer")
    report = diversity_report(preds, np.r_[1.0, np.zeros(len(preds) - 2), 1.0], y=y)
    np.testing.assert_array_equal(report["members"], [0, len(preds) - 1])
    assert report["n_members"] == 2 and report["effective_n_members"] == pytest.approx(2.0)
    assert -1 <= report["mean_correlation"] < 1
    assert 0 < report["mean_disagreement"] < 1
    corr = report["correlation"]
    np.testing.assert_allclose(corr, corr.T)
    np.testing.assert_allclose(np.diag(corr), 1.0)
    manual = np.corrcoef(preds[0][:, 1], preds[-1][:, 1])[0, 1]
    assert report["mean_correlation"] == pytest.approx(manual)


def test_regression_ambiguity_decomposition() -> None:
    preds, y = regression_library()
    w = np.random.default_rng(0).uniform(size=len(preds))
    report = diversity_report(preds, w, y=y)
    assert report["disagreement"] is None
    assert report["ensemble_error"] == pytest.approx(
        report["mean_member_error"] - report["ambiguity"]
    )


def test_diversity_penalty_lowers_member_correlation() -> None:
    preds, y = classification_library("breast_cancer")
    mild = GreedySelector(max_iter=20, diversity=1.0, prune=None).fit(preds, y)
    strong = GreedySelector(max_iter=20, diversity=5.0, prune=None).fit(preds, y)
    r_mild = diversity_report(preds, mild.weights_)
    r_strong = diversity_report(preds, strong.weights_)
    assert r_strong["mean_correlation"] < r_mild["mean_correlation"]
    assert r_strong["n_members"] > r_mild["n_members"]


def test_report_rejects_bad_weights() -> None:
    preds, _ = regression_library()
    with pytest.raises(ValueError, match="The 'weights' parameter"):
        diversity_report(preds, np.ones(3))
