"""Artifact stores: where each candidate's out-of-fold predictions and fold models live.

Optuna's storages keep params and scores; arrays and fitted models do not belong
in a database row, so they go to an artifact store keyed by trial number. The
file store writes atomically (temp file + ``os.replace``) *before* the trial is
reported complete, so a killed run never leaves a completed trial without its
artifacts.
"""

from __future__ import annotations

import os
import pickle
import tempfile
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import joblib
import numpy as np

__all__ = ["ArtifactStore", "FileArtifactStore", "MemoryArtifactStore"]


class ArtifactStore(ABC):
    """Keeps out-of-fold predictions (float32) and fitted fold models per candidate."""

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

    def drop_models(self, keep: set[int]) -> None:  # noqa: B027 - optional hook
        """Free the fold models of every candidate not in ``keep`` (no-op by default)."""


class MemoryArtifactStore(ArtifactStore):
    """Keeps artifacts in this process (quick estimator fits, sequential search)."""

    def __init__(self) -> None:
        self._predictions: dict[int, np.ndarray] = {}
        self._models: dict[int, list[Any]] = {}

    def save(self, key: int, predictions: np.ndarray, models: list[Any]) -> None:
        self._predictions[key] = np.asarray(predictions, dtype=np.float32)
        self._models[key] = list(models)

    def load_predictions(self, key: int) -> np.ndarray:
        return self._predictions[key]

    def load_models(self, key: int) -> list[Any]:
        return self._models[key]

    def __contains__(self, key: int) -> bool:
        return key in self._predictions

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
    from worker processes paid. Folders written before (``{key}.models.joblib``)
    still load.

    Parameters
    ----------
    path : str or Path
        Folder, created if missing. Several processes may share it.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)

    def _file(self, key: int, kind: str) -> Path:
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
        array = np.asarray(predictions, dtype=np.float32)
        # Models first: the predictions file is the marker that the candidate is complete.
        self._atomic_write(self._file(key, "models.pkl"), lambda p: _pickle_to(list(models), p))
        self._atomic_write(self._file(key, "oof.npy"), lambda p: np.save(p, array))

    def load_predictions(self, key: int) -> np.ndarray:
        return np.load(self._file(key, "oof.npy"), mmap_mode="r")

    def load_models(self, key: int) -> list[Any]:
        path = self._file(key, "models.pkl")
        if not path.exists():
            return joblib.load(self._file(key, "models.joblib"))
        with open(path, "rb") as file:
            return pickle.load(file)  # noqa: S301 - this run's own folder, as trusted as joblib files

    def __contains__(self, key: int) -> bool:
        return self._file(key, "oof.npy").exists()


def _pickle_to(obj: Any, path: str) -> None:
    with open(path, "wb") as file:
        pickle.dump(obj, file, protocol=5)
