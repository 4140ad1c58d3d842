"""scikit-learn estimators composing the three stages: search → selection → fusion."""

from __future__ import annotations

import numbers
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.preprocessing import LabelEncoder
from sklearn.utils.validation import check_is_fitted
from threadpoolctl import threadpool_limits

from ensemble_hpo._ensemble import Member
from ensemble_hpo._resolve import check_cv, make_fuser, make_selector, make_splits, n_splits_of
from ensemble_hpo._run_identity import check_identity, run_identity, scoring_key
from ensemble_hpo._select_fuse import SelectionData, select_and_fuse
from ensemble_hpo.fusion import (
    prediction_cost,
    to_sklearn,
    trim_ensemble,
)
from ensemble_hpo.metrics import get_prediction_scorer
from ensemble_hpo.population import (
    CandidateEvaluator,
    FileArtifactStore,
    MemoryArtifactStore,
    PipelineBuilder,
    Population,
)
from ensemble_hpo.search import SearchRun, make_strategy
from ensemble_hpo.search._objective import candidate_seed
from ensemble_hpo.spaces import SearchSpace

__all__ = ["EnsembleClassifier", "EnsembleRegressor"]

DEFAULT_N_TRIALS = 30
# Share of ``time_budget`` kept for selection and fusion after the search stops.
_POST_SEARCH_SHARE = 0.05


