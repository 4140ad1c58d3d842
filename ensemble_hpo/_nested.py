"""Honest scores of the fitted ensemble: selection and fusion repeated inside the outer folds.

Selecting members and fitting a fuser on the out-of-fold predictions of *all* rows and
then scoring that ensemble on the same rows is optimistic: greedy selection picks the
candidates whose errors happen to cancel on exactly those rows. Here, for each outer
fold of the search (the folds every candidate was cross-validated on), a clone of the
selector and of every fuser is fitted on the other folds' out-of-fold rows only, and the
fused prediction of the held-out fold is kept. The concatenated held-out predictions are
scored once, like a candidate's own out-of-fold score. Choosing the best single candidate
is repeated the same way (``best_single_cv_score_``): ``best_score_``, the best of N
out-of-fold scores, is chosen on the rows it is scored on and is not on the same footing
as the ensemble's estimate. The same loop scores every fusion method on the
same per-fold selections, so the fusion comparison judges all fusers alike.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone

from ensemble_hpo._folds import groups_kwargs
from ensemble_hpo.metrics import PredictionScorer

__all__ = ["NestedScores", "nested_scores"]

COMPARISON_COLUMNS = ["fusion", "cv_score", "cv_std", "fit_seconds"]


@dataclass
class NestedScores:
    """Held-out scores of selection + fusion, in the scorer's sign (greater is better).

    ``scores`` maps each fuser's name to the score of its concatenated held-out
    predictions; ``table`` is the fusion comparison (``cv_std`` over folds);
    ``skipped`` names the fusers left out because the deadline passed, ``failed`` the
    comparison fusers that raised (with the error), which the table shows with NaN.
    """

    scores: dict[str, float]
    table: pd.DataFrame
    skipped: list[str]
    failed: dict[str, str] = field(default_factory=dict)


def nested_scores(
    predictions: np.ndarray,
    y: np.ndarray,
    splits: Sequence[tuple[np.ndarray, np.ndarray]],
    *,
    selector: Any,
    fusers: Mapping[str, Any],
    scorer: PredictionScorer,
    sample_weight: np.ndarray | None = None,
    X: np.ndarray | None = None,
    groups: np.ndarray | None = None,
    deadline: float | None = None,
) -> NestedScores:
    """Score ``selector`` followed by each of ``fusers`` on rows neither of them saw.

    The first fuser is always scored; the others are skipped once ``deadline`` (a
    ``time.time()`` value) has passed, so a fit that is out of time still reports an
    honest score for the fuser it uses. A comparison fuser that raises (a stacking whose
    predictions the metric cannot score, such as a negative count for Poisson deviance) is
    dropped with a warning; the first fuser's errors propagate.

    Parameters
    ----------
    predictions : ndarray of shape (n_models, n_samples[, n_classes])
        Every candidate's out-of-fold predictions.
    y : ndarray of shape (n_samples,)
    splits : sequence of (train, valid) index arrays
        The outer folds; their validation parts partition the rows.
    selector : selector (unfitted template, cloned per fold)
    fusers : mapping of name to fuser (unfitted templates, cloned per fold)
    scorer : PredictionScorer
    sample_weight, X, groups : optional per-row weights, fuser features and group labels
    deadline : float or None
    """
    names = list(fusers)
    fused = {name: None for name in names}
    fold_scores: dict[str, list[float]] = {name: [] for name in names}
    seconds: dict[str, list[float]] = {name: [] for name in names}
    skipped: list[str] = []
    failed: dict[str, str] = {}
    for train, valid in splits:
        rows = _Rows(train, sample_weight, X, groups)
        members, weights = _select(selector, predictions, y, rows)
        for name in names:
            if name in skipped or name in failed:
                continue
            if name != names[0] and deadline is not None and time.time() > deadline:
                skipped.append(name)
                continue
            start = time.perf_counter()
            try:
                out = _fuse_fold(fusers[name], predictions[members], y, weights, rows, valid)
                weight = None if sample_weight is None else sample_weight[valid]
                fold_scores[name].append(scorer(y[valid], out, sample_weight=weight))
            except Exception as exc:
                if name == names[0]:
                    raise
                failed[name] = f"{type(exc).__name__}: {exc}"
                continue
            seconds[name].append(time.perf_counter() - start)
            if fused[name] is None:
                fused[name] = np.empty((len(y),) + out.shape[1:])
            fused[name][valid] = out
    _warn_failed(failed)
    return _comparison(names, fused, fold_scores, seconds, y, scorer, sample_weight, skipped, failed)


def _warn_failed(failed: Mapping[str, str]) -> None:
    for name, error in failed.items():
        warnings.warn(f"The fusion comparison left out {name!r}, which failed: {error}",
                      RuntimeWarning, stacklevel=4)


def _comparison(names: list[str], fused: Mapping[str, Any], fold_scores: Mapping[str, list[float]],
                seconds: Mapping[str, list[float]], y: np.ndarray, scorer: PredictionScorer,
                sample_weight: np.ndarray | None, skipped: list[str],
                failed: dict[str, str]) -> NestedScores:
    kept = [name for name in names if name not in skipped and name not in failed]
    scores = {name: float(scorer(y, fused[name], sample_weight=sample_weight)) for name in kept}
    rows = [{"fusion": name, "cv_score": scores[name], "cv_std": float(np.std(fold_scores[name])),
             "fit_seconds": float(np.mean(seconds[name]))} for name in kept]
    rows += [{"fusion": name, "cv_score": np.nan, "cv_std": np.nan, "fit_seconds": np.nan}
             for name in failed]
    table = pd.DataFrame(rows, columns=COMPARISON_COLUMNS)
    table = table.sort_values("cv_score", ascending=False, kind="stable").reset_index(drop=True)
    return NestedScores(scores=scores, table=table, skipped=skipped, failed=failed)


@dataclass
class _Rows:
    """One outer fold's training rows and the per-row extras restricted to them."""

    train: np.ndarray
    sample_weight: np.ndarray | None
    X: np.ndarray | None
    groups: np.ndarray | None

    def take(self, values: np.ndarray | None) -> np.ndarray | None:
        return None if values is None else values[self.train]


def _select(selector: Any, predictions: np.ndarray, y: np.ndarray,
            rows: _Rows) -> tuple[np.ndarray, np.ndarray]:
    """Members (indices) and their weights chosen on the training rows only."""
    fitted = clone(selector)
    fitted.fit(predictions[:, rows.train], y[rows.train], sample_weight=rows.take(rows.sample_weight),
               **groups_kwargs(fitted, rows.take(rows.groups)))
    weights = np.asarray(fitted.weights_, dtype=np.float64)
    members = np.flatnonzero(weights > 0)
    return members, weights[members]


def _fuse_fold(fuser: Any, predictions: np.ndarray, y: np.ndarray, weights: np.ndarray,
               rows: _Rows, valid: np.ndarray) -> np.ndarray:
    fitted = clone(fuser)
    fitted.fit(
        predictions[:, rows.train], y[rows.train], weights=weights, X=rows.take(rows.X),
        sample_weight=rows.take(rows.sample_weight), **groups_kwargs(fitted, rows.take(rows.groups)),
    )
    return fitted.combine(predictions[:, valid], None if rows.X is None else rows.X[valid])
