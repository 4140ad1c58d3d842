"""Member weights fitted by minimising the out-of-fold loss of the blend."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.optimize import minimize
from scipy.special import softmax

from .._checks import CLASSIFICATION, REGRESSION
from ..metrics import PredictionScorer, check_scorer_task, get_prediction_scorer
from ._averaging import weighted_mean
from ._base import BaseFuser, is_positive_int, normalize_rows

__all__ = ["OptimizedWeights", "loss_for_scoring"]

_ANALYTIC_LOSSES = {"log_loss": CLASSIFICATION, "squared_error": REGRESSION}
# Scorers whose optimum is exactly an analytic loss's minimum (RMSE and R² are monotone in MSE).
_SCORING_TO_LOSS = {"neg_log_loss": "log_loss", "neg_mean_squared_error": "squared_error",
                    "neg_root_mean_squared_error": "squared_error", "r2": "squared_error"}


def loss_for_scoring(scoring: str | Callable | PredictionScorer | None) -> Any:
    """The ``loss`` that makes :class:`OptimizedWeights` optimise the user's ``scoring``.

    The task defaults and scorers equivalent to an analytic loss keep its exact
    gradient; any other scorer is optimised as such (numeric gradients).
    """
    if scoring is None:
        return None
    name = scoring.scoring if isinstance(scoring, PredictionScorer) else scoring
    if isinstance(name, str):
        return _SCORING_TO_LOSS.get(name, scoring)
    return scoring
# Floor for zero initial weights: their softmax logit must be finite.
_MIN_INIT_WEIGHT = 1e-8
_PROBA_FLOOR = 1e-15

# A loss maps member weights to (value, gradient w.r.t. the weights or None).
LossFunction = Callable[[np.ndarray], tuple[float, np.ndarray | None]]


def _average(values: np.ndarray, sample_weight: np.ndarray | None) -> float:
    return float(np.average(values, weights=sample_weight))


def log_loss_objective(
    predictions: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None
) -> LossFunction:
    """Log loss of the blend and its gradient w.r.t. the member weights."""
    # Only the probability each member gives the true class enters the loss.
    true_proba = predictions[:, np.arange(y.shape[0]), y]
    sw = np.ones(y.shape[0]) if sample_weight is None else sample_weight

    def loss(weights: np.ndarray) -> tuple[float, np.ndarray]:
        blended = np.maximum(weights @ true_proba, _PROBA_FLOOR)
        grad = -(true_proba / blended) @ sw / sw.sum()
        return _average(-np.log(blended), sw), grad

    return loss


def squared_error_objective(
    predictions: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None
) -> LossFunction:
    """Mean squared error of the blend and its gradient w.r.t. the member weights."""
    sw = np.ones(y.shape[0]) if sample_weight is None else sample_weight

    def loss(weights: np.ndarray) -> tuple[float, np.ndarray]:
        residual = weights @ predictions - y
        grad = 2.0 * predictions @ (sw * residual) / sw.sum()
        return _average(residual**2, sw), grad

    return loss


def scorer_objective(
    scorer: PredictionScorer,
    predictions: np.ndarray,
    y: np.ndarray,
    sample_weight: np.ndarray | None,
) -> LossFunction:
    """Negated greater-is-better score of the blend; no analytic gradient."""

    def loss(weights: np.ndarray) -> tuple[float, None]:
        blended = weighted_mean(predictions, weights)
        if blended.ndim == 2:
            blended = normalize_rows(blended)
        return -scorer(y, blended, sample_weight=sample_weight), None

    return loss


class OptimizedWeights(BaseFuser):
    """Weighted average whose weights minimise the out-of-fold loss.

    Weights are parametrised as ``softmax(z)`` (so they stay non-negative and
    sum to one) and ``z`` is optimised with L-BFGS, starting from the selection
    weights. Members with zero selection weight start at a tiny weight and so
    rarely gain much. If the optimiser ends worse than the start (possible with
    numeric gradients), the starting weights are kept, so the fitted OOF loss is
    never above the initial one.

    Parameters
    ----------
    loss : str, callable, PredictionScorer or None, default=None
        ``None`` uses the task default: ``"log_loss"`` (classification) or
        ``"squared_error"`` (regression), both with analytic gradients. Any
        other value is a greater-is-better scorer accepted by
        :func:`ensemble_hpo.metrics.get_prediction_scorer` (e.g.
        ``"neg_brier_score"``); its negation is minimised with finite-difference
        gradients, which only works for scores that vary smoothly with the
        weights (not e.g. accuracy).
    max_iter : int, default=200
        Maximum number of L-BFGS iterations.

    Attributes
    ----------
    weights_ : ndarray of shape (n_members,)
        Optimised weights (non-negative, sum to one).
    init_weights_ : ndarray of shape (n_members,)
        Starting weights (the normalised selection weights).
    init_loss_ : float
        Out-of-fold loss of the starting weights.
    loss_ : float
        Out-of-fold loss of ``weights_`` (``<= init_loss_``).
    n_iter_ : int
        Number of L-BFGS iterations run.

    Examples
    --------
    >>> import numpy as np
    >>> P = np.array([[[0.9, 0.1], [0.8, 0.2]], [[0.6, 0.4], [0.3, 0.7]]])
    >>> fuser = OptimizedWeights().fit(P, np.array([0, 1]))
    >>> bool(fuser.loss_ <= fuser.init_loss_)
    True
    """

    sklearn_export = "soft"

    def __init__(
        self, *, loss: str | Callable | PredictionScorer | None = None, max_iter: int = 200
    ) -> None:
        self.loss = loss
        self.max_iter = max_iter

    def _check_params(self, task: str) -> None:
        if not is_positive_int(self.max_iter):
            raise ValueError(
                f"The 'max_iter' parameter must be a positive int. Got {self.max_iter!r} instead."
            )
        loss = self.loss
        if isinstance(loss, str) and loss in _ANALYTIC_LOSSES:
            if _ANALYTIC_LOSSES[loss] != task:
                raise ValueError(
                    f"The 'loss' parameter must suit a {task} task. Got {loss!r} instead."
                )
        elif loss is not None:
            check_scorer_task(self._loss_scorer(loss, task), task, "loss")

    def _fit(self, predictions, y, weights, X, sample_weight) -> None:
        objective, analytic = self._objective(predictions, y, sample_weight)
        self.init_weights_ = weights
        self.init_loss_ = objective(weights)[0]
        z0 = np.log(np.maximum(weights, _MIN_INIT_WEIGHT))
        result = minimize(
            _softmax_objective(objective),
            z0,
            method="L-BFGS-B",
            jac=analytic,
            options={"maxiter": self.max_iter},
        )
        self.n_iter_ = int(result.nit)
        fitted = softmax(result.x)
        fitted_loss = objective(fitted)[0]
        if fitted_loss <= self.init_loss_:
            self.weights_, self.loss_ = fitted, fitted_loss
        else:
            self.weights_, self.loss_ = weights, self.init_loss_

    def _objective(
        self, predictions: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None
    ) -> tuple[LossFunction, bool]:
        """Return the loss of the member weights and whether it has an analytic gradient."""
        loss = self.loss
        if loss is None:
            loss = "log_loss" if self.task_ == CLASSIFICATION else "squared_error"
        if isinstance(loss, str) and loss in _ANALYTIC_LOSSES:  # its task checked at fit
            make = log_loss_objective if loss == "log_loss" else squared_error_objective
            return make(predictions, y, sample_weight), True
        return scorer_objective(self._loss_scorer(loss, self.task_), predictions, y,
                                sample_weight), False

    @staticmethod
    def _loss_scorer(loss: Any, task: str) -> PredictionScorer:
        try:
            return get_prediction_scorer(loss, task)
        except ValueError as exc:
            raise ValueError(
                "The 'loss' parameter must be None, 'log_loss', 'squared_error' or a scorer "
                f"name/callable. Got {loss!r} instead."
            ) from exc

    def _combine(self, predictions: np.ndarray, X: np.ndarray | None) -> np.ndarray:
        return weighted_mean(predictions, self.weights_)


def _softmax_objective(objective: LossFunction) -> Callable[[np.ndarray], Any]:
    """Re-express a loss of the weights as a loss of the softmax logits ``z``."""

    def in_logits(z: np.ndarray) -> Any:
        weights = softmax(z)
        value, grad = objective(weights)
        if grad is None:
            return value
        # Chain rule through softmax: d w_j / d z_k = w_j (delta_jk - w_k).
        return value, weights * (grad - weights @ grad)

    return in_logits
