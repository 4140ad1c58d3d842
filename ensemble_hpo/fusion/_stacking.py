"""Stacking: a meta-learner trained on the members' out-of-fold predictions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, clone
from sklearn.linear_model import LogisticRegression, Ridge, RidgeCV
from sklearn.metrics import r2_score
from sklearn.model_selection import GroupKFold
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import has_fit_parameter

from .._checks import CLASSIFICATION
from .._folds import check_cv, make_folds
from .._outputs import model_output
from ..metrics import (
    PredictionScorer,
    check_scorer_fits,
    check_scorer_task,
    get_prediction_scorer,
)
from ._base import BaseFuser

__all__ = ["Stacking"]

_PROBA_FLOOR = 1e-15


_RIDGE_ALPHAS = np.logspace(-3, 3, 13)


class LastStepWeights(Pipeline):
    """A pipeline whose ``fit`` takes ``sample_weight`` for its last step.

    scikit-learn's stacking estimators hand ``sample_weight`` to the final estimator as is,
    which a plain pipeline refuses: a refit of a stacking export with weights failed (audit).
    """

    def fit(self, X: Any, y: Any = None, sample_weight: Any = None, **params: Any) -> LastStepWeights:
        if sample_weight is not None:
            params[f"{self.steps[-1][0]}__sample_weight"] = sample_weight
        return super().fit(X, y, **params)


def _scaled(model: BaseEstimator) -> LastStepWeights:
    return LastStepWeights(make_pipeline(StandardScaler(), model).steps)


def default_final_estimator(task: str) -> BaseEstimator:
    """Regularised linear meta-learner; scaling keeps passthrough features comparable."""
    if task == CLASSIFICATION:
        return _scaled(LogisticRegression(C=1.0, max_iter=1000))
    return _scaled(RidgeCV(alphas=_RIDGE_ALPHAS))


def _grouped_ridge(features: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None,
                   groups: np.ndarray) -> BaseEstimator | None:
    """The default regression meta-learner with its penalty chosen on group folds of these
    rows (None with fewer than 2 groups).

    ``RidgeCV`` chooses it leaving one row out, so a row's group mates helped predict it
    (audit). The chosen penalty is then fixed (a one-value ``RidgeCV``): a precomputed list
    of folds in the estimator would break a refit of the export on other rows.
    """
    n_groups = len(np.unique(groups))
    if n_groups < 2:
        return None
    folds = list(GroupKFold(min(5, n_groups)).split(features, groups=groups))
    alpha = max(_RIDGE_ALPHAS, key=lambda a: _held_out_r2(a, features, y, sample_weight, folds))
    return _scaled(RidgeCV(alphas=[alpha]))


def _held_out_r2(alpha: float, features: np.ndarray, y: np.ndarray,
                 sample_weight: np.ndarray | None, folds: list[Any]) -> float:
    """Mean weighted R^2 of ridge(``alpha``) on the held-out rows of ``folds``; unweighted,
    what ``RidgeCV(cv=folds)`` maximises.

    Written here because ``RidgeCV(cv=folds)`` scores a fold whose held-out (or training)
    rows all weigh 0 as NaN, or fails, for every penalty and then takes the first one: such
    folds are left out. (Whether it weighs the scores at all depends on the scikit-learn
    version; 1.9 does.)
    """
    weight = np.ones(len(y)) if sample_weight is None else sample_weight
    scores = []
    for train, test in folds:
        if weight[test].sum() > 0 and weight[train].sum() > 0:
            model = fit_final(_scaled(Ridge(alpha=alpha)), features[train], y[train], weight[train])
            scores.append(r2_score(y[test], model.predict(features[test]), sample_weight=weight[test]))
    return float(np.mean(scores)) if scores else 0.0


def log_ratio_features(predictions: np.ndarray) -> np.ndarray:
    """Log-probabilities relative to the last class, shape (n_samples, n_members * (k-1)).

    Dropping the last column removes the sum-to-one redundancy (for binary this
    is each member's logit); a multinomial model on these features can still
    reproduce any single member exactly.
    """
    log_proba = np.log(np.clip(predictions, _PROBA_FLOOR, 1.0))
    ratios = log_proba[..., :-1] - log_proba[..., -1:]
    return ratios.transpose(1, 0, 2).reshape(predictions.shape[1], -1)


def fit_final(
    estimator: BaseEstimator, features: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None
) -> BaseEstimator:
    """Fit ``estimator``, routing ``sample_weight`` to a pipeline's last step if needed."""
    if sample_weight is None:
        return estimator.fit(features, y)
    if isinstance(estimator, Pipeline):
        last_step = estimator.steps[-1][0]
        return estimator.fit(features, y, **{f"{last_step}__sample_weight": sample_weight})
    if not has_fit_parameter(estimator, "sample_weight"):
        raise ValueError(
            "The 'final_estimator' parameter must accept sample_weight in fit when sample_weight "
            f"is given. Got {type(estimator).__name__} instead."
        )
    return estimator.fit(features, y, sample_weight=sample_weight)


class Stacking(BaseFuser):
    """Meta-learner fitted on the members' out-of-fold predictions.

    Classification features are each member's log-probabilities relative to
    the last class (one logit per member for binary); regression features are
    the raw member predictions. Only members with a positive selection weight
    are used. Because the meta-learner is itself fitted, its score on the data
    it was trained on is optimistic: ``cv_score_`` is instead the score of
    ``cv_predictions_``, each row predicted by a meta-learner fitted on the
    other folds only.

    Parameters
    ----------
    final_estimator : estimator or None, default=None
        Any scikit-learn estimator (a classifier with ``predict_proba`` for
        classification). None uses ``StandardScaler`` + multinomial
        ``LogisticRegression`` (classification) or ``StandardScaler`` +
        ``RidgeCV`` (regression).
    passthrough : bool, default=False
        Append the original features ``X`` to the meta features.
    cv : int or cross-validation splitter, default=5
        Folds for the honest ``cv_score_``; an int gives shuffled (stratified)
        K-fold. Test folds must partition the samples.
    scoring : str, callable, PredictionScorer or None, default=None
        Greater-is-better scorer for ``cv_score_``; None is the task default
        of :mod:`ensemble_hpo.metrics`.
    random_state : int or None, default=None
        Seed of the fold shuffling.

    Attributes
    ----------
    weights_ : None
        Stacking has no member weights.
    members_ : ndarray of int
        Indices of the members used (positive selection weight).
    n_meta_features_ : int
        Number of columns seen by the meta-learner.
    final_estimator_ : estimator
        Meta-learner refitted on all rows; used by :meth:`combine`.
    cv_predictions_ : ndarray of shape (n_samples, n_classes) or (n_samples,)
        Out-of-fold fused predictions of the meta-learner.
    cv_score_ : float
        Score of ``cv_predictions_`` (greater is better).
    scorer_ : PredictionScorer
        The scorer used for ``cv_score_``.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 2, size=60)
    >>> p = np.clip(0.5 + 0.3 * (2 * y - 1) + rng.normal(0, 0.2, size=(3, 60)), 0.01, 0.99)
    >>> P = np.stack([1 - p, p], axis=2)
    >>> fuser = Stacking(random_state=0).fit(P, y)
    >>> fuser.cv_predictions_.shape, fuser.combine(P).shape
    ((60, 2), (60, 2))
    """

    sklearn_export = "stacking"

    def __init__(
        self,
        *,
        final_estimator: BaseEstimator | None = None,
        passthrough: bool = False,
        cv: Any = 5,
        scoring: str | Callable | PredictionScorer | None = None,
        random_state: int | None = None,
    ) -> None:
        self.final_estimator = final_estimator
        self.passthrough = passthrough
        self.cv = cv
        self.scoring = scoring
        self.random_state = random_state

    def _fit(self, predictions, y, weights, X, sample_weight) -> None:
        estimator = self._validated_estimator()
        self.weights_ = None
        self.members_ = np.flatnonzero(weights > 0)
        features = self._meta_features(predictions, X)
        self.n_meta_features_ = features.shape[1]
        self.scorer_ = get_prediction_scorer(self.scoring, self.task_)
        # Before fitting any meta-learner.
        check_scorer_fits(self.scorer_, y, self.n_classes_, weighted=sample_weight is not None)
        self.cv_predictions_ = self._cross_predict(estimator, features, y, sample_weight)
        self.cv_score_ = self.scorer_(y, self.cv_predictions_, sample_weight=sample_weight)
        self.final_estimator_ = self._fit_final(estimator, features, y, sample_weight,
                                                getattr(self, "_fit_groups", None))

    def _combine(self, predictions: np.ndarray, X: np.ndarray | None) -> np.ndarray:
        return self._predict(self.final_estimator_, self._meta_features(predictions, X))

    def _check_params(self, task: str) -> None:
        if not isinstance(self.passthrough, (bool, np.bool_)):
            raise ValueError(
                f"The 'passthrough' parameter must be a bool. Got {self.passthrough!r} instead."
            )
        check_cv(self.cv)  # the estimator's rule (cv='a' failed in split(); audit)
        check_scorer_task(get_prediction_scorer(self.scoring, task), task)
        needed = "predict_proba" if task == CLASSIFICATION else "predict"
        estimator = self.final_estimator
        if estimator is not None and not (hasattr(estimator, "fit") and hasattr(estimator, needed)):
            raise ValueError(
                f"The 'final_estimator' parameter must be an estimator with fit and {needed} "
                f"for {task}. Got {estimator!r} instead."
            )

    def _validated_estimator(self) -> BaseEstimator:
        if self.final_estimator is None:
            return default_final_estimator(self.task_)
        return self.final_estimator

    def _meta_features(self, predictions: np.ndarray, X: np.ndarray | None) -> np.ndarray:
        chosen = predictions[self.members_]
        features = log_ratio_features(chosen) if self.task_ == CLASSIFICATION else chosen.T
        if not self.passthrough:
            return features
        if X is None:
            raise ValueError(
                "The 'X' parameter must be given when passthrough=True. Got None instead."
            )
        return np.hstack([features, X])

    def _cross_predict(
        self,
        estimator: BaseEstimator,
        features: np.ndarray,
        y: np.ndarray,
        sample_weight: np.ndarray | None,
    ) -> np.ndarray:
        """Predict every row with a meta-learner that never saw it."""
        shape = (y.shape[0], self.n_classes_) if self.task_ == CLASSIFICATION else y.shape
        fused = np.empty(shape)
        groups = getattr(self, "_fit_groups", None)
        for train, test in make_folds(self.cv, y, task=self.task_, groups=groups,
                                       random_state=self.random_state):
            weight = None if sample_weight is None else sample_weight[train]
            model = self._fit_final(estimator, features[train], y[train], weight,
                                    None if groups is None else groups[train])
            fused[test] = self._predict(model, features[test])
        return fused

    def _fit_final(self, estimator: BaseEstimator, features: np.ndarray, y: np.ndarray,
                   sample_weight: np.ndarray | None, groups: np.ndarray | None) -> BaseEstimator:
        """A clone of ``estimator`` fitted on these rows; the default regression meta-learner
        chooses its penalty on their group folds when there are groups."""
        if groups is not None and self.final_estimator is None and self.task_ != CLASSIFICATION:
            estimator = _grouped_ridge(features, y, sample_weight, groups) or estimator
        return fit_final(clone(estimator), features, y, sample_weight)

    def _predict(self, model: BaseEstimator, features: np.ndarray) -> np.ndarray:
        # A training fold may miss a class; its column stays at probability zero.
        return model_output(model, features, self.task_, self.n_classes_)
