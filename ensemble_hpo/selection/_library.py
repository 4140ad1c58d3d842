"""Chunked evaluation of "current ensemble + one candidate" for many candidates."""

from __future__ import annotations

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
        """Score of every model on its own."""
        return self.score(self.zeros(), 0, np.arange(self.n_models))


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
