"""Merging benchmark result CSVs (benchmarks/_merge.py): the published counts rest on it."""

from __future__ import annotations

import pandas as pd

from benchmarks._merge import upsert
from benchmarks.suite.run import merge_runs

KEY = ["table", "seed"]


def _row(table, seed, status="ok", loss=1.0):
    return {"table": table, "seed": seed, "status": status, "loss": loss}


def test_rows_of_the_newer_frame_win():
    old = pd.DataFrame([_row("a", 0, loss=1.0), _row("b", 0)])
    new = pd.DataFrame([_row("a", 0, loss=0.5)])
    merged = upsert(old, new, KEY).set_index("table")
    assert len(merged) == 2 and merged.loc["a", "loss"] == 0.5


def test_a_failed_row_does_not_replace_a_finished_one():
    """Audit: merging a run whose retry failed dropped the table from the report."""
    old = pd.DataFrame([_row("a", 0, loss=0.9)])
    new = pd.DataFrame([_row("a", 0, status="failed: RuntimeError"), _row("b", 0, status="failed")])
    merged = upsert(old, new, KEY).set_index("table")
    assert merged.loc["a", "status"] == "ok" and merged.loc["a", "loss"] == 0.9
    assert merged.loc["b", "status"] == "failed"
    # ... and a finished row replaces a failed one.
    again = upsert(new, old, KEY).set_index("table")
    assert again.loc["a", "status"] == "ok"


def test_seeds_read_back_as_floats_are_the_same_seeds():
    old = pd.DataFrame([_row("a", 0)])
    new = pd.DataFrame([_row("a", 0.0, loss=0.5)])
    assert len(upsert(old, new, KEY)) == 1


def test_suite_merge_takes_each_leaderboard_whole_from_one_run(tmp_path):
    """Audit: merged by candidate number, one leaderboard held two runs' candidates; review:
    the candidates' own failed statuses must not drop them."""
    for tag, n, status in (("A", 5, "ok"), ("B", 4, "ok"), ("C", 2, "failed: boom")):
        pd.DataFrame([{"seed": 0, "dataset": "wine", "system": "ensemble_hpo", "status": status,
                       "n_trials": n}]).to_csv(tmp_path / f"{tag}.csv", index=False)
        pd.DataFrame({"seed": 0, "dataset": "wine", "number": range(n), "run": tag,
                      "status": ["ok", "timeout", "ok", "skipped", "ok"][:n]}).to_csv(
            tmp_path / f"{tag}_leaderboards.csv", index=False)
    merge_runs(tmp_path, "A", ["B", "C"])
    results = pd.read_csv(tmp_path / "A.csv")
    boards = pd.read_csv(tmp_path / "A_leaderboards.csv")
    assert results["n_trials"].tolist() == [4]  # C failed: B's finished row stays
    assert boards["run"].tolist() == ["B"] * 4 and boards["number"].tolist() == [0, 1, 2, 3]


def test_pooled_runs_keep_each_files_rows_as_replicates(tmp_path):
    from benchmarks.tables import _report
    from benchmarks.tables.pooled import pooled_rows

    def run(name, ensemble, status="ok"):
        row = {"table": "t", "task": "binary", "seed": 0, "status": status, "commit": "abc",
               "ensemble_loss": ensemble, "best_single_loss": 1.0, "members": 2,
               "candidates_ok": 5}
        path = tmp_path / name
        pd.DataFrame([row]).to_csv(path, index=False)
        return path

    rows = pooled_rows([run("a.csv", 0.9), run("b.csv", 1.2), run("c.csv", 0.5, "failed: x")])
    table = _report.per_table(rows).iloc[0]
    assert table["seeds"] == 2 and table["ensemble (mean)"] == 1.05 and not table["win mean"]
