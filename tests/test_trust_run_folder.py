"""A run folder never silently reuses candidates computed on other data (issue 15, part 1)."""

from __future__ import annotations

import shutil
import warnings

import numpy as np
import optuna
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.datasets import load_breast_cancer

from ensemble_hpo import EnsembleClassifier
from ensemble_hpo._run_identity import RunFolderMismatch, features_digest, run_identity
from ensemble_hpo.metrics import get_prediction_scorer
from ensemble_hpo.storage import make_storage

BASE = dict(models=["logistic"], search="random", n_trials=2, cv=3, random_state=0,
            warm_start_configs=None)


@pytest.fixture(scope="module")
def data():
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    return X.iloc[:150, :6].reset_index(drop=True), y.iloc[:150].reset_index(drop=True)


@pytest.fixture(scope="module")
def fitted_folder(data, tmp_path_factory):
    folder = tmp_path_factory.mktemp("run") / "run"
    X, y = data
    EnsembleClassifier(run_dir=str(folder), **BASE).fit(X, y)
    return folder


def _copy(folder, tmp_path):
    target = tmp_path / "copy"
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(folder, target)
    return str(target)


def _fit(run_dir, X, y, **changes):
    params = {**BASE, **changes}
    sample_weight = params.pop("sample_weight", None)
    return EnsembleClassifier(run_dir=run_dir, **params).fit(X, y, sample_weight=sample_weight)


def _n_trials(model):
    return len(model.trials_)


def test_same_data_reuses_every_candidate(data, fitted_folder, tmp_path):
    X, y = data
    model = _fit(_copy(fitted_folder, tmp_path), X, y)
    assert _n_trials(model) == BASE["n_trials"]


@pytest.mark.parametrize("change, named", [
    ("noise_X", "the features X"),
    ("relabel_y", "the target y"),
    ("folds", "the CV folds"),
    ("weights", "sample_weight"),
    ("models", "the model space"),
])
def test_a_changed_component_is_refused_and_named(data, fitted_folder, tmp_path, change, named):
    X, y = data
    changes = {}
    if change == "noise_X":  # the case: same y, X replaced by Gaussian noise
        X = pd.DataFrame(np.random.default_rng(0).normal(size=X.shape), columns=X.columns)
    elif change == "relabel_y":
        y = y.copy()
        y.iloc[:10] = 1 - y.iloc[:10]
    elif change == "folds":
        changes["cv"] = 4
    elif change == "weights":
        changes["sample_weight"] = np.linspace(0.5, 1.5, len(y))
    else:
        changes["models"] = [{"name": "logistic", "classifier": "sklearn.linear_model.LogisticRegression",
                              "params": {"C": {"type": "float", "low": 0.1, "high": 10.0}}}]
    with pytest.raises(RunFolderMismatch, match=named) as info:
        _fit(_copy(fitted_folder, tmp_path), X, y, **changes)
    assert "new 'run_dir'" in str(info.value)


def test_a_changed_scoring_rescores_the_stored_predictions_without_retraining(
        data, fitted_folder, tmp_path):
    X, y = data
    run_dir = _copy(fitted_folder, tmp_path)
    with pytest.warns(UserWarning, match="rescored in 'accuracy'.*nothing was retrained"):
        model = _fit(run_dir, X, y, scoring="accuracy")
    assert _n_trials(model) == BASE["n_trials"]
    assert model.search_scoring_ == "neg_log_loss"
    accuracy = get_prediction_scorer("accuracy", "classification")
    for candidate in model.population_.completed():
        oof = model.population_.store.load_predictions(candidate.number)
        assert candidate.score == pytest.approx(accuracy(np.asarray(y), oof))
    assert model.leaderboard_["score"].between(0, 1).all()  # no log loss left beside accuracies


