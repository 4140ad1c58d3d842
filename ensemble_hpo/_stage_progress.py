"""A progress bar over the steps after the search: selection, fusion, fusion comparison."""

from __future__ import annotations

import time
from collections.abc import Sequence
from types import TracebackType
from typing import Any

__all__ = ["StageProgress"]


class StageProgress:
    """One tqdm bar with a step per stage; a no-op when ``enabled`` is False.

    Each finished step shows the stage's results (for example the ensemble's
    out-of-fold score next to the best single candidate's) and how long it took.
    """

    def __init__(self, stages: Sequence[str], *, enabled: bool, desc: str = "ensemble") -> None:
        self._bar = None
        self._started = time.perf_counter()
        if enabled:
            # Imported lazily: tqdm.auto warns in Jupyter without ipywidgets, and quiet runs
            # (verbose=0, CI logs) never need it.
            from tqdm.auto import tqdm

            self._bar = tqdm(total=len(stages), desc=desc, unit="step", leave=True)
            self._bar.set_postfix_str(f"{stages[0]}…" if stages else "")

    def done(self, stage: str, next_stage: str | None = None, **results: Any) -> None:
        """Mark ``stage`` finished, show its results, and name the stage now running."""
        if self._bar is None:
            return
        now = time.perf_counter()
        parts = [f"{stage} {now - self._started:.1f}s"]
        parts += [f"{key}={_short(value)}" for key, value in results.items()]
        if next_stage is not None:
            parts.append(f"{next_stage}…")
        self._started = now
        self._bar.update(1)
        self._bar.set_postfix_str(", ".join(parts))

    def __enter__(self) -> StageProgress:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._bar is not None:
            self._bar.close()


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
