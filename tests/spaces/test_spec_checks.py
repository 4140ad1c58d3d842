"""A spec family that would fail every candidate is refused before training."""

from __future__ import annotations

import pytest
from optuna.distributions import IntDistribution
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import Ridge

from ensemble_hpo.spaces import ModelFamily, SearchSpace, family_from_spec

FOREST = "sklearn.ensemble.RandomForestClassifier"


@pytest.mark.parametrize("spec, named", [
    ({"params": {"n_estimatorz": {"type": "int", "low": 10, "high": 50}}}, "n_estimatorz"),
    ({"fixed": {"max_dept": 3}}, "max_dept"),
    ({"portfolio": [{"min_samples_lef": 2}]}, "min_samples_lef"),
])
def test_a_parameter_the_class_does_not_take(spec, named):
    with pytest.raises(ValueError, match=f"only set parameters its classifier.*{named}"):
        family_from_spec({"name": "forest", "classifier": FOREST, **spec})


def test_a_classifier_without_probabilities():
    with pytest.raises(ValueError, match="predict_proba.*LinearSVC"):
        family_from_spec({"name": "lsvc", "classifier": "sklearn.svm.LinearSVC",
                          "params": {"C": {"type": "float", "low": 0.1, "high": 1.0}}})


def test_a_valid_spec_and_a_factory_function_pass():
    family_from_spec({"name": "forest", "classifier": FOREST, "fixed": {"max_depth": 3},
                      "params": {"n_estimators": {"type": "int", "low": 10, "high": 50}}})
    family_from_spec({"name": "f", "classifier": lambda **kw: None, "fixed": {"anything": 1}})


@pytest.mark.parametrize("models, match", [
    # A built-in family overridden by a spec: its class's parameters are checked too.
    ([{"base": "random_forest", "params": {"n_estimator": {"type": "int", "low": 10, "high": 50}}}],
     r"must only set parameters its classifier RandomForestClassifier takes.*n_estimator"),
    ([{"base": "random_forest", "fixed": {"n_job": 1}}], r"takes.*n_job"),
    # The MLP's width/depth only map to hidden_layer_sizes through its own transform.
    ([{"base": "mlp", "params": {"width": {"type": "int", "low": 8, "high": 64}}}], r"width"),
    ([ModelFamily("rf", RandomForestClassifier,
                  params={"n_estimator": IntDistribution(10, 50)})], r"n_estimator"),
    ([ModelFamily("ridge_clf", classifier=Ridge)], "classifier with predict_proba"),
])
def test_every_family_is_checked_before_training_whatever_made_it(models, match):
    """These trained, failed every candidate and were dropped silently (audit)."""
    with pytest.raises(ValueError, match=match):
        SearchSpace.from_models(models, task="classification")


def test_a_search_space_of_the_other_task_is_refused():
    space = SearchSpace.from_models(["ridge", "knn"], task="regression")
    with pytest.raises(ValueError, match="SearchSpace for classification. Got one built for regression"):
        SearchSpace.from_models(space, task="classification")
    assert SearchSpace.from_models(space, task="regression") is space


@pytest.mark.parametrize("spec, match", [
    ({"type": "float", "low": 1e-4, "high": 1e3, "lg": True}, r"only have the keys.*\['lg'\]"),
    ({"type": "float", "low": 1e-4, "high": 1e3, "log": "false"}, "'log' of parameter 'p' must be true"),
    ({"type": "int", "low": 0.5, "high": 3.9}, "'low' of int parameter 'p' must be a whole number"),
    ({"type": "categorical", "choices": "rbf"}, "'choices' of parameter 'p' must be a non-empty list"),
    ({"type": "float", "low": 0.0, "high": 1.0, "step": "tenth"}, "'step' of parameter 'p' must be a finite"),
    ({"type": "int", "low": float("inf"), "high": 3}, "'low' of int parameter 'p' must be a whole number"),
    ({"type": "float", "low": 2.0, "high": 1.0}, "spec of parameter 'p' is invalid"),
    ({"type": "int", "high": 3}, "misses the key 'low'"),
])
def test_a_distribution_spec_is_read_strictly(spec, match):
    """Each of these searched another space silently, or failed with a bare TypeError (audit)."""
    from ensemble_hpo.spaces import distribution_from_spec

    with pytest.raises(ValueError, match=match):
        distribution_from_spec("p", spec)


C = {"C": {"type": "float", "low": 0.1, "high": 10, "log": True}}


@pytest.mark.parametrize("extra, match", [
    ({"params": [1, 2]}, "'params' of model family spec 'lr' must be a mapping"),
    ({"params": C, "conditions": {"C": {"kernl": ["rbf"]}}}, "'conditions' of model family spec"),
    ({"params": {**C, "fit_intercept": [True, False]},
      "conditions": {"C": {"fit_intercept": True}}}, r"\[allowed values\]"),
    ({"params": C, "preprocessing": "bogus"}, "'preprocessing' of model family spec 'lr'"),
    ({"params": C, "portfolio": [{"C": 1.0, "max_iter": 5}]}, r"only set tuned parameters.*max_iter"),
])
def test_spec_parts_that_would_do_nothing_are_refused(extra, match):
    with pytest.raises(ValueError, match=match):
        family_from_spec({"name": "lr", "classifier": "sklearn.linear_model.LogisticRegression",
                          **extra})