class _BaseEnsemble(BaseEstimator):
    """Shared fit logic; subclasses set ``_task`` and encode the target."""

    _task: str

    def __init__(
        self,
        *,
        models: Any = "auto",
        search: Any = "tpe",
        n_trials: int | None = None,
        time_budget: float | None = None,
        trial_timeout: float | None = None,
        cv: Any = 5,
        scoring: Any = None,
        selection: Any = "greedy",
        fusion: Any = "average",
        pruner: optuna.pruners.BasePruner | None = None,
        warm_start_configs: Any = "portfolio",
        storage: Any = None,
        run_dir: str | None = None,
        final_models: str = "folds",
        n_jobs: int = 1,
        backend: Any = None,
        trusted: bool = False,
        random_state: int | None = None,
        verbose: int = 0,
    ) -> None:
        self.models = models
        self.search = search
        self.n_trials = n_trials
        self.time_budget = time_budget
        self.trial_timeout = trial_timeout
        self.cv = cv
        self.scoring = scoring
        self.selection = selection
        self.fusion = fusion
        self.pruner = pruner
        self.warm_start_configs = warm_start_configs
        self.storage = storage
        self.run_dir = run_dir
        self.final_models = final_models
        self.n_jobs = n_jobs
        self.backend = backend
        self.trusted = trusted
        self.random_state = random_state
        self.verbose = verbose

    # -- validation --------------------------------------------------------------------------
    def _check_params(self) -> None:
        check_cv(self.cv)
        if self.final_models not in ("folds", "refit"):
            raise ValueError("The 'final_models' parameter must be 'folds' or 'refit'. "
                             f"Got {self.final_models!r} instead.")
        _check_positive("n_trials", self.n_trials, integral=True)
        _check_positive("time_budget", self.time_budget, integral=False)
        _check_positive("trial_timeout", self.trial_timeout, integral=False)
        _check_positive("n_jobs", self.n_jobs, integral=True)
        self._check_combinations()
        if self.random_state is not None and not isinstance(self.random_state, numbers.Integral):
            raise ValueError(
                f"The 'random_state' parameter must be an int or None. Got {self.random_state!r} instead."
            )

    def _check_combinations(self) -> None:
        """Parameter combinations that would fail late or silently do nothing."""
        if self.storage is not None and self.run_dir is None:
            raise ValueError(
                "The 'run_dir' parameter must be set when 'storage' is: the study outlives the fit "
                "in the storage, but without a run folder the candidates' out-of-fold predictions "
                "and models live in memory only, so the next fit on that storage would find "
                f"trials it cannot use. Got storage={self.storage!r} and run_dir=None instead.")
        if self.pruner is not None and self.trial_timeout is not None:
            raise ValueError(
                "The 'pruner' parameter has no effect with 'trial_timeout': candidates then train "
                "in a separate process and report their fold scores only when done. Drop one of "
                f"them. Got pruner={self.pruner!r} and trial_timeout={self.trial_timeout!r} instead.")
        if self.backend not in (None, "loky") and self.run_dir is None:
            raise ValueError(
                "The 'run_dir' parameter must be set with a Dask backend: its workers share the "
                "study (the journal in run_dir, or 'storage') and the artifact folder. Got "
                f"backend={self.backend!r} and run_dir=None instead.")

    def _budget(self) -> tuple[int | None, float | None]:
        if self.n_trials is None and self.time_budget is None:
            return DEFAULT_N_TRIALS, None
        return self.n_trials, self.time_budget

    # -- fit -----------------------------------------------------------------------------------
    def fit(self, X: Any, y: Any, sample_weight: Any = None, groups: Any = None) -> _BaseEnsemble:
        """Search candidates, select an ensemble from their out-of-fold predictions, fuse it.

        Parameters
        ----------
        X : array-like, DataFrame or sparse matrix of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), default=None
        groups : array-like of shape (n_samples,), default=None
            Group labels for group-aware cross-validation.

        Returns
        -------
        self
        """
        start = time.time()
        setup = self._setup(X, y, sample_weight, groups, start)
        population = setup.run.run(
            setup.evaluator, setup.builder, n_trials=setup.n_trials, deadline=setup.deadline,
            store=setup.store, linear_features=lambda: setup.builder.linear_features(setup.X),
            identity=setup.identity,
        )
        population = self._in_user_metric(population, setup)
        fuser, selector = setup.fuser, setup.selector
        transformer = setup.builder.fuser_transformer(fuser, setup.X)
        splits = [(np.asarray(tr, np.int32), np.asarray(va, np.int32))
                  for tr, va in setup.evaluator.splits]
        fit_deadline = None if self._budget()[1] is None else start + self._budget()[1]
        data = SelectionData(y=setup.evaluator.y, task=self._task, splits=splits,
                             n_classes=setup.evaluator.n_classes,
                             sample_weight=setup.evaluator.sample_weight,
                             groups=None if groups is None else np.asarray(groups), X=setup.X,
                             transformer=transformer)
        self._finish(population, selector, fuser, data, deadline=fit_deadline)
        self.search_scoring_ = setup.run.search_scoring_
        self.run_identity_ = setup.identity
        if self.final_models == "refit":
            self._refit_members(setup)
        sample = setup.X[: min(500, setup.X.shape[0])]
        # One BLAS/OpenMP thread, as candidates are trained: unlimited OpenMP pools in
        # HistGradientBoosting's predict took 32.6 s of a 30 s-budget fit on vote92_choice
        # (909 rows, 6 members) on the loaded 2-core machine.
        with threadpool_limits(limits=1):
            self.prediction_cost_ = prediction_cost(self.ensemble_, sample, repeats=1)
        self.trials_ = setup.run.study_.get_trials(deepcopy=True)
        if setup.classes is not None:
            self.classes_ = setup.classes
        self.feature_info_ = setup.info
        self.n_features_in_ = setup.info.n_features_in_
        if setup.info.feature_names_in_ is not None:
            self.feature_names_in_ = setup.info.feature_names_in_
        self.fit_time_ = time.time() - start
        return self

    def reselect(self, X: Any, y: Any, *, selection: Any = None, fusion: Any = None,
                 sample_weight: Any = None, groups: Any = None) -> _BaseEnsemble:
        """Re-run selection and fusion on the existing population; nothing is retrained.

        Only candidates whose fold models are still available can become members:
        all of them with ``run_dir`` (kept on disk), otherwise the previous members
        and the best candidate. ``X``, ``y``, ``sample_weight`` and ``groups`` must be
        those of ``fit``.
        """
        check_is_fitted(self, "ensemble_")
        if selection is not None:
            self.set_params(selection=selection)
        if fusion is not None:
            self.set_params(fusion=fusion)
        from ensemble_hpo._validation import validate_fit_data

        X, y, info = validate_fit_data(X, y, task=self._task, cv_n_splits=None,
                                       sample_weight=sample_weight, groups=groups)
        y_enc = np.searchsorted(self.classes_, y) if hasattr(self, "classes_") else np.asarray(y, float)
        weights = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
        current = run_identity(X, y_enc, self.cv_splits_, task=self._task, sample_weight=weights,
                               groups=groups)
        fitted = {k: v for k, v in getattr(self, "run_identity_", {}).items() if k != "space"}
        check_identity(fitted, current, where="this estimator's fit")
        population = _with_available_models(self.population_)
        fuser = make_fuser(self.fusion, self.random_state, self.scoring)
        builder = PipelineBuilder(info.column_kinds, self._task)
        data = SelectionData(y=y_enc, task=self._task, splits=self.cv_splits_,
                             n_classes=None if self._task == "regression" else len(self.classes_),
                             sample_weight=weights,
                             groups=None if groups is None else np.asarray(groups), X=X,
                             transformer=builder.fuser_transformer(fuser, X))
        self._finish(population, make_selector(self.selection, self.random_state, self.scoring),
                     fuser, data)
        return self

    def _in_user_metric(self, population: Population, setup: _FitSetup) -> Population:
        """Rescore a resumed population searched in another metric; nothing is retrained."""
        searched = setup.run.search_scoring_
        wanted = scoring_key(setup.evaluator.scorer)
        if searched == wanted:
            return population
        warnings.warn(
            f"The run folder's study was searched with scoring {searched!r}. Its "
            f"{len(population.completed())} finished candidates were rescored in {wanted!r} from "
            "their stored out-of-fold predictions (nothing was retrained); new candidates are "
            f"still searched by {searched!r} and scored in {wanted!r}. Use a new "
            f"'run_dir' to search by {wanted!r}.", UserWarning, stacklevel=3)
        evaluator = setup.evaluator
        return population.rescored(evaluator.scorer, evaluator.y, evaluator.splits,
                                   evaluator.sample_weight)

    def _refit_members(self, setup: _FitSetup) -> None:
        """Replace each member's fold models by one model trained on all rows."""
        evaluator = setup.evaluator
        kwargs = {} if evaluator.sample_weight is None else {"model__sample_weight": evaluator.sample_weight}
        for member in self.ensemble_.members:
            family = setup.run.space.family(member.family)
            seed = candidate_seed(self.random_state, member.number)
            model = setup.builder(family, dict(member.params), seed)
            member.models = [model.fit(setup.X, evaluator.y, **kwargs)]

    def join_search(self, X: Any, y: Any, sample_weight: Any = None, groups: Any = None) -> int:
        """Run trials of this estimator's shared study as an extra worker, without selecting.

        Another process (``fit`` or another worker) with the same data, ``cv``,
        ``random_state`` and a shareable ``storage`` / ``run_dir`` sees the trials.
        Returns the number of finished trials in the study afterwards.
        """
        start = time.time()
        setup = self._setup(X, y, sample_weight, groups, start)
        if self.run_dir is None:
            raise ValueError("The 'run_dir' parameter must be set to join a search, so that "
                             "workers share the artifact folder. Got None instead.")
        setup.run.sampler_seed = (self.random_state or 0) + os.getpid()
        population = setup.run.run(setup.evaluator, setup.builder, n_trials=setup.n_trials,
                                   deadline=setup.deadline, store=setup.store, seed_trials=False,
                                   identity=setup.identity)
        return len(population.candidates)

    def _setup(self, X: Any, y: Any, sample_weight: Any, groups: Any, start: float) -> _FitSetup:
        """Validate everything and build the search objects; nothing expensive runs here."""
        self._check_params()
        from ensemble_hpo._validation import validate_fit_data

        X, y, info = validate_fit_data(X, y, task=self._task, cv_n_splits=n_splits_of(self.cv),
                                       sample_weight=sample_weight, groups=groups,
                                       rare_classes="warn")
        y_enc, classes = self._encode_target(y)
        n_classes = None if classes is None else len(classes)
        weights = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
        n_trials, time_budget = self._budget()
        deadline = None if time_budget is None else start + time_budget * (1 - _POST_SEARCH_SHARE)
        splits = make_splits(self.cv, X, y_enc, task=self._task, groups=groups,
                             random_state=self.random_state)
        space = SearchSpace.from_models(self.models, task=self._task)
        scorer = get_prediction_scorer(self.scoring, self._task)
        # Built here so a bad name fails before any training.
        selector = make_selector(self.selection, self.random_state, self.scoring)
        fuser = make_fuser(self.fusion, self.random_state, self.scoring)
        evaluator = CandidateEvaluator(X=X, y=y_enc, splits=splits, task=self._task, scorer=scorer,
                                       n_classes=n_classes, sample_weight=weights, n_threads=1,
                                       groups=None if groups is None else np.asarray(groups))
        storage, store = self._storage_and_store()
        # Checked against a resumed study, and kept so that reselect() can refuse other data.
        identity = run_identity(X, y_enc, splits, task=self._task, sample_weight=weights,
                                groups=groups, space=space)
        run = SearchRun(
            strategy=make_strategy(self.search), space=space, storage=storage,
            pruner=self.pruner, warm_start=self.warm_start_configs, n_jobs=self.n_jobs,
            backend=self.backend, trial_timeout=self.trial_timeout, seed=self.random_state,
            verbose=self.verbose,
        )
        return _FitSetup(X=X, info=info, classes=classes, evaluator=evaluator, run=run, store=store,
                         builder=PipelineBuilder(info.column_kinds, self._task),
                         n_trials=n_trials, deadline=deadline, selector=selector, fuser=fuser,
                         identity=identity)

    def _storage_and_store(self) -> tuple[Any, Any]:
        """In memory by default; with ``run_dir``, a journal study plus artifact files there."""
        if self.run_dir is None:
            return self.storage, MemoryArtifactStore()
        root = Path(self.run_dir)
        storage = self.storage if self.storage is not None else f"journal://{root / 'study.log'}"
        return storage, FileArtifactStore(root / "artifacts", trusted=self.trusted)

    def _finish(self, population: Population, selector: Any, fuser: Any, data: SelectionData,
                deadline: float | None = None) -> None:
        result = select_and_fuse(population, selector, fuser, data, scoring=self.scoring,
                                 random_state=self.random_state, deadline=deadline,
                                 verbose=self.verbose)
        self.fusion_comparison_ = result.fusion_comparison
        self.cv_splits_ = list(data.splits)
        self.selection_target_ = data.y  # encoded; lets trim() refit the fuser without the data
        self.ensemble_ = result.ensemble
        self.selector_ = result.selector
        self.leaderboard_ = result.leaderboard
        self.best_candidate_ = result.best
        self.best_score_ = result.best.score
        # The weighted ensemble's score on the rows it was selected on is optimistic: it keeps
        # that name. cv_score_ repeats selection and fusion inside the outer folds.
        self.selection_score_ = result.selection_score
        self.cv_score_ = result.cv_score
        self.population_ = population

    def predict_candidate(self, X: Any, number: int | None = None) -> np.ndarray:
        """Predictions of one candidate (default: the best single one), fold models averaged.

        Probabilities for a classifier (columns as ``classes_``), values for a regressor.
        Only candidates whose models are kept can predict: members, the best
        candidate, and every candidate of a ``run_dir`` run.
        """
        check_is_fitted(self, "ensemble_")
        from ensemble_hpo._validation import validate_predict_data

        number = self.best_candidate_.number if number is None else int(number)
        store = self.population_.store
        if not store.has_models(number):
            raise ValueError(f"The models of candidate {number} are not kept; members, the best "
                             "candidate and every candidate of a run_dir run can predict.")
        member = Member(number=number, family="", params={}, weight=1.0,
                        models=store.load_models(number))
        n_classes = len(self.classes_) if hasattr(self, "classes_") else None
        return member.predict(validate_predict_data(X, self.feature_info_), self._task, n_classes)

    def prediction_cost(self, X: Any, *, repeats: int = 3) -> pd.DataFrame:
        """Seconds per row to predict ``X``: each member, and the whole ensemble (last row)."""
        check_is_fitted(self, "ensemble_")
        from ensemble_hpo._validation import validate_predict_data

        return prediction_cost(self.ensemble_, validate_predict_data(X, self.feature_info_),
                               repeats=repeats)

    def trim(self, *, max_members: int | None = None, latency_budget: float | None = None,
             X: Any = None) -> _BaseEnsemble:
        """Shrink the ensemble to ``max_members`` and/or ``latency_budget`` seconds per row.

        Members are kept in order of their out-of-fold contribution; weights are
        renormalised and the fuser is refit on the kept members' out-of-fold
        predictions. ``X`` (a sample of typical rows) is needed for a latency budget.
        """
        check_is_fitted(self, "ensemble_")
        from ensemble_hpo._validation import validate_predict_data

        if X is not None:
            X = validate_predict_data(X, self.feature_info_)
        numbers_ = [m.number for m in self.ensemble_.members]
        with threadpool_limits(limits=1):
            self.ensemble_ = trim_ensemble(
                self.ensemble_, max_members=max_members, latency_budget=latency_budget, X=X,
                oof_predictions=self.population_.predictions(numbers_), y=self.selection_target_,
                scoring=self.scoring,
            )
        kept = {m.number: m.weight for m in self.ensemble_.members}
        self.leaderboard_["weight"] = self.leaderboard_["number"].map(kept).fillna(0.0)
        # The kept members were chosen on all out-of-fold rows: the nested estimate of the
        # untrimmed ensemble no longer describes this one, and no honest one exists.
        self.cv_score_ = float("nan")
        warnings.warn("trim() chose the kept members on all out-of-fold rows, so cv_score_ no "
                      "longer applies and is set to NaN; estimate the trimmed ensemble on "
                      "held-out data.", UserWarning, stacklevel=2)
        return self

    def to_sklearn(self) -> Any:
        """The fitted ensemble as a scikit-learn VotingClassifier/Regressor or Stacking* object."""
        check_is_fitted(self, "ensemble_")
        return to_sklearn(self)

    def _predict_raw(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "ensemble_")
        from ensemble_hpo._validation import validate_predict_data

        X = validate_predict_data(X, self.feature_info_)
        return self.ensemble_.combine(X)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        # Missing values, sparse matrices and string categories are handled by the
        # per-family preprocessing.
        tags.input_tags.allow_nan = True
        tags.input_tags.sparse = True
        tags.input_tags.categorical = True
        tags.input_tags.string = True
        tags.non_deterministic = False
        return tags


