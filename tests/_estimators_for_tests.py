"""Importable toy estimators for failure-handling tests (worker processes must import them)."""

from __future__ import annotations

import multiprocessing
import os
import time

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression


class FlakyClassifier(ClassifierMixin, BaseEstimator):
    """Logistic regression that raises, predicts NaN or (in a worker process) ends its process,
    as a segfault in native code would, depending on ``mode``."""

    def __init__(self, *, mode: str = "ok") -> None:
        self.mode = mode

    def fit(self, X, y):
        if self.mode == "raise":
            raise RuntimeError("boom: this configuration cannot be trained")
        if self.mode == "crash":
            if multiprocessing.parent_process() is None:  # never the test process itself
                raise RuntimeError("crash mode is for worker processes")
            os._exit(139)
        self.model_ = LogisticRegression(max_iter=500).fit(X, y)
        self.classes_ = self.model_.classes_
        return self

    def predict_proba(self, X):
        proba = self.model_.predict_proba(X)
        return np.full_like(proba, np.nan) if self.mode == "nan" else proba

    def predict(self, X):
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


class SleepyClassifier(ClassifierMixin, BaseEstimator):
    """Logistic regression that sleeps ``sleep`` seconds in fit (a hanging candidate)."""

    def __init__(self, *, sleep: float = 0.0) -> None:
        self.sleep = sleep

    def fit(self, X, y):
        time.sleep(self.sleep)
        self.model_ = LogisticRegression(max_iter=500).fit(X, y)
        self.classes_ = self.model_.classes_
        return self

    def predict_proba(self, X):
        return self.model_.predict_proba(X)

    def predict(self, X):
        return self.model_.predict(X)
