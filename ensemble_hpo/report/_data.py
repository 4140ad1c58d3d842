"""Numbers behind the report's figures, taken from a fitted ensemble estimator."""

from __future__ import annotations

import copy
import warnings
from collections.abc import Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna
import pandas as pd
from optuna.trial import FrozenTrial, TrialState
from sklearn.base import clone
from sklearn.model_selection import GroupKFold, KFold, StratifiedGroupKFold, StratifiedKFold
from threadpoolctl import threadpool_limits

from ensemble_hpo._checks import REGRESSION
from ensemble_hpo._folds import take_rows
from ensemble_hpo._outputs import model_output
from ensemble_hpo._run_identity import USER_LABELS
from ensemble_hpo.metrics import PredictionScorer, default_scoring, get_prediction_scorer
from ensemble_hpo.population import fit_routing

__all__ = [
    "LearningCurve",
    "history_frame",
    "fit_target",
    "learning_curves",
    "member_correlation",
    "member_label",
    "param_importances",
    "scoring_name",
]

_LEARNING_SIZES = (0.3, 0.65, 1.0)
LEARNING_CV = 3
_MAX_CORRELATION_MODELS = 8


def member_label(number: int, family: str | None) -> str:
    return f"#{number} {family}"


def metric_label(key: str) -> str:
    """A metric key (``scoring_key``) as the report shows it, without its internal marks."""
    return key.removeprefix("callable:").removesuffix(USER_LABELS)


def scoring_name(estimator: Any) -> str:
    fitted = getattr(estimator, "scoring_", None)  # the fit's metric, as the numbers are
    if fitted is not None:
        return metric_label(fitted)
    scoring = getattr(estimator, "scoring", None)
    if scoring is None:
        return default_scoring(estimator.ensemble_.task)
    if isinstance(scoring, str):
        return scoring
    return getattr(scoring, "name", None) or getattr(scoring, "__name__", type(scoring).__name__)


# -- optimisation history -----------------------------------------------------------------------
def history_frame(estimator: Any) -> pd.DataFrame:
    """One row per trial: number, family, strategy, status and score (NaN unless completed).

    Scores come from ``leaderboard_``, in the estimator's ``scoring``: a resumed study's
    trial values can be in the metric it was first searched with (``search_scoring_``).
    """
    trials = getattr(estimator, "trials_", None)
    if trials is not None:
        scores = dict(zip(estimator.leaderboard_["number"], estimator.leaderboard_["score"], strict=True))
        rows = [{**_trial_row(t), "score": scores.get(t.number, np.nan)}
                for t in trials if t.state != TrialState.WAITING]
    else:
        board = estimator.leaderboard_
        rows = [{"number": int(r.number), "family": r.family, "strategy": None,
                 "status": r.status, "score": r.score} for r in board.itertuples()]
    frame = pd.DataFrame(rows, columns=["number", "family", "strategy", "status", "score"])
    frame["score"] = pd.to_numeric(frame["score"], errors="coerce").astype(float)
    frame["family"] = frame["family"].astype(object).where(frame["family"].notna(), "unknown")
    return frame.sort_values("number", kind="stable").reset_index(drop=True)


def _trial_row(trial: FrozenTrial) -> dict[str, Any]:
    attrs = trial.user_attrs
    complete = trial.state == TrialState.COMPLETE
    return {
        "number": trial.number,
        "family": attrs.get("family", trial.params.get("family")),
        "strategy": attrs.get("strategy"),
        "status": "ok" if complete else attrs.get("status", trial.state.name.lower()),
    }


# -- hyperparameter importances -----------------------------------------------------------------
@contextmanager
def _quiet_optuna():
    # The in-memory study announces itself at INFO level; restore the user's level afterwards.
    previous = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            yield
    finally:
        optuna.logging.set_verbosity(previous)


def param_importances(
    trials: Sequence[FrozenTrial], scores: Mapping[int, float] | None = None,
) -> tuple[dict[str, dict[str, float]], list[str]]:
    """fANOVA importances: of the family choice, then of each family's own hyperparameters.

    Parameters are conditional on the family, so Optuna's intersection search
    space would hold only ``family``; each family is therefore assessed on its
    own trials. ``scores`` (trial number to the candidate's score in the fit's
    metric) replaces the trials' values, which hold what the search optimised:
    ensemble gains with ``objective="ensemble"``, the search's metric after a
    resume that changed ``scoring`` (audit). Returns ``{group: {param:
    importance}}`` and notes on the groups that could not be assessed.
    """
    if scores is not None:
        trials = [_with_value(t, scores[t.number]) for t in trials
                  if t.state == TrialState.COMPLETE and t.number in scores]
    complete = [t for t in trials if t.state == TrialState.COMPLETE and np.isfinite(t.value)]
    if len(complete) < 2:
        return {}, [f"Importances need at least 2 completed trials; this run has {len(complete)}."]
    with _quiet_optuna():
        study = optuna.create_study(direction="maximize")
        study.add_trials(complete)
        families = sorted({str(t.params.get("family")) for t in complete if "family" in t.params})
        requests = [("family choice", ["family"])] if len(families) > 1 else []
        requests += [(f, _shared_params(complete, f)) for f in families]
        groups: dict[str, dict[str, float]] = {}
        notes = []
        if len(families) <= 1:
            # Counted on finished trials: a family whose every candidate failed was searched.
            notes.append("Only one model family has finished candidates, so the family choice "
                         "has no importance.")
        for group, params in requests:
            result, note = _group_importances(study, group, params)
            if result:
                groups[group] = result
            if note:
                notes.append(note)
    return groups, notes


