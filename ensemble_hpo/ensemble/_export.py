"""Deploy a fitted ensemble as scikit-learn estimators.

Two routes:

* :class:`FittedEnsembleModel` wraps an :class:`~ensemble_hpo.ensemble.Ensemble`
  as a prefit scikit-learn estimator (members and fuser unchanged).
* :func:`to_sklearn` rebuilds the ensemble from scikit-learn's own
  ``VotingClassifier`` / ``VotingRegressor`` / ``StackingClassifier`` /
  ``StackingRegressor``, so it can be served where only scikit-learn is installed
  (plus the members' libraries) and inspected with scikit-learn tooling. Each
  member becomes one :class:`FoldAverage` of its fold models.

Member models were trained on encoded labels ``0..k-1``; ``classes`` maps the
encoded labels back to the original ones.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.ensemble import (
    StackingClassifier,
    StackingRegressor,
    VotingClassifier,
    VotingRegressor,
)
from sklearn.metrics import accuracy_score, r2_score
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import Bunch, ClassifierTags, RegressorTags
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted, get_tags

from .._checks import CLASSIFICATION
from .._folds import k_fold_splitter
from .._outputs import copy_input_attributes
from ..fusion._stacking import _PROBA_FLOOR, LastStepWeights, Stacking
from ..population._evaluate import fit_routing
from ._fitted import Ensemble

__all__ = ["FittedEnsembleModel", "FoldAverage", "LogRatioFeatures", "to_sklearn"]

# Vote weights that are ratios of small integers (greedy selection counts) are
# exported as those integers, so that sklearn's summed hard votes tie exactly
# where the ensemble's vote shares tie.
_MAX_VOTE_DENOMINATOR = 10_000
_RATIONAL_TOLERANCE = 1e-9


# -- one member: the average of its fold models ------------------------------------------------
def _averages_classifiers(estimator: FoldAverage) -> bool:
    return estimator._is_classifier()


class FoldAverage(BaseEstimator):
    """Average of several models of one candidate, e.g. its cross-validation fold models.

    A classifier when its estimators are classifiers (``predict_proba`` is the
    mean of theirs, ``predict`` its argmax), a regressor otherwise (``predict``
    is the mean). ``fit`` clones and fits every estimator on the same data;
    :func:`to_sklearn` instead builds it from already fitted fold models.

    Parameters
    ----------
    estimators : list of estimators
        Models averaged with equal weight; all classifiers or all regressors.
    feature_info : InputInfo, default=None
        A fitted estimator's ``feature_info_``: ``X`` is then checked and converted as
        the estimator's own ``predict`` does (column names, order and kinds; an array
        becomes a DataFrame when named columns were fitted) before the models see it.
        None passes ``X`` unchanged.

    Attributes
    ----------
    estimators_ : list of estimators
        The fitted models.
    classes_ : ndarray of shape (n_classes,)
        Class labels (classification only). A model that never saw a class
        gives it probability zero.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.tree import DecisionTreeClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> model = FoldAverage(estimators=[LogisticRegression(max_iter=500),
    ...                                 DecisionTreeClassifier(random_state=0)]).fit(X, y)
    >>> model.predict_proba(X[:1]).shape
    (1, 3)
    """

    def __init__(self, *, estimators: Sequence[Any] | None = None, feature_info: Any = None) -> None:
        self.estimators = estimators
        self.feature_info = feature_info

    def _input(self, X: Any) -> Any:
        if self.feature_info is None:
            return X
        from .._validation import validate_predict_data

        return validate_predict_data(X, self.feature_info)

    def fit(self, X: Any, y: Any, sample_weight: Any = None, groups: Any = None) -> FoldAverage:
        """Clone and fit every estimator on ``X``, ``y``.

        Parameters
        ----------
        X, y : the training data.
        sample_weight : array-like of shape (n_samples,), default=None
            Passed to every estimator (a pipeline's last step); one that cannot take it fails.
        groups : array-like of shape (n_samples,), default=None
            Passed to the estimators whose ``fit`` takes ``groups``, as the search fitted
            them: the built-in boosters then hold whole groups out for early stopping. Inside
            a voting or stacking export it arrives through scikit-learn's metadata routing
            (``set_config(enable_metadata_routing=True)`` and ``set_fit_request(groups=True)``).

        Returns
        -------
        self : FoldAverage
        """
        self._check_estimators()
        X = self._input(X)
        # To a pipeline's last step, as the search fitted them (Pipeline.fit refused it; audit).
        groups = None if groups is None else np.asarray(groups)
        self.estimators_ = [clone(est).fit(X, y, **fit_routing(est, sample_weight, groups))
                            for est in self.estimators]
        if self._is_classifier():
            self.classes_ = np.unique(y)
        copy_input_attributes(self, self.estimators_[0])
        return self

    def _check_estimators(self) -> None:
        if not isinstance(self.estimators, Sequence) or len(self.estimators) == 0:
            raise ValueError(
                "The 'estimators' parameter must be a non-empty list of estimators. "
                f"Got {self.estimators!r} instead."
            )
        kinds = {get_tags(est).estimator_type for est in self.estimators}
        if len(kinds) != 1 or kinds & {None}:
            raise ValueError(
                "The 'estimators' parameter must hold only classifiers or only regressors. "
                f"Got estimator types {sorted(map(str, kinds))} instead."
            )

    def _estimator_type(self) -> str | None:
        if not isinstance(self.estimators, Sequence) or len(self.estimators) == 0:
            return None
        return get_tags(self.estimators[0]).estimator_type

    def _is_classifier(self) -> bool:
        return self._estimator_type() == "classifier"

    @available_if(_averages_classifiers)
    def predict_proba(self, X: Any) -> np.ndarray:
        """Mean of the models' class probabilities, columns ordered as ``classes_``."""
        check_is_fitted(self)
        X = self._input(X)
        outputs = [self._padded_proba(model, X) for model in self.estimators_]
        return np.mean(outputs, axis=0)

    def _padded_proba(self, model: Any, X: Any) -> np.ndarray:
        raw = np.asarray(model.predict_proba(X), dtype=np.float64)
        proba = np.zeros((raw.shape[0], len(self.classes_)))
        proba[:, np.searchsorted(self.classes_, model.classes_)] = raw
        return proba

    @available_if(_averages_classifiers)
    def decision_function(self, X: Any) -> np.ndarray:
        """Log-probabilities, floored at 1e-15: the logit ``log(p1 / p0)`` for two classes.

        These are the scores :class:`~ensemble_hpo.fusion.Stacking` builds its
        meta features from, which lets :func:`to_sklearn` export stacking exactly.
        """
        log_proba = np.log(np.clip(self.predict_proba(X), _PROBA_FLOOR, 1.0))
        if log_proba.shape[1] == 2:
            return log_proba[:, 1] - log_proba[:, 0]
        return log_proba

    def predict(self, X: Any) -> np.ndarray:
        """Most probable class (classification) or the mean prediction (regression)."""
        check_is_fitted(self)
        if self._is_classifier():
            return self.classes_[np.argmax(self.predict_proba(X), axis=1)]
        X = self._input(X)
        outputs = [np.asarray(m.predict(X), dtype=np.float64).reshape(-1) for m in self.estimators_]
        return np.mean(outputs, axis=0)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.estimator_type = self._estimator_type()
        if tags.estimator_type == "classifier":
            tags.classifier_tags = ClassifierTags()
        elif tags.estimator_type == "regressor":
            tags.regressor_tags = RegressorTags()
        return tags


def prefit_fold_average(models: Sequence[Any], task: str, n_classes: int | None,
                        feature_info: Any = None) -> FoldAverage:
    """A :class:`FoldAverage` of already fitted models trained on labels ``0..n_classes-1``."""
    model = FoldAverage(estimators=list(models), feature_info=feature_info)
    model.estimators_ = list(models)
    if task == CLASSIFICATION:
        model.classes_ = np.arange(n_classes)
    copy_input_attributes(model, model.estimators_[0])
    return model


# -- stacking meta features from FoldAverage.decision_function ---------------------------------
class LogRatioFeatures(TransformerMixin, BaseEstimator):
    """Turn stacked :meth:`FoldAverage.decision_function` outputs into Stacking's meta features.

    Input: per member, one logit column (two classes) or ``n_classes``
    log-probability columns. Output: per member, the log-probabilities of the
    first ``n_classes - 1`` classes minus that of the last, exactly as
    :class:`~ensemble_hpo.fusion.Stacking` computes them.

    Parameters
    ----------
    n_classes : int
        Number of classes (at least 2).

    Examples
    --------
    >>> import numpy as np
    >>> LogRatioFeatures(n_classes=2).fit(np.zeros((1, 2))).transform(np.array([[1.5, -0.5]]))
    array([[-1.5,  0.5]])
    """

    def __init__(self, *, n_classes: int = 2) -> None:
        self.n_classes = n_classes

    def _block_width(self) -> int:
        return 1 if self.n_classes == 2 else self.n_classes

    def fit(self, X: Any, y: Any = None) -> LogRatioFeatures:
        """Check the number of columns; nothing is learned."""
        if not isinstance(self.n_classes, (int, np.integer)) or self.n_classes < 2:
            raise ValueError(
                f"The 'n_classes' parameter must be an int >= 2. Got {self.n_classes!r} instead."
            )
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] % self._block_width() != 0:
            raise ValueError(
                f"The 'X' parameter must have a multiple of {self._block_width()} columns "
                f"(one block per member). Got shape {X.shape} instead."
            )
        self.n_features_in_ = X.shape[1]
        return self

    def transform(self, X: Any) -> np.ndarray:
        """Meta features, member-major, shape (n_samples, n_members * (n_classes - 1))."""
        check_is_fitted(self)
        X = np.asarray(X, dtype=np.float64)
        if self.n_classes == 2:
            # The input is log p1 - log p0; negating it is exact in floating point.
            return -X
        log_proba = X.reshape(X.shape[0], -1, self.n_classes)
        ratios = log_proba[..., :-1] - log_proba[..., -1:]
        return ratios.reshape(X.shape[0], -1)


