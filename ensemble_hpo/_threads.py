"""One cached threadpoolctl controller for the places that cap native thread pools."""

from __future__ import annotations

import functools

from threadpoolctl import ThreadpoolController


@functools.lru_cache(maxsize=1)
def thread_controller() -> ThreadpoolController:
    """The process's controller, built on first use.

    Building one scans every loaded native library (~25 ms, and ~0.5-4 ms per
    ``threadpool_limits`` call, which builds one each time); once is enough because the
    libraries that matter (numpy's BLAS, those of a candidate's model) are loaded by the
    time the first caller runs.
    """
    return ThreadpoolController()
