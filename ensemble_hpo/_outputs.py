"""One model's output as every stage expects it: values, or probabilities in every class's column.

A model fitted on a subset of the rows (a CV fold, a learning-curve subset, a stacking
fold) may never have seen a rare class; its ``predict_proba`` then has fewer columns.
They are placed by the model's own ``classes_`` (encoded labels ``0..n_classes-1``), and a
class it never saw gets probability zero.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ensemble_hpo._checks import CLASSIFICATION

__all__ = ["copy_input_attributes", "model_output"]


def model_output(model: Any, X: Any, task: str, n_classes: int | None) -> np.ndarray:
    """Regression values of shape (n,), or class probabilities of shape (n, n_classes)."""
    if task != CLASSIFICATION:
        return np.asarray(model.predict(X), dtype=np.float64).reshape(-1)
    raw = np.asarray(model.predict_proba(X), dtype=np.float64)
    proba = np.zeros((raw.shape[0], n_classes))
    proba[:, np.asarray(model.classes_, dtype=np.intp)] = raw
    return proba


def copy_input_attributes(target: Any, source: Any) -> None:
    """Give a wrapper the input facts (``n_features_in_``, ``feature_names_in_``) of the
    fitted model it wraps, as scikit-learn estimators expose them."""
    for name in ("n_features_in_", "feature_names_in_"):
        try:
            setattr(target, name, getattr(source, name))
        except AttributeError:  # absent on the source, or read-only on the target (VotingClassifier)
            continue
