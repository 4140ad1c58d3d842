"""A run folder's fold models are never unpickled unverified (issue 15)."""

from __future__ import annotations

import pathlib
import pickle
import threading

import joblib
import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression

from ensemble_hpo import EnsembleClassifier, _signing
from ensemble_hpo.persistence import UntrustedArtifactError, UntrustedModelError
from ensemble_hpo.population import FileArtifactStore


class _Exploit:
    """Unpickling this writes ``marker``: the issue's stand-in for arbitrary code."""

    def __init__(self, marker: pathlib.Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return pathlib.Path.write_text, (self.marker, "code ran")


@pytest.fixture(scope="module")
def data():
    X, y = load_breast_cancer(return_X_y=True)
    return X[:120, :5], y[:120]


@pytest.fixture
def store_with_one(tmp_path, data):
    X, y = data
    model = LogisticRegression(max_iter=500).fit(X, y)
    store = FileArtifactStore(tmp_path / "artifacts")
    store.save(0, model.predict_proba(X), [model])
    return store, model


def _models_file(store, key=0):
    return store.path / f"{key:06d}.models.pkl"


def test_round_trip_and_the_completion_marker_is_written_last(store_with_one, data):
    store, model = store_with_one
    X, _ = data
    assert sorted(p.name for p in store.path.iterdir()) == ["000000.models.pkl", "000000.oof.npy"]
    assert _models_file(store).read_bytes().startswith(b"EHPOSIG")
    loaded = store.load_models(0)
    np.testing.assert_array_equal(loaded[0].predict_proba(X), model.predict_proba(X))
    np.testing.assert_array_equal(store.load_predictions(0), model.predict_proba(X).astype(np.float32))
    assert _models_file(store).stat().st_mtime_ns <= (store.path / "000000.oof.npy").stat().st_mtime_ns


def test_the_issue_exploit_is_refused_and_runs_nothing(store_with_one, tmp_path):
    store, _ = store_with_one
    marker = tmp_path / "pwned.txt"
    _models_file(store).write_bytes(pickle.dumps(_Exploit(marker)))
    with pytest.raises(UntrustedArtifactError, match=r"000000\.models\.pkl' is not signed.*trusted=True"):
        store.load_models(0)
    assert not marker.exists()


def test_the_exploit_in_a_fitted_run_folder_is_refused_on_the_next_fit(data, tmp_path):
    X, y = data
    params = dict(models=["logistic"], search="random", n_trials=2, cv=3, random_state=0,
                  warm_start_configs=None, run_dir=str(tmp_path / "run"))
    EnsembleClassifier(**params).fit(X, y)
    marker = tmp_path / "pwned.txt"
    for path in (tmp_path / "run" / "artifacts").glob("*.models.pkl"):
        path.write_bytes(pickle.dumps(_Exploit(marker)))
    with pytest.raises(UntrustedModelError, match="not signed"):
        EnsembleClassifier(**params).fit(X, y)
    assert not marker.exists()


def test_an_exploit_signed_for_nobody_keeps_failing_with_trusted_checksum(store_with_one, tmp_path):
    # A header copied from a genuine file onto a malicious payload: the signature and, with
    # trusted=True, the checksum both reject it.
    store, _ = store_with_one
    marker = tmp_path / "pwned.txt"
    header = _models_file(store).read_bytes()[:80]
    _models_file(store).write_bytes(header + pickle.dumps(_Exploit(marker)))
    with pytest.raises(UntrustedArtifactError, match="altered"):
        store.load_models(0)
    with pytest.raises(UntrustedArtifactError, match="corrupted"):
        FileArtifactStore(store.path, trusted=True).load_models(0)
    assert not marker.exists()


@pytest.mark.parametrize("where", ["payload", "signature"])
def test_a_flipped_byte_is_refused(store_with_one, where):
    store, _ = store_with_one
    data = bytearray(_models_file(store).read_bytes())
    data[len(data) // 2 if where == "payload" else 60] ^= 0x01
    _models_file(store).write_bytes(bytes(data))
    with pytest.raises(UntrustedArtifactError, match="altered, or copied from another run folder, after"):
        store.load_models(0)


def test_a_flipped_payload_byte_is_refused_even_when_trusted(store_with_one):
    store, _ = store_with_one
    data = bytearray(_models_file(store).read_bytes())
    data[-10] ^= 0x01
    _models_file(store).write_bytes(bytes(data))
    with pytest.raises(UntrustedArtifactError, match="corrupted"):
        FileArtifactStore(store.path, trusted=True).load_models(0)


def test_a_signed_file_cannot_pose_as_another_candidate(store_with_one):
    store, model = store_with_one
    _models_file(store, 1).write_bytes(_models_file(store).read_bytes())
    with pytest.raises(UntrustedArtifactError, match=r"000001\.models\.pkl' was altered"):
        store.load_models(1)


def test_a_folder_signed_with_another_key_needs_trust(store_with_one, data, tmp_path, monkeypatch):
    store, model = store_with_one
    X, _ = data
    monkeypatch.setenv(_signing.KEY_ENV, str(tmp_path / "teammate.key"))
    with pytest.raises(UntrustedArtifactError, match="signed with another key") as info:
        FileArtifactStore(store.path).load_models(0)
    assert isinstance(info.value, UntrustedModelError)
    assert str(_models_file(store)) in str(info.value)
    assert "trusted=True" in str(info.value)
    loaded = FileArtifactStore(store.path, trusted=True).load_models(0)
    np.testing.assert_array_equal(loaded[0].predict(X), model.predict(X))


def test_folders_written_before_signing_load_only_when_trusted(store_with_one, data, tmp_path):
    store, model = store_with_one
    X, _ = data
    joblib.dump([model], store.path / "000001.models.joblib")
    (store.path / "000002.models.pkl").write_bytes(pickle.dumps([model], protocol=5))
    for key, name in ((1, "000001.models.joblib"), (2, "000002.models.pkl")):
        with pytest.raises(UntrustedArtifactError, match=name.replace(".", r"\.")):
            store.load_models(key)
        trusted = FileArtifactStore(store.path, trusted=True)
        np.testing.assert_array_equal(trusted.load_models(key)[0].predict(X), model.predict(X))


def test_predictions_are_never_unpickled(store_with_one, tmp_path):
    store, _ = store_with_one
    marker = tmp_path / "pwned.txt"
    np.save(store.path / "000000.oof.npy", np.array([_Exploit(marker)], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="Python objects|allow_pickle"):
        store.load_predictions(0)
    assert not marker.exists()


def test_the_store_and_model_files_share_one_key(store_with_one, tmp_path, monkeypatch):
    from ensemble_hpo.persistence import load_model, save_model

    store, model = store_with_one
    path = save_model(model, tmp_path / "m.ehpo")
    load_model(path)
    # Moving to another key invalidates both kinds of file together.
    monkeypatch.setenv(_signing.KEY_ENV, str(tmp_path / "new.key"))
    with pytest.raises(UntrustedModelError):
        load_model(path)
    with pytest.raises(UntrustedArtifactError):
        store.load_models(0)


def test_concurrent_first_use_makes_one_key(tmp_path, monkeypatch):
    monkeypatch.setenv(_signing.KEY_ENV, str(tmp_path / "new" / "signing.key"))
    keys: list[bytes] = []
    start = threading.Barrier(8)

    def first_use() -> None:
        start.wait()
        keys.append(_signing.signing_key())

    threads = [threading.Thread(target=first_use) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(keys) == 8 and len(set(keys)) == 1 and len(keys[0]) == 32
    assert sorted(p.name for p in (tmp_path / "new").iterdir()) == ["signing.key"]


def test_a_truncated_key_file_is_refused(tmp_path, monkeypatch):
    (tmp_path / "short.key").write_bytes(b"")
    monkeypatch.setenv(_signing.KEY_ENV, str(tmp_path / "short.key"))
    with pytest.raises(ValueError, match="must hold at least 16 bytes. Got 0 instead"):
        _signing.sign(b"payload")


def test_a_store_pickled_before_trusted_existed_reads_as_untrusted(store_with_one):
    store, _ = store_with_one
    old = pickle.loads(pickle.dumps(store))
    # Trust is never pickled, so an unpickled store looks like one from before it existed.
    assert "trusted" not in old.__dict__
    assert len(old.load_models(0)) == 1
    _models_file(store).write_bytes(pickle.dumps([1]))
    with pytest.raises(UntrustedArtifactError, match="not signed"):
        old.load_models(0)


def test_a_signed_file_copied_from_another_run_folder_is_refused(data, tmp_path):
    # Audit: a models file of another run (same user, same key) predicted for this one.
    X, y = data
    runs = {}
    for name, labels in (("mine", y), ("other", 1 - y)):
        model = LogisticRegression(max_iter=500).fit(X, labels)
        store = FileArtifactStore(tmp_path / name)
        store.bind(f"study of {name}")
        store.save(0, model.predict_proba(X), [model])
        runs[name] = store
    _models_file(runs["mine"]).write_bytes(_models_file(runs["other"]).read_bytes())
    with pytest.raises(UntrustedArtifactError, match="copied from another run folder"):
        runs["mine"].load_models(0)


def test_files_signed_before_the_folder_id_was_signed_still_load(store_with_one, data):
    from ensemble_hpo.population import _store

    store, model = store_with_one
    X, _ = data
    payload = pickle.dumps([model], protocol=5)
    header = _store._HEADER.pack(_store._MAGIC_V1, _signing.key_fingerprint(),
                                 _store.hashlib.sha256(payload).digest(),
                                 _signing.sign(_store._context(3, None, _store._MAGIC_V1), payload))
    _models_file(store, 3).write_bytes(header + payload)
    np.testing.assert_array_equal(store.load_models(3)[0].predict(X), model.predict(X))


def test_a_relative_folder_is_kept_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    store = FileArtifactStore("runs/artifacts")
    assert store.path == tmp_path / "runs" / "artifacts"


def test_a_deleted_models_file_leaves_the_candidate_out_with_a_clear_error(store_with_one):
    store, _ = store_with_one
    _models_file(store).unlink()
    assert 0 not in store and not store.has_models(0)
    with pytest.raises(FileNotFoundError, match="fold models of candidate 0 .* are missing"):
        store.load_models(0)


def test_resuming_a_folder_signed_with_another_key_fails_before_training(data, tmp_path, monkeypatch):
    # Audit: the resumed fit trained its whole budget, then failed loading the models.
    X, y = data
    folder = tmp_path / "run"
    settings = dict(models=["logistic"], search="random", cv=3, random_state=0,
                    warm_start_configs=None, run_dir=str(folder))
    EnsembleClassifier(n_trials=2, **settings).fit(X, y)
    files = sorted(p.name for p in (folder / "artifacts").iterdir())
    monkeypatch.setenv(_signing.KEY_ENV, str(tmp_path / "teammate.key"))
    with pytest.raises(UntrustedArtifactError, match="signed with another key"):
        EnsembleClassifier(n_trials=4, **settings).fit(X, y)
    assert sorted(p.name for p in (folder / "artifacts").iterdir()) == files
    resumed = EnsembleClassifier(n_trials=4, trusted=True, **settings).fit(X, y)
    assert len(resumed.leaderboard_) == 4


def test_a_store_opened_on_a_run_folder_without_binding_reads_its_models(data, tmp_path):
    X, y = data
    model = LogisticRegression(max_iter=500).fit(X, y)
    bound = FileArtifactStore(tmp_path / "run")
    bound.bind("study")
    bound.save(0, model.predict_proba(X), [model])
    reader = FileArtifactStore(tmp_path / "run")  # as a user reading a run's artifacts
    np.testing.assert_array_equal(reader.load_models(0)[0].predict(X), model.predict(X))
