"""Correlation and disagreement between library members."""

from __future__ import annotations

import numpy as np

from .._checks import check_predictions, model_chunks
from ._validation import encode_target


class CorrelationTracker:
    """Pearson correlation of a model with every library model, cached per model.

    Classification probabilities are flattened over (sample, class) after
    centring each class column, so binary problems reduce to the correlation of
    the positive-class probabilities. Models with constant predictions have an
    undefined correlation, reported as NaN.
    """

    def __init__(self, predictions: np.ndarray) -> None:
        self.predictions = predictions
        n_models = predictions.shape[0]
        self.row_elements = int(np.prod(predictions.shape[1:]))
        self.means = np.empty((n_models,) + predictions.shape[2:])
        self.norms = np.empty(n_models)
        for sl in model_chunks(n_models, self.row_elements):
            chunk = predictions[sl].astype(np.float64)
            self.means[sl] = chunk.mean(axis=1)
            centred = (chunk - self.means[sl][:, None]).reshape(len(chunk), -1)
            self.norms[sl] = np.sqrt(np.einsum("ij,ij->i", centred, centred))
        self._cache: dict[int, np.ndarray] = {}

    def corr_with(self, index: int) -> np.ndarray:
        """Correlation of model ``index`` with all models (length n_models)."""
        if index not in self._cache:
            self._cache[index] = self._compute(index)
        return self._cache[index]

    def _compute(self, index: int) -> np.ndarray:
        # The centred reference sums to zero per class, so the candidates need no centring.
        ref = (self.predictions[index] - self.means[index]).ravel().astype(np.float64)
        dots = np.empty(self.predictions.shape[0])
        for sl in model_chunks(len(dots), self.row_elements):
            chunk = self.predictions[sl]
            dots[sl] = chunk.reshape(len(chunk), -1) @ ref
        denom = self.norms * self.norms[index]
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(denom > 0, dots / np.where(denom > 0, denom, 1.0), np.nan)


def _check_weights(weights: object, n_models: int) -> np.ndarray:
    if weights is None:
        return np.full(n_models, 1.0 / n_models)
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (n_models,) or not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
        raise ValueError(
            f"The 'weights' parameter must be a non-negative array of length {n_models} with a "
            f"positive sum. Got shape {w.shape} instead."
        )
    return w / w.sum()


def _pair_mean(matrix: np.ndarray, w: np.ndarray) -> float:
    pair_w = np.outer(w, w)
    np.fill_diagonal(pair_w, 0.0)
    valid = ~np.isnan(matrix) & (pair_w > 0)
    if not valid.any():
        return float("nan")
    return float((matrix[valid] * pair_w[valid]).sum() / pair_w[valid].sum())


def diversity_report(
    predictions: np.ndarray, weights: np.ndarray | None = None, y: np.ndarray | None = None
) -> dict:
    """Diversity statistics of the ensemble given by ``weights`` over ``predictions``.

    Parameters
    ----------
    predictions : ndarray of shape (n_models, n_samples) or (n_models, n_samples, n_classes)
        Regression values or class probabilities (e.g. out-of-fold predictions).
    weights : ndarray of shape (n_models,), default=None
        Ensemble weights; models with weight 0 are ignored. None means uniform.
    y : ndarray of shape (n_samples,), default=None
        True targets; adds error statistics when given (labels encoded as in
        :class:`GreedySelector`).

    Returns
    -------
    report : dict
        ``members`` (indices), ``member_weights``, ``n_members``,
        ``effective_n_members`` (1 / sum of squared weights), ``correlation``
        (members x members Pearson matrix), ``mean_correlation`` (pair-weighted,
        ``w_i * w_j`` over distinct pairs), ``min_correlation``,
        ``max_correlation``; for classification ``disagreement`` (matrix of the
        fraction of samples whose predicted class differs) and
        ``mean_disagreement``, else None. With ``y``: ``ensemble_error`` and
        ``mean_member_error`` (error rate for classification, MSE for
        regression) and, for regression, ``ambiguity`` (weighted spread of the
        members around the ensemble: ensemble MSE = mean member MSE - ambiguity).

    Examples
    --------
    >>> import numpy as np
    >>> p = np.array([[0.1, 0.9, 0.4], [0.1, 0.9, 0.4]])
    >>> round(diversity_report(p)["mean_correlation"], 6)
    1.0
    """
    preds = check_predictions(predictions)
    w_all = _check_weights(weights, preds.shape[0])
    members = np.flatnonzero(w_all > 0)
    w = w_all[members]
    sub = preds[members]
    tracker = CorrelationTracker(sub)
    corr = np.array([tracker.corr_with(i) for i in range(len(members))])
    off_diag = corr[~np.eye(len(members), dtype=bool)]
    report: dict = {
        "members": members,
        "member_weights": w,
        "n_members": len(members),
        "effective_n_members": float(1.0 / np.sum(w**2)),
        "correlation": corr,
        "mean_correlation": _pair_mean(corr, w),
        "min_correlation": float(np.nanmin(off_diag)) if off_diag.size else float("nan"),
        "max_correlation": float(np.nanmax(off_diag)) if off_diag.size else float("nan"),
        "disagreement": None,
        "mean_disagreement": None,
    }
    labels = np.argmax(sub, axis=2) if sub.ndim == 3 else None
    if labels is not None:
        disagree = np.array([(labels[i] != labels).mean(axis=1) for i in range(len(members))])
        report["disagreement"] = disagree
        report["mean_disagreement"] = _pair_mean(disagree, w)
    if y is not None:
        report.update(_error_stats(sub, w, y, labels))
    return report


def _error_stats(sub: np.ndarray, w: np.ndarray, y: object, labels: np.ndarray | None) -> dict:
    n_classes = sub.shape[2] if sub.ndim == 3 else 0
    y_enc, _ = encode_target(y, sub.shape[1], n_classes)
    ensemble = np.tensordot(w, sub.astype(np.float64), axes=1)
    if labels is not None:
        member_error = (labels != y_enc).mean(axis=1)
        return {
            "ensemble_error": float((np.argmax(ensemble, axis=1) != y_enc).mean()),
            "mean_member_error": float(member_error @ w),
        }
    member_mse = ((sub - y_enc) ** 2).mean(axis=1)
    return {
        "ensemble_error": float(((ensemble - y_enc) ** 2).mean()),
        "mean_member_error": float(member_mse @ w),
        "ambiguity": float((((sub - ensemble) ** 2).mean(axis=1)) @ w),
    }
