"""The objective seam (issue 18): a trial's value is separate from the candidate's own score."""

from __future__ import annotations

import numpy as np
import optuna
import pytest
from optuna.distributions import FloatDistribution
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression

from ensemble_hpo import EnsembleClassifier
from ensemble_hpo._resolve import make_selector
from ensemble_hpo.config import RunConfig
from ensemble_hpo.metrics import get_prediction_scorer
from ensemble_hpo.spaces import ModelFamily

QUICK = dict(models=["logistic", "knn"], search="random", n_trials=5, cv=3, random_state=0,
             warm_start_configs=None)


@pytest.fixture(scope="module")
def cancer():
    X, y = load_breast_cancer(return_X_y=True)
    return X[:240], y[:240]


def _complete(model):
    return [t for t in model.trials_ if t.state == optuna.trial.TrialState.COMPLETE]


def _oof(model, number):
    return np.asarray(model.population_.store.load_predictions(number), dtype=np.float32)


def test_by_default_the_value_is_the_candidate_score(cancer):
    model = EnsembleClassifier(**QUICK).fit(*cancer)
    for trial in _complete(model):
        assert trial.value == trial.user_attrs["score"]


def test_ensemble_objective_reports_gains_and_keeps_own_scores(cancer, tmp_path):
    X, y = cancer
    model = EnsembleClassifier(**QUICK, objective="ensemble", run_dir=str(tmp_path)).fit(X, y)
    trials = _complete(model)
    scorer = get_prediction_scorer(None, "classification")
    board = model.leaderboard_.set_index("number")
    selector = make_selector("greedy", 0)
    for k, trial in enumerate(trials):
        # The leaderboard keeps the candidate's own out-of-fold score, in the user's metric.
        own = scorer(y, _oof(model, trial.number))
        assert board.loc[trial.number, "score"] == pytest.approx(own)
        # Sequential run: the population a trial was compared with is the trials before it.
        with_new = selector.fit(np.stack([_oof(model, t.number) for t in trials[:k + 1]]), y).score_
        assert trial.user_attrs["ensemble_score"] == pytest.approx(with_new)
        if k:
            without = selector.fit(np.stack([_oof(model, t.number) for t in trials[:k]]), y).score_
            assert trial.value == pytest.approx(with_new - without)
    assert any(t.value != t.user_attrs["score"] for t in trials)
    assert all(t.value >= -1e-9 for t in trials[1:])  # greedy keeps what it had, so no loss


def test_a_run_folder_refuses_another_objective_before_training(cancer, tmp_path, monkeypatch):
    EnsembleClassifier(**QUICK, run_dir=str(tmp_path)).fit(*cancer)
    trained = []
    monkeypatch.setattr("ensemble_hpo.population._evaluate.CandidateEvaluator.evaluate",
                        lambda *a, **k: trained.append(1))
    with pytest.raises(ValueError, match="'objective' parameter must be the one .* 'candidate'"):
        EnsembleClassifier(**{**QUICK, "n_trials": 8}, objective="ensemble",
                           run_dir=str(tmp_path)).fit(*cancer)
    assert not trained


def test_ensemble_objective_in_parallel_workers(cancer):
    model = EnsembleClassifier(**{**QUICK, "n_trials": 6}, objective="ensemble", n_jobs=2).fit(*cancer)
    trials = _complete(model)
    assert len(trials) >= 6 and all("ensemble_score" in t.user_attrs for t in trials)
    assert np.isfinite(model.cv_score_)


def test_unknown_objective_is_refused_by_python_and_yaml(cancer):
    with pytest.raises(ValueError, match=r"'objective' parameter must be one of \['candidate', 'ens"):
        EnsembleClassifier(**QUICK, objective="diversity").fit(*cancer)
    data = {"builtin": "breast_cancer"}
    assert RunConfig(data=data, search={"objective": "ensemble"}).search.objective == "ensemble"
    with pytest.raises(ValueError, match=r"must be one of \['candidate', 'ensemble'\]"):
        RunConfig(data=data, search={"objective": "diversity"})


def test_ensemble_objective_resumes_from_its_run_folder(cancer, tmp_path, monkeypatch):
    first = EnsembleClassifier(**QUICK, objective="ensemble", run_dir=str(tmp_path)).fit(*cancer)
    done = {t.number: t.value for t in _complete(first)}
    second = EnsembleClassifier(**{**QUICK, "n_trials": 8}, objective="ensemble",
                                run_dir=str(tmp_path)).fit(*cancer)
    trials = _complete(second)
    assert len(trials) >= 8
    assert {t.number: t.value for t in trials if t.number in done} == done  # reused, not rerun
    # New trials' gains are measured against the resumed population, which includes the old.
    assert all("ensemble_score" in t.user_attrs for t in trials)
    assert max(t.user_attrs["ensemble_score"] for t in trials) >= max(
        t.user_attrs["ensemble_score"] for t in _complete(first)) - 1e-12


def test_ensemble_gains_of_a_regression_do_not_depend_on_the_targets_offset():
    """Audit: float32 copies of predictions near 1e9 moved the gains (21.69 -> 15.93)."""
    from sklearn.datasets import load_diabetes

    from ensemble_hpo import EnsembleRegressor

    X, y = load_diabetes(return_X_y=True)
    gains = []
    for offset in (0.0, 1e9):
        model = EnsembleRegressor(models=["ridge", "knn"], search="random", n_trials=6, cv=3,
                                  random_state=0, warm_start_configs=None,
                                  objective="ensemble").fit(X[:200], y[:200] + offset)
        gains.append([t.value for t in model.trials_])
    np.testing.assert_allclose(gains[1], gains[0], rtol=1e-6, atol=1e-6)


class _KeepsALambda(LogisticRegression):
    """Fits, but its fitted state cannot be pickled into a run folder's artifacts."""

    def fit(self, X, y, sample_weight=None):
        super().fit(X, y, sample_weight=sample_weight)
        self.hook_ = lambda z: z
        return self


def test_a_candidate_that_cannot_be_stored_says_why(cancer, tmp_path):
    # Audit: with a file store every such candidate was "failed" with no error.
    X, y = cancer
    family = ModelFamily("keeps_lambda", classifier=_KeepsALambda,
                         params={"C": FloatDistribution(0.1, 10, log=True)})
    model = EnsembleClassifier(models=[family], n_trials=2, cv=3, random_state=0,
                               warm_start_configs=None, run_dir=tmp_path / "run")
    with pytest.raises(RuntimeError, match="Every one of the 2 candidates failed") as info:
        model.fit(X, y)
    assert "pickle" in str(info.value).lower()
