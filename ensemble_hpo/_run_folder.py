"""The run folder's layout: one object names every file a durable run keeps.

``fit(run_dir=...)`` keeps the study journal and the candidates' artifacts there; the CLI adds
its configuration, summary, tables and the fitted model beside them. Nothing else in the
package spells these names; the module imports nothing heavy at load time, so the CLI starts fast.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ensemble_hpo.population import ArtifactStore

__all__ = ["RunFolder"]


@dataclass(frozen=True)
class RunFolder:
    """Where a run's state lives; ``root=None`` keeps everything in memory.

    Examples
    --------
    >>> folder = RunFolder("runs/churn")
    >>> folder.storage()
    'journal://runs/churn/study.log'
    >>> RunFolder(None).storage() is None
    True
    """

    root: Path | str | None

    STUDY = "study.log"
    ARTIFACTS = "artifacts"
    CONFIG = "config.yaml"
    SUMMARY = "summary.json"
    LEADERBOARD = "leaderboard.csv"
    FUSION_COMPARISON = "fusion_comparison.csv"
    PREDICTION_COST = "prediction_cost.csv"
    MODEL = "model.ehpo"

    @property
    def path(self) -> Path:
        if self.root is None:
            raise ValueError("This run keeps everything in memory; it has no folder.")
        return Path(self.root)

    def storage(self, storage: Any = None) -> Any:
        """The study's storage: ``storage`` when given, else the folder's journal (None in memory)."""
        if storage is not None or self.root is None:
            return storage
        return f"journal://{self.path / self.STUDY}"

    def study_owner(self, storage: Any = None) -> str:
        """Which study a run with ``storage`` keeps in this folder (see ``FileArtifactStore.bind``).

        The folder's own journal is named relative to the folder, so a moved folder still
        resumes; an explicit journal URL for that same file means the same study, and file
        URLs (journal, SQLite) compare by their resolved path.
        """
        if storage is None:
            return self.STUDY
        if not isinstance(storage, str):
            # An RDB storage object has its URL; any other object (in memory, a journal
            # object) is this object only: another one is another study.
            url = getattr(storage, "url", None)
            return url if isinstance(url, str) else f"{type(storage).__name__} object {id(storage):#x}"
        for scheme in ("journal://", "sqlite:///"):
            if storage.startswith(scheme) and self.root is not None:
                path = Path(storage[len(scheme):]).resolve()
                if scheme == "journal://" and path == (self.path / self.STUDY).resolve():
                    return self.STUDY
                return f"{scheme}{path}"  # one file, however its URL spells the path
        return storage

    def artifact_store(self, *, trusted: bool = False) -> ArtifactStore:
        """Out-of-fold predictions and fold models: files in the folder, or in memory."""
        # Imported here so that the CLI can read the layout's names without loading models.
        from ensemble_hpo.population import FileArtifactStore, MemoryArtifactStore

        if self.root is None:
            return MemoryArtifactStore()
        return FileArtifactStore(self.path / self.ARTIFACTS, trusted=trusted)
