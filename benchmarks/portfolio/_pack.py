"""Packs: compact, committed copies of the evaluation repository.

Why they exist: the repository (``_store.Repository``, float32 arrays, about 33 MB per 1,000
evaluations) lives outside git, and the machines this project runs on are replaced between
sessions; only committed files survive. Rebuilding ranks 0-5 of the mined families alone
costs about an hour of both cores, every session. A pack holds the evaluations a session
added, in about a quarter of the space, so the next machine starts where the last one stopped
(``run`` unpacks the committed packs before it evaluates anything).

A pack (``packs/pack-NNN.npz``, compressed) is written once and never rewritten, so git
stores every evaluation once. It holds, per table, the split labels and folds (checked
against what is stored when unpacked) and, per (table, family), the records (JSON, failed and
timed-out configurations included) and the arrays of the configurations with predictions.

Precision: classification probabilities are stored as float16 (every class column, so the
small probabilities that dominate log loss keep a relative precision of 5e-4; a probability
within 5e-4 of 1 rounds to 1, which moves that row's log loss by less than 5e-4); regression
predictions stay float32, as in the repository. The losses in the records are the ones
measured before rounding; losses recomputed from unpacked arrays differ in the fourth digit
at most (checked in tests/benchmarks: ``test_portfolio_pack``).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.portfolio._store import Repository, _atomic_savez

PACKS_DIR = Path(__file__).with_name("packs")
PACK_FORMAT = 1
_TABLE_KEYS = ("y_train", "y_test", "fold", "task", "n_classes", "data_hash")


def pack_paths(packs_dir: Path = PACKS_DIR) -> list[Path]:
    return sorted(Path(packs_dir).glob("pack-*.npz"))


def packed_ids(packs_dir: Path = PACKS_DIR) -> set[tuple[str, str]]:
    """``{(table, config id)}`` of every evaluation already in a pack."""
    done: set[tuple[str, str]] = set()
    for path in pack_paths(packs_dir):
        with np.load(path) as pack:
            for key in pack.files:
                if key.endswith("/records"):
                    table = key.split("/")[0]
                    done |= {(table, r["config_id"]) for r in json.loads(str(pack[key]))}
    return done


def write_pack(repo: Repository, packs_dir: Path = PACKS_DIR) -> tuple[Path | None, int]:
    """Pack the repository's evaluations that no pack holds yet; ``(path or None, count)``."""
    already = packed_ids(packs_dir)
    arrays: dict[str, Any] = {"format": np.array(PACK_FORMAT)}
    count = 0
    for table_file in sorted(repo.root.glob("*/_table.npz")):
        table = table_file.parent.name
        new_here = _pack_table(repo, table, already, arrays)
        if new_here:
            with np.load(table_file) as meta:
                arrays.update({f"{table}/_table/{k}": meta[k] for k in _TABLE_KEYS})
            count += new_here
    if not count:
        return None, 0
    packs_dir = Path(packs_dir)
    packs_dir.mkdir(parents=True, exist_ok=True)
    number = 1 + max((int(p.stem.split("-")[1]) for p in pack_paths(packs_dir)), default=0)
    path = packs_dir / f"pack-{number:03d}.npz"
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=packs_dir)
    with os.fdopen(fd, "wb") as fh:
        np.savez_compressed(fh, **arrays)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
    return path, count


def _pack_table(repo: Repository, table: str, already: set[tuple[str, str]],
                arrays: dict[str, Any]) -> int:
    count = 0
    for fam_file in sorted(repo.root.joinpath(table).glob("*.npz")):
        if fam_file.name.startswith("_"):
            continue
        family = fam_file.stem
        stored = repo.load(table, family)
        new = [r for r in stored["records"] if (table, r["config_id"]) not in already]
        if not new:
            continue
        rows = [r["row"] for r in new if r["row"] >= 0]
        records = []
        for r in new:
            records.append(dict(r, row=rows.index(r["row"]) if r["row"] >= 0 else -1))
        prefix = f"{table}/{family}"
        arrays[f"{prefix}/records"] = np.array(json.dumps(records))
        arrays[f"{prefix}/oof"] = _compact(stored["oof"][rows]) if rows else np.zeros(0, np.float32)
        arrays[f"{prefix}/test"] = _compact(stored["test"][rows]) if rows else np.zeros(0, np.float32)
        count += len(new)
    return count


def _compact(values: np.ndarray) -> np.ndarray:
    """Class probabilities (3-D) as float16; regression predictions (2-D) unchanged (float32)."""
    return values.astype(np.float16) if values.ndim == 3 else values


def unpack(repo: Repository, packs_dir: Path = PACKS_DIR) -> int:
    """Add every packed evaluation the repository lacks; returns how many were added."""
    done = repo.done_ids()
    added = 0
    for path in pack_paths(packs_dir):
        with np.load(path) as pack:
            files = set(pack.files)
            if int(pack["format"]) != PACK_FORMAT:
                raise RuntimeError(f"{path}: pack format {int(pack['format'])}, expected {PACK_FORMAT}")
            for table in sorted({k.split("/")[0] for k in files if "/_table/" in k}):
                _unpack_table_meta(repo, table, {k: pack[f"{table}/_table/{k}"] for k in _TABLE_KEYS})
            for key in sorted(k for k in files if k.endswith("/records")):
                table, family, _ = key.split("/")
                known = done.get((table, family), set())
                oof, test = pack[f"{table}/{family}/oof"], pack[f"{table}/{family}/test"]
                for record in json.loads(str(pack[key])):
                    if record["config_id"] in known:
                        continue
                    row = record.pop("row")
                    has = row >= 0
                    repo.append(table, family, record, oof[row].astype(np.float32) if has else None,
                                test[row].astype(np.float32) if has else None)
                    added += 1
    return added


def _unpack_table_meta(repo: Repository, table: str, meta: dict[str, np.ndarray]) -> None:
    path = repo.table_path(table)
    if path.exists():
        with np.load(path) as stored:
            same = (str(stored["data_hash"]) == str(meta["data_hash"])
                    and np.array_equal(stored["fold"], meta["fold"]))
        if not same:
            raise RuntimeError(f"{table}: the packed split differs from the one stored in {path}")
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    _atomic_savez(path, **meta)