# -- the prefit wrapper ------------------------------------------------------------------------
def _is_classification(estimator: FittedEnsembleModel) -> bool:
    return getattr(estimator.ensemble, "task", None) == CLASSIFICATION


class FittedEnsembleModel(BaseEstimator):
    """A fitted :class:`~ensemble_hpo.ensemble.Ensemble` as a scikit-learn estimator.

    A prefit meta-estimator: ``ensemble`` is its parameter and ``fit`` trains
    nothing, it only validates the ensemble and records the fitted attributes.
    ``clone`` therefore gives an unfitted copy with the same (deep-copied)
    ensemble, which ``fit`` makes usable again. Because ``fit`` ignores its
    data, cross-validating this estimator would score members on rows they were
    trained on: use the search's ``cv_score_`` instead.

    Parameters
    ----------
    ensemble : Ensemble
        Fitted members and fuser, e.g. ``EnsembleClassifier().fit(X, y).ensemble_``.
    classes : array-like of shape (n_classes,), default=None
        Original class labels, sorted, indexed by the encoded labels the members
        were trained on; None means ``0..n_classes-1``. Classification only.
    feature_info : InputInfo, default=None
        The fitted estimator's ``feature_info_``: new ``X`` is then checked and
        converted as the estimator's own ``predict`` does (column names, order
        and kinds; an array becomes a DataFrame when named columns were fitted).
        None passes ``X`` to the members unchanged.

    Attributes
    ----------
    ensemble_ : Ensemble
        The validated ensemble.
    classes_ : ndarray of shape (n_classes,)
        Class labels (classification only).
    n_members_ : int
        Number of members.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from ensemble_hpo import EnsembleClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = EnsembleClassifier(models=["logistic"], n_trials=2, cv=3, random_state=0).fit(X, y)
    >>> model = FittedEnsembleModel(ensemble=clf.ensemble_, classes=clf.classes_,
    ...                             feature_info=clf.feature_info_).fit()
    >>> bool((model.predict(X) == clf.predict(X)).all())
    True
    """

    def __init__(
        self, *, ensemble: Ensemble | None = None, classes: Any = None, feature_info: Any = None
    ) -> None:
        self.ensemble = ensemble
        self.classes = classes
        self.feature_info = feature_info

    def fit(self, X: Any = None, y: Any = None) -> FittedEnsembleModel:
        """Validate ``ensemble`` and ``classes``; ``X`` and ``y`` are ignored.

        Returns
        -------
        self : FittedEnsembleModel
        """
        ensemble = check_ensemble(self.ensemble)
        self.ensemble_ = ensemble
        self.n_members_ = len(ensemble.members)
        if ensemble.task == CLASSIFICATION:
            self.classes_ = check_classes(self.classes, ensemble.n_classes)
        elif self.classes is not None:
            raise ValueError(
                "The 'classes' parameter must be None for a regression ensemble. "
                f"Got {self.classes!r} instead."
            )
        source = ensemble.members[0].models[0] if self.feature_info is None else self.feature_info
        copy_input_attributes(self, source)
        return self

    def _fused(self, X: Any) -> np.ndarray:
        check_is_fitted(self)
        if self.feature_info is not None:
            from .._validation import validate_predict_data

            X = validate_predict_data(X, self.feature_info)
        return self.ensemble_.combine(X)

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "ensemble_")

    @available_if(_is_classification)
    def predict_proba(self, X: Any) -> np.ndarray:
        """Fused class probabilities, columns ordered as ``classes_``."""
        return self._fused(X)

    def predict(self, X: Any) -> np.ndarray:
        """Most probable class (classification) or the fused prediction (regression)."""
        fused = self._fused(X)
        if self.ensemble_.task == CLASSIFICATION:
            return self.classes_[np.argmax(fused, axis=1)]
        return fused

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """Accuracy (classification) or R² (regression) on ``X``, ``y``."""
        metric = accuracy_score if self.ensemble_.task == CLASSIFICATION else r2_score
        return float(metric(y, self.predict(X), sample_weight=sample_weight))

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        task = getattr(self.ensemble, "task", None)
        if task == CLASSIFICATION:
            tags.estimator_type = "classifier"
            tags.classifier_tags = ClassifierTags()
        elif task is not None:
            tags.estimator_type = "regressor"
            tags.regressor_tags = RegressorTags()
        return tags


