"""The Optuna objective: one trial trains one candidate and stores its artifacts."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from ensemble_hpo._process import process_tag
from ensemble_hpo.population import (
    IDENTITY_ATTR,
    STATUS_SKIPPED,
    ArtifactStore,
    CandidateEvaluator,
    CandidateTimeout,
    EvaluationResult,
)
from ensemble_hpo.population._isolation import call_with_timeout
from ensemble_hpo.search._runner import FINISHED
from ensemble_hpo.search._trial_value import CandidateScore, TrialValue
from ensemble_hpo.spaces import ModelFamily, SearchSpace

__all__ = ["CandidateObjective"]

# build(family, params, seed) -> an unfitted estimator (usually a preprocessing Pipeline).
EstimatorBuilder = Callable[[ModelFamily, dict[str, Any], int | None], Any]

#: Unstarted candidates in a row (out of time for their family) after which the search stops.
_UNSTARTED_RUN = 5


def _family_pace(trials: list[FrozenTrial], family: Any) -> float:
    """Median seconds per fold of ``family``'s finished trials (0 when unknown)."""
    paces = [pace for t in trials if t.user_attrs.get("family") == family
             and (pace := _fold_seconds(t)) is not None]
    return float(np.median(paces)) if paces else 0.0


def _fold_seconds(trial: FrozenTrial) -> float | None:
    """Measured seconds per trained fold of a finished, pruned or deadline-stopped trial."""
    attrs = trial.user_attrs
    if "fold_seconds" in attrs:
        return float(attrs["fold_seconds"])
    if trial.state != TrialState.FAIL and "fit_time" in attrs and attrs.get("fold_scores"):
        return float(attrs["fit_time"]) / len(attrs["fold_scores"])
    return None


def candidate_seed(seed: int | None, number: int) -> int | None:
    # Distinct per trial yet reproducible for a given run seed.
    return None if seed is None else (seed * 1_000_003 + number) % (2**31 - 1)