def test_a_spec_with_base_keeps_the_base_fixed_settings_it_does_not_override():
    family = family_from_spec({"base": "xgboost", "fixed": {"max_bin": 64}})
    assert family.fixed["max_bin"] == 64 and family.fixed["n_jobs"] == 1


def test_yaml_exponents_without_a_dot_are_numbers():
    """PyYAML reads 1e-3 as a string; the strict reading refused it (review)."""
    import yaml

    from ensemble_hpo.spaces import distribution_from_spec

    spec = yaml.safe_load("type: float\nlow: 1e-3\nhigh: 1e3\nlog: true")
    assert isinstance(spec["low"], str)
    dist = distribution_from_spec("C", spec)
    assert (dist.low, dist.high, dist.log) == (0.001, 1000.0, True)


def test_a_spec_without_base_or_estimator_says_so():
    """Audit: {name: foo} was reported as a family that does not support the task."""
    with pytest.raises(ValueError, match="must give a 'base' built-in family or a 'classifier'"):
        family_from_spec({"name": "foo", "params": {}})


def test_a_fixed_value_takes_its_parameter_out_of_the_base_familys_search():
    """Audit: base random_forest with fixed max_depth 2 searched depths None to 16 (sampled
    values override fixed ones) without a word; fixed max_depth -5 was never even used."""
    from sklearn.datasets import load_iris

    from ensemble_hpo import EnsembleClassifier

    shallow = family_from_spec({"name": "rf_shallow", "base": "random_forest",
                                "fixed": {"max_depth": 2}})
    assert "max_depth" not in shallow.params and shallow.fixed["max_depth"] == 2
    assert all("max_depth" not in config for config in shallow.portfolio)
    X, y = load_iris(return_X_y=True)
    model = EnsembleClassifier(models=[{"name": "rf_shallow", "base": "random_forest",
                                        "fixed": {"max_depth": 2}}], n_trials=3, cv=3,
                               random_state=0).fit(X, y)
    forests = [m.models[0] for m in model.ensemble_.members]
    assert {f[-1].max_depth for f in forests} == {2}
    # A child conditioned on a fixed parent: tuned when the fixed value allows it, else never.
    assert "gamma" not in family_from_spec({"name": "lin", "base": "svm",
                                            "fixed": {"kernel": "linear"}}).params
    rbf = family_from_spec({"name": "rbf", "base": "svm", "fixed": {"kernel": "rbf"}})
    assert "gamma" in rbf.params and "gamma" not in rbf.conditions
    with pytest.raises(ValueError, match=r"both fixes and searches \['max_depth'\]"):
        family_from_spec({"name": "f", "classifier": FOREST, "fixed": {"max_depth": 3},
                          "params": {"max_depth": {"type": "int", "low": 2, "high": 8}}})


@pytest.mark.parametrize("params, portfolio, outside", [
    ({"C": {"type": "float", "low": 0.01, "high": 0.1}}, {"C": 1000.0}, "C"),
    ({"weights": ["uniform"]}, {"weights": "distance"}, "weights"),
    (None, {"n_neighbors": "five"}, "n_neighbors"),
])
def test_a_portfolio_value_outside_its_distribution_is_refused_before_training(
        params, portfolio, outside):
    """Audit: C=1000 trained a candidate outside C in [0.01, 0.1]; 'distance' outside the
    choices and 'five' failed a candidate that counted against n_trials."""
    from sklearn.datasets import load_iris

    from ensemble_hpo import EnsembleClassifier

    base = "logistic" if outside == "C" else "knn"
    spec = {"base": base, "portfolio": [portfolio], **({"params": params} if params else {})}
    with pytest.raises(ValueError, match=rf"must give values inside the searched distributions.*"
                                         rf"Got \{{'{outside}'"):
        EnsembleClassifier(models=[spec], n_trials=2, cv=3).fit(*load_iris(return_X_y=True))


def test_a_spec_with_its_own_ranges_keeps_the_base_portfolio_points_inside_them():
    """Audit: a spec with 'params' had no warm start at all."""
    forest = family_from_spec({"base": "random_forest",
                               "params": {"n_estimators": {"type": "int", "low": 50, "high": 300}}})
    assert forest.portfolio == ({"n_estimators": 100},)
    booster = family_from_spec({"base": "xgboost", "params": {
        "max_depth": {"type": "int", "low": 2, "high": 5},
        "learning_rate": {"type": "float", "low": 0.01, "high": 0.3, "log": True}}})
    assert booster.portfolio == ({"learning_rate": 0.05, "max_depth": 4},)  # depth 6 is outside
    narrowed = family_from_spec({"base": "knn", "params": {"n_neighbors": {"type": "int", "low": 10,
                                                                           "high": 30}}})
    assert narrowed.portfolio == ()
    space = SearchSpace.from_models([{"base": "random_forest", "params": {
        "n_estimators": {"type": "int", "low": 50, "high": 300}}}], task="classification")
    assert space.portfolio("defaults") == [{"family": "random_forest",
                                            "random_forest__n_estimators": 100}]
