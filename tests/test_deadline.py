"""The fit's one time budget (ensemble_hpo._deadline.Deadline) reaches every stage."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer

from ensemble_hpo import EnsembleClassifier
from ensemble_hpo._deadline import Deadline
from ensemble_hpo._select_fuse import SelectionData, select_and_fuse
from ensemble_hpo.fusion import WeightedAverage
from ensemble_hpo.selection import GreedySelector


def test_deadline_arithmetic_and_stage_timings():
    deadline = Deadline(100.0, start=1000.0)
    assert (deadline.end, deadline.search_end) == (1100.0, 1095.0)
    assert deadline.expired() and deadline.remaining() == 0.0  # 1970 is long past
    free = Deadline(None)
    assert free.end is None and free.search_end is None
    assert free.remaining() == math.inf and not free.expired()
    with free.stage("a"):
        time.sleep(0.01)
    with free.stage("a"):
        pass
    assert free.timings["a"] >= 0.01


@pytest.fixture(scope="module")
def fitted():
    X, y = load_breast_cancer(return_X_y=True)
    model = EnsembleClassifier(models=["logistic", "knn"], time_budget=6, cv=3, random_state=0)
    return model.fit(X[:300], y[:300]), X[:300], y[:300]


def test_fit_reports_where_its_time_went(fitted):
    model, _, _ = fitted
    assert set(model.fit_timings_) == {"search", "selection and fusion", "accuracy-latency front",
                                      "prediction cost"}
    assert sum(model.fit_timings_.values()) <= model.fit_time_
    assert model.fit_timings_["search"] <= 6 * 0.95 + 2.0  # stops starting candidates at 95 %


def test_an_expired_deadline_skips_the_other_fusers_but_scores_the_chosen_one(fitted):
    model, X, y = fitted
    population = model.population_.with_available_models()
    data = SelectionData(y=model.selection_target_, task="classification",
                         splits=model.cv_splits_, n_classes=2)
    kwargs = dict(scoring=None, random_state=0)
    late = select_and_fuse(population, GreedySelector(), WeightedAverage(), data,
                           deadline=time.time() - 1, **kwargs)
    on_time = select_and_fuse(population, GreedySelector(), WeightedAverage(), data,
                              deadline=time.time() + 600, **kwargs)
    assert list(late.fusion_comparison["fusion"]) == ["WeightedAverage"]
    assert len(on_time.fusion_comparison) > 1
    assert np.isfinite(late.cv_score) and late.cv_score == pytest.approx(on_time.cv_score)
