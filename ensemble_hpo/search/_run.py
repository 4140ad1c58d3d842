"""A search run: creates (or resumes) the study, seeds it, runs it, returns the population."""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import optuna

from ensemble_hpo._run_identity import (
    USER_LABELS,
    RunFolderMismatch,
    check_identity,
    scoring_key,
    target_and_folds_identity,
)
from ensemble_hpo.metrics import PredictionScorer
from ensemble_hpo.population import (
    ArtifactStore,
    CandidateEvaluator,
    FileArtifactStore,
    Population,
    candidate_score,
)
from ensemble_hpo.search._objective import CandidateObjective, EstimatorBuilder
from ensemble_hpo.search._progress import ProgressCallback, StudyPoller
from ensemble_hpo.search._runner import (
    FINISHED,
    count_finished,
    enqueue_new,
    fail_stale_trials,
    holds_work,
    new_params,
    optimize_in_processes,
    optimize_shared,
    quiet_optuna,
    resumed_seed,
)
from ensemble_hpo.search._scratch import new_scratch_folders
from ensemble_hpo.search._strategy import GridSearch, SearchContext, SearchStrategy
from ensemble_hpo.search._trial_value import CandidateScore, TrialValue
from ensemble_hpo.spaces import WARM_START_KINDS, SearchSpace
from ensemble_hpo.storage import make_storage, storage_kind

__all__ = ["SearchRun"]

DEFAULT_STUDY_NAME = "ensemble_hpo"


