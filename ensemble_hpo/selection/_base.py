"""Selector base class and two baseline selectors."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from ensemble_hpo._checks import CLASSIFICATION, check_predictions, check_same_layout
from ensemble_hpo._folds import Folds, check_groups, make_folds
from ensemble_hpo.metrics import (
    PredictionScorer,
    check_scorer_fits,
    check_scorer_task,
    get_prediction_scorer,
    stage_scoring,
)

from ._library import CandidateLibrary, blend, ensemble_score
from ._metrics import BatchMetric, make_batch_metric
from ._validation import check_int, check_selection_data

Scoring = str | Callable | PredictionScorer | None


class BaseSelector(BaseEstimator, ABC):
    """Choose non-negative ensemble weights for a library of stored predictions.

    Subclasses implement :meth:`_fit`, which receives validated inputs and
    returns one weight per model. :meth:`fit` handles validation, label
    encoding and the fitted attributes shared by all selectors.

    Attributes (after ``fit``)
    --------------------------
    weights_ : ndarray of shape (n_models,)
        Non-negative weights summing to 1.
    score_ : float
        Score (greater is better) of the weighted ensemble on the selection data.
    task_ : {"classification", "regression"}
        Inferred from the predictions' shape (3-D means class probabilities).
    classes_ : ndarray or None
        Original labels of the probability columns (``np.unique(y)`` when ``y``
        is not already encoded as ``0..n_classes-1``); None for regression.
    n_models_ : int
        Library size.
    """

    scoring: Scoring

    def fit(
        self, predictions: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None,
        groups: np.ndarray | None = None,
    ) -> BaseSelector:
        """Select ensemble weights.

        Parameters
        ----------
        predictions : ndarray of shape (n_models, n_samples) or (n_models, n_samples, n_classes)
            Regression values (2-D) or class probabilities (3-D), typically
            out-of-fold. float32 input is kept float32.
        y : ndarray of shape (n_samples,)
            Targets. For classification either integers ``0..n_classes-1`` or
            exactly ``n_classes`` distinct labels, mapped to columns in sorted order.
        sample_weight : ndarray of shape (n_samples,), default=None
            Per-sample weights passed to the metric.
        groups : ndarray of shape (n_samples,), default=None
            Group labels: selectors with an inner cross-validation (``greedy_cv``)
            keep each group on one side of every inner split.

        Returns
        -------
        self : BaseSelector
        """
        self._validate_params()
        data = check_selection_data(predictions, y, sample_weight)
        self.task_ = data.task
        self.classes_ = data.classes
        self.n_models_ = data.n_models
        # Standalone use too (audit: r2 on class probabilities scored the class codes and
        # chose weights; roc_auc on three classes failed deep in scikit-learn).
        check_scorer_fits(get_prediction_scorer(self._label_scoring(), data.task), data.y,
                          None if data.classes is None else len(data.classes),
                          weighted=data.sample_weight is not None)
        # Transient, not a parameter or fitted attribute: only _fit's inner folds read it.
        self._fit_groups = check_groups(groups, data.y.shape[0])
        try:
            weights = self._fit(data.predictions, data.y, data.sample_weight)
        finally:
            del self._fit_groups
        self.weights_ = weights / weights.sum()
        metric = self._batch_metric(data.y, data.sample_weight)
        self.score_ = ensemble_score(data.predictions, self.weights_, metric)
        return self

    def predict_ensemble(self, predictions: np.ndarray) -> np.ndarray:
        """Weighted average of ``predictions`` (same layout as in ``fit``), float64.

        Checked as ``fit`` checks them (audit: a 2-D array for a classification fit, NaN, or
        rows summing to 5 were averaged into "probabilities" such as [1.13, 3.87])."""
        check_is_fitted(self, "weights_")
        preds = check_predictions(predictions)
        check_same_layout(preds, self.n_models_, None if self.classes_ is None else len(self.classes_))
        return blend(preds, self.weights_)

    def _validate_params(self, task: str | None = None) -> None:
        """Check the options without data; with ``task`` (before a search), also that the
        scorer suits it: a selector scoring r2 on class probabilities passed the estimator's
        checks, and its fit failed after the whole search (audit)."""
        scorer = get_prediction_scorer(self.scoring, task or "regression")  # names: any task
        if task is not None:
            check_scorer_task(scorer, task)

    def _label_scoring(self) -> Scoring:
        """``scoring`` on the labels of ``y`` as given: a scikit-learn scorer that reads labels
        (``pos_label``, ``labels=``) scores ``classes_``, not their codes ``0..k-1``."""
        return stage_scoring(self.scoring, self.task_, self.classes_)

    def _batch_metric(
        self, y: np.ndarray, sample_weight: np.ndarray | None, fast: bool = True
    ) -> BatchMetric:
        n_classes = 0 if self.classes_ is None else len(self.classes_)
        return make_batch_metric(self._label_scoring(), self.task_, n_classes, y, sample_weight,
                                 fast)

    def _held_out_folds(self, y: np.ndarray, cv: int, random_state: int | None) -> Folds | None:
        """The selector's own folds over its rows, for scoring selections on rows they were
        not fitted on: ``cv`` folds, or fewer where the rows cannot fill them (at least 2 rows
        per fold, no more folds than the largest class has rows, or than there are groups);
        None when not even 2 fit. The one rule of every selector that holds rows out."""
        n_folds = min(cv, len(y) // 2)
        if self.task_ == CLASSIFICATION:
            n_folds = min(n_folds, int(np.bincount(y).max()))
        groups = getattr(self, "_fit_groups", None)
        if groups is not None:
            n_folds = min(n_folds, len(np.unique(groups)))
        if n_folds < 2:
            return None
        return make_folds(n_folds, y, task=self.task_, groups=groups, random_state=random_state)

    def _single_scores(
        self, predictions: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None
    ) -> np.ndarray:
        library = CandidateLibrary(predictions, self._batch_metric(y, sample_weight))
        return library.single_scores()

    @abstractmethod
    def _fit(
        self, predictions: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None
    ) -> np.ndarray:
        """Return non-negative weights of length n_models (normalised by ``fit``)."""


def rows_of(sample_weight: np.ndarray | None, rows: np.ndarray) -> np.ndarray | None:
    """The weights of ``rows`` (None without weights)."""
    return None if sample_weight is None else sample_weight[rows]


def fold_totals(splits: Folds, sample_weight: np.ndarray | None) -> np.ndarray:
    """Each held-out fold's share in a mean of fold scores: its rows, or its weight total
    (by rows, a fold of light rows counted as much as one of heavy rows; audit)."""
    if sample_weight is None:
        return np.array([len(valid) for _, valid in splits], dtype=float)
    return np.array([sample_weight[valid].sum() for _, valid in splits], dtype=float)


def top_models(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` best scores; ties go to the lower index."""
    ranked = np.argsort(-np.nan_to_num(scores, nan=-np.inf), kind="stable")
    return ranked[:k]


