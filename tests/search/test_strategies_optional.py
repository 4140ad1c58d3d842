"""Strategies with optional parts: the Gaussian-process strategy (needs torch) and the
warning of CMA-ES / PSO on spaces where they cannot do better than random sampling."""

from __future__ import annotations

import sys
import warnings

import numpy as np
import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.svm import SVC

from ensemble_hpo import EnsembleClassifier, EnsembleRegressor
from ensemble_hpo.search import BayesianSearch, EvolutionarySearch, make_strategy
from ensemble_hpo.spaces import ModelFamily, SearchSpace


def _subsample(loader, n: int = 150) -> tuple[np.ndarray, np.ndarray]:
    X, y = loader(return_X_y=True)
    idx = np.random.default_rng(0).choice(len(y), size=n, replace=False)
    return X[idx], y[idx]


# ----------------------------------------------------------------------------- gp


def test_gp_by_name_makes_optuna_gp_sampler() -> None:
    pytest.importorskip("torch")
    strategy = make_strategy("gp")
    assert isinstance(strategy, BayesianSearch) and strategy.method == "gp"
    space = SearchSpace.from_models(["logistic"], task="classification")
    assert isinstance(strategy.make_sampler(space, seed=0), optuna.samplers.GPSampler)


def test_gp_seeded_classifier_run_repeats() -> None:
    pytest.importorskip("torch")
    X, y = _subsample(load_breast_cancer)

    def params_sequence() -> list[dict]:
        # Two random start-up trials, then three proposals of the fitted GP.
        model = EnsembleClassifier(models=["logistic"], search=BayesianSearch("gp", n_startup_trials=2),
                                   n_trials=5, cv=2, warm_start_configs=None, random_state=0).fit(X, y)
        candidates = model.population_.candidates
        assert all(c.ok and c.strategy == "bayesian" for c in candidates), [c.error for c in candidates]
        return [c.params for c in candidates]

    first = params_sequence()
    assert len(first) == 5 and len({p["C"] for p in first}) == 5
    assert params_sequence() == first


def test_gp_by_name_fits_regressor() -> None:
    pytest.importorskip("torch")
    X, y = _subsample(load_diabetes)
    model = EnsembleRegressor(models=["ridge"], search="gp", n_trials=3, cv=2, random_state=0).fit(X, y)
    assert [c.status for c in model.population_.candidates] == ["ok"] * 3
    assert model.predict(X).shape == (150,)


def test_gp_without_torch_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    # A None entry makes ``import torch`` raise ImportError, as if torch were not installed.
    monkeypatch.setitem(sys.modules, "torch", None)
    space = SearchSpace.from_models(["logistic"], task="classification")
    with pytest.raises(ImportError, match="needs PyTorch.*pip install torch"):
        BayesianSearch("gp").make_sampler(space, seed=0)
    X, y = _subsample(load_breast_cancer, 60)
    with pytest.raises(ImportError, match="pip install torch"):
        EnsembleClassifier(models=["logistic"], search="gp", n_trials=2, cv=2).fit(X, y)


# ----------------------------------------------------------------------------- cmaes / pso


def _sampler_warnings(strategy: EvolutionarySearch, space: SearchSpace) -> list[warnings.WarningMessage]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        strategy.make_sampler(space, seed=0)
    return [w for w in caught if issubclass(w.category, UserWarning)]


@pytest.mark.parametrize("method", ["cmaes", "pso"])
def test_cmaes_and_pso_warn_on_the_default_multi_family_space(method: str) -> None:
    space = SearchSpace.from_models("auto", task="classification")
    caught = _sampler_warnings(EvolutionarySearch(method), space)
    assert len(caught) == 1
    message = str(caught[0].message)
    assert f"'{method}'" in message and "sampled at random" in message
    assert "'genetic'" in message and "'tpe'" in message and "one model family" in message


def test_gp_warns_on_a_multi_family_space_only() -> None:
    pytest.importorskip("torch")
    multi = SearchSpace.from_models("auto", task="classification")
    caught = _sampler_warnings(BayesianSearch("gp"), multi)
    assert len(caught) == 1 and "'gp'" in str(caught[0].message)
    single = SearchSpace.from_models(["logistic"], task="classification")
    assert _sampler_warnings(BayesianSearch("gp"), single) == []


@pytest.mark.parametrize("models", [["knn"], ["svm"], ["xgboost"]])
@pytest.mark.parametrize("method", ["cmaes", "pso"])
def test_no_warning_on_a_single_family_numeric_space(method: str, models: list[str]) -> None:
    # svm's gamma is conditional on the kernel, but C is in every trial.
    space = SearchSpace.from_models(models, task="classification")
    assert _sampler_warnings(EvolutionarySearch(method), space) == []


def test_genetic_does_not_warn_on_a_multi_family_space() -> None:
    space = SearchSpace.from_models("auto", task="regression")
    assert _sampler_warnings(EvolutionarySearch("genetic"), space) == []


def test_single_family_with_only_conditional_numbers_warns() -> None:
    family = ModelFamily("svc", classifier=SVC,
                         params={"kernel": CategoricalDistribution(["rbf", "linear"]),
                                 "gamma": FloatDistribution(1e-3, 1.0, log=True)},
                         conditions={"gamma": {"kernel": ["rbf"]}})
    space = SearchSpace.from_models([family], task="classification")
    assert len(_sampler_warnings(EvolutionarySearch("cmaes"), space)) == 1


def test_multi_family_fit_warns_once() -> None:
    X, y = _subsample(load_breast_cancer, 80)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        EnsembleClassifier(models=["logistic", "knn"], search="pso", n_trials=3, cv=2,
                           random_state=0).fit(X, y)
    ours = [w for w in caught if "sampled at random" in str(w.message)]
    assert len(ours) == 1 and ours[0].category is UserWarning
