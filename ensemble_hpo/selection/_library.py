"""Chunked evaluation of "current ensemble + one candidate" for many candidates."""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Callable
from typing import IO

import numpy as np

from .._checks import FileRows, file_rows, model_chunks
from ._metrics import BatchMetric, sample_blocks


class CandidateLibrary:
    """The (metric-reduced) prediction library and the vectorised candidate scoring.

    The library is never copied per iteration: the current ensemble is a running
    float64 sum, and each chunk of candidates is added to it in a bounded buffer.
    A float32 library stays float32; only chunk buffers are float64.

    Predictions given as a whole-file ``np.memmap`` (``Population.predictions(numbers,
    out=path)``) are streamed: the reduced library goes to an unnamed temporary file
    beside the source (not memory; it vanishes with the library) and every pass reads
    it chunk by chunk (:class:`~ensemble_hpo._checks.FileRows`), so selection holds a
    chunk and its per-row vectors, not the array.
    """

    def __init__(self, predictions: np.ndarray, metric: BatchMetric) -> None:
        self.metric = metric
        self.reduced = self._reduce(predictions)
        self.row_elements = int(np.prod(self.reduced.shape[1:]))
        self._singles: np.ndarray | None = None
        self._stats: tuple[np.ndarray, np.ndarray] | None = None
        self.bounded = metric.bounded
        self.streamed = isinstance(self.reduced, FileRows)

    def row_stats(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-row maximum and mean over the models (computed once, on first use).

        Where the bounds of greedy skipping are centred, and how far a candidate can stray.
        """
        if self._stats is None:
            self._stats = self._row_stats()
        return self._stats

    def _row_stats(self) -> tuple[np.ndarray, np.ndarray]:
        # The maximum in the library's type (exact), the mean in float32: it only centres
        # bounds that hold around any point (half the memory of float64 on a million rows).
        high = np.full(self.reduced.shape[1:], -np.inf, dtype=self.reduced.dtype)
        total = np.zeros(self.reduced.shape[1:])
        for sl in model_chunks(self.n_models, self.row_elements):
            rows = self.reduced[sl]
            for row in rows:  # in place, without row-length temporaries
                np.maximum(high, row, out=high)
                np.add(total, row, out=total)
            del rows  # before the next chunk is read: one chunk alive at a time
        total /= self.n_models
        return high, total.astype(np.float32)

    def project(self, vector: np.ndarray) -> np.ndarray:
        """``reduced @ vector`` in one float32 BLAS pass; relative error :meth:`project_error`.

        float32 BLAS keeps the pass at memory speed: about 0.6-0.9 ms for 300 x 20,000 on
        one core while the library fits the 32 MB L3 cache, 1.7 ms once it must come from
        memory. Summing in float32 blocks and the blocks in float64 (as
        :meth:`project_models` does) has a 80-fold smaller error bound on 20,000 rows but
        took 2x as long; a float64 product needs a float64 copy of the library.
        """
        if not self.streamed:
            return self.reduced @ vector
        out = np.empty(self.n_models)
        for sl in model_chunks(self.n_models, self.row_elements):
            out[sl] = self.reduced[sl] @ vector
        return out

    def project_error(self) -> float:
        """Bound on the relative rounding error of :meth:`project`'s non-negative results.

        Any summation order of ``n`` float32 products, the float32 rounding of the
        vector included, stays within ``k u / (1 - k u)`` of the exact sum, ``k = n + 2``
        and ``u = 2**-24`` (Higham, *Accuracy and Stability of Numerical Algorithms*, 3.1).
        """
        terms = (self.reduced.shape[1] + 2) * _U32
        return terms / (1.0 - terms) if terms < 1.0 else math.inf

    def project_models(
        self, models: np.ndarray, coefficients: Callable[[slice], tuple[np.ndarray, np.ndarray]]
    ) -> tuple[np.ndarray, np.ndarray]:
        """``reduced[models] @ c1`` and ``reduced[models]**2 @ c2``, float64 sums.

        ``coefficients(samples)`` gives the float32 ``c1`` and ``c2`` of a block of
        samples, so that neither is ever table-length. Rows are summed in float32 blocks
        of :data:`PROJECT_BLOCK` and the blocks in float64, so rounding is at most
        :data:`MODELS_PRODUCT_ERROR` of each (non-negative) result. Only the given models'
        rows are read and squared: no squared copy of the whole library is kept (it would
        double selection's memory and, on 300 x 20,000, push the pair of them out of the
        L3 cache, tripling a pass's time).
        """
        linear, square = np.zeros(len(models)), np.zeros(len(models))
        for block in sample_blocks(self.row_elements):
            c1, c2 = coefficients(block)  # once per block of samples, for every model
            for sl in model_chunks(len(models), block.stop - block.start):
                part = self._samples(models[sl], block)
                linear[sl] += _blocked_dot(part, c1)
                square[sl] += _blocked_dot(np.square(part, dtype=np.float32, out=part), c2)
                del part
        return linear, square

    def _samples(self, models: np.ndarray, block: slice) -> np.ndarray:
        """A new array of ``reduced[models, block]``."""
        if not self.streamed:
            return self.reduced[models, block]
        out = np.empty((len(models), block.stop - block.start), dtype=self.reduced.dtype)
        for i, model in enumerate(models):
            out[i] = self.reduced.samples(int(model), block.start, block.stop)
        return out

    def _reduce(self, predictions: np.ndarray) -> np.ndarray | FileRows:
        source = file_rows(predictions)
        rows = predictions if source is None else source
        head = rows[:1]
        probe = self.metric.reduce(head)
        if probe is head:
            return rows  # identity reduction: the caller's array (or its file) as is
        shape = (predictions.shape[0], *probe.shape[1:])
        del head, probe
        chunks = model_chunks(predictions.shape[0], int(np.prod(predictions.shape[1:])))
        if source is None:
            out = np.empty(shape, dtype=predictions.dtype)
            for sl in chunks:
                out[sl] = self.metric.reduce(predictions[sl])
            return out
        with _scratch_file(os.path.dirname(os.path.abspath(predictions.filename))) as handle:
            for sl in chunks:
                reduced = np.ascontiguousarray(self.metric.reduce(rows[sl]), dtype=predictions.dtype)
                handle.write(memoryview(reduced).cast("B"))
                del reduced
            handle.flush()
            return FileRows(os.dup(handle.fileno()), 0, shape, predictions.dtype)

    @property
    def n_models(self) -> int:
        return self.reduced.shape[0]

    def zeros(self) -> np.ndarray:
        """An empty running sum."""
        return np.zeros(self.reduced.shape[1:], dtype=np.float64)

    def add(self, running_sum: np.ndarray, index: int) -> None:
        """Add model ``index`` to ``running_sum`` in place."""
        running_sum += self.reduced[index]

    def score(self, running_sum: np.ndarray, count: int, candidates: np.ndarray) -> np.ndarray:
        """Score ``(running_sum + model_j) / (count + 1)`` for every ``j`` in ``candidates``."""
        candidates = np.asarray(candidates, dtype=np.intp)
        # A contiguous range (the usual unpruned case) is read through views, not copies.
        contiguous = len(candidates) > 0 and bool(
            (np.diff(candidates) == 1).all() if len(candidates) > 1 else True
        )
        first = int(candidates[0]) if contiguous else 0
        scores = np.empty(len(candidates))
        if self.streamed:
            for sl in model_chunks(len(candidates), self.row_elements):
                # Read and added in blocks: the sums are the only chunk-sized buffer.
                sums = self.reduced.read_plus(candidates[sl], running_sum)
                scores[sl] = self.metric.score_sums(sums, float(count + 1))
                del sums
            return scores
        for sl in model_chunks(len(candidates), self.row_elements):
            rows = (
                self.reduced[first + sl.start : first + sl.stop]
                if contiguous
                else self.reduced[candidates[sl]]
            )
            sums = np.add(rows, running_sum, dtype=np.float64)
            del rows
            scores[sl] = self.metric.score_sums(sums, float(count + 1))
            del sums  # before the next chunk is read: one chunk and its sums alive at a time
        return scores

    def single_scores(self) -> np.ndarray:
        """Score of every model on its own (computed once, then cached)."""
        if self._singles is None:
            self._singles = self.score(self.zeros(), 0, np.arange(self.n_models))
        return self._singles.copy()

    def singles_known(self) -> bool:
        """Whether :meth:`single_scores` has run (its result is cached)."""
        return self._singles is not None


PROJECT_BLOCK = 256
_U32 = 2.0**-24  # float32 unit roundoff
# Relative rounding of :meth:`CandidateLibrary.project_models`: the block sums (PROJECT_BLOCK
# terms), the product and the float32 rounding of the coefficient, and of a float64 library
# value and its square (3 more).
MODELS_PRODUCT_ERROR = (PROJECT_BLOCK + 6) * _U32


def _blocked_dot(matrix: np.ndarray, vector: np.ndarray) -> np.ndarray:
    """``matrix @ vector`` summed in float32 within row blocks and in float64 across them."""
    n = matrix.shape[1]
    head = n - n % PROJECT_BLOCK
    out = np.zeros(matrix.shape[0])
    if head:
        blocks = matrix[:, :head].reshape(matrix.shape[0], -1, PROJECT_BLOCK).transpose(1, 0, 2)
        parts = np.matmul(blocks, vector[:head].reshape(-1, PROJECT_BLOCK, 1))
        out += parts[..., 0].sum(axis=0, dtype=np.float64)
    if head < n:
        out += matrix[:, head:] @ vector[head:]
    return out


def _scratch_file(folder: str) -> IO[bytes]:
    """An unnamed temporary file in ``folder`` (the source's file system), else in the default."""
    try:
        return tempfile.TemporaryFile(dir=folder)
    except OSError:  # a read-only folder
        return tempfile.TemporaryFile()


def _member_block(predictions: np.ndarray, rows: FileRows | None, j: int,
                  block: slice) -> np.ndarray:
    """Model ``j``'s predictions for the samples ``block``, from the file when streamed."""
    return predictions[j, block] if rows is None else rows.samples(j, block.start, block.stop)


def blend(predictions: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted average of the library (float64), touching only non-zero weights."""
    rows = file_rows(predictions)
    out = np.zeros(predictions.shape[1:], dtype=np.float64)
    for block in sample_blocks(len(out)):
        for j in np.flatnonzero(weights):
            out[block] += weights[j] * _member_block(predictions, rows, int(j), block)
    out /= weights.sum()
    return out


def ensemble_score(predictions: np.ndarray, weights: np.ndarray, metric: BatchMetric) -> float:
    """Score of the weighted ensemble with ``metric``.

    Reductions are linear, so the members are reduced (in the library's type, as
    selection scored them) before they are averaged in float64, in blocks of samples: the
    running sum has the reduced size (one value per sample for log loss).
    """
    rows = file_rows(predictions)
    n = predictions.shape[1]
    total: np.ndarray | None = None
    for block in sample_blocks(n):
        for j in np.flatnonzero(weights):
            reduced = metric.reduce(_member_block(predictions, rows, int(j), block)[None], block)[0]
            if total is None:
                total = np.zeros((n, *reduced.shape[1:]))
            total[block] += weights[j] * reduced
    assert total is not None  # weights sum to 1
    total /= weights.sum()
    return float(metric.score_sums(total[None], 1.0)[0])
