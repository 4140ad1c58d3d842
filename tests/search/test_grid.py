"""Tests for grid expansion and the exactly-once grid sampler."""

from __future__ import annotations

import math

import numpy as np
import optuna
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

from ensemble_hpo.search._grid import GRID_ATTR_PREFIX, GridSampler, expand_grid, grid_size
from ensemble_hpo.search._runner import WithinBudget

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _values(points: list[dict], name: str) -> list:
    return sorted({p[name] for p in points if name in p})


def test_categoricals_take_every_choice_and_product_is_full() -> None:
    space = {
        "a": CategoricalDistribution(["x", "y", "z"]),
        "b": CategoricalDistribution([True, False]),
    }
    points = expand_grid(space)
    assert len(points) == 6 == grid_size(space)
    assert {(p["a"], p["b"]) for p in points} == {(a, b) for a in "xyz" for b in (True, False)}


def test_small_int_ranges_are_enumerated() -> None:
    assert _values(expand_grid({"k": IntDistribution(2, 6)}, resolution=5), "k") == [2, 3, 4, 5, 6]
    stepped = expand_grid({"k": IntDistribution(2, 10, step=4)}, resolution=5)
    assert _values(stepped, "k") == [2, 6, 10]


def test_large_int_ranges_are_evenly_spaced() -> None:
    linear = _values(expand_grid({"k": IntDistribution(0, 100)}, resolution=5), "k")
    assert linear == [0, 25, 50, 75, 100]
    log = _values(expand_grid({"k": IntDistribution(1, 10_000, log=True)}, resolution=5), "k")
    assert log == [1, 10, 100, 1000, 10_000]


def test_floats_include_endpoints_and_respect_log_scale() -> None:
    linear = _values(expand_grid({"x": FloatDistribution(0.0, 1.0)}, resolution=3), "x")
    assert linear == [0.0, 0.5, 1.0]
    log = _values(expand_grid({"x": FloatDistribution(1e-4, 1.0, log=True)}, resolution=5), "x")
    assert log[0] == pytest.approx(1e-4) and log[-1] == pytest.approx(1.0)
    assert np.allclose(np.diff(np.log10(log)), 1.0)


def test_float_step_values_stay_on_the_step_grid() -> None:
    values = _values(expand_grid({"x": FloatDistribution(0.1, 1.0, step=0.1)}, resolution=4), "x")
    assert len(values) == 4
    assert all(abs((v - 0.1) / 0.1 - round((v - 0.1) / 0.1)) < 1e-8 for v in values)


def test_conditions_drop_inactive_children_and_deduplicate() -> None:
    space = {
        "kernel": CategoricalDistribution(["linear", "rbf", "poly"]),
        "gamma": FloatDistribution(1e-3, 1.0, log=True),
        "degree": IntDistribution(2, 4),
    }
    conditions = {"gamma": {"kernel": ["rbf", "poly"]}, "degree": {"kernel": ["poly"]}}
    points = expand_grid(space, resolution=3, conditions=conditions)
    # linear: 1 point; rbf: 3 gammas; poly: 3 gammas x 3 degrees.
    assert len(points) == 1 + 3 + 9
    assert {"kernel": "linear"} in points
    assert all("degree" not in p for p in points if p["kernel"] != "poly")


def test_chained_conditions_drop_grandchildren() -> None:
    space = {
        "use_c": CategoricalDistribution([False, True]),
        "mode": CategoricalDistribution(["a", "b"]),
        "level": IntDistribution(0, 1),
    }
    conditions = {"level": {"mode": ["b"]}, "mode": {"use_c": [True]}}
    points = expand_grid(space, conditions=conditions)
    assert points == [
        {"use_c": False},
        {"use_c": True, "mode": "a"},
        {"use_c": True, "mode": "b", "level": 0},
        {"use_c": True, "mode": "b", "level": 1},
    ]


def test_conditions_on_absent_children_are_ignored_but_bad_parents_raise() -> None:
    space = {"x": IntDistribution(0, 2)}
    assert len(expand_grid(space, conditions={"other__y": {"other__k": ["a"]}})) == 3
    with pytest.raises(ValueError, match="unknown parents"):
        expand_grid(space, conditions={"x": {"missing": [1]}})


@pytest.mark.parametrize("resolution", [1, 0, 2.5, True])
def test_invalid_resolution_raises(resolution: object) -> None:
    with pytest.raises(ValueError, match="'resolution' parameter must be an int >= 2"):
        expand_grid({"x": FloatDistribution(0, 1)}, resolution=resolution)


