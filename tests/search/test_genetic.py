"""Tests for the genetic algorithm sampler on mixed and family-conditional spaces."""

from __future__ import annotations

import math

import optuna
import pytest
from optuna.trial import TrialState

from ensemble_hpo.search._genetic import (
    ATTEMPTS_ATTR,
    FORCED_MUTATION_ATTR,
    PARENT_PARAMS_ATTR,
    PARENTS_ATTR,
    GeneticSampler,
)

optuna.logging.set_verbosity(optuna.logging.WARNING)

FAMILY_COST = {"xgboost": 0.0, "random_forest": 0.5, "svm": 1.0}


def family_objective(trial: optuna.Trial) -> float:
    """A conditional space like the project's: family first, then that family's params."""
    family = trial.suggest_categorical("family", list(FAMILY_COST))
    value = FAMILY_COST[family]
    if family == "xgboost":
        depth = trial.suggest_int("xgboost__max_depth", 1, 10)
        lr = trial.suggest_float("xgboost__learning_rate", 1e-3, 1.0, log=True)
        value += ((depth - 4) / 4) ** 2 + (math.log10(lr) + 1) ** 2
    elif family == "random_forest":
        value += trial.suggest_float("random_forest__max_features", 0.1, 1.0) ** 2
    else:
        kernel = trial.suggest_categorical("svm__kernel", ["linear", "rbf"])
        if kernel == "rbf":
            value += abs(math.log10(trial.suggest_float("svm__gamma", 1e-4, 1.0, log=True)) + 2)
    return value


def _children(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return [t for t in study.trials if PARENTS_ATTR in t.system_attrs]


def test_first_generation_is_random_then_children_record_their_parents() -> None:
    study = optuna.create_study(sampler=GeneticSampler(population_size=8, seed=0))
    study.optimize(family_objective, n_trials=30)

    children = _children(study)
    assert [t.number for t in children] == list(range(8, 30))
    for child in children:
        parents = [study.trials[n] for n in child.system_attrs[PARENTS_ATTR]]
        assert len(set(child.system_attrs[PARENTS_ATTR])) == 2
        assert all(p.state == TrialState.COMPLETE and p.number < child.number for p in parents)
        assert child.system_attrs[PARENT_PARAMS_ATTR] == [p.params for p in parents]


def test_without_mutation_children_inherit_every_param_but_the_forced_one() -> None:
    study = optuna.create_study(
        sampler=GeneticSampler(population_size=8, mutation_rate=0.0, seed=1)
    )
    study.optimize(family_objective, n_trials=40)

    mixed_families = 0
    first_tries = [c for c in _children(study) if c.system_attrs[ATTEMPTS_ATTR] == 1]
    assert len(first_tries) > 10  # later tries of a child that was a clone mutate more
    for child in first_tries:
        parents = child.system_attrs[PARENT_PARAMS_ATTR]
        forced = child.system_attrs[FORCED_MUTATION_ATTR]
        mixed_families += parents[0]["family"] != parents[1]["family"]
        for name, value in child.params.items():
            inherited = [p[name] for p in parents if name in p]
            if name != forced and inherited:
                assert value in inherited, (name, value, parents)
    # Different-family parents occur, and their children are still valid (checked above).
    assert mixed_families > 0


def test_parents_come_from_the_elite_of_completed_trials() -> None:
    population_size = 6
    study = optuna.create_study(sampler=GeneticSampler(population_size=population_size, seed=2))
    study.optimize(family_objective, n_trials=30)

    for child in _children(study):
        earlier = [
            t for t in study.trials if t.number < child.number and t.state == TrialState.COMPLETE
        ]
        distinct = {repr(sorted(t.params.items())): t.value for t in earlier}
        cutoff = sorted(distinct.values())[: population_size][-1]
        for number in child.system_attrs[PARENTS_ATTR]:
            assert study.trials[number].value <= cutoff


@pytest.mark.parametrize("direction", ["minimize", "maximize"])
def test_respects_study_direction(direction: str) -> None:
    sign = 1.0 if direction == "minimize" else -1.0
    study = optuna.create_study(
        direction=direction, sampler=GeneticSampler(population_size=10, seed=0)
    )
    study.optimize(lambda t: sign * family_objective(t), n_trials=60)
    assert abs(study.best_value) < 0.2
    assert study.best_params["family"] == "xgboost"


def test_mutation_rate_none_uses_one_over_n_params() -> None:
    sampler = GeneticSampler(mutation_rate=None)
    parents = [{"a": 1, "b": 2}, {"a": 1, "c": 3, "d": 4}]
    assert sampler._mutation_probability(parents) == pytest.approx(0.25)
    study = optuna.create_study(sampler=GeneticSampler(population_size=5, mutation_rate=None))
    study.optimize(family_objective, n_trials=15)
    assert len(study.get_trials(states=(TrialState.COMPLETE,))) == 15


def test_same_seed_same_sequence() -> None:
    runs = []
    for _ in range(2):
        study = optuna.create_study(sampler=GeneticSampler(population_size=6, seed=0))
        study.optimize(family_objective, n_trials=30)
        runs.append([t.params for t in study.trials])
    assert runs[0] == runs[1]


def test_parent_values_outside_a_changed_distribution_are_not_inherited() -> None:
    study = optuna.create_study(sampler=GeneticSampler(population_size=4, seed=0))
    study.optimize(lambda t: t.suggest_float("x", 0.0, 1.0), n_trials=4)
    study.optimize(lambda t: t.suggest_float("x", 5.0, 6.0), n_trials=6)
    assert all(5.0 <= t.params["x"] <= 6.0 for t in study.trials[4:])


def test_parameter_with_a_none_choice_missing_from_a_parent_is_not_inherited() -> None:
    # Regression: parents of the other family lack "b__depth", and None is one of its
    # choices, so a missing value was mistaken for an inheritable None (KeyError).
    def objective(trial: optuna.Trial) -> float:
        family = trial.suggest_categorical("family", ["a", "b"])
        if family == "a":
            return trial.suggest_float("a__x", 0.0, 1.0)
        depth = trial.suggest_categorical("b__depth", [None, 3, 6])
        return 0.5 if depth is None else depth / 10

    study = optuna.create_study(sampler=GeneticSampler(population_size=4, seed=0))
    study.optimize(objective, n_trials=40)
    assert all(t.state == TrialState.COMPLETE for t in study.trials)
    assert {t.params["family"] for t in study.trials} == {"a", "b"}


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"population_size": 1}, "'population_size' parameter must be an int >= 2"),
        ({"tournament_size": 0}, "'tournament_size' parameter must be an int >= 2"),
        ({"mutation_rate": 1.5}, "'mutation_rate' parameter must be a float in"),
        ({"crossover": "one_point"}, "'crossover' parameter must be one of"),
    ],
)
def test_invalid_params_raise(params: dict, message: str) -> None:
    study = optuna.create_study(sampler=GeneticSampler(**params))
    with pytest.raises(ValueError, match=message):
        study.optimize(family_objective, n_trials=1)


