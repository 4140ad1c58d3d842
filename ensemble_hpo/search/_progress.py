"""A tqdm progress bar for the search: trials done, best score, time left."""

from __future__ import annotations

import threading
import time
from typing import Any

import optuna

from ensemble_hpo.search._runner import count_finished

__all__ = ["ProgressCallback", "StudyPoller"]


class ProgressCallback:
    """Optuna callback updating one progress bar per search (trial count or seconds)."""

    def __init__(self, n_trials: int | None, deadline: float | None) -> None:
        # Imported here: tqdm.auto warns at import time in Jupyter without ipywidgets,
        # and only runs with a progress bar need it.
        from tqdm.auto import tqdm

        self.deadline = deadline
        self._bar = tqdm(total=n_trials, desc="search", unit="trial", leave=True)

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        self._bar.update(1)
        self._describe(study)

    def show_finished(self, study: optuna.Study, n_finished: int) -> None:
        """Move the bar to ``n_finished`` trials (counted elsewhere, e.g. in the storage)."""
        self._bar.update(n_finished - self._bar.n)
        self._describe(study)

    def _describe(self, study: optuna.Study) -> None:
        postfix = {}
        try:
            postfix["best"] = f"{study.best_value:.4f}"
        except ValueError:
            pass  # no completed trial yet
        if self.deadline is not None:
            postfix["left"] = f"{max(0.0, self.deadline - time.time()):.0f}s"
        self._bar.set_postfix(postfix)

    def close(self) -> None:
        """End the bar (left open, it was redrawn inside the next bar, or beside a re-run
        cell's after an interrupt; audit)."""
        self._bar.close()


class StudyPoller:
    """Moves a search bar from the study's storage while worker processes run the trials.

    With ``n_jobs > 1`` the trials end in other processes, where an Optuna callback cannot
    reach this process's bar: the search showed no bar at all (Jupyter audit). A thread
    reads the shared storage every ``interval`` seconds instead and closes the bar on exit.
    """

    def __init__(self, bar: ProgressCallback, study: optuna.Study, interval: float = 1.0) -> None:
        self._bar, self._study, self._interval = bar, study, interval
        self._before = count_finished(study)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, name="ensemble_hpo-progress", daemon=True)

    def __enter__(self) -> StudyPoller:
        self._thread.start()
        return self

    def __exit__(self, exc_type: Any, *exc: Any) -> None:
        self._stop.set()
        try:
            self._thread.join()
            if exc_type is None:  # a failing read must not replace the search's own error
                self._refresh()
        finally:
            self._bar.close()

    def _refresh(self) -> None:
        self._bar.show_finished(self._study, count_finished(self._study) - self._before)

    def _poll(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self._refresh()
            except Exception:  # noqa: BLE001 - a missed redraw must not end the search's thread
                continue
