"""Everything a fit needs, validated and built before any training: the orchestration room.

:meth:`FitPlan.build` checks the parameters and the data, encodes the target, makes the
folds, resolves the stages' names and opens the run folder; nothing expensive runs there,
so bad input fails before the search. The plan then runs the search
(:meth:`FitPlan.search`), hands selection its rows (:meth:`FitPlan.selection_data`) and
refits members (:meth:`FitPlan.refit_members`). The estimators only compose these steps.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.preprocessing import LabelEncoder
from threadpoolctl import threadpool_limits

from ensemble_hpo._checks import CLASSIFICATION, REGRESSION
from ensemble_hpo._deadline import Deadline
from ensemble_hpo._folds import check_fold_weights, check_stage_folds, make_folds, n_splits_of
from ensemble_hpo._params import budget, check_params
from ensemble_hpo._resolve import check_stage_params, make_fuser, make_selector, make_trial_value
from ensemble_hpo._run_folder import RunFolder
from ensemble_hpo._run_identity import run_identity, scoring_key
from ensemble_hpo._select_fuse import SelectionData
from ensemble_hpo._validation import InputInfo, as_row_arrays, validate_fit_data
from ensemble_hpo.metrics import check_scorer_fits, get_prediction_scorer, stage_scoring
from ensemble_hpo.population import (
    ArtifactStore,
    CandidateEvaluator,
    CandidateFailed,
    PipelineBuilder,
    Population,
    fit_routing,
)
from ensemble_hpo.search import SearchRun, make_strategy
from ensemble_hpo.search._objective import candidate_seed
from ensemble_hpo.spaces import SearchSpace

__all__ = ["FitPlan", "encode_target", "estimate_refit_seconds", "refit_members", "reselection_data"]


def encode_target(y: np.ndarray, task: str) -> tuple[np.ndarray, np.ndarray | None]:
    """``(encoded y, classes)``: labels to ``0..n_classes-1``, or float values and None."""
    if task == REGRESSION:
        return np.asarray(y, dtype=np.float64), None
    encoder = LabelEncoder().fit(y)
    return encoder.transform(y), encoder.classes_


@dataclass
class FitPlan:
    """The validated inputs and stage objects of one ``fit`` (or ``join_search``)."""

    params: Mapping[str, Any]
    task: str
    X: Any
    info: InputInfo
    classes: np.ndarray | None
    groups: np.ndarray | None
    evaluator: CandidateEvaluator
    run: SearchRun
    store: ArtifactStore
    builder: PipelineBuilder
    selector: Any
    fuser: Any
    identity: dict[str, str]
    deadline: Deadline

    @classmethod
    def check(cls, params: Mapping[str, Any], task: str, X: Any, y: Any, *, sample_weight: Any = None,
              groups: Any = None) -> None:
        """Every check of :meth:`build`, without touching the run folder (its warnings are left
        to the fit). The CLI runs it before ``--force`` replaces a run: checks that ran only
        inside ``fit`` (a family of the other task, a metric of the other task, ``pruner``
        with ``trial_timeout``) failed after the old run was removed (audit)."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cls._build(params, task, X, y, sample_weight=sample_weight, groups=groups,
                       deadline=Deadline(None), claim_folder=False)

    @classmethod
    def build(cls, params: Mapping[str, Any], task: str, X: Any, y: Any, *, sample_weight: Any,
              groups: Any, deadline: Deadline) -> FitPlan:
        """Validate everything and build the search objects; nothing expensive runs here."""
        plan = cls._build(params, task, X, y, sample_weight=sample_weight, groups=groups,
                          deadline=deadline, claim_folder=True)
        assert plan is not None
        return plan

    @classmethod
    def _build(cls, params: Mapping[str, Any], task: str, X: Any, y: Any, *, sample_weight: Any,
               groups: Any, deadline: Deadline, claim_folder: bool) -> FitPlan | None:
        """:meth:`build`; with ``claim_folder=False`` only the checks run and None is returned."""
        check_params(params)
        X, y, info = validate_fit_data(X, y, task=task, cv_n_splits=n_splits_of(params["cv"]),
                                       sample_weight=sample_weight, groups=groups,
                                       rare_classes="warn")
        y_enc, classes = encode_target(y, task)
        weights, groups = as_row_arrays(sample_weight, groups)
        seed = params["random_state"]
        # The user's labels for scorers that read them (pos_label), the encoded ones otherwise.
        scoring = stage_scoring(params["scoring"], task, classes)
        scorer = get_prediction_scorer(scoring, task)
        check_scorer_fits(scorer, y_enc, None if classes is None else len(classes),
                          weighted=weights is not None)
        splits = make_folds(params["cv"], y_enc, task=task, groups=groups, random_state=seed, X=X,
                            repeated=True)
        check_fold_weights(splits, weights)
        space = SearchSpace.from_models(params["models"], task=task, y=y_enc, weighted=weights is not None)
        evaluator = CandidateEvaluator(
            X=X, y=y_enc, splits=splits, task=task, scorer=scorer,
            n_classes=None if classes is None else len(classes), sample_weight=weights,
            n_threads=1, groups=groups)
        folder = RunFolder(params["run_dir"])
        # Built here so a bad name fails before any training.
        labels = (task, classes)
        selector = make_selector(params["selection"], seed, scoring, labels=labels)
        fuser = make_fuser(params["fusion"], seed, scoring, labels=labels)
        check_stage_params(selector, fuser, task)
        for stage in (selector, fuser):
            check_stage_folds(stage, y_enc, task=task, groups=groups, splits=splits)
        run = SearchRun(
            strategy=make_strategy(params["search"]), space=space,
            storage=folder.storage(params["storage"]), pruner=params["pruner"],
            warm_start=params["warm_start_configs"], n_jobs=params["n_jobs"],
            backend=params["backend"], trial_timeout=params["trial_timeout"], seed=seed,
            verbose=params["verbose"], objective=make_trial_value(params["objective"], selector))
        run.check(budget(params)[0])  # before the store claims the run folder
        if not claim_folder:
            return None
        store = folder.artifact_store(trusted=params["trusted"])
        store.bind(folder.study_owner(params["storage"]))
        store.check_signer()
        return cls(
            params=params, task=task, X=X, info=info, classes=classes, groups=groups,
            evaluator=evaluator, run=run, store=store,
            builder=PipelineBuilder(info.column_kinds, task),
            selector=selector, fuser=fuser,
            # Checked against a resumed study, and kept so that reselect() can refuse other data.
            identity=run_identity(X, y_enc, splits, task=task, sample_weight=weights,
                                  groups=groups, space=space),
            deadline=deadline)

    @property
    def n_classes(self) -> int | None:
        return None if self.classes is None else len(self.classes)

    def search(self, *, seed_trials: bool = True) -> Population:
        """Run the search until its trials or the deadline's search share are spent.

        A resumed study searched in another metric is rescored in the user's ``scoring``
        from the stored out-of-fold predictions (nothing is retrained), with a warning.
        """
        population = self.run.run(
            self.evaluator, self.builder, n_trials=budget(self.params)[0],
            deadline=self.deadline.search_end, final_deadline=self.deadline.end, store=self.store,
            linear_features=lambda: self.builder.linear_features(self.X),
            seed_trials=seed_trials, identity=self.identity)
        return self._in_user_metric(population) if seed_trials else population

    def _in_user_metric(self, population: Population) -> Population:
        searched = self.run.search_scoring_
        wanted = scoring_key(self.evaluator.scorer)
        if searched == wanted:
            return population
        warnings.warn(
            f"The run folder's study was searched with scoring {searched!r}. Its "
            f"{len(population.completed())} finished candidates were rescored in {wanted!r} from "
            "their stored out-of-fold predictions (nothing was retrained); new candidates are "
            f"still searched by {searched!r} and scored in {wanted!r}. Use a new "
            f"'run_dir' to search by {wanted!r}.", UserWarning, stacklevel=4)
        evaluator = self.evaluator
        return population.rescored(evaluator.scorer, evaluator.y, evaluator.splits,
                                   evaluator.sample_weight)

    def selection_data(self) -> SelectionData:
        """The rows, folds and extras selection and fusion learn from."""
        evaluator = self.evaluator
        splits = [(np.asarray(tr, np.int32), np.asarray(va, np.int32))
                  for tr, va in evaluator.splits]
        return SelectionData(y=evaluator.y, task=self.task, splits=splits,
                             n_classes=self.n_classes, sample_weight=evaluator.sample_weight,
                             groups=self.groups, X=self.X,
                             transformer=self.builder.fuser_transformer(self.fuser, self.X))

    def refit_members(self, ensemble: Any, population: Population) -> bool:
        """Replace each member's fold models by one model trained on all rows.

        Under a ``time_budget`` the refit runs only when its estimate fits in the time left
        (:meth:`refit_seconds`); otherwise the members keep their fold models, with a
        warning, and this returns False.
        """
        needed, left = self.refit_seconds(ensemble, population), self.deadline.remaining()
        if needed > left:
            warnings.warn(
                f"final_models='refit' was skipped: refitting the {len(ensemble.members)} "
                f"members on all rows would take about {needed:.1f} s and {left:.1f} s of "
                "the time_budget are left. The members predict with their fold models "
                "(final_models_='folds'); raise time_budget to refit.", UserWarning, stacklevel=3)
            return False
        refit_members(ensemble, self.X, self.evaluator.y, sample_weight=self.evaluator.sample_weight,
                      groups=self.groups, space=self.run.space, builder=self.builder,
                      random_state=self.params["random_state"])
        return True

    def refit_seconds(self, ensemble: Any, population: Population) -> float:
        """Estimated seconds to refit the members (see :func:`estimate_refit_seconds`)."""
        return estimate_refit_seconds(ensemble, population, self.evaluator.splits)


