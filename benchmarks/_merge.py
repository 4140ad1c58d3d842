"""Merging result CSVs of benchmark runs: one rule for the tables runner and the suite."""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["upsert"]


def upsert(old: pd.DataFrame, new: pd.DataFrame, key: list[str], *,
           keep_ok: bool = True) -> pd.DataFrame:
    """``old`` without the rows whose ``key`` is in ``new``, then ``new``; with ``keep_ok``, a
    failed row of ``new`` does not replace an ok row of ``old`` (a merge dropped the finished
    run; audit). Rows of one run that share a key (a leaderboard's candidates, whose status is
    their own) need ``keep_ok=False``.

    Keys compare by value: a seed read back as 0.0 is seed 0.
    """
    if old.empty:
        return new.reset_index(drop=True)
    if new.empty:
        return old
    if keep_ok and "status" in old and "status" in new:
        finished = set(_keys(old[old["status"] == "ok"], key))
        failed_over_ok = [k in finished and status != "ok"
                          for k, status in zip(_keys(new, key), new["status"], strict=True)]
        new = new[~np.asarray(failed_over_ok, dtype=bool)]
    keys = set(_keys(new, key))
    keep = [k not in keys for k in _keys(old, key)]
    return pd.concat([old[keep], new], ignore_index=True)


def _keys(frame: pd.DataFrame, key: list[str]) -> list[tuple[str, ...]]:
    def canonical(value: object) -> str:
        if isinstance(value, float | np.floating) and float(value).is_integer():
            return str(int(value))
        return str(value)

    return [tuple(map(canonical, row)) for row in frame[key].itertuples(index=False)]
