"""Run a callable in a separate, killable worker process with a wall-clock limit.

Python threads cannot be stopped, so a candidate that hangs (a stuck solver, a
deadlocked native library) can only be stopped by killing the process it runs
in. loky's reusable executor keeps one warm worker, so the isolation costs one
pickling round-trip per candidate rather than a process start.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable
from typing import Any

from joblib.externals.loky import get_reusable_executor

from ensemble_hpo.population._evaluate import CandidateTimeout

__all__ = ["call_with_timeout"]


def call_with_timeout(func: Callable[..., Any], *args: Any, timeout: float, **kwargs: Any) -> Any:
    """Return ``func(*args, **kwargs)`` computed in a worker process, or raise CandidateTimeout."""
    executor = get_reusable_executor(max_workers=1, reuse=True)
    future = executor.submit(func, *args, **kwargs)
    try:
        return future.result(timeout=max(timeout, 0.0))
    except concurrent.futures.TimeoutError:
        executor.shutdown(wait=False, kill_workers=True)
        raise CandidateTimeout(f"the candidate exceeded its time limit of {timeout:.1f}s") from None
