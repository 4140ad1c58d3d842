"""A fuser of the fusion comparison that fails must not cost the user's finished search."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from ensemble_hpo import EnsembleRegressor
from ensemble_hpo._nested import nested_scores
from ensemble_hpo.fusion import WeightedAverage
from ensemble_hpo.metrics import get_prediction_scorer
from ensemble_hpo.selection import GreedySelector


class _BrokenAverage(WeightedAverage):
    def _fit(self, *args, **kwargs):
        raise ArithmeticError("cannot fuse these")


def _regression_population(n_models: int = 4, n: int = 60) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    y = rng.normal(size=n)
    return y + rng.normal(scale=0.5, size=(n_models, n)), y


def test_a_failing_comparison_fuser_is_left_out_with_a_warning_and_a_nan_row():
    predictions, y = _regression_population()
    splits = [(np.arange(60)[np.arange(60) % 3 != k], np.arange(60)[np.arange(60) % 3 == k])
              for k in range(3)]
    kwargs = dict(selector=GreedySelector(), scorer=get_prediction_scorer(None, "regression"))
    with pytest.warns(RuntimeWarning, match="left out 'broken'.*cannot fuse these"):
        nested = nested_scores(predictions, y, splits,
                               fusers={"average": WeightedAverage(), "broken": _BrokenAverage()},
                               **kwargs)
    assert nested.failed == {"broken": "ArithmeticError: cannot fuse these"}
    assert list(nested.scores) == ["average"]
    table = nested.table.set_index("fusion")
    assert np.isfinite(table.loc["average", "cv_score"]) and np.isnan(table.loc["broken", "cv_score"])
    with pytest.raises(ArithmeticError):  # the fuser the ensemble uses still fails loudly
        nested_scores(predictions, y, splits, fusers={"broken": _BrokenAverage()}, **kwargs)


def test_poisson_deviance_fit_survives_the_stacking_comparison(tmp_path):
    """Stacking's ridge predicts counts below zero, which Poisson deviance cannot score.

    Before, fit raised after the search, and again on every resume of the run folder.
    """
    rng = np.random.default_rng(6)
    X = pd.DataFrame({"a": rng.normal(size=120), "b": rng.normal(size=120)})
    y = rng.poisson(np.exp(X.a)).astype(float)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        reg = EnsembleRegressor(models=["ridge", "knn"], n_trials=6, cv=3, random_state=0,
                                scoring="neg_mean_poisson_deviance", run_dir=str(tmp_path)).fit(X, y)
    assert np.isfinite(reg.cv_score_)
    failed = reg.fusion_comparison_[reg.fusion_comparison_["cv_score"].isna()]["fusion"].tolist()
    assert failed
    assert any(f"fusion comparison left out {failed[0]!r}" in str(w.message) for w in caught)
