"""Contract shared by the custom samplers: valid samples on any storage, in parallel too."""

from __future__ import annotations

import math
import multiprocessing
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.samplers import BaseSampler
from optuna.trial import TrialState

from ensemble_hpo.search._genetic import GeneticSampler
from ensemble_hpo.search._grid import GridSampler, expand_grid
from ensemble_hpo.search._pso import PSOSampler

optuna.logging.set_verbosity(optuna.logging.WARNING)

# A two-family conditional space shaped like the project's: "family" first, then
# "{family}__{param}"; "svm__gamma" only exists for the rbf kernel.
SPACES: dict[str, dict[str, BaseDistribution]] = {
    "svm": {
        "svm__C": FloatDistribution(1e-3, 1e3, log=True),
        "svm__kernel": CategoricalDistribution(["linear", "rbf"]),
        "svm__gamma": FloatDistribution(1e-4, 1.0, log=True),
    },
    "tree": {
        "tree__max_depth": IntDistribution(1, 12),
        "tree__max_features": FloatDistribution(0.1, 1.0, step=0.1),
        "tree__n_estimators": IntDistribution(10, 1000, log=True),
    },
}
FAMILY = CategoricalDistribution(list(SPACES))
CONDITIONS = {"svm__gamma": {"svm__kernel": ["rbf"]}}


def _suggest(trial: optuna.Trial, name: str, dist: BaseDistribution) -> Any:
    if isinstance(dist, CategoricalDistribution):
        return trial.suggest_categorical(name, dist.choices)
    if isinstance(dist, IntDistribution):
        return trial.suggest_int(name, dist.low, dist.high, step=dist.step, log=dist.log)
    return trial.suggest_float(name, dist.low, dist.high, step=dist.step, log=dist.log)


def conditional_objective(trial: optuna.Trial) -> float:
    family = _suggest(trial, "family", FAMILY)
    params = {}
    for name, dist in SPACES[family].items():
        active = all(params.get(p) in ok for p, ok in CONDITIONS.get(name, {}).items())
        if active:
            params[name] = _suggest(trial, name, dist)
    if family == "svm":
        value = (math.log10(params["svm__C"]) - 1) ** 2 / 4
        if "svm__gamma" in params:
            value += (math.log10(params["svm__gamma"]) + 2) ** 2 / 4
        return value
    return (
        0.5
        + ((params["tree__max_depth"] - 6) / 6) ** 2
        + (params["tree__max_features"] - 0.5) ** 2
        + (math.log10(params["tree__n_estimators"]) - 2) ** 2
    )


def grid_points() -> list[dict[str, Any]]:
    return [
        {"family": family, **point}
        for family, space in SPACES.items()
        for point in expand_grid(space, resolution=2, conditions=CONDITIONS)
    ]


SAMPLERS: dict[str, Callable[[int | None], BaseSampler]] = {
    "grid": lambda seed: GridSampler(grid_points(), seed=seed),
    "pso": lambda seed: PSOSampler(swarm_size=5, seed=seed),
    "genetic": lambda seed: GeneticSampler(population_size=8, seed=seed),
}


def _in_distribution(value: Any, dist: BaseDistribution) -> bool:
    if isinstance(dist, CategoricalDistribution):
        return value in dist.choices
    if not dist.low <= value <= dist.high:
        return False
    if isinstance(dist, IntDistribution):
        return isinstance(value, int) and (value - dist.low) % dist.step == 0
    if dist.step is not None:
        k = (value - dist.low) / dist.step
        return abs(k - round(k)) < 1e-8
    return True


def assert_valid_trials(study: optuna.Study) -> None:
    completed = study.get_trials(states=(TrialState.COMPLETE,))
    assert completed
    for trial in completed:
        family = trial.params["family"]
        assert family in FAMILY.choices
        expected = {"family", *SPACES[family]}
        if trial.params.get("svm__kernel") != "rbf":
            expected.discard("svm__gamma")
        assert set(trial.params) == expected
        for name, value in trial.params.items():
            dist = FAMILY if name == "family" else SPACES[family][name]
            assert _in_distribution(value, dist), (name, value)


def assert_grid_covered_once(study: optuna.Study) -> None:
    evaluated = [
        tuple(sorted(t.params.items()))
        for t in study.trials
        if t.state == TrialState.COMPLETE
    ]
    counts = Counter(evaluated)
    assert max(counts.values()) == 1
    assert set(counts) == {tuple(sorted(p.items())) for p in grid_points()}


def n_trials_for(name: str, storage_kind: str = "memory") -> int:
    # The grid stops itself once covered; ask for more so that overflow is exercised.
    if name == "grid":
        return len(grid_points()) + 2
    # SQLite commits are slow; 12 trials still run past the first generation.
    return 12 if storage_kind == "sqlite" else 30


