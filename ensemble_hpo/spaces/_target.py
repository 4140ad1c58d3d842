"""Regressors fitted on a transformed target whose predictions are on the user's scale."""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np
from sklearn.compose import TransformedTargetRegressor
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_is_fitted

__all__ = ["LogTargetRegressor", "StandardizedTargetRegressor"]


def _fit_kwargs(regressor: Any, sample_weight: Any, groups: Any) -> dict[str, Any]:
    """What the wrapped regressor's ``fit`` gets: weights when given, ``groups`` when it takes them."""
    kwargs: dict[str, Any] = {}
    if sample_weight is not None:
        kwargs["sample_weight"] = sample_weight
    # Named explicitly, as the candidate evaluator decides whether to pass groups at all.
    if groups is not None and "groups" in inspect.signature(regressor.fit).parameters:
        kwargs["groups"] = groups
    return kwargs


class StandardizedTargetRegressor(TransformedTargetRegressor):
    """A regressor fitted on the standardised target, ``(y - mean) / std``, predicting on y's scale.

    scikit-learn's ``TransformedTargetRegressor`` with a ``StandardScaler`` fixed, so that
    the built-in families' hyperparameters mean the same on every table (``ModelFamily``'s
    ``scale_target``). The statistics are those of the rows ``fit`` sees, so in the search
    each training fold's own; ``fit`` forwards ``groups`` to a regressor that takes them.

    Measured (``benchmarks/results/target_scaling.md``, the 20 regression tables of the
    portfolio list, 5-fold CV of each family's first portfolio configuration): SVR's
    ``epsilon=0.1`` and its bound ``C`` on the dual coefficients, and the MLP's
    initialisation and learning rate, are in the target's units; on the raw target of
    diamond prices (std 3,980) their RMSE was 4,166 and 2,462, standardised 1,046 and 777.
    The tree and linear families are nearly invariant to the target's scale, but only
    nearly: XGBoost on ``y + 1e9`` predicted three distinct values (its float32 labels
    lose the offset) with an RMSE of 162 against 58, and on ``y * 1e-6`` its
    ``reg_alpha`` zeroed most leaves (RMSE 128 in y's units); a random forest on
    ``y + 1e9`` lost precision in its variance sums (RMSE 76 against 68).

    Parameters
    ----------
    regressor : regressor
        Fitted on the standardised target.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.svm import SVR
    >>> X = np.linspace(0, 1, 50).reshape(-1, 1)
    >>> y = 1e4 * X.ravel()
    >>> SVR().fit(X, y).predict([[0.9]]).round(-2)  # epsilon and C in y's units: flat
    array([5000.])
    >>> StandardizedTargetRegressor(regressor=SVR()).fit(X, y).predict([[0.9]]).round(-2)
    array([9100.])
    """

    def __init__(self, *, regressor: Any = None) -> None:
        super().__init__(regressor=regressor, transformer=StandardScaler(), check_inverse=False)

    def fit(self, X: Any, y: Any, sample_weight: Any = None,
            groups: Any = None) -> StandardizedTargetRegressor:
        return super().fit(X, np.asarray(y, dtype=np.float64),
                           **_fit_kwargs(self.regressor, sample_weight, groups))

    def predict(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "transformer_")
        # In float64 before the offset comes back: XGBoost predicts float32, whose spacing
        # near 1e9 is 64.
        standardized = np.asarray(self.regressor_.predict(X), dtype=np.float64).reshape(-1, 1)
        return self.transformer_.inverse_transform(standardized).ravel()


class LogTargetRegressor(TransformedTargetRegressor):
    """A regressor fitted on ``log1p(y)`` whose predictions are mapped back with ``expm1``.

    scikit-learn's ``TransformedTargetRegressor`` with the transform fixed, so that the
    candidate is one family of the search and its out-of-fold predictions (hence selection
    and every score) are on the user's scale. ``expm1`` of a mean of logs estimates the
    conditional median, below the mean on a right-skewed target; the weighted ensemble
    with raw-target candidates corrects that level on out-of-fold rows. ``fit`` forwards
    ``groups`` to a regressor that takes them (early stopping that keeps groups whole).

    Predictions are clipped to the range of the training targets (in log space, before
    ``expm1``). Without it a linear model extrapolates exponentially: on forbes market
    value (seed 1, 60 s) two ridge candidates on the log scale predicted up to 7,500 for
    a target whose training maximum is 329, greedy selection gave them 6 % of the weight
    on out-of-fold rows where the extremes were milder, and the ensemble's test RMSE was
    22 % worse than its best single candidate.

    Parameters
    ----------
    regressor : regressor
        Fitted on ``log1p(y)``; needs ``y > -1``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LinearRegression
    >>> X = np.arange(1, 6, dtype=float).reshape(-1, 1)
    >>> model = LogTargetRegressor(regressor=LinearRegression()).fit(X, np.expm1(X.ravel()))
    >>> model.predict([[4.5]]).round(1)
    array([89.])
    >>> model.predict([[9.0]]).round(1)  # clipped to the largest training target
    array([147.4])
    """

    def __init__(self, *, regressor: Any = None) -> None:
        super().__init__(regressor=regressor, func=np.log1p, inverse_func=np.expm1,
                         check_inverse=False)

    def fit(self, X: Any, y: Any, sample_weight: Any = None, groups: Any = None) -> LogTargetRegressor:
        y = np.asarray(y, dtype=np.float64)
        if y.size and y.min() <= -1:
            raise ValueError("The target of a log-target regressor must be greater than -1. "
                             f"Got a minimum of {y.min():g} instead.")
        super().fit(X, y, **_fit_kwargs(self.regressor, sample_weight, groups))
        self.log_target_range_ = (float(np.log1p(y.min())), float(np.log1p(y.max())))
        return self

    def predict(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "log_target_range_")
        low, high = self.log_target_range_
        return np.expm1(np.clip(self.regressor_.predict(X), low, high))