def test_features_digest_is_cheap_and_sensitive():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=1000), "b": rng.integers(0, 5, 1000).astype(str)})
    frame["c"] = pd.Categorical(frame["b"])
    digest = features_digest(frame)
    assert digest == features_digest(frame.copy())
    changed = frame.copy()
    changed.loc[17, "b"] = "x"
    assert features_digest(changed) != digest
    assert features_digest(frame.rename(columns={"a": "z"})) != digest
    assert features_digest(frame.to_numpy()) != features_digest(frame.iloc[:, :1].to_numpy())


CHANGES = st.fixed_dictionaries({
    "X": st.booleans(), "y": st.booleans(), "scoring": st.booleans(),
    "folds": st.booleans(), "weights": st.booleans(),
})


@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(changes=CHANGES, seed=st.integers(0, 2**16))
def test_random_changes_refuse_rescore_or_reuse_never_silently(data, fitted_folder, tmp_path,
                                                               changes, seed):
    X, y = data
    rng = np.random.default_rng(seed)
    params = {}
    if changes["X"]:
        X = X.copy()
        X.iloc[rng.integers(len(X)), rng.integers(X.shape[1])] += 1.0
    if changes["y"]:
        y = y.copy()
        row = rng.integers(len(y))
        y.iloc[row] = 1 - y.iloc[row]
    if changes["scoring"]:
        params["scoring"] = "accuracy"
    if changes["folds"]:
        params["random_state"] = 1
    if changes["weights"]:
        params["sample_weight"] = rng.uniform(0.5, 2.0, len(y))
    expected = {"X": "the features X", "y": "the target y", "folds": "the CV folds",
                "weights": "sample_weight"}
    refused = [text for key, text in expected.items() if changes[key]]
    run_dir = _copy(fitted_folder, tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            model = _fit(run_dir, X, y, **params)
        except RunFolderMismatch as error:
            assert refused, "refused although nothing that needs retraining changed"
            for text in refused:
                assert text in str(error)
            return
    assert not refused, f"silently reused a folder after changing {refused}"
    assert _n_trials(model) == BASE["n_trials"]
    rescored = any("rescored" in str(w.message) for w in caught)
    assert rescored == changes["scoring"]
    scorer = get_prediction_scorer(params.get("scoring"), "classification")
    best = model.population_.completed()[0]
    oof = model.population_.store.load_predictions(best.number)
    assert best.score == pytest.approx(scorer(np.asarray(y), oof))


def test_identity_ignores_how_equal_things_are_stored():
    import scipy.sparse as sp
    from sklearn.linear_model import LogisticRegression

    from ensemble_hpo._run_identity import _stable

    matrix = sp.random(50, 8, density=0.2, format="csr", random_state=0)
    wide = matrix.copy()
    wide.indices, wide.indptr = wide.indices.astype(np.int64), wide.indptr.astype(np.int64)
    assert features_digest(matrix) == features_digest(wide)
    # Fixed settings that print a memory address or elide parameters are described stably.
    assert _stable(lambda v: v) == _stable(lambda v: v)
    assert _stable(LogisticRegression(C=1.0)) != _stable(LogisticRegression(C=2.0))
    assert _stable(object) == _stable(object)


def test_groups_identity_is_by_value():
    """Review: int32 against int64 groups, or numpy against pandas nullable booleans, refused a
    resumed fit as 'groups changed'."""
    from ensemble_hpo._validation import as_row_arrays

    def digest(groups):
        X, y = np.zeros((6, 1)), np.zeros(6)
        identity = run_identity(X, y, [], task="regression", groups=as_row_arrays(None, groups)[1])
        return identity["groups"]

    labels = np.array([0, 1, 2, 0, 1, 2])
    same = [labels, labels.astype(np.int32), labels.astype(np.uint8), pd.Series(labels, dtype="Int64"),
            labels.astype(float)]
    assert len({digest(g) for g in same}) == 1
    flags = labels == 0
    assert digest(flags) == digest(pd.Series(flags, dtype="boolean")) == digest(flags.astype(int))
    assert digest(labels) != digest(labels[::-1])
    assert digest(labels + 0.5) != digest(labels)
    assert digest(["a", "b", "c", "a", "b", "c"]) != digest(labels)


def _failing_family():
    from _estimators_for_tests import FlakyClassifier
    from optuna.distributions import CategoricalDistribution

    from ensemble_hpo.spaces import ModelFamily

    return ModelFamily("flaky", classifier=FlakyClassifier,
                       params={"mode": CategoricalDistribution(["raise"])})


def test_a_fit_with_no_finished_candidate_leaves_the_folder_as_it_found_it(data, tmp_path):
    """Every candidate failed: the study stayed in run_dir and the corrected fit (another model
    space) was refused as computed on different models; the user's own files stay."""
    X, y = data
    folder = tmp_path / "run"
    with pytest.raises(RuntimeError, match="Every one of the 2 candidates failed"):
        EnsembleClassifier(run_dir=str(folder), **{**BASE, "models": [_failing_family()]}).fit(X, y)
    assert not folder.exists()

    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(RuntimeError, match="Every one of the 2 candidates failed"):
        EnsembleClassifier(run_dir=str(folder), **{**BASE, "models": [_failing_family()]}).fit(X, y)
    assert [p.name for p in folder.iterdir()] == ["notes.txt"]

    fixed = EnsembleClassifier(run_dir=str(folder), **BASE).fit(X, y)
    assert (fixed.leaderboard_["status"] == "ok").all() and len(fixed.leaderboard_) == 2


def test_a_failed_fit_keeps_a_folder_another_process_claimed_meanwhile(data, tmp_path, monkeypatch):
    """Audit: a fit refused on a folder that a second fit created while it started removed
    that fit's study and artifacts under it, and the second fit crashed."""
    import json
    import socket

    from ensemble_hpo.population import FileArtifactStore

    X, y = data
    folder = tmp_path / "run"
    claim = FileArtifactStore._claim

    def claimed_by_a_live_neighbour(store, study):
        owner = {"id": "theirs", "study": study, "process": f"{socket.gethostname()}:1"}
        (store.path / FileArtifactStore.OWNER).write_text(json.dumps(owner))
        return claim(store, study)

    monkeypatch.setattr(FileArtifactStore, "_claim", claimed_by_a_live_neighbour)
    with pytest.raises(RuntimeError, match="Every one of the 2 candidates failed"):
        EnsembleClassifier(run_dir=str(folder), **{**BASE, "models": [_failing_family()]}).fit(X, y)
    assert json.loads((folder / "artifacts" / "OWNER.json").read_text())["id"] == "theirs"
    assert (folder / "study.log").exists()


def test_a_failure_after_a_finished_candidate_keeps_the_folder_to_resume(data, tmp_path, monkeypatch):
    X, y = data
    folder = tmp_path / "run"

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(EnsembleClassifier, "_select", interrupted)
    with pytest.raises(KeyboardInterrupt) as interrupt:
        EnsembleClassifier(run_dir=str(folder), **BASE).fit(X, y)
    assert len(list((folder / "artifacts").glob("*.oof.npy"))) == 2
    # The interrupt says so (a bare KeyboardInterrupt left the user guessing).
    assert interrupt.value.__notes__ == [
        f"ensemble_hpo: 2 finished candidates are kept in {str(folder)!r}; fitting again with "
        "the same run_dir and data resumes without retraining them."]
    monkeypatch.undo()
    resumed = EnsembleClassifier(run_dir=str(folder), **BASE).fit(X, y)
    assert len(resumed.trials_) == 2  # nothing retrained


@pytest.mark.parametrize("where", ["search", "selection"])
def test_an_interrupt_without_a_run_dir_says_nothing_is_kept(data, monkeypatch, where):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    target = "_fit" if where == "search" else "_select"
    monkeypatch.setattr(EnsembleClassifier, target, interrupted)
    with pytest.raises(KeyboardInterrupt) as interrupt:
        EnsembleClassifier(**BASE).fit(*data)
    assert "nothing is kept: without a run_dir" in interrupt.value.__notes__[0]


def test_an_interrupt_before_any_candidate_finished_says_the_folder_is_as_it_was(
        data, tmp_path, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(EnsembleClassifier, "_fit", interrupted)
    folder = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt) as interrupt:
        EnsembleClassifier(run_dir=str(folder), **BASE).fit(*data)
    assert interrupt.value.__notes__ == [
        f"ensemble_hpo: no candidate had finished; {str(folder)!r} is as it was."]


def test_run_dir_of_a_wrong_type_is_a_clear_error(data):
    with pytest.raises(ValueError, match="The 'run_dir' parameter must be None, a str or a path. "
                                         "Got 5 instead."):
        EnsembleClassifier(run_dir=5, **BASE).fit(*data)


def test_a_finished_candidate_whose_artifacts_were_deleted_is_named(data, tmp_path):
    """Audit: resume dropped it silently and the leaderboard kept its score beside 'failed'."""
    X, y = data
    folder = tmp_path / "run"
    model = EnsembleClassifier(run_dir=str(folder), **{**BASE, "n_trials": 3}).fit(X, y)
    lost = model.best_candidate_.number
    (folder / "artifacts" / f"{lost:06d}.oof.npy").unlink()
    with pytest.warns(UserWarning, match=rf"no artifacts in the store .*\[{lost}\]"):
        resumed = EnsembleClassifier(run_dir=str(folder), **{**BASE, "n_trials": 3}).fit(X, y)
    row = resumed.leaderboard_.set_index("number").loc[lost]
    assert row["status"] == "failed" and pd.isna(row["score"])
    assert lost not in {m.number for m in resumed.ensemble_.members}


def test_an_external_study_with_nothing_finished_is_replaced_by_the_corrected_fit(data, tmp_path):
    X, y = data
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    failing = {**BASE, "models": [_failing_family()]}
    with pytest.raises(RuntimeError, match="Every one of the 2 candidates failed"):
        EnsembleClassifier(run_dir=str(tmp_path / "run"), storage=storage, **failing).fit(X, y)
    with pytest.warns(UserWarning, match="none of its 2 trials finished"):
        fixed = EnsembleClassifier(run_dir=str(tmp_path / "run"), storage=storage, **BASE).fit(X, y)
    assert (fixed.leaderboard_["status"] == "ok").all() and len(fixed.leaderboard_) == 2
    # A study with finished candidates is never replaced: other data is refused as before.
    with pytest.raises(RunFolderMismatch):
        EnsembleClassifier(run_dir=str(tmp_path / "run"), storage=storage, **BASE).fit(X, 1 - y)


@pytest.mark.parametrize("damage", ["truncated", "fewer rows"])
def test_a_damaged_prediction_file_is_named_and_left_out_on_resume(data, tmp_path, damage):
    """Audit: the resume failed with a bare numpy error naming no file."""
    X, y = data
    folder = tmp_path / "run"
    model = EnsembleClassifier(run_dir=str(folder), **{**BASE, "n_trials": 3}).fit(X, y)
    hit = model.best_candidate_.number
    path = folder / "artifacts" / f"{hit:06d}.oof.npy"
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[:-40])
    else:
        np.save(path, np.load(path)[:-5])
    with pytest.warns(UserWarning, match=rf"truncated or of another shape .*\[{hit}\]"):
        resumed = EnsembleClassifier(run_dir=str(folder), **{**BASE, "n_trials": 3}).fit(X, y)
    row = resumed.leaderboard_.set_index("number").loc[hit]
    assert row["status"] == "failed" and row["error"] == "out-of-fold predictions unreadable"
    assert hit not in {m.number for m in resumed.ensemble_.members}


