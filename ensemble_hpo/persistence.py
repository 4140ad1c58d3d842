"""Save and load fitted ensembles without running untrusted code.

A model file (``.ehpo``) is a zip archive holding ``manifest.json`` and a joblib
payload. Unpickling can execute code, so :func:`load_model` unpickles only
payloads that are

* signed with *your* key (HMAC-SHA256 over the payload, written by
  :func:`save_model`; the key lives in ``~/.ensemble_hpo/signing.key`` or the
  file named by ``ENSEMBLE_HPO_KEY_FILE``, see :mod:`ensemble_hpo._signing`), or
* explicitly trusted by the caller (``trusted=True``), the documented trust
  step for files received from someone else.

A tampered payload fails the signature check and is refused before anything is
unpickled. The fold models a run folder keeps (``artifacts/*.models.pkl``) are
signed with the same key and refused the same way (:class:`UntrustedArtifactError`,
see :class:`ensemble_hpo.population.FileArtifactStore`). The manifest carries a
format version; a file written by an incompatible version gives a clear error.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import importlib
import io
import json
import os
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import joblib

from ensemble_hpo._signing import sign

__all__ = ["FORMAT_VERSION", "ModelFileError", "UntrustedArtifactError", "UntrustedModelError",
           "load_model", "save_model"]

FORMAT_NAME = "ensemble_hpo-model"
FORMAT_VERSION = 1
_MANIFEST, _PAYLOAD = "manifest.json", "model.joblib"
# Modules renamed since files of this format were first written (old name -> new name). A
# pickle names each class by its module, so a saved model keeps loading after a move.
_MOVED_MODULES = {
    "ensemble_hpo._ensemble": "ensemble_hpo.ensemble._fitted",
    "ensemble_hpo.fusion._export": "ensemble_hpo.ensemble._export",
    "ensemble_hpo.fusion._cost": "ensemble_hpo.ensemble._cost",
}


class UntrustedModelError(ValueError):
    """A pickled file's signature does not match this user's key; it is not unpickled.

    ``trust_helps`` says whether loading it with ``trusted=True`` would work: not for a
    file whose checksum does not match (corrupted, or altered after it was written).
    """

    def __init__(self, message: str, *, trust_helps: bool = True) -> None:
        super().__init__(message)
        self.trust_helps = trust_helps


class ModelFileError(ValueError):
    """A file that is not a readable ensemble_hpo model file (or of another format version)."""


class UntrustedArtifactError(UntrustedModelError):
    """A fold-model file in a run folder is unsigned, signed with another key, or altered."""


def _signature(payload: bytes) -> str:
    return sign(payload).hex()


def save_model(model: Any, path: str | os.PathLike[str]) -> Path:
    """Write ``model`` to ``path`` atomically, signed with this user's key."""
    from ensemble_hpo import __version__

    buffer = io.BytesIO()
    joblib.dump(model, buffer, compress=3)
    payload = buffer.getvalue()
    manifest = {
        "format": FORMAT_NAME, "format_version": FORMAT_VERSION, "library_version": __version__,
        "sha256": hashlib.sha256(payload).hexdigest(), "signature": _signature(payload),
        "class": type(model).__name__,
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".ehpo")
    os.close(fd)
    try:
        with zipfile.ZipFile(tmp, "w") as archive:
            archive.writestr(_MANIFEST, json.dumps(manifest, indent=2))
            archive.writestr(_PAYLOAD, payload)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def _read(path: Path) -> tuple[dict[str, Any], bytes]:
    try:
        with zipfile.ZipFile(path) as archive:
            manifest = json.loads(archive.read(_MANIFEST))
            payload = archive.read(_PAYLOAD)
    except (zipfile.BadZipFile, KeyError, json.JSONDecodeError, OSError) as exc:
        raise ModelFileError(f"{str(path)!r} is not an ensemble_hpo model file: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
        raise ModelFileError(f"{str(path)!r} is not an ensemble_hpo model file.")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise ModelFileError(
            f"The model file {str(path)!r} has format version {version!r}, but this ensemble_hpo "
            f"reads version {FORMAT_VERSION}. Load it with the ensemble_hpo version that wrote it "
            f"({manifest.get('library_version')!r}) and refit or re-save."
        )
    return manifest, payload


def load_model(path: str | os.PathLike[str], *, trusted: bool = False) -> Any:
    """Load a model saved by :func:`save_model`.

    Parameters
    ----------
    path : path-like
    trusted : bool, default=False
        Set to True only for a file from a source you trust that was signed with
        another key. Even then a payload whose checksum does not match is refused.
    """
    path = Path(path)
    manifest, payload = _read(path)
    if hashlib.sha256(payload).hexdigest() != manifest.get("sha256"):
        raise UntrustedModelError(f"The model file {str(path)!r} is corrupted or was tampered with "
                                  "(checksum mismatch); refusing to load it.", trust_helps=False)
    if not trusted and not hmac.compare_digest(_signature(payload), str(manifest.get("signature"))):
        raise UntrustedModelError(
            f"The model file {str(path)!r} was not signed with your key, so loading it could run "
            "untrusted code. If you trust its source, call load_model(path, trusted=True)."
        )
    with _old_module_names():
        return joblib.load(io.BytesIO(payload))


@contextlib.contextmanager
def _old_module_names() -> Iterator[None]:
    """While unpickling, let the old module names of :data:`_MOVED_MODULES` resolve."""
    added = [old for old in _MOVED_MODULES if old not in sys.modules]
    for old in added:
        sys.modules[old] = importlib.import_module(_MOVED_MODULES[old])
    try:
        yield
    finally:
        for old in added:
            sys.modules.pop(old, None)
