"""A tqdm progress bar for the search: trials done, best score, time left."""

from __future__ import annotations

import time

import optuna

__all__ = ["ProgressCallback"]


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