def make_storage(kind: str, tmp_path: Path) -> optuna.storages.BaseStorage:
    if kind == "memory":
        return optuna.storages.InMemoryStorage()
    if kind == "sqlite":
        return optuna.storages.RDBStorage("sqlite:///" + str(tmp_path / "study.db"))
    return optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(tmp_path / "journal.log"))
    )


@pytest.mark.parametrize("storage_kind", ["memory", "sqlite", "journal"])
@pytest.mark.parametrize("name", list(SAMPLERS))
def test_samples_are_valid_on_every_storage(name: str, storage_kind: str, tmp_path: Path) -> None:
    study = optuna.create_study(
        sampler=SAMPLERS[name](0), storage=make_storage(storage_kind, tmp_path)
    )
    n_trials = n_trials_for(name, storage_kind)
    study.optimize(conditional_objective, n_trials=n_trials)

    assert_valid_trials(study)
    if name == "grid":
        assert_grid_covered_once(study)
        # The one trial past the grid is pruned, not a duplicate, and stops the study.
        assert [t.state for t in study.trials].count(TrialState.PRUNED) == 1
    else:
        assert len(study.get_trials(states=(TrialState.COMPLETE,))) == n_trials


@pytest.mark.parametrize("storage_kind", ["memory", "journal"])
@pytest.mark.parametrize("name", list(SAMPLERS))
def test_threads_share_a_study(name: str, storage_kind: str, tmp_path: Path) -> None:
    study = optuna.create_study(
        sampler=SAMPLERS[name](0), storage=make_storage(storage_kind, tmp_path)
    )
    study.optimize(conditional_objective, n_trials=n_trials_for(name, storage_kind), n_jobs=2)

    assert_valid_trials(study)
    if name == "grid":
        assert_grid_covered_once(study)


def _optimize_in_process(journal_path: str, name: str, n_trials: int) -> None:
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(journal_path)
    )
    study = optuna.load_study(study_name=name, storage=storage, sampler=SAMPLERS[name](None))
    study.optimize(conditional_objective, n_trials=n_trials)


def _run_all_in_process(journal_dir: str) -> None:
    # One process runs every sampler: spawning is slow, so all samplers share the workers.
    for name in SAMPLERS:
        _optimize_in_process(str(Path(journal_dir) / f"{name}.log"), name, 10)


@pytest.fixture(scope="module")
def two_process_studies(tmp_path_factory: pytest.TempPathFactory) -> dict[str, optuna.Study]:
    journal_dir = tmp_path_factory.mktemp("journals")
    studies = {}
    for name in SAMPLERS:
        storage = optuna.storages.JournalStorage(
            optuna.storages.journal.JournalFileBackend(str(journal_dir / f"{name}.log"))
        )
        studies[name] = optuna.create_study(study_name=name, storage=storage)
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_run_all_in_process, args=(str(journal_dir),)) for _ in "ab"]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert [w.exitcode for w in workers] == [0, 0]
    return studies


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_two_processes_share_a_journal_study(
    name: str, two_process_studies: dict[str, optuna.Study]
) -> None:
    study = two_process_studies[name]
    assert_valid_trials(study)
    if name == "grid":
        # 14 points, 2 x 10 trials requested: every point once, overflow pruned.
        assert_grid_covered_once(study)
        assert all(t.state != TrialState.FAIL for t in study.trials)
    else:
        assert len(study.get_trials(states=(TrialState.COMPLETE,))) == 20


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_same_seed_same_sequence(name: str) -> None:
    runs = []
    for _ in range(2):
        study = optuna.create_study(sampler=SAMPLERS[name](0))
        study.optimize(conditional_objective, n_trials=n_trials_for(name))
        runs.append([t.params for t in study.trials])
    assert runs[0] == runs[1]


def _mixed_objective(trial: optuna.Trial) -> float:
    x = trial.suggest_float("x", -5.0, 5.0)
    y = trial.suggest_float("y", 1e-3, 10.0, log=True)
    k = trial.suggest_int("k", 0, 20)
    return (x - 1) ** 2 + math.log10(y) ** 2 + (k - 7) ** 2 / 20


def _mean_best(make_sampler: Callable[[int], BaseSampler], objective: Callable) -> float:
    bests = []
    for seed in range(3):
        study = optuna.create_study(sampler=make_sampler(seed))
        study.optimize(objective, n_trials=80)
        bests.append(study.best_value)
    return float(np.mean(bests))


@pytest.mark.parametrize(
    ("make_sampler", "objective"),
    [
        (lambda seed: PSOSampler(seed=seed), _mixed_objective),
        (lambda seed: GeneticSampler(population_size=10, seed=seed), _mixed_objective),
        (lambda seed: GeneticSampler(population_size=10, seed=seed), conditional_objective),
    ],
    ids=["pso-numeric", "genetic-numeric", "genetic-conditional"],
)
def test_beats_random_search(make_sampler: Callable, objective: Callable) -> None:
    random_best = _mean_best(lambda seed: optuna.samplers.RandomSampler(seed=seed), objective)
    assert _mean_best(make_sampler, objective) < random_best
