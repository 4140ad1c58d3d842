"""The one place that validates prediction arrays, ``sample_weight`` and the task.

Selection, fusion, the deployment tools, the metrics and the fit-data checks all call these,
so one concept has one rule: a stack of predictions is valid for selection exactly when it is
valid for fusion, and every stage agrees on what a usable weight vector is. Only numpy here,
so every layer of the package can import it.
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Iterator
from typing import Any

import numpy as np

__all__ = [
    "CLASSIFICATION",
    "REGRESSION",
    "ParameterConflict",
    "TASKS",
    "check_predictions",
    "check_same_layout",
    "check_sample_weight",
    "check_task",
    "file_rows",
    "model_chunks",
    "task_of_predictions",
]

CLASSIFICATION = "classification"
REGRESSION = "regression"
TASKS = (CLASSIFICATION, REGRESSION)

# Probabilities from float32 sums may stray this far outside [0, 1]; within it they are
# clipped, beyond it they are an error.
PROBA_TOLERANCE = 1e-6
# A row of class probabilities must sum to 1 within this. Loose enough for probabilities
# stored in float16 (about 5e-4 off), tight enough to refuse scores that are not a
# distribution: the fast log loss reads the true class's value as given, so a model
# predicting [1, 1] scored a perfect 0 and took all the weight.
PROBA_SUM_TOLERANCE = 1e-2
# Bound on float64 elements touched per chunk (~4 MB) so temporaries stay cache friendly and
# memory stays bounded whatever the number of models.
CHUNK_ELEMENTS = 1 << 19


class ParameterConflict(ValueError):
    """Parameters that cannot work with this data or run folder, found before training.

    (The command line reports it as a bad configuration, exit code 2.)
    """


def check_task(task: Any) -> str:
    """Return ``task`` when it is one of :data:`TASKS`."""
    if task not in TASKS:
        raise ValueError(f"The 'task' parameter must be one of {TASKS}. Got {task!r} instead.")
    return task


def task_of_predictions(predictions: np.ndarray) -> str:
    """Classification for ``(n_models, n_samples, n_classes)``, regression for 2-D."""
    return CLASSIFICATION if predictions.ndim == 3 else REGRESSION


def model_chunks(n_models: int, row_elements: int) -> Iterator[slice]:
    """Yield slices of models whose float64 copy fits the chunk budget."""
    step = max(1, CHUNK_ELEMENTS // max(1, row_elements))
    for start in range(0, n_models, step):
        yield slice(start, min(start + step, n_models))


class FileRows:
    """Read-only rows (models) of a C-ordered array in a file, read on demand into new arrays.

    Indexing with an int, a slice (step 1) or an integer array returns an ordinary array of
    those models. A memory map does the same, but every page it touches stays in the
    process's resident set until it is unmapped, so a selection that reads a 10 GB library
    once per iteration would hold 10 GB; ``os.preadv`` copies through the page cache into
    buffers the caller frees. The file descriptor is opened once, so the file may be
    unlinked afterwards (a private temporary file vanishes with the reader).
    """

    def __init__(self, fd: int, offset: int, shape: tuple[int, ...], dtype: Any) -> None:
        self.shape, self.dtype, self.offset = tuple(shape), np.dtype(dtype), offset
        self.row_bytes = int(np.prod(self.shape[1:])) * self.dtype.itemsize
        self._fd = fd
        weakref.finalize(self, os.close, fd)

    @classmethod
    def open(cls, path: str | os.PathLike[str], offset: int, shape: tuple[int, ...],
             dtype: Any) -> FileRows:
        return cls(os.open(path, os.O_RDONLY), offset, shape, dtype)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key: Any) -> np.ndarray:
        if isinstance(key, (int, np.integer)):
            return self._read_rows(np.arange(self.shape[0])[[key]])[0]
        if isinstance(key, slice):
            start, stop, step = key.indices(self.shape[0])
            if step != 1:
                raise IndexError("FileRows reads slices with step 1 only.")
            out = np.empty((max(0, stop - start), *self.shape[1:]), dtype=self.dtype)
            self._read_into(out, start)
            return out
        return self._read_rows(np.arange(self.shape[0])[np.asarray(key)])

    def read_plus(self, rows: np.ndarray, addend: np.ndarray,
                  block: int = 1 << 16) -> np.ndarray:
        """``self[rows] + addend`` in float64, read in blocks: no float32 copy of the rows."""
        out = np.empty((len(rows), *self.shape[1:]), dtype=np.float64)
        flat_out, flat_add = out.reshape(len(rows), -1), addend.reshape(-1)
        buffer = np.empty(min(block, flat_add.size), dtype=self.dtype)
        for i, row in enumerate(np.arange(self.shape[0])[rows]):
            for start in range(0, flat_add.size, block):
                part = buffer[: min(block, flat_add.size - start)]
                self._read_bytes(part, int(row) * self.row_bytes + start * self.dtype.itemsize)
                stop = start + len(part)
                np.add(part, flat_add[start:stop], out=flat_out[i, start:stop])
        return out

    def samples(self, row: int, start: int, stop: int) -> np.ndarray:
        """Model ``row``'s predictions for the samples ``start:stop`` (axis 1)."""
        inner = int(np.prod(self.shape[2:]))
        out = np.empty((stop - start, *self.shape[2:]), dtype=self.dtype)
        self._read_bytes(out, row * self.row_bytes + start * inner * self.dtype.itemsize)
        return out

    def _read_rows(self, rows: np.ndarray) -> np.ndarray:
        out = np.empty((len(rows), *self.shape[1:]), dtype=self.dtype)
        for i, row in enumerate(rows):
            self._read_into(out[i : i + 1], int(row))
        return out

    def _read_into(self, out: np.ndarray, first_row: int) -> None:
        self._read_bytes(out, first_row * self.row_bytes)

    def _read_bytes(self, out: np.ndarray, start: int) -> None:
        """Fill the contiguous ``out`` from byte ``start`` of the array's data."""
        view = memoryview(out.reshape(-1).view(np.uint8))
        position, done = self.offset + start, 0
        while done < len(view):
            got = os.preadv(self._fd, [view[done:]], position + done)
            if got <= 0:
                raise OSError(f"Unexpected end of the predictions file at byte {position + done}.")
            done += got


