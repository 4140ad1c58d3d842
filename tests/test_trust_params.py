"""No parameter combination fails late or silently does nothing (issue 15, part 4)."""

from __future__ import annotations

import numpy as np
import optuna
import pytest
from sklearn.datasets import load_breast_cancer

import ensemble_hpo.fusion._stacking as stacking_module
import ensemble_hpo.selection._base as selection_cv  # where selectors make their folds
from ensemble_hpo import EnsembleClassifier, EnsembleRegressor
from ensemble_hpo.fusion import FUSERS
from ensemble_hpo.persistence import UntrustedModelError
from ensemble_hpo.selection import CrossValidatedSelector, GreedySelector, GuardedGreedySelector

QUICK = dict(models=["logistic"], n_trials=2, cv=3, random_state=0, warm_start_configs=None)


@pytest.fixture(scope="module")
def cancer():
    X, y = load_breast_cancer(return_X_y=True)
    return X[:200], y[:200]


@pytest.mark.parametrize("params, message", [
    (dict(storage="sqlite:///unused.db"), "'run_dir' parameter must be set when 'storage' is"),
    (dict(pruner=optuna.pruners.MedianPruner(), trial_timeout=30.0), "'pruner' parameter has no effect"),
    (dict(backend="dask"), "'run_dir' parameter must be set with a Dask backend"),
])
def test_combinations_that_would_fail_late_fail_before_training(cancer, params, message, tmp_path,
                                                                 monkeypatch):
    monkeypatch.chdir(tmp_path)
    trained = []
    monkeypatch.setattr("ensemble_hpo.population._evaluate.CandidateEvaluator.evaluate",
                        lambda *a, **k: trained.append(1))
    with pytest.raises(ValueError, match=message):
        EnsembleClassifier(**{**QUICK, **params}).fit(*cancer)
    assert not trained
    assert not (tmp_path / "unused.db").exists()


def test_storage_with_a_run_dir_refits_from_the_folder(cancer, tmp_path):
    # The case: storage without run_dir failed on the second fit ("artifacts missing").
    params = dict(QUICK, storage=f"sqlite:///{tmp_path / 'study.db'}", run_dir=str(tmp_path / "run"))
    first = EnsembleClassifier(**params).fit(*cancer)
    second = EnsembleClassifier(**params).fit(*cancer)
    assert (second.leaderboard_["status"] == "ok").all()
    assert second.cv_score_ == pytest.approx(first.cv_score_)


def _checked(original, seen):
    def make_folds(cv, y, *, groups=None, **kwargs):
        folds = original(cv, y, groups=groups, **kwargs)
        assert groups is not None, "the stage's inner folds were made without the groups"
        for train, valid in folds:
            assert not set(groups[train]) & set(groups[valid]), "a group on both sides"
        seen.append(len(y))
        return folds
    return make_folds


def test_groups_reach_stacking_and_greedy_cv_inner_splits(cancer, monkeypatch):
    X, y = cancer
    groups = np.arange(len(y)) // 8  # 25 groups of 8 neighbouring rows
    stacking_seen, selection_seen = [], []
    monkeypatch.setattr(stacking_module, "make_folds",
                        _checked(stacking_module.make_folds, stacking_seen))
    monkeypatch.setattr(selection_cv, "make_folds", _checked(selection_cv.make_folds, selection_seen))
    model = EnsembleClassifier(models=["logistic", "knn"], n_trials=4, cv=3, random_state=0,
                               selection="greedy_cv", fusion="stacking").fit(X, y, groups=groups)
    # Once on all rows and once per outer fold (nested score), for the selector and the fuser.
    assert len(selection_seen) >= 1 + 3 and len(stacking_seen) >= 1 + 3
    assert len(y) in selection_seen and len(y) in stacking_seen
    assert np.isfinite(model.cv_score_)
    stacking_seen.clear()
    model.reselect(X, y, groups=groups)
    assert stacking_seen


def test_groups_of_the_wrong_length_are_refused_by_fusers_and_selectors():
    from ensemble_hpo.fusion import Stacking
    from ensemble_hpo.selection import GreedySelector

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 40)
    P = np.stack([np.column_stack([1 - p, p]) for p in rng.uniform(0.1, 0.9, (3, 40))])
    with pytest.raises(ValueError, match="'groups' parameter must have shape"):
        Stacking().fit(P, y, groups=np.zeros(39))
    with pytest.raises(ValueError, match="'groups' parameter must have shape"):
        GreedySelector().fit(P, y, groups=np.zeros(39))


