"""Gradient-based tuning of the L2 strength of linear models (hypergradients).

The validation loss of a ridge or logistic regression is a smooth function of its
L2 strength ``lambda``, so it can be minimised by gradient descent on
``log(lambda)`` instead of a blind search. The gradient of the validation loss
with respect to ``lambda`` (the *hypergradient*) is exact, obtained by implicit
differentiation of the training optimality conditions:

* ridge: ``w(lambda) = (Xc' S Xc + lambda I)^-1 Xc' S yc`` on centred data, so
  ``dw/dlambda = -(Xc' S Xc + lambda I)^-1 w``;
* logistic: the training gradient ``g(theta, lambda)`` vanishes at the optimum,
  so ``dtheta/dlambda = -H^-1 dg/dlambda = -H^-1 w_pen`` where ``H`` is the
  Hessian of the training objective and ``w_pen`` is ``theta`` with its
  (unpenalised) intercept entries set to 0. Binary labels use one sigmoid
  coefficient vector, three or more classes a multinomial softmax (one vector per
  class, all penalised), exactly like scikit-learn's ``LogisticRegression``.

Parametrisation
---------------
``lambda`` multiplies the penalty of a *summed* (not averaged) training loss, so
it does not depend on the fold size and maps one-to-one onto scikit-learn:

* ridge minimises ``sum_i s_i (y_i - b - x_i w)^2 + lambda ||w||^2``, i.e.
  ``Ridge(alpha=lambda)``;
* logistic minimises ``sum_i s_i logloss_i + lambda / 2 ||W||_F^2``, i.e.
  ``LogisticRegression(C=1 / lambda)`` (L2 penalty, intercepts unpenalised).

Written with a mean training loss, the same models have strength
``lambda_mean = lambda / n_train`` (``sum(s_i)`` with sample weights), e.g.
``C = 1 / (n_train * lambda_mean)``.

The validation loss is the (weighted) mean squared error or mean log loss on each
held-out fold, averaged over the folds with equal weight.

Search
------
Adam takes projected steps on ``log(lambda)``. L-BFGS-B (scipy) runs inside a
trust box of +-2 around the current point, re-centred whenever it stops on the box
edge: the loss is sigmoid-shaped in ``log(lambda)`` (flat at both ends), and an
unconstrained secant step can otherwise land on a flat plateau and stop there.
Every distinct evaluated point is recorded, in order.
"""

from __future__ import annotations

import math
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import scipy.linalg
import scipy.optimize
from scipy.special import expit, logsumexp, softmax
from sklearn.exceptions import ConvergenceWarning

from ensemble_hpo._checks import check_sample_weight

__all__ = [
    "HypergradientResult",
    "hypergradient_search",
    "sklearn_param_from_log_lambda",
    "validation_loss_and_grad",
]

_MODELS = ("ridge", "logistic")
_OPTIMIZERS = ("lbfgs", "adam")
_ADAM_BETA1 = 0.9
_ADAM_BETA2 = 0.999
_ADAM_EPS = 1e-8
_LBFGS_BOX = 2.0
# Newton's decrement^2 / 2 estimates f - f*. Below _NEWTON_TOL * f one more full
# step squares the error down to the rounding floor; asking for less than that floor
# (it rises when lambda is tiny, as H^-1 amplifies the gradient's rounding) would stall.
_NEWTON_TOL = 1e-12
_NEWTON_MAX_ITER = 200

Splits = Sequence[tuple[Any, Any]]


@dataclass
class HypergradientResult:
    """Trajectory and outcome of :func:`hypergradient_search`.

    Parameters
    ----------
    log_lambdas : list of float
        Every distinct evaluated ``log(lambda)``, in evaluation order.
    losses : list of float
        Cross-validated validation loss at each evaluated point.
    gradients : list of float
        ``d loss / d log(lambda)`` at each evaluated point.
    best_log_lambda : float
        The evaluated ``log(lambda)`` with the lowest loss (first one on ties).
    best_loss : float
        The loss at ``best_log_lambda``.
    sklearn_param : dict
        ``best_log_lambda`` in scikit-learn's parametrisation: ``{"alpha": ...}``
        for :class:`~sklearn.linear_model.Ridge`, ``{"C": ...}`` for
        :class:`~sklearn.linear_model.LogisticRegression`.

    Examples
    --------
    >>> res = HypergradientResult([0.0, 1.0], [2.0, 1.5], [-0.5, 0.1], 1.0, 1.5,
    ...                           {"alpha": 2.718281828459045})
    >>> res.best_loss
    1.5
    """

    log_lambdas: list[float]
    losses: list[float]
    gradients: list[float]
    best_log_lambda: float
    best_loss: float
    sklearn_param: dict[str, float]


