"""The mined warm-start portfolio shipped as package data (issue 17)."""

from __future__ import annotations

import numpy as np
import optuna
import pytest
from sklearn.datasets import load_breast_cancer

from ensemble_hpo import EnsembleClassifier
from ensemble_hpo.search import SearchRun
from ensemble_hpo.search._strategy import make_strategy
from ensemble_hpo.spaces import BUILTIN_FAMILIES, DEFAULT_FAMILIES, SearchSpace, get_family
from ensemble_hpo.spaces._portfolio import (
    DEFAULT_KIND,
    FORMAT_VERSION,
    load_portfolio,
    mined_configs,
    mined_families,
)

TASKS = ("classification", "regression")


def test_shipped_file_is_versioned_and_records_its_provenance() -> None:
    content = load_portfolio()
    assert content["format_version"] == FORMAT_VERSION
    assert set(content["families"]) == set(DEFAULT_FAMILIES)
    for task in TASKS:
        entry = content["tasks"][task]
        assert len(entry["tables"]) >= 20
        assert entry["n_evaluations"] >= len(entry["tables"]) * entry["n_candidates"]
        assert 3 <= len(entry["configs"]) <= entry["n_candidates"]
        ids = [c["id"] for c in entry["configs"]]
        assert len(set(ids)) == len(ids)


@pytest.mark.parametrize("task", TASKS)
def test_mined_configs_are_points_of_their_family_space(task: str) -> None:
    """Enqueued into a study, every mined configuration is suggested back unchanged."""
    configs = mined_configs(task)
    families = {name for name, _ in configs}
    assert families <= set(DEFAULT_FAMILIES)
    space = SearchSpace.from_models(sorted(families), task=task)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for name, params in configs:
        assert get_family(name).supports(task)
        study.enqueue_trial(space.to_trial_params(name, params))
    for name, params in configs:
        trial = study.ask()
        family, suggested = space.suggest(trial)
        assert (family.name, suggested) == (name, params)
        family.build(task, suggested)  # the estimator accepts them
        study.tell(trial, 0.0)


@pytest.mark.parametrize("task", TASKS)
def test_auto_space_runs_the_mined_list_in_order(task: str) -> None:
    space = SearchSpace.from_models("auto", task=task)
    mined = [space.to_trial_params(n, p) for n, p in mined_configs(task)]
    portfolio = space.portfolio("mined")
    # Families the file was not mined over (the MLP of regression's "auto") are interleaved.
    others = [f for f in space.families if f.name not in mined_families()]
    assert [p for p in portfolio if p["family"] in {f.name for f in others}] == \
        SearchSpace(families=tuple(others), task=task).portfolio("defaults")
    portfolio = [p for p in portfolio if p["family"] not in {f.name for f in others}]
    assert portfolio[: len(mined)] == mined
    # auto families mining left out run their own defaults afterwards, cheapest first
    unmined = [f for f in space.families if f.name not in {n for n, _ in mined_configs(task)}
               and f not in others]
    expected_tail = SearchSpace(families=tuple(unmined), task=task).portfolio("defaults")
    assert portfolio[len(mined):] == expected_tail


def test_restricted_space_keeps_the_mined_order_of_its_families() -> None:
    space = SearchSpace.from_models(["knn", "random_forest"], task="classification")
    expected = [space.to_trial_params(n, p) for n, p in mined_configs("classification")
                if n in ("knn", "random_forest")]
    assert len(expected) >= 2
    assert space.portfolio("mined") == expected


def test_defaults_is_todays_one_per_family_list() -> None:
    space = SearchSpace.from_models("auto", task="classification")
    order = ["logistic", "knn", "xgboost", "hist_gradient_boosting", "extra_trees", "random_forest"]
    expected = [space.to_trial_params(f, get_family(f).portfolio[0]) for f in order]
    expected.append(space.to_trial_params("xgboost", get_family("xgboost").portfolio[1]))
    assert space.portfolio("defaults") == expected


def test_portfolio_is_the_recommended_kind() -> None:
    """``"portfolio"`` (the default) stays today's defaults until the LOTO simulation says otherwise."""
    assert DEFAULT_KIND in ("defaults", "mined")
    for task in TASKS:
        space = SearchSpace.from_models("auto", task=task)
        assert space.portfolio() == space.portfolio("portfolio") == space.portfolio(DEFAULT_KIND)


def test_families_outside_the_mined_list_keep_their_own_portfolio_interleaved() -> None:
    custom = {"base": "xgboost", "portfolio": [{"learning_rate": 0.2, "max_depth": 3}]}
    space = SearchSpace.from_models(["knn", "svm", custom], task="classification")
    mined_knn = [space.to_trial_params(n, p) for n, p in mined_configs("classification") if n == "knn"]
    own = [space.to_trial_params("xgboost", custom["portfolio"][0]),      # cost 1.0
           space.to_trial_params("svm", get_family("svm").portfolio[0])]  # cost 3.0
    assert len(mined_knn) >= 2
    # mined, own, mined, own, then the rest of the mined list; the customised xgboost gets no
    # mined configuration, though xgboost is in the file
    expected = [mined_knn[0], own[0], mined_knn[1], own[1]] + mined_knn[2:]
    assert space.portfolio("mined") == expected


def test_a_family_with_no_mined_configuration_keeps_its_defaults() -> None:
    assert BUILTIN_FAMILIES["svm"].name not in load_portfolio()["families"]
    space = SearchSpace.from_models(["svm"], task="regression")
    assert space.portfolio("mined") == space.portfolio("defaults")


def test_unknown_kind_is_refused_with_the_accepted_names() -> None:
    space = SearchSpace.from_models("auto", task="regression")
    with pytest.raises(ValueError, match=r"'portfolio', 'defaults', 'mined'.*Got 'best'"):
        space.portfolio("best")
    run = SearchRun(strategy=make_strategy("random"), space=space, warm_start="best")
    with pytest.raises(ValueError, match="'defaults'"):
        run._check(5)


@pytest.mark.parametrize("warm_start", ["defaults", "mined", "portfolio"])
def test_fit_runs_the_chosen_warm_start_first(warm_start: str) -> None:
    X, y = load_breast_cancer(return_X_y=True)
    idx = np.random.default_rng(0).choice(len(y), 150, replace=False)
    models = ["logistic", "knn"]
    clf = EnsembleClassifier(models=models, n_trials=3, cv=3, random_state=0,
                             warm_start_configs=warm_start).fit(X[idx], y[idx])
    space = SearchSpace.from_models(models, task="classification")
    expected = space.portfolio(warm_start)[:3]
    assert len(expected) >= 2
    assert [t.params for t in clf.trials_[: len(expected)]] == expected