def file_rows(arr: Any) -> FileRows | None:
    """A :class:`FileRows` reader of ``arr`` if it is a whole, C-ordered file memory map.

    Views of part of a map (whose ``offset`` numpy does not adjust) get None, as does any
    in-memory array: those are read as arrays.
    """
    if not isinstance(arr, np.memmap) or not arr.flags.c_contiguous or arr.filename is None:
        return None
    try:
        whole = os.path.getsize(arr.filename) == arr.offset + arr.nbytes
    except OSError:
        return None
    return FileRows.open(arr.filename, arr.offset, arr.shape, arr.dtype) if whole else None


def check_predictions(predictions: Any, *, dtype: Any = None) -> np.ndarray:
    """Stacked predictions of several models, checked by the rule every stage shares.

    Valid: numbers, shaped ``(n_models, n_samples)`` (regression) or ``(n_models,
    n_samples, n_classes)`` with at least two classes (probabilities in [0, 1], up to
    :data:`PROBA_TOLERANCE`, then clipped; each row summing to 1 up to
    :data:`PROBA_SUM_TOLERANCE`), all finite. float32 and float64 arrays are
    returned without a copy unless ``dtype`` asks for another type or values are clipped,
    so a memory-mapped library of thousands of models is never duplicated (a whole-file
    ``np.memmap`` is returned as itself, for :func:`file_rows`).
    """
    arr = predictions if isinstance(predictions, np.memmap) else np.asarray(predictions)
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise ValueError("The 'predictions' parameter must hold numbers. "
                         f"Got dtype {arr.dtype} instead.")
    if arr.ndim not in (2, 3) or min(arr.shape) < 1 or (arr.ndim == 3 and arr.shape[2] < 2):
        raise ValueError(
            "The 'predictions' parameter must be a 2-D array (n_models, n_samples) for "
            "regression or a 3-D array (n_models, n_samples, n_classes) with at least 2 "
            f"classes for classification. Got shape {arr.shape} instead.")
    if dtype is not None:
        arr = arr.astype(dtype, copy=False)
    elif arr.dtype not in (np.float32, np.float64):
        arr = arr.astype(np.float64)
    low, high = _checked_range(arr)
    if low < 0.0 or high > 1.0:
        arr = np.clip(arr, 0.0, 1.0)
    return arr


