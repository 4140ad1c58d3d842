"""Test-split metrics, computed the same way for every system."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import log_loss, roc_auc_score, root_mean_squared_error

_EPS = 1e-15


def primary_metric(task: str) -> str:
    """The metric systems are ranked by: log loss (classification) or RMSE (regression)."""
    return "log_loss" if task == "classification" else "rmse"


def primary_loss(task: str, scores: dict[str, float]) -> float:
    """The primary metric's value from :func:`score_predictions`' output."""
    return scores[primary_metric(task)]


def score_predictions(task: str, y_true: np.ndarray, pred: np.ndarray,
                      n_classes: int | None) -> dict[str, float]:
    """Log loss and (macro OvR) ROC AUC for classification, RMSE for regression.

    Probabilities are clipped to ``[1e-15, 1]`` and renormalised first, so one
    overconfident system gets a large but finite log loss rather than ``inf``.
    """
    if task == "regression":
        return {"rmse": float(root_mean_squared_error(y_true, np.asarray(pred, dtype=float)))}
    proba = np.clip(np.asarray(pred, dtype=float), _EPS, 1.0)
    proba = proba / proba.sum(axis=1, keepdims=True)
    labels = list(range(int(n_classes)))
    out = {"log_loss": float(log_loss(y_true, proba, labels=labels))}
    if n_classes == 2:
        out["roc_auc"] = float(roc_auc_score(y_true, proba[:, 1]))
    else:
        out["roc_auc"] = float(roc_auc_score(y_true, proba, multi_class="ovr", average="macro",
                                             labels=labels))
    return out
