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

Precision (``_compact``): two-class probabilities as one float16 per row, the smaller of the
two (both tails keep float16's relative precision of 5e-4); more classes as float16 columns
(the small probabilities that dominate log loss keep their relative precision; one within
5e-4 of 1 rounds to 1, which moves that row's log loss by less than 5e-4); regression
predictions stay float32, as in the repository. Measured on the first packs (5,042
evaluations: ranks 0-11 of the seven ``models="auto"`` families on the 60 tables, plus ranks
12-14 of extra_trees, hist_gradient_boosting and ridge on some): 58.5 MB in three files, 11.6
KB per evaluation, 0.35 of the repository's float32 size (float16 values barely compress);
unpacking takes 40 s; the test losses recomputed from 742 unpacked evaluations differ from the
recorded ones by at most 1.7e-4 (relative). The losses in the records are the ones
measured before rounding.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.portfolio._store import Repository

PACKS_DIR = Path(__file__).with_name("packs")
PACK_FORMAT = 1
_TABLE_KEYS = ("y_train", "y_test", "fold", "task", "n_classes", "data_hash")
#: Arrays per pack file before compression (float16 barely compresses: files of about 25 MB).
MAX_PACK_BYTES = 32_000_000


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


def write_pack(repo: Repository, packs_dir: Path = PACKS_DIR,
               max_bytes: int = MAX_PACK_BYTES) -> tuple[list[Path], int]:
    """Pack the evaluations no pack holds yet; ``(new pack files, evaluations packed)``.

    A new file is started once the arrays collected reach ``max_bytes`` (before compression),
    so no pack grows past what git hosts handle comfortably; a table is never split.
    """
    already = packed_ids(packs_dir)
    written: list[Path] = []
    arrays: dict[str, Any] = {}
    count = 0
    for table_file in sorted(repo.root.glob("*/_table.npz")):
        table = table_file.parent.name
        new_here = _pack_table(repo, table, already, arrays)
        if new_here:
            with np.load(table_file) as meta:
                arrays.update({f"{table}/_table/{k}": meta[k] for k in _TABLE_KEYS})
            count += new_here
        if sum(a.nbytes for a in arrays.values()) >= max_bytes:
            written.append(_save_pack(arrays, Path(packs_dir)))
            arrays = {}
    if arrays:
        written.append(_save_pack(arrays, Path(packs_dir)))
    return written, count


def _save_pack(arrays: dict[str, Any], packs_dir: Path) -> Path:
    packs_dir.mkdir(parents=True, exist_ok=True)
    number = 1 + max((int(p.stem.split("-")[1]) for p in pack_paths(packs_dir)), default=0)
    path = packs_dir / f"pack-{number:03d}.npz"
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=packs_dir)
    with os.fdopen(fd, "wb") as fh:
        np.savez_compressed(fh, format=np.array(PACK_FORMAT), **arrays)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
    return path


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
        for part in ("oof", "test"):
            values = stored[part][rows] if rows else np.zeros(0, np.float32)
            arrays[f"{prefix}/{part}"], arrays[f"{prefix}/{part}_encoding"] = _compact(values)
        count += len(new)
    return count


def _compact(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(stored array, encoding name)`` of an ``oof``/``test`` stack.

    * ``"binary_tail"``, two-class probabilities ``(n, rows, 2)``: one float16 per row, the
      smaller of the two probabilities, negative when it is the first class's. Both tails keep
      float16's relative precision (a plain float16 of ``p1`` would round ``p1 = 1 - 1e-5`` to 1
      and lose the first class's probability), in half the space of both columns.
    * ``"float16"``, more classes: every column as float16 (the small ones keep their
      relative precision, the one near 1 loses less than 5e-4 of log loss).
    * ``"float32"``, regression predictions (and empty stacks): unchanged.
    """
    if values.ndim == 3 and values.shape[2] == 2:
        first_smaller = values[..., 1] >= 0.5
        tail = np.where(first_smaller, -values[..., 0], values[..., 1])
        return tail.astype(np.float16), np.array("binary_tail")
    if values.ndim == 3:
        return values.astype(np.float16), np.array("float16")
    return values.astype(np.float32), np.array("float32")


def _expand(stored: np.ndarray, encoding: str) -> np.ndarray:
    """The float32 stack :func:`_compact` encoded."""
    if encoding == "binary_tail":
        tail = stored.astype(np.float32)
        small, first = np.abs(tail), np.signbit(tail)  # signbit: -0.0 is a first-class zero
        p1 = np.where(first, 1 - small, small)
        return np.stack([np.where(first, small, 1 - small), p1], axis=-1)
    if encoding in ("float16", "float32"):
        return stored.astype(np.float32)
    raise RuntimeError(f"unknown pack encoding {encoding!r}")


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
                if not repo.store_table(table, {k: pack[f"{table}/_table/{k}"] for k in _TABLE_KEYS}):
                    raise RuntimeError(f"{table}: the packed split differs from the one stored in "
                                       f"{repo.table_path(table)}")
            for key in sorted(k for k in files if k.endswith("/records")):
                table, family, _ = key.split("/")
                known = done.get((table, family), set())
                prefix = f"{table}/{family}"
                oof, test = (_expand(pack[f"{prefix}/{part}"], str(pack[f"{prefix}/{part}_encoding"]))
                             for part in ("oof", "test"))
                new = []
                for record in json.loads(str(pack[key])):
                    if record["config_id"] not in known:
                        row = record.pop("row")
                        new.append((record, oof[row] if row >= 0 else None, test[row] if row >= 0 else None))
                if new:
                    repo.append_many(table, family, new)
                    added += len(new)
    return added