def check_same_layout(predictions: np.ndarray, n_models: int, n_classes: int | None) -> None:
    """Refuse checked ``predictions`` whose models or classes differ from those seen at fit."""
    expected = (n_models,) + (() if n_classes is None else (n_classes,))
    got = predictions.shape[:1] + predictions.shape[2:]
    if got != expected:
        raise ValueError(
            "The 'predictions' parameter must have the (n_members[, n_classes]) layout seen "
            f"at fit time, {expected}. Got shape {predictions.shape} instead.")


def _checked_range(arr: np.ndarray) -> tuple[float, float]:
    """All values finite; for probabilities (3-D) also their range, else ``(0, 1)``."""
    # Chunked so that a multi-GB library never needs a full-size boolean temporary; the range
    # pass is skipped for regression, where any finite value is valid.
    probabilities = arr.ndim == 3
    low, high = (np.inf, -np.inf) if probabilities else (0.0, 1.0)
    sum_low, sum_high = 1.0, 1.0
    rows = file_rows(arr) or arr
    for sl in model_chunks(arr.shape[0], int(np.prod(arr.shape[1:]))):
        chunk = rows[sl]
        if not np.isfinite(chunk).all():
            raise ValueError("The 'predictions' parameter must contain only finite values. "
                             "Got NaN or infinite values instead.")
        if probabilities:
            low, high = min(low, float(chunk.min())), max(high, float(chunk.max()))
            chunk_low, chunk_high = _row_sum_range(chunk)
            sum_low, sum_high = min(sum_low, chunk_low), max(sum_high, chunk_high)
        del chunk  # before the next one is read
    if low < -PROBA_TOLERANCE or high > 1.0 + PROBA_TOLERANCE:
        raise ValueError(
            "The 'predictions' parameter must hold probabilities in [0, 1] when it is 3-D. "
            f"Got values in [{low:.6g}, {high:.6g}] instead.")
    if sum_low < 1.0 - PROBA_SUM_TOLERANCE or sum_high > 1.0 + PROBA_SUM_TOLERANCE:
        raise ValueError(
            "The 'predictions' parameter must hold class probabilities whose rows sum to 1 "
            f"when it is 3-D. Got row sums in [{sum_low:.6g}, {sum_high:.6g}] instead; "
            "normalise them (p / p.sum(axis=-1, keepdims=True)).")
    return low, high


def _row_sum_range(chunk: np.ndarray, block: int = 1 << 18) -> tuple[float, float]:
    """Smallest and largest row sum of a (n_models, n_samples, n_classes) chunk.

    A product with a vector of ones (numpy's sum along the short class axis was 4x slower,
    one model at a time 15-30x), a block of rows at a time, so that the check adds at most
    ``block`` values to a library streamed from a file. Its rounding (float32: about 1e-7
    per class) is far below :data:`PROBA_SUM_TOLERANCE`.
    """
    n_models, n_rows, n_classes = chunk.shape
    ones = np.ones(n_classes, dtype=chunk.dtype)
    step = max(1, block // max(1, n_models))
    low, high = np.inf, -np.inf
    for start in range(0, n_rows, step):
        sums = chunk[:, start:start + step] @ ones
        low, high = min(low, float(sums.min())), max(high, float(sums.max()))
    return low, high


def check_sample_weight(sample_weight: Any, n_samples: int) -> np.ndarray | None:
    """float64 weights (None stays None): numeric, finite, non-negative, positive sum.

    A zero sum is an error everywhere: no metric or fuser can weight rows by it.
    """
    if sample_weight is None:
        return None
    weights = np.asarray(sample_weight)
    if weights.ndim != 1 or weights.shape[0] != n_samples:
        raise ValueError(
            f"The 'sample_weight' parameter must be a 1-D array of length n_samples={n_samples}. "
            f"Got shape {weights.shape} instead.")
    if weights.dtype.kind not in "biuf":
        raise ValueError("The 'sample_weight' parameter must be numeric. "
                         f"Got dtype {weights.dtype} instead.")
    weights = weights.astype(np.float64)
    for bad, what in ((~np.isfinite(weights), "NaN or infinite"), (weights < 0, "negative")):
        if bad.any():
            raise ValueError(
                "The 'sample_weight' parameter must be finite and non-negative. Got "
                f"{int(bad.sum())} {what} value(s), the first at position "
                f"{int(np.argmax(bad))}, instead.")
    if not weights.sum() > 0:
        raise ValueError("The 'sample_weight' parameter must have a positive sum. "
                         "Got weights that sum to zero instead.")
    return weights
