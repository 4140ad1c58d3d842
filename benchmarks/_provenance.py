"""Which code a benchmark measured: the commit of the imported ensemble_hpo."""

from __future__ import annotations

import subprocess
from pathlib import Path


def code_commit(*watched: str) -> str:
    """Commit of the ensemble_hpo code imported, ``+dirty`` if ``watched`` paths have changes.

    Long runs import a frozen snapshot (``PYTHONPATH``), so the commit is read from the
    tree the package came from, not from the current folder.
    """
    import ensemble_hpo

    root = Path(ensemble_hpo.__file__).resolve().parents[1]
    try:
        sha = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                             text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--",
                                "ensemble_hpo", *watched], capture_output=True, text=True,
                               check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return sha[:12] + ("+dirty" if dirty else "")