def _journal_study(folder):
    storage = make_storage(f"journal://{folder / 'study.log'}")
    (name,) = optuna.get_all_study_names(storage)
    return optuna.load_study(study_name=name, storage=storage)


def test_candidates_of_a_fit_on_other_data_are_never_mixed_in(data, tmp_path):
    """Audit (identity race): two fits started at once on one fresh study with other targets
    could both pass the study's read-then-write identity check. Each trial carries its fit's
    identity, so the fit that lost the race leaves the other's candidates out, by name."""
    X, y = data
    other_y = 1 - y
    a, b = tmp_path / "a", tmp_path / "b"
    _fit(str(a), X, y)
    _fit(str(b), X, other_y)
    study_a, study_b = _journal_study(a), _journal_study(b)
    assert all(t.user_attrs["run_identity"] == study_a.user_attrs["run_identity"]
               for t in study_a.trials)
    # The race's outcome: the second fit wrote its identity over the first one's.
    study_a.set_user_attr("run_identity", study_b.user_attrs["run_identity"])
    first = [t.number for t in study_a.trials]
    with pytest.warns(UserWarning, match=rf"run by another fit on other data .*{first}"):
        model = _fit(str(a), X, other_y, n_trials=BASE["n_trials"] * 2)
    assert set(model.leaderboard_["number"]).isdisjoint(first)
    assert len(model.leaderboard_) == BASE["n_trials"]