@settings(max_examples=40, deadline=None)
@given(
    low=st.integers(-50, 50),
    width=st.integers(0, 500),
    resolution=st.integers(2, 8),
    log=st.booleans(),
)
def test_int_axis_properties(low: int, width: int, resolution: int, log: bool) -> None:
    if log:
        low = abs(low) + 1
    dist = IntDistribution(low, low + width, log=log)
    values = _values(expand_grid({"k": dist}, resolution=resolution), "k")
    assert values[0] == dist.low and values[-1] == dist.high
    assert len(values) == min(resolution, width + 1) or len(values) < resolution
    assert all(isinstance(v, int) and dist.low <= v <= dist.high for v in values)


@settings(max_examples=40, deadline=None)
@given(
    low=st.floats(1e-6, 1e3),
    factor=st.floats(1.01, 1e4),
    resolution=st.integers(2, 8),
    log=st.booleans(),
)
def test_float_axis_properties(low: float, factor: float, resolution: int, log: bool) -> None:
    dist = FloatDistribution(low, low * factor, log=log)
    values = _values(expand_grid({"x": dist}, resolution=resolution), "x")
    assert len(values) == resolution
    assert math.isclose(values[0], dist.low) and math.isclose(values[-1], dist.high)
    assert all(dist.low <= v <= dist.high for v in values)


# --- GridSampler --------------------------------------------------------------------------

POINTS = [{"x": x, "kind": kind} for kind in ("a", "b") for x in (1, 2, 3)]


def objective(trial: optuna.Trial) -> float:
    kind = trial.suggest_categorical("kind", ["a", "b"])
    return trial.suggest_int("x", 0, 5) + (kind == "b")


def _evaluated(study: optuna.Study) -> list[dict]:
    return [t.params for t in study.trials if t.state == TrialState.COMPLETE]


def _as_set(points: list[dict]) -> set[tuple]:
    return {tuple(sorted(p.items())) for p in points}


def test_each_point_once_in_given_order_then_stops() -> None:
    study = optuna.create_study(sampler=GridSampler(POINTS))
    study.optimize(objective, n_trials=50)

    assert _evaluated(study) == POINTS
    # The trial that found no point left was pruned (not a duplicate) and stopped the study.
    assert len(study.trials) == len(POINTS) + 1
    assert study.trials[-1].state == TrialState.PRUNED and study.trials[-1].params == {}


def test_budget_smaller_than_grid_evaluates_a_prefix() -> None:
    study = optuna.create_study(sampler=GridSampler(POINTS))
    study.optimize(objective, n_trials=4)
    assert _evaluated(study) == POINTS[:4]


def test_seed_shuffles_the_order_reproducibly() -> None:
    orders = []
    for _ in range(2):
        study = optuna.create_study(sampler=GridSampler(POINTS, seed=3))
        study.optimize(objective, n_trials=len(POINTS))
        orders.append(_evaluated(study))
    assert orders[0] == orders[1]
    assert len(orders[0]) == len(POINTS) and _as_set(orders[0]) == _as_set(POINTS)
    assert orders[0] != POINTS


def test_resumed_study_retries_only_failed_points() -> None:
    study = optuna.create_study(sampler=GridSampler(POINTS))
    broken = {"x": 2}

    def flaky(trial: optuna.Trial) -> float:
        value = objective(trial)
        if trial.params["x"] == broken.get("x"):
            raise RuntimeError("transient failure")
        return value

    study.optimize(flaky, n_trials=len(POINTS), catch=(RuntimeError,))
    assert len(_evaluated(study)) == 4

    broken.clear()
    resumed = optuna.load_study(study_name=study.study_name, storage=study._storage)
    resumed.sampler = GridSampler(POINTS)
    resumed.optimize(flaky, n_trials=10)

    evaluated = _evaluated(resumed)
    assert len(evaluated) == len(POINTS) and _as_set(evaluated) == _as_set(POINTS)
    assert len(resumed.trials) == len(POINTS) + 2 + 1  # two failures, one pruned overflow


def test_a_trial_pruned_before_sampling_gives_its_point_back() -> None:
    # As a trial started past the budget by a racing worker is (search._runner.WithinBudget).
    study = optuna.create_study(sampler=GridSampler(POINTS))
    study.optimize(WithinBudget(objective, 0), n_trials=1)
    assert study.trials[0].state == TrialState.PRUNED and study.trials[0].params == {}
    study.optimize(objective, n_trials=len(POINTS))
    assert _evaluated(study) == POINTS  # the first point too, in order


def test_failed_points_are_retried_once_after_untried_points() -> None:
    def always_fails_on_2(trial: optuna.Trial) -> float:
        value = objective(trial)
        if trial.params["x"] == 2:
            raise RuntimeError("broken point")
        return value

    study = optuna.create_study(sampler=GridSampler(POINTS))
    study.optimize(always_fails_on_2, n_trials=50, catch=(RuntimeError,))

    xs = [t.params.get("x") for t in study.trials]
    assert xs == [1, 2, 3, 1, 2, 3, 2, 2, None]
    assert [t.state for t in study.trials].count(TrialState.FAIL) == 4


