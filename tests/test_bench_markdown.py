"""The benchmark reports' one markdown-table writer."""

from __future__ import annotations

import numpy as np
import pandas as pd

from benchmarks._markdown import markdown


def test_index_formats_and_missing_values():
    frame = pd.DataFrame({"loss": [0.12345, np.nan], "change": [0.01, -0.2], "runs": [3, 4]},
                         index=pd.Index(["wine", "iris"], name="table"))
    assert markdown(frame, formats={"change": "{:+.1%}"}).splitlines() == [
        "| table | loss | change | runs |",
        "|---|---|---|---|",
        "| wine | 0.1235 | +1.0% | 3 |",
        "| iris |  | -20.0% | 4 |",
    ]


def test_without_index_and_a_default_float_format():
    frame = pd.DataFrame({"name": ["a"], "x": [np.float32(2.0)]})
    assert markdown(frame, "{:.1f}", index=False).splitlines() == ["| name | x |", "|---|---|", "| a | 2.0 |"]
