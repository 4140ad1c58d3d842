"""Shared command line and output of the offline studies on the portfolio repository.

``member_filter``, ``fallback_gate`` and ``log_target`` each score every (or every regression)
table of the unpacked repository and write ``<stem>.csv`` (one row per table) and
``<stem>.md`` (the report, also printed).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from benchmarks.portfolio._store import Repository

DEFAULT_REPO = Path("/work/portfolio_repo")


def parser(description: str) -> argparse.ArgumentParser:
    """``--repo`` (the unpacked repository) and ``--out`` (the results folder)."""
    cli = argparse.ArgumentParser(description=description)
    cli.add_argument("--repo", type=Path, default=DEFAULT_REPO)
    cli.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    return cli


def per_table(root: Path, table_row: Callable[[Repository, str], dict]) -> pd.DataFrame:
    """``table_row(repository, table)`` for every stored table, one row each."""
    repo = Repository(root)
    return pd.DataFrame([table_row(repo, table) for table in repo.tables()])


def write(out: Path, stem: str, frame: pd.DataFrame, report: str) -> None:
    """``frame`` as ``<out>/<stem>.csv`` and ``report`` as ``<out>/<stem>.md``; prints the report."""
    frame.to_csv(out / f"{stem}.csv", index=False)
    (out / f"{stem}.md").write_text(report)
    print(report)