def estimate_refit_seconds(ensemble: Any, population: Population,
                           splits: list[tuple[np.ndarray, np.ndarray]]) -> float:
    """Seconds to refit the members: each one's mean fold fit, scaled to all rows.

    A candidate's ``fit_time`` covers its fold models (each trained on a fold's training
    rows and scored on its validation rows), so this slightly overestimates.
    """
    fit_time = {c.number: c.fit_time for c in population.completed()}
    n_rows = 1 + max(int(valid.max()) for _, valid in splits)  # the folds cover every row
    train_share = np.mean([len(train) for train, _ in splits]) / n_rows
    return float(sum(fit_time.get(m.number, 0.0) / max(len(m.models), 1) / train_share
                     for m in ensemble.members))


def refit_members(ensemble: Any, X: Any, y: np.ndarray, *, sample_weight: np.ndarray | None,
                  groups: np.ndarray | None, space: SearchSpace, builder: PipelineBuilder,
                  random_state: int | None) -> None:
    """Replace each member's fold models by one model trained on all of ``X``, ``y`` (encoded).

    Each member is rebuilt from its family and parameters with its candidate's seed, and
    fitted with the weights and groups its fold models had (:func:`fit_routing`).
    """
    # One BLAS/OpenMP thread, as every candidate was trained: unlimited pools took a
    # HistGradientBoosting refit from 1.3 s to 5.5 s and a logistic one from 0.05 s to 3.5 s
    # on the loaded 2-core machine (second audit, digits).
    with threadpool_limits(limits=1):
        for member in ensemble.members:
            family = space.family(member.family)
            model = builder(family, dict(member.params), candidate_seed(random_state, member.number))
            try:
                kwargs = fit_routing(model, sample_weight, groups)
            except CandidateFailed as exc:  # an internal signal of the search, not a user error
                raise ValueError(f"Member {member.number} ({member.family}) cannot be refit: "
                                 f"{exc}.") from None
            member.models = [model.fit(X, y, **kwargs)]


def reselection_data(X: Any, y: Any, *, task: str, classes: np.ndarray | None,
                     splits: list[tuple[np.ndarray, np.ndarray]], sample_weight: Any,
                     groups: Any, fuser: Any) -> tuple[SelectionData, np.ndarray | None]:
    """The selection rows of ``reselect``: validated like ``fit``'s, on the fitted folds.

    Returns the data and the float64 weights (for the identity check).
    """
    X, y, info = validate_fit_data(X, y, task=task, cv_n_splits=None,
                                   sample_weight=sample_weight, groups=groups)
    y_enc = np.asarray(y, np.float64) if classes is None else np.searchsorted(classes, y)
    weights, groups = as_row_arrays(sample_weight, groups)
    builder = PipelineBuilder(info.column_kinds, task)
    data = SelectionData(y=y_enc, task=task, splits=splits,
                         n_classes=None if task != CLASSIFICATION else len(classes),
                         sample_weight=weights, groups=groups,
                         X=X, transformer=builder.fuser_transformer(fuser, X))
    return data, weights
