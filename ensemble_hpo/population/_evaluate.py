"""Cross-validated training of one candidate on the splits shared by all candidates."""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.utils.validation import check_is_fitted

from ensemble_hpo._checks import CLASSIFICATION
from ensemble_hpo._folds import take_rows
from ensemble_hpo._outputs import copy_input_attributes, model_output
from ensemble_hpo._threads import thread_controller
from ensemble_hpo.metrics import PredictionScorer
from ensemble_hpo.population._store import prediction_dtype

__all__ = [
    "CandidateEvaluator",
    "CandidateFailed",
    "CandidateTimeout",
    "EvaluationResult",
    "SubsetLabelClassifier",
]


class CandidateFailed(RuntimeError):
    """The candidate raised or produced unusable (NaN/inf) predictions."""


class CandidateTimeout(RuntimeError):
    """The candidate ran past its time limit or the run's deadline.

    ``started`` is False when no fold was trained because the run's remaining
    time was too short: the search should stop rather than try more candidates.
    ``fold_seconds`` is the measured seconds per fold of the folds that did finish
    (None when none did), so later candidates of the family know its pace.
    """

    def __init__(self, message: str, *, started: bool = True,
                 fold_seconds: float | None = None) -> None:
        super().__init__(message)
        self.started = started
        self.fold_seconds = fold_seconds


@dataclass
class EvaluationResult:
    predictions: np.ndarray  # out-of-fold, see prediction_dtype
    models: list[Any]
    fold_scores: list[float]
    score: float
    fit_time: float
    extra: dict[str, Any] = field(default_factory=dict)
    # Sum over folds of each fold model's prediction seconds per validation row: the batch
    # latency of a member that averages its fold models (what the accuracy-latency front uses).
    predict_seconds_per_row: float = float("nan")


# ``report(fold_index, score)`` returns True when the candidate should stop (pruning).
FoldReporter = Callable[[int, float], bool]


class SubsetLabelClassifier(ClassifierMixin, BaseEstimator):
    """Fit a classifier on labels re-encoded to ``0..m-1``; ``classes_`` keeps the original codes.

    A training fold can miss a rare class, leaving labels such as ``{0, 2}`` that
    some libraries reject (XGBoost requires ``0..m-1``). The fitted model's
    ``classes_`` are the original labels, so code that places probability columns
    by ``classes_`` gives a class the fold never saw probability zero.

    Parameters
    ----------
    estimator : classifier
        Fitted on the re-encoded labels (cloned first).

    Attributes
    ----------
    estimator_ : classifier
        The fitted clone of ``estimator``.
    classes_ : ndarray of shape (n_classes,)
        The original labels, ordered as the columns of ``predict_proba``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> X, y = np.arange(8.0).reshape(-1, 1), np.array([0, 0, 0, 0, 2, 2, 2, 2])
    >>> SubsetLabelClassifier(estimator=LogisticRegression()).fit(X, y).classes_
    array([0, 2])
    """

    def __init__(self, *, estimator: Any = None) -> None:
        self.estimator = estimator

    def fit(self, X: Any, y: Any, **fit_params: Any) -> SubsetLabelClassifier:
        """Fit a clone of ``estimator`` on ``y`` encoded as indices into ``np.unique(y)``.

        ``fit_params`` (e.g. ``model__sample_weight`` for a pipeline) are passed on.
        """
        self.classes_, codes = np.unique(np.asarray(y), return_inverse=True)
        self.estimator_ = clone(self.estimator).fit(X, codes, **fit_params)
        copy_input_attributes(self, self.estimator_)
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, columns ordered as ``classes_``."""
        check_is_fitted(self, "estimator_")
        return self.estimator_.predict_proba(X)

    def predict(self, X: Any) -> np.ndarray:
        """The predicted classes, in the original labels."""
        check_is_fitted(self, "estimator_")
        codes = np.asarray(self.estimator_.predict(X)).reshape(-1).astype(np.intp)
        return self.classes_[codes]


def _contiguous_labels(y: np.ndarray) -> bool:
    labels = np.unique(y)
    return bool(labels[-1] == len(labels) - 1)


def _accepts_sample_weight(estimator: Any) -> bool:
    return _fit_accepts(estimator, "sample_weight")


def _fit_accepts(estimator: Any, keyword: str) -> bool:
    final = estimator.steps[-1][1] if hasattr(estimator, "steps") else estimator
    return keyword in inspect.signature(final.fit).parameters


def fit_routing(model: Any, sample_weight: np.ndarray | None, groups: np.ndarray | None) -> dict[str, Any]:
    """The keyword arguments of one fit of ``model``: every fit, the folds' and the refit's.

    Weights must be taken (a candidate that ignores them would be scored unweighted);
    groups go to models that take them (early stopping that keeps groups whole).
    """
    kwargs = {}
    if sample_weight is not None:
        if not _accepts_sample_weight(model):
            raise CandidateFailed("the estimator does not accept sample_weight")
        kwargs[_final_step_key(model, "sample_weight")] = sample_weight
    if groups is not None and _fit_accepts(model, "groups"):
        kwargs[_final_step_key(model, "groups")] = groups
    return kwargs


def _final_step_key(estimator: Any, keyword: str) -> str:
    """``keyword`` routed to a pipeline's last step, or as is for a bare estimator."""
    return f"{estimator.steps[-1][0]}__{keyword}" if hasattr(estimator, "steps") else keyword


