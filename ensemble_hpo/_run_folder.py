"""The run folder's layout: one object names every file a durable run keeps.

``fit(run_dir=...)`` keeps the study journal and the candidates' artifacts there; the CLI adds
its configuration, summary, tables and the fitted model beside them. Nothing else in the
package spells these names; the module imports nothing heavy at load time, so the CLI starts fast.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ensemble_hpo._process import process_tag

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

    def __post_init__(self) -> None:
        if self.root is not None and not isinstance(self.root, str | os.PathLike):
            raise ValueError("The 'run_dir' parameter must be None, a str or a path. "
                             f"Got {self.root!r} instead.")

    STUDY = "study.log"
    ARTIFACTS = "artifacts"
    CONFIG = "config.yaml"
    SUMMARY = "summary.json"
    LEADERBOARD = "leaderboard.csv"
    FUSION_COMPARISON = "fusion_comparison.csv"
    PREDICTION_COST = "prediction_cost.csv"
    MODEL = "model.ehpo"
    SEED = "random_state.json"

    @property
    def path(self) -> Path:
        if self.root is None:
            raise ValueError("This run keeps everything in memory; it has no folder.")
        return Path(self.root).expanduser()  # as the CLI reads it, not as a folder named '~'

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
        from ensemble_hpo.storage import absolute_storage  # loads Optuna: not for the CLI's start

        # One file, however its URL spells the path (a plain "runs/w/study.log" included).
        storage = absolute_storage(storage)
        if self.root is not None and storage == f"journal://{(self.path / self.STUDY).resolve()}":
            return self.STUDY
        return storage

    def artifact_store(self, *, trusted: bool = False) -> ArtifactStore:
        """Out-of-fold predictions and fold models: files in the folder, or in memory."""
        # Imported here so that the CLI can read the layout's names without loading models.
        from ensemble_hpo.population import FileArtifactStore, MemoryArtifactStore

        if self.root is None:
            return MemoryArtifactStore()
        return FileArtifactStore(self.path / self.ARTIFACTS, trusted=trusted)

    @contextlib.contextmanager
    def discard_if_untrained(self) -> Iterator[None]:
        """On an error inside, remove what was written in the folder while no candidate finished.

        A run that fails before any candidate finished (every candidate failed, a bad
        setting found late, Ctrl-C in the first candidate) left its study and the artifact
        folder's claim behind, and the corrected run on the same folder was refused as
        computed on other models. With a finished candidate's out-of-fold predictions in
        the folder everything is kept, to resume; what was there before is never touched.
        """
        if self.root is None:
            yield
            return
        created = not self.path.exists()
        before = set() if created else {p.name for p in self.path.iterdir()}
        try:
            yield
        except BaseException:
            if self.path.is_dir() and not self.has_finished_candidate() and not self._claimed_by_other():
                self._remove_all_but(before)
                if created and not any(self.path.iterdir()):
                    self.path.rmdir()
            raise

    def seed_for(self, random_state: int | None) -> int | None:
        """The fit's seed: ``random_state``, or for None in a folder, one drawn by the folder's
        first fit and kept in it (:attr:`SEED`), so that fitting again resumes.

        Drawn anew by every fit, ``random_state=None`` (the default) made other CV folds each
        time, and the folder could never be resumed: "the CV folds changed" (audit).
        """
        if random_state is not None or self.root is None:
            return random_state
        path = self.path / self.SEED
        if not path.exists():
            self.path.mkdir(parents=True, exist_ok=True)
            _publish_once(path, json.dumps({"random_state": secrets.randbelow(2**32)}))
        return int(json.loads(path.read_text())["random_state"])

    @contextlib.contextmanager
    def noting_kept_work(self) -> Iterator[None]:
        """On Ctrl-C, add a note to the KeyboardInterrupt saying what the fit keeps.

        A bare KeyboardInterrupt left a notebook user guessing whether an hour of candidates
        was lost (audit). Python prints the note under the traceback (PEP 678).
        """
        try:
            yield
        except KeyboardInterrupt as exc:
            exc.add_note(self.kept_work())
            raise

    def kept_work(self) -> str:
        """One sentence on what an interrupted fit leaves in this folder."""
        if self.root is None:
            return ("ensemble_hpo: nothing is kept: without a run_dir the finished candidates "
                    "lived in memory only. Set run_dir to keep them across an interrupt.")
        n_finished = self.n_finished_candidates()
        if n_finished == 0:
            return f"ensemble_hpo: no candidate had finished; {str(self.path)!r} is as it was."
        return (f"ensemble_hpo: {n_finished} finished candidates are kept in {str(self.path)!r}; "
                "fitting again with the same run_dir and data resumes without retraining them.")

    def _claimed_by_other(self) -> bool:
        """Whether another process claimed the artifacts (a fit started beside this one).

        A fit refused on a folder that another fit created meanwhile removed that fit's
        study and files under it, and the other fit crashed (audit).
        """
        from ensemble_hpo.population import FileArtifactStore

        claim = FileArtifactStore.read_claim(self.path / self.ARTIFACTS)
        return claim is not None and claim.get("process", process_tag()) != process_tag()

    def has_finished_candidate(self) -> bool:
        """Whether the folder's artifacts hold a finished candidate's out-of-fold predictions."""
        return self.n_finished_candidates() > 0

    def n_finished_candidates(self) -> int:
        """Candidates whose out-of-fold predictions the folder's artifacts hold."""
        from ensemble_hpo.population import FileArtifactStore

        return len(FileArtifactStore.stored_numbers(self.path / self.ARTIFACTS))

    def _remove_all_but(self, kept: set[str]) -> None:
        for path in self.path.iterdir():
            if path.name in kept:
                continue
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()


def _publish_once(path: Path, text: str) -> None:
    """Write ``path`` whole unless it exists: of processes racing, the first one's text stays.

    A hard link appears whole and fails if the name exists; a filesystem without hard links
    gets an exclusive create instead (written in one call, so a reader rarely sees it partly).
    """
    draft = path.with_name(f".{path.name}.{process_tag()}")
    draft.write_text(text)
    try:
        os.link(draft, path)
    except FileExistsError:
        pass  # another process published first
    except OSError:
        with contextlib.suppress(FileExistsError), open(path, "x") as file:
            file.write(text)
    finally:
        draft.unlink()
