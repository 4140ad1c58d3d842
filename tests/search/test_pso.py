"""Tests for the particle swarm sampler."""

from __future__ import annotations

import math

import numpy as np
import optuna
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from optuna.distributions import FloatDistribution, IntDistribution

from ensemble_hpo.search._pso import PSOSampler, from_unit, numeric_intersection, to_unit

optuna.logging.set_verbosity(optuna.logging.WARNING)


def quadratic(trial: optuna.Trial) -> float:
    x = trial.suggest_float("x", -5.0, 5.0)
    lr = trial.suggest_float("lr", 1e-4, 1.0, log=True)
    depth = trial.suggest_int("depth", 1, 15)
    return (x - 1) ** 2 + (math.log10(lr) + 2) ** 2 + ((depth - 5) / 5) ** 2


@settings(max_examples=60, deadline=None)
@given(
    low=st.floats(1e-3, 1e3),
    factor=st.floats(1.5, 1e3),
    u=st.floats(0.0, 1.0),
    log=st.booleans(),
)
def test_float_unit_mapping_stays_valid(low: float, factor: float, u: float, log: bool) -> None:
    dist = FloatDistribution(low, low * factor, log=log)
    value = from_unit(u, dist)
    assert dist.low <= value <= dist.high
    assert to_unit(value, dist) == pytest.approx(u, abs=1e-9)


@settings(max_examples=40, deadline=None)
@given(quarters=st.integers(0, 400), n_steps=st.integers(1, 400), u=st.floats(0.0, 1.0))
def test_stepped_float_mapping_lands_on_the_step_grid(quarters: int, n_steps: int, u: float) -> None:
    low = quarters / 4  # exact in binary, so optuna keeps the range as given
    dist = FloatDistribution(low, low + 0.25 * n_steps, step=0.25)
    value = from_unit(u, dist)
    assert dist.low <= value <= dist.high
    k = (value - low) / 0.25
    assert abs(k - round(k)) < 1e-9


@settings(max_examples=60, deadline=None)
@given(low=st.integers(1, 100), width=st.integers(0, 1000), u=st.floats(0, 1), log=st.booleans())
def test_int_unit_mapping_stays_valid(low: int, width: int, u: float, log: bool) -> None:
    step = 1 if log else 3
    dist = IntDistribution(low, low + step * width, log=log, step=step)
    value = from_unit(u, dist)
    assert isinstance(value, int)
    assert dist.low <= value <= dist.high and (value - low) % step == 0
    assert 0.0 <= to_unit(value, dist) <= 1.0


def test_log_distributions_are_normalised_in_log_space() -> None:
    dist = FloatDistribution(1e-4, 1.0, log=True)
    assert to_unit(1e-2, dist) == pytest.approx(0.5)
    assert from_unit(0.25, dist) == pytest.approx(1e-3)


def test_swarm_space_is_numeric_and_shared_by_all_completed_trials() -> None:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))

    def objective(trial: optuna.Trial) -> float:
        kind = trial.suggest_categorical("kind", ["a", "b"])
        x = trial.suggest_float("x", 0, 1)
        y = trial.suggest_float("y", 0, 1) if kind == "b" else 0.0
        trial.suggest_int("fixed", 3, 3)
        return x + y

    study.optimize(objective, n_trials=10)
    assert set(numeric_intersection(study.trials)) == {"x"}


def test_first_generation_is_random_sampling_with_the_same_seed() -> None:
    pso = optuna.create_study(sampler=PSOSampler(swarm_size=6, seed=4))
    pso.optimize(quadratic, n_trials=6)
    rand = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=4))
    rand.optimize(quadratic, n_trials=6)
    assert [t.params for t in pso.trials] == [t.params for t in rand.trials]


def test_particles_move_from_their_previous_positions() -> None:
    study = optuna.create_study(sampler=PSOSampler(swarm_size=5, seed=0))
    study.optimize(quadratic, n_trials=40)
    xs = np.array([t.params["x"] for t in study.trials]).reshape(-1, 5)
    # Later generations concentrate around the optimum x = 1.
    assert np.abs(xs[-1] - 1).mean() < np.abs(xs[0] - 1).mean()


@pytest.mark.parametrize("direction", ["minimize", "maximize"])
def test_respects_study_direction(direction: str) -> None:
    sign = 1.0 if direction == "minimize" else -1.0
    study = optuna.create_study(direction=direction, sampler=PSOSampler(swarm_size=5, seed=1))
    study.optimize(lambda t: sign * quadratic(t), n_trials=60)
    assert abs(study.best_value) < 0.5
    assert abs(study.best_params["x"] - 1) < 0.7


def test_categorical_params_are_sampled_independently() -> None:
    study = optuna.create_study(sampler=PSOSampler(swarm_size=4, seed=0))

    def objective(trial: optuna.Trial) -> float:
        kind = trial.suggest_categorical("kind", ["a", "b", "c"])
        return quadratic(trial) + (kind != "b")

    study.optimize(objective, n_trials=30)
    assert {t.params["kind"] for t in study.trials} == {"a", "b", "c"}
    assert study.best_value < 1.5


def test_same_seed_same_sequence() -> None:
    runs = []
    for _ in range(2):
        study = optuna.create_study(sampler=PSOSampler(swarm_size=5, seed=0))
        study.optimize(quadratic, n_trials=25)
        runs.append([t.params for t in study.trials])
    assert runs[0] == runs[1]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"swarm_size": 0}, "'swarm_size' parameter must be a positive int"),
        ({"swarm_size": 2.5}, "'swarm_size' parameter must be a positive int"),
        ({"inertia": -1.0}, "'inertia' parameter must be a non-negative float"),
        ({"social": "a"}, "'social' parameter must be a non-negative float"),
    ],
)
def test_invalid_params_raise(params: dict, message: str) -> None:
    study = optuna.create_study(sampler=PSOSampler(**params))
    with pytest.raises(ValueError, match=message):
        study.optimize(quadratic, n_trials=1)


def test_multi_objective_is_rejected() -> None:
    study = optuna.create_study(directions=["minimize", "minimize"], sampler=PSOSampler())
    with pytest.raises(ValueError, match="multi-objective"):
        study.optimize(lambda t: (quadratic(t), 0.0), n_trials=1)
