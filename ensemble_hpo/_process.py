"""Which process owns something: ``host:pid`` tags and whether their process has ended."""

from __future__ import annotations

import os
import socket

__all__ = ["is_dead_local_process", "process_tag"]


def process_tag() -> str:
    """``host:pid`` of this process, the tag that tells a live owner from a dead one."""
    return f"{socket.gethostname()}:{os.getpid()}"


def is_dead_local_process(tag: str | None) -> bool:
    """Whether ``tag`` names a process of this machine that has ended.

    False for another machine's process (it cannot be checked from here), a malformed tag,
    or another user's live process.
    """
    host, _, pid = (tag or "").rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
