"""Abstract fuser and the input checks shared by every fusion method.

A fuser turns the stacked predictions of the selected ensemble members into
one prediction. Members' predictions arrive as a single array so that fusion
never has to know anything about the estimators that produced them:

* classification: ``(n_members, n_samples, n_classes)`` probabilities, ``y``
  encoded as integers ``0..n_classes-1``;
* regression: ``(n_members, n_samples)``.

The task is read from ``predictions.ndim``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_array, check_is_fitted

from .._checks import (
    CLASSIFICATION,
    check_predictions,
    check_same_layout,
    check_sample_weight,
    task_of_predictions,
)
from .._folds import check_groups

__all__ = ["BaseFuser"]

def check_weights(weights: Any, n_members: int) -> np.ndarray:
    """Return selection weights normalised to sum to one (uniform when None)."""
    if weights is None:
        return np.full(n_members, 1.0 / n_members)
    array = np.asarray(weights, dtype=np.float64)
    if array.shape != (n_members,):
        raise ValueError(
            f"The 'weights' parameter must be a 1-D array of length n_members={n_members}. "
            f"Got shape {array.shape} instead."
        )
    if not np.all(np.isfinite(array)) or np.any(array < 0) or array.sum() <= 0:
        raise ValueError(
            "The 'weights' parameter must be finite, non-negative and have a positive sum. "
            f"Got {array.tolist()} instead."
        )
    return array / array.sum()


def check_target(y: Any, n_samples: int, n_classes: int | None) -> np.ndarray:
    """Check ``y`` length and, for classification, its ``0..n_classes-1`` encoding."""
    array = np.asarray(y)
    if array.ndim != 1 or array.shape[0] != n_samples:
        raise ValueError(
            f"The 'y' parameter must be a 1-D array of length n_samples={n_samples}. "
            f"Got shape {array.shape} instead."
        )
    if n_classes is None:
        array = array.astype(np.float64)
        if not np.all(np.isfinite(array)):
            raise ValueError(
                "The 'y' parameter must be finite. Got NaN or infinite values instead."
            )
        return array
    valid = np.issubdtype(array.dtype, np.number) and np.all(np.mod(array, 1) == 0)
    if not valid or array.min() < 0 or array.max() >= n_classes:
        raise ValueError(
            f"The 'y' parameter must hold integer labels in 0..{n_classes - 1} for classification. "
            f"Got values {np.unique(array)[:10].tolist()} instead."
        )
    return array.astype(np.intp)


def check_features(X: Any, n_samples: int) -> np.ndarray | None:
    """Check the original features ``X`` (None is kept as None)."""
    if X is None:
        return None
    array = check_array(X, dtype="numeric", ensure_all_finite="allow-nan", input_name="X")
    if array.shape[0] != n_samples:
        raise ValueError(
            f"The 'X' parameter must have n_samples={n_samples} rows. "
            f"Got {array.shape[0]} rows instead."
        )
    return array


def is_positive_int(value: Any, minimum: int = 1) -> bool:
    """Whether ``value`` is an int (not a bool) of at least ``minimum``."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= minimum


def normalize_rows(proba: np.ndarray) -> np.ndarray:
    """Rescale rows to sum to one; an all-zero row becomes uniform."""
    totals = proba.sum(axis=1, keepdims=True)
    uniform = np.full_like(proba, 1.0 / proba.shape[1])
    return np.where(totals > 0, proba / np.where(totals > 0, totals, 1.0), uniform)