# --------------------------------------------------------------------------- folds


class _FoldObjective(ABC):
    """Validation loss of one CV fold as a function of the L2 strength."""

    @abstractmethod
    def loss_and_grad(self, lam: float) -> tuple[float, float]:
        """Return the validation loss and its derivative with respect to ``lam``."""

    @abstractmethod
    def coefficients(self, lam: float) -> np.ndarray:
        """Return the fitted ``[intercept, *coef]`` on the training fold."""


def _weighted_mean(values: np.ndarray, weights: np.ndarray) -> float:
    return float(weights @ values / weights.sum())


class _RidgeFold(_FoldObjective):
    """Ridge fold, solved for any ``lam`` from one thin SVD of the training design."""

    def __init__(
        self,
        X_train: np.ndarray,
        y_train: np.ndarray,
        sw_train: np.ndarray,
        X_valid: np.ndarray,
        y_valid: np.ndarray,
        sw_valid: np.ndarray,
    ) -> None:
        x_mean = sw_train @ X_train / sw_train.sum()
        y_mean = _weighted_mean(y_train, sw_train)
        root_sw = np.sqrt(sw_train)
        design = root_sw[:, None] * (X_train - x_mean)
        _, sing, vt = np.linalg.svd(design, full_matrices=False)
        # w(lam) lives in span(V) for every lam > 0, so the fold reduces to its
        # coordinates V'w and predictions only need the valid design projected on V.
        self._sq = sing**2
        self._proj_y = vt @ (design.T @ (root_sw * (y_train - y_mean)))
        self._vt = vt
        self._x_mean = x_mean
        self._y_mean = y_mean
        self._z_valid = (X_valid - x_mean) @ vt.T
        self._residual0 = y_valid - y_mean
        self._sw_valid = sw_valid

    def loss_and_grad(self, lam: float) -> tuple[float, float]:
        # Xc' S Xc = V diag(sing^2) V', so V'w = V' Xc' S yc / (sing^2 + lam).
        denom = self._sq + lam
        coef = self._proj_y / denom
        residual = self._residual0 - self._z_valid @ coef
        dpred = -self._z_valid @ (coef / denom)
        loss = _weighted_mean(residual**2, self._sw_valid)
        grad = -2.0 * _weighted_mean(residual * dpred, self._sw_valid)
        return loss, grad

    def coefficients(self, lam: float) -> np.ndarray:
        coef = self._vt.T @ (self._proj_y / (self._sq + lam))
        return np.concatenate([[self._y_mean - self._x_mean @ coef], coef])


def _with_intercept(X: np.ndarray) -> np.ndarray:
    return np.hstack([np.ones((X.shape[0], 1)), X])