@dataclass
class CandidateEvaluator:
    """Fits clones of an estimator on shared CV splits and keeps what selection needs.

    Parameters
    ----------
    X, y : data, with ``y`` label-encoded (``0..n_classes-1``) for classification.
    splits : list of (train_idx, valid_idx)
        The folds shared by every candidate, so out-of-fold predictions are comparable.
    task : {"classification", "regression"}
    scorer : PredictionScorer
    n_classes : int or None
    sample_weight : array or None
    """

    X: Any
    y: np.ndarray
    splits: Sequence[tuple[np.ndarray, np.ndarray]]
    task: str
    scorer: PredictionScorer
    n_classes: int | None = None
    sample_weight: np.ndarray | None = None
    n_threads: int | None = None
    # Group labels reach the estimators whose fit holds rows out of the training fold (the
    # boosters' early-stopping split), so a group never straddles that inner split either.
    groups: np.ndarray | None = None

    def empty_predictions(self) -> np.ndarray:
        shape = (len(self.y), self.n_classes) if self.task == CLASSIFICATION else (len(self.y),)
        return np.full(shape, np.nan, dtype=np.float32 if len(shape) > 1 else np.float64)

    def evaluate(
        self,
        estimator: Any,
        *,
        report: FoldReporter | None = None,
        deadline: float | None = None,
        expected_fold_seconds: float = 0.0,
    ) -> EvaluationResult:
        """Train ``estimator`` fold by fold; raise on failure, timeout or pruning (via ``report``).

        ``expected_fold_seconds`` (e.g. from earlier candidates of the same family)
        lets the first fold be skipped when it would certainly end past ``deadline``.
        """
        # OpenMP/BLAS pools sized for the whole machine oversubscribe it when anything
        # else runs (measured: HistGradientBoosting on breast_cancer 0.4 s with 1 thread,
        # 6.3 s with 2 on a busy 2-core box). Parallelism comes from n_jobs processes.
        with thread_controller().limit(limits=self.n_threads):
            return self._evaluate(estimator, report, deadline, expected_fold_seconds)

    def _evaluate(self, estimator: Any, report: FoldReporter | None, deadline: float | None,
                  expected_fold_seconds: float) -> EvaluationResult:
        start = time.perf_counter()
        # Summed over the folds that hold a row out: a repeated K-fold averages its repeats.
        oof_sum, held_out = np.zeros_like(self.empty_predictions(), dtype=np.float64), np.zeros(len(self.y))
        models, fold_scores = [], []
        per_row = 0.0
        for fold, (train, valid) in enumerate(self.splits):
            # Stop when the next fold, at the pace of the previous ones, would end past the deadline.
            pace = (time.perf_counter() - start) / fold if fold else expected_fold_seconds
            if deadline is not None and time.time() + pace > deadline:
                raise _deadline_timeout(fold, pace, deadline)
            model = self._fit_fold(estimator, train)
            predict_start = time.perf_counter()
            pred = self._predict(model, take_rows(self.X, valid))
            per_row += (time.perf_counter() - predict_start) / max(1, len(valid))
            oof_sum[valid] += pred
            held_out[valid] += 1
            fold_scores.append(self._score(valid, pred))
            models.append(model)
            if report is not None and report(fold, fold_scores[-1]):
                return EvaluationResult(self._average(oof_sum, held_out), models, fold_scores,
                                        float("nan"), time.perf_counter() - start,
                                        {"stopped_at_fold": fold})
        oof = self._average(oof_sum, held_out)
        covered = held_out > 0
        score = self._score(np.flatnonzero(covered), oof[covered])
        return EvaluationResult(oof, models, fold_scores, score, time.perf_counter() - start,
                                predict_seconds_per_row=per_row)

    def _average(self, oof_sum: np.ndarray, held_out: np.ndarray) -> np.ndarray:
        """Out-of-fold predictions averaged over the folds holding each row out (NaN: none)."""
        oof = self.empty_predictions()
        covered = held_out > 0
        oof[covered] = (oof_sum[covered].T / held_out[covered]).T
        return oof

    def _fit_fold(self, estimator: Any, train: np.ndarray) -> Any:
        model = clone(estimator)
        kwargs = fit_routing(model, None if self.sample_weight is None else self.sample_weight[train],
                             None if self.groups is None else self.groups[train])
        y_train = self.y[train]
        # The one place every candidate's fold is fitted: a fold that misses a class
        # (labels {0, 2}) is fitted on 0..m-1 by a wrapper whose classes_ keep the
        # original codes, so no family has to accept gaps and _predict still places
        # each column by classes_.
        if self.task == CLASSIFICATION and not _contiguous_labels(y_train):
            model = SubsetLabelClassifier(estimator=model)
        return model.fit(take_rows(self.X, train), y_train, **kwargs)

    def _predict(self, model: Any, X_valid: Any) -> np.ndarray:
        # A fold may miss a rare class: model_output places columns by the model's classes_.
        pred = model_output(model, X_valid, self.task, self.n_classes)
        if not np.all(np.isfinite(pred)):
            raise CandidateFailed("the model predicted NaN or infinite values")
        return pred.astype(prediction_dtype(pred))

    def _score(self, idx: np.ndarray, pred: np.ndarray) -> float:
        weights = None if self.sample_weight is None else self.sample_weight[idx]
        return self.scorer(self.y[idx], pred, sample_weight=weights)


def _deadline_timeout(fold: int, pace: float, deadline: float) -> CandidateTimeout:
    left = max(0.0, deadline - time.time())
    if not fold and not left:
        return CandidateTimeout("the run's deadline passed before fold 0", started=False)
    if not fold:
        return CandidateTimeout(
            f"the run's deadline would pass during fold 0: {left:.1f}s were left and earlier "
            f"candidates of this family took {pace:.1f}s per fold", started=False)
    return CandidateTimeout(
        f"the run's deadline would pass during fold {fold}: its folds took {pace:.1f}s each "
        f"and {left:.1f}s were left", fold_seconds=pace)
