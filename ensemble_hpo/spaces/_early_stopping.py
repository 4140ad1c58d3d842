"""Early stopping of boosting models on an inner validation split of each training fold."""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, clone, is_classifier
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.model_selection import GroupShuffleSplit, train_test_split
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from ensemble_hpo._folds import take_rows

__all__ = [
    "EarlyStoppingClassifier",
    "EarlyStoppingRegressor",
    "GroupAwareHistGradientBoostingRegressor",
    "RareClassHistGradientBoostingClassifier",
    "group_holdout",
]


def stratified_split_fits(y: np.ndarray, n_val: int) -> bool:
    """Whether a stratified split with ``n_val`` held-out rows exists (scikit-learn's conditions).

    Every class needs two rows, and both parts room for one row of every class.
    """
    _, counts = np.unique(y, return_counts=True)
    return bool(counts.min() >= 2 and len(counts) <= n_val <= len(y) - len(counts))


def group_holdout(groups: np.ndarray, fraction: float, random_state: Any = None,
                  y: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray] | None:
    """About ``fraction`` of the rows held out by whole groups, as ``(fit_rows, validation_rows)``.

    With ``groups`` given to ``fit``, rows of one group are alike; a validation slice that
    shares groups with the fitting part stops boosting too late. With class labels ``y``,
    a class whose every row fell in held-out groups gets one of those groups back, so the
    fitting part has every class (XGBoost learns its classes from the rows it fits: a
    class held out whole was never predicted, though it was in the training fold). None
    when nothing is left to hold out.
    """
    groups = np.asarray(groups)
    if len(np.unique(groups)) < 2:
        return None
    splitter = GroupShuffleSplit(n_splits=1, test_size=fraction,
                                 random_state=check_random_state(random_state).randint(2**31 - 1))
    fit_rows, val_rows = next(splitter.split(np.zeros((len(groups), 1)), groups=groups))
    if y is not None:
        fit_rows, val_rows = _return_missing_classes(np.asarray(y), groups, fit_rows, val_rows)
    return (np.sort(fit_rows), np.sort(val_rows)) if len(val_rows) else None