def check_ensemble(ensemble: Any) -> Ensemble:
    """Return ``ensemble`` if it is a fitted, non-empty :class:`Ensemble`."""
    if not isinstance(ensemble, Ensemble) or len(ensemble.members) == 0:
        raise ValueError(
            "The 'ensemble' parameter must be a fitted Ensemble with at least one member "
            f"(e.g. the ensemble_ attribute of a fitted EnsembleClassifier). Got {ensemble!r} "
            "instead."
        )
    if hasattr(ensemble.fuser, "fit"):
        check_is_fitted(ensemble.fuser)
    return ensemble


def check_classes(classes: Any, n_classes: int) -> np.ndarray:
    """Labels for the encoded classes ``0..n_classes-1`` (sorted, as a LabelEncoder keeps them)."""
    if classes is None:
        return np.arange(n_classes)
    labels = np.asarray(classes)
    unique = np.unique(labels) if labels.ndim == 1 else labels
    if labels.shape != (n_classes,) or not np.array_equal(unique, labels):
        raise ValueError(
            f"The 'classes' parameter must be {n_classes} sorted, distinct labels (one per encoded "
            f"class, as LabelEncoder.classes_). Got {classes!r} instead."
        )
    return labels


def as_ensemble(obj: Any, classes: Any = None) -> tuple[Ensemble, Any]:
    """Accept an Ensemble or a fitted estimator holding one in ``ensemble_``.

    Returns the ensemble and ``classes``, taken from the estimator when not given.
    """
    if not isinstance(obj, Ensemble) and hasattr(obj, "ensemble_"):
        if classes is None:
            classes = getattr(obj, "classes_", None)
        obj = obj.ensemble_
    return check_ensemble(obj), classes


