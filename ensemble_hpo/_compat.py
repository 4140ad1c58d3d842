"""The one place that touches other libraries' private API, each use explained."""

from __future__ import annotations

import inspect
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

__all__ = ["all_trials", "distribution_contains", "is_regression_metric", "mark_trial_failed",
           "scorer_reads_labels", "scores_predicted_labels", "set_trial_system_attr",
           "with_every_label"]


def mark_trial_failed(study: optuna.Study, trial: FrozenTrial, *, status: str) -> None:
    """Set a RUNNING trial of *another* (dead) process to FAIL.

    Optuna's public API only finishes trials through their own ``Trial`` object or
    ``study.tell``; ``tell`` refuses trials owned by another process's sampler
    state on some storages, so we go through the storage as Optuna's own
    ``fail_stale_trials`` does.
    """
    storage = study._storage  # noqa: SLF001 - no public handle to the storage
    storage.set_trial_user_attr(trial._trial_id, "status", status)  # noqa: SLF001
    storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)  # noqa: SLF001


def set_trial_system_attr(study: optuna.Study, trial: FrozenTrial, key: str, value: object) -> None:
    """Write a system attribute on a trial from inside a sampler hook.

    Samplers receive a ``FrozenTrial``; Optuna's own samplers (GridSampler,
    NSGA-II) record their bookkeeping through the storage the same way.
    """
    study._storage.set_trial_system_attr(trial._trial_id, key, value)  # noqa: SLF001


def all_trials(study: optuna.Study) -> list[FrozenTrial]:
    """Every trial of the study as stored, bypassing study views such as Hyperband's.

    Pruners like Hyperband hand samplers a study filtered to one bracket; grid
    claims must be checked against every trial.
    """
    return study._storage.get_all_trials(study._study_id, deepcopy=False)  # noqa: SLF001


def distribution_contains(distribution: optuna.distributions.BaseDistribution, value: Any) -> bool:
    """Whether ``value`` is a point of ``distribution`` (in range, on its step, a choice).

    Optuna answers it only through the private ``_contains`` on the internal representation;
    a value of the wrong type is not a point.
    """
    try:
        return bool(distribution._contains(distribution.to_internal_repr(value)))  # noqa: SLF001
    except (ValueError, TypeError):
        return False


def is_regression_metric(scorer: Any) -> bool:
    """Whether a scikit-learn scorer computes one of scikit-learn's regression metrics.

    ``r2`` or ``neg_mean_squared_error`` on a classification task score the predicted class
    codes as numbers and ran without complaint (audit). The metric function is a private
    attribute of the scorer; its module says which kind it is.
    """
    func = getattr(scorer, "_score_func", None)
    return getattr(func, "__module__", "") == "sklearn.metrics._regression"


def is_classification_metric(scorer: Any) -> bool:
    """Whether a scikit-learn scorer computes one of its classification or ranking metrics
    (accuracy, f1, ROC AUC...), which cannot score regression values."""
    func = getattr(scorer, "_score_func", None)
    return getattr(func, "__module__", "") in ("sklearn.metrics._classification",
                                               "sklearn.metrics._ranking")


def scores_predicted_labels(scorer: Any) -> bool:
    """Whether a scikit-learn scorer scores the predicted labels only (``predict``: f1,
    precision, accuracy, ...), not probabilities or decision values. scikit-learn keeps the
    response method in a private attribute only."""
    return getattr(scorer, "_response_method", None) == "predict"


def scorer_reads_labels(scorer: Any) -> bool:
    """Whether a scikit-learn scorer's value depends on which label is which.

    ``f1``, ``precision``, ``recall`` and ``jaccard`` (binary average, ``pos_label=1``) and
    any scorer given ``pos_label`` or ``labels`` do; accuracy, log loss, ROC AUC (positive
    class = ``classes_[1]``, the same class encoded or not) and macro averages do not.
    scikit-learn keeps a scorer's metric and arguments in private attributes only.
    """
    func, kwargs = getattr(scorer, "_score_func", None), getattr(scorer, "_kwargs", {})
    if func is None:
        return False
    if "pos_label" in kwargs or "labels" in kwargs:
        return True
    try:
        params = inspect.signature(func).parameters
    except (TypeError, ValueError):
        return True  # unknown: decoding is always correct, only slower
    average = kwargs.get("average", params["average"].default if "average" in params else None)
    return "pos_label" in params and average == "binary"


def with_every_label(scorer: Any, labels: Any) -> Any:
    """``scorer`` told every class label, for rows where some class is absent; or None.

    A probability scorer (``neg_brier_score``, ``roc_auc_ovr``, ...) compares the columns of
    ``predict_proba`` with the classes it finds in ``y_true`` and fails when a held-out fold
    misses a class ("y_true and y_prob contain different number of classes"); its metric
    takes ``labels`` but the scorer forwards no argument without metadata routing, so it is
    rebuilt from its metric and arguments (private attributes, as in scorer_reads_labels).
    None when the scorer reads labels otherwise (f1's ``labels`` changes which classes are
    averaged) or already has them.
    """
    func, kwargs = getattr(scorer, "_score_func", None), getattr(scorer, "_kwargs", {})
    method = getattr(scorer, "_response_method", None)
    if func is None or "labels" in kwargs or method not in ("predict_proba", ("predict_proba",)):
        return None
    try:
        if "labels" not in inspect.signature(func).parameters:
            return None
    except (TypeError, ValueError):
        return None
    from sklearn.metrics import make_scorer

    return make_scorer(func, response_method=method, greater_is_better=scorer._sign > 0,  # noqa: SLF001
                       **{**kwargs, "labels": list(labels)})