def test_a_run_without_random_state_resumes_on_the_folds_its_folder_keeps(data, tmp_path):
    """Audit: random_state=None (the default) drew other folds on every fit, so a run folder
    could never be resumed ("the CV folds changed")."""
    X, y = data
    folder = tmp_path / "run"
    unseeded = {**BASE, "random_state": None}
    first = EnsembleClassifier(run_dir=str(folder), **unseeded).fit(X, y)
    resumed = EnsembleClassifier(run_dir=str(folder), **{**unseeded, "n_trials": 4}).fit(X, y)
    assert isinstance(first.search_seed_, int) and resumed.search_seed_ == first.search_seed_
    assert len(resumed.trials_) == 4  # two kept, two new
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(first.cv_splits_, resumed.cv_splits_,
                                                            strict=True))
    assert EnsembleClassifier(**unseeded).fit(X, y).search_seed_ is None  # no folder: random


def test_reselect_of_an_unseeded_run_uses_the_seed_fit_drew(data, tmp_path):
    """Audit: with random_state=None fit seeded selection with the folder's drawn seed, but
    reselect (and trim) used None: greedy_cv drew other held-out folds and the nested estimate
    other outer folds, so reselecting the same settings changed the ensemble and cv_score_."""
    X, y = data
    stages = dict(selection="greedy_cv", fusion="stacking", models=["logistic", "knn"], n_trials=8)
    model = EnsembleClassifier(run_dir=str(tmp_path / "run"), **{**BASE, **stages,
                                                                 "random_state": None}).fit(X, y)
    def outcome():
        return ({m.number: m.weight for m in model.ensemble_.members}, model.cv_score_,
                model.selector_.cv_scores_.tolist())

    fitted = outcome()
    for _ in range(3):  # None drew other folds on every call
        model.reselect(X, y)
        assert outcome() == fitted