# -- export to scikit-learn's own ensembles ----------------------------------------------------
def to_sklearn(ensemble: Any, classes: Any = None) -> Any:
    """Rebuild a fitted ensemble from scikit-learn's voting or stacking estimators.

    ============================================  ==============================================
    fuser                                         exported as
    ============================================  ==============================================
    WeightedAverage, SoftVoting, OptimizedWeights ``VotingClassifier(voting="soft")`` /
                                                  ``VotingRegressor``, ``weights`` = fuser weights
    HardVoting                                    ``VotingClassifier(voting="hard")``
    Stacking (``passthrough=False``)              ``StackingClassifier`` / ``StackingRegressor``
                                                  with the fuser's ``cv``
    ============================================  ==============================================

    Each member is a prefit :class:`FoldAverage` of its fold models. The result
    predicts what the ensemble predicts (up to floating-point rounding):
    ``predict_proba`` equals ``Ensemble.combine``. For stacking, the members
    use ``stack_method="decision_function"`` (their floored log-probabilities)
    and the final estimator is ``Pipeline([LogRatioFeatures, fitted meta-learner])``,
    which reproduces Stacking's log-ratio meta features; a hard-voting export
    has ``predict`` only, as in scikit-learn.

    Parameters
    ----------
    ensemble : Ensemble or fitted EnsembleClassifier / EnsembleRegressor / FittedEnsembleModel
    classes : array-like of shape (n_classes,), default=None
        Original labels of the encoded classes; taken from the estimator's
        ``classes_`` when it has one, else ``0..n_classes-1``.

    Returns
    -------
    model : VotingClassifier, VotingRegressor, StackingClassifier or StackingRegressor
        Fitted. Refitting it (``fit``, or a clone's as in ``cross_val_score``)
        retrains every fold model on the new data; a stacking export then fits its final
        estimator on the members' out-of-fold outputs over the fuser's ``cv`` (its int as
        shuffled, stratified folds with its ``random_state``; a splitter as it is; 5 folds
        for fixed index pairs), as scikit-learn's stacking does. Keeping the members and
        refitting only the final estimator on the rows they were trained on would be
        in-sample.

    Raises
    ------
    ValueError
        For an unsupported fuser, or a Stacking fuser that scikit-learn cannot
        reproduce exactly (``passthrough=True``, or a meta-learner that did not
        see every class).

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from ensemble_hpo import EnsembleClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = EnsembleClassifier(models=["logistic"], n_trials=2, cv=3, random_state=0).fit(X, y)
    >>> voting = to_sklearn(clf)
    >>> gap = abs(voting.predict_proba(X) - clf.predict_proba(X)).max()
    >>> type(voting).__name__, bool(gap < 1e-9)
    ('VotingClassifier', True)
    """
    # Members check new X as the estimator's predict does (audit: integer column labels in
    # reverse order were predicted from, off by up to 164 on diabetes; the estimator refuses).
    feature_info = getattr(ensemble, "feature_info_", getattr(ensemble, "feature_info", None))
    ensemble, classes = as_ensemble(ensemble, classes)
    fuser = ensemble.fuser
    labels = None
    if ensemble.task == CLASSIFICATION:
        labels = check_classes(classes, ensemble.n_classes)
    kind = getattr(fuser, "sklearn_export", None)
    if kind == "stacking":
        return _stacking(ensemble, labels, feature_info)
    if kind == "hard":
        return _voting(ensemble, labels, _vote_weights(fuser.weights_), feature_info, voting="hard")
    if kind == "soft":
        return _voting(ensemble, labels, np.asarray(fuser.weights_), feature_info, voting="soft")
    raise ValueError(
        "The 'ensemble' parameter must use a fuser with a scikit-learn equivalent "
        "(sklearn_export 'soft', 'hard' or 'stacking': WeightedAverage, SoftVoting, HardVoting, "
        f"OptimizedWeights, Stacking) to be exported. Got {type(fuser).__name__} instead."
    )


