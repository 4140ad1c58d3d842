"""Input checks shared by the selectors.

Every check runs before any scoring work so that bad input fails fast with a
message naming the offending parameter.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

from .._checks import CLASSIFICATION, REGRESSION, check_predictions, check_sample_weight


@dataclass(frozen=True)
class SelectionData:
    """Validated selection inputs."""

    predictions: np.ndarray
    y: np.ndarray
    sample_weight: np.ndarray | None
    task: str
    classes: np.ndarray | None

    @property
    def n_models(self) -> int:
        return self.predictions.shape[0]

    @property
    def n_classes(self) -> int:
        return 0 if self.classes is None else len(self.classes)


def encode_target(
    y: object, n_samples: int, n_classes: int
) -> tuple[np.ndarray, np.ndarray | None]:
    """Return ``(y, classes)``; classification targets are encoded to ``0..n_classes-1``."""
    y_arr = np.asarray(y)
    if y_arr.ndim != 1 or y_arr.shape[0] != n_samples:
        raise ValueError(
            f"The 'y' parameter must be a 1-D array of length n_samples={n_samples}. "
            f"Got shape {y_arr.shape} instead."
        )
    if n_classes == 0:
        if not np.issubdtype(y_arr.dtype, np.number) or not np.isfinite(y_arr).all():
            raise ValueError(
                "The 'y' parameter must hold finite numbers for regression predictions. "
                "Got non-numeric or non-finite values instead."
            )
        return y_arr.astype(np.float64, copy=False), None  # no copy: a table-length vector
    if np.issubdtype(y_arr.dtype, np.integer) and y_arr.min() >= 0 and y_arr.max() < n_classes:
        return y_arr.astype(np.intp, copy=False), np.arange(n_classes)
    try:
        classes, codes = np.unique(y_arr, return_inverse=True)
    except TypeError as exc:  # None beside strings: "'<' not supported" (audit)
        raise ValueError(
            "The 'y' parameter must hold labels that can be sorted, of one type and without "
            f"missing values. Got {exc} instead.") from exc
    if len(classes) != n_classes:
        raise ValueError(
            f"The 'y' parameter must hold integers in 0..{n_classes - 1} or exactly "
            f"{n_classes} distinct labels (one per probability column). "
            f"Got {len(classes)} distinct labels instead."
        )
    return codes.astype(np.intp), classes


def check_selection_data(predictions: object, y: object, sample_weight: object) -> SelectionData:
    """Validate the three ``fit`` arguments together."""
    preds = check_predictions(predictions)
    n_classes = preds.shape[2] if preds.ndim == 3 else 0
    y_enc, classes = encode_target(y, preds.shape[1], n_classes)
    w = check_sample_weight(sample_weight, preds.shape[1])
    task = CLASSIFICATION if n_classes else REGRESSION
    return SelectionData(preds, y_enc, w, task, classes)


def check_int(value: object, name: str, minimum: int, allow_none: bool = False) -> None:
    """Raise unless ``value`` is an integer ``>= minimum`` (or None when allowed)."""
    if value is None and allow_none:
        return
    ok = isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= minimum
    if not ok:
        extra = " or None" if allow_none else ""
        raise ValueError(
            f"The '{name}' parameter must be an integer >= {minimum}{extra}. "
            f"Got {value!r} instead."
        )


def check_float(value: object, name: str, low: float, high: float, low_open: bool) -> None:
    """Raise unless ``value`` is a real number in the interval (low or [low, high]."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    ok = ok and (value > low if low_open else value >= low) and value <= high
    if not ok:
        bracket = "(" if low_open else "["
        raise ValueError(
            f"The '{name}' parameter must be a float in {bracket}{low}, {high}]. "
            f"Got {value!r} instead."
        )
