"""Chunked evaluation of "current ensemble + one candidate" for many candidates."""

from __future__ import annotations

import math

import numpy as np

from .._checks import model_chunks
from ._metrics import BatchMetric


class CandidateLibrary:
    """The (metric-reduced) prediction library and the vectorised candidate scoring.

    The library is never copied per iteration: the current ensemble is a running
    float64 sum, and each chunk of candidates is added to it in a bounded buffer.
    A float32 library stays float32; only chunk buffers are float64.
    """

    def __init__(self, predictions: np.ndarray, metric: BatchMetric) -> None:
        self.metric = metric
        self.reduced = self._reduce(predictions)
        self.row_elements = int(np.prod(self.reduced.shape[1:]))
        self._singles: np.ndarray | None = None
        self._stats: tuple[np.ndarray, np.ndarray] | None = None
        self.bounded = metric.bounded

    def row_stats(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-row maximum and mean over the models (computed once, on first use).

        Where the bounds of greedy skipping are centred, and how far a candidate can stray.
        """
        if self._stats is None:
            self._stats = self._row_stats()
        return self._stats

    def _row_stats(self) -> tuple[np.ndarray, np.ndarray]:
        high = np.full(self.reduced.shape[1:], -np.inf)
        total = np.zeros(self.reduced.shape[1:])
        for sl in model_chunks(self.n_models, self.row_elements):
            rows = self.reduced[sl]
            np.maximum(high, rows.max(axis=0), out=high)
            total += rows.sum(axis=0, dtype=np.float64)
        return high, total / self.n_models

    def project(self, vector: np.ndarray) -> np.ndarray:
        """``reduced @ vector`` in one float32 BLAS pass; relative error :meth:`project_error`.

        float32 BLAS keeps the pass at memory speed: about 0.6-0.9 ms for 300 x 20,000 on
        one core while the library fits the 32 MB L3 cache, 1.7 ms once it must come from
        memory. Summing in float32 blocks and the blocks in float64 (as
        :meth:`project_models` does) has a 80-fold smaller error bound on 20,000 rows but
        took 2x as long; a float64 product needs a float64 copy of the library.
        """
        return self.reduced @ vector

    def project_error(self) -> float:
        """Bound on the relative rounding error of :meth:`project`'s non-negative results.

        Any summation order of ``n`` float32 products, the float32 rounding of the
        vector included, stays within ``k u / (1 - k u)`` of the exact sum, ``k = n + 2``
        and ``u = 2**-24`` (Higham, *Accuracy and Stability of Numerical Algorithms*, 3.1).
        """
        terms = (self.reduced.shape[1] + 2) * _U32
        return terms / (1.0 - terms) if terms < 1.0 else math.inf

    def project_models(
        self, models: np.ndarray, linear: np.ndarray, quadratic: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """``reduced[models] @ linear`` and ``reduced[models]**2 @ quadratic``, float64 sums.

        Rows are summed in float32 blocks of :data:`PROJECT_BLOCK` and the blocks in
        float64, so rounding is at most ``(PROJECT_BLOCK + 3) * 2**-24`` of each
        (non-negative) result, the float32 rounding of the vector and the squares
        included. Only the given models' rows are read and squared: no squared copy of
        the whole library is kept (it would double selection's memory and, on 300 x
        20,000, push the pair of them out of the L3 cache, tripling a pass's time).
        """
        products = np.empty(len(models)), np.empty(len(models))
        for sl in model_chunks(len(models), self.row_elements):
            rows = self.reduced[models[sl]]
            products[0][sl] = _blocked_dot(rows, linear)
            products[1][sl] = _blocked_dot(np.square(rows, dtype=np.float32, out=rows), quadratic)
        return products

    def _reduce(self, predictions: np.ndarray) -> np.ndarray:
        head = predictions[:1]
        probe = self.metric.reduce(head)
        if probe is head:
            return predictions  # identity reduction: use the caller's array as is
        out = np.empty((predictions.shape[0],) + probe.shape[1:], dtype=predictions.dtype)
        row = int(np.prod(predictions.shape[1:]))
        for sl in model_chunks(predictions.shape[0], row):
            out[sl] = self.metric.reduce(predictions[sl])
        return out

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
        for sl in model_chunks(len(candidates), self.row_elements):
            rows = (
                self.reduced[first + sl.start : first + sl.stop]
                if contiguous
                else self.reduced[candidates[sl]]
            )
            sums = np.add(rows, running_sum, dtype=np.float64)
            scores[sl] = self.metric.score_sums(sums, float(count + 1))
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


def blend(predictions: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted average of the library (float64), touching only non-zero weights."""
    out = np.zeros(predictions.shape[1:], dtype=np.float64)
    for j in np.flatnonzero(weights):
        out += weights[j] * predictions[j]
    return out / weights.sum()


def ensemble_score(predictions: np.ndarray, weights: np.ndarray, metric: BatchMetric) -> float:
    """Score of the weighted ensemble with ``metric``."""
    reduced = metric.reduce(blend(predictions, weights)[None])
    return float(metric.score_sums(np.array(reduced, dtype=np.float64), 1.0)[0])
