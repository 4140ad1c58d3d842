"""The evaluation repository on disk (outside git) and the committed score CSV derived from it.

Layout under the root (default ``/work/portfolio_repo``)::

    <table>/_table.npz     y_train, y_test (split encoding), fold (fold index of each training
                           row, fit's folds), task, n_classes, data_hash; written once
    <table>/<family>.npz   ids (str, n_ok), oof (n_ok, n_train[, n_classes]) float32,
                           test (n_ok, n_test[, n_classes]) float32, records (JSON: one dict
                           per evaluated configuration, failed and timed out ones included;
                           ``row`` is its index in ids/oof/test, -1 without arrays)

Every write goes to a temporary file in the same folder, is fsynced and renamed over the old
file, so a killed run leaves either the old or the new file. The npz files are the source of
truth: the score CSV is rebuilt from them at every start, then appended to after each
evaluation.
"""

from __future__ import annotations

import csv
import fcntl
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

CSV_COLUMNS = ["table", "task", "config_id", "family", "rank", "status", "metric", "oof_loss",
               "test_loss", "fit_seconds", "predict_seconds", "cpu_seconds", "wall_seconds",
               "n_train", "n_test", "load1", "finished_utc", "code", "warnings", "error"]


def _atomic_savez(path: Path, **arrays: Any) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


class Repository:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    # -- locking ------------------------------------------------------------------------------
    def lock(self) -> Any:
        """An exclusive lock on the repository (one writer); raises if another run holds it."""
        self.root.mkdir(parents=True, exist_ok=True)
        fh = open(self.root / ".lock", "w")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.close()
            raise RuntimeError(f"another run is writing to {self.root} (lock held)") from None
        fh.write(str(os.getpid()))
        fh.flush()
        return fh

    # -- tables -------------------------------------------------------------------------------
    def tables(self) -> list[str]:
        """Names of the tables stored so far (those with a ``_table.npz``), sorted."""
        return sorted(p.parent.name for p in self.root.glob("*/_table.npz"))

    def table_path(self, table: str) -> Path:
        return self.root / table / "_table.npz"

    def ensure_table(self, setup: Any) -> None:
        """Write the table's labels and folds once; refuse a table whose data changed since."""
        meta = {"y_train": setup.y_train, "y_test": setup.y_test, "fold": setup.fold,
                "task": np.array(setup.task), "n_classes": np.array(setup.n_classes or 0),
                "data_hash": np.array(setup.data_hash)}
        if not self.store_table(setup.name, meta):
            raise RuntimeError(f"{setup.name}: the split or folds differ from those stored in "
                               f"{self.table_path(setup.name)}; use another --out folder")

    def store_table(self, table: str, meta: dict[str, np.ndarray]) -> bool:
        """Write ``_table.npz`` unless present; False if the stored split (hash, folds) differs."""
        path = self.table_path(table)
        if path.exists():
            with np.load(path) as stored:
                return (str(stored["data_hash"]) == str(meta["data_hash"])
                        and np.array_equal(stored["fold"], meta["fold"]))
        path.parent.mkdir(parents=True, exist_ok=True)
        _atomic_savez(path, **meta)
        return True

    # -- evaluations --------------------------------------------------------------------------
    def family_path(self, table: str, family: str) -> Path:
        return self.root / table / f"{family}.npz"

    def records(self, table: str, family: str) -> list[dict[str, Any]]:
        path = self.family_path(table, family)
        if not path.exists():
            return []
        with np.load(path) as stored:
            return json.loads(str(stored["records"]))

    def done_ids(self) -> dict[tuple[str, str], set[str]]:
        """``{(table, family): {config ids evaluated}}`` over the whole repository."""
        done: dict[tuple[str, str], set[str]] = {}
        if not self.root.exists():
            return done
        for path in sorted(self.root.glob("*/*.npz")):
            if path.name.startswith("_"):
                continue
            table, family = path.parent.name, path.stem
            done[(table, family)] = {r["config_id"] for r in self.records(table, family)}
        return done

    def append(self, table: str, family: str, record: dict[str, Any],
               oof: np.ndarray | None, test: np.ndarray | None) -> None:
        """Add one evaluation to ``<table>/<family>.npz`` (rewritten atomically)."""
        self.append_many(table, family, [(record, oof, test)])

    def append_many(self, table: str, family: str,
                    evaluations: list[tuple[dict[str, Any], np.ndarray | None, np.ndarray | None]]) -> None:
        """Add ``(record, oof, test)`` evaluations (no arrays: failed) in one atomic rewrite."""
        path = self.family_path(table, family)
        path.parent.mkdir(parents=True, exist_ok=True)
        ids: list[str] = []
        oofs: list[np.ndarray] = []
        tests: list[np.ndarray] = []
        records: list[dict[str, Any]] = []
        if path.exists():
            with np.load(path) as stored:
                ids, oofs, tests = list(stored["ids"]), list(stored["oof"]), list(stored["test"])
                records = json.loads(str(stored["records"]))
        known = {r["config_id"] for r in records}
        for record, oof, test in evaluations:
            if record["config_id"] in known:
                raise RuntimeError(f"{table}/{family}: {record['config_id']} is already stored")
            known.add(record["config_id"])
            record = dict(record, row=-1)
            if oof is not None:
                record["row"] = len(ids)
                ids.append(record["config_id"])
                oofs.append(oof)
                tests.append(test)
            records.append(record)
        if ids:
            arrays = {"ids": np.array(ids), "oof": np.stack(oofs), "test": np.stack(tests)}
        else:
            arrays = {"ids": np.array([], dtype=str), "oof": np.zeros((0,), np.float32),
                      "test": np.zeros((0,), np.float32)}
        _atomic_savez(path, **arrays, records=np.array(json.dumps(records)))

    def load(self, table: str, family: str) -> dict[str, Any]:
        """Everything stored for ``(table, family)``: ids, oof, test, records."""
        with np.load(self.family_path(table, family)) as stored:
            return {"ids": stored["ids"], "oof": stored["oof"], "test": stored["test"],
                    "records": json.loads(str(stored["records"]))}

    def load_table(self, table: str, families: list[str] | None = None) -> dict[str, Any]:
        """All ok configurations of one table stacked: ids, families, oof, test, y_train, y_test, fold.

        ``oof`` is ``(n_configs, n_train[, n_classes])``, the layout ``GreedySelector.fit`` takes.
        """
        with np.load(self.table_path(table)) as meta:
            out: dict[str, Any] = {k: meta[k] for k in ("y_train", "y_test", "fold")}
            out["task"], n_classes = str(meta["task"]), int(meta["n_classes"])
        out["n_classes"] = n_classes or None
        ids, fams, oofs, tests = [], [], [], []
        for path in sorted(self.root.joinpath(table).glob("*.npz")):
            if path.name.startswith("_") or (families is not None and path.stem not in families):
                continue
            data = self.load(table, path.stem)
            if len(data["ids"]):
                ids += list(data["ids"])
                fams += [path.stem] * len(data["ids"])
                oofs.append(data["oof"])
                tests.append(data["test"])
        out["ids"], out["families"] = np.array(ids), np.array(fams)
        out["oof"] = np.concatenate(oofs) if oofs else None
        out["test"] = np.concatenate(tests) if tests else None
        return out

    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.root.glob("*/*.npz")) if self.root.exists() else 0


