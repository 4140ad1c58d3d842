"""Artifact stores: where each candidate's out-of-fold predictions and fold models live.

Optuna's storages keep params and scores; arrays and fitted models do not belong
in a database row, so they go to an artifact store keyed by trial number. The
file store writes atomically (temp file + ``os.replace``) *before* the trial is
reported complete, so a killed run never leaves a completed trial without its
artifacts.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import pickle
import struct
import tempfile
import time
import uuid
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import joblib
import numpy as np

from ensemble_hpo._process import process_tag
from ensemble_hpo._run_identity import RunFolderMismatch
from ensemble_hpo._signing import KEY_ENV, key_fingerprint, sign, verify
from ensemble_hpo.persistence import UntrustedArtifactError

__all__ = ["ArtifactStore", "FileArtifactStore", "MemoryArtifactStore", "UntrustedArtifactError",
           "prediction_dtype"]


def prediction_dtype(predictions: np.ndarray) -> type:
    """How out-of-fold predictions are kept: probabilities (2-D) as float32, regression
    values (1-D) as float64. float32 keeps 7 digits, so a target of 1e9 (prices in cents,
    timestamps) would be stored in steps of 64: a candidate's RMSE of 10.5 read back as 21.2
    (fourth audit)."""
    return np.float32 if np.ndim(predictions) > 1 else np.float64


class ArtifactStore(ABC):
    """Keeps out-of-fold predictions (see :func:`prediction_dtype`) and fitted fold models per candidate."""

    @abstractmethod
    def save(self, key: int, predictions: np.ndarray, models: list[Any]) -> None:
        """Store both artifacts of candidate ``key``."""

    @abstractmethod
    def load_predictions(self, key: int) -> np.ndarray:
        """Out-of-fold predictions of candidate ``key``."""

    @abstractmethod
    def load_models(self, key: int) -> list[Any]:
        """Fitted fold models of candidate ``key``."""

    @abstractmethod
    def __contains__(self, key: int) -> bool: ...

    def has_models(self, key: int) -> bool:
        """Whether candidate ``key``'s fold models are still kept (see ``drop_models``)."""
        return key in self

    def keys(self) -> list[int]:
        """Numbers of the candidates whose predictions are stored (empty for a store that
        cannot list them)."""
        return []

    def bind(self, study: str) -> None:  # noqa: B027 - optional hook
        """Claim the store for ``study`` (a file store refuses another study's folder)."""

    def drop_models(self, keep: set[int]) -> None:  # noqa: B027 - optional hook
        """Free the fold models of every candidate not in ``keep`` (no-op by default)."""

    def check_signer(self) -> None:  # noqa: B027 - optional hook
        """Raise before any training if the stored models could not be loaded (no-op by default)."""


class MemoryArtifactStore(ArtifactStore):
    """Keeps artifacts in this process (quick estimator fits, sequential search)."""

    def __init__(self) -> None:
        self._predictions: dict[int, np.ndarray] = {}
        self._models: dict[int, list[Any]] = {}

    def save(self, key: int, predictions: np.ndarray, models: list[Any]) -> None:
        self._predictions[key] = np.asarray(predictions, dtype=prediction_dtype(predictions))
        self._models[key] = list(models)

    def load_predictions(self, key: int) -> np.ndarray:
        return self._predictions[key]

    def load_models(self, key: int) -> list[Any]:
        return self._models[key]

    def __contains__(self, key: int) -> bool:
        return key in self._predictions

    def keys(self) -> list[int]:
        return sorted(self._predictions)

    def has_models(self, key: int) -> bool:
        return bool(self._models.get(key))

    def drop_models(self, keep: set[int]) -> None:
        # Predictions are small and allow re-selection; models dominate memory.
        for key in self._models:
            if key not in keep:
                self._models[key] = []


