"""The one markdown-table writer of the benchmark reports (no optional dependency)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def markdown(frame: pd.DataFrame, floatfmt: str = "{:.4f}", formats: dict[str, str] | None = None,
             *, index: bool = True) -> str:
    """``frame`` as a markdown table.

    Floats use ``formats[column]`` or ``floatfmt``; NaN is an empty cell. With ``index``
    the index is the first column, headed by its name.
    """
    formats = formats or {}
    cols = [str(c) for c in frame.columns]
    header = ([frame.index.name or ""] if index else []) + cols
    lines = ["| " + " | ".join(map(str, header)) + " |", "|" + "---|" * len(header)]
    for idx, *values in frame.itertuples(name=None):
        cells = [_cell(v, formats.get(c, floatfmt)) for c, v in zip(cols, values, strict=True)]
        lines.append("| " + " | ".join(([str(idx)] if index else []) + cells) + " |")
    return "\n".join(lines)


def _cell(value: object, fmt: str) -> str:
    if isinstance(value, (float, np.floating)):
        return "" if np.isnan(value) else fmt.format(value)
    return str(value)