class BaseFuser(BaseEstimator, ABC):
    """Base class of fusion methods working on stacked member predictions.

    Subclasses implement :meth:`_fit` (learn from out-of-fold predictions) and
    :meth:`_combine` (fuse new predictions); the public methods validate inputs.
    Two class attributes describe a fuser to the code that exports or trims an
    ensemble, so that code never dispatches on concrete classes:

    * ``learns_from_predictions``: whether ``_fit`` reads the predictions (False
      when the weights alone define the fuser, so trimming refits it without data);
    * ``sklearn_export``: the scikit-learn equivalent, ``"soft"`` or ``"hard"``
      (a VotingClassifier/Regressor with ``weights_``), ``"stacking"``, or None.

    Attributes
    ----------
    weights_ : ndarray of shape (n_members,) or None
        Fitted member weights (sum to one) where meaningful, None otherwise.
    task_ : {"classification", "regression"}
        Task inferred from ``predictions.ndim`` at fit time.
    n_members_ : int
        Number of members seen at fit time.
    n_classes_ : int or None
        Number of classes (None for regression).
    """

    learns_from_predictions: bool = True
    sklearn_export: str | None = None

    def fit(
        self,
        predictions: Any,
        y: Any,
        *,
        weights: Any = None,
        X: Any = None,
        sample_weight: Any = None,
        groups: Any = None,
    ) -> BaseFuser:
        """Fit the fuser on the members' out-of-fold predictions.

        Parameters
        ----------
        predictions : array-like of shape (n_members, n_samples[, n_classes])
            Members' out-of-fold predictions (probabilities for classification).
        y : array-like of shape (n_samples,)
            Target; integer labels ``0..n_classes-1`` for classification.
        weights : array-like of shape (n_members,), default=None
            Selection weights (e.g. from greedy ensemble selection); None means uniform.
        X : array-like of shape (n_samples, n_features), default=None
            Original features; only used by stacking with ``passthrough=True``.
        sample_weight : array-like of shape (n_samples,), default=None
            Per-sample weights, used by the fusers that learn from the data.
        groups : array-like of shape (n_samples,), default=None
            Group labels: fusers with an inner cross-validation (stacking) keep each
            group on one side of every inner split.

        Returns
        -------
        self : BaseFuser
        """
        predictions = check_predictions(predictions, dtype=np.float64)
        task = task_of_predictions(predictions)
        self._check_params(task)
        self.task_ = task
        self.n_members_, n_samples = predictions.shape[:2]
        self.n_classes_ = predictions.shape[2] if self.task_ == CLASSIFICATION else None
        y = check_target(y, n_samples, self.n_classes_)
        weights = check_weights(weights, self.n_members_)
        X = check_features(X, n_samples)
        sample_weight = check_sample_weight(sample_weight, n_samples)
        # Transient, not a parameter or fitted attribute: only _fit's inner folds read it.
        self._fit_groups = check_groups(groups, n_samples)
        try:
            self._fit(predictions, y, weights, X, sample_weight)
        finally:
            del self._fit_groups
        return self

    def combine(self, predictions: Any, X: Any = None) -> np.ndarray:
        """Fuse the members' predictions.

        Parameters
        ----------
        predictions : array-like of shape (n_members, n_samples[, n_classes])
            Members' predictions, laid out as at fit time.
        X : array-like of shape (n_samples, n_features), default=None
            Original features; required only by stacking with ``passthrough=True``.

        Returns
        -------
        fused : ndarray of shape (n_samples, n_classes) or (n_samples,)
            Probabilities whose rows sum to one (classification) or values (regression).
        """
        check_is_fitted(self, "task_")
        predictions = check_predictions(predictions, dtype=np.float64)
        check_same_layout(predictions, self.n_members_, self.n_classes_)
        X = check_features(X, predictions.shape[1])
        fused = self._combine(predictions, X)
        return normalize_rows(fused) if self.task_ == CLASSIFICATION else fused

    def _check_params(self, task: str) -> None:
        """Check the parameters for ``task``, without data: ``fit`` calls it first, and an
        estimator calls it before its search so that a bad option costs no training."""

    @abstractmethod
    def _fit(
        self,
        predictions: np.ndarray,
        y: np.ndarray,
        weights: np.ndarray,
        X: np.ndarray | None,
        sample_weight: np.ndarray | None,
    ) -> None:
        """Learn from validated inputs; ``weights`` are normalised to sum to one."""

    @abstractmethod
    def _combine(self, predictions: np.ndarray, X: np.ndarray | None) -> np.ndarray:
        """Fuse validated predictions; classification rows are normalised afterwards."""
