"""The estimators' shared base: it composes the fit plan, the deadline and the select-and-fuse step."""

from __future__ import annotations

import contextlib
import copy
import numbers
import os
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import optuna
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted
from threadpoolctl import threadpool_limits

from ensemble_hpo._deadline import Deadline
from ensemble_hpo._fit_plan import FitPlan, refit_members, reselection_data
from ensemble_hpo._params import budget
from ensemble_hpo._pareto import (
    accuracy_latency_front,
    candidate_costs,
    front_members,
    front_selector,
    pick_point,
)
from ensemble_hpo._resolve import make_fuser, make_selector
from ensemble_hpo._run_folder import RunFolder
from ensemble_hpo._run_identity import check_identity, run_identity, scoring_key
from ensemble_hpo._select_fuse import (
    SelectionData,
    SelectionResult,
    nested_best_single,
    select_and_fuse,
    select_within_budget,
)
from ensemble_hpo._validation import validate_predict_data
from ensemble_hpo.ensemble import Member, prediction_cost, to_sklearn
from ensemble_hpo.ensemble._cost import check_trim_limits, member_seconds_per_row
from ensemble_hpo.fusion import WeightedAverage
from ensemble_hpo.metrics import get_prediction_scorer, stage_scoring
from ensemble_hpo.population import PipelineBuilder, Population
from ensemble_hpo.spaces import SearchSpace

__all__ = ["_BaseEnsemble"]


