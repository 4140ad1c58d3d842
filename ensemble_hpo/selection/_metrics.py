"""Scoring many candidate ensembles in one vectorised call.

Greedy selection asks, at every iteration, "what would the score be if model j
joined the ensemble?" for every candidate j. The candidate ensembles differ from
the current one by one member, so each metric receives the *sums*
``current_sum + prediction_j`` for a chunk of candidates plus the divisor
``count + 1`` and returns one score per candidate.

Every metric may first ``reduce`` the library to the part it needs (e.g. the
true-class probability for log loss). The reduction must be linear in the
predictions so that the ensemble of reduced predictions equals the reduction of
the ensemble; the running sum then lives in the reduced space.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from ensemble_hpo.metrics import PredictionScorer, get_prediction_scorer

from .._checks import CLASSIFICATION, REGRESSION

_EPS = np.finfo(np.float64).eps  # sklearn's log_loss clips with the eps of the scored dtype


_ALL_ROWS = slice(None)


class BatchMetric(ABC):
    """Greater-is-better metric evaluated on a batch of candidate ensembles."""

    def __init__(self, y: np.ndarray, sample_weight: np.ndarray | None) -> None:
        self.y = y
        self.sample_weight = sample_weight

    def reduce(self, chunk: np.ndarray, rows: slice = _ALL_ROWS) -> np.ndarray:
        """Map a chunk of library predictions to the (linear) space the metric needs.

        ``chunk`` holds some models' predictions for the samples ``rows`` (all by default).
        """
        return chunk

    @abstractmethod
    def score_sums(self, sums: np.ndarray, divisor: float) -> np.ndarray:
        """Score the ensembles ``sums / divisor``; ``sums`` is float64 and may be overwritten."""

    #: True when the metric offers ``tangent_bound`` (log loss), which lets greedy
    #: selection skip candidates exactly (``_greedy._BoundedSearch``).
    bounded = False

    def _mean(self, values: np.ndarray) -> np.ndarray:
        if self.sample_weight is None:
            return values.mean(axis=1)
        return values @ self.sample_weight / self.sample_weight.sum()


class GenericMetric(BatchMetric):
    """Fallback that calls a :class:`PredictionScorer` once per candidate.

    A scorer of predicted labels only (f1, precision, recall, ...) is called once per distinct
    label vector: most candidates of a greedy step change no row's argmax, and each call costs
    milliseconds of scikit-learn's input checks. Measured before: ``scoring="f1"`` made a
    20 s fit on breast_cancer take 120 s (selection, nested estimate and latency front).
    """

    def __init__(
        self, y: np.ndarray, sample_weight: np.ndarray | None, scorer: PredictionScorer
    ) -> None:
        super().__init__(y, sample_weight)
        self.scorer = scorer
        self._by_labels: dict[bytes, float] | None = {} if scorer.scores_labels_only else None

    def score_sums(self, sums: np.ndarray, divisor: float) -> np.ndarray:
        sums /= divisor
        if self._by_labels is None or sums.ndim != 3:
            return np.array([self.scorer(self.y, row, self.sample_weight) for row in sums])
        scores = np.empty(len(sums))
        for i, (row, labels) in enumerate(zip(sums, sums.argmax(axis=2), strict=True)):
            key = hashlib.blake2b(labels.tobytes(), digest_size=16).digest()
            if key not in self._by_labels:
                self._by_labels[key] = self.scorer(self.y, row, self.sample_weight)
            scores[i] = self._by_labels[key]
        return scores


# Samples per block wherever table-length float64 temporaries are avoided (the log-loss
# bounds and reduction, the selection library's tightening and ensemble score): 256 KB
# each, where whole-length ones would be 8 MB on a million-row table.
SAMPLE_BLOCK = 1 << 15
_GATHER_BLOCK = 1 << 12


def sample_blocks(n: int) -> Iterator[slice]:
    """Slices of :data:`SAMPLE_BLOCK` samples covering ``n``."""
    for start in range(0, n, SAMPLE_BLOCK):
        yield slice(start, min(start + SAMPLE_BLOCK, n))


class LogLoss(BatchMetric):
    """Negative log loss; only the true-class probability matters.

    Scores are ``M_j - log(divisor)`` with ``M_j`` the (weighted) mean of
    ``log(clip(sum_j))`` over rows; :meth:`tangent_bound` bounds ``M_j`` from above.
    """

    bounded = True
    _total_weight: float | None = None  # of sample_weight, cached

    def reduce(self, chunk: np.ndarray, rows: slice = _ALL_ROWS) -> np.ndarray:
        # A flat gather per model: 6 ms against take_along_axis's 24 ms on 300 x 20,000 x 2
        # float32 (same values, it only selects), 6x faster than masked copies. Gathered
        # into the output per block of 4,096 samples (mode="clip" writes there unbuffered;
        # the indices are in range), so neither index nor copy grows with the table.
        n_classes, n = chunk.shape[2], chunk.shape[1]
        y = self.y[rows]
        flat = np.ascontiguousarray(chunk).reshape(len(chunk), -1)
        out = np.empty(chunk.shape[:2], dtype=chunk.dtype)
        for start in range(0, n, _GATHER_BLOCK):
            stop = min(start + _GATHER_BLOCK, n)
            index = np.arange(stop - start)
            index *= n_classes
            index += y[start:stop]
            for model in range(len(chunk)):
                np.take(flat[model, start * n_classes : stop * n_classes], index,
                        out=out[model, start:stop], mode="clip")
        return out

    def score_sums(self, sums: np.ndarray, divisor: float) -> np.ndarray:
        # Clipping and logging the sums (not the means) saves a full pass over the chunk.
        np.clip(sums, _EPS * divisor, (1 - _EPS) * divisor, out=sums)
        if self.sample_weight is None:
            return sum_of_logs(sums) / sums.shape[1] - np.log(divisor)
        np.log(sums, out=sums)
        return self._mean(sums) - np.log(divisor)

    def tangent_bound(
        self, running: np.ndarray, count: int, mean: np.ndarray | None, high: np.ndarray | None
    ) -> tuple[np.ndarray, float, float]:
        """The tangent bound's float32 row vector ``t`` and the constants ``T`` and ``K``.

        Two upper bounds on every candidate's ``M_j`` hold around ``B = s + c`` (``s``: the
        running sum, raised to the lower clip; ``c`` a point per row, :meth:`_bound_center`;
        ``high`` the rows' largest prediction, 1 when None). Each row is ``log(B) + log(1 +
        x)`` with ``x = (p - c) / B`` in ``(-1, X]``, ``X = (high - c) / B > -1``. The
        tangent ``log(1 + x) <= x`` gives ``T + sum(t p_j)``; on that interval also
        ``log(1 + x) <= x - x**2 / (2 (1 + X))`` (the difference vanishes at 0, falls before
        it and rises after), which gives ``K + sum(c1 p_j) - sum(c2 p_j**2)``
        (:meth:`quadratic_coefficients`), below the tangent by ``sum(c2 (p_j - c)**2)``. All
        coefficients are ``>= 0``; the clip only lowers a row: ``log(clip(s + p)) <=
        log(max(s, lo) + p)``. Computed in blocks of rows: only ``t`` is table-length.
        """
        n = len(running)
        tangent = np.empty(n, dtype=np.float32)
        tangent_constant = square_constant = 0.0
        for sl in sample_blocks(n):
            w, center, base, t, c2 = self._bound_block(running, count, mean, high, sl)
            tangent[sl] = t
            tangent_constant += float(np.sum(w * np.log(base)) - t @ center)
            square_constant += float(c2 @ (center * center))
        return tangent, tangent_constant, tangent_constant - square_constant

    def quadratic_coefficients(
        self, running: np.ndarray, count: int, mean: np.ndarray | None,
        high: np.ndarray | None, rows: slice,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The quadratic bound's float32 ``c1`` and ``c2`` for ``rows`` (see :meth:`tangent_bound`)."""
        _, center, _, t, c2 = self._bound_block(running, count, mean, high, rows)
        c1 = t + 2.0 * c2 * center
        return c1.astype(np.float32), c2.astype(np.float32)

    def _bound_block(
        self, running: np.ndarray, count: int, mean: np.ndarray | None,
        high: np.ndarray | None, rows: slice,
    ) -> tuple[np.ndarray | float, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        w = self._row_weights(rows)
        center = self._bound_center(running[rows], count, None if mean is None else mean[rows])
        base = np.maximum(running[rows], _EPS * (count + 1))
        base += center
        t = w / base
        # c2 = w / (2 B (B + high - c)): alpha / B**2 with alpha = 1 / (2 (1 + X)).
        c2 = base + (1.0 if high is None else high[rows])
        c2 -= center
        c2 *= base
        np.divide(0.5 * w, c2, out=c2)
        return w, center, base, t, c2

    @staticmethod
    def _bound_center(running: np.ndarray, count: int, mean: np.ndarray | None) -> np.ndarray:
        """A third of the way from the models' row mean to the ensemble's mean prediction.

        Any non-negative point gives valid bounds; this one left the fewest candidates to
        tighten and score on 300 x 20,000 (``benchmarks/results/selection_speed.md``).
        Without the row mean (a streamed library keeps no row statistics) it is the
        ensemble's mean, or 1/2 before there is an ensemble.
        """
        if mean is None:
            return running / count if count else np.full(len(running), 0.5)
        if count == 0:
            return mean.astype(np.float64)
        return (running / count + 2.0 * mean) / 3.0

    def _row_weights(self, rows: slice) -> np.ndarray | float:
        """Normalised row weights of ``rows`` (a scalar when unweighted)."""
        if self.sample_weight is None:
            return 1.0 / len(self.y)
        if self._total_weight is None:
            self._total_weight = float(self.sample_weight.sum())
        return self.sample_weight[rows] / self._total_weight


_LOG_BLOCK = 16  # (eps * divisor) ** 16 stays far above float64's smallest normal number


def sum_of_logs(values: np.ndarray) -> np.ndarray:
    """Row sums of ``log(values)`` for positive ``values``, with 16x fewer ``log`` calls.

    ``log`` dominates the cost of scoring log loss; multiplying blocks of 16
    clipped probabilities first is exact up to rounding and cannot underflow.
    """
    n_rows, n = values.shape
    width = n // _LOG_BLOCK
    head = values[:, : width * _LOG_BLOCK].reshape(n_rows, _LOG_BLOCK, width)
    products = np.multiply.reduce(head, axis=1)
    total = np.log(products, out=products).sum(axis=1)
    return total + np.log(values[:, width * _LOG_BLOCK :]).sum(axis=1)


class Accuracy(BatchMetric):
    """Accuracy, or balanced accuracy through per-sample weights ``1 / class total``."""

    def __init__(
        self, y: np.ndarray, sample_weight: np.ndarray | None, n_classes: int, balanced: bool
    ) -> None:
        super().__init__(y, sample_weight)
        self.binary = n_classes == 2
        w = np.ones(len(y)) if sample_weight is None else sample_weight
        if balanced:
            class_total = np.bincount(y, weights=w, minlength=n_classes)
            n_present = np.count_nonzero(class_total)
            # A class whose rows all weigh zero is absent, as in scikit-learn (not 0 / 0).
            per_row = class_total[y] * n_present
            self.scale = np.divide(w, per_row, out=np.zeros(len(y)), where=per_row > 0)
        else:
            self.scale = w / w.sum()

    def reduce(self, chunk: np.ndarray, rows: slice = _ALL_ROWS) -> np.ndarray:
        # Binary: argmax picks class 1 iff p1 > p0 (ties go to class 0), a linear margin.
        return chunk[..., 1] - chunk[..., 0] if self.binary else chunk

    def score_sums(self, sums: np.ndarray, divisor: float) -> np.ndarray:
        predicted = (sums > 0) if self.binary else np.argmax(sums, axis=2)
        return (predicted == self.y) @ self.scale


@dataclass(frozen=True)
class _TieGroups:
    """Each row of a score matrix sorted, its runs of equal scores as groups numbered across
    rows (so one bincount handles every row): the weights of positives and negatives per
    group, before each group and through its end within its row, and the row of each group.

    The running sums are taken along each row: over all rows at once, rounding grew with a
    row's position and identical candidates got scores 7e-13 apart (review).
    """

    pos: np.ndarray
    neg: np.ndarray
    pos_through: np.ndarray
    neg_through: np.ndarray
    row: np.ndarray

    @classmethod
    def of(cls, scores: np.ndarray, positive: np.ndarray, weight: np.ndarray,
           descending: bool = False) -> _TieGroups:
        n_rows, n = scores.shape
        order = np.argsort(-scores if descending else scores, axis=1, kind="stable")
        ranked = np.take_along_axis(scores, order, axis=1)
        ends = np.ones((n_rows, n), dtype=bool)
        ends[:, :-1] = ranked[:, 1:] != ranked[:, :-1]
        w_pos, w_neg = np.where(positive, weight, 0.0)[order], np.where(positive, 0.0, weight)[order]
        group = np.cumsum(np.concatenate([[True], ends.ravel()[:-1]])) - 1
        return cls(pos=np.bincount(group, w_pos.ravel()), neg=np.bincount(group, w_neg.ravel()),
                   pos_through=np.cumsum(w_pos, axis=1)[ends],
                   neg_through=np.cumsum(w_neg, axis=1)[ends],
                   row=np.repeat(np.arange(n_rows), ends.sum(axis=1)))


def batch_binary_auc(scores: np.ndarray, positive: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Weighted ROC AUC of every row of ``scores``; tied scores count one half."""
    groups = _TieGroups.of(scores, positive, weight)
    neg_below = groups.neg_through - groups.neg
    pairs = np.bincount(groups.row, groups.pos * (neg_below + 0.5 * groups.neg),
                        minlength=len(scores))
    return pairs / (weight[positive].sum() * weight[~positive].sum())


def batch_binary_average_precision(scores: np.ndarray, positive: np.ndarray,
                                   weight: np.ndarray) -> np.ndarray:
    """Weighted average precision of every row of ``scores``, as scikit-learn computes it:
    the precision at each distinct score (ties taken together, highest first) times the
    recall it adds."""
    groups = _TieGroups.of(scores, positive, weight, descending=True)
    tps, predicted = groups.pos_through, groups.pos_through + groups.neg_through
    precision = np.divide(tps, predicted, out=np.zeros_like(predicted), where=predicted > 0)
    return (np.bincount(groups.row, groups.pos * precision, minlength=len(scores))
            / weight[positive].sum())


class AveragePrecision(BatchMetric):
    """Binary average precision of the positive class's probability."""

    def __init__(self, y: np.ndarray, sample_weight: np.ndarray | None) -> None:
        super().__init__(y, sample_weight)
        self.w = np.ones(len(y)) if sample_weight is None else sample_weight

    def reduce(self, chunk: np.ndarray, rows: slice = _ALL_ROWS) -> np.ndarray:
        return chunk[..., 1]

    def score_sums(self, sums: np.ndarray, divisor: float) -> np.ndarray:
        return batch_binary_average_precision(sums, self.y == 1, self.w)


def _average_precision(y: np.ndarray, w: np.ndarray | None, n_classes: int) -> BatchMetric | None:
    positives = (y == 1) if w is None else (y == 1) & (w > 0)
    if n_classes != 2 or not positives.any():
        return None  # multiclass or undefined: let the generic path decide
    return AveragePrecision(y, w)


class RocAuc(BatchMetric):
    """Binary ROC AUC, or one-vs-rest macro/prevalence-weighted AUC for multiclass."""

    def __init__(
        self, y: np.ndarray, sample_weight: np.ndarray | None, n_classes: int, weighted: bool
    ) -> None:
        super().__init__(y, sample_weight)
        self.binary = n_classes == 2
        self.w = np.ones(len(y)) if sample_weight is None else sample_weight
        class_total = np.bincount(y, weights=self.w, minlength=n_classes)
        self.class_weight = class_total / class_total.sum() if weighted else None

    def reduce(self, chunk: np.ndarray, rows: slice = _ALL_ROWS) -> np.ndarray:
        return chunk[..., 1] if self.binary else chunk

    def score_sums(self, sums: np.ndarray, divisor: float) -> np.ndarray:
        if self.binary:
            return batch_binary_auc(sums, self.y == 1, self.w)
        per_class = np.stack(
            [batch_binary_auc(sums[..., c], self.y == c, self.w) for c in range(sums.shape[2])],
            axis=1,
        )
        if self.class_weight is None:
            return per_class.mean(axis=1)
        return per_class @ self.class_weight


class RegressionError(BatchMetric):
    """Negative RMSE / MSE / MAE, or R², from residuals of the candidate means."""

    def __init__(self, y: np.ndarray, sample_weight: np.ndarray | None, kind: str) -> None:
        super().__init__(y, sample_weight)
        self.kind = kind
        y_mean = np.average(y, weights=sample_weight)
        self.total = float(self._mean((y - y_mean)[None, :] ** 2)[0])

    def score_sums(self, sums: np.ndarray, divisor: float) -> np.ndarray:
        sums /= divisor
        sums -= self.y
        if self.kind == "mae":
            return -self._mean(np.abs(sums, out=sums))
        mse = self._mean(np.square(sums, out=sums))
        if self.kind == "mse":
            return -mse
        if self.kind == "rmse":
            return -np.sqrt(mse)
        if self.total == 0:  # sklearn's force_finite convention for constant targets
            return np.where(mse == 0, 1.0, 0.0)
        return 1 - mse / self.total


_Factory = Callable[[np.ndarray, "np.ndarray | None", int], "BatchMetric | None"]


def _auc_factory(weighted: bool, multiclass_ok: bool) -> _Factory:
    def build(y: np.ndarray, w: np.ndarray | None, n_classes: int) -> BatchMetric | None:
        counts = np.bincount(y, minlength=n_classes)
        if (n_classes > 2 and not multiclass_ok) or (counts == 0).any():
            return None  # undefined or sklearn raises: let the generic path decide
        return RocAuc(y, w, n_classes, weighted)

    return build


FAST_METRICS: dict[str, dict[str, _Factory]] = {
    CLASSIFICATION: {
        "neg_log_loss": lambda y, w, k: LogLoss(y, w),
        "accuracy": lambda y, w, k: Accuracy(y, w, k, balanced=False),
        "balanced_accuracy": lambda y, w, k: Accuracy(y, w, k, balanced=True),
        "roc_auc": _auc_factory(weighted=False, multiclass_ok=False),
        "roc_auc_ovr": _auc_factory(weighted=False, multiclass_ok=True),
        "roc_auc_ovr_weighted": _auc_factory(weighted=True, multiclass_ok=True),
        "average_precision": _average_precision,
    },
    REGRESSION: {
        "neg_root_mean_squared_error": lambda y, w, k: RegressionError(y, w, "rmse"),
        "neg_mean_squared_error": lambda y, w, k: RegressionError(y, w, "mse"),
        "neg_mean_absolute_error": lambda y, w, k: RegressionError(y, w, "mae"),
        "r2": lambda y, w, k: RegressionError(y, w, "r2"),
    },
}


def make_batch_metric(
    scoring: str | Callable | PredictionScorer | None,
    task: str,
    n_classes: int,
    y: np.ndarray,
    sample_weight: np.ndarray | None,
    fast: bool = True,
) -> BatchMetric:
    """Return the vectorised metric for ``scoring`` when one exists, else the generic one."""
    scorer = get_prediction_scorer(scoring, task)
    name = scorer.scoring if isinstance(scorer.scoring, str) else None
    factory = FAST_METRICS[task].get(name) if fast else None
    metric = factory(y, sample_weight, n_classes) if factory is not None else None
    return metric if metric is not None else GenericMetric(y, sample_weight, scorer)
