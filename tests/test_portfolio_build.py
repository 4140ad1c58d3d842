"""Portfolio construction and the warm-start simulation (benchmarks/portfolio, issue 17)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("benchmarks.portfolio.build")

from benchmarks.portfolio.build import Evaluator, TaskData, build_portfolio  # noqa: E402
from benchmarks.portfolio.loto import finish_times, simulate  # noqa: E402


def _task(predictions: list[np.ndarray], cpu: list[float], y: np.ndarray) -> TaskData:
    """One regression table whose OOF and test rows are the same (so test loss = OOF loss)."""
    preds = np.stack(predictions).astype(np.float32)
    n = len(predictions)
    rmse = np.sqrt(((preds - y) ** 2).mean(axis=1))
    return TaskData(
        task="regression", tables=["t"], config_ids=[f"c-r{i:04d}" for i in range(n)],
        families=["c"] * n, ok=np.ones((1, n), bool), cpu=np.array([cpu], float),
        oof=[preds], test=[preds], y_train=[y], y_test=[y],
        single_oof=rmse[None], single_test=rmse[None],
        prior_test=np.array([float(np.sqrt(((y - y.mean()) ** 2).mean()))]))


@pytest.fixture
def data() -> TaskData:
    rng = np.random.default_rng(0)
    y = rng.normal(size=400)
    noise_a, noise_b = rng.normal(size=400), rng.normal(size=400)
    good = y + 0.5 * noise_a
    return _task([good, good.copy(), y + 0.5 * noise_b, y + 3.0 * noise_b], cpu=[1.0, 5.0, 2.0, 0.5], y=y)


def test_time_aware_order_prefers_the_cheaper_of_equal_configurations(data: TaskData) -> None:
    ev = Evaluator(data)
    steps = build_portfolio(ev, [0])
    ids = [s.config_id for s in steps]
    # c0 and c1 predict the same; c0 costs 1 s, c1 5 s: c1 never adds anything
    assert "c-r0001" not in ids
    # two independent errors average out: the greedy ensemble of c0 and c2 beats both
    assert {"c-r0000", "c-r0002"} <= set(ids)
    assert all(s.gain > 0 for s in steps)
    assert [s.mean_loss for s in steps] == sorted((s.mean_loss for s in steps), reverse=True)


def test_gain_per_second_puts_a_cheap_weak_model_before_an_expensive_strong_one() -> None:
    rng = np.random.default_rng(1)
    y = rng.normal(size=300)
    strong, weak = y + 0.2 * rng.normal(size=300), 0.5 * y
    data = _task([strong, weak], cpu=[50.0, 0.1], y=y)
    ev = Evaluator(data)
    assert [s.config_id for s in build_portfolio(ev, [0], time_aware=True)][0] == "c-r0001"
    assert [s.config_id for s in build_portfolio(ev, [0], time_aware=False)][0] == "c-r0000"


def test_two_workers_take_configurations_in_order() -> None:
    np.testing.assert_allclose(finish_times([0, 1, 2, 3], np.array([3.0, 1.0, 1.0, 5.0])),
                               [3.0, 1.0, 2.0, 7.0])


def test_simulation_ensembles_what_finished_by_the_budget(data: TaskData) -> None:
    ev = Evaluator(data)
    rows = simulate(ev, 0, [3, 0, 2], budgets=[0.1, 0.6, 2.5])
    assert [r["n_population"] for r in rows] == [1, 1, 3]  # nothing by 0.1 s: the first to finish
    assert rows[0]["test_loss"] == rows[1]["test_loss"] == pytest.approx(data.single_test[0, 3])
    assert rows[2]["test_loss"] == pytest.approx(ev.ensemble_loss(0, [0, 2, 3]))
    assert rows[2]["test_loss"] < data.single_test[0, [0, 2, 3]].min()


def test_parallel_mining_gives_the_same_portfolio_and_losses() -> None:
    rng = np.random.default_rng(2)
    y = rng.normal(size=300)
    preds = [y + s * rng.normal(size=300) for s in (0.3, 0.4, 0.5, 0.6, 0.8, 1.0, 1.5, 2.0)]
    data = _task(preds, cpu=[1.0, 0.5, 2.0, 0.3, 1.5, 0.2, 0.1, 0.4], y=y)
    serial, parallel = Evaluator(data), Evaluator(data, n_jobs=2)
    assert build_portfolio(serial, [0]) == build_portfolio(parallel, [0])
    assert parallel._pool is not None  # the forked workers did the fits
    assert parallel._cache == {k: serial._cache[k] for k in parallel._cache}