def _members(ensemble: Ensemble, indices: Sequence[int],
             feature_info: Any) -> list[tuple[str, FoldAverage]]:
    return [
        (f"{member.family}_{member.number}",
         prefit_fold_average(member.models, ensemble.task, ensemble.n_classes, feature_info))
        for member in (ensemble.members[i] for i in indices)
    ]


def _vote_weights(weights: np.ndarray) -> np.ndarray:
    """``weights`` as integers when they are ratios of small integers, else unchanged."""
    scaled = weights / weights[weights > 0].min()
    for denominator in range(1, _MAX_VOTE_DENOMINATOR + 1):
        candidate = scaled * denominator
        if np.all(np.abs(candidate - np.round(candidate)) < _RATIONAL_TOLERANCE * denominator):
            return np.round(candidate).astype(np.int64)
    return weights


def _set_prefit(model: Any, estimators: list[tuple[str, FoldAverage]]) -> None:
    model.estimators_ = [est for _, est in estimators]
    model.named_estimators_ = Bunch(**dict(estimators))
    copy_input_attributes(model, model.estimators_[0])


def _voting(ensemble: Ensemble, labels: np.ndarray | None, weights: np.ndarray,
            feature_info: Any, *, voting: str) -> Any:
    # Members without weight change nothing; leaving them out makes the export cheaper.
    used = np.flatnonzero(weights > 0)
    estimators = _members(ensemble, used, feature_info)
    weight_list = weights[used].tolist()
    if ensemble.task != CLASSIFICATION:
        model = VotingRegressor(estimators=estimators, weights=weight_list)
    else:
        model = VotingClassifier(estimators=estimators, voting=voting, weights=weight_list)
        model.le_ = LabelEncoder().fit(labels)
        model.classes_ = model.le_.classes_
    _set_prefit(model, estimators)
    return model


