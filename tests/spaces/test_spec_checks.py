"""A spec family that would fail every candidate is refused before training."""

from __future__ import annotations

import pytest

from ensemble_hpo.spaces import family_from_spec

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