class FileArtifactStore(ArtifactStore):
    """Keeps artifacts in a folder: ``{key}.oof.npy`` (memory-mapped on load) and ``{key}.models.pkl``.

    Models are written with plain pickle (protocol 5): for tree ensembles, made of
    many small arrays, ``joblib.dump``/``load`` took 0.25 s/0.18 s per 3-fold forest
    candidate against 0.075 s/0.016 s, time every parallel trial and the copy back
    from worker processes paid.

    Unpickling runs code, and a run folder can be copied, shared or edited, so every
    models file starts with an 80-byte header: a magic tag, the writer's key
    fingerprint, the payload's SHA-256 and its HMAC-SHA256 under this user's signing
    key (the key of :mod:`ensemble_hpo.persistence`, see :mod:`ensemble_hpo._signing`).
    The file is read once and verified before anything is unpickled; an unsigned file,
    one signed with another key or one altered since raises
    :class:`~ensemble_hpo.persistence.UntrustedArtifactError`. Folders written before
    signing (``{key}.models.joblib`` or header-less ``.models.pkl``) load only with
    ``trusted=True``. Predictions are plain ``.npy`` arrays, loaded without pickle.

    Several processes of one user (``n_jobs``, local Dask workers) share the key.
    Workers on other machines, or a teammate's run folder, need either the same key
    file (``ENSEMBLE_HPO_KEY_FILE``) or ``trusted=True``.

    Parameters
    ----------
    path : str or Path
        Folder, created if missing. Several processes may share it.
    trusted : bool, default=False
        Load models not signed with your key (another user's folder, folders from
        before signing). Only for folders from a source you trust: unpickling a
        crafted file runs arbitrary code. A file whose checksum does not match is
        refused even then.
    """

    # Stores pickled (inside .ehpo files, kept benchmark fits) before ``trusted`` existed
    # have no such attribute: they read as untrusted.
    trusted: bool = False
    # The folder incarnation this store is bound to (see :meth:`bind`); None: unchecked.
    folder_id: str | None = None
    OWNER = "OWNER.json"

    def __init__(self, path: str | os.PathLike[str], *, trusted: bool = False) -> None:
        # Absolute: a saved model loaded from another working directory (or a chdir) must
        # find the same folder (audit: reported as "removed or started over").
        self.path = Path(path).absolute()
        self.trusted = bool(trusted)
        self.path.mkdir(parents=True, exist_ok=True)

    def __getstate__(self) -> dict[str, Any]:
        # Trust is this process's decision: a store pickled into a saved model (or sent to a
        # worker) reads as untrusted until its new owner says otherwise.
        state = dict(self.__dict__)
        state.pop("trusted", None)
        state.pop("_owner_stat", None)  # another process checks the folder afresh
        return state

    def bind(self, study: str) -> None:
        """Claim the folder for ``study`` (a description of the study's storage), or check the claim.

        The first store to bind a folder writes ``OWNER.json``: a random id of this folder's
        incarnation and ``study``. A store of another study is refused, as two studies
        numbering their candidates from 0 would overwrite each other's files. A bound store
        checks the id on every read and write, so a saved model whose run folder was
        started over (``ensemble-hpo run --force``) refuses the new folder's files instead
        of predicting with them.
        """
        if (not self.trusted and not (self.path / self.OWNER).exists()
                and any(map(_signed_with_folder_id, self.path.glob("*.models.pkl")))):
            # Claimed anew, its models (signed with the lost claim's id) were refused as
            # tampered only after new candidates had trained, on every later resume too (audit).
            raise RunFolderMismatch(
                f"The artifacts folder {str(self.path)!r} holds candidates but not the claim "
                f"({self.OWNER}) their models were signed with, so they cannot be verified. "
                f"Restore {self.OWNER}, or use a new 'run_dir'.")
        owner = self._claim(study)
        if owner["study"] != study:
            raise RunFolderMismatch(
                f"The artifacts folder {str(self.path)!r} belongs to the study in {owner['study']!r}, "
                f"not to this run's study in {study!r}: their candidates would overwrite each other's "
                "files. Use another 'run_dir' for another study.")
        self.folder_id = owner["id"]

    def _claim(self, study: str) -> dict[str, str]:
        path = self.path / self.OWNER
        # "process": who claimed it, so that a failed fit removes only a folder it made itself.
        mine = {"id": uuid.uuid4().hex, "study": study, "process": process_tag()}
        fd, tmp = tempfile.mkstemp(dir=self.path, prefix=".tmp-", suffix=".json")
        with os.fdopen(fd, "w") as file:
            json.dump(mine, file)
        try:
            # A hard link appears whole and fails if the name exists: of several processes
            # binding a new folder at once, exactly one claims it and the others read it.
            os.link(tmp, path)
            return mine
        except FileExistsError:
            return self._read_owner()
        except OSError:  # a filesystem without hard links: exclusive create, read with retries
            try:
                with open(path, "x") as file:
                    json.dump(mine, file)
                return mine
            except FileExistsError:
                return self._read_owner()
        finally:
            os.remove(tmp)

    def _read_owner(self, attempts: int = 20) -> dict[str, str]:
        # Another process may have created the file an instant ago and still be writing it.
        for _ in range(attempts):
            try:
                return json.loads((self.path / self.OWNER).read_text())
            except (json.JSONDecodeError, FileNotFoundError):
                time.sleep(0.05)
        return json.loads((self.path / self.OWNER).read_text())

    def _check_folder(self) -> None:
        if self.folder_id is None:
            return
        path = self.path / self.OWNER
        try:
            stat = path.stat()
            signature = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
            # Read again only when the file changed: one stat per access instead of a read.
            if signature != getattr(self, "_owner_stat", None):
                current = self._read_owner()["id"]
                self._owner_stat = signature if current == self.folder_id else None
            else:
                current = self.folder_id
        except FileNotFoundError:
            current = None
        if current is None:
            raise RunFolderMismatch(
                f"The artifacts folder {str(self.path)!r} of this model is gone: the run folder "
                "was moved or removed since the fit. A moved run folder resumes where it is now "
                "(fit with run_dir=<new place>, or ensemble-hpo resume <new place>), which "
                "gives a model that can use its files again.")
        if current != self.folder_id:
            raise RunFolderMismatch(
                f"The artifacts folder {str(self.path)!r} is not the one this model was fitted "
                "with: the run folder was started over since, so its files belong to another "
                "run. Refit, or use a model saved from that other run.")

    @classmethod
    def read_claim(cls, folder: str | os.PathLike[str]) -> dict[str, Any] | None:
        """The claim :meth:`bind` wrote in ``folder`` (id, study, process), or None when it
        has no readable one."""
        try:
            claim = json.loads((Path(folder) / cls.OWNER).read_text())
        except (OSError, ValueError):
            return None
        return claim if isinstance(claim, dict) else None

    def _signing_id(self) -> str | None:
        """The id of the folder's claim, signed into its models files: the bound one, or for a
        store opened on a folder without binding (reading a run's artifacts) the folder's own."""
        if self.folder_id is not None:
            return self.folder_id
        claim = self.read_claim(self.path)
        return None if claim is None else claim.get("id")

    def _file(self, key: int, kind: str) -> Path:
        self._check_folder()
        return self._path(key, kind)

    def _path(self, key: int, kind: str) -> Path:
        return self.path / f"{int(key):06d}.{kind}"

    def _atomic_write(self, target: Path, write: Any) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.path, prefix=".tmp-", suffix=target.suffix)
        os.close(fd)
        try:
            write(tmp)
            os.replace(tmp, target)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)

    def save(self, key: int, predictions: np.ndarray, models: list[Any]) -> None:
        array = np.asarray(predictions, dtype=prediction_dtype(predictions))
        payload = pickle.dumps(list(models), protocol=5)
        header = _signed_header(key, payload, self._signing_id())
        # Models first: the predictions file is the marker that the candidate is complete.
        self._atomic_write(self._file(key, "models.pkl"), lambda p: _write_parts(p, header, payload))
        self._atomic_write(self._file(key, "oof.npy"), lambda p: np.save(p, array, allow_pickle=False))

    def load_predictions(self, key: int) -> np.ndarray:
        return np.load(self._file(key, "oof.npy"), mmap_mode="r", allow_pickle=False)

    def load_models(self, key: int) -> list[Any]:
        path = self._file(key, "models.pkl")
        if not path.exists():
            return self._load_legacy_joblib(key)
        data = path.read_bytes()
        payload = _verified_payload(key, data, path, self._signing_id(), trusted=self.trusted)
        return pickle.loads(payload)  # noqa: S301 - verified above (or trusted by the caller)

    def _load_legacy_joblib(self, key: int) -> list[Any]:
        path = self._file(key, "models.joblib")
        if not path.exists():
            raise FileNotFoundError(
                f"The fold models of candidate {key} ({str(self._file(key, 'models.pkl'))!r}) are "
                "missing: the file was deleted or moved after the candidate finished.")
        if not self.trusted:
            raise _untrusted(path, "is an unsigned file from a version before run folders were signed")
        return joblib.load(path)

    def check_signer(self) -> None:
        """Refuse a folder whose models are signed with another key unless trusted.

        A resumed fit on a teammate's folder searched its whole budget first and failed
        when selection loaded the models (audit). One file's header tells.
        """
        if self.trusted:
            return
        for path in self.path.glob("*.models.pkl"):
            with open(path, "rb") as file:
                head = file.read(_HEADER.size)
            if len(head) == _HEADER.size and head.startswith((_MAGIC, _MAGIC_V1)):
                if _HEADER.unpack(head)[1] != key_fingerprint():
                    raise _untrusted(path, "was signed with another key (another user or machine)")
            return

    def keys(self) -> list[int]:
        return self.stored_numbers(self.path)

    @staticmethod
    def stored_numbers(folder: str | os.PathLike[str]) -> list[int]:
        """Numbers of the candidates whose predictions ``folder`` holds, read without opening
        a store. Predictions alone count: their file is what a new candidate of that number
        overwrites, and what makes a candidate finished."""
        return sorted(int(p.name.split(".")[0]) for p in Path(folder).glob("[0-9]*.oof.npy"))

    def __contains__(self, key: int) -> bool:
        # Both files: a candidate whose models file was deleted cannot become a member
        # (audit: it failed at loading with a misleading "unsigned legacy file" error).
        oof = self._file(key, "oof.npy")  # checks the folder's claim once
        return oof.exists() and any(self._path(key, kind).exists()
                                    for kind in ("models.pkl", "models.joblib"))