def test_a_failed_unseeded_fit_leaves_no_drawn_seed_behind(data, tmp_path):
    folder = tmp_path / "run"
    with pytest.raises(ValueError, match="n_trials"):
        EnsembleClassifier(run_dir=str(folder), **{**BASE, "random_state": None,
                                                   "n_trials": -1}).fit(*data)
    assert not folder.exists()


def _new_scorer_function():
    """The same function as a new object, as another process would have it."""
    def neg_clipped_log_loss(y_true, y_pred, eps):
        # numpy only: scikit-learn's log_loss validates for ~5 ms per call, thousands of calls
        p = np.clip(np.asarray(y_pred)[np.arange(len(y_true)), np.asarray(y_true)], eps, 1.0)
        return float(np.mean(np.log(p)))

    return neg_clipped_log_loss


def test_a_partial_scorer_and_factory_resume_in_another_process(data, tmp_path):
    """Audit: their repr holds a memory address, so every new process's fit was refused as
    changed (and load_model's reselect refused the scoring)."""
    import functools

    from optuna.distributions import FloatDistribution
    from sklearn.linear_model import LogisticRegression

    from ensemble_hpo.spaces import ModelFamily

    def settings():
        family = ModelFamily("lr", classifier=functools.partial(LogisticRegression, max_iter=300),
                             params={"C": FloatDistribution(0.1, 1.0)})
        return {**BASE, "models": [family],
                "scoring": functools.partial(_new_scorer_function(), eps=1e-6)}

    folder = tmp_path / "run"
    EnsembleClassifier(run_dir=str(folder), **settings()).fit(*data)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # not even "rescored in another metric"
        resumed = EnsembleClassifier(run_dir=str(folder), **{**settings(), "n_trials": 3}).fit(*data)
    assert len(resumed.trials_) == 3