def _small_discrete_objective(trial: optuna.Trial) -> float:
    """One family (a one-choice categorical) with stepped and small integer parameters."""
    trial.suggest_categorical("family", ["random_forest"])
    n = trial.suggest_int("random_forest__n_estimators", 50, 500, step=50)
    leaf = trial.suggest_int("random_forest__min_samples_leaf", 1, 8)
    depth = trial.suggest_categorical("random_forest__max_depth", [None, 4, 8])
    return abs(n - 300) / 100 + abs(leaf - 3) + (depth != 8)


def test_children_do_not_repeat_earlier_trials() -> None:
    """Before, 74 of 190 children repeated an earlier trial exactly here: the forced mutation fell
    on the one-choice family, or a small step rounded back onto the same integer."""
    study = optuna.create_study(sampler=GeneticSampler(population_size=10, seed=0))
    study.optimize(_small_discrete_objective, n_trials=120)
    seen: set[str] = set()
    repeats = 0
    for trial in study.trials:
        key = repr(sorted(trial.params.items()))
        repeats += key in seen and PARENTS_ATTR in trial.system_attrs
        seen.add(key)
    assert repeats <= 2
    assert study.best_value < 1.0


def test_values_stay_on_a_distribution_whose_step_changed():
    """Audit: after x became stepped, children inherited the parents' off-grid floats."""
    import optuna

    from ensemble_hpo.search import GeneticSampler

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    seen = []

    def objective(trial):
        stepped = trial.number >= 10
        x = trial.suggest_float("x", 0, 10, step=1.0 if stepped else None)
        k = trial.suggest_int("k", 2, 30, step=3 if stepped else 2)
        if stepped:
            seen.append((x, k))
        return (x - 5.3) ** 2 + k

    study = optuna.create_study(sampler=GeneticSampler(population_size=5, seed=0))
    study.optimize(objective, n_trials=40)
    assert all(float(x).is_integer() and (k - 2) % 3 == 0 for x, k in seen)


def test_a_multi_objective_study_is_refused_without_leaving_a_running_trial():
    import optuna

    from ensemble_hpo.search import GeneticSampler, PSOSampler

    for sampler in (GeneticSampler(seed=0), PSOSampler(seed=0)):
        study = optuna.create_study(directions=["minimize", "minimize"], sampler=sampler)
        with pytest.raises(ValueError, match="multi-objective"):
            study.optimize(lambda t: (t.suggest_float("x", 0, 1), 0.0), n_trials=1)
        assert [t.state.name for t in study.get_trials()] == ["FAIL"]
