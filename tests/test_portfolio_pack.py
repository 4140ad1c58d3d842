"""Packs: committed, compact copies of the portfolio evaluation repository (benchmarks/portfolio)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

pytest.importorskip("benchmarks.portfolio._pack")

from sklearn.metrics import log_loss  # noqa: E402

from benchmarks.portfolio._pack import pack_paths, packed_ids, unpack, write_pack  # noqa: E402
from benchmarks.portfolio._store import Repository  # noqa: E402


def _setup(name: str, task: str, n_train: int = 60, n_test: int = 20,
           data_hash: str = "h") -> SimpleNamespace:
    rng = np.random.default_rng(len(name))
    n_classes = 3 if task == "classification" else None
    y = (lambda n: rng.integers(0, 3, n)) if n_classes else (lambda n: rng.normal(1e4, 3e3, n))
    return SimpleNamespace(name=name, task=task, n_classes=n_classes, data_hash=data_hash,
                           y_train=y(n_train), y_test=y(n_test), fold=np.arange(n_train) % 5)


def _probabilities(rng: np.random.Generator, n: int) -> np.ndarray:
    logits = 6 * rng.normal(size=(n, 3))  # confident: probabilities down to 1e-8
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    return (p / p.sum(axis=1, keepdims=True)).astype(np.float32)


def _fill(repo: Repository, n_configs: int, start: int = 0) -> None:
    rng = np.random.default_rng(start)
    for setup in (_setup("cls", "classification"), _setup("reg", "regression")):
        repo.ensure_table(setup)
        for i in range(start, start + n_configs):
            record = {"config_id": f"xgboost-r{i:04d}", "status": "ok", "oof_loss": 0.5 + i,
                      "cpu_seconds": 0.25}
            if setup.task == "classification":
                oof, test = _probabilities(rng, 60), _probabilities(rng, 20)
            else:
                oof = (setup.y_train + rng.normal(0, 500, 60)).astype(np.float32)
                test = (setup.y_test + rng.normal(0, 500, 20)).astype(np.float32)
            repo.append(setup.name, "xgboost", record, oof, test)
        repo.append(setup.name, "knn", {"config_id": f"knn-r{start:04d}", "status": "timeout"}, None, None)


def test_a_pack_restores_every_record_and_array_on_a_new_machine(tmp_path) -> None:
    source, packs = Repository(tmp_path / "old"), tmp_path / "packs"
    _fill(source, 3)
    path, count = write_pack(source, packs)
    assert path.name == "pack-001.npz" and count == 8  # 2 tables x (3 ok + 1 timeout)
    with np.load(path) as pack:  # probabilities in half the space, regression kept exact
        assert pack["cls/xgboost/oof"].dtype == np.float16 and pack["reg/xgboost/oof"].dtype == np.float32
    fresh = Repository(tmp_path / "new")
    assert unpack(fresh, packs) == 8
    for table in ("cls", "reg"):
        for family in ("xgboost", "knn"):
            old, new = source.load(table, family), fresh.load(table, family)
            assert new["records"] == old["records"]
            np.testing.assert_array_equal(new["ids"], old["ids"])
        old, new = source.load(table, "xgboost"), fresh.load(table, "xgboost")
        if table == "reg":  # regression predictions are kept exactly (float32)
            np.testing.assert_array_equal(new["oof"], old["oof"])
        else:
            np.testing.assert_allclose(new["oof"], old["oof"], rtol=1e-3, atol=1e-7)
            y = source.load_table("cls")["y_train"]
            for o, n in zip(old["oof"], new["oof"], strict=True):
                assert log_loss(y, n, labels=[0, 1, 2]) == pytest.approx(log_loss(y, o, labels=[0, 1, 2]),
                                                                         rel=1e-3)
    assert unpack(fresh, packs) == 0  # nothing twice


def test_packs_are_immutable_and_hold_each_evaluation_once(tmp_path) -> None:
    repo, packs = Repository(tmp_path / "repo"), tmp_path / "packs"
    _fill(repo, 2)
    first, _ = write_pack(repo, packs)
    before = first.read_bytes()
    assert write_pack(repo, packs) == (None, 0)
    _fill(repo, 1, start=5)
    second, count = write_pack(repo, packs)
    assert second.name == "pack-002.npz" and count == 4
    assert first.read_bytes() == before
    assert [p.name for p in pack_paths(packs)] == ["pack-001.npz", "pack-002.npz"]
    assert len(packed_ids(packs)) == 10  # 2 tables x (2 + 1 ok, 1 + 1 timed out)
    fresh = Repository(tmp_path / "fresh")
    assert unpack(fresh, packs) == 10
    assert fresh.done_ids()[("cls", "xgboost")] == {"xgboost-r0000", "xgboost-r0001", "xgboost-r0005"}


def test_a_pack_of_another_split_is_refused(tmp_path) -> None:
    repo, packs = Repository(tmp_path / "repo"), tmp_path / "packs"
    _fill(repo, 1)
    write_pack(repo, packs)
    other = Repository(tmp_path / "other")
    other.ensure_table(_setup("cls", "classification", data_hash="another"))
    with pytest.raises(RuntimeError, match="cls: the packed split differs"):
        unpack(other, packs)