def test_a_resume_that_switches_a_familys_scale_target_is_refused(tmp_path):
    """Audit: it was accepted, and standardised-target and plain ridges shared one family."""
    from sklearn.datasets import load_diabetes

    from ensemble_hpo import EnsembleRegressor
    from ensemble_hpo._run_identity import RunFolderMismatch, _family_description
    from ensemble_hpo.spaces import BUILTIN_FAMILIES

    X, y = load_diabetes(return_X_y=True)
    settings = dict(search="random", n_trials=2, cv=3, random_state=0, run_dir=str(tmp_path / "run"))
    EnsembleRegressor(models=[{"name": "r2", "base": "ridge"}], **settings).fit(X[:150], y[:150])
    with pytest.raises(RunFolderMismatch, match="model"):
        EnsembleRegressor(models=[{"name": "r2", "base": "ridge", "scale_target": False}],
                          **{**settings, "n_trials": 3}).fit(X[:150], y[:150])
    # Families that keep what they inherit are described as before, so earlier folders still
    # resume (review: a renamed spec of a built-in was not).
    from ensemble_hpo.spaces import family_from_spec

    assert all(len(_family_description(f)) == 8 for f in BUILTIN_FAMILIES.values())
    assert len(_family_description(family_from_spec({"name": "r2", "base": "ridge"}))) == 8


def test_a_folder_whose_claim_was_removed_is_refused_before_training(data, tmp_path):
    """Audit: resume trained new candidates, then refused the old ones as tampered, and every
    later resume failed the same way."""
    folder = tmp_path / "run"
    EnsembleClassifier(run_dir=str(folder), **BASE).fit(*data)
    (folder / "artifacts" / "OWNER.json").unlink()
    before = sorted(p.name for p in (folder / "artifacts").iterdir())
    with pytest.raises(RunFolderMismatch, match="not the claim .*OWNER.json"):
        EnsembleClassifier(run_dir=str(folder), **{**BASE, "n_trials": 4}).fit(*data)
    assert sorted(p.name for p in (folder / "artifacts").iterdir()) == before


def test_a_folder_whose_study_was_removed_is_not_written_over(data, tmp_path):
    """Audit: a fit on other data numbered its candidates from 0 again and overwrote the files
    an earlier model read (predict_candidate used the new knn)."""
    X, y = data
    folder = tmp_path / "run"
    first = EnsembleClassifier(run_dir=str(folder), **{**BASE, "n_trials": 3}).fit(X, y)
    (folder / "study.log").unlink()
    # Candidate 0 without files, as if it had failed (review: only candidate 0 was looked for).
    for path in (folder / "artifacts").glob("000000.*"):
        path.unlink()
    before = {p.name: p.read_bytes() for p in (folder / "artifacts").iterdir()}
    with pytest.raises(RunFolderMismatch, match=r"holds 0 trials, but the run folder's artifacts "
                                                r"hold candidates it does not know \(\[1, 2\]"):
        EnsembleClassifier(run_dir=str(folder), **{**BASE, "models": ["knn"]}).fit(X[:120], y[:120])
    assert {p.name: p.read_bytes() for p in (folder / "artifacts").iterdir()} == before
    first.predict_candidate(X, 1)