def test_a_different_grid_in_the_same_study_starts_afresh() -> None:
    study = optuna.create_study(sampler=GridSampler(POINTS[:2]))
    study.optimize(objective, n_trials=5)
    study.sampler = GridSampler(POINTS[2:4])
    study.optimize(objective, n_trials=5)
    assert _evaluated(study) == POINTS[:4]
    assert any(k.startswith(GRID_ATTR_PREFIX) for k in study.trials[0].system_attrs)


def test_points_of_different_families_may_have_different_keys() -> None:
    points = [{"family": "a", "a__x": 1.0}, {"family": "b", "b__k": 3}]

    def family_objective(trial: optuna.Trial) -> float:
        family = trial.suggest_categorical("family", ["a", "b"])
        if family == "a":
            return trial.suggest_float("a__x", 0.0, 2.0)
        return float(trial.suggest_int("b__k", 0, 5))

    study = optuna.create_study(sampler=GridSampler(points))
    study.optimize(family_objective, n_trials=2)
    assert _evaluated(study) == points


def test_missing_param_error_names_param_and_point() -> None:
    study = optuna.create_study(sampler=GridSampler([{"x": 1}]))
    with pytest.raises(ValueError, match=r"#0 \{'x': 1\} has no value for parameter 'kind'"):
        study.optimize(objective, n_trials=1)


def test_value_outside_distribution_raises() -> None:
    study = optuna.create_study(sampler=GridSampler([{"kind": "a", "x": 99}]))
    with pytest.raises(ValueError, match="sets 'x' to 99, which is not a point of"):
        study.optimize(objective, n_trials=1)


@pytest.mark.parametrize("points", [[], "abc", [1, 2], {"x": 1}])
def test_invalid_points_raise(points: object) -> None:
    study = optuna.create_study(sampler=GridSampler(points))
    with pytest.raises(ValueError, match="'points' parameter must be a non-empty list"):
        study.optimize(objective, n_trials=1)


def test_ask_and_tell_past_the_grid_prunes_without_error() -> None:
    study = optuna.create_study(sampler=GridSampler([{"x": 1, "kind": "a"}]))
    first = study.ask()
    study.tell(first, objective(first))
    second = study.ask()  # No optimize loop to stop: must not raise here.
    with pytest.raises(optuna.TrialPruned):
        objective(second)
    assert GridSampler(POINTS).n_points == len(POINTS)


def test_bool_point_value_does_not_match_an_int_choice() -> None:
    study = optuna.create_study(sampler=GridSampler([{"kind": "a", "x": 1}, {"kind": True}]))

    def objective_kind(trial: optuna.Trial) -> float:
        return float(trial.suggest_categorical("kind", ["a", 1]) == "a")

    study.optimize(objective_kind, n_trials=1)
    with pytest.raises(ValueError, match="sets 'kind' to True"):
        study.optimize(objective_kind, n_trials=1)


def test_a_used_up_grid_adds_no_failed_candidate_to_the_leaderboard() -> None:
    """Audit: the grid's stop showed as a 'failed' logistic candidate with no parameters."""
    from sklearn.datasets import load_breast_cancer

    from ensemble_hpo import EnsembleClassifier
    from ensemble_hpo.search import GridSearch

    X, y = load_breast_cancer(return_X_y=True)
    model = EnsembleClassifier(models=["logistic"], search=GridSearch(resolution=3), n_trials=5,
                               cv=3, random_state=0, warm_start_configs=None).fit(X[:150], y[:150])
    assert len(model.leaderboard_) == 3
    assert (model.leaderboard_["status"] == "ok").all()


def test_grid_points_off_a_step_and_partial_enqueues_get_clear_errors() -> None:
    """Audit: an off-step point reached the objective; a partial enqueue blamed the sampler."""
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(sampler=GridSampler([{"x": 0.25}]))
    with pytest.raises(ValueError, match="off its step"):
        study.optimize(lambda t: t.suggest_float("x", 0, 1, step=0.1), n_trials=1)
    study = optuna.create_study(sampler=GridSampler([{"x": 1.0, "k": "a"}, {"x": 2.0, "k": "b"}]))
    study.enqueue_trial({"x": 1.0})
    with pytest.raises(RuntimeError, match="must fix every parameter .* lacks 'k'"):
        study.optimize(lambda t: t.suggest_float("x", 0, 5) + (t.suggest_categorical("k", ["a", "b"]) == "a"),
                       n_trials=1)
