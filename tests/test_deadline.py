"""The fit's one time budget (ensemble_hpo._deadline.Deadline) reaches every stage."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer

from ensemble_hpo import EnsembleClassifier
from ensemble_hpo._deadline import Deadline
from ensemble_hpo._select_fuse import SelectionData, select_and_fuse
from ensemble_hpo.fusion import WeightedAverage
from ensemble_hpo.selection import GreedySelector


def test_deadline_arithmetic_and_stage_timings():
    deadline = Deadline(100.0, start=1000.0)
    assert (deadline.end, deadline.search_end) == (1100.0, 1095.0)
    assert deadline.expired() and deadline.remaining() == 0.0  # 1970 is long past
    free = Deadline(None)
    assert free.end is None and free.search_end is None
    assert free.remaining() == math.inf and not free.expired()
    with free.stage("a"):
        time.sleep(0.01)
    with free.stage("a"):
        pass
    assert free.timings["a"] >= 0.01


@pytest.fixture(scope="module")
def fitted():
    X, y = load_breast_cancer(return_X_y=True)
    model = EnsembleClassifier(models=["logistic", "knn"], time_budget=6, cv=3, random_state=0)
    return model.fit(X[:300], y[:300]), X[:300], y[:300]


def test_fit_reports_where_its_time_went(fitted):
    model, _, _ = fitted
    assert set(model.fit_timings_) == {"search", "selection and fusion", "accuracy-latency front",
                                      "prediction cost"}
    assert sum(model.fit_timings_.values()) <= model.fit_time_
    assert model.fit_timings_["search"] <= 6 * 0.95 + 2.0  # stops starting candidates at 95 %


def test_an_expired_deadline_skips_the_other_fusers_but_scores_the_chosen_one(fitted):
    model, X, y = fitted
    population = model.population_.with_available_models()
    data = SelectionData(y=model.selection_target_, task="classification",
                         splits=model.cv_splits_, n_classes=2)
    kwargs = dict(scoring=None, random_state=0)
    late = select_and_fuse(population, GreedySelector(), WeightedAverage(), data,
                           deadline=time.time() - 1, **kwargs)
    on_time = select_and_fuse(population, GreedySelector(), WeightedAverage(), data,
                              deadline=time.time() + 600, **kwargs)
    assert list(late.fusion_comparison["fusion"]) == ["WeightedAverage"]
    assert len(on_time.fusion_comparison) > 1
    assert np.isfinite(late.cv_score) and late.cv_score == pytest.approx(on_time.cv_score)


def _family_trial(study, family: str, state, **attrs):
    import optuna

    study.add_trial(optuna.trial.create_trial(
        state=state, value=0.0 if state == optuna.trial.TrialState.COMPLETE else None,
        user_attrs={"family": family, **attrs}))


def test_the_pace_of_a_family_counts_pruned_and_deadline_stopped_candidates():
    """A family too slow to finish must still teach later candidates its pace."""
    import optuna

    from ensemble_hpo.search._objective import CandidateObjective

    study = optuna.create_study()
    state = optuna.trial.TrialState
    _family_trial(study, "forest", state.FAIL, fold_seconds=4.0, fit_time=8.0)
    _family_trial(study, "forest", state.PRUNED, fit_time=6.0, fold_scores=[0.1, 0.2])
    _family_trial(study, "forest", state.FAIL, fit_time=0.1)  # failed in fit: no pace
    _family_trial(study, "knn", state.COMPLETE, fit_time=1.0, fold_scores=[0.1] * 5)
    trial = study.ask()
    trial.set_user_attr("family", "forest")
    assert CandidateObjective._expected_fold_seconds(trial) == pytest.approx(3.5)
    trial.set_user_attr("family", "knn")
    assert CandidateObjective._expected_fold_seconds(trial) == pytest.approx(0.2)
    trial.set_user_attr("family", "svm")
    assert CandidateObjective._expected_fold_seconds(trial) == 0.0


def test_after_a_deadline_stop_the_family_starts_no_fold_it_cannot_finish(tmp_path):
    """Before, each later candidate started a fold (no pace known) the deadline could not stop."""
    import optuna
    from _estimators_for_tests import SleepyClassifier
    from optuna.distributions import CategoricalDistribution

    from ensemble_hpo.spaces import ModelFamily

    X, y = load_breast_cancer(return_X_y=True)
    sleepy = ModelFamily("sleepy", classifier=SleepyClassifier,
                         params={"sleep": CategoricalDistribution([1.5])})
    storage = optuna.storages.InMemoryStorage()
    clf = EnsembleClassifier(models=[sleepy], search="random", cv=3, time_budget=4.0, n_jobs=1,
                             warm_start_configs=None, storage=storage, run_dir=str(tmp_path),
                             random_state=0)
    with pytest.raises(RuntimeError, match="No candidate could finish its cross-validation"):
        clf.fit(X[:200], y[:200])
    (name,) = optuna.get_all_study_names(storage)
    first, *later = optuna.load_study(study_name=name, storage=storage).get_trials()
    assert first.user_attrs["status"] == "timeout"
    assert first.user_attrs["fold_seconds"] == pytest.approx(1.5, abs=0.5)
    assert "its folds took" in first.user_attrs["error"]
    assert later
    for trial in later:  # stopped before its first fold, at the pace the first one measured
        assert trial.user_attrs["status"] == "skipped"  # nothing trained: not a timeout
        assert trial.user_attrs["fit_time"] < 0.5
        assert "during fold 0" in trial.user_attrs["error"]


def test_a_refit_fit_keeps_its_own_share_of_the_budget():
    from ensemble_hpo._deadline import POST_SEARCH_SHARE, REFIT_SHARE

    folds = Deadline.for_fit(100.0, "folds")
    refit = Deadline.for_fit(100.0, "refit")
    assert folds.search_end - folds.start == pytest.approx(100.0 * (1 - POST_SEARCH_SHARE))
    assert refit.search_end - refit.start == pytest.approx(100.0 * (1 - POST_SEARCH_SHARE
                                                                    - REFIT_SHARE))
    assert Deadline.for_fit(None, "refit").search_end is None


def test_refit_estimate_scales_a_members_mean_fold_fit_to_all_rows():
    from types import SimpleNamespace

    from ensemble_hpo._fit_plan import FitPlan

    y = np.zeros(100)
    splits = [(np.arange(80), np.arange(80, 100))] * 5  # folds train on 80 % of the rows
    plan = SimpleNamespace(evaluator=SimpleNamespace(y=y, splits=splits))
    population = SimpleNamespace(completed=lambda: [SimpleNamespace(number=3, fit_time=10.0),
                                                    SimpleNamespace(number=7, fit_time=4.0)])
    members = [SimpleNamespace(number=3, models=[None] * 5), SimpleNamespace(number=7, models=[None] * 5)]
    # 10 s / 5 folds / 0.8 + 4 s / 5 / 0.8
    assert FitPlan.refit_seconds(plan, SimpleNamespace(members=members), population) == pytest.approx(3.5)


def test_a_refit_that_cannot_fit_in_the_budget_keeps_the_fold_models(monkeypatch):
    from ensemble_hpo._fit_plan import FitPlan

    X, y = load_breast_cancer(return_X_y=True)
    model = EnsembleClassifier(models=["logistic"], time_budget=4, cv=3, random_state=0,
                               final_models="refit")
    monkeypatch.setattr(FitPlan, "refit_seconds", lambda self, ensemble, population: 1e9)
    with pytest.warns(UserWarning, match="final_models='refit' was skipped"):
        model.fit(X[:200], y[:200])
    assert model.final_models_ == "folds"
    assert all(len(m.models) == 3 for m in model.ensemble_.members)
    assert "refit" in model.fit_timings_
    monkeypatch.setattr(FitPlan, "refit_seconds", lambda self, ensemble, population: 0.0)
    model.fit(X[:200], y[:200])
    assert model.final_models_ == "refit"
    assert all(len(m.models) == 1 for m in model.ensemble_.members)


def test_folds_may_use_the_whole_budget_while_no_candidate_has_finished():
    """A 30 s svm fit raised 'every candidate failed' after 24.9 s: the only candidate was
    stopped before its 5th fold at the search's deadline, with the fit's reserve unused (audit)."""
    from types import SimpleNamespace

    from ensemble_hpo.search._objective import CandidateObjective

    objective = CandidateObjective(None, None, None, None, deadline=100.0, final_deadline=110.0)

    def trial_with(finished):
        study = SimpleNamespace(get_trials=lambda deepcopy, states: finished)
        return SimpleNamespace(study=study)

    assert objective._fold_deadline(trial_with([])) == 110.0
    assert objective._fold_deadline(trial_with(["a finished candidate"])) == 100.0
    alone = CandidateObjective(None, None, None, None, deadline=100.0)  # the search used alone
    assert alone._fold_deadline(trial_with([])) == 100.0


def test_fit_hands_the_search_its_own_end(monkeypatch):
    from ensemble_hpo.search import SearchRun

    seen = {}
    original = SearchRun.run

    def spy(self, *args, **kwargs):
        seen.update(kwargs)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(SearchRun, "run", spy)
    X, y = load_breast_cancer(return_X_y=True)
    EnsembleClassifier(models=["logistic"], time_budget=4, cv=3, random_state=0).fit(X[:200], y[:200])
    assert seen["final_deadline"] - seen["deadline"] == pytest.approx(4 * 0.05, abs=1e-6)


def test_one_slow_family_out_of_time_does_not_stop_the_others():
    """random_forest out of time stopped a 30 s search at 22.4 s after two logistic
    candidates (audit); the search now stops when no family fits, or after a run of
    unstarted candidates."""
    import time as clock
    from types import SimpleNamespace

    from optuna.trial import TrialState

    from ensemble_hpo.search._objective import CandidateObjective

    def done(family, fold_seconds, unstarted=False):
        attrs = {"family": family, "fold_seconds": fold_seconds}
        if unstarted:
            attrs["unstarted"] = True
        return SimpleNamespace(state=TrialState.FAIL, user_attrs=attrs)

    def out_of_time(families, finished, left=5.0):
        space = SimpleNamespace(family_names=families)
        objective = CandidateObjective(space, None, None, None, deadline=clock.time() + left)
        study = SimpleNamespace(get_trials=lambda deepcopy, states: finished)
        return objective._out_of_time_for_every_family(SimpleNamespace(study=study))

    slow_forest = [done("random_forest", 7.4)]
    assert not out_of_time(["random_forest", "logistic"], slow_forest)  # logistic's pace unknown
    assert not out_of_time(["random_forest", "logistic"], slow_forest + [done("logistic", 0.02)])
    assert out_of_time(["random_forest"], slow_forest)
    assert out_of_time(["random_forest", "logistic"], slow_forest + [done("logistic", 9.0)])
    unstarted = [done("random_forest", 7.4, unstarted=True)] * 5
    assert out_of_time(["random_forest", "logistic"], [done("logistic", 0.02)] + unstarted)