class _BaseEnsemble(BaseEstimator):
    """Shared fit logic; subclasses set ``_task`` and add their predict methods."""

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
        objective: Any = "candidate",
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
        self.objective = objective
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

    # -- fit -----------------------------------------------------------------------------------
    def fit(self, X: Any, y: Any, sample_weight: Any = None, groups: Any = None) -> _BaseEnsemble:
        """Search candidates, select an ensemble from their out-of-fold predictions, fuse it.

        Parameters
        ----------
        X : array-like, DataFrame or sparse matrix of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), default=None
        groups : array-like of shape (n_samples,), default=None
            Group labels for group-aware cross-validation: an int ``cv`` makes group
            folds; a splitter or explicit folds that put one group on both sides of a
            fold are refused before any training.

        Returns
        -------
        self
        """
        params = self.get_params()
        # A fit that fails before any candidate finished leaves the run folder as it found it
        # (its study would refuse the corrected fit as computed on other models).
        folder = RunFolder(params["run_dir"])
        with self._all_or_nothing(), folder.noting_kept_work(), folder.discard_if_untrained():
            params["random_state"] = folder.seed_for(params["random_state"])
            return self._fit(params, X, y, sample_weight, groups)

    @contextlib.contextmanager
    def _all_or_nothing(self) -> Iterator[None]:
        """Put every attribute back as it was when the block fails or is interrupted.

        Fitted attributes are set stage by stage: Ctrl-C in a notebook during the refit or
        the cost measurement left an estimator that passed check_is_fitted but failed to
        predict, or after an earlier fit mixed the two (the new ensemble on the old columns:
        accuracy 0.988 -> 0.953, without a word; audit). Finished candidates stay in run_dir.
        """
        before = dict(vars(self))
        try:
            yield
        except BaseException:
            vars(self).clear()
            vars(self).update(before)
            raise

    def _fit(self, params: dict[str, Any], X: Any, y: Any, sample_weight: Any,
             groups: Any) -> _BaseEnsemble:
        deadline = Deadline.for_fit(budget(params)[1], params["final_models"])
        plan = FitPlan.build(params, self._task, X, y, sample_weight=sample_weight,
                             groups=groups, deadline=deadline)
        with deadline.stage("search"):
            population = plan.search()
        data = plan.selection_data()
        with deadline.stage("selection and fusion"):
            result = self._select(population, plan.selector, plan.fuser, data, deadline.end,
                                  available_only=False, seed=params["random_state"],
                                  classes=plan.classes)
            # Once per fit: reselect, trim and keep_front_point keep the population and rows.
            best_single = (nested_best_single(population, data, self._stage_scoring(plan.classes))
                           if not deadline.expired() else float("nan"))
        with deadline.stage("accuracy-latency front"):
            # Before _apply: without a run_dir it drops every model but the members' and
            # the front's, so each front point stays keepable.
            self.pareto_front_ = accuracy_latency_front(
                population, data, scoring=self._stage_scoring(plan.classes), deadline=deadline.end,
                measure=self._member_timer(population, plan.X[:500], plan.n_classes))
        self._apply(result, population, data)
        self.best_single_cv_score_ = best_single
        self.search_scoring_ = plan.run.search_scoring_
        self.scoring_ = scoring_key(plan.evaluator.scorer)
        self.run_identity_ = plan.identity
        # A refit after fit (reselect, keep_front_point) rebuilds members from these, not from
        # parameters changed since: set_params(random_state=123) moved reselect's refit
        # predictions by 4.6 on diabetes, set_params(models=...) raised a bare KeyError (audit).
        # The models parameter, not the SearchSpace: built-in families hold local factories
        # that plain pickle (save_model) cannot store.
        self.search_models_ = copy.deepcopy(params["models"])
        self.search_seed_ = params["random_state"]
        self.final_models_ = self.final_models
        if self.final_models == "refit":
            with deadline.stage("refit"):
                self.final_models_ = "refit" if plan.refit_members(self.ensemble_, population) else "folds"
        with deadline.stage("prediction cost"), threadpool_limits(limits=1):
            # One BLAS/OpenMP thread, as candidates are trained: unlimited OpenMP pools in
            # HistGradientBoosting's predict took 32.6 s of a 30 s-budget fit on vote92_choice
            # (909 rows, 6 members) on the loaded 2-core machine.
            self.prediction_cost_ = prediction_cost(self.ensemble_, plan.X[:500], repeats=1)
        self.trials_ = plan.run.study_.get_trials(deepcopy=True)
        if plan.classes is not None:
            self.classes_ = plan.classes
        self.feature_info_ = plan.info
        self.n_features_in_ = plan.info.n_features_in_
        if plan.info.feature_names_in_ is not None:
            self.feature_names_in_ = plan.info.feature_names_in_
        elif hasattr(self, "feature_names_in_"):  # a refit on data without names
            del self.feature_names_in_
        self.fit_timings_ = dict(deadline.timings)
        self.fit_time_ = deadline.elapsed()
        return self

    def reselect(self, X: Any, y: Any, *, selection: Any = None, fusion: Any = None,
                 sample_weight: Any = None, groups: Any = None) -> _BaseEnsemble:
        """Re-run selection and fusion on the existing population; nothing is retrained.

        Only candidates whose fold models are still available can become members:
        all of them with ``run_dir`` (kept on disk), otherwise the previous members
        and the best candidate. ``X``, ``y``, ``sample_weight`` and ``groups`` must be
        those of ``fit``. Selection and fusion are seeded with the seed ``fit`` ran with
        (``search_seed_``), not with a ``random_state`` set since: pass a selector or fuser
        object with its own ``random_state`` to draw other folds.
        """
        check_is_fitted(self, "ensemble_")
        self._check_scoring_unchanged("reselect")
        # The new stage settings become parameters only once the reselection succeeded: a
        # refused call must not leave get_params() naming a selection that never ran.
        selection = self.selection if selection is None else selection
        fusion = self.fusion if fusion is None else fusion
        scoring, labels = self._stage_scoring(), (self._task, getattr(self, "classes_", None))
        fuser = make_fuser(fusion, self._fit_seed(), scoring, labels=labels)
        data = self._check_fit_data(X, y, sample_weight, groups, fuser, "reselect")
        selector = make_selector(selection, self._fit_seed(), scoring, labels=labels)
        every_model_kept = self._every_model_kept()
        result = self._select(self.population_, selector, fuser, data, None, available_only=True,
                              seed=self._fit_seed())
        if self._kept_models() == "refit":  # as fit left it: one model per member on all rows
            self._refit(result.ensemble, data.X, data)
        with self._all_or_nothing():
            self._apply(result, self.population_, data)
            self._remeasure_cost(X)
        if not every_model_kept:
            self._drop_cv_score("reselect")
        return self.set_params(selection=selection, fusion=fusion)

    def set_params(self, **params: Any) -> _BaseEnsemble:
        """Set parameters; ``trusted=True`` after ``fit`` or ``load_model`` also trusts the run
        folder's artifacts from now on.

        A pickled artifact store forgets its trust (its new owner decides), and the advised
        ``set_params(trusted=True)`` on a loaded model left reselect, trim and
        predict_candidate refusing the folder (audit).
        """
        super().set_params(**params)
        store = getattr(getattr(self, "population_", None), "store", None)
        if "trusted" in params and hasattr(store, "trusted"):
            store.trusted = bool(params["trusted"])
        return self

    def _fit_seed(self) -> int | None:
        """The seed fit ran with, for every stage run again after it.

        With ``random_state=None`` and a run folder, fit drew one and kept it there; reselect
        and trim seeded their selectors and fusers with None instead, so ``greedy_cv`` drew
        other folds and the nested estimate other outer folds than fit (audit). Estimators
        pickled before ``search_seed_`` existed fall back to the parameter.
        """
        return getattr(self, "search_seed_", self.random_state)

    def _refit(self, ensemble: Any, X: Any, data: SelectionData) -> None:
        # Estimators pickled before fit kept its models fall back to the parameters.
        space = SearchSpace.from_models(getattr(self, "search_models_", self.models),
                                        task=self._task, y=data.y)
        refit_members(ensemble, X, data.y, sample_weight=data.sample_weight, groups=data.groups,
                      space=space, builder=PipelineBuilder(self.feature_info_.column_kinds, self._task),
                      random_state=self._fit_seed())

    def _kept_models(self) -> str:
        """What the members hold now: "folds" or "refit" (``final_models`` for old pickles)."""
        return getattr(self, "final_models_", self.final_models)

    def _stage_scoring(self, classes: Any = None) -> Any:
        """``scoring`` as the stages get it: on the user's labels where a scorer reads them."""
        classes = getattr(self, "classes_", None) if classes is None else classes
        return stage_scoring(self.scoring, self._task, classes)

    def _check_scoring_unchanged(self, method: str) -> None:
        """The population's scores, the leaderboard and the front are in ``scoring_``."""
        fitted = getattr(self, "scoring_", None)  # None: a model saved before scoring_ existed
        now = scoring_key(get_prediction_scorer(self._stage_scoring(), self._task))
        if fitted is not None and now != fitted:
            raise ValueError(
                f"The 'scoring' parameter must be the one of fit ({fitted!r}) for {method}(): the "
                "candidates' scores, leaderboard_ and pareto_front_ are in that metric. Got "
                f"{now!r} instead. To use another metric, fit again with the same run_dir: its "
                "finished candidates are rescored from their stored out-of-fold predictions, "
                "not retrained.")

    def _check_fit_data(self, X: Any, y: Any, sample_weight: Any, groups: Any,
                        fuser: Any, method: str) -> SelectionData:
        """Validate ``X``, ``y``, ... and check they are those of ``fit`` (the run identity)."""
        data, weights = reselection_data(X, y, task=self._task,
                                         classes=getattr(self, "classes_", None),
                                         splits=self.cv_splits_, sample_weight=sample_weight,
                                         groups=groups, fuser=fuser)
        current = run_identity(data.X, data.y, self.cv_splits_, task=self._task,
                               sample_weight=weights, groups=groups)
        fitted = {k: v for k, v in getattr(self, "run_identity_", {}).items() if k != "space"}
        check_identity(fitted, current, where="this estimator's fit", method=method)
        return data

    def join_search(self, X: Any, y: Any, sample_weight: Any = None, groups: Any = None) -> int:
        """Run trials of this estimator's shared study as an extra worker, without selecting.

        Another process (``fit`` or another worker) with the same data, ``cv``,
        ``random_state`` and a shareable ``storage`` / ``run_dir`` sees the trials.
        Returns the number of finished trials in the study afterwards.
        """
        if self.run_dir is None:
            raise ValueError("The 'run_dir' parameter must be set to join a search, so that "
                             "workers share the artifact folder. Got None instead.")
        params = self.get_params()
        # The folder's seed when random_state is None: the folds of the fit it joins.
        params["random_state"] = RunFolder(self.run_dir).seed_for(params["random_state"])
        plan = FitPlan.build(params, self._task, X, y, sample_weight=sample_weight,
                             groups=groups, deadline=Deadline(budget(params)[1]))
        plan.run.sampler_seed = (params["random_state"] + os.getpid()) % 2**32  # numpy's range
        return len(plan.search(seed_trials=False).candidates)

    def _select(self, population: Population, selector: Any, fuser: Any, data: SelectionData,
                deadline: float | None, available_only: bool, seed: int | None,
                classes: Any = None) -> SelectionResult:
        """Select and fuse (with ``available_only``, among candidates whose models are kept)."""
        selectable = population.with_available_models() if available_only else population
        return select_and_fuse(selectable, selector, fuser, data, scoring=self._stage_scoring(classes),
                               random_state=seed, deadline=deadline, verbose=self.verbose)

    def _apply(self, result: SelectionResult, population: Population, data: SelectionData) -> None:
        weights = {m.number: m.weight for m in result.ensemble.members}
        # Without a run folder only the members', the best candidate's and the accuracy-latency
        # front's models are kept.
        front = getattr(self, "pareto_front_", None)
        population.store.drop_models(set(weights) | {result.best.number} | front_members(front))
        self.fusion_comparison_ = result.fusion_comparison
        # The rows selection learnt from, kept so that trim() can select again without the data.
        self.cv_splits_ = list(data.splits)
        self.selection_target_ = data.y  # encoded
        self.selection_weight_ = data.sample_weight
        self.selection_groups_ = data.groups
        self.ensemble_ = result.ensemble
        self.selector_ = result.selector
        self.leaderboard_ = population.leaderboard(weights)
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
        number = self.best_candidate_.number if number is None else self._finished_number(number)
        store = self.population_.store
        if not store.has_models(number):
            raise ValueError(f"The models of candidate {number} are not kept; members, the best "
                             "candidate and every candidate of a run_dir run can predict.")
        member = Member(number=number, family="", params={}, weight=1.0,
                        models=store.load_models(number))
        n_classes = len(self.classes_) if hasattr(self, "classes_") else None
        return member.predict(validate_predict_data(X, self.feature_info_), self._task, n_classes)

    def _finished_number(self, number: Any) -> int:
        """``number`` checked to be a finished candidate's (2.7 and True were truncated by int)."""
        finished = sorted(c.number for c in self.population_.completed())
        if isinstance(number, numbers.Integral) and not isinstance(number, bool) and number in finished:
            return int(number)
        shown = finished if len(finished) <= 20 else [*finished[:20], "..."]
        raise ValueError("The 'number' parameter must be the number of a finished candidate "
                         f"(leaderboard_ rows with status 'ok': {shown}). Got {number!r} instead.")

    def prediction_cost(self, X: Any, *, repeats: int = 3) -> pd.DataFrame:
        """Seconds per row to predict ``X``: each member, and the whole ensemble (last row)."""
        check_is_fitted(self, "ensemble_")
        return prediction_cost(self.ensemble_, validate_predict_data(X, self.feature_info_),
                               repeats=repeats)

    def trim(self, *, max_members: int | None = None, latency_budget: float | None = None,
             X: Any = None) -> _BaseEnsemble:
        """Select again with at most ``max_members`` members and/or a latency budget.

        Greedy selection (in ``scoring``) runs again over the candidates whose fold models
        are kept, capped at ``max_members`` distinct members; with ``latency_budget`` the
        cap shrinks until the ensemble predicts ``X`` (a sample of typical rows) within
        that many seconds per row. Nothing is retrained; the fuser is refit on the kept
        members' out-of-fold predictions. ``cv_score_`` repeats the capped selection and
        fusion inside the outer folds when every candidate's models are kept (a
        ``run_dir``); otherwise the choice is limited to members picked on all rows, no
        honest estimate exists, and it is set to NaN with a warning. ``prediction_cost_`` is
        measured again on ``X`` when given, and removed otherwise (it described the old
        ensemble). To choose by the accuracy-latency front instead, see
        :meth:`keep_front_point`.
        """
        check_is_fitted(self, "ensemble_")
        self._check_scoring_unchanged("trim")
        check_trim_limits(max_members, latency_budget, X)
        if self._kept_models() == "refit":
            raise ValueError(
                "trim() cannot refit members without the training rows, and its members would "
                "fall back to fold models while final_models_='refit'; use reselect(X, y, "
                "selection=GreedySelector(max_members=k)) or keep_front_point(..., X=X, y=y).")
        if self.ensemble_.feature_transformer is not None:
            raise ValueError(
                "trim() cannot refit a fuser that reads the original features (stacking with "
                "passthrough) without the training rows; use reselect(X, y, selection="
                "GreedySelector(max_members=k)) instead.")
        X = None if X is None else validate_predict_data(X, self.feature_info_)
        population = self.population_
        available = population.with_available_models()
        data = self._stored_selection_data()
        cap = len(self.ensemble_) if max_members is None else min(max_members, len(self.ensemble_))
        result = select_within_budget(available, self.ensemble_.fuser,
                                      data, max_members=cap, latency_budget=latency_budget, X=X,
                                      scoring=self._stage_scoring(), random_state=self._fit_seed())
        every_model_kept = self._every_model_kept()
        self._apply(result, population, data)
        self._remeasure_cost(X)
        if not every_model_kept:
            self._drop_cv_score("trim")
        return self

    def _every_model_kept(self) -> bool:
        """Whether every finished candidate's fold models are kept (a run_dir)."""
        population = self.population_
        return len(population.with_available_models().completed()) == len(population.completed())

    def _drop_cv_score(self, method: str) -> None:
        """Without every candidate's models the choice was among members picked on all
        out-of-fold rows, so the nested estimate is optimistic: ``cv_score_`` becomes NaN.

        ``reselect`` without a run_dir reported -0.1208 for the fit's own settings where fit
        had estimated -0.1262 (audit, breast cancer, 8 candidates).
        """
        self.cv_score_ = float("nan")
        warnings.warn(
            f"{method}() could choose only among the fitted members and the best candidate (the "
            "others' models are not kept without a run_dir), which were picked on all "
            "out-of-fold rows, so no honest cv_score_ exists: it is set to NaN, and the scores "
            "of fusion_comparison_ are optimistic too. Estimate the new ensemble on held-out "
            "data, or fit with a run_dir.", UserWarning, stacklevel=3)

    def keep_front_point(self, point: int | None = None, *, latency_budget: float | None = None,
                         final_models: str | None = None, X: Any = None, y: Any = None,
                         sample_weight: Any = None, groups: Any = None) -> _BaseEnsemble:
        """Make one point of ``pareto_front_`` the fitted ensemble.

        Give either ``point`` (a row label of ``pareto_front_``) or ``latency_budget`` (seconds
        per row): the best-scoring point whose estimated cost fits it, among the points of
        ``final_models`` ("folds", "refit") when given, else among all (among the "folds"
        points when ``X`` and ``y`` are not given, since a "refit" point needs them). The
        estimator's ``final_models_`` becomes the kept point's kind, so that :meth:`reselect`
        and :meth:`trim` treat its members as they are. The point's members
        are selected again on the same out-of-fold rows (greedy selection with its latency
        penalty) and fused by their weighted average, which is what its ``cv_score`` was
        estimated for; ``cv_score_`` becomes that held-out score. A ``"refit"`` point
        retrains its members on all rows, so it needs the ``X``, ``y`` (and
        ``sample_weight``, ``groups``) of ``fit``; with ``X`` the new ensemble's
        ``prediction_cost_`` is measured on its first 500 rows, otherwise that attribute is
        removed (it described the old ensemble). The population and the front are kept, so
        any other point can be kept later.
        """
        check_is_fitted(self, "pareto_front_")
        self._check_scoring_unchanged("keep_front_point")
        if final_models not in (None, "folds", "refit"):
            raise ValueError("The 'final_models' parameter must be None, 'folds' or 'refit'. "
                             f"Got {final_models!r} instead.")
        folds_only = final_models is None and latency_budget is not None and (X is None or y is None)
        try:
            # A refit point needs the training rows; without them choose among the others.
            label = self._front_label(point, latency_budget, "folds" if folds_only else final_models)
        except ValueError as exc:
            if not folds_only:
                raise
            raise ValueError(f"{exc} Without X and y only 'folds' points can be kept; pass the fit's "
                             "X and y to consider the cheaper 'refit' points.") from None
        row = self.pareto_front_.loc[label]
        refit = row["final_models"] == "refit"
        if refit and (X is None or y is None):
            raise ValueError("The 'X' and 'y' parameters must be the training data of fit to keep "
                             f"a 'refit' point of the front (point {row.name}). Got None instead.")
        data_X = None
        if X is not None and y is not None:
            data_X = self._check_fit_data(X, y, sample_weight, groups, WeightedAverage(),
                                          "keep_front_point").X
        population = self.population_
        costs = candidate_costs(population)
        data = self._stored_selection_data()
        # On the whole population, as the front was swept: the penalised greedy path picks the
        # same members, whose models _apply keeps; the nested estimate is the front's.
        scoring = self._stage_scoring()
        result = select_and_fuse(population, front_selector(costs, row["penalty"], scoring),
                                 WeightedAverage(), data, scoring=scoring,
                                 random_state=self._fit_seed(), deadline=time.time())
        chosen = sorted(m.number for m in result.ensemble.members)
        if chosen != sorted(row["members"]):  # selection is deterministic: a bug if it differs
            raise RuntimeError(f"Selecting front point {row.name} again chose members {chosen}, "
                               f"not {sorted(row['members'])}; the estimator is unchanged.")
        if refit:  # before _apply, so a failed refit leaves the estimator as it was
            self._refit(result.ensemble, data_X, data)
        self._apply(result, population, data)
        self.final_models_ = row["final_models"]
        self._remeasure_cost(X)
        return self

    def _front_label(self, point: int | None, latency_budget: float | None,
                     final_models: str | None) -> Any:
        front = self.pareto_front_
        if front.empty:
            raise ValueError("The accuracy-latency front is empty: this fit has no prediction "
                             "timings (a run folder written by an older version).")
        if (point is None) == (latency_budget is None):
            raise ValueError("Exactly one of the 'point' and 'latency_budget' parameters must be "
                             f"given. Got point={point!r}, latency_budget={latency_budget!r}.")
        if latency_budget is not None:
            return front.index[pick_point(front, latency_budget, final_models)]
        if point not in front.index:
            raise ValueError("The 'point' parameter must be a row label of pareto_front_ "
                             f"({list(front.index)}). Got {point!r} instead.")
        kind = front.loc[point, "final_models"]
        if final_models is not None and final_models != kind:
            # It was ignored: keep_front_point(0, final_models="refit") kept folds point 0.
            raise ValueError(f"The 'final_models' parameter must be None or {kind!r} for point "
                             f"{point}, a {kind!r} point of pareto_front_. Got {final_models!r} "
                             "instead.")
        return point

    def _member_timer(self, population: Population, X: Any,
                      n_classes: int | None) -> Callable[[Sequence[int]], np.ndarray]:
        """Times candidates' fold models on ``X`` on one thread, as ``prediction_cost_`` does."""
        def measure(numbers: Sequence[int]) -> np.ndarray:
            members = [Member(number=n, family="", params={}, weight=1.0,
                              models=population.store.load_models(n)) for n in numbers]
            with threadpool_limits(limits=1):
                return member_seconds_per_row(members, X, task=self._task, n_classes=n_classes)
        return measure

    def _stored_selection_data(self) -> SelectionData:
        """The selection rows kept by fit (encoded target, folds, weights, groups)."""
        return SelectionData(y=self.selection_target_, task=self._task, splits=self.cv_splits_,
                             n_classes=self.ensemble_.n_classes,
                             sample_weight=self.selection_weight_, groups=self.selection_groups_)

    def _remeasure_cost(self, X: Any) -> None:
        """Measure ``prediction_cost_`` of the new ensemble on ``X``, or drop the stale one."""
        if X is None:
            self.__dict__.pop("prediction_cost_", None)
            return
        with threadpool_limits(limits=1):
            X = validate_predict_data(X, self.feature_info_)
            self.prediction_cost_ = prediction_cost(self.ensemble_, X[:500], repeats=1)

    def to_sklearn(self) -> Any:
        """The fitted ensemble as a scikit-learn VotingClassifier/Regressor or Stacking* object."""
        check_is_fitted(self, "ensemble_")
        return to_sklearn(self)

    def _predict_raw(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "ensemble_")
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
