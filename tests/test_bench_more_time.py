"""benchmarks/suite/more_time.py pairs runs by (seed, data set, system) and reports the change."""

from __future__ import annotations

import pandas as pd
import pytest

from benchmarks.suite.more_time import paired, per_system


def _suite(budget: float, losses: dict[tuple[int, str, str], float], failed=()) -> pd.DataFrame:
    rows = []
    for (seed, dataset, system), loss in losses.items():
        task = "regression" if dataset == "diabetes" else "classification"
        rows.append({"budget": budget, "seed": seed, "dataset": dataset, "system": system,
                     "task": task, "status": "failed" if (seed, dataset, system) in failed else "ok",
                     "log_loss": loss if task == "classification" else float("nan"),
                     "rmse": loss if task == "regression" else float("nan")})
    return pd.DataFrame(rows)


def test_pairs_only_runs_ok_at_both_budgets_and_uses_each_tasks_loss():
    short = _suite(60, {(0, "wine", "ensemble_hpo"): 0.10, (0, "diabetes", "ensemble_hpo"): 50.0,
                        (1, "wine", "ensemble_hpo"): 0.20, (0, "wine", "flaml"): 0.3})
    long = _suite(300, {(0, "wine", "ensemble_hpo"): 0.12, (0, "diabetes", "ensemble_hpo"): 45.0,
                        (1, "wine", "ensemble_hpo"): 0.10, (0, "wine", "flaml"): 0.2},
                  failed={(0, "wine", "flaml")})
    pairs = paired(short, long).set_index(["seed", "dataset", "system"])["rel"]
    assert sorted(pairs.index) == [(0, "diabetes", "ensemble_hpo"), (0, "wine", "ensemble_hpo"),
                                   (1, "wine", "ensemble_hpo")]
    assert pairs[(0, "wine", "ensemble_hpo")] == pytest.approx(0.2)
    assert pairs[(0, "diabetes", "ensemble_hpo")] == pytest.approx(-0.1)
    row = per_system(paired(short, long)).set_index("system").loc["ensemble_hpo"]
    assert row["runs"] == 3 and row["better / worse"] == "2 / 1"
    assert row["mean change"] == pytest.approx((0.2 - 0.1 - 0.5) / 3)
    assert row["largest loss"] == pytest.approx(0.2)