def _stacking(ensemble: Ensemble, labels: np.ndarray | None, feature_info: Any) -> Any:
    fuser = ensemble.fuser
    if fuser.passthrough:
        raise ValueError(
            "The 'ensemble' parameter cannot be exported exactly: its Stacking fuser has "
            "passthrough=True and appends the preprocessed (scaled, one-hot encoded) features, "
            "whereas scikit-learn's stacking passthrough appends the raw X. Got a Stacking "
            "fuser with passthrough=True instead."
        )
    # Not prefit: the members were trained on the rows a refit would fit the final estimator
    # on, so cv="prefit" with frozen members refitted it on in-sample outputs (audit: diabetes
    # test R2 0.386 -> -0.176 after clone(export).fit on the same rows, cross_val_score 0.9
    # for a 0.39 model). A refit trains the members again and the final estimator on their
    # out-of-fold outputs, as scikit-learn's stacking does.
    estimators = _members(ensemble, fuser.members_, feature_info)
    cv = _refit_folds(fuser, ensemble.task)
    if ensemble.task != CLASSIFICATION:
        model = StackingRegressor(estimators=estimators, final_estimator=fuser.final_estimator_,
                                  cv=cv)
        model.stack_method_ = ["predict"] * len(estimators)
        model.final_estimator_ = fuser.final_estimator_
        model._n_feature_outs = [1] * len(estimators)
    else:
        model = _stacking_classifier(fuser, estimators, labels, cv)
    _set_prefit(model, estimators)
    return model


def _refit_folds(fuser: Stacking, task: str) -> Any:
    """The folds of a refitted stacking export: the fuser's (an int as ``make_folds`` makes
    them); fixed (train, valid) pairs index the fit's own rows, so new data gets 5 folds."""
    if isinstance(fuser.cv, numbers.Integral):
        return k_fold_splitter(int(fuser.cv), np.zeros(0), task, None, fuser.random_state)
    return fuser.cv if hasattr(fuser.cv, "split") else 5


def _stacking_classifier(fuser: Stacking, estimators: list[tuple[str, Any]],
                         labels: np.ndarray, cv: Any) -> StackingClassifier:
    meta = fuser.final_estimator_
    k = fuser.n_classes_
    if not np.array_equal(np.asarray(meta.classes_), np.arange(k)):
        raise ValueError(
            "The 'ensemble' parameter cannot be exported exactly: its Stacking meta-learner was "
            f"fitted on classes {np.asarray(meta.classes_).tolist()}, not all of 0..{k - 1}, and "
            "scikit-learn's StackingClassifier cannot pad the missing probability columns."
        )
    width = 1 if k == 2 else k
    log_ratio = LogRatioFeatures(n_classes=k).fit(np.zeros((1, width * len(estimators))))
    final = LastStepWeights([("log_ratio", log_ratio), ("meta", meta)])
    model = StackingClassifier(estimators=estimators, final_estimator=final, cv=cv,
                               stack_method="decision_function")
    model.stack_method_ = ["decision_function"] * len(estimators)
    model.final_estimator_ = final
    model._label_encoder = LabelEncoder().fit(labels)
    model.classes_ = model._label_encoder.classes_
    model._n_feature_outs = [width] * len(estimators)
    return model