def test_a_foreign_run_folder_is_refused_unless_trusted(cancer, tmp_path, monkeypatch):
    run_dir = str(tmp_path / "run")
    EnsembleClassifier(run_dir=run_dir, **QUICK).fit(*cancer)
    # A teammate's folder: signed with another key than this user's.
    monkeypatch.setenv("ENSEMBLE_HPO_KEY_FILE", str(tmp_path / "other" / "signing.key"))
    with pytest.raises(UntrustedModelError, match="trusted=True"):
        EnsembleClassifier(run_dir=run_dir, **QUICK).fit(*cancer)
    model = EnsembleClassifier(run_dir=run_dir, trusted=True, **QUICK).fit(*cancer)
    assert (model.leaderboard_["status"] == "ok").all()


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_groups_reach_the_boosters_early_stopping_split(cancer, monkeypatch, task):
    from ensemble_hpo import EnsembleRegressor
    from ensemble_hpo.spaces import _early_stopping

    X, y = cancer
    groups = np.arange(len(y)) // 8
    calls = []
    original = _early_stopping.group_holdout

    def recording(fold_groups, fraction, random_state=None, y=None):
        split = original(fold_groups, fraction, random_state, y=y)
        fit, val = split
        assert not set(fold_groups[fit]) & set(fold_groups[val]), "a group on both sides"
        calls.append(len(fold_groups))
        return split

    monkeypatch.setattr(_early_stopping, "group_holdout", recording)
    cls = EnsembleClassifier if task == "classification" else EnsembleRegressor
    target = y if task == "classification" else y + np.random.default_rng(0).normal(0, 0.1, len(y))
    model = cls(models=["hist_gradient_boosting", "xgboost"], n_trials=2, cv=3, random_state=0,
                warm_start_configs="portfolio").fit(X, target, groups=groups)
    assert (model.leaderboard_["status"] == "ok").all()
    # Every fold of both boosters held its early-stopping rows out by whole groups.
    assert len(calls) >= 2 * 3 and set(calls) <= {len(train) for train, _ in model.cv_splits_}


class _PlainSelector:
    """A third-party selector: fit without groups, no score_."""

    def fit(self, predictions, y, sample_weight=None):
        self.weights_ = np.full(len(predictions), 1.0 / len(predictions))
        return self

    def get_params(self, deep=True):
        return {}

    def set_params(self, **params):
        return self