class BestSingleSelector(BaseSelector):
    """Put all weight on the single best model (the classic "pick the HPO winner").

    Parameters
    ----------
    scoring : str, callable, PredictionScorer or None, default=None
        Greater-is-better scorer; None means neg_log_loss (3-D) or neg RMSE (2-D).

    Examples
    --------
    >>> import numpy as np
    >>> preds = np.array([[1.0, 2.0, 3.0], [1.1, 2.1, 2.9]])
    >>> BestSingleSelector().fit(preds, np.array([1.1, 2.1, 3.0])).weights_
    array([0., 1.])
    """

    def __init__(self, *, scoring: Scoring = None) -> None:
        self.scoring = scoring

    def _fit(
        self, predictions: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None
    ) -> np.ndarray:
        weights = np.zeros(predictions.shape[0])
        weights[top_models(self._single_scores(predictions, y, sample_weight), 1)] = 1.0
        return weights


class UniformTopKSelector(BaseSelector):
    """Average the ``k`` best models with equal weights.

    Parameters
    ----------
    k : int, default=5
        Number of models to average (capped at the library size).
    scoring : str, callable, PredictionScorer or None, default=None
        Greater-is-better scorer; None means neg_log_loss (3-D) or neg RMSE (2-D).

    Examples
    --------
    >>> import numpy as np
    >>> preds = np.array([[1.0, 2.0], [5.0, 5.0], [1.2, 2.2]])
    >>> UniformTopKSelector(k=2).fit(preds, np.array([1.0, 2.0])).weights_
    array([0.5, 0. , 0.5])
    """

    def __init__(self, *, k: int = 5, scoring: Scoring = None) -> None:
        self.k = k
        self.scoring = scoring

    def _validate_params(self, task: str | None = None) -> None:
        check_int(self.k, "k", 1)
        super()._validate_params(task)

    def _fit(
        self, predictions: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None
    ) -> np.ndarray:
        weights = np.zeros(predictions.shape[0])
        weights[top_models(self._single_scores(predictions, y, sample_weight), self.k)] = 1.0
        return weights
