"""Checks of the estimators' constructor parameters, alone and in combination.

They run at the start of ``fit`` (scikit-learn's rule: ``__init__`` only stores), before any
data is looked at, so a bad value fails in milliseconds rather than after the search.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from typing import Any

from ensemble_hpo._checks import ParameterConflict
from ensemble_hpo._folds import check_cv

__all__ = ["DEFAULT_N_TRIALS", "budget", "check_params"]

DEFAULT_N_TRIALS = 30
#: The largest seed numpy's generators take.
MAX_SEED = 2**32 - 1


def check_params(params: Mapping[str, Any]) -> None:
    """Raise ``ValueError`` naming the first bad parameter or combination."""
    check_cv(params["cv"])
    if params["final_models"] not in ("folds", "refit"):
        raise ValueError("The 'final_models' parameter must be 'folds' or 'refit'. "
                         f"Got {params['final_models']!r} instead.")
    _check_positive("n_trials", params["n_trials"], integral=True)
    _check_positive("time_budget", params["time_budget"], integral=False)
    _check_positive("trial_timeout", params["trial_timeout"], integral=False)
    _check_positive("n_jobs", params["n_jobs"], integral=True)
    _check_combinations(params)
    from ensemble_hpo.search._run import check_warm_start  # heavy: not at the CLI's start

    check_warm_start(params["warm_start_configs"], "warm_start_configs")
    seed = params["random_state"]
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral)
                             or not 0 <= seed <= MAX_SEED):
        # Out of range, numpy failed with "Seed must be between 0 and 2**32 - 1" (audit).
        raise ValueError(f"The 'random_state' parameter must be an int in [0, 2**32 - 1] or "
                         f"None. Got {seed!r} instead.")


def budget(params: Mapping[str, Any]) -> tuple[int | None, float | None]:
    """``(n_trials, time_budget)``; with neither set, :data:`DEFAULT_N_TRIALS` trials."""
    if params["n_trials"] is None and params["time_budget"] is None:
        return DEFAULT_N_TRIALS, None
    return params["n_trials"], params["time_budget"]


def _check_combinations(params: Mapping[str, Any]) -> None:
    """Parameter combinations that would fail late or silently do nothing."""
    storage, run_dir = params["storage"], params["run_dir"]
    if storage is not None and run_dir is None:
        raise ParameterConflict(
            "The 'run_dir' parameter must be set when 'storage' is: the study outlives the fit "
            "in the storage, but without a run folder the candidates' out-of-fold predictions "
            "and models live in memory only, so the next fit on that storage would find "
            f"trials it cannot use. Got storage={storage!r} and run_dir=None instead.")
    pruner, trial_timeout = params["pruner"], params["trial_timeout"]
    if pruner is not None and trial_timeout is not None:
        raise ParameterConflict(
            "The 'pruner' parameter has no effect with 'trial_timeout': candidates then train "
            "in a separate process and report their fold scores only when done. Drop one of "
            f"them. Got pruner={pruner!r} and trial_timeout={trial_timeout!r} instead.")
    if params["backend"] not in (None, "loky") and run_dir is None:
        raise ParameterConflict(
            "The 'run_dir' parameter must be set with a Dask backend: its workers share the "
            "study (the journal in run_dir, or 'storage') and the artifact folder. Got "
            f"backend={params['backend']!r} and run_dir=None instead.")


def _check_positive(name: str, value: Any, *, integral: bool) -> None:
    if value is None:
        return
    kind = numbers.Integral if integral else numbers.Real
    if isinstance(value, bool) or not isinstance(value, kind) or not 0 < value < math.inf:
        # An infinite time_budget without n_trials never stopped (audit).
        expected = "a positive int" if integral else "a positive, finite number of seconds"
        raise ValueError(f"The '{name}' parameter must be {expected} or None. Got {value!r} instead.")