def _with_value(trial: FrozenTrial, value: float) -> FrozenTrial:
    trial = copy.copy(trial)
    trial.values = [float(value)]
    return trial


def _shared_params(trials: Sequence[FrozenTrial], family: str) -> list[str]:
    own = [t for t in trials if str(t.params.get("family")) == family]
    prefix = f"{family}__"
    names = set.intersection(*({k for k in t.params if k.startswith(prefix)} for t in own))
    return sorted(names)


def _group_importances(
    study: optuna.Study, group: str, params: list[str]
) -> tuple[dict[str, float], str | None]:
    if not params:
        return {}, f"{group}: no tunable hyperparameter was searched."
    used = [t for t in study.get_trials(deepcopy=False) if set(params) <= set(t.params)]
    if len(used) < 2:
        return {}, f"{group}: needs at least 2 completed trials, has {len(used)}."
    try:
        evaluator = optuna.importance.FanovaImportanceEvaluator(seed=0)
        result = optuna.importance.get_param_importances(study, evaluator=evaluator, params=params)
    except Exception as exc:  # noqa: BLE001 - any evaluator failure becomes a note, not a crash
        return {}, f"{group}: importances could not be computed ({type(exc).__name__}: {exc})."
    result = {name: float(v) for name, v in result.items() if np.isfinite(v)}
    if not result:
        return {}, f"{group}: the scores do not vary with these hyperparameters."
    return result, None


# -- member correlation -------------------------------------------------------------------------
def member_correlation(estimator: Any) -> tuple[np.ndarray, list[str], str | None]:
    """Pearson correlation of the members' out-of-fold errors (prediction minus target).

    Errors, not predictions: any two accurate models' predictions correlate near 1 (0.94-0.97
    on wine where their errors correlated 0.38-0.47; audit), which read as no diversity.
    With fewer than two members, the best completed candidates stand in so the figure
    still shows how alike the search's models err.
    """
    members = estimator.ensemble_.members
    numbers = [m.number for m in members]
    families = {c.number: c.family for c in estimator.population_.candidates}
    note = None
    if len(numbers) < 2:
        best = sorted(estimator.population_.completed(), key=lambda c: -c.score)
        numbers = [c.number for c in best[:_MAX_CORRELATION_MODELS]]
        note = (f"The ensemble has a single member, so the {len(numbers)} best candidates are "
                "shown instead.")
    errors = _error_view(estimator.population_.predictions(numbers), estimator.selection_target_)
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = np.corrcoef(errors) if len(numbers) > 1 else np.ones((1, 1))
    return np.atleast_2d(corr), [member_label(n, families.get(n)) for n in numbers], note