def _signed_with_folder_id(path: Path) -> bool:
    """Whether a models file carries a folder id in its signature (version 2; version 1 files,
    written before folders were claimed, carry none and still load without a claim)."""
    with open(path, "rb") as file:
        return file.read(len(_MAGIC)) == _MAGIC


# magic (8) | key fingerprint (8) | SHA-256 of the payload (32) | HMAC-SHA256 (32) | pickle
_MAGIC = b"EHPOSIG\x02"
#: Files written before the folder's id was signed: their context names the candidate only.
_MAGIC_V1 = b"EHPOSIG\x01"
_HEADER = struct.Struct("8s8s32s32s")


def _context(key: int, folder_id: str | None, magic: bytes = _MAGIC) -> bytes:
    # Signed with the payload, so a signed file cannot pose as another candidate's, nor
    # (since version 2) as a file of another run folder: a models file copied in from
    # another run predicted for this one without a warning (audit: accuracy 0.955 -> 0.05).
    context = b"ensemble_hpo models %d\0" % int(key)
    if magic == _MAGIC_V1:
        return context
    return context + (folder_id or "").encode() + b"\0"


def _signed_header(key: int, payload: bytes, folder_id: str | None) -> bytes:
    return _HEADER.pack(_MAGIC, key_fingerprint(), hashlib.sha256(payload).digest(),
                        sign(_context(key, folder_id), payload))