class SearchRun:
    """Grow a candidate population with one search strategy.

    Parameters
    ----------
    strategy : SearchStrategy
    space : SearchSpace
    storage : None, str or optuna storage
        Study storage; a shareable one (journal file, RDB URL) lets the run be
        resumed and extended by other processes.
    study_name : str, default="ensemble_hpo"
    pruner : optuna pruner or None
    warm_start : "portfolio", "defaults", "mined", None or an ``optuna.Study``
        A study's best trials are replayed first. ``"portfolio"``: the recommended warm
        start (today ``"defaults"``); ``"defaults"``: each family's hand-set starting
        configurations (at or near the library defaults; XGBoost has two), cheapest families
        first; ``"mined"``: the portfolio mined from 60 tables and shipped
        with the package (see :meth:`SearchSpace.portfolio`).
    trial_timeout : float or None
        Per-candidate wall-clock limit in seconds; candidates then run in a
        killable worker process, and one that runs over is recorded as timed out.
    n_jobs : int
        Worker processes; >1 runs candidates in separate processes.
    backend : None, "loky", "dask" or dask.distributed.Client
        Where the workers run. Dask workers need a storage and artifact folder
        they can all reach (an RDB URL or journal file, and a shared ``run_dir``).
    seed : int or None
    verbose : int
        0 silent, 1 progress bar, 2 Optuna's own logs too.
    objective : TrialValue or None
        What a trial reports to the strategy (:mod:`ensemble_hpo.search._trial_value`);
        None means the candidate's own score. A resumed study keeps the objective it was
        started with: another one is refused.
    """

    def __init__(
        self,
        *,
        strategy: SearchStrategy,
        space: SearchSpace,
        storage: Any = None,
        study_name: str = DEFAULT_STUDY_NAME,
        pruner: optuna.pruners.BasePruner | None = None,
        warm_start: Any = "portfolio",
        n_warm_start: int = 10,
        trial_timeout: float | None = None,
        n_jobs: int = 1,
        backend: Any = None,
        seed: int | None = None,
        verbose: int = 0,
        objective: TrialValue | None = None,
    ) -> None:
        self.strategy = strategy
        self.space = space
        self.storage = storage
        self.study_name = study_name
        self.pruner = pruner
        self.warm_start = warm_start
        self.n_warm_start = n_warm_start
        self.trial_timeout = trial_timeout
        self.n_jobs = n_jobs
        self.backend = backend
        self.seed = seed
        self.verbose = verbose
        self.objective = CandidateScore() if objective is None else objective
        # Extra workers joining a study reseed their sampler so they do not all
        # propose the same sequence; candidate seeds still derive from ``seed``.
        self.sampler_seed = seed

    def check(self, n_trials: int | None) -> None:
        """Every check of the run that needs no data: call it before writing anything."""
        self._check(n_trials)
        self.check_strategy()

    def check_strategy(self, n_proposals: int = 3) -> None:
        """Ask the strategy for a few configurations on a throwaway in-memory study.

        A strategy option of the wrong type (``n_startup_trials="5"``) otherwise fails inside
        every candidate the sampler proposes, each recorded as a failed candidate, while the
        warm start trains and ``fit`` returns as if nothing were wrong. Run through
        ``optimize``, so that samplers that stop the study (a used-up grid) or prune work.
        """
        def propose(trial: optuna.Trial) -> float:
            self.space.suggest(trial)
            return 0.0

        # The real run gives the strategy's warnings (e.g. "sampled at random") once.
        with quiet_optuna(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                sampler = self.strategy.make_sampler(self.space, seed=self.seed)
                study = optuna.create_study(sampler=sampler, direction="maximize")
                study.optimize(propose, n_trials=n_proposals)
            except ImportError:
                raise  # a missing optional dependency names its own pip install
            except Exception as exc:  # noqa: BLE001 - any failure here is the search's setup
                raise ValueError(
                    "The 'search' strategy and the model space must propose a configuration "
                    f"before training. Got {type(exc).__name__}: {exc} instead (strategy "
                    f"{type(self.strategy).__name__}, families {list(self.space.family_names)})."
                ) from exc

    def _check(self, n_trials: int | None) -> None:
        check_warm_start(self.warm_start, "warm_start")

    def _check_grid_room(self, study: optuna.Study, n_trials: int | None, *, queued: int) -> None:
        """The grid check of a resumed study or one with warm starts (see GridSearch.check_budget).

        A point counts as done once a trial tried it (a failed point is not charged again:
        the old run's budget already paid for it); every other finished or waiting trial
        takes budget without covering a point.
        """
        if n_trials is None:
            return
        trials = study.get_trials(deepcopy=False)
        tried = study.sampler.tried_points(trials)
        waiting = sum(t.state == optuna.trial.TrialState.WAITING for t in trials)
        grid_trials = sum(t.state in FINISHED for t in study.sampler.claimed_trials(trials))
        spent = count_finished(study) + waiting + queued
        self.strategy.check_budget(self.space, n_trials, tried=tried, spent=spent,
                                   other_trials=max(0, spent - grid_trials))

    def _new_initial_trials(self, study: optuna.Study, context: SearchContext,
                            warm: list[dict[str, Any]], seed_trials: bool) -> list[dict[str, Any]]:
        """The warm start's and the strategy's initial trials not yet in ``study``."""
        if not seed_trials:
            return []
        return new_params(study, warm + self.strategy.initial_trials(context))

    def _warm_start_trials(self) -> list[dict[str, Any]]:
        if isinstance(self.warm_start, optuna.Study):
            return _best_params(self.warm_start, self.space, self.n_warm_start)
        if isinstance(self.warm_start, str) and not isinstance(self.strategy, GridSearch):
            return self.space.portfolio(self.warm_start)
        return []

    def _check_resumable(self, study: optuna.Study, evaluator: CandidateEvaluator,
                         identity: Mapping[str, str]) -> CandidateEvaluator:
        """Refuse a study computed on other data; keep scoring new trials in the study's metric."""
        where = f"the study {study.study_name!r}"
        if "run_identity" not in study.user_attrs and "data_fingerprint" in study.user_attrs:
            raise RunFolderMismatch(
                f"The run in {where} was written by an older ensemble_hpo that recorded only the "
                "target and folds, so its candidates cannot be checked against these features, "
                "weights, groups and models. Use a new 'run_dir' or storage (with SearchRun, a new "
                "study_name).")
        check_identity(study.user_attrs.get("run_identity"), identity, where=where)
        self._check_same_objective(study, where)
        if "run_identity" not in study.user_attrs:
            study.set_user_attr("run_identity", dict(identity))
        current = scoring_key(evaluator.scorer)
        stored = study.user_attrs.get("scoring")
        if stored is None:
            study.set_user_attr("scoring", current)
            stored = current
        self.search_scoring_ = stored
        if stored == current:
            return evaluator
        if stored.startswith("callable:"):
            raise RunFolderMismatch(
                f"The 'scoring' parameter differs from the one {where} was searched with "
                f"({stored}), which cannot be rebuilt to score new trials. Use a new 'run_dir', "
                f"or the same scoring as before. Got {current!r} instead."
            )
        on_labels = stored.endswith(USER_LABELS)
        name = stored.removesuffix(USER_LABELS)
        classes = getattr(evaluator.scorer, "classes", None)
        if on_labels and classes is None:
            raise ValueError(
                f"The 'scoring' parameter differs from the one {where} was searched with "
                f"({stored}), which read the target's labels; it cannot be rebuilt here. Use a "
                f"new 'run_dir', or the same scoring as before. Got {current!r} instead.")
        rebuilt = PredictionScorer(name, evaluator.task, classes=classes if on_labels else None)
        return dataclasses.replace(evaluator, scorer=rebuilt)

    def _without_an_unfinished_stranger(self, study: optuna.Study, storage: Any,
                                        identity: Mapping[str, str]) -> optuna.Study:
        """``study``, or a new one in its place when it was computed on other data or models
        and holds nothing finished or running (every trial failed, or was interrupted).

        A fit whose every candidate failed left such a study in an external storage (the
        run folder's own journal is removed, see ``RunFolder.discard_if_untrained``), and
        the corrected fit was refused as computed on other models, with nothing to lose.
        """
        trials = study.get_trials(deepcopy=False)
        # Queued trials count while their process lives: a fit beside this one that has queued
        # its warm starts and not yet started them is not a stranger to replace (review).
        if not trials or any(map(holds_work, trials)):
            return study
        try:
            check_identity(study.user_attrs.get("run_identity"), identity, where="")
        except RunFolderMismatch:
            warnings.warn(
                f"The study {study.study_name!r} was computed on other data or models and none of "
                f"its {len(trials)} trials finished (they failed, were interrupted, or were queued "
                "by a process that has ended); it was replaced by a new study.", UserWarning, stacklevel=4)
            optuna.delete_study(study_name=study.study_name, storage=make_storage(storage))
            return self.create_study(storage)
        return study

    def _check_same_objective(self, study: optuna.Study, where: str) -> None:
        # Studies written before the objective was a choice optimised the candidate's score.
        stored = study.user_attrs.get("objective", CandidateScore.name if study.trials else None)
        if stored is None:
            study.set_user_attr("objective", self.objective.name)
        elif stored != self.objective.name:
            raise RunFolderMismatch(
                f"The 'objective' parameter must be the one {where} was searched with, "
                f"{stored!r}: its trial values mean that. Use a new 'run_dir' to search by "
                f"{self.objective.name!r}. Got {self.objective.name!r} instead.")
        else:
            study.set_user_attr("objective", stored)

    def create_study(self, storage: Any) -> optuna.Study:
        with quiet_optuna(self.verbose):
            return optuna.create_study(
                storage=make_storage(storage), study_name=self.study_name,
                sampler=self.strategy.make_sampler(self.space, seed=self.sampler_seed),
                pruner=self.pruner or optuna.pruners.NopPruner(), direction="maximize",
                load_if_exists=True,
            )

    def run(
        self,
        evaluator: CandidateEvaluator,
        build: EstimatorBuilder,
        *,
        n_trials: int | None,
        deadline: float | None,
        store: ArtifactStore,
        linear_features: Callable[[], Any] | None = None,
        seed_trials: bool = True,
        identity: Mapping[str, str] | None = None,
        final_deadline: float | None = None,
    ) -> Population:
        """Run until ``n_trials`` trials have finished (resumed ones count) or ``deadline``.

        ``identity`` (from :func:`ensemble_hpo._run_identity.run_identity`) describes the
        data and models; a resumed study computed on another identity is refused. Without
        it, the target and folds are compared. After the run, ``search_scoring_`` names the
        metric the study's trial values are in: the first fit's, even when ``evaluator``
        scores in another one (a resumed study keeps optimising one metric; the caller
        rescores the stored out-of-fold predictions in its own). ``final_deadline`` (the
        fit's own end, after ``deadline``) lets candidates finish their folds while none has
        finished yet, so that a slow first candidate is not discarded with time left.
        """
        self._check(n_trials)
        if identity is None:
            identity = target_and_folds_identity(evaluator.y, evaluator.splits)
        parallel = self.n_jobs > 1 or self.backend is not None
        scratch: list[Path] = []
        storage, work_store = self.storage, store
        if parallel and storage_kind(storage) is None and self.backend is None:
            # Worker processes need a storage and artifact folder they can all open.
            scratch = list(new_scratch_folders())
            storage = f"journal://{scratch[1] / 'study.log'}"
            work_store = FileArtifactStore(scratch[0] / "artifacts")
        try:
            study = self.create_study(storage)
            # First: a dead process's RUNNING trial made a stranger study look active, and a fit
            # killed in its first candidate (nothing finished) blocked the corrected fit (audit).
            fail_stale_trials(study)
            study = self._without_an_unfinished_stranger(study, storage, identity)
            _check_no_orphaned_candidates(study, store)
            sampler_seed = resumed_seed(self.sampler_seed, len(study.get_trials(deepcopy=False)))
            if sampler_seed != self.sampler_seed:
                study.sampler = self.strategy.make_sampler(self.space, seed=sampler_seed)
            self.study_ = study
            context = SearchContext(space=self.space, n_trials=n_trials, seed=self.seed,
                                    X=evaluator.X, y=evaluator.y, splits=list(evaluator.splits),
                                    linear_features=linear_features)
            # Computed once: a warm start from another study reads its trials.
            warm = self._warm_start_trials() if seed_trials else []
            initial = None
            if isinstance(self.strategy, GridSearch):
                # Before the study is stamped with this run's identity, so a refused grid leaves
                # a folder the corrected run can use (a grid's own initial trials are free).
                initial = self._new_initial_trials(study, context, warm, seed_trials)
                self._check_grid_room(study, n_trials, queued=len(initial))
            evaluator = self._check_resumable(study, evaluator, identity)
            if initial is None:
                initial = self._new_initial_trials(study, context, warm, seed_trials)
            enqueue_new(study, initial, warm_start=warm)
            remaining = None if n_trials is None else n_trials - count_finished(study)
            objective = CandidateObjective(self.space, evaluator, work_store, build, seed=self.seed,
                                           deadline=deadline, trial_timeout=self.trial_timeout,
                                           strategy=self.strategy.name, trial_value=self.objective,
                                           final_deadline=final_deadline,
                                           identity=dict(identity))
            copy_back = None if work_store is store else _ArtifactCopier(study, work_store, store)
            with quiet_optuna(self.verbose):
                if parallel:
                    with _search_bar(study, remaining, deadline, self.verbose):
                        optimize_in_processes(storage, self.study_name, self.strategy, self.space, objective,
                                              pruner=self.pruner or optuna.pruners.NopPruner(),
                                              n_jobs=self.n_jobs, backend=self.backend,
                                              seed=sampler_seed, total_trials=n_trials,
                                              deadline=deadline, on_worker_done=copy_back)
                else:
                    callbacks = [ProgressCallback(remaining, deadline)] if self.verbose else []
                    try:
                        optimize_shared(study, objective, total_trials=n_trials, deadline=deadline,
                                        callbacks=callbacks)
                    finally:
                        for bar in callbacks:
                            bar.close()
            if copy_back is not None:
                copy_back()
            return Population.from_study(study, store, identity=identity)
        finally:
            if scratch:
                self.study_ = _to_memory(self.study_) if hasattr(self, "study_") else None
                for folder in scratch:
                    shutil.rmtree(folder, ignore_errors=True)


def _check_no_orphaned_candidates(study: optuna.Study, store: ArtifactStore) -> None:
    """Refuse a study with fewer trials than the store has candidate numbers: its new trials
    would take those numbers and overwrite files an earlier model still reads (a run folder
    whose journal was removed, or whose database was reset, was silently written over; audit).
    """
    # Files first, trials after: a candidate's trial exists before its files are written, so a
    # fit running beside this one cannot make its newest candidate look orphaned.
    numbers = store.keys()
    n_trials = len(study.get_trials(deepcopy=False))
    beyond = [number for number in numbers if number >= n_trials]
    if beyond:
        raise RunFolderMismatch(
            f"The study {study.study_name!r} holds {n_trials} trials, but the run "
            f"folder's artifacts hold candidates it does not know ({beyond[:5]}; was its journal "
            "removed, or its database reset?): new candidates would overwrite them. Use a new "
            "'run_dir', or restore the study.")


def check_warm_start(value: Any, parameter: str) -> None:
    """Refuse a warm start that is not a known list name, None or a study; ``parameter`` is
    the name the caller knows it by (the estimators' ``warm_start_configs``)."""
    if not (value is None or isinstance(value, optuna.Study)
            or (isinstance(value, str) and value in WARM_START_KINDS)):
        raise ValueError(
            f"The {parameter!r} parameter must be 'portfolio' (the recommended warm start), "
            "'defaults' (each family's hand-set starting configurations), 'mined' (the "
            f"portfolio mined from 60 tables), None or an optuna.Study. Got {value!r} instead.")


def _search_bar(study: optuna.Study, n_trials: int | None, deadline: float | None,
                verbose: int) -> contextlib.AbstractContextManager[Any]:
    """The search bar of a search run by worker processes (read from the shared storage)."""
    if not verbose:
        return contextlib.nullcontext()
    return StudyPoller(ProgressCallback(n_trials, deadline), study)


def _best_params(study: optuna.Study, space: SearchSpace, k: int) -> list[dict[str, Any]]:
    complete = [t for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
                if t.params.get("family") in space.family_names]
    fitting = [t for t in complete if space.contains(t.params)]
    if len(fitting) < len(complete):
        # Enqueued anyway, a name the space does not know would be dropped and its value
        # sampled anew (max_depthh=5 ran as max_depth=8), a value outside it would fail.
        warnings.warn(
            f"{len(complete) - len(fitting)} of the warm-start study's {len(complete)} finished "
            "trials of these families are not points of this search space (unknown parameter "
            "names or values outside their distributions); they were skipped.",
            UserWarning, stacklevel=4)
    # By the candidates' own scores: with objective="ensemble" a trial's value is a gain.
    fitting.sort(key=candidate_score, reverse=True)
    return [dict(t.params) for t in fitting[:k]]


class _ArtifactCopier:
    """Copies completed trials' artifacts from the workers' store into the caller's, each once.

    Called when a worker stops, it copies while the other workers finish their last
    trial on the cores left free; the final call after all workers copies the rest.
    """

    def __init__(self, study: optuna.Study, source: ArtifactStore, target: ArtifactStore) -> None:
        self.study = study
        self.source = source
        self.target = target
        self.copied: set[int] = set()

    def __call__(self) -> None:
        for trial in self.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
            number = trial.number
            if number not in self.copied and number in self.source:
                self.target.save(number, self.source.load_predictions(number).copy(),
                                 self.source.load_models(number))
                self.copied.add(number)


def _to_memory(study: optuna.Study) -> optuna.Study:
    with quiet_optuna():
        memory = optuna.create_study(direction=study.direction, study_name=study.study_name)
    memory.add_trials(study.get_trials(deepcopy=True))
    return memory