def _solve_spd(matrix: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    try:
        return scipy.linalg.solve(matrix, rhs, assume_a="pos", check_finite=False)
    except (np.linalg.LinAlgError, scipy.linalg.LinAlgError):
        # Saturated probabilities can leave the intercept direction without curvature.
        return np.linalg.lstsq(matrix, rhs, rcond=None)[0]


def _class_probabilities(Z: np.ndarray) -> np.ndarray:
    return expit(Z) if Z.shape[1] == 1 else softmax(Z, axis=1)


def _log_loss_terms(Z: np.ndarray, Y: np.ndarray) -> np.ndarray:
    if Z.shape[1] == 1:
        return np.logaddexp(0.0, Z[:, 0]) - Y[:, 0] * Z[:, 0]
    return logsumexp(Z, axis=1) - np.sum(Y * Z, axis=1)


def _encode_targets(y: np.ndarray, n_classes: int) -> np.ndarray:
    """Binary: the 0/1 column of class 1; multinomial: one-hot columns."""
    if n_classes == 2:
        return y[:, None]
    return (y[:, None] == np.arange(n_classes)).astype(float)


class _LogisticFold(_FoldObjective):
    """Logistic fold, fitted by damped Newton (warm-started across calls).

    Binary problems use one coefficient column (sigmoid), more classes one column
    per class (softmax), as scikit-learn does. The softmax intercepts are only
    defined up to a common shift, which leaves the Hessian singular; fixing the
    last class's intercept at 0 removes that direction without changing the model.
    """

    def __init__(
        self,
        X_train: np.ndarray,
        y_train: np.ndarray,
        sw_train: np.ndarray,
        X_valid: np.ndarray,
        y_valid: np.ndarray,
        sw_valid: np.ndarray,
        *,
        n_classes: int,
    ) -> None:
        missing = np.setdiff1d(np.arange(n_classes), y_train)
        if missing.size:
            raise ValueError(
                "Every training fold must contain every class for logistic regression. "
                f"Got a training fold without class {missing[0]:g} instead."
            )
        self._Xa = _with_intercept(X_train)
        self._Y = _encode_targets(y_train, n_classes)
        # Mean-form weights keep the Newton system well scaled; lam is rescaled to match.
        self._scale = sw_train.sum()
        self._sw = sw_train / self._scale
        self._Xa_valid = _with_intercept(X_valid)
        self._Y_valid = _encode_targets(y_valid, n_classes)
        self._sw_valid = sw_valid / sw_valid.sum()
        shape = (self._Xa.shape[1], self._Y.shape[1])
        self._free = np.ones(shape, dtype=bool)
        if shape[1] > 1:
            self._free[0, -1] = False
        self._penalised = np.ones(shape, dtype=bool)
        self._penalised[0] = False
        class_weights = np.bincount(y_train.astype(int), weights=sw_train, minlength=n_classes)
        self._theta = self._initial_theta(class_weights)

    def _initial_theta(self, class_weights: np.ndarray) -> np.ndarray:
        # Log-odds of the class priors against the reference class (class 0 for the
        # sigmoid, the last class for the softmax).
        log_prior = np.log(np.maximum(class_weights, 1e-300))
        theta = np.zeros(self._free.shape)
        if self._free.shape[1] == 1:
            theta[0, 0] = log_prior[1] - log_prior[0]
        else:
            theta[0] = log_prior - log_prior[-1]
        return theta

    def _penalty(self, lam: float) -> np.ndarray:
        return self._penalised * (lam / self._scale)

    def _objective(self, theta: np.ndarray, pen: np.ndarray) -> float:
        data = self._sw @ _log_loss_terms(self._Xa @ theta, self._Y)
        return float(data + 0.5 * np.sum(pen * theta**2))

    def _gradient_hessian(
        self, theta: np.ndarray, pen: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Gradient and Hessian of the training objective in the free parameters."""
        prob = _class_probabilities(self._Xa @ theta)
        grad = self._Xa.T @ (self._sw[:, None] * (prob - self._Y)) + pen * theta
        n_features, n_cols = theta.shape
        hess = np.zeros((n_features, n_cols, n_features, n_cols))
        for k in range(n_cols):
            for col in range(n_cols):
                curvature = prob[:, k] * ((k == col) - prob[:, col])
                hess[:, k, :, col] = (self._Xa.T * (self._sw * curvature)) @ self._Xa
            hess[:, k, :, k] += np.diag(pen[:, k])
        free = self._free.ravel()
        hess = hess.reshape(theta.size, theta.size)[np.ix_(free, free)]
        return grad[self._free], hess

    def _fit(self, pen: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        theta = self._theta.copy()
        for _ in range(_NEWTON_MAX_ITER):
            grad, hess = self._gradient_hessian(theta, pen)
            step = np.zeros_like(theta)
            step[self._free] = _solve_spd(hess, grad)
            decrement = float(grad @ step[self._free])
            current = self._objective(theta, pen)
            if decrement <= 2.0 * _NEWTON_TOL * current:
                # One last full step is free accuracy inside the quadratic regime.
                theta = theta - step
                return theta, self._gradient_hessian(theta, pen)[1]
            moved = self._line_search(theta, step, decrement, pen, current)
            if moved is None:
                break
            theta = moved
        warnings.warn(
            "Newton's method did not converge for the logistic training fold; the "
            "hypergradient may be inaccurate.",
            ConvergenceWarning,
            stacklevel=4,
        )
        return theta, self._gradient_hessian(theta, pen)[1]

    def _line_search(
        self,
        theta: np.ndarray,
        step: np.ndarray,
        decrement: float,
        pen: np.ndarray,
        current: float,
    ) -> np.ndarray | None:
        size = 1.0
        while size > 1e-10:
            candidate = theta - size * step
            if self._objective(candidate, pen) <= current - 0.25 * size * decrement:
                return candidate
            size *= 0.5
        return None

    def coefficients(self, lam: float) -> np.ndarray:
        """Return the ``(n_features + 1, n_columns)`` matrix, intercepts in row 0."""
        return self._fit(self._penalty(lam))[0]

    def loss_and_grad(self, lam: float) -> tuple[float, float]:
        pen = self._penalty(lam)
        theta, hess = self._fit(pen)
        # Warm start: the next lambda of a search is close, so Newton needs few steps.
        self._theta = theta
        Z_valid = self._Xa_valid @ theta
        loss = float(self._sw_valid @ _log_loss_terms(Z_valid, self._Y_valid))
        residual = self._sw_valid[:, None] * (_class_probabilities(Z_valid) - self._Y_valid)
        grad_valid = (self._Xa_valid.T @ residual)[self._free]
        # d pen / d lam = pen / lam, so d(grad_train)/d lam = (pen / lam) * theta.
        dtheta = -_solve_spd(hess, (pen / lam * theta)[self._free])
        return loss, float(grad_valid @ dtheta)


class _CVObjective:
    """Fold-averaged validation loss and its derivative with respect to log(lambda)."""

    def __init__(self, folds: list[_FoldObjective]) -> None:
        self._folds = folds

    def __call__(self, log_lambda: float) -> tuple[float, float]:
        lam = math.exp(log_lambda)
        values = np.array([fold.loss_and_grad(lam) for fold in self._folds])
        loss, grad = values.mean(axis=0)
        # Chain rule: d/dlog(lambda) = lambda * d/dlambda.
        return float(loss), float(lam * grad)


# ----------------------------------------------------------------------- validation


def _check_model(model: str) -> None:
    if model not in _MODELS:
        raise ValueError(f"The 'model' parameter must be one of {_MODELS}. Got {model!r} instead.")


def _check_data(
    X: Any, y: Any, sample_weight: Any, model: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    try:
        X = np.asarray(X, dtype=float)
        y = np.asarray(y, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"The 'X' and 'y' parameters must be numeric arrays. Got an error instead: {exc}"
        ) from exc
    if X.ndim != 2 or X.shape[0] == 0 or X.shape[1] == 0:
        raise ValueError(
            f"The 'X' parameter must be a non-empty 2-D array. Got shape {X.shape} instead."
        )
    if not np.all(np.isfinite(X)):
        raise ValueError("The 'X' parameter must contain only finite values. Got NaN or inf.")
    if y.shape != (X.shape[0],) or not np.all(np.isfinite(y)):
        raise ValueError(
            f"The 'y' parameter must be a finite 1-D array of length {X.shape[0]}. "
            f"Got shape {y.shape} instead."
        )
    if model == "logistic":
        _check_labels(y)
    return X, y, _check_sample_weight(sample_weight, X.shape[0])


def _check_labels(y: np.ndarray) -> None:
    classes = np.unique(y)
    if classes.size < 2 or not np.array_equal(classes, np.arange(classes.size)):
        raise ValueError(
            "The 'y' parameter must hold encoded labels 0..n_classes-1 (at least two "
            f"classes, all present) for model='logistic'. Got values {classes[:5]} instead."
        )


def _check_sample_weight(sample_weight: Any, n_samples: int) -> np.ndarray:
    weights = check_sample_weight(sample_weight, n_samples)
    return np.ones(n_samples) if weights is None else weights


def _check_indices(indices: Any, n_samples: int, sw: np.ndarray) -> np.ndarray:
    idx = np.asarray(indices)
    if idx.ndim != 1 or idx.size == 0 or idx.dtype.kind not in "iu":
        raise ValueError(
            "The 'splits' parameter must hold non-empty 1-D integer index arrays. "
            f"Got an array of dtype {idx.dtype} and shape {idx.shape} instead."
        )
    if idx.min() < -n_samples or idx.max() >= n_samples:
        raise ValueError(
            f"The 'splits' parameter must hold indices in [0, {n_samples}). "
            f"Got indices from {idx.min()} to {idx.max()} instead."
        )
    if sw[idx].sum() <= 0:
        raise ValueError(
            "The 'sample_weight' parameter must have a positive sum on every fold. "
            "Got a fold with zero total weight instead."
        )
    return idx


def _check_splits(splits: Any, n_samples: int, sw: np.ndarray) -> list[tuple[np.ndarray, ...]]:
    if isinstance(splits, np.ndarray) or not isinstance(splits, Sequence) or len(splits) == 0:
        raise ValueError(
            "The 'splits' parameter must be a non-empty list of (train_idx, valid_idx) "
            f"pairs. Got {type(splits).__name__} of length "
            f"{len(splits) if hasattr(splits, '__len__') else '?'} instead."
        )
    checked = []
    for pair in splits:
        if len(pair) != 2:
            raise ValueError(
                "The 'splits' parameter must hold (train_idx, valid_idx) pairs. "
                f"Got an element of length {len(pair)} instead."
            )
        checked.append(tuple(_check_indices(idx, n_samples, sw) for idx in pair))
    return checked


def _build_objective(
    X: Any, y: Any, splits: Splits, model: str, sample_weight: Any
) -> _CVObjective:
    _check_model(model)
    X, y, sw = _check_data(X, y, sample_weight, model)
    fold_factory: Callable[..., _FoldObjective] = (
        _RidgeFold if model == "ridge" else partial(_LogisticFold, n_classes=int(y.max()) + 1)
    )
    folds = [
        fold_factory(X[tr], y[tr], sw[tr], X[va], y[va], sw[va])
        for tr, va in _check_splits(splits, X.shape[0], sw)
    ]
    return _CVObjective(folds)


# --------------------------------------------------------------------------- public


def sklearn_param_from_log_lambda(model: str, log_lambda: float) -> dict[str, float]:
    """Translate ``log(lambda)`` into scikit-learn's parameter for ``model``.

    Parameters
    ----------
    model : {"ridge", "logistic"}
        The linear model.
    log_lambda : float
        Natural log of the L2 strength of the summed training loss.

    Returns
    -------
    dict
        ``{"alpha": lambda}`` for :class:`~sklearn.linear_model.Ridge`,
        ``{"C": 1 / lambda}`` for :class:`~sklearn.linear_model.LogisticRegression`.

    Examples
    --------
    >>> sklearn_param_from_log_lambda("logistic", 0.0)
    {'C': 1.0}
    """
    _check_model(model)
    lam = math.exp(log_lambda)
    return {"alpha": lam} if model == "ridge" else {"C": 1.0 / lam}


def validation_loss_and_grad(
    X: Any,
    y: Any,
    splits: Splits,
    model: str,
    log_lambda: float,
    *,
    sample_weight: Any = None,
) -> tuple[float, float]:
    """Cross-validated validation loss and its exact derivative in ``log(lambda)``.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Numeric, already preprocessed features.
    y : array-like of shape (n_samples,)
        Regression target (``"ridge"``) or 0/1 labels (``"logistic"``).
    splits : list of (train_idx, valid_idx)
        Integer index arrays of the CV folds.
    model : {"ridge", "logistic"}
        Ridge (mean squared error) or binary logistic regression (mean log loss).
    log_lambda : float
        Natural log of the L2 strength (see the module docstring for the mapping).
    sample_weight : array-like of shape (n_samples,), optional
        Weights of the training loss and of the validation loss.

    Returns
    -------
    loss : float
        Validation loss averaged over the folds.
    grad : float
        ``d loss / d log(lambda)``.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.arange(20.0).reshape(10, 2) ** 0.5
    >>> y = X @ [1.0, -1.0]
    >>> splits = [(np.arange(5), np.arange(5, 10)), (np.arange(5, 10), np.arange(5))]
    >>> loss, grad = validation_loss_and_grad(X, y, splits, "ridge", 0.0)
    >>> loss >= 0.0
    True
    """
    return _build_objective(X, y, splits, model, sample_weight)(float(log_lambda))


def hypergradient_search(
    X: Any,
    y: Any,
    splits: Splits,
    *,
    model: str,
    init_log_lambda: float = 0.0,
    optimizer: str = "lbfgs",
    n_steps: int = 20,
    learning_rate: float = 0.5,
    bounds: tuple[float, float] = (-10.0, 10.0),
    sample_weight: Any = None,
) -> HypergradientResult:
    """Tune the L2 strength by gradient descent on the validation loss.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Numeric, already preprocessed (e.g. standardised) features.
    y : array-like of shape (n_samples,)
        Regression target (``"ridge"``) or encoded 0/1 labels (``"logistic"``).
    splits : list of (train_idx, valid_idx)
        Integer index arrays of the shared CV folds.
    model : {"ridge", "logistic"}
        Which linear model's L2 strength to tune.
    init_log_lambda : float, default=0.0
        Starting ``log(lambda)``; must lie within ``bounds``.
    optimizer : {"lbfgs", "adam"}, default="lbfgs"
        scipy's L-BFGS-B (bounded) or projected Adam.
    n_steps : int, default=20
        Budget: at most ``n_steps`` distinct points are evaluated. Adam takes exactly
        ``n_steps`` steps (a point revisited on a bound is recorded once); L-BFGS-B
        stops earlier once converged.
    learning_rate : float, default=0.5
        Adam step size in ``log(lambda)`` units (unused by L-BFGS-B).
    bounds : tuple of float, default=(-10.0, 10.0)
        Box constraint on ``log(lambda)``.
    sample_weight : array-like of shape (n_samples,), optional
        Weights of the training and validation losses.

    Returns
    -------
    HypergradientResult
        Every evaluated point in order and the best one.

    Examples
    --------
    >>> from sklearn.datasets import load_diabetes
    >>> from sklearn.model_selection import KFold
    >>> X, y = load_diabetes(return_X_y=True)
    >>> splits = list(KFold(3, shuffle=True, random_state=0).split(X))
    >>> res = hypergradient_search(X, y, splits, model="ridge", init_log_lambda=5.0)
    >>> bool(res.best_loss < res.losses[0])
    True
    >>> sorted(res.sklearn_param)
    ['alpha']
    """
    lower, upper = _check_search_params(optimizer, n_steps, learning_rate, bounds, init_log_lambda)
    objective = _build_objective(X, y, splits, model, sample_weight)
    trace = _Trace(objective, n_steps)
    run = _run_lbfgs if optimizer == "lbfgs" else _run_adam
    try:
        run(trace, float(init_log_lambda), (lower, upper), learning_rate)
    except _BudgetExhausted:
        pass
    return trace.result(model)


# ------------------------------------------------------------------------ optimizers


class _BudgetExhausted(Exception):
    """Raised by :class:`_Trace` to stop an optimizer after ``n_steps`` evaluations."""


class _Trace:
    """Objective wrapper that records every new evaluation and enforces the budget.

    A point met again (L-BFGS-B line searches revisit points) is answered from the
    record, so each recorded point is distinct and costs one unit of ``n_steps``.
    """

    def __init__(self, objective: Callable[[float], tuple[float, float]], n_steps: int) -> None:
        self._objective = objective
        self.n_steps = n_steps
        self._seen: dict[float, tuple[float, float]] = {}
        self.log_lambdas: list[float] = []
        self.losses: list[float] = []
        self.gradients: list[float] = []

    def __call__(self, log_lambda: float) -> tuple[float, float]:
        log_lambda = float(log_lambda)
        if log_lambda in self._seen:
            return self._seen[log_lambda]
        if len(self.losses) >= self.n_steps:
            raise _BudgetExhausted
        loss, grad = self._objective(log_lambda)
        self._seen[log_lambda] = (loss, grad)
        self.log_lambdas.append(log_lambda)
        self.losses.append(loss)
        self.gradients.append(grad)
        return loss, grad

    def result(self, model: str) -> HypergradientResult:
        best = int(np.argmin(self.losses))
        best_log_lambda = self.log_lambdas[best]
        return HypergradientResult(
            log_lambdas=self.log_lambdas,
            losses=self.losses,
            gradients=self.gradients,
            best_log_lambda=best_log_lambda,
            best_loss=self.losses[best],
            sklearn_param=sklearn_param_from_log_lambda(model, best_log_lambda),
        )


def _run_lbfgs(
    trace: _Trace, init: float, bounds: tuple[float, float], learning_rate: float
) -> None:
    # The loss is sigmoid-shaped in log(lambda): flat at both ends, so secant curvature
    # can fling L-BFGS-B onto a flat plateau at a bound. Running it inside a trust box
    # around the current point, re-centred whenever it stops on the box edge, keeps
    # every move local while the box still lets it travel the whole range.
    x = init
    while True:
        box = (max(bounds[0], x - _LBFGS_BOX), min(bounds[1], x + _LBFGS_BOX))
        n_seen = len(trace.losses)
        new_x = _lbfgs_in_box(trace, x, box)
        on_edge = any(abs(new_x - edge) < 1e-9 and edge not in bounds for edge in box)
        # Every pass must record a new point, so the budget guarantees termination.
        if not on_edge or new_x == x or len(trace.losses) == n_seen:
            return
        x = new_x


def _lbfgs_in_box(trace: _Trace, start: float, box: tuple[float, float]) -> float:
    # L-BFGS-B's first move is a full projected-gradient step, i.e. as many log(lambda)
    # units as the gradient is large (hundreds for an MSE). Dividing by the gradient
    # at the start makes that first step one unit long.
    scale = abs(trace(start)[1]) or 1.0

    def fun(x: np.ndarray) -> tuple[float, np.ndarray]:
        # Rounding may put a probe a hair outside the box; never evaluate there.
        loss, grad = trace(float(np.clip(x[0], *box)))
        return loss / scale, np.array([grad / scale])

    res = scipy.optimize.minimize(
        fun,
        np.array([start]),
        jac=True,
        method="L-BFGS-B",
        bounds=[box],
        # Revisited points are free, so scipy's own counter only guards against cycling.
        options={"maxfun": 10 * trace.n_steps, "maxiter": 10 * trace.n_steps},
    )
    return float(np.clip(res.x[0], *box))


def _run_adam(
    trace: _Trace, init: float, bounds: tuple[float, float], learning_rate: float
) -> None:
    x, first, second = init, 0.0, 0.0
    # Count steps here, not in the trace: a step stuck on a bound revisits a known point.
    for step in range(1, trace.n_steps + 1):
        _, grad = trace(x)
        first = _ADAM_BETA1 * first + (1 - _ADAM_BETA1) * grad
        second = _ADAM_BETA2 * second + (1 - _ADAM_BETA2) * grad**2
        first_hat = first / (1 - _ADAM_BETA1**step)
        second_hat = second / (1 - _ADAM_BETA2**step)
        x = float(np.clip(x - learning_rate * first_hat / (math.sqrt(second_hat) + _ADAM_EPS),
                          *bounds))


def _check_search_params(
    optimizer: str,
    n_steps: int,
    learning_rate: float,
    bounds: tuple[float, float],
    init_log_lambda: float,
) -> tuple[float, float]:
    if optimizer not in _OPTIMIZERS:
        raise ValueError(
            f"The 'optimizer' parameter must be one of {_OPTIMIZERS}. Got {optimizer!r} instead."
        )
    if isinstance(n_steps, bool) or not isinstance(n_steps, int | np.integer) or n_steps < 1:
        raise ValueError(f"The 'n_steps' parameter must be an int >= 1. Got {n_steps!r} instead.")
    if not (math.isfinite(learning_rate) and learning_rate > 0):
        raise ValueError(
            "The 'learning_rate' parameter must be a finite float > 0. "
            f"Got {learning_rate!r} instead."
        )
    try:
        lower, upper = (float(b) for b in bounds)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"The 'bounds' parameter must be a (lower, upper) pair. Got {bounds!r} instead."
        ) from exc
    if not (math.isfinite(lower) and math.isfinite(upper) and lower < upper):
        raise ValueError(
            "The 'bounds' parameter must be finite with lower < upper. "
            f"Got {bounds!r} instead."
        )
    if not lower <= init_log_lambda <= upper:
        raise ValueError(
            f"The 'init_log_lambda' parameter must lie within bounds {bounds!r}. "
            f"Got {init_log_lambda!r} instead."
        )
    return lower, upper
