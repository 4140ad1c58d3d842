"""Each stage owns one registry of names, read by Python and YAML alike (issue 18)."""

from __future__ import annotations

import pytest
import yaml
from sklearn.datasets import load_breast_cancer

from ensemble_hpo import EnsembleClassifier, spaces
from ensemble_hpo.config import PRUNERS, ConfigError, build_estimator, load_config
from ensemble_hpo.fusion import FUSERS
from ensemble_hpo.search import STRATEGIES, make_strategy
from ensemble_hpo.selection import SELECTORS
from ensemble_hpo.spaces import WARM_START_KINDS

QUICK = dict(models=["logistic", "knn"], n_trials=3, cv=3, random_state=0, warm_start_configs=None)


@pytest.fixture(scope="module")
def cancer():
    X, y = load_breast_cancer(return_X_y=True)
    return X[:150], y[:150]


def _config(tmp_path, **stages):
    raw = {"name": "t", "data": {"builtin": "breast_cancer"}, "scoring": "accuracy",
           "random_state": 3, **stages}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(raw))
    return load_config(path)


@pytest.mark.parametrize("name", sorted(SELECTORS))
def test_every_selector_name_fits_from_python_and_yaml(name, cancer, tmp_path):
    model = EnsembleClassifier(selection=name, **QUICK).fit(*cancer)
    assert type(model.selector_) is SELECTORS[name]
    built = build_estimator(_config(tmp_path, selection={"method": name}), "classification", None)
    assert type(built.selection) is SELECTORS[name]
    assert built.selection.get_params()["scoring"] == "accuracy"  # the run's metric, as in Python


@pytest.mark.parametrize("name", sorted(FUSERS))
def test_every_fuser_name_fits_from_python_and_yaml(name, cancer, tmp_path):
    same_run = {**QUICK, "random_state": 3, "scoring": "accuracy"}
    model = EnsembleClassifier(fusion=name, **same_run).fit(*cancer)
    assert type(model.ensemble_.fuser) is FUSERS[name]
    built = build_estimator(_config(tmp_path, fusion={"method": name}), "classification", None)
    # The same name means the same fuser, with the same metric and seed, from both front ends.
    assert repr(built.fusion) == repr(model.ensemble_.fuser)


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_every_strategy_name_is_a_yaml_name(name, tmp_path):
    config = _config(tmp_path, search={"strategy": name})
    assert type(make_strategy(config.search.strategy)) is type(make_strategy(name))


def test_yaml_reads_the_registries_not_a_copy(tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match="must be one of"):
        _config(tmp_path, selection={"method": "nonesuch"})
    monkeypatch.setitem(SELECTORS, "nonesuch", SELECTORS["best"])
    assert _config(tmp_path, selection={"method": "nonesuch"}).selection.method == "nonesuch"


@pytest.mark.parametrize("name", sorted(FUSERS))
def test_every_registered_fuser_describes_itself_and_exports(name, cancer):
    import numpy as np

    fuser_class = FUSERS[name]
    assert fuser_class.sklearn_export in ("soft", "hard", "stacking")
    assert isinstance(fuser_class.learns_from_predictions, bool)
    X, y = cancer
    model = EnsembleClassifier(fusion=name, **QUICK).fit(X, y)
    exported = model.to_sklearn()  # dispatched on the description, not on the class
    np.testing.assert_array_equal(exported.predict(X), model.predict(X))
    if fuser_class.sklearn_export != "hard":  # hard voting has no probabilities in sklearn
        np.testing.assert_allclose(exported.predict_proba(X[:20]), model.predict_proba(X[:20]),
                                   atol=1e-6)


@pytest.mark.parametrize("kind", [*WARM_START_KINDS, None])
def test_every_warm_start_kind_is_a_yaml_name(kind, tmp_path):
    built = build_estimator(_config(tmp_path, search={"warm_start": kind}), "classification", None)
    assert built.warm_start_configs == kind


def test_yaml_warm_start_reads_the_registry(tmp_path, monkeypatch):
    from ensemble_hpo.spaces import _portfolio

    with pytest.raises(ConfigError, match="search.warm_start.*must be one of"):
        _config(tmp_path, search={"warm_start": "nonesuch"})
    monkeypatch.setattr(_portfolio, "WARM_START_KINDS", (*WARM_START_KINDS, "nonesuch"))
    monkeypatch.setattr(spaces, "WARM_START_KINDS", _portfolio.WARM_START_KINDS)
    assert _config(tmp_path, search={"warm_start": "nonesuch"}).search.warm_start == "nonesuch"


@pytest.mark.parametrize("name", sorted(PRUNERS))
def test_every_pruner_name_builds_its_optuna_pruner(name, tmp_path):
    import optuna

    built = build_estimator(_config(tmp_path, search={"pruner": name}), "classification", None)
    assert isinstance(built.pruner, optuna.pruners.BasePruner)
    assert type(built.pruner) is type(PRUNERS[name]())
    with pytest.raises(ConfigError, match="search.pruner.*must be one of"):
        _config(tmp_path, search={"pruner": "nonesuch"})


@pytest.mark.parametrize("key, value", [("random_state", True), ("search.n_trials", True),
                                        ("parallel.n_jobs", "2"), ("cv", 5.0)])
def test_integer_settings_refuse_booleans_and_strings(tmp_path, key, value):
    """YAML's true was read as 1 (random_state: true ran with seed 1; audit)."""
    raw = {"data": {"builtin": "iris"}}
    section, _, field = key.rpartition(".")
    (raw.setdefault(section, {}) if section else raw)[field] = value
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match=field):
        load_config(path)