def test_third_party_selectors_without_groups_or_score_still_fit_with_groups(cancer):
    X, y = cancer
    model = EnsembleClassifier(models=["logistic", "knn"], n_trials=3, cv=3, random_state=0,
                               selection=_PlainSelector()).fit(X, y, groups=np.arange(len(y)) // 8)
    assert np.isfinite(model.cv_score_) and np.isfinite(model.selection_score_)  # in scoring


def test_reselect_refuses_other_data_and_trim_drops_the_stale_estimate(cancer):
    X, y = cancer
    groups = np.arange(len(y)) // 8
    model = EnsembleClassifier(models=["logistic", "knn"], n_trials=4, cv=3,
                               random_state=0).fit(X, y, groups=groups)
    with pytest.raises(ValueError, match="groups"):
        model.reselect(X, y)  # fitted with groups: ungrouped inner splits would leak
    with pytest.raises(ValueError, match="the target y"):
        model.reselect(X, 1 - y, groups=groups, selection="best", fusion="stacking")
    # A refused call leaves the parameters as they were (they named a selection never run).
    assert (model.selection, model.fusion) == ("greedy", "average")
    model.reselect(X, y, groups=groups, selection="best")
    assert (model.selection, model.fusion) == ("best", "average")
    assert len(model.ensemble_.members) == 1
    model.reselect(X, y, groups=groups, selection="greedy")
    with pytest.warns(UserWarning, match="no honest cv_score_ exists"):
        model.trim(max_members=1)
    assert np.isnan(model.cv_score_)


def test_a_run_folder_of_an_older_version_is_refused(cancer, tmp_path):
    import optuna

    from ensemble_hpo._run_identity import RunFolderMismatch
    from ensemble_hpo.storage import make_storage

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    storage = make_storage(f"journal://{run_dir / 'study.log'}")
    study = optuna.create_study(study_name="ensemble_hpo", storage=storage, direction="maximize")
    study.set_user_attr("data_fingerprint", "an older version's sha1 of y and folds")
    with pytest.raises(RunFolderMismatch, match="older ensemble_hpo"):
        EnsembleClassifier(run_dir=str(run_dir), **QUICK).fit(*cancer)


def test_trust_is_not_saved_with_a_store(tmp_path):
    import pickle

    from ensemble_hpo.population import FileArtifactStore

    store = FileArtifactStore(tmp_path, trusted=True)
    assert store.trusted and not pickle.loads(pickle.dumps(store)).trusted


def test_svm_calibration_and_mlp_early_stopping_keep_groups_whole(cancer):
    from ensemble_hpo.population._evaluate import _fit_accepts
    from ensemble_hpo.spaces import get_family

    X, y = cancer
    groups = np.arange(len(y)) // 8
    svm = get_family("svm").build("classification", {"C": 1.0, "kernel": "rbf", "gamma": 0.01})
    assert _fit_accepts(svm, "groups")  # so CandidateEvaluator routes each fold's groups to it
    fitted = svm.fit(X, y, groups=groups).calibrated_
    assert isinstance(fitted.cv, list)
    for train, valid in fitted.cv:
        assert not set(groups[train]) & set(groups[valid])
    for task, target in (("classification", y), ("regression", y + 0.1 * X[:, 0])):
        built = get_family("mlp").build(task, {"width": 8, "depth": 1, "alpha": 1e-4,
                                               "learning_rate_init": 1e-3}, random_state=0)
        # Regression candidates fit the standardised target around the MLP (scale_target).
        mlp = built if task == "classification" else built.regressor

        def inner(model, task=task):
            return model if task == "classification" else model.regressor_

        assert _fit_accepts(built, "groups") and mlp.early_stopping
        assert inner(built.fit(X, target, groups=groups)).validation_scores_ is None  # no leak
        assert mlp.early_stopping  # the parameter is left as the user set it
        assert inner(built.fit(X, target)).validation_scores_ is not None  # no groups: unchanged


def test_dask_workers_with_another_signing_key_fail_before_training(cancer, tmp_path, monkeypatch):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        # The worker process started with the test key; this process now has another one.
        monkeypatch.setenv("ENSEMBLE_HPO_KEY_FILE", str(tmp_path / "mine" / "signing.key"))
        model = EnsembleClassifier(run_dir=str(tmp_path / "run"), backend=client, **QUICK)
        with pytest.raises(ValueError, match="sign run-folder artifacts with another key"):
            model.fit(*cancer)
    assert not list((tmp_path / "run" / "artifacts").glob("*.oof.npy"))


def test_a_selection_metric_for_classification_fails_before_a_regression_search(monkeypatch):
    from sklearn.datasets import load_diabetes

    from ensemble_hpo._fit_plan import FitPlan

    monkeypatch.setattr(FitPlan, "search", lambda self, **_: pytest.fail("searched first"))
    X, y = load_diabetes(return_X_y=True)
    with pytest.raises(ValueError, match="'scoring' parameter must be a regression metric"):
        EnsembleRegressor(models=["ridge"], n_trials=2,
                          selection=GreedySelector(scoring="accuracy")).fit(X, y)


@pytest.mark.parametrize("kwargs, match", [
    ({"selection": GreedySelector(max_iter=0)}, "'max_iter' parameter must be an integer >= 1"),
    ({"selection": GreedySelector(prune=1.5)}, "'prune' parameter must be a float"),
    ({"selection": GreedySelector(scoring="neg_log_los")}, "'scoring' parameter must be"),
    # A metric of the other task (audit: it failed in selection after the whole search).
    ({"selection": GreedySelector(scoring="r2")}, "'scoring' parameter must be a classification"),
    ({"selection": GuardedGreedySelector(greedy=GreedySelector(scoring="r2"))},
     "'scoring' parameter must be a classification"),
    ({"selection": CrossValidatedSelector(selectors=[GreedySelector(scoring="neg_max_error")])},
     "'scoring' parameter must be a classification"),
    ({"fusion": FUSERS["stacking"](cv=1)}, "'cv' parameter must be an int >= 2"),
    ({"fusion": FUSERS["optimized"](max_iter=-5)}, "'max_iter' parameter must be a positive int"),
    ({"fusion": FUSERS["optimized"](loss="squared_error")}, "'loss' parameter must suit"),
])
def test_bad_stage_options_fail_before_the_search(cancer, monkeypatch, kwargs, match):
    """They failed in selection, after every candidate was trained (audit)."""
    from ensemble_hpo._fit_plan import FitPlan

    def no_search(self, **_):
        raise AssertionError("the search ran before the stage options were checked")

    monkeypatch.setattr(FitPlan, "search", no_search)
    X, y = cancer
    with pytest.raises(ValueError, match=match):
        EnsembleClassifier(models=["logistic"], n_trials=2, cv=3, **kwargs).fit(X, y)


def test_a_classification_only_fuser_is_refused_for_regression_before_the_search(monkeypatch):
    from sklearn.datasets import load_diabetes

    from ensemble_hpo._fit_plan import FitPlan

    monkeypatch.setattr(FitPlan, "search", lambda self, **_: pytest.fail("searched first"))
    X, y = load_diabetes(return_X_y=True)
    with pytest.raises(ValueError, match="HardVoting supports classification only"):
        EnsembleRegressor(models=["ridge"], n_trials=2, fusion="hard_voting").fit(X, y)


def test_a_strategy_option_of_the_wrong_type_fails_before_the_search(cancer, monkeypatch):
    """n_startup_trials='5' failed every sampler-proposed candidate; the warm start trained
    and fit (and the CLI, exit 0) returned as if nothing were wrong (audit)."""
    from ensemble_hpo._fit_plan import FitPlan
    from ensemble_hpo.search import BayesianSearch

    monkeypatch.setattr(FitPlan, "search", lambda self, **_: pytest.fail("searched first"))
    X, y = cancer
    with pytest.raises(ValueError, match="'search' strategy and the model space must propose"):
        EnsembleClassifier(models=["logistic"], n_trials=4, cv=3,
                           search=BayesianSearch("tpe", n_startup_trials="5")).fit(X, y)


@pytest.mark.parametrize("name", sorted(__import__("ensemble_hpo.search", fromlist=["x"]).STRATEGIES))
def test_every_strategy_passes_its_rehearsal(name):
    from ensemble_hpo.search import STRATEGIES, SearchRun
    from ensemble_hpo.spaces import SearchSpace

    space = SearchSpace.from_models(["logistic", "knn"], task="classification")
    SearchRun(strategy=STRATEGIES[name](), space=space, seed=0).check_strategy()


def test_a_bad_warm_start_leaves_the_run_folder_empty(cancer, tmp_path):
    """Its claim (artifacts/OWNER.json) was written before the check (audit)."""
    X, y = cancer
    run_dir = tmp_path / "run"
    with pytest.raises(ValueError, match="The 'warm_start_configs' parameter must be"):
        EnsembleClassifier(models=["logistic"], n_trials=2, cv=3, run_dir=str(run_dir),
                           warm_start_configs="bogus").fit(X, y)
    assert not run_dir.exists() or not any(run_dir.rglob("*"))


@pytest.mark.parametrize("n_points", [1, 3])
def test_a_small_optuna_grid_passes_the_rehearsal(n_points):
    """Optuna's GridSampler stops its study when the grid is used up; outside optimize that
    raised, and a user's grid of up to 3 points was refused (review)."""
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    grid = optuna.samplers.GridSampler({"family": ["logistic"],
                                        "logistic__C": [0.1, 1.0, 10.0][:n_points]}, seed=0)
    model = EnsembleClassifier(models=["logistic"], search=grid, n_trials=n_points, cv=3,
                               random_state=0, warm_start_configs=None).fit(X, y)
    assert (model.leaderboard_["status"] == "ok").sum() == n_points


def test_a_scorer_without_sample_weight_is_refused_before_training_when_fit_is_weighted(cancer):
    """Audit: every candidate failed after training ('unexpected keyword argument')."""
    import time as _time

    X, y = cancer

    def neg_error_rate(y_true, y_pred):
        return -float(np.mean(np.argmax(y_pred, axis=1) != y_true))

    start = _time.perf_counter()
    with pytest.raises(ValueError, match=r"must be able to score this target with sample_weight"):
        EnsembleClassifier(models=["logistic"], n_trials=2, cv=3, scoring=neg_error_rate).fit(
            X, y, sample_weight=np.ones(len(y)))
    assert _time.perf_counter() - start < 5
    EnsembleClassifier(models=["logistic"], n_trials=2, cv=3, scoring=neg_error_rate).fit(X, y)