def test_home_relative_run_dir_and_journal_are_one_place_from_any_directory(
        data, tmp_path, monkeypatch):
    """Audit: '~' was not expanded: a journal '~/s.log' was a new study in each working
    directory under one claim, and a fit on other data overwrote the first one's files."""
    X, y = data
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    settings = {**BASE, "run_dir": "~/run", "storage": "~/s.log"}
    for cwd in ("a", "b"):
        (tmp_path / cwd).mkdir()
    monkeypatch.chdir(tmp_path / "a")
    EnsembleClassifier(**settings).fit(X, y)
    assert (tmp_path / "home" / "s.log").exists() and (tmp_path / "home" / "run" / "artifacts").is_dir()
    monkeypatch.chdir(tmp_path / "b")
    with pytest.raises(RunFolderMismatch):
        EnsembleClassifier(**{**settings, "models": ["knn"]}).fit(X[:120], y[:120])
    assert not (tmp_path / "a" / "~").exists() and not (tmp_path / "b" / "~").exists()


def test_a_study_whose_queued_trials_belong_to_a_live_fit_is_not_replaced(data, tmp_path, monkeypatch):
    """Review: a fit that had queued its warm starts but not started them (workers starting)
    looked like a stranger with nothing finished, and a fit on other data deleted its study."""
    from ensemble_hpo.search import _run

    X, y = data
    settings = {**BASE, "warm_start_configs": "defaults", "run_dir": str(tmp_path / "run"),
                "storage": f"journal://{tmp_path / 'shared.log'}"}

    def queued_then_interrupted(*args, **kwargs):
        raise KeyboardInterrupt  # this process lives on: its queued trials are still its own

    monkeypatch.setattr(_run, "optimize_shared", queued_then_interrupted)
    with pytest.raises(KeyboardInterrupt):
        EnsembleClassifier(**settings).fit(X, y)
    monkeypatch.undo()
    with pytest.raises(RunFolderMismatch):
        EnsembleClassifier(**{**settings, "models": ["knn"]}).fit(X[:120], y[:120])


def test_a_folder_of_the_version_before_claims_still_resumes(data, tmp_path):
    """Review: models files signed before folders were claimed (version 1, no folder id) in a
    folder without OWNER.json were refused as signed with a lost claim."""
    import hashlib

    from ensemble_hpo._signing import key_fingerprint, sign
    from ensemble_hpo.population import _store

    folder = tmp_path / "run"
    EnsembleClassifier(run_dir=str(folder), **BASE).fit(*data)
    for path in (folder / "artifacts").glob("*.models.pkl"):
        payload = path.read_bytes()[_store._HEADER.size:]
        number = int(path.name.split(".")[0])
        path.write_bytes(_store._HEADER.pack(
            _store._MAGIC_V1, key_fingerprint(), hashlib.sha256(payload).digest(),
            sign(_store._context(number, None, _store._MAGIC_V1), payload)) + payload)
    (folder / "artifacts" / "OWNER.json").unlink()
    resumed = EnsembleClassifier(run_dir=str(folder), **{**BASE, "n_trials": 3}).fit(*data)
    assert len(resumed.trials_) == 3


def test_a_drawn_seed_is_published_without_hard_links_too(tmp_path, monkeypatch):
    """Review: a filesystem without hard links failed the fit and left the draft behind."""
    import json
    import os

    from ensemble_hpo._run_folder import RunFolder

    def no_links(*args):
        raise OSError("hard links not supported")

    monkeypatch.setattr(os, "link", no_links)
    folder = RunFolder(tmp_path / "run")
    seed = folder.seed_for(None)
    assert seed == folder.seed_for(None) == json.loads((tmp_path / "run" / "random_state.json")
                                                       .read_text())["random_state"]
    assert [p.name for p in (tmp_path / "run").iterdir()] == ["random_state.json"]


def test_join_search_keeps_its_sampler_seed_in_numpys_range(data, tmp_path):
    """Review: a folder seed near 2**32 plus the worker's pid failed every worker."""
    X, y = data
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "random_state.json").write_text('{"random_state": 4294967290}')
    settings = {**BASE, "random_state": None, "run_dir": str(folder)}
    EnsembleClassifier(**settings).fit(X, y)
    assert EnsembleClassifier(**{**settings, "n_trials": 3}).join_search(X, y) == 3
