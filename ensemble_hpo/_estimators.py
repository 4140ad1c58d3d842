"""scikit-learn estimators composing the three stages: search → selection → fusion."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import ClassifierMixin, RegressorMixin

from ensemble_hpo._base_ensemble import _BaseEnsemble

__all__ = ["EnsembleClassifier", "EnsembleRegressor"]


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
        :data:`ensemble_hpo.spaces.DEFAULT_FAMILIES` (for regression also
        :data:`ensemble_hpo.spaces.REGRESSION_DEFAULT_FAMILIES`, the MLP); for a
        regression target that is non-negative and right-skewed (prices, incomes, counts;
        :func:`ensemble_hpo.spaces.log_target_suits`) it adds their log-target twins
        (``"xgboost_log"``...: fitted on ``log1p(y)``, predicting on the original scale),
        and selection decides which to keep.
    search : str, SearchStrategy or optuna.samplers.BaseSampler, default="tpe"
        ``"random"``, ``"sobol"``, ``"halton"``, ``"tpe"``, ``"gp"``, ``"grid"``,
        ``"genetic"``, ``"cmaes"``, ``"pso"``, ``"gradient"``, or an object.
    n_trials : int, default=None
        Number of candidates. With neither ``n_trials`` nor ``time_budget``, 30. It counts
        the whole study: fitting again into a ``run_dir`` that holds 20 finished candidates
        with ``n_trials=30`` trains 10 more (none with ``n_trials <= 20``); candidates
        interrupted by a crash or never started for lack of time do not count.
        ``time_budget``, by contrast, is this fit's own.
    time_budget : float, default=None
        Wall-clock seconds for the whole ``fit``; with only this set, the search
        runs until the budget is spent. A candidate stops between folds when its next
        fold would end past the deadline (the fit's own end while no candidate has
        finished), at the pace of its family's earlier folds; a family out of time
        leaves the others searching. A fold in flight is not interrupted, so the first
        fold of a family may run past a budget that is short for the data (at 60 s on
        the 60 portfolio tables the fit took at most 66.6 s, median 60.8 s).
        ``trial_timeout`` makes the limit hard.
    trial_timeout : float, default=None
        Per-candidate limit in seconds. Candidates then train in a killable worker
        process; one that hangs is stopped and recorded with status ``"timeout"``.
        Scripts using it need the usual ``if __name__ == "__main__":`` guard
        (Python's multiprocessing start-up re-imports the main module).
    cv : int or CV splitter, default=5
        Folds shared by all candidates (stratified and shuffled for an int). A repeated
        splitter (``RepeatedStratifiedKFold``) bags each candidate over its repeats: one
        model per fold of every repeat, out-of-fold predictions averaged over the repeats
        (closer to the average of fold models members predict with), at the repeats'
        cost in time; ``cv_score_`` and the fusion comparison use the first repeat's folds.
    scoring : str or callable, default=None
        scikit-learn scorer name, ``make_scorer`` object, or callable
        ``(y_true, y_pred) -> float`` where greater is better (scikit-learn's loss
        functions, such as ``mean_absolute_error``, are refused: use their ``neg_`` scorer
        name); None means ``"neg_log_loss"``.
    selection : str or selector, default="greedy"
        Ensemble selection (``"greedy"``: Caruana's forward selection with replacement).
    fusion : str or fuser, default="average"
        ``"average"``, ``"soft_voting"``, ``"hard_voting"``, ``"optimized"`` or ``"stacking"``.
    objective : {"candidate", "ensemble"} or TrialValue, default="candidate"
        What the search optimises: each candidate's own cross-validated score, or
        ``"ensemble"``, the gain of the greedy ensemble's out-of-fold score when the
        candidate joins the population (computed from the stored predictions with
        ``selection``). The leaderboard's ``score`` is always the candidate's own.
    pruner : optuna.pruners.BasePruner, default=None
        Stops hopeless candidates after their first folds.
    warm_start_configs : "portfolio", "defaults", "mined", None or an Optuna study, default="portfolio"
        Configurations tried before the strategy's own proposals: ``"defaults"``, each
        family's hand-set starting configurations, at or near the library defaults (XGBoost
        has two; what ``"portfolio"`` means today);
        ``"mined"``, the portfolio mined on 60 tables (``ensemble_hpo/spaces/portfolio.json``,
        opt-in until the evidence supports it); or the best trials of an earlier study.
        ``search="grid"`` runs its own points only: the named lists are not used there.
    storage : str or optuna storage, default=None
        Where the study lives (in memory when None, or a journal file in ``run_dir``).
    final_models : {"folds", "refit"}, default="folds"
        Members predict with the average of their cross-validation fold models
        (no extra training), or with one model refit on all rows. With a
        ``time_budget`` the search leaves 10 % of it for the refit, and a refit whose
        estimate (each member's mean fold fit, scaled to all rows) exceeds the time left
        is skipped with a warning: ``final_models_`` then says ``"folds"``.
    run_dir : str, default=None
        Folder for a durable run: the study and every candidate's out-of-fold
        predictions and fold models. Fitting again with the same folder resumes:
        finished candidates are reused, never retrained. With ``random_state=None`` the
        folder's first fit draws a seed and keeps it there (``random_state.json``), so later
        fits make the same folds (``search_seed_`` says which).
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
        0: silent. 1: progress bars (the search's trials, best score and time left, then
        the ensemble stages; with ``n_jobs > 1`` the search bar is read from the study's
        storage once a second). 2: also Optuna's log line per trial and the tracebacks of
        failed candidates.

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
        Score of the fitted ensemble (its fusion of the members' out-of-fold
        predictions) on the rows it was selected and fused on, in ``scoring`` whatever
        the selector scores by: in-sample, optimistic (with greedy selection in
        ``scoring`` and averaging fusion never below ``best_score_``).
    best_score_ : float
        Best single candidate's out-of-fold score: the best of all candidates' scores,
        chosen on the rows it is scored on, so slightly optimistic.
    best_single_cv_score_ : float
        Held-out score of choosing the best single candidate, the choice repeated inside
        the outer folds as for ``cv_score_``: compare the two to see whether the ensemble
        beats its best single candidate on rows neither choice saw. Computed by ``fit``
        (NaN when its ``time_budget`` ran out first) on out-of-fold predictions only, so
        ``reselect``, ``trim`` and ``keep_front_point`` keep it.
    fusion_comparison_ : pandas.DataFrame
        Every fusion method scored the same nested way as ``cv_score_`` (the
        fitted ensemble's fuser first by name), best first. Fusers other than
        the chosen one are skipped once ``time_budget`` is spent; one that fails
        (stacking predicting a negative count under Poisson deviance) shows NaN,
        with a warning.
    pareto_front_ : pandas.DataFrame
        The accuracy-latency front: the non-dominated ensembles of each
        ``final_models`` kind (the ``"folds"`` rows, then the ``"refit"`` ones, each
        cheapest first), with ``cv_score`` (nested, held out, in ``scoring``; NaN for points
        left when ``time_budget`` ran out), ``selection_score`` (in-sample),
        ``seconds_per_row`` (prediction cost on one thread: measured for ``"folds"``
        rows; for ``"refit"`` rows estimated as that divided by the number of folds,
        1.2-1.3x too low for kNN in the third audit), ``n_members``, ``members``
        (candidate numbers), ``weights``, ``final_models`` (``"folds"`` or the
        cheaper ``"refit"``) and ``penalty`` (of the latency-penalised greedy
        selection that found it). Keep a point with :meth:`keep_front_point`.
    prediction_cost_ : pandas.DataFrame
        Measured prediction seconds per row of every member and of the whole
        ensemble, on one thread, on the first 500 training rows (see
        :func:`ensemble_hpo.ensemble.prediction_cost`).
    search_models_ : str, list or SearchSpace
        A copy of ``models`` as ``fit`` used it; refits after ``fit`` (``reselect``,
        ``keep_front_point``) rebuild members from it, whatever ``models`` is now.
    search_seed_ : int or None
        ``random_state`` of ``fit``, from which every candidate's seed derives.
    fit_timings_ : dict of str to float
        Seconds ``fit`` spent in each stage (``"search"``, ``"selection and fusion"``,
        ``"refit"`` with ``final_models="refit"``, ``"prediction cost"``,
        ``"accuracy-latency front"``); the search stops starting candidates at 95 %
        of ``time_budget``.
    fit_time_ : float
        Wall-clock seconds of the whole ``fit``.
    search_scoring_ : str
        The metric the study's trial values are in (a resumed run folder keeps
        the one it was first searched with; candidates are rescored in ``scoring``).
    final_models_ : {"folds", "refit"}
        What the members hold: fold models, or one model refit on all rows
        (``final_models`` at fit unless a refit did not fit in the ``time_budget``;
        :meth:`keep_front_point` sets the kept point's kind).
    scoring_ : str
        The metric of ``leaderboard_``, ``best_score_``, ``cv_score_`` and
        ``pareto_front_``: ``scoring`` at fit time. :meth:`reselect`, :meth:`trim` and
        :meth:`keep_front_point` refuse a ``scoring`` changed since.

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

    def predict(self, X: Any) -> np.ndarray:
        """Fused predictions."""
        return self._predict_raw(X)
