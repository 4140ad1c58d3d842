"""Model files: round trip, signature checks, format versions."""

from __future__ import annotations

import json
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_iris

from ensemble_hpo import EnsembleClassifier
from ensemble_hpo.persistence import FORMAT_VERSION, UntrustedModelError, load_model, save_model


@pytest.fixture(scope="module")
def fitted(iris_data=None):
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    return EnsembleClassifier(models=["logistic"], n_trials=2, cv=3, random_state=0).fit(X, y), X


def _rewrite(path, target, *, manifest=None, payload=None):
    with zipfile.ZipFile(path) as archive:
        old_manifest = json.loads(archive.read("manifest.json"))
        old_payload = archive.read("model.joblib")
    with zipfile.ZipFile(target, "w") as archive:
        archive.writestr("manifest.json", json.dumps(manifest or old_manifest))
        archive.writestr("model.joblib", payload if payload is not None else old_payload)
    return old_manifest, old_payload


def test_round_trip_predicts_the_same(fitted, tmp_path):
    model, X = fitted
    path = save_model(model, tmp_path / "m.ehpo")
    loaded = load_model(path)
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))


def test_tampered_payload_is_refused_before_unpickling(fitted, tmp_path):
    model, _ = fitted
    path = save_model(model, tmp_path / "m.ehpo")
    _, payload = _rewrite(path, tmp_path / "probe.ehpo")
    tampered = bytearray(payload)
    tampered[len(tampered) // 2] ^= 0xFF
    _rewrite(path, tmp_path / "bad.ehpo", payload=bytes(tampered))
    with pytest.raises(UntrustedModelError, match="checksum mismatch"):
        load_model(tmp_path / "bad.ehpo", trusted=True)


def test_file_signed_with_another_key_needs_explicit_trust(fitted, tmp_path, monkeypatch):
    model, X = fitted
    path = save_model(model, tmp_path / "m.ehpo")
    monkeypatch.setenv("ENSEMBLE_HPO_KEY_FILE", str(tmp_path / "other.key"))
    with pytest.raises(UntrustedModelError, match="not signed with your key"):
        load_model(path)
    assert load_model(path, trusted=True).predict(X).shape == (len(X),)


def test_incompatible_format_version_is_a_clear_error(fitted, tmp_path):
    model, _ = fitted
    path = save_model(model, tmp_path / "m.ehpo")
    manifest, _ = _rewrite(path, tmp_path / "probe.ehpo")
    _rewrite(path, tmp_path / "v99.ehpo", manifest={**manifest, "format_version": 99})
    with pytest.raises(ValueError, match=f"format version 99.*reads version {FORMAT_VERSION}"):
        load_model(tmp_path / "v99.ehpo")


def test_not_a_model_file(tmp_path):
    (tmp_path / "junk.ehpo").write_bytes(b"hello")
    with pytest.raises(ValueError, match="not an ensemble_hpo model file"):
        load_model(tmp_path / "junk.ehpo")


def test_a_model_saved_before_modules_moved_still_loads_and_predicts_the_same():
    # Saved by ensemble_hpo 4042b46, when the fitted ensemble lived in ensemble_hpo._ensemble
    # and the export in ensemble_hpo.fusion._export (signed with another key: trusted).
    data = Path(__file__).parent / "data"
    model = load_model(data / "model_saved_before_the_ensemble_package.ehpo", trusted=True)
    X, _ = load_iris(return_X_y=True)
    expected = np.load(data / "model_saved_before_the_ensemble_package_proba.npy")
    np.testing.assert_allclose(model.predict_proba(X[::10]), expected, rtol=1e-12)
    assert type(model.ensemble_).__module__ == "ensemble_hpo.ensemble._fitted"
    assert "ensemble_hpo._ensemble" not in sys.modules  # the alias is gone after loading
