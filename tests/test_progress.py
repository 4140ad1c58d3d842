"""Progress bars: search (trials, best score, time left) and the ensemble steps after it."""

from __future__ import annotations

import pytest
from sklearn.datasets import load_breast_cancer

from ensemble_hpo import EnsembleClassifier
from ensemble_hpo._stage_progress import StageProgress


@pytest.fixture(scope="module")
def data():
    X, y = load_breast_cancer(return_X_y=True)
    return X[:200], y[:200]


def _fit(data, **kwargs) -> None:
    EnsembleClassifier(models=["logistic", "knn"], n_trials=4, cv=3, random_state=0,
                       **kwargs).fit(*data)


def test_verbose_fit_shows_search_and_selection_progress(data, capfd) -> None:
    _fit(data, verbose=1, time_budget=60)
    err = capfd.readouterr().err
    assert "search" in err and "4/4" in err
    assert "best=-0." in err  # best neg log loss so far
    assert "left=" in err  # time left of the budget
    assert "ensemble" in err and "3/3" in err
    assert "selection" in err and "members=" in err and "best_single=" in err
    assert "fuser=WeightedAverage" in err


def test_a_search_in_worker_processes_shows_its_progress_too(data, capfd, tmp_path) -> None:
    """Jupyter audit: with n_jobs > 1 the search showed no bar at all."""
    _fit(data, verbose=1, n_jobs=2, run_dir=str(tmp_path / "run"))
    err = capfd.readouterr().err
    assert "search" in err and "4/4" in err and "best=-0." in err
    assert "ensemble" in err and "3/3" in err


def test_quiet_fit_prints_nothing(data, capfd) -> None:
    _fit(data, verbose=0)
    captured = capfd.readouterr()
    assert "search" not in captured.err and "ensemble" not in captured.err
    assert captured.out == ""


def test_stage_progress_disabled_is_a_no_op(capfd) -> None:
    with StageProgress(["a", "b"], enabled=False) as progress:
        progress.done("a", "b", score=1.0)
    assert capfd.readouterr().err == ""


def test_stage_progress_reports_each_step(capfd) -> None:
    with StageProgress(["a", "b"], enabled=True, desc="steps") as progress:
        progress.done("a", "b", score=0.123456)
        progress.done("b")
    err = capfd.readouterr().err
    assert "steps" in err and "2/2" in err and "score=0.1235" in err and "b…" in err


def test_the_search_bar_is_closed_when_the_search_ends_or_is_interrupted(monkeypatch):
    """Audit: left open, the search bar was redrawn inside the ensemble bar, and beside a
    re-run notebook cell's after an interrupt."""
    from ensemble_hpo.search import _progress, _run

    bars = []
    real = _progress.ProgressCallback

    class Recorded(real):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            bars.append(self._bar)

    monkeypatch.setattr(_run, "ProgressCallback", Recorded)
    X, y = load_breast_cancer(return_X_y=True)
    EnsembleClassifier(models=["logistic"], time_budget=3, cv=3, verbose=1,
                       warm_start_configs=None).fit(X, y)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(_run, "optimize_shared", interrupted)
    with pytest.raises(KeyboardInterrupt):
        EnsembleClassifier(models=["logistic"], n_trials=2, cv=3, verbose=1).fit(X, y)
    assert len(bars) == 2 and all(bar.disable for bar in bars)  # tqdm disables a closed bar
