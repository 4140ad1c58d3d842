"""Early stopping of boosting models on an inner validation split of each training fold."""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, clone, is_classifier
from sklearn.model_selection import train_test_split
from sklearn.utils.validation import check_is_fitted

__all__ = ["EarlyStoppingClassifier", "EarlyStoppingRegressor"]


class _EarlyStoppingMixin:
    """Fit a booster with ``eval_set`` = a held-out slice of the training fold.

    Boosting libraries stop early only when given a validation set; taking it
    from the *training* part of each outer CV fold keeps the out-of-fold
    predictions honest (the outer validation rows never steer the stopping).
    """

    estimator: Any
    validation_fraction: float
    rounds: int
    random_state: int | None

    def fit(self, X: Any, y: np.ndarray, sample_weight: np.ndarray | None = None) -> Any:
        if not 0.0 < self.validation_fraction < 1.0:
            raise ValueError(
                "The 'validation_fraction' parameter must be in (0, 1). "
                f"Got {self.validation_fraction!r} instead."
            )
        model = clone(self.estimator)
        split = self._inner_split(X, y, sample_weight)
        if split is None:
            fit_kwargs = {} if sample_weight is None else {"sample_weight": sample_weight}
            self.estimator_ = model.fit(X, y, **fit_kwargs)
        else:
            X_fit, X_val, y_fit, y_val, w_fit = split
            model.set_params(early_stopping_rounds=self.rounds)
            fit_kwargs = {} if w_fit is None else {"sample_weight": w_fit}
            # XGBoost and CatBoost print per-round logs unless told not to; LightGBM's fit
            # has no such argument (its ``verbose`` constructor parameter silences it).
            if _fit_accepts(model, "verbose"):
                fit_kwargs["verbose"] = False
            # LightGBM >= 4.6 deprecates ``eval_set`` in favour of ``eval_X`` / ``eval_y``.
            if _fit_accepts(model, "eval_X"):
                fit_kwargs.update(eval_X=(X_val,), eval_y=(y_val,))
            else:
                fit_kwargs["eval_set"] = [(X_val, y_val)]
            self.estimator_ = model.fit(X_fit, y_fit, **fit_kwargs)
        self.best_iteration_ = _best_iteration(self.estimator_)
        if is_classifier(self):
            self.classes_ = self.estimator_.classes_
        self.n_features_in_ = getattr(self.estimator_, "n_features_in_", None)
        return self

    def _inner_split(self, X: Any, y: np.ndarray, sample_weight: np.ndarray | None) -> tuple | None:
        stratify = y if is_classifier(self) else None
        if stratify is not None:
            _, counts = np.unique(y, return_counts=True)
            n_val = int(np.ceil(self.validation_fraction * len(y)))
            # A stratified split needs two rows of each class and room for every class.
            if counts.min() < 2 or n_val < len(counts):
                return None
        arrays = [X, y] + ([] if sample_weight is None else [sample_weight])
        parts = train_test_split(
            *arrays, test_size=self.validation_fraction, stratify=stratify, random_state=self.random_state
        )
        w_fit = parts[4] if sample_weight is not None else None
        return parts[0], parts[1], parts[2], parts[3], w_fit

    def predict(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "estimator_")
        return self.estimator_.predict(X)


def _fit_accepts(model: Any, keyword: str) -> bool:
    try:
        return keyword in inspect.signature(model.fit).parameters
    except (TypeError, ValueError):
        return False


def _best_iteration(model: Any) -> int | None:
    """The early-stopped round: ``best_iteration`` (XGBoost) or ``best_iteration_`` (LightGBM, CatBoost)."""
    for attribute in ("best_iteration", "best_iteration_"):
        try:
            value = getattr(model, attribute)
        except (AttributeError, ValueError):  # XGBoost raises when it did not stop early
            continue
        if value is not None:
            return int(value)
    return None


class EarlyStoppingClassifier(_EarlyStoppingMixin, ClassifierMixin, BaseEstimator):
    """Classifier wrapper that early-stops a booster (XGBoost, LightGBM, CatBoost) on an inner split.

    Parameters
    ----------
    estimator : estimator
        A booster accepting ``early_stopping_rounds`` and ``fit(..., eval_set=...)``.
    validation_fraction : float, default=0.1
        Share of the training rows held out to decide when to stop.
    rounds : int, default=30
        Stop after this many rounds without improvement.
    random_state : int, default=None
        Seed of the inner split.

    Examples
    --------
    >>> from sklearn.datasets import load_breast_cancer
    >>> from xgboost import XGBClassifier
    >>> X, y = load_breast_cancer(return_X_y=True)
    >>> clf = EarlyStoppingClassifier(estimator=XGBClassifier(n_estimators=500, n_jobs=1))
    >>> clf.fit(X, y).best_iteration_ < 499
    True
    """

    def __init__(
        self, *, estimator: Any = None, validation_fraction: float = 0.1, rounds: int = 30,
        random_state: int | None = None,
    ) -> None:
        self.estimator = estimator
        self.validation_fraction = validation_fraction
        self.rounds = rounds
        self.random_state = random_state

    def predict_proba(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "estimator_")
        return self.estimator_.predict_proba(X)


class EarlyStoppingRegressor(_EarlyStoppingMixin, RegressorMixin, BaseEstimator):
    """Regressor wrapper that early-stops a booster on an inner split (see the classifier)."""

    def __init__(
        self, *, estimator: Any = None, validation_fraction: float = 0.1, rounds: int = 30,
        random_state: int | None = None,
    ) -> None:
        self.estimator = estimator
        self.validation_fraction = validation_fraction
        self.rounds = rounds
        self.random_state = random_state
