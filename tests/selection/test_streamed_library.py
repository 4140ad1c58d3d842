"""Selection from a memory-mapped library streams it: same result, bounded memory, no files left."""

from __future__ import annotations

import os
import tracemalloc

import numpy as np
import pytest

from ensemble_hpo._checks import CHUNK_ELEMENTS, FileRows, file_rows
from ensemble_hpo.selection import BestSingleSelector, GreedySelector


def _library(n_models: int, n_rows: int, n_classes: int = 2, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, n_classes, n_rows)
    signal = np.eye(n_classes)[y] * 2.0
    logits = signal * rng.uniform(0.2, 1.5, (n_models, 1, 1)) + rng.normal(
        size=(n_models, n_rows, n_classes))
    p = np.exp(logits)
    return (p / p.sum(axis=2, keepdims=True)).astype(np.float32), y


@pytest.mark.parametrize("n_classes", [2, 3])
def test_memmap_selection_equals_in_memory_and_leaves_no_file(tmp_path, n_classes) -> None:
    preds, y = _library(40, 3000, n_classes)
    path = tmp_path / "oof.npy"
    np.save(path, preds)
    mapped = np.load(path, mmap_mode="r")
    assert isinstance(file_rows(mapped), FileRows)
    weight = np.linspace(0.5, 2.0, len(y))
    for kwargs in ({}, {"sample_weight": weight}):
        streamed = GreedySelector(max_iter=15).fit(mapped, y, **kwargs)
        ref = GreedySelector(max_iter=15).fit(preds, y, **kwargs)
        np.testing.assert_array_equal(streamed.order_, ref.order_)
        np.testing.assert_allclose(streamed.trajectory_, ref.trajectory_, rtol=1e-13)
        assert streamed.score_ == pytest.approx(ref.score_, rel=1e-13)
    assert sorted(os.listdir(tmp_path)) == ["oof.npy"]  # the reduced copy was unnamed
    np.testing.assert_array_equal(np.load(path), preds)  # and the source is untouched


def test_regression_memmap_is_read_in_place(tmp_path) -> None:
    rng = np.random.default_rng(0)
    y = rng.normal(size=2000)
    preds = (y + rng.normal(scale=rng.uniform(0.3, 2, (30, 1)), size=(30, 2000)))
    np.save(tmp_path / "oof.npy", preds)
    mapped = np.load(tmp_path / "oof.npy", mmap_mode="r")
    for selector in (GreedySelector(max_iter=10), BestSingleSelector()):
        np.testing.assert_allclose(selector.fit(mapped, y).weights_,
                                   type(selector)(**selector.get_params()).fit(preds, y).weights_)
    np.testing.assert_array_equal(np.load(tmp_path / "oof.npy"), preds)


@pytest.mark.parametrize("n_models, n_rows", [(30, 10_000), (200, 20_000), (8, 600_000)])
def test_selection_from_a_memmap_holds_chunks_not_the_array(tmp_path, n_models, n_rows) -> None:
    """Issue 19's target: from a memory map, selection's own peak is at most 1.5 chunks of
    candidates plus the running ensemble (in memory it copies the true-class column)."""
    preds, y = _library(n_models, n_rows)
    np.save(tmp_path / "oof.npy", preds)
    mapped = np.load(tmp_path / "oof.npy", mmap_mode="r")
    y = y.astype(np.intp)  # as selection encodes it, so that no copy of y is counted
    peaks = {}
    for name, library in (("memory", preds), ("memmap", mapped)):
        tracemalloc.start()
        GreedySelector(max_iter=10).fit(library, y)
        peaks[name] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert peaks["memory"] > preds.nbytes / 2
    per_chunk = min(n_models, max(1, CHUNK_ELEMENTS // n_rows))  # candidates read at once
    chunk = per_chunk * n_rows * 8  # as float64
    running = n_rows * 8
    assert peaks["memmap"] <= 1.5 * chunk + running


def test_file_rows_indexes_like_an_array(tmp_path) -> None:
    data = np.arange(5 * 4 * 3, dtype=np.float64).reshape(5, 4, 3)
    np.save(tmp_path / "a.npy", data)
    mapped = np.load(tmp_path / "a.npy", mmap_mode="r")
    rows = file_rows(mapped)
    assert rows is not None and rows.shape == data.shape and len(rows) == 5
    for key in (0, -1, 3, slice(1, 4), slice(None), slice(4, 2), [4, 0, 0], np.array([2, 1]),
                np.array([True, False, True, False, True])):
        np.testing.assert_array_equal(rows[key], data[key])
    with pytest.raises(IndexError):
        rows[::2]
    assert file_rows(mapped[1:]) is None  # a view of part of the map: read as an array
    assert file_rows(data) is None


def test_fit_does_not_modify_the_callers_predictions() -> None:
    rng = np.random.default_rng(0)
    y = rng.normal(size=300)
    preds = y + rng.normal(size=(12, 300))
    before = preds.copy()
    GreedySelector(max_iter=5).fit(preds, y)
    np.testing.assert_array_equal(preds, before)