def _error_view(predictions: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Each model's errors as one row: probabilities minus the one-hot class (binary: the
    positive class's column says it all), or values minus the target."""
    predictions = np.asarray(predictions, dtype=np.float64)
    if predictions.ndim == 2:
        return predictions - np.asarray(y, dtype=np.float64)
    onehot = np.eye(predictions.shape[2])[np.asarray(y, dtype=np.intp)]
    errors = predictions - onehot
    if predictions.shape[2] == 2:
        return errors[:, :, 1]
    return errors.reshape(predictions.shape[0], -1)


# -- learning curves ----------------------------------------------------------------------------
@dataclass
class LearningCurve:
    """Training and validation scores of one member's pipeline at growing training sizes."""

    label: str
    train_sizes: np.ndarray
    train_scores: np.ndarray
    valid_scores: np.ndarray


def learning_curves(estimator: Any, X: Any, y_fit: np.ndarray, max_members: int, *,
                    sample_weight: np.ndarray | None = None,
                    groups: np.ndarray | None = None) -> list[LearningCurve]:
    """Learning curves of the heaviest ``max_members`` members (clones of their first fold model).

    ``y_fit`` is the target as the fold models saw it (see :func:`fit_target`). With
    ``sample_weight`` the members train and are scored weighted, as in the search; with
    ``groups`` no group is split between training and validation rows.
    """
    task = estimator.ensemble_.task
    X = _as_fit_features(estimator, X)
    # The fit's scorer on the user's labels (pos_label means what it meant in the leaderboard).
    scorer = get_prediction_scorer(estimator._stage_scoring(), task)
    n_classes = estimator.ensemble_.n_classes
    folds = _learning_folds(X, y_fit, groups, estimator.random_state, stratify=task != REGRESSION)
    members = sorted(estimator.ensemble_.members, key=lambda m: -m.weight)[:max_members]
    return [_member_curve(m, X, y_fit, folds, _LearningScorer(scorer, task, n_classes, sample_weight),
                          sample_weight, groups) for m in members]


def _learning_folds(X: Any, y: np.ndarray, groups: np.ndarray | None, seed: Any, *,
                    stratify: bool) -> list[tuple[np.ndarray, np.ndarray]]:
    """Folds whose training rows are shuffled, so a size's first rows are a random subset.

    Classification folds keep the class shares (stratified, as the search's default folds),
    unless a class has fewer rows than folds; groups are never split.
    """
    seed = seed if seed is not None else 0
    stratify = stratify and np.unique(y, return_counts=True)[1].min() >= LEARNING_CV
    if groups is not None:
        splitter = (StratifiedGroupKFold(LEARNING_CV, shuffle=True, random_state=seed)
                    if stratify else GroupKFold(LEARNING_CV))
    else:
        splitter = (StratifiedKFold if stratify else KFold)(LEARNING_CV, shuffle=True,
                                                            random_state=seed)
    rng = np.random.default_rng(seed)
    return [(rng.permutation(train), valid) for train, valid in splitter.split(X, y, groups)]


@dataclass
class _LearningScorer:
    """Scores a model on rows like the search did: its metric, the user's labels, the weights."""

    scorer: PredictionScorer
    task: str
    n_classes: int | None
    sample_weight: np.ndarray | None

    def __call__(self, model: Any, X: Any, y: np.ndarray, rows: np.ndarray) -> float:
        # A small training subset may miss classes: model_output places columns by label.
        weight = None if self.sample_weight is None else self.sample_weight[rows]
        return self.scorer(y[rows], model_output(model, take_rows(X, rows), self.task, self.n_classes),
                           sample_weight=weight)


def _member_curve(member: Any, X: Any, y: np.ndarray, folds: list, score: _LearningScorer,
                  sample_weight: np.ndarray | None, groups: np.ndarray | None) -> LearningCurve:
    # Not sklearn.model_selection.learning_curve: it neither weights the scores nor routes
    # weights and groups to a pipeline's final step as the search's fits do (fit_routing).
    n_train = min(len(train) for train, _ in folds)
    sizes = np.array([max(2, int(round(f * n_train))) for f in _LEARNING_SIZES])
    train_scores = np.full((len(sizes), len(folds)), np.nan)
    valid_scores = np.full((len(sizes), len(folds)), np.nan)
    # One BLAS thread: the small fits are many times slower when threads oversubscribe.
    with warnings.catch_warnings(), threadpool_limits(limits=1):
        # Small training subsets legitimately trigger convergence warnings.
        warnings.simplefilter("ignore")
        for j, (train, valid) in enumerate(folds):
            for i, size in enumerate(sizes):
                rows = train[:size]
                try:
                    model = _fit_rows(clone(member.models[0]), X, y, rows, sample_weight, groups)
                    train_scores[i, j] = score(model, X, y, rows)
                    valid_scores[i, j] = score(model, X, y, valid)
                except Exception:  # noqa: BLE001 - a size a model cannot fit is a gap in its curve
                    continue
    return LearningCurve(member_label(member.number, member.family), sizes, train_scores, valid_scores)


def _fit_rows(model: Any, X: Any, y: np.ndarray, rows: np.ndarray,
              sample_weight: np.ndarray | None, groups: np.ndarray | None) -> Any:
    kwargs = fit_routing(model, None if sample_weight is None else sample_weight[rows],
                         None if groups is None else groups[rows])
    return model.fit(take_rows(X, rows), y[rows], **kwargs)


def _as_fit_features(estimator: Any, X: Any) -> Any:
    info = getattr(estimator, "feature_info_", None)
    if info is None:
        return X
    from ensemble_hpo._validation import validate_predict_data

    return validate_predict_data(X, info)


def fit_target(estimator: Any, y: Any) -> np.ndarray:
    """``y`` as the fold models were trained on it: class positions in ``classes_``, or floats."""
    y = np.asarray(y).reshape(-1)
    if estimator.ensemble_.task == REGRESSION:
        return y.astype(np.float64)
    # Fold models were trained on labels encoded as positions in classes_.
    classes = estimator.classes_
    encoded = np.clip(np.searchsorted(classes, y), 0, len(classes) - 1)
    unseen = classes[encoded] != y
    if np.any(unseen):
        raise ValueError(
            "The 'y' parameter must only hold classes seen during fit. "
            f"Got {sorted(set(y[unseen].tolist()))[:5]!r} instead."
        )
    return encoded