def _return_missing_classes(y: np.ndarray, groups: np.ndarray, fit_rows: np.ndarray,
                            val_rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Move held-out groups back to the fitting part until it holds every class of ``y``."""
    for label in np.setdiff1d(np.unique(y), y[fit_rows]):
        if label in y[fit_rows]:  # a group moved back for an earlier class brought it
            continue
        holders = np.unique(groups[val_rows][y[val_rows] == label])
        sizes = [np.sum(groups[val_rows] == g) for g in holders]
        back = holders[int(np.argmin(sizes))]  # the smallest group: keep most of the holdout
        moved = val_rows[groups[val_rows] == back]
        fit_rows, val_rows = np.concatenate([fit_rows, moved]), val_rows[groups[val_rows] != back]
    return fit_rows, val_rows


def rare_class_split(
    y: np.ndarray, fraction: float, random_state: Any = None
) -> tuple[np.ndarray, np.ndarray] | None:
    """Hold out about ``fraction`` of each class's rows, but never a class's last row.

    The fallback when a stratified split does not exist (a class with one row, as
    a cross-validation fold of a rare class has): every class stays in the fitting
    part, so a booster trained on ``0..m-1`` still sees all ``m`` labels. Returns
    ``(fit_rows, validation_rows)``, or None when no row can be held out.
    """
    rng = check_random_state(random_state)
    fit, val = [], []
    for label in np.unique(y):
        rows = rng.permutation(np.flatnonzero(y == label))
        n_val = min(int(np.rint(fraction * len(rows))), len(rows) - 1)
        val.append(rows[:n_val])
        fit.append(rows[n_val:])
    fit_rows, val_rows = np.sort(np.concatenate(fit)), np.sort(np.concatenate(val))
    return (fit_rows, val_rows) if len(val_rows) else None


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

    def fit(self, X: Any, y: np.ndarray, sample_weight: np.ndarray | None = None,
            groups: np.ndarray | None = None) -> Any:
        """Fit with early stopping; ``groups`` keeps each group on one side of the inner split."""
        if not 0.0 < self.validation_fraction < 1.0:
            raise ValueError(
                "The 'validation_fraction' parameter must be in (0, 1). "
                f"Got {self.validation_fraction!r} instead."
            )
        model = clone(self.estimator)
        if groups is not None:
            labels = np.asarray(y) if is_classifier(self) else None
            split = self._rows_split(X, np.asarray(y), sample_weight,
                                     group_holdout(groups, self.validation_fraction, self.random_state,
                                                   y=labels))
        else:
            split = self._inner_split(X, y, sample_weight)
        if split is None:
            fit_kwargs = {} if sample_weight is None else {"sample_weight": sample_weight}
            self.estimator_ = model.fit(X, y, **fit_kwargs)
        else:
            X_fit, X_val, y_fit, y_val, w_fit, w_val = split
            model.set_params(early_stopping_rounds=self.rounds)
            fit_kwargs = {} if w_fit is None else {"sample_weight": w_fit}
            fit_kwargs.update(_eval_weights(model, w_val))
            # XGBoost and CatBoost print per-round logs unless told not to; LightGBM's fit
            # has no such argument (its ``verbose`` constructor parameter silences it).
            if _fit_accepts(model, "verbose"):
                fit_kwargs["verbose"] = False
            fit_kwargs.update(_eval_set(model, X_val, y_val, w_val))
            self.estimator_ = model.fit(X_fit, y_fit, **fit_kwargs)
        self.best_iteration_ = _best_iteration(self.estimator_)
        if is_classifier(self):
            self.classes_ = self.estimator_.classes_
        self.n_features_in_ = getattr(self.estimator_, "n_features_in_", None)
        return self

    def _inner_split(self, X: Any, y: np.ndarray, sample_weight: np.ndarray | None) -> tuple | None:
        stratify = y if is_classifier(self) else None
        n_val = int(np.ceil(self.validation_fraction * len(y)))
        if stratify is not None and not stratified_split_fits(y, n_val):
            return self._rare_class_split(X, np.asarray(y), sample_weight)
        arrays = [X, y] + ([] if sample_weight is None else [sample_weight])
        parts = train_test_split(
            *arrays, test_size=self.validation_fraction, stratify=stratify, random_state=self.random_state
        )
        w_fit, w_val = (parts[4], parts[5]) if sample_weight is not None else (None, None)
        return parts[0], parts[1], parts[2], parts[3], w_fit, w_val

    def _rare_class_split(self, X: Any, y: np.ndarray, sample_weight: np.ndarray | None) -> tuple | None:
        return self._rows_split(X, y, sample_weight,
                                rare_class_split(y, self.validation_fraction, self.random_state))

    @staticmethod
    def _rows_split(X: Any, y: np.ndarray, sample_weight: np.ndarray | None,
                    split: tuple[np.ndarray, np.ndarray] | None) -> tuple | None:
        if split is None:  # too few rows to hold any out: train on all, without stopping early
            return None
        fit, val = split
        weights = None if sample_weight is None else np.asarray(sample_weight)
        w_fit, w_val = (None, None) if weights is None else (weights[fit], weights[val])
        return take_rows(X, fit), take_rows(X, val), y[fit], y[val], w_fit, w_val

    def predict(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "estimator_")
        return self.estimator_.predict(X)


def _eval_set(model: Any, X_val: Any, y_val: Any, w_val: np.ndarray | None) -> dict[str, Any]:
    """The validation rows under the booster's keywords for them."""
    if _fit_accepts(model, "eval_X"):  # LightGBM >= 4.6 deprecates eval_set for these
        return {"eval_X": (X_val,), "eval_y": (y_val,)}
    if w_val is not None and type(model).__module__.startswith("catboost"):
        # CatBoost takes validation weights only inside a Pool: it stopped at iteration 0
        # where XGBoost, given them, stopped at 300 (half the rows at weight 0 with a
        # flipped target; tests/spaces/test_optional_families.py).
        from catboost import Pool

        return {"eval_set": Pool(X_val, y_val, weight=w_val)}
    return {"eval_set": [(X_val, y_val)]}


def _eval_weights(model: Any, w_val: np.ndarray | None) -> dict[str, Any]:
    """The validation rows' weights, under the booster's keyword for them (XGBoost, LightGBM;
    CatBoost's come in :func:`_eval_set`'s Pool).

    Without them a weighted fit stopped on unweighted validation rows: with half the rows at
    weight 0 (and a flipped target) XGBoost stopped at iteration 0, test RMSE 9.76 against
    2.21 (audit).
    """
    if w_val is None:
        return {}
    for keyword in ("sample_weight_eval_set", "eval_sample_weight"):  # XGBoost, LightGBM
        if _fit_accepts(model, keyword):
            return {keyword: [w_val]}
    return {}


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


class _OwnValidationSplitMixin:
    """Hands scikit-learn's HistGradientBoosting its validation rows when its own split can't do.

    Its internal split ignores ``groups`` and, for a classifier, is stratified, which raises
    when a class has one row (as a cross-validation training fold of a rare class can). With
    ``groups`` the held-out rows are whole groups (:func:`group_holdout`); for a class with
    one row they come from :func:`rare_class_split`. Otherwise the fit is scikit-learn's,
    unchanged. Parameters are those of the parent class.
    """

    def fit(self, X: Any, y: Any, sample_weight: Any = None, groups: Any = None,
            **kwargs: Any) -> Any:
        y_array = np.asarray(y)
        if not self._stops_early(len(y_array)) or kwargs.get("X_val") is not None:
            return super().fit(X, y, sample_weight, **kwargs)
        fraction = self._fraction(len(y_array))
        if groups is not None:
            split = group_holdout(groups, fraction, self.random_state,
                                  y=y_array if is_classifier(self) else None)
        elif self._stratified_split_fails(y_array):
            split = rare_class_split(y_array, fraction, self.random_state)
        else:
            return super().fit(X, y, sample_weight, **kwargs)
        # No row to hold out: stop on the training loss, as validation_fraction=None does.
        fit, val = split if split is not None else (np.arange(len(y_array)),) * 2
        weights = None if sample_weight is None else np.asarray(sample_weight)
        return super().fit(
            take_rows(X, fit), y_array[fit], None if weights is None else weights[fit],
            X_val=take_rows(X, val), y_val=y_array[val],
            sample_weight_val=None if weights is None else weights[val],
        )

    def _stops_early(self, n_rows: int) -> bool:
        stops = self.early_stopping is True or (self.early_stopping == "auto" and n_rows > 10_000)
        return stops and self.validation_fraction is not None

    def _fraction(self, n_rows: int) -> float:
        fraction = self.validation_fraction
        return fraction / n_rows if isinstance(fraction, (int, np.integer)) else fraction

    def _stratified_split_fails(self, y: np.ndarray) -> bool:
        if not is_classifier(self):
            return False
        fraction = self.validation_fraction
        n_val = fraction if isinstance(fraction, (int, np.integer)) else int(np.ceil(fraction * len(y)))
        return not stratified_split_fits(y, n_val)


class RareClassHistGradientBoostingClassifier(_OwnValidationSplitMixin, HistGradientBoostingClassifier):
    """HistGradientBoostingClassifier whose early stopping survives a class with one row
    and keeps ``groups`` whole (see ``_OwnValidationSplitMixin``).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import load_iris
    >>> X, y = load_iris(return_X_y=True)
    >>> keep = np.r_[0:50, 50, 100:150]   # one row of class 1
    >>> clf = RareClassHistGradientBoostingClassifier(early_stopping=True, random_state=0)
    >>> clf.fit(X[keep], y[keep]).classes_
    array([0, 1, 2])
    """


class GroupAwareHistGradientBoostingRegressor(_OwnValidationSplitMixin, HistGradientBoostingRegressor):
    """HistGradientBoostingRegressor whose early-stopping rows are whole ``groups`` when given."""
