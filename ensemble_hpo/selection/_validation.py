"""Input checks shared by the selectors.

Every check runs before any scoring work so that bad input fails fast with a
message naming the offending parameter.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

CLASSIFICATION = "classification"
REGRESSION = "regression"

# Bound on float64 elements touched per chunk (~4 MB) so temporaries stay cache friendly
# and memory stays bounded whatever the library size.
CHUNK_ELEMENTS = 1 << 19


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


def model_chunks(n_models: int, row_elements: int) -> Iterator[slice]:
    """Yield slices of models whose float64 copy fits the chunk budget."""
    step = max(1, CHUNK_ELEMENTS // max(1, row_elements))
    for start in range(0, n_models, step):
        yield slice(start, min(start + step, n_models))


def check_predictions(predictions: object) -> np.ndarray:
    """Return ``predictions`` as a float array without copying float32/float64 input."""
    arr = np.asarray(predictions)
    if arr.ndim not in (2, 3) or min(arr.shape) < 1:
        raise ValueError(
            "The 'predictions' parameter must be a 2-D or 3-D array of shape (n_models, "
            "n_samples) or (n_models, n_samples, n_classes). "
            f"Got shape {arr.shape} instead."
        )
    if arr.ndim == 3 and arr.shape[2] < 2:
        raise ValueError(
            "The 'predictions' parameter must have at least 2 classes on its last axis. "
            f"Got shape {arr.shape} instead."
        )
    if arr.dtype not in (np.float32, np.float64):
        if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
            raise ValueError(
                "The 'predictions' parameter must hold numbers. "
                f"Got dtype {arr.dtype} instead."
            )
        arr = arr.astype(np.float64)
    _check_values(arr)
    return arr


def _check_values(arr: np.ndarray) -> None:
    # Chunked so that a multi-GB library never needs a full-size boolean temporary.
    row = int(np.prod(arr.shape[1:]))
    for sl in model_chunks(arr.shape[0], row):
        chunk = arr[sl]
        if not np.isfinite(chunk).all():
            raise ValueError(
                "The 'predictions' parameter must not contain NaN or infinity. "
                "Got non-finite values instead."
            )
        if arr.ndim == 3 and (chunk.min() < 0 or chunk.max() > 1):
            raise ValueError(
                "The 'predictions' parameter must hold probabilities in [0, 1] when it is 3-D. "
                f"Got values in [{chunk.min()}, {chunk.max()}] instead."
            )


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
        return y_arr.astype(np.float64), None
    if np.issubdtype(y_arr.dtype, np.integer) and y_arr.min() >= 0 and y_arr.max() < n_classes:
        return y_arr.astype(np.intp), np.arange(n_classes)
    classes, codes = np.unique(y_arr, return_inverse=True)
    if len(classes) != n_classes:
        raise ValueError(
            f"The 'y' parameter must hold integers in 0..{n_classes - 1} or exactly "
            f"{n_classes} distinct labels (one per probability column). "
            f"Got {len(classes)} distinct labels instead."
        )
    return codes.astype(np.intp), classes


def check_sample_weight(sample_weight: object, n_samples: int) -> np.ndarray | None:
    """Return a float64 weight vector or None."""
    if sample_weight is None:
        return None
    w = np.asarray(sample_weight, dtype=np.float64)
    if w.shape != (n_samples,):
        raise ValueError(
            f"The 'sample_weight' parameter must be a 1-D array of length {n_samples}. "
            f"Got shape {w.shape} instead."
        )
    if not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
        raise ValueError(
            "The 'sample_weight' parameter must hold finite non-negative values with a "
            "positive sum. Got invalid values instead."
        )
    return w


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
