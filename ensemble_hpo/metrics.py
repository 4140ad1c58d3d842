"""Scoring of precomputed predictions with any scikit-learn scorer.

Every stage (search, selection, fusion) scores *predictions*, not estimators:
the out-of-fold predictions are already there and refitting to score them would
waste the whole point of keeping them. scikit-learn scorers are defined on
estimators, so :class:`PredictionScorer` hands them a tiny estimator whose
``predict``/``predict_proba`` return the stored array. That keeps the full
scorer zoo (names, ``make_scorer`` objects, ``pos_label``...) without touching
scikit-learn's private scorer attributes.

Conventions
-----------
* Classification: ``y_true`` holds encoded labels ``0..n_classes-1`` and
  ``y_pred`` is a probability array of shape ``(n_samples, n_classes)``. Given the
  original ``classes``, a scikit-learn scorer sees the user's labels (its ``pos_label``
  means what it means to scikit-learn); without them, the encoded ones.
* Regression: ``y_pred`` has shape ``(n_samples,)``.
* Every score is *greater is better* (scikit-learn's scorer sign convention).
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.metrics import get_scorer

from ensemble_hpo._checks import CLASSIFICATION, REGRESSION
from ensemble_hpo._compat import (
    is_classification_metric,
    is_regression_metric,
    scorer_reads_labels,
    scores_predicted_labels,
    with_every_label,
)

__all__ = ["PredictionScorer", "check_scorer_fits", "check_scorer_task", "default_scoring",
           "get_prediction_scorer", "stage_scoring"]



def default_scoring(task: str) -> str:
    """Return the default scorer name for ``task`` ('classification' or 'regression')."""
    return "neg_log_loss" if task == CLASSIFICATION else "neg_root_mean_squared_error"


class _PrecomputedClassifier(ClassifierMixin, BaseEstimator):
    """Stand-in estimator that replays stored class probabilities."""

    def __init__(self, proba: np.ndarray | None = None) -> None:
        self.proba = proba

    def _init_fitted(self, classes: np.ndarray | None = None) -> _PrecomputedClassifier:
        self.classes_ = np.arange(self.proba.shape[1]) if classes is None else classes
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        return self.proba

    def predict(self, X: Any) -> np.ndarray:
        return self.classes_[np.argmax(self.proba, axis=1)]


class _PrecomputedRegressor(RegressorMixin, BaseEstimator):
    """Stand-in estimator that replays stored regression predictions."""

    def __init__(self, values: np.ndarray | None = None) -> None:
        self.values = values

    def predict(self, X: Any) -> np.ndarray:
        return self.values


class PredictionScorer:
    """Score precomputed predictions with a scikit-learn scorer.

    Parameters
    ----------
    scoring : str or callable
        A scikit-learn scorer name (``"neg_log_loss"``, ``"roc_auc"``, ...), a
        scorer made with :func:`sklearn.metrics.make_scorer`, a scorer callable as
        scikit-learn takes them, ``f(estimator, X, y) -> float`` (three required
        parameters; ``estimator`` replays the stored predictions), or a plain callable
        ``f(y_true, y_pred) -> float``; greater is better.
    task : {"classification", "regression"}
        What kind of predictions will be scored.
    classes : array-like, default=None
        The original class labels, in the order of the encoded labels and probability
        columns. A scikit-learn scorer then scores the user's labels: ``"f1"`` on labels
        ``[1, 2]`` takes class 1 as positive, as scikit-learn does, not the encoded 1.

    Examples
    --------
    >>> import numpy as np
    >>> scorer = PredictionScorer("accuracy", task="classification")
    >>> scorer(np.array([0, 1, 1]), np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]]))
    0.666...
    """

    # Scorers pickled before labels were decoded (inside saved models) read as encoded.
    classes: np.ndarray | None = None
    # A user's scorer function taking (estimator, X, y); decided once, not per call (it is
    # called for every fold of every candidate). Scorers pickled before it existed: False.
    _estimator_style: bool = False

    def __init__(self, scoring: str | Callable, task: str, classes: Any = None) -> None:
        if task not in (CLASSIFICATION, REGRESSION):
            raise ValueError(
                f"The 'task' parameter must be 'classification' or 'regression'. Got {task!r} instead."
            )
        self.task = task
        self.scoring = scoring
        self.classes = None if classes is None or task != CLASSIFICATION else np.asarray(classes)
        self.name = scoring if isinstance(scoring, str) else getattr(
            scoring, "__name__", type(scoring).__name__
        )
        self._scorer = self._resolve(scoring)
        self._estimator_style = (not isinstance(scoring, str) and not hasattr(scoring, "_score_func")
                                 and _takes_estimator(scoring))

    def _resolve(self, scoring: str | Callable) -> Callable | None:
        if isinstance(scoring, str):
            if scoring == "neg_log_loss" and self.task == CLASSIFICATION:
                return None  # direct path: needs explicit labels for folds missing a class
            try:
                return get_scorer(scoring)
            except ValueError as exc:
                raise ValueError(
                    "The 'scoring' parameter must be a scikit-learn scorer name or a callable. "
                    f"Got {scoring!r} instead."
                ) from exc
        if callable(scoring):
            _check_not_a_loss(scoring)
            return scoring
        raise ValueError(
            "The 'scoring' parameter must be a scikit-learn scorer name or a callable. "
            f"Got {scoring!r} instead."
        )

    @property
    def _is_sklearn_scorer(self) -> bool:
        # make_scorer objects and get_scorer results take (estimator, X, y), as do a user's
        # scorer functions written for scikit-learn (they were called as f(y_true, y_pred)
        # and failed: "missing 1 required positional argument: 'y'").
        return (hasattr(self._scorer, "_score_func") or isinstance(self.scoring, str)
                or self._estimator_style)

    def __call__(
        self, y_true: np.ndarray, y_pred: np.ndarray, sample_weight: np.ndarray | None = None
    ) -> float:
        y_pred = np.asarray(y_pred, dtype=np.float64)
        if self.task == CLASSIFICATION:
            # float32 storage leaves rows summing to 1 only within ~1e-7; renormalise so
            # scikit-learn's probability checks do not warn on every call.
            y_pred = y_pred / np.clip(y_pred.sum(axis=1, keepdims=True), 1e-12, None)
        if self._scorer is None:
            return -_log_loss(np.asarray(y_true), y_pred, sample_weight)
        kwargs = {} if sample_weight is None else {"sample_weight": sample_weight}
        if not self._is_sklearn_scorer:
            return float(self._scorer(y_true, y_pred, **kwargs))
        scorer = self._scorer
        if self.task == CLASSIFICATION:
            stand_in = _PrecomputedClassifier(y_pred)._init_fitted(self.classes)
            scorer = self._for_classes_in(np.asarray(y_true, dtype=int), y_pred.shape[1])
            if self.classes is not None:
                y_true = self.classes[np.asarray(y_true, dtype=int)]
        else:
            stand_in = _PrecomputedRegressor(y_pred)
        return float(scorer(stand_in, y_pred, y_true, **kwargs))

    @property
    def scores_labels_only(self) -> bool:
        """Whether the score depends on the predicted classes (the probabilities' argmax) only:
        a scikit-learn scorer on ``predict`` (f1, precision, recall, ...), for classification."""
        return (self.task == CLASSIFICATION and self._scorer is not None
                and hasattr(self._scorer, "_score_func") and scores_predicted_labels(self._scorer))

    def _for_classes_in(self, y_true: np.ndarray, n_classes: int) -> Callable:
        """The scorer, told every class when ``y_true`` (a held-out fold) misses one."""
        if np.bincount(y_true, minlength=n_classes).all():
            return self._scorer
        labels = np.arange(n_classes) if self.classes is None else self.classes
        return with_every_label(self._scorer, labels) or self._scorer

    def __repr__(self) -> str:
        return f"PredictionScorer({self.name!r}, task={self.task!r})"


def _takes_estimator(function: Callable) -> bool:
    """Whether ``function`` has three required positional parameters, (estimator, X, y)."""
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):  # builtins without a signature: plain metric functions
        return False
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    required = [p for p in parameters if p.kind in positional and p.default is p.empty]
    return len(required) >= 3


def _check_not_a_loss(function: Callable) -> None:
    """Refuse scikit-learn's loss functions given as plain callables: ``scoring`` is greater is
    better, so ``mean_absolute_error`` picked the worst candidate and reported +61.2 (audit)."""
    name = getattr(function, "__name__", "")
    if getattr(function, "__module__", "").startswith("sklearn.metrics") and name.endswith(
            ("_error", "_loss", "_deviance")):
        raise ValueError(
            "The 'scoring' parameter must be greater-is-better, and a plain callable is taken as "
            f"such. Got scikit-learn's loss {name!r} instead: pass its scorer name "
            f"('neg_{name}' where scikit-learn has one) or make_scorer({name}, "
            "greater_is_better=False).")


def _log_loss(y_true: np.ndarray, proba: np.ndarray, sample_weight: np.ndarray | None) -> float:
    """Log loss of encoded labels, numerically equal to scikit-learn's ``log_loss``.

    scikit-learn re-validates and label-binarises on every call (tens of ms); this
    runs once per fold of every candidate, so it is computed directly. Probabilities
    are clipped to [eps, 1] like scikit-learn does (rows are already normalised).
    """
    eps = np.finfo(proba.dtype).eps
    picked = np.clip(proba[np.arange(len(y_true)), y_true.astype(int)], eps, 1.0)
    return float(np.average(-np.log(picked), weights=sample_weight))


def get_prediction_scorer(scoring: str | Callable | PredictionScorer | None, task: str,
                          classes: Any = None) -> PredictionScorer:
    """Return a :class:`PredictionScorer`, using the task default when ``scoring`` is None.

    ``classes`` (the original labels) makes scikit-learn scorers score the user's labels.
    """
    if isinstance(scoring, PredictionScorer):
        return scoring
    return PredictionScorer(default_scoring(task) if scoring is None else scoring, task=task,
                            classes=classes)


def stage_scoring(scoring: str | Callable | PredictionScorer | None, task: str, classes: Any) -> Any:
    """What the estimator hands its stages as ``scoring`` for a target with labels ``classes``.

    A scikit-learn scorer on labels other than ``0..k-1`` becomes a :class:`PredictionScorer`
    that scores the user's labels (``pos_label``, ``labels=`` mean the user's classes);
    otherwise ``scoring`` is passed as it is (the encoded labels are the user's).
    """
    if task != CLASSIFICATION or classes is None or isinstance(scoring, PredictionScorer):
        return scoring
    classes = np.asarray(classes)
    if classes.dtype.kind in "iu" and np.array_equal(classes, np.arange(len(classes))):
        return scoring
    scorer = get_prediction_scorer(scoring, task, classes=classes)
    # Decoding costs: scikit-learn sorts object labels on every call (f1_macro 4.7 ms vs 32.6
    # ms per call on 20,000 string labels), so only scorers whose value depends on it do.
    # A user's (estimator, X, y) function may compare with any label: always decoded.
    reads = scorer._is_sklearn_scorer and (scorer._estimator_style
                                           or scorer_reads_labels(scorer._scorer))
    return scorer if reads else scoring


def check_scorer_task(scorer: PredictionScorer, task: str, name: str = "scoring") -> None:
    """Refuse, without data, a scikit-learn metric of the other task: a regression metric for
    class probabilities would score the predicted class codes as numbers (r2 0.89 for selection
    weights of any quality), a classification metric fails on regression values."""
    if task == CLASSIFICATION and is_regression_metric(scorer._scorer):
        raise ValueError(f"The '{name}' parameter must be a classification metric for a "
                         f"classification target. Got {scorer.name!r} instead, a regression metric "
                         "(it would score the predicted class codes as numbers).")
    if task == REGRESSION and is_classification_metric(scorer._scorer):
        raise ValueError(f"The '{name}' parameter must be a regression metric for a regression "
                         f"target. Got {scorer.name!r} instead, a classification metric.")


def _some_rows(y: np.ndarray, n_classes: int | None, n_rows: int = 1000) -> np.ndarray:
    """``y`` itself, or about ``n_rows`` of its rows spread over it, with the first row of
    every class ``0..n_classes-1`` (found by comparisons: sorting 600,000 labels took 15 MB)."""
    if len(y) <= n_rows:
        return y
    spread = np.linspace(0, len(y) - 1, n_rows).astype(np.intp)
    if n_classes is not None:
        first = [int(np.argmax(y == c)) for c in range(n_classes)]
        spread = np.union1d(spread, first)
    return y[spread]


def check_scorer_fits(scorer: PredictionScorer, y: np.ndarray, n_classes: int | None, *,
                      weighted: bool = False) -> None:
    """Score perfect predictions of ``y`` once, so that a scorer that cannot score this target
    (``pos_label=1`` on string labels, a classification metric on a regression target, a
    function without ``sample_weight`` when ``weighted``...) fails before any candidate is
    trained, not in every one of them.

    Large targets are checked on at most about 1,000 rows that hold every label (selectors
    run on memory-mapped libraries of any length and must not hold an (n, k) array)."""
    check_scorer_task(scorer, CLASSIFICATION if n_classes is not None else REGRESSION)
    y = _some_rows(np.asarray(y), n_classes)
    if n_classes is None:  # inside the target's range, never at its edge (Poisson needs > 0)
        pred = 0.5 * np.asarray(y, dtype=np.float64) + 0.5 * float(np.mean(y))
    else:  # right, but not certain: no metric divides by an empty class or a zero error
        pred = 0.75 * np.eye(n_classes)[np.asarray(y, dtype=int)] + 0.25 / n_classes
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            scorer(y, pred, sample_weight=np.ones(len(y)) if weighted else None)
    except Exception as exc:  # noqa: BLE001 - any failure here would fail every candidate
        weights = " with sample_weight (fit was given weights)" if weighted else ""
        raise ValueError(f"The 'scoring' parameter must be able to score this target{weights}. "
                         f"Got {scorer.name!r} instead, which fails: {exc}") from exc
