"""Workers sharing a study run exactly ``n_trials`` trials, even when they race."""

from __future__ import annotations

import threading
import time

import optuna
import pytest
from optuna.trial import TrialState

from ensemble_hpo.population import MemoryArtifactStore, Population
from ensemble_hpo.search import _runner
from ensemble_hpo.search._runner import WithinBudget, count_finished, optimize_shared


def _study() -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    return optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))


class _StartTogether:
    """An objective whose two workers both enter their first trial before either tags it,
    so each worker sets out to run all ``n_trials`` (none had started when it counted)."""

    def __init__(self) -> None:
        self.start = threading.Barrier(2, timeout=5.0)
        self.started: set[int] = set()

    def __call__(self, trial: optuna.Trial) -> float:
        if threading.get_ident() not in self.started:
            self.started.add(threading.get_ident())
            self.start.wait()
        trial.set_user_attr("worker", f"thread:{threading.get_ident()}")
        return trial.suggest_float("x", 0.0, 1.0)


@pytest.mark.parametrize("n_trials", [3, 5])
def test_two_racing_workers_run_exactly_n_trials(n_trials, monkeypatch):
    # Both workers check "fewer than n_trials started?" in the same instant after each
    # trial, so both pass it with n_trials - 1 started and each starts one more.
    barrier = threading.Barrier(2, timeout=1.0)
    check = _runner.StopAtTrials.__call__

    def together() -> None:
        try:
            barrier.wait()
        except threading.BrokenBarrierError:
            barrier.reset()  # the other worker has stopped

    def check_together(self, study, trial):
        together()
        check(self, study, trial)
        together()  # neither starts a trial before both have counted

    monkeypatch.setattr(_runner.StopAtTrials, "__call__", check_together)
    study, objective = _study(), _StartTogether()
    # One Study object per worker, as in worker processes (study.stop() is per object).
    views = [optuna.load_study(study_name=study.study_name, storage=study._storage,
                               sampler=optuna.samplers.RandomSampler(seed=i)) for i in range(2)]
    workers = [threading.Thread(target=optimize_shared, args=(view, objective),
                                kwargs={"total_trials": n_trials, "deadline": None})
               for view in views]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=30)
    assert len(study.get_trials(states=(TrialState.COMPLETE,))) == n_trials
    assert count_finished(study) == n_trials
    # The trial started too many is pruned before sampling, so it is no candidate.
    surplus = [t for t in study.trials if t.user_attrs.get("status") == "surplus"]
    assert len(surplus) == 1
    assert surplus[0].state == TrialState.PRUNED and not surplus[0].params
    assert len(Population.from_study(study, MemoryArtifactStore()).candidates) == n_trials


def test_a_trial_past_the_budget_is_surplus_and_stops_its_worker():
    study = _study()
    dist = {"x": optuna.distributions.FloatDistribution(0, 1)}
    for _ in range(3):
        study.add_trial(optuna.trial.create_trial(params={"x": 0.5}, distributions=dist, value=0.5))
    called = []
    study.optimize(WithinBudget(lambda t: called.append(t.number) or 1.0, 3), n_trials=5)
    assert called == []  # stopped after the first surplus trial, objective never run
    last = study.trials[-1]
    assert (last.number, last.state, last.user_attrs["status"]) == (3, TrialState.PRUNED, "surplus")
    assert count_finished(study) == 3


def test_an_interrupted_trial_leaves_room_in_the_budget():
    study = _study()
    dist = {"x": optuna.distributions.FloatDistribution(0, 1)}
    study.add_trial(optuna.trial.create_trial(params={"x": 0.1}, distributions=dist, value=0.1))
    study.add_trial(optuna.trial.create_trial(params={"x": 0.2}, distributions=dist,
                                              state=TrialState.FAIL, user_attrs={"status": "interrupted"}))
    called = []
    study.optimize(WithinBudget(lambda t: called.append(t.number) or 1.0, 2), n_trials=2)
    # Trial 1 was interrupted, so trial 2 is the second of the budget and trial 3 surplus.
    assert called == [2]
    assert study.trials[3].user_attrs["status"] == "surplus"


def _tagging_objective(trial: optuna.Trial) -> float:
    trial.set_user_attr("worker", f"thread:{threading.get_ident()}")
    return trial.suggest_float("x", 0.0, 1.0)


def test_a_trial_killed_before_its_worker_tagged_it_leaves_room_in_the_budget():
    # A process killed between creating a trial and tagging it leaves an untagged RUNNING
    # trial that no sweep can attribute to a dead worker yet (it is younger than
    # _ORPHAN_SECONDS). Resuming at once must still run the whole budget: the budget guard
    # and the stop check count started trials by one rule (measured in CI before the fix:
    # 7 of 8 candidates after a SIGKILL in that instant).
    study = _study()
    dist = {"x": optuna.distributions.FloatDistribution(0, 1)}
    for x in (0.1, 0.2):
        study.add_trial(optuna.trial.create_trial(params={"x": x}, distributions=dist, value=x))
    study.ask()  # the killed process's trial: RUNNING, no worker tag
    start = time.perf_counter()
    optimize_shared(study, _tagging_objective, total_trials=6, deadline=None)
    # Waited for the orphan once, while it was young enough to be a live worker's, not per trial.
    assert time.perf_counter() - start < _runner._TAG_GRACE_SECONDS + 1.0
    assert len(study.get_trials(states=(TrialState.COMPLETE,))) == 6
    assert count_finished(study) == 6
    assert not [t for t in study.trials if t.user_attrs.get("status") == "surplus"]


def test_candidates_that_trained_nothing_do_not_count_towards_n_trials():
    """Audit: a resume with n_trials=4 after 1 ok, 1 timeout and 1 skipped trial trained one
    more candidate only."""
    from optuna.trial import create_trial

    study = optuna.create_study()
    for state, status in [(TrialState.COMPLETE, "ok"), (TrialState.FAIL, "timeout"),
                          (TrialState.FAIL, "skipped"), (TrialState.FAIL, "interrupted")]:
        study.add_trial(create_trial(state=state, value=0.0 if status == "ok" else None,
                                     user_attrs={"status": status}))
    assert count_finished(study) == 2  # the ok one and the timeout (it trained folds)
