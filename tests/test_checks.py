"""One rule for predictions, sample_weight and the task (ensemble_hpo._checks), at every stage.

Before issue 18 selection kept float32 and refused values a hair outside [0, 1] while fusion
cast, tolerated and clipped them; four sample_weight checkers disagreed about a zero sum.
These tests feed the same input to every registered selector and fuser (and the fit-data
checks) and require the same verdict.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_iris

from ensemble_hpo import EnsembleClassifier
from ensemble_hpo._checks import check_predictions, check_sample_weight, check_task
from ensemble_hpo._resolve import make_fuser, make_selector
from ensemble_hpo.fusion import FUSERS
from ensemble_hpo.selection import SELECTORS

RNG = np.random.default_rng(0)
N = 40
Y = np.arange(N) % 2
PROBA = RNG.dirichlet([1.0, 1.0], size=(3, N))


def _stages():
    for name in SELECTORS:
        yield f"selector:{name}", lambda p, w=None, name=name: make_selector(name, 0).fit(
            p, Y, sample_weight=w)
    for name in FUSERS:
        yield f"fuser:{name}", lambda p, w=None, name=name: make_fuser(name, 0).fit(
            p, Y, sample_weight=w)


STAGES = dict(_stages())

BAD_PREDICTIONS = {
    "1-D": (np.ones(N), r"must be a 2-D array .* Got shape \(40,\)"),
    "4-D": (np.ones((2, N, 2, 1)), r"Got shape \(2, 40, 2, 1\)"),
    "one class": (np.ones((2, N, 1)), "at least 2 classes"),
    "no models": (np.ones((0, N, 2)), r"Got shape \(0, 40, 2\)"),
    "NaN": (np.where(np.arange(3)[:, None, None] == 1, np.nan, PROBA), "only finite values"),
    "above one": (PROBA * 1.5, r"probabilities in \[0, 1\]"),
    "strings": (np.full((2, N, 2), "a"), "must hold numbers"),
}


@pytest.mark.parametrize("stage", sorted(STAGES))
@pytest.mark.parametrize("case", sorted(BAD_PREDICTIONS))
def test_every_stage_refuses_bad_predictions_with_one_message(stage, case):
    predictions, match = BAD_PREDICTIONS[case]
    with pytest.raises(ValueError, match=match):
        STAGES[stage](predictions)


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_every_stage_accepts_float32_round_off_outside_unit_interval(stage):
    # float32 sums of probabilities stray by ~1e-7; selection used to refuse what fusion took.
    predictions = PROBA.astype(np.float32)
    predictions[0, 0] = [1.0 + 5e-7, -5e-7]
    STAGES[stage](predictions)


BAD_WEIGHTS = {
    "zero sum": (np.zeros(N), "must have a positive sum"),
    "negative": (np.r_[np.ones(N - 1), -1.0], r"Got 1 negative value\(s\), the first at position 39"),
    "NaN": (np.r_[np.nan, np.ones(N - 1)], r"Got 1 NaN or infinite value\(s\), the first at position 0"),
    "length": (np.ones(N - 1), "must be a 1-D array of length n_samples=40"),
}


@pytest.mark.parametrize("stage", sorted(STAGES))
@pytest.mark.parametrize("case", sorted(BAD_WEIGHTS))
def test_every_stage_refuses_bad_sample_weight_with_one_message(stage, case):
    weights, match = BAD_WEIGHTS[case]
    with pytest.raises(ValueError, match=f"The 'sample_weight' parameter {match}|{match}"):
        STAGES[stage](PROBA, weights)


def test_fit_refuses_zero_sum_weights_before_training():
    X, y = load_iris(return_X_y=True)
    model = EnsembleClassifier(models=["logistic"], n_trials=1, cv=3)
    with pytest.raises(ValueError, match="'sample_weight' parameter must have a positive sum"):
        model.fit(X, y, sample_weight=np.zeros(len(y)))
    assert not hasattr(model, "ensemble_")


def test_float32_is_returned_without_a_copy_and_round_off_is_clipped():
    library = PROBA.astype(np.float32)
    assert check_predictions(library) is library
    library[0, 0] = [1.0 + 5e-7, -5e-7]
    clipped = check_predictions(library)
    assert clipped.min() == 0.0 and clipped.max() == 1.0
    assert check_predictions(library, dtype=np.float64).dtype == np.float64


def test_weights_are_float64_and_none_stays_none():
    assert check_sample_weight(None, 3) is None
    assert check_sample_weight([1, 0, 2], 3).dtype == np.float64


def test_task_names():
    assert check_task("regression") == "regression"
    with pytest.raises(ValueError, match="The 'task' parameter must be one of"):
        check_task("ranking")


def test_class_probability_rows_must_sum_to_one_for_every_stage():
    """A model predicting [1, 1] scored a perfect fast log loss and took all the weight."""
    from ensemble_hpo.fusion import OptimizedWeights
    from ensemble_hpo.selection import GreedySelector

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    good = np.where(y[:, None] == np.arange(2), 0.8, 0.2)
    junk = np.ones((200, 2))
    for stage in (GreedySelector(), OptimizedWeights()):
        with pytest.raises(ValueError, match=r"rows sum to 1 .* Got row sums in \[1, 2\]"):
            stage.fit(np.stack([good, junk]), y)
    # Probabilities stored in float16 (rows about 5e-4 off) are still probabilities.
    noisy = rng.dirichlet(np.ones(7), size=(3, 500)).astype(np.float16)
    assert check_predictions(noisy).shape == (3, 500, 7)
