"""Run a callable in a separate, killable process with a wall-clock limit.

Python threads cannot be stopped, so a candidate that hangs (a stuck solver, a
deadlocked native library) can only be stopped by killing the process it runs
in. Each call gets its own child from a fork server (cheap to start, no
inherited threads); on timeout the child is killed outright, and a child that
dies (segfault, out of memory) is reported as a failed candidate instead of
taking the run down. Pool executors were tried first: their shutdown did not
reliably kill a busy worker, which then blocked interpreter exit.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from typing import Any

from ensemble_hpo.population._evaluate import CandidateFailed, CandidateTimeout

__all__ = ["call_with_timeout"]


def _child(conn: Any, func: Callable[..., Any], args: tuple, kwargs: dict) -> None:
    try:
        conn.send((True, func(*args, **kwargs)))
    except BaseException as exc:  # noqa: BLE001 - every failure goes back to the parent
        conn.send((False, exc))
    finally:
        conn.close()


def call_with_timeout(func: Callable[..., Any], *args: Any, timeout: float, **kwargs: Any) -> Any:
    """Return ``func(*args, **kwargs)`` computed in a child process, or raise CandidateTimeout."""
    ctx = multiprocessing.get_context("forkserver")
    # Replaces the default preload of ``__main__``, which would re-run a user's script
    # without a main guard inside the server; our own modules make children start fast.
    ctx.set_forkserver_preload(["ensemble_hpo.population._evaluate"])
    receiver, sender = ctx.Pipe(duplex=False)
    process = ctx.Process(target=_child, args=(sender, func, args, kwargs), daemon=True)
    process.start()
    sender.close()
    try:
        if not receiver.poll(max(timeout, 0.0)):
            raise CandidateTimeout(f"the candidate exceeded its time limit of {timeout:.1f}s")
        try:
            ok, payload = receiver.recv()
        except EOFError:
            raise CandidateFailed(
                f"the candidate's process died (exit code {process.exitcode})"
            ) from None
    finally:
        if process.is_alive():
            process.kill()
        process.join()
        receiver.close()
    if ok:
        return payload
    raise payload