class CandidateObjective:
    """Callable objective for ``study.optimize``: sample, cross-validate, store, score.

    The trial's value is ``trial_value`` of the finished candidate (its own score by
    default, :mod:`ensemble_hpo.search._trial_value`); the candidate's own score is always
    kept in the ``score`` user attribute.

    Failures are recorded on the trial (``status`` and ``error`` user attributes)
    and re-raised, so ``study.optimize(catch=(Exception,))`` marks them FAIL and
    the run goes on. A finished candidate's artifacts are written before its
    score is returned, so a COMPLETE trial always has them. ``identity`` (the fit's
    ``run_identity``) is recorded on every trial, so that candidates of two fits on other
    data are never mixed (:data:`ensemble_hpo.population.IDENTITY_ATTR`).
    """

    def __init__(
        self,
        space: SearchSpace,
        evaluator: CandidateEvaluator,
        store: ArtifactStore,
        build: EstimatorBuilder,
        *,
        seed: int | None = None,
        deadline: float | None = None,
        trial_timeout: float | None = None,
        strategy: str | None = None,
        trial_value: TrialValue | None = None,
        final_deadline: float | None = None,
        identity: dict[str, str] | None = None,
    ) -> None:
        self.space = space
        self.evaluator = evaluator
        self.store = store
        self.build = build
        self.seed = seed
        self.deadline = deadline
        self.final_deadline = final_deadline
        self.trial_timeout = trial_timeout
        self.strategy = strategy
        self.trial_value = CandidateScore() if trial_value is None else trial_value
        self.identity = identity

    def __call__(self, trial: optuna.Trial) -> float:
        # First thing: lets a resumed run tell a dead worker's trial from a live one.
        trial.set_user_attr("worker", process_tag())
        if self.identity is not None:
            trial.set_user_attr(IDENTITY_ATTR, self.identity)
        start = time.perf_counter()
        try:
            return self._run(trial)
        except KeyboardInterrupt:
            # Optuna records the trial as FAIL; like a killed worker's, it used no budget and
            # a resumed run replaces it (it counted, and showed as 'failed' with no error).
            trial.set_user_attr("status", "interrupted")
            raise
        except optuna.TrialPruned:
            raise
        except Exception as exc:
            # Every failure is named in the leaderboard, wherever it arose: an enqueued
            # (warm-start) value outside its distribution, models that cannot be pickled into a
            # file store (n_jobs > 1, run_dir, Dask), an Optuna attribute this code relied on
            # and that was removed. Each showed as "failed" with no error (audits). A timeout
            # was recorded under its own status where it arose.
            if "error" not in trial.user_attrs:
                self._record_failure(trial, "failed", exc, start)
            raise

    def _run(self, trial: optuna.Trial) -> float:
        try:
            family, params = self.space.suggest(trial)
        except optuna.TrialPruned:
            # The sampler stopped before proposing a candidate (a used-up grid): nothing was
            # trained, so no leaderboard row (it showed as a "failed" candidate; audit).
            trial.set_user_attr("unsampled", True)
            raise
        trial.set_user_attr("family", family.name)
        # A queued warm-start configuration carries its own label (enqueue_new).
        if self.strategy and "strategy" not in trial.user_attrs:
            trial.set_user_attr("strategy", self.strategy)
        start = time.perf_counter()
        try:
            estimator = self.build(family, params, candidate_seed(self.seed, trial.number))
            result = self._evaluate(trial, estimator)
        except CandidateTimeout as exc:
            # Not started: nothing was trained, so the leaderboard says "skipped" (it showed
            # such candidates as timeouts that took 0.0003 s).
            self._record_failure(trial, "timeout" if exc.started else STATUS_SKIPPED, exc, start)
            if exc.fold_seconds is not None:
                trial.set_user_attr("fold_seconds", float(exc.fold_seconds))
            if not exc.started:
                trial.set_user_attr("unstarted", True)
                if self._out_of_time_for_every_family(trial):
                    # Asking for more candidates would only fill the leaderboard with
                    # empty timeouts.
                    trial.study.stop()
            raise
        trial.set_user_attr("fold_scores", [float(s) for s in result.fold_scores])
        trial.set_user_attr("fit_time", float(result.fit_time))
        trial.set_user_attr("predict_seconds_per_row", float(result.predict_seconds_per_row))
        if "stopped_at_fold" in result.extra:
            trial.set_user_attr("status", "pruned")
            raise optuna.TrialPruned(f"pruned after fold {result.extra['stopped_at_fold']}")
        self._store(trial, result)
        value = self.trial_value(trial, result, self.evaluator, self.store)
        # The candidate's own score is kept apart from the value the strategy optimises.
        trial.set_user_attr("score", float(result.score))
        return value

    def _evaluate(self, trial: optuna.Trial, estimator: Any) -> EvaluationResult:
        deadline = self._fold_deadline(trial)
        pace = self._expected_fold_seconds(trial) if deadline is not None else 0.0
        if self.trial_timeout is None:
            return self.evaluator.evaluate(estimator, report=self._reporter(trial), deadline=deadline,
                                           expected_fold_seconds=pace)
        # Isolated in a killable process: fold scores are reported after the fact, so
        # pruning cannot stop such a candidate early.
        limit = self.trial_timeout
        if deadline is not None:
            limit = min(limit, deadline - time.time())
        result = call_with_timeout(self.evaluator.evaluate, estimator, deadline=deadline,
                                   expected_fold_seconds=pace, timeout=limit)
        for fold, score in enumerate(result.fold_scores):
            trial.report(score, fold)
        return result

    def _fold_deadline(self, trial: optuna.Trial) -> float | None:
        """When a candidate's folds must end: the search's deadline, or the fit's own end
        (``final_deadline``) while no candidate has finished. Stopping the only candidate
        between folds at the search's deadline left nothing to ensemble: a 30 s svm fit
        raised after 24.9 s, 4 of 5 folds trained and the last one would have ended in time."""
        if self.deadline is None or self.final_deadline is None:
            return self.deadline
        finished = trial.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        return self.deadline if finished else max(self.deadline, self.final_deadline)

    def _out_of_time_for_every_family(self, trial: optuna.Trial) -> bool:
        """Whether no family can train a fold before the deadline, at its known pace.

        One slow family out of time stopped the whole search: a 30 s fit of random forests
        and logistic regression ended at 22.4 s after two logistic candidates. A family
        without a known pace might still fit; a run of unstarted candidates (the sampler
        keeps proposing the slow family) ends the search all the same.
        """
        trials = trial.study.get_trials(deepcopy=False, states=FINISHED)
        recent = trials[-_UNSTARTED_RUN:]
        if len(recent) == _UNSTARTED_RUN and all(t.user_attrs.get("unstarted") for t in recent):
            return True
        deadline = self._fold_deadline(trial)
        left = math.inf if deadline is None else deadline - time.time()
        paces = [_family_pace(trials, name) for name in self.space.family_names]
        return all(pace > 0.0 and pace >= left for pace in paces)

    @staticmethod
    def _expected_fold_seconds(trial: optuna.Trial) -> float:
        """Median seconds per fold of earlier candidates of this family (0 when unknown).

        Pruned candidates and those stopped by the deadline after some folds count too:
        without them, every candidate of a family too slow to finish started a fold the
        deadline could not stop (a 3 s budget on 20,000 rows ran 33 s of random-forest
        folds, none of them used).
        """
        return _family_pace(trial.study.get_trials(deepcopy=False, states=FINISHED),
                            trial.user_attrs.get("family"))

    def _store(self, trial: optuna.Trial, result: EvaluationResult) -> None:
        self.store.save(trial.number, result.predictions, result.models)

    @staticmethod
    def _reporter(trial: optuna.Trial) -> Callable[[int, float], bool]:
        def report(fold: int, score: float) -> bool:
            trial.report(score, fold)
            return trial.should_prune()

        return report

    @staticmethod
    def _record_failure(trial: optuna.Trial, status: str, exc: BaseException, start: float) -> None:
        trial.set_user_attr("status", status)
        trial.set_user_attr("error", f"{type(exc).__name__}: {exc}"[:2000])
        trial.set_user_attr("fit_time", time.perf_counter() - start)