def _write_parts(path: str, *parts: bytes) -> None:
    with open(path, "wb") as file:
        for part in parts:
            file.write(part)


def _verified_payload(key: int, data: bytes, path: Path, folder_id: str | None, *,
                      trusted: bool) -> memoryview:
    """The pickle inside ``data`` once it is known to be this user's (or trusted); else raise."""
    view = memoryview(data)
    if len(data) < _HEADER.size or not data.startswith((_MAGIC, _MAGIC_V1)):
        if trusted:  # a header-less pickle, as written before signing
            return view
        raise _untrusted(path, "is not signed")
    magic, fingerprint, checksum, signature = _HEADER.unpack_from(data)
    payload = view[_HEADER.size:]
    if trusted:
        if not hmac.compare_digest(hashlib.sha256(payload).digest(), checksum):
            raise UntrustedArtifactError(f"The model artifact {str(path)!r} is corrupted (checksum "
                                         "mismatch); refusing to load it even though trusted=True.",
                                         trust_helps=False)
        return payload
    if verify(signature, _context(key, folder_id, magic), payload):
        return payload
    if fingerprint != key_fingerprint():
        raise _untrusted(path, "was signed with another key (another user or machine)")
    raise _untrusted(path, "was altered, or copied from another run folder, after it was written "
                           "(its signature does not match)")


def _untrusted(path: Path, why: str) -> UntrustedArtifactError:
    return UntrustedArtifactError(
        f"The model artifact {str(path)!r} {why}, so unpickling it could run untrusted code; it "
        f"was not loaded. If the run folder comes from a source you trust, pass trusted=True "
        f"(FileArtifactStore(..., trusted=True), or the estimator's set_params(trusted=True)), or set "
        f"{KEY_ENV} to the key file it was signed with."
    )
