"""The search objective: what a finished candidate reports to the sampler as the trial's value.

A candidate's own cross-validated score is always kept (the trial's ``score`` attribute, the
leaderboard's ``score``, in the user's metric). The trial's *value*, which the strategy
optimises, is a separate choice:

* ``"candidate"`` (:class:`CandidateScore`): the candidate's own score, as AutoGluon, FLAML
  and auto-sklearn tune;
* ``"ensemble"`` (:class:`EnsembleGain`): what the candidate adds to the greedy ensemble of
  the population so far (Lévesque et al., UAI 2016; DivBO, NeurIPS 2022).

Values of :class:`EnsembleGain` drift: a candidate's gain is measured against the ensemble
that existed when it finished, and gains shrink as the ensemble improves. Optuna's samplers
read the stored values as they are (a completed trial's value cannot be updated), so early
candidates, measured against a weak ensemble, fill TPE's "good" group, and TPE keeps
proposing near configurations that helped the early ensemble. This is not corrected:
re-evaluating past candidates against the current ensemble would need a sampler that reads
re-computed values. The random start-up trials and the warm start are unaffected.

``n_jobs > 1`` and Dask need nothing special: each worker computes the gain from the
predictions the shared artifact store holds when its candidate finishes, and a resumed run
continues from the stored population (a run folder refuses another objective than the one
it was searched with).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np
import optuna
from optuna.trial import TrialState
from sklearn.base import clone

from ensemble_hpo._checks import CLASSIFICATION
from ensemble_hpo._folds import groups_kwargs
from ensemble_hpo.population import ArtifactStore, CandidateEvaluator, EvaluationResult
from ensemble_hpo.population._store import prediction_dtype

__all__ = ["TRIAL_VALUES", "CandidateScore", "EnsembleGain", "TrialValue"]


class TrialValue(ABC):
    """What a finished candidate's trial reports to the strategy (greater is better)."""

    name: ClassVar[str]

    @abstractmethod
    def __call__(self, trial: optuna.Trial, result: EvaluationResult,
                 evaluator: CandidateEvaluator, store: ArtifactStore) -> float:
        """The value of ``trial``, whose artifacts ``store`` already holds."""


class CandidateScore(TrialValue):
    """The candidate's own out-of-fold score."""

    name = "candidate"

    def __call__(self, trial: optuna.Trial, result: EvaluationResult,
                 evaluator: CandidateEvaluator, store: ArtifactStore) -> float:
        return float(result.score)


class EnsembleGain(TrialValue):
    """Gain of the greedy ensemble's out-of-fold score when the candidate joins the population.

    ``selector`` (the fit's selector, cloned for each use) is fitted twice on the stored
    out-of-fold predictions of every finished candidate: without this one and with it. The
    value is the difference, in the user's metric: zero when selection does not use the
    candidate, positive when it improves the ensemble. Against an empty population the
    baseline is the best constant prediction (class frequencies, or the weighted mean).
    """

    name = "ensemble"

    def __init__(self, selector: Any) -> None:
        self.selector = selector

    def __call__(self, trial: optuna.Trial, result: EvaluationResult,
                 evaluator: CandidateEvaluator, store: ArtifactStore) -> float:
        others = [t.number for t in trial.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                  if t.number != trial.number and t.number in store]
        # As stored: float32 probabilities, float64 regression values (float32 moved the gains
        # of a target near 1e9 from 21.69 to 15.93 for the same candidates; audit).
        dtype = prediction_dtype(result.predictions)
        new = np.asarray(result.predictions, dtype=dtype)[None]
        if others:
            population = np.stack([np.asarray(store.load_predictions(n), dtype=dtype)
                                   for n in others])
            without = self._selection_score(population, evaluator)
            with_new = self._selection_score(np.concatenate([population, new]), evaluator)
        else:
            without = self._constant_score(evaluator)
            with_new = self._selection_score(new, evaluator)
        trial.set_user_attr("ensemble_score", with_new)
        return with_new - without

    def _selection_score(self, predictions: np.ndarray, evaluator: CandidateEvaluator) -> float:
        selector = clone(self.selector)
        # Groups too: greedy_cv's held-out folds split groups here (audit).
        selector.fit(predictions, evaluator.y, sample_weight=evaluator.sample_weight,
                     **groups_kwargs(selector, evaluator.groups))
        return float(selector.score_)

    @staticmethod
    def _constant_score(evaluator: CandidateEvaluator) -> float:
        y, weight = evaluator.y, evaluator.sample_weight
        if evaluator.task == CLASSIFICATION:
            prior = np.bincount(y, weights=weight, minlength=evaluator.n_classes).astype(float)
            constant = np.tile(prior / prior.sum(), (len(y), 1))
        else:
            constant = np.full(len(y), np.average(y, weights=weight))
        return float(evaluator.scorer(y, constant, sample_weight=weight))


#: The objective's names, read by the estimators and the YAML configuration alike.
TRIAL_VALUES: dict[str, type[TrialValue]] = {
    CandidateScore.name: CandidateScore,
    EnsembleGain.name: EnsembleGain,
}
