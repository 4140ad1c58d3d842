"""Run folders belong to one study; what reselect, trim, keep_front_point and refit keep true."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer

from ensemble_hpo import EnsembleClassifier
from ensemble_hpo._run_identity import RunFolderMismatch
from ensemble_hpo.persistence import load_model, save_model

X, y = load_breast_cancer(return_X_y=True)


def _fit(run_dir, target=y, n_trials=3, **kwargs):
    return EnsembleClassifier(models=["logistic", "knn"], search="random", n_trials=n_trials, cv=3,
                              random_state=0, run_dir=str(run_dir), warm_start_configs=None,
                              **kwargs).fit(X, target)


def _files(folder):
    return {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}


def test_another_study_is_refused_before_it_overwrites_the_artifacts(tmp_path):
    run_dir = tmp_path / "run"
    _fit(run_dir)
    before = _files(run_dir / "artifacts")
    with pytest.raises(RunFolderMismatch, match="belongs to the study in 'study.log'"):
        _fit(run_dir, target=1 - y, storage=f"sqlite:///{tmp_path / 'other.db'}")
    assert _files(run_dir / "artifacts") == before


def test_a_model_whose_run_folder_was_started_over_refuses_the_new_files(tmp_path):
    run_dir = tmp_path / "run"
    model = _fit(run_dir)
    save_model(model, tmp_path / "model.ehpo")
    expected = model.predict_proba(X[:20])
    shutil.rmtree(run_dir)
    _fit(run_dir, target=1 - y)  # the same trial numbers, trained on the flipped target
    loaded = load_model(tmp_path / "model.ehpo")
    np.testing.assert_allclose(loaded.predict_proba(X[:20]), expected)  # members are in the model
    for use in (lambda m: m.predict_candidate(X[:20]), lambda m: m.reselect(X, y)):
        with pytest.raises(RunFolderMismatch, match="started over"):
            use(loaded)


def test_a_model_whose_run_folder_moved_says_so(tmp_path):
    model = _fit(tmp_path / "first")
    shutil.move(tmp_path / "first", tmp_path / "moved")
    with pytest.raises(RunFolderMismatch, match="is gone: the run folder was moved or removed"):
        model.predict_candidate(X[:5])


def test_a_moved_run_folder_resumes_and_its_own_journal_url_is_the_same_study(tmp_path):
    _fit(tmp_path / "first")
    shutil.move(tmp_path / "first", tmp_path / "moved")
    resumed = _fit(tmp_path / "moved", n_trials=4)
    assert len(resumed.leaderboard_) == 4
    same = _fit(tmp_path / "moved", n_trials=5, storage=f"journal://{tmp_path / 'moved' / 'study.log'}")
    assert len(same.leaderboard_) == 5


@pytest.mark.parametrize("method", ["reselect", "trim", "keep_front_point"])
def test_a_scoring_changed_after_fit_is_refused_not_mixed(method, tmp_path):
    model = _fit(tmp_path / "run")
    assert model.scoring_ == "neg_log_loss"
    before = (model.cv_score_, model.best_score_)
    model.set_params(scoring="accuracy")
    call = {"reselect": lambda: model.reselect(X, y), "trim": lambda: model.trim(max_members=1),
            "keep_front_point": lambda: model.keep_front_point(0)}[method]
    with pytest.raises(ValueError, match=r"must be the one of fit \('neg_log_loss'\)"):
        call()
    assert (model.cv_score_, model.best_score_) == before
    model.set_params(scoring="neg_log_loss")
    call()  # the fit's metric again: allowed


def test_the_report_refuses_a_scoring_changed_after_fit(tmp_path):
    from ensemble_hpo.report import make_report

    model = _fit(tmp_path / "run")
    model.set_params(scoring="roc_auc")
    with pytest.raises(ValueError, match="for make_report"):
        make_report(model, tmp_path / "report")


def test_reselect_keeps_refit_members_and_trim_refuses_them(tmp_path):
    model = _fit(tmp_path / "run", final_models="refit")
    assert all(len(m.models) == 1 for m in model.ensemble_.members)
    before = model.predict_proba(X[:50])
    model.reselect(X, y)
    assert all(len(m.models) == 1 for m in model.ensemble_.members)
    np.testing.assert_allclose(model.predict_proba(X[:50]), before)
    with pytest.raises(ValueError, match="final_models_='refit'"):
        model.trim(max_members=1)


def test_the_refit_gets_the_groups_its_fold_models_had(tmp_path, monkeypatch):
    from ensemble_hpo.spaces import _early_stopping

    seen = []
    fit = _early_stopping._OwnValidationSplitMixin.fit

    def spy(self, X, y, sample_weight=None, groups=None, **kwargs):
        seen.append((len(y), groups is not None))
        return fit(self, X, y, sample_weight, groups, **kwargs)

    monkeypatch.setattr(_early_stopping._OwnValidationSplitMixin, "fit", spy)
    groups = np.arange(len(y)) // 10
    EnsembleClassifier(models=["hist_gradient_boosting"], n_trials=1, cv=3, random_state=0,
                       warm_start_configs=None, final_models="refit").fit(X, y, groups=groups)
    assert seen and all(has_groups for _, has_groups in seen)
    assert seen[-1][0] == len(y)  # the refit on all rows


def test_keep_front_point_by_latency_without_the_data_keeps_a_folds_point(tmp_path):
    model = _fit(tmp_path / "run")
    model.keep_front_point(latency_budget=1.0)  # the README's call: no X, y
    assert model.final_models_ == "folds"
    assert all(len(m.models) == 3 for m in model.ensemble_.members)


def test_keeping_a_refit_point_makes_the_estimator_a_refit_one(tmp_path):
    model = _fit(tmp_path / "run")
    refit_points = model.pareto_front_.index[model.pareto_front_["final_models"] == "refit"]
    model.keep_front_point(refit_points[0], X=X, y=y)
    assert model.final_models_ == "refit" and model.final_models == "folds"  # params untouched
    with pytest.raises(ValueError, match="final_models_='refit'"):
        model.trim(max_members=1)  # it would swap the refit members back to fold models


def test_a_refit_on_data_without_names_drops_the_old_feature_names():
    import pandas as pd

    model = EnsembleClassifier(models=["logistic"], n_trials=1, cv=3, random_state=0,
                               warm_start_configs=None)
    model.fit(pd.DataFrame(X).add_prefix("f"), y)
    assert hasattr(model, "feature_names_in_")
    model.fit(X, y)
    assert not hasattr(model, "feature_names_in_")


def test_storage_objects_and_spellings_of_one_file(tmp_path, monkeypatch):
    import optuna

    run_dir = tmp_path / "run"
    _fit(run_dir, storage=optuna.storages.InMemoryStorage())
    with pytest.raises(RunFolderMismatch, match="InMemoryStorage object"):
        _fit(run_dir, target=1 - y, storage=optuna.storages.InMemoryStorage())
    monkeypatch.chdir(tmp_path)
    other = tmp_path / "other"
    _fit(other, storage="sqlite:///db.sqlite")
    resumed = _fit(other, n_trials=4, storage=f"sqlite:///{tmp_path / 'db.sqlite'}")
    assert len(resumed.leaderboard_) == 4  # the same file, spelt absolute


def test_the_claim_is_read_again_only_when_it_changed(tmp_path):
    from ensemble_hpo.population import FileArtifactStore

    store = FileArtifactStore(tmp_path / "a")
    store.bind("study.log")
    store.save(0, np.zeros(3), [])
    assert 0 in store and 0 in store
    (tmp_path / "a" / "OWNER.json").write_text('{"id": "someone else", "study": "study.log"}')
    with pytest.raises(RunFolderMismatch):
        store.load_predictions(0)


def test_sample_weight_as_a_column_vector_is_used_as_weights():
    weights = np.where(y == 1, 2.0, 1.0)
    flat = EnsembleClassifier(models=["logistic"], n_trials=1, cv=3, random_state=0,
                              warm_start_configs=None).fit(X, y, sample_weight=weights)
    column = EnsembleClassifier(models=["logistic"], n_trials=1, cv=3, random_state=0,
                                warm_start_configs=None).fit(X, y, sample_weight=weights[:, None])
    assert (column.leaderboard_["status"] == "ok").all()
    assert column.best_score_ == pytest.approx(flat.best_score_)


def test_a_regression_target_with_a_large_offset_keeps_its_precision():
    from sklearn.datasets import make_regression

    from ensemble_hpo import EnsembleRegressor

    Xr, signal = make_regression(n_samples=400, n_features=5, noise=10.0, random_state=0)
    model = EnsembleRegressor(models=["ridge"], n_trials=1, cv=3, random_state=0,
                              warm_start_configs=None).fit(Xr, 1e9 + signal)
    oof = model.population_.predictions([model.best_candidate_.number])[0]
    assert oof.dtype == np.float64
    assert -model.best_score_ == pytest.approx(np.sqrt(np.mean((1e9 + signal - oof) ** 2)))
    assert -model.best_score_ < 15  # noise 10; float32 steps of 64 at 1e9 gave about 21



def test_warm_start_points_outside_the_space_are_skipped_or_fail_with_their_reason():
    import optuna
    from optuna.distributions import CategoricalDistribution, IntDistribution

    old = optuna.create_study(direction="maximize")
    old.add_trial(optuna.trial.create_trial(
        params={"family": "random_forest", "random_forest__max_depth": 500},
        distributions={"family": CategoricalDistribution(["random_forest"]),
                       "random_forest__max_depth": IntDistribution(1, 1000)}, value=1.0))
    with pytest.warns(UserWarning, match="1 of the warm-start study's 1 finished trials"):
        EnsembleClassifier(models=["random_forest", "logistic"], n_trials=2, cv=3, random_state=0,
                           warm_start_configs=old, search="random").fit(X, y)
    forest = {"name": "forest", "classifier": "sklearn.ensemble.RandomForestClassifier",
              "params": {"max_depth": [None, 4, 8]}, "portfolio": [{"max_depth": 500}]}
    # A spec's own portfolio outside its space: refused before training (it failed a counted
    # candidate; audit), naming the value.
    with pytest.raises(ValueError, match=r"must give values inside the searched distributions.*"
                                         r"Got \{'max_depth': 500\}"):
        EnsembleClassifier(models=[forest, "logistic"], n_trials=3, cv=3, random_state=0,
                           warm_start_configs="defaults", search="random").fit(X, y)


# -- second post-fit audit ---------------------------------------------------------------------

def _in_memory(**kwargs):
    params = dict(models=["logistic", "knn"], search="random", n_trials=6, cv=3, random_state=0,
                  warm_start_configs=None)
    return EnsembleClassifier(**{**params, **kwargs}).fit(X, y)


def test_reselect_measures_the_new_ensembles_cost_and_refuses_an_optimistic_estimate(tmp_path):
    from ensemble_hpo.selection import GreedySelector

    model = _in_memory()
    with pytest.warns(UserWarning, match="no honest cv_score_ exists"):
        model.reselect(X, y, selection=GreedySelector(max_members=1))
    assert np.isnan(model.cv_score_)
    members = [m.number for m in model.ensemble_.members]
    assert len(members) == 1
    assert len(model.prediction_cost_) == 2  # the one member and the whole ensemble

    kept = _fit(tmp_path / "run", n_trials=6)
    before = kept.cv_score_
    kept.reselect(X, y)  # every candidate's models are kept: the same honest estimate
    assert kept.cv_score_ == pytest.approx(before)


def test_selection_score_is_in_the_users_metric_whatever_the_selector_scores_by():
    from sklearn.metrics import log_loss

    from ensemble_hpo.selection import GreedySelector

    model = _in_memory()
    model.reselect(X, y, selection=GreedySelector(scoring="accuracy"))
    oof = model.population_.predictions([m.number for m in model.ensemble_.members])
    weights = np.array([m.weight for m in model.ensemble_.members])
    blend = np.tensordot(weights / weights.sum(), oof.astype(float), axes=1)
    blend /= blend.sum(axis=1, keepdims=True)  # float32 rows sum to 1 within 1e-7
    assert model.selection_score_ == pytest.approx(-log_loss(y, blend))
    assert model.selection_score_ < 0  # a log loss, not an accuracy of 0.96


def test_a_later_refit_uses_the_space_and_seed_of_fit():
    from sklearn.datasets import load_diabetes

    from ensemble_hpo import EnsembleRegressor

    Xr, yr = load_diabetes(return_X_y=True)
    model = EnsembleRegressor(models=["extra_trees"], search="random", n_trials=3, cv=3,
                              random_state=0, warm_start_configs=None,
                              final_models="refit").fit(Xr, yr)
    before = model.predict(Xr[:30])
    model.set_params(random_state=123, models=["ridge"])
    model.reselect(Xr, yr)  # the same members, rebuilt as fit built them
    np.testing.assert_allclose(model.predict(Xr[:30]), before)


def test_keep_front_point_checks_final_models_against_the_point(tmp_path):
    model = _fit(tmp_path / "run")
    folds = model.pareto_front_.index[model.pareto_front_["final_models"] == "folds"][0]
    with pytest.raises(ValueError, match="must be None or 'folds' for point"):
        model.keep_front_point(folds, final_models="refit", X=X, y=y)
    with pytest.raises(ValueError, match="must be None, 'folds' or 'refit'. Got 'bogus'"):
        model.keep_front_point(folds, final_models="bogus")


@pytest.mark.parametrize("number", [2.7, True, 99, "1"])
def test_predict_candidate_takes_only_finished_candidates_numbers(number):
    model = _in_memory()
    with pytest.raises(ValueError, match="must be the number of a finished candidate"):
        model.predict_candidate(X[:5], number)


def test_reselect_with_other_data_says_what_fit_needs():
    model = _in_memory()
    with pytest.raises(RunFolderMismatch, match=r"reselect\(\) selects again .* the features X"):
        model.reselect(X + 1.0, y)


def test_set_params_trusted_after_loading_trusts_the_run_folder(tmp_path, monkeypatch):
    from ensemble_hpo.persistence import UntrustedArtifactError

    model = _fit(tmp_path / "run", n_trials=4)
    expected = model.predict_candidate(X[:5])
    save_model(model, tmp_path / "model.ehpo")
    monkeypatch.setenv("ENSEMBLE_HPO_KEY_FILE", str(tmp_path / "another_users.key"))
    loaded = load_model(tmp_path / "model.ehpo", trusted=True)
    with pytest.raises(UntrustedArtifactError, match=r"set_params\(trusted=True\)"):
        loaded.predict_candidate(X[:5])
    loaded.set_params(trusted=True)
    np.testing.assert_allclose(loaded.predict_candidate(X[:5]), expected)


@pytest.mark.parametrize("stage", ["prediction_cost", "accuracy_latency_front"])
def test_an_interrupted_fit_leaves_the_estimator_as_it_was(stage, monkeypatch):
    """Audit: Ctrl-C late in fit left an estimator that passed check_is_fitted but could not
    predict (no feature_info_), or after an earlier fit predicted with the new ensemble on the
    old columns (accuracy 0.988 -> 0.953, without a word)."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.exceptions import NotFittedError

    import ensemble_hpo._base_ensemble as base

    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    quick = {"models": ["logistic"], "n_trials": 2, "cv": 3, "random_state": 0,
             "warm_start_configs": None}

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    fresh = EnsembleClassifier(**quick)
    with monkeypatch.context() as patch:
        patch.setattr(base, stage, interrupted)
        with pytest.raises(KeyboardInterrupt):
            fresh.fit(X, y)
    assert not [name for name in vars(fresh) if name.endswith("_")]
    with pytest.raises(NotFittedError):
        fresh.predict(X)
    fitted = EnsembleClassifier(**quick).fit(X, y)
    before = fitted.predict_proba(X)
    with monkeypatch.context() as patch:
        patch.setattr(base, stage, interrupted)
        with pytest.raises(KeyboardInterrupt):
            fitted.fit(X.iloc[:, :10], y)
    assert fitted.n_features_in_ == 30
    np.testing.assert_array_equal(fitted.predict_proba(X), before)