def csv_row(table: str, task: str, n_train: int, n_test: int, record: dict[str, Any]) -> dict[str, Any]:
    metric = "log_loss" if task == "classification" else "rmse"
    row = {"table": table, "task": task, "metric": metric, "n_train": n_train, "n_test": n_test}
    for key in CSV_COLUMNS:
        if key in record:
            value = record[key]
            row[key] = f"{value:.6g}" if isinstance(value, float) else value
    return row


def rebuild_csv(repo: Repository, path: Path) -> int:
    """Rewrite the score CSV from the repository (atomically); returns the number of rows."""
    rows = []
    for table_file in sorted(repo.root.glob("*/_table.npz")) if repo.root.exists() else []:
        table = table_file.parent.name
        with np.load(table_file) as meta:
            task, n_train, n_test = str(meta["task"]), len(meta["y_train"]), len(meta["y_test"])
        for fam_file in sorted(table_file.parent.glob("*.npz")):
            if fam_file.name.startswith("_"):
                continue
            for record in repo.records(table, fam_file.stem):
                rows.append(csv_row(table, task, n_train, n_test, record))
    rows.sort(key=lambda r: (r.get("finished_utc", ""), r["table"], r["config_id"]))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    with os.fdopen(fd, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=CSV_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
    return len(rows)


def append_csv(path: Path, row: dict[str, Any]) -> None:
    with open(path, "a", newline="") as fh:
        csv.DictWriter(fh, fieldnames=CSV_COLUMNS, extrasaction="ignore").writerow(row)
        fh.flush()
