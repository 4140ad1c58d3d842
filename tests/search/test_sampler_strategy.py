"""A user's Optuna sampler as the search strategy."""

from __future__ import annotations

import optuna
from sklearn.datasets import load_breast_cancer

from ensemble_hpo import EnsembleClassifier

X, y01 = load_breast_cancer(return_X_y=True)


def test_a_sampler_object_gives_the_same_search_on_every_fit():
    model = EnsembleClassifier(models=["logistic", "knn"], search=optuna.samplers.RandomSampler(seed=3),
                               n_trials=4, cv=3, random_state=0, warm_start_configs=None)
    first = model.fit(X, y01).leaderboard_["params"].astype(str).tolist()
    assert model.fit(X, y01).leaderboard_["params"].astype(str).tolist() == first
