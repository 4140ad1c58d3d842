"""Optuna study storages from a short spec, resolvable again inside worker processes.

Specs: ``None`` (in-memory), an RDB URL (``sqlite:///run/study.db``,
``postgresql://user@host/db``), or a journal file (``journal:///abs/path.log``
or any path ending in ``.log``/``.journal``), Optuna's lock-protected append-only
file that several processes on one machine can share without a server.
"""

from __future__ import annotations

import contextlib
import os
import random
import time
import warnings
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import BaseStorage, InMemoryStorage, JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock

from ensemble_hpo._process import is_dead_local_process, process_tag

__all__ = ["OwnedJournalLock", "absolute_storage", "make_storage", "storage_kind"]

_JOURNAL_PREFIX = "journal://"
_SQLITE_PREFIX = "sqlite:///"


def _journal_path(spec: str) -> str | None:
    if spec.startswith(_JOURNAL_PREFIX):
        return spec[len(_JOURNAL_PREFIX):]
    if spec.endswith((".log", ".journal")) and "://" not in spec:
        return spec
    return None


def make_storage(spec: Any) -> BaseStorage:
    """Return an Optuna storage for ``spec`` (see the module docstring)."""
    if spec is None:
        return InMemoryStorage()
    if isinstance(spec, BaseStorage):
        return spec
    if isinstance(spec, os.PathLike):
        spec = os.fspath(spec)
    if not isinstance(spec, str):
        raise ValueError(
            "The 'storage' parameter must be None, an Optuna storage, an RDB URL or a journal "
            f"file path. Got {type(spec).__name__} instead."
        )
    # '~' as the run folder's claim reads it (absolute_storage): unexpanded, a journal
    # "~/s.log" was a new study in each working directory under one claim (audit).
    path = _journal_path(spec)
    if path is not None:
        path = os.path.expanduser(path)
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        lock = OwnedJournalLock(path)
        _drop_cut_last_line(path, lock)
        return JournalStorage(JournalFileBackend(path, lock_obj=lock))
    if spec.startswith(_SQLITE_PREFIX + "~"):
        spec = _SQLITE_PREFIX + os.path.expanduser(spec[len(_SQLITE_PREFIX):])
    if "://" in spec:
        return _rdb_storage(spec)
    raise ValueError(
        "The 'storage' parameter must be an RDB URL ('sqlite:///...', 'postgresql://...') or a "
        f"journal file ('journal:///path' or '*.log'). Got {spec!r} instead."
    )


def _drop_cut_last_line(path: str, lock: JournalFileOpenLock) -> None:
    """Remove the unfinished last line a writer killed mid-write left in a journal.

    Optuna skips such a line, but the next line appended after it joins it into a broken
    line in the middle, and from then on the journal, with every finished candidate, could
    not be read. The check is repeated under the journal's lock, so a live writer's line is
    never cut.
    """
    if not _ends_mid_line(path):
        return
    lock.acquire()
    try:
        if not _ends_mid_line(path):
            return
        with open(path, "r+b") as handle:
            content = handle.read()
            keep = content.rfind(b"\n") + 1
            handle.truncate(keep)
    finally:
        lock.release()
    warnings.warn(f"The journal {path!r} ended in a line cut short (a process killed while "
                  f"writing it); its {len(content) - keep} bytes were removed.", UserWarning,
                  stacklevel=3)


def _ends_mid_line(path: str) -> bool:
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            if handle.tell() == 0:
                return False
            handle.seek(-1, os.SEEK_END)
            return handle.read(1) != b"\n"
    except FileNotFoundError:
        return False


class OwnedJournalLock(JournalFileOpenLock):
    """Optuna's ``O_EXCL`` journal lock file, holding its owner's ``host:pid``.

    A lock left by a process of this machine that has ended (killed while writing) is broken
    at once: with Optuna's lock, every fit after it waited the 30 s grace period (audit).
    A lock of another machine's process, an unsigned one (just created, or made by Optuna's
    own locks, which exclude this one on the same path) keeps Optuna's rule. As with Optuna's
    forced release, a second process breaking the same dead lock in the same microseconds
    could remove the first one's new lock; a lock only exists while a process writes a line.
    """

    def acquire(self) -> bool:
        self._break_if_owner_ended()
        super().acquire()
        with open(self._lock_file, "w") as handle:  # ours now: sign it
            handle.write(process_tag())
        return True

    def _break_if_owner_ended(self) -> None:
        try:
            # Not through a symlink: Optuna's symlink lock points at the journal itself.
            descriptor = os.open(self._lock_file, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:
            return  # no lock, or one of Optuna's symlink locks
        with os.fdopen(descriptor) as handle:
            owner = handle.read(256)
        if is_dead_local_process(owner):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._lock_file)


def _rdb_storage(url: str, attempts: int = 5) -> RDBStorage:
    """Open an RDB storage; retry when several workers create its schema at once.

    Two processes opening a fresh database race on ``CREATE TABLE``/``CREATE TYPE``
    and the loser gets a unique-violation error; the schema exists after that, so
    a retry succeeds.
    """
    for attempt in range(attempts):
        try:
            # Heartbeats let Optuna fail trials of workers that died on other machines.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return RDBStorage(url, heartbeat_interval=30, grace_period=120)
        except Exception:
            if attempt == attempts - 1:
                raise
            time.sleep(0.5 * (attempt + 1) + random.random())
    raise AssertionError("unreachable")


def absolute_storage(spec: str) -> str:
    """``spec`` with a file's path made absolute (``~`` expanded): ``journal://`` URLs and plain
    journal paths become ``journal:///abs/path``, ``sqlite:///rel.db`` ``sqlite:////abs/rel.db``;
    other URLs are returned unchanged. A run folder's config records it so that ``resume``
    opens the same study from any directory (a relative one was refused from another)."""
    path = _journal_path(spec)
    if path is not None:
        return _JOURNAL_PREFIX + str(Path(path).expanduser().resolve())
    if spec.startswith(_SQLITE_PREFIX) and spec != "sqlite:///:memory:":
        return _SQLITE_PREFIX + str(Path(spec[len(_SQLITE_PREFIX):]).expanduser().resolve())
    return spec


def storage_kind(spec: Any) -> str | None:
    """``"journal"``, ``"rdb"`` or None (not shareable across processes) for ``spec``."""
    if not isinstance(spec, (str, os.PathLike)):
        return None
    spec = os.fspath(spec)
    if _journal_path(spec) is not None:
        return "journal"
    return "rdb" if "://" in spec else None
