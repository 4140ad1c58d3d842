"""A seeded run's leaderboard and weights are pinned, so a refactoring cannot change them silently.

The values were produced on 2026-12-04 and are identical to those of d26aafd (before the
issue 15 changes); only cv_score_ moved there, from the in-sample -54.2946 to the nested
-54.7452 for the regressor, as intended. On 2026-12-07 the built-in regression families began
to fit the standardised target (``scale_target``): ridge and kNN are unchanged, the extra trees
break ties between splits differently on the standardised values (-57.74375 -> -57.896081), and
with them the nested estimate moved (-54.745181 -> -54.7161).
"""

from __future__ import annotations

import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes

from ensemble_hpo import EnsembleClassifier, EnsembleRegressor

PINNED = {
    "classification": (
        [(0, "logistic", -0.073563, 1.0), (4, "knn", -0.183066, 0.0),
         (2, "random_forest", -0.184599, 0.0), (5, "knn", -0.190017, 0.0),
         (3, "knn", -0.453792, 0.0), (1, "knn", -0.697426, 0.0)],
        -0.073563,
    ),
    "regression": (
        [(0, "ridge", -54.698954, 0.708333), (4, "knn", -56.649984, 0.291667),
         (5, "knn", -56.89898, 0.0), (2, "extra_trees", -57.896081, 0.0),
         (3, "knn", -59.833793, 0.0), (1, "knn", -60.369969, 0.0)],
        -54.7161,
    ),
}


def _fit(task):
    if task == "classification":
        X, y = load_breast_cancer(return_X_y=True)
        return EnsembleClassifier(models=["logistic", "knn", "random_forest"], search="random",
                                  n_trials=6, cv=3, random_state=0, warm_start_configs="defaults").fit(X, y)
    X, y = load_diabetes(return_X_y=True)
    return EnsembleRegressor(models=["ridge", "knn", "extra_trees"], search="random", n_trials=6,
                             cv=3, random_state=0, warm_start_configs="defaults").fit(X, y)


@pytest.mark.parametrize("task", sorted(PINNED))
def test_seeded_leaderboard_and_weights_are_pinned(task):
    model = _fit(task)
    board, cv_score = PINNED[task]
    got = [(int(r.number), r.family, float(r.score), float(r.weight))
           for r in model.leaderboard_.itertuples()]
    assert [(n, f) for n, f, _, _ in got] == [(n, f) for n, f, _, _ in board]
    for (_, _, score, weight), (_, _, want_score, want_weight) in zip(got, board, strict=True):
        assert score == pytest.approx(want_score, abs=1e-6)
        assert weight == pytest.approx(want_weight, abs=1e-6)
    assert model.cv_score_ == pytest.approx(cv_score, abs=1e-6)
