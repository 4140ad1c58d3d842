"""Packs: committed, compact copies of the portfolio evaluation repository (benchmarks/portfolio)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

pytest.importorskip("benchmarks.portfolio._pack")

from sklearn.metrics import log_loss  # noqa: E402

from benchmarks.portfolio._pack import pack_paths, packed_ids, unpack, write_pack  # noqa: E402
from benchmarks.portfolio._store import Repository  # noqa: E402

TABLES = {"cls": ("classification", 3), "bin": ("classification", 2), "reg": ("regression", None)}


def _setup(name: str, n_train: int = 60, n_test: int = 20, data_hash: str = "h") -> SimpleNamespace:
    rng = np.random.default_rng(len(name))
    task, n_classes = TABLES[name]
    y = (lambda n: rng.integers(0, n_classes, n)) if n_classes else (lambda n: rng.normal(1e4, 3e3, n))
    return SimpleNamespace(name=name, task=task, n_classes=n_classes, data_hash=data_hash,
                           y_train=y(n_train), y_test=y(n_test), fold=np.arange(n_train) % 5)


def _probabilities(rng: np.random.Generator, n: int, n_classes: int) -> np.ndarray:
    logits = 6 * rng.normal(size=(n, n_classes))  # confident: probabilities down to 1e-8
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p = (p / p.sum(axis=1, keepdims=True)).astype(np.float32)
    p[:3] = [1, 0, 0][:n_classes] if n_classes == 3 else [[0, 1], [1, 0], [0.5, 0.5]]  # exact edges
    return p


def _fill(repo: Repository, n_configs: int, start: int = 0) -> None:
    rng = np.random.default_rng(start)
    for setup in map(_setup, TABLES):
        repo.ensure_table(setup)
        for i in range(start, start + n_configs):
            record = {"config_id": f"xgboost-r{i:04d}", "status": "ok", "oof_loss": 0.5 + i,
                      "cpu_seconds": 0.25}
            if setup.task == "classification":
                oof, test = (_probabilities(rng, n, setup.n_classes) for n in (60, 20))
            else:
                oof = (setup.y_train + rng.normal(0, 500, 60)).astype(np.float32)
                test = (setup.y_test + rng.normal(0, 500, 20)).astype(np.float32)
            repo.append(setup.name, "xgboost", record, oof, test)
        repo.append(setup.name, "knn", {"config_id": f"knn-r{start:04d}", "status": "timeout"}, None, None)


def test_a_pack_restores_every_record_and_array_on_a_new_machine(tmp_path) -> None:
    source, packs = Repository(tmp_path / "old"), tmp_path / "packs"
    _fill(source, 3)
    (path,), count = write_pack(source, packs)
    assert path.name == "pack-001.npz" and count == 12  # 3 tables x (3 ok + 1 timeout)
    with np.load(path) as pack:  # probabilities in 2 bytes (one per row for two classes)
        assert pack["cls/xgboost/oof"].shape == (3, 60, 3) and pack["cls/xgboost/oof"].dtype == np.float16
        assert pack["bin/xgboost/oof"].shape == (3, 60) and pack["bin/xgboost/oof"].dtype == np.float16
        assert pack["reg/xgboost/oof"].dtype == np.float32
    fresh = Repository(tmp_path / "new")
    assert unpack(fresh, packs) == 12
    for table, (task, n_classes) in TABLES.items():
        for family in ("xgboost", "knn"):
            old, new = source.load(table, family), fresh.load(table, family)
            assert new["records"] == old["records"]
            np.testing.assert_array_equal(new["ids"], old["ids"])
        old, new = source.load(table, "xgboost"), fresh.load(table, "xgboost")
        assert new["oof"].dtype == np.float32 and new["oof"].shape == old["oof"].shape
        if task == "regression":  # kept exactly
            np.testing.assert_array_equal(new["oof"], old["oof"])
            continue
        # every probability, both tails included, within float16's relative precision
        np.testing.assert_allclose(new["oof"], old["oof"], rtol=1e-3, atol=1e-7)
        y, labels = source.load_table(table)["y_train"], list(range(n_classes))
        for o, n in zip(old["oof"], new["oof"], strict=True):
            assert log_loss(y, n, labels=labels) == pytest.approx(log_loss(y, o, labels=labels), rel=1e-3)
    assert unpack(fresh, packs) == 0  # nothing twice


def test_packs_are_immutable_and_hold_each_evaluation_once(tmp_path) -> None:
    repo, packs = Repository(tmp_path / "repo"), tmp_path / "packs"
    _fill(repo, 2)
    (first,), _ = write_pack(repo, packs)
    before = first.read_bytes()
    assert write_pack(repo, packs) == ([], 0)
    _fill(repo, 1, start=5)
    (second,), count = write_pack(repo, packs)
    assert second.name == "pack-002.npz" and count == 6
    assert first.read_bytes() == before
    assert [p.name for p in pack_paths(packs)] == ["pack-001.npz", "pack-002.npz"]
    assert len(packed_ids(packs)) == 15  # 3 tables x (2 + 1 ok, 1 + 1 timed out)
    fresh = Repository(tmp_path / "fresh")
    assert unpack(fresh, packs) == 15
    assert fresh.done_ids()[("cls", "xgboost")] == {"xgboost-r0000", "xgboost-r0001", "xgboost-r0005"}


def test_a_pack_of_another_split_is_refused(tmp_path) -> None:
    repo, packs = Repository(tmp_path / "repo"), tmp_path / "packs"
    _fill(repo, 1)
    write_pack(repo, packs)
    other = Repository(tmp_path / "other")
    other.ensure_table(_setup("cls", data_hash="another"))
    with pytest.raises(RuntimeError, match="cls: the packed split differs"):
        unpack(other, packs)


def test_a_large_batch_is_split_into_several_packs_without_splitting_a_table(tmp_path) -> None:
    repo, packs = Repository(tmp_path / "repo"), tmp_path / "packs"
    _fill(repo, 3)
    paths, count = write_pack(repo, packs, max_bytes=1)  # every table starts a new file
    assert [p.name for p in paths] == ["pack-001.npz", "pack-002.npz", "pack-003.npz"] and count == 12
    for path in paths:
        with np.load(path) as pack:
            assert len({key.split("/")[0] for key in pack.files if key != "format"}) == 1
    fresh = Repository(tmp_path / "fresh")
    assert unpack(fresh, packs) == 12
    assert fresh.done_ids() == repo.done_ids()
