"""The one place that validates prediction arrays, ``sample_weight`` and the task.

Selection, fusion, the deployment tools, the metrics and the fit-data checks all call these,
so one concept has one rule: a stack of predictions is valid for selection exactly when it is
valid for fusion, and every stage agrees on what a usable weight vector is. Only numpy here,
so every layer of the package can import it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

__all__ = [
    "CLASSIFICATION",
    "REGRESSION",
    "TASKS",
    "check_predictions",
    "check_sample_weight",
    "check_task",
    "model_chunks",
    "task_of_predictions",
]

CLASSIFICATION = "classification"
REGRESSION = "regression"
TASKS = (CLASSIFICATION, REGRESSION)

# Probabilities from float32 sums may stray this far outside [0, 1]; within it they are
# clipped, beyond it they are an error.
PROBA_TOLERANCE = 1e-6
# Bound on float64 elements touched per chunk (~4 MB) so temporaries stay cache friendly and
# memory stays bounded whatever the number of models.
CHUNK_ELEMENTS = 1 << 19


def check_task(task: Any) -> str:
    """Return ``task`` when it is one of :data:`TASKS`."""
    if task not in TASKS:
        raise ValueError(f"The 'task' parameter must be one of {TASKS}. Got {task!r} instead.")
    return task


def task_of_predictions(predictions: np.ndarray) -> str:
    """Classification for ``(n_models, n_samples, n_classes)``, regression for 2-D."""
    return CLASSIFICATION if predictions.ndim == 3 else REGRESSION


def model_chunks(n_models: int, row_elements: int) -> Iterator[slice]:
    """Yield slices of models whose float64 copy fits the chunk budget."""
    step = max(1, CHUNK_ELEMENTS // max(1, row_elements))
    for start in range(0, n_models, step):
        yield slice(start, min(start + step, n_models))


def check_predictions(predictions: Any, *, dtype: Any = None) -> np.ndarray:
    """Stacked predictions of several models, checked by the rule every stage shares.

    Valid: numbers, shaped ``(n_models, n_samples)`` (regression) or ``(n_models,
    n_samples, n_classes)`` with at least two classes (probabilities in [0, 1], up to
    :data:`PROBA_TOLERANCE`, then clipped), all finite. float32 and float64 arrays are
    returned without a copy unless ``dtype`` asks for another type or values are clipped,
    so a memory-mapped library of thousands of models is never duplicated.
    """
    arr = np.asarray(predictions)
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise ValueError("The 'predictions' parameter must hold numbers. "
                         f"Got dtype {arr.dtype} instead.")
    if arr.ndim not in (2, 3) or min(arr.shape) < 1 or (arr.ndim == 3 and arr.shape[2] < 2):
        raise ValueError(
            "The 'predictions' parameter must be a 2-D array (n_models, n_samples) for "
            "regression or a 3-D array (n_models, n_samples, n_classes) with at least 2 "
            f"classes for classification. Got shape {arr.shape} instead.")
    if dtype is not None:
        arr = arr.astype(dtype, copy=False)
    elif arr.dtype not in (np.float32, np.float64):
        arr = arr.astype(np.float64)
    low, high = _checked_range(arr)
    if low < 0.0 or high > 1.0:
        arr = np.clip(arr, 0.0, 1.0)
    return arr


def _checked_range(arr: np.ndarray) -> tuple[float, float]:
    """All values finite; for probabilities (3-D) also their range, else ``(0, 1)``."""
    # Chunked so that a multi-GB library never needs a full-size boolean temporary; the range
    # pass is skipped for regression, where any finite value is valid.
    probabilities = arr.ndim == 3
    low, high = (np.inf, -np.inf) if probabilities else (0.0, 1.0)
    for sl in model_chunks(arr.shape[0], int(np.prod(arr.shape[1:]))):
        chunk = arr[sl]
        if not np.isfinite(chunk).all():
            raise ValueError("The 'predictions' parameter must contain only finite values. "
                             "Got NaN or infinite values instead.")
        if probabilities:
            low, high = min(low, float(chunk.min())), max(high, float(chunk.max()))
    if low < -PROBA_TOLERANCE or high > 1.0 + PROBA_TOLERANCE:
        raise ValueError(
            "The 'predictions' parameter must hold probabilities in [0, 1] when it is 3-D. "
            f"Got values in [{low:.6g}, {high:.6g}] instead.")
    return low, high


def check_sample_weight(sample_weight: Any, n_samples: int) -> np.ndarray | None:
    """float64 weights (None stays None): numeric, finite, non-negative, positive sum.

    A zero sum is an error everywhere: no metric or fuser can weight rows by it.
    """
    if sample_weight is None:
        return None
    weights = np.asarray(sample_weight)
    if weights.ndim != 1 or weights.shape[0] != n_samples:
        raise ValueError(
            f"The 'sample_weight' parameter must be a 1-D array of length n_samples={n_samples}. "
            f"Got shape {weights.shape} instead.")
    if weights.dtype.kind not in "biuf":
        raise ValueError("The 'sample_weight' parameter must be numeric. "
                         f"Got dtype {weights.dtype} instead.")
    weights = weights.astype(np.float64)
    for bad, what in ((~np.isfinite(weights), "NaN or infinite"), (weights < 0, "negative")):
        if bad.any():
            raise ValueError(
                "The 'sample_weight' parameter must be finite and non-negative. Got "
                f"{int(bad.sum())} {what} value(s), the first at position "
                f"{int(np.argmax(bad))}, instead.")
    if not weights.sum() > 0:
        raise ValueError("The 'sample_weight' parameter must have a positive sum. "
                         "Got weights that sum to zero instead.")
    return weights