@dataclass
class _FitSetup:
    X: Any
    info: Any
    classes: np.ndarray | None
    evaluator: CandidateEvaluator
    run: SearchRun
    store: Any
    builder: PipelineBuilder
    n_trials: int | None
    deadline: float | None
    selector: Any
    fuser: Any
    identity: dict[str, str] | None


def _with_available_models(population: Population) -> Population:
    store = population.store
    usable = [c for c in population.completed() if store.has_models(c.number)]
    others = [c for c in population.candidates if not c.ok]
    return Population(usable + others, store)


def _check_positive(name: str, value: Any, *, integral: bool) -> None:
    if value is None:
        return
    kind = numbers.Integral if integral else numbers.Real
    if isinstance(value, bool) or not isinstance(value, kind) or value <= 0:
        expected = "a positive int" if integral else "a positive number of seconds"
        raise ValueError(f"The '{name}' parameter must be {expected} or None. Got {value!r} instead.")


class EnsembleClassifier(ClassifierMixin, _BaseEnsemble):
    """Classifier that turns a hyperparameter search into an ensemble.

    A search strategy trains many candidates (model family + hyperparameters)
    with K-fold cross-validation on shared folds; greedy ensemble selection
    (Caruana et al., 2004) picks a weighted subset from their out-of-fold
    probabilities; a fuser combines the members.

    Parameters
    ----------
    models : "auto", list of str / ModelFamily / dict, or SearchSpace, default="auto"
        Model families to search. ``"auto"`` uses
        :data:`ensemble_hpo.spaces.DEFAULT_FAMILIES`.
    search : str, SearchStrategy or optuna.samplers.BaseSampler, default="tpe"
        ``"random"``, ``"sobol"``, ``"halton"``, ``"tpe"``, ``"gp"``, ``"grid"``,
        ``"genetic"``, ``"cmaes"``, ``"pso"``, ``"gradient"``, or an object.
    n_trials : int, default=None
        Number of candidates. With neither ``n_trials`` nor ``time_budget``, 30.
    time_budget : float, default=None
        Wall-clock seconds for the whole ``fit``; with only this set, the search
        runs until the budget is spent.
    trial_timeout : float, default=None
        Per-candidate limit in seconds. Candidates then train in a killable worker
        process; one that hangs is stopped and recorded with status ``"timeout"``.
        Scripts using it need the usual ``if __name__ == "__main__":`` guard
        (Python's multiprocessing start-up re-imports the main module).
    cv : int or CV splitter, default=5
        Folds shared by all candidates (stratified and shuffled for an int).
    scoring : str or callable, default=None
        scikit-learn scorer name or callable; None means ``"neg_log_loss"``.
    selection : str or selector, default="greedy"
        Ensemble selection (``"greedy"``: Caruana's forward selection with replacement).
    fusion : str or fuser, default="average"
        ``"average"``, ``"soft_voting"``, ``"hard_voting"``, ``"optimized"`` or ``"stacking"``.
    pruner : optuna.pruners.BasePruner, default=None
        Stops hopeless candidates after their first folds.
    warm_start_configs : "portfolio", None, or a finished Optuna study, default="portfolio"
        Configurations tried before the strategy's own proposals: each family's
        known-good portfolio, or the best trials of an earlier study on a similar task.
    storage : str or optuna storage, default=None
        Where the study lives (in memory when None, or a journal file in ``run_dir``).
    final_models : {"folds", "refit"}, default="folds"
        Members predict with the average of their cross-validation fold models
        (no extra training), or with one model refit on all rows.
    run_dir : str, default=None
        Folder for a durable run: the study and every candidate's out-of-fold
        predictions and fold models. Fitting again with the same folder resumes:
        finished candidates are reused, never retrained.
    n_jobs : int, default=1
        Candidates trained concurrently in separate processes.
    backend : None, "loky", "dask" or a dask.distributed.Client, default=None
        Where the ``n_jobs`` workers run: local processes (None/"loky") or a Dask
        cluster (the current client for "dask").
    trusted : bool, default=False
        Load fold models from ``run_dir`` that were not signed with your key (a
        teammate's folder, a folder written with another ``ENSEMBLE_HPO_KEY_FILE``).
        Unpickling can run code, so set it only for a folder whose source you
        trust; a file whose checksum does not match is refused even then.
    random_state : int, default=None
    verbose : int, default=0

    Attributes
    ----------
    classes_ : ndarray
    leaderboard_ : pandas.DataFrame
        Every candidate (failed ones included) with score, params, family,
        fit time, status and ensemble weight.
    ensemble_ : Ensemble
        Members, weights and the fitted fuser.
    cv_score_ : float
        Estimated generalisation score of the fitted ensemble, in ``scoring``: for
        each CV fold, selection and fusion are fitted on the other folds'
        out-of-fold predictions and the held-out fold is predicted; the held-out
        predictions of all folds are scored together, like a candidate's score.
    selection_score_ : float
        Score of the selected weighted average on the rows it was selected on
        (in-sample, optimistic; never below ``best_score_`` for greedy selection).
    best_score_ : float
        Best single candidate's out-of-fold score.
    fusion_comparison_ : pandas.DataFrame
        Every fusion method scored the same nested way as ``cv_score_`` (the
        fitted ensemble's fuser first by name), best first. Fusers other than
        the chosen one are skipped once ``time_budget`` is spent.
    search_scoring_ : str
        The metric the study's trial values are in (a resumed run folder keeps
        the one it was first searched with; candidates are rescored in ``scoring``).

    Examples
    --------
    >>> from sklearn.datasets import load_breast_cancer
    >>> from ensemble_hpo import EnsembleClassifier
    >>> X, y = load_breast_cancer(return_X_y=True)
    >>> clf = EnsembleClassifier(models=["logistic", "random_forest"], n_trials=4, cv=3,
    ...                          random_state=0).fit(X, y)
    >>> clf.selection_score_ >= clf.best_score_  # in-sample: selection starts from the best
    True
    >>> bool(clf.cv_score_ <= 0)  # log loss of rows selection and fusion did not see, negated
    True
    >>> clf.predict_proba(X[:2]).shape
    (2, 2)
    """

    _task = "classification"

    def _encode_target(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        encoder = LabelEncoder().fit(y)
        return encoder.transform(y), encoder.classes_

    def predict_proba(self, X: Any) -> np.ndarray:
        """Fused class probabilities, columns ordered as ``classes_``."""
        return self._predict_raw(X)

    def predict(self, X: Any) -> np.ndarray:
        """Class with the highest fused probability."""
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]


class EnsembleRegressor(RegressorMixin, _BaseEnsemble):
    """Regressor that turns a hyperparameter search into an ensemble.

    Same parameters and attributes as :class:`EnsembleClassifier` (no
    ``classes_``); the default scoring is ``"neg_root_mean_squared_error"``.

    Examples
    --------
    >>> from sklearn.datasets import load_diabetes
    >>> from ensemble_hpo import EnsembleRegressor
    >>> X, y = load_diabetes(return_X_y=True)
    >>> reg = EnsembleRegressor(models=["ridge", "extra_trees"], n_trials=4, cv=3,
    ...                         random_state=0).fit(X, y)
    >>> reg.selection_score_ >= reg.best_score_  # in-sample: selection starts from the best
    True
    """

    _task = "regression"

    def _encode_target(self, y: np.ndarray) -> tuple[np.ndarray, None]:
        return np.asarray(y, dtype=np.float64), None

    def predict(self, X: Any) -> np.ndarray:
        """Fused predictions."""
        return self._predict_raw(X)
