"""``make_report``: one self-contained HTML page (plus PNG files) describing a fitted run."""

from __future__ import annotations

import dataclasses
import numbers
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.utils.validation import check_is_fitted

from ensemble_hpo._validation import validate_row_arrays
from ensemble_hpo.report import _data, _figures
from ensemble_hpo.report._html import Section, leaderboard_table, render_page
from ensemble_hpo.report._mpl import family_colors, png_bytes, require_matplotlib

__all__ = ["FIGURE_KEYS", "make_report"]

_LEADERBOARD_ROWS = 30
#: Candidates that did not finish (failed, timeouts...) shown after the completed ones.
_OTHER_ROWS = 10


@dataclass
class _Context:
    estimator: Any
    score_label: str
    colors: dict[str, Any]
    X: Any
    y: Any
    learning_curves: bool
    max_learning_members: int
    sample_weight: np.ndarray | None = None
    groups: np.ndarray | None = None


@dataclass(frozen=True)
class _Spec:
    key: str
    title: str
    how_to_read: str
    fill: Callable[[_Context, Section], None]


def _leaderboard(ctx: _Context, section: Section) -> None:
    board = ctx.estimator.leaderboard_
    section.table = leaderboard_table(board, _LEADERBOARD_ROWS, _OTHER_ROWS)
    n_ok = int((board["status"] == "ok").sum())
    if n_ok > _LEADERBOARD_ROWS:
        section.notes.append(
            f"Showing the best {_LEADERBOARD_ROWS} of {n_ok} completed candidates."
        )
    n_other = len(board) - n_ok
    if n_other > _OTHER_ROWS:  # they were left out without a word (audit)
        section.notes.append(
            f"Showing {_OTHER_ROWS} of {n_other} candidates that did not finish ("
            + _status_counts(board[board["status"] != "ok"])
            + "); leaderboard.csv and leaderboard_ list them all.")
    if n_ok:
        section.png = png_bytes(_figures.plot_family_scores(board, ctx.colors, ctx.score_label))


def _history(ctx: _Context, section: Section) -> None:
    history = _data.history_frame(ctx.estimator)
    if getattr(ctx.estimator, "trials_", None) is None:
        section.notes.append("The Optuna trials are not available; the history is drawn from the "
                             "leaderboard, without search strategies.")
    searched = getattr(ctx.estimator, "search_scoring_", None)
    if searched is not None and searched != getattr(ctx.estimator, "scoring_", searched):
        # A resume rescored the candidates: the points are not what the strategy climbed.
        section.notes.append(f"The search optimised {_data.metric_label(searched)} (the "
                             f"study's metric); the points are the candidates' scores in "
                             f"{ctx.score_label}.")
    section.png = png_bytes(_figures.plot_history(history, ctx.colors, ctx.score_label))


def _importances(ctx: _Context, section: Section) -> None:
    trials = getattr(ctx.estimator, "trials_", None)
    if trials is None:
        section.notes.append("Skipped: importances need the Optuna trials (the estimator has no "
                             "'trials_' attribute).")
        return
    scores = {c.number: c.score for c in ctx.estimator.population_.completed()}
    groups, notes = _data.param_importances(trials, scores)
    section.notes.extend(notes)
    if groups:
        section.png = png_bytes(_figures.plot_importances(groups))


def _weights(ctx: _Context, section: Section) -> None:
    members, note = _combining_weights(ctx.estimator.ensemble_)
    if note:
        section.notes.append(note)
    section.png = png_bytes(_figures.plot_weights(members, ctx.colors))


def _combining_weights(ensemble: Any) -> tuple[list[Any], str | None]:
    """The members with the weights the fuser combines them by, and a note when those are not
    the selection weights (shown as "shares of the combined prediction" whatever the fusion:
    soft voting combines by 0.25 each where the bars said 0.468 / 0.34 / 0.17; audit)."""
    members = list(ensemble.members)
    fuser = ensemble.fuser
    fused = getattr(fuser, "weights_", None)
    name = type(fuser).__name__
    if fused is None:
        return members, (f"{name} combines the members by its own model; the weights shown are "
                         "the selection weights, not shares of its prediction.")
    fused = np.asarray(fused, dtype=float)
    selected = np.array([m.weight for m in members], dtype=float)
    if len(fused) != len(members) or np.allclose(fused, selected / selected.sum()):
        return members, None
    return ([dataclasses.replace(m, weight=float(w)) for m, w in zip(members, fused, strict=True)],
            f"Weights as {name} combines the members; the selection weights were "
            + ", ".join(f"#{m.number} {m.weight:.3f}" for m in members) + ".")


def _trajectory(ctx: _Context, section: Section) -> None:
    selector = ctx.estimator.selector_
    if hasattr(selector, "best_selector_"):
        scores = ", ".join(f"{type(s).__name__} {v:.5g}"
                           for s, v in zip(selector.selectors_, selector.cv_scores_, strict=True))
        section.notes.append(f"{type(selector).__name__} compared on held-out rows: {scores}; "
                             f"kept {type(selector.best_selector_).__name__}.")
        selector = selector.best_selector_
    kept = getattr(selector, "best_iteration_", None)
    if hasattr(selector, "greedy_"):  # GuardedGreedySelector: its greedy path, cut or not
        section.notes.append(
            f"In-sample gain over the best single candidate {selector.gain_:.2%}; "
            + (f"below min_gain, so the path length was chosen on held-out rows: "
               f"{selector.n_steps_} step(s) kept." if selector.checked_ else
               "at least min_gain, so greedy selection's ensemble was kept."))
        selector, kept = selector.greedy_, selector.n_steps_ - 1
    if getattr(selector, "trajectory_", None) is None:
        section.notes.append(f"Skipped: the selector {type(selector).__name__} records no "
                             "trajectory.")
        return
    estimator = ctx.estimator
    own = _selector_metric(selector, estimator)
    if own is not None:
        # Its path was drawn under the fit's metric beside the best single candidate's score
        # in that metric: accuracies beside log losses looked like a gain of 1.05 (audit).
        section.notes.append(f"The selector scores by {own}, not by {_data.scoring_name(estimator)}: its "
                             f"path is drawn in {own}, without the best single candidate's line.")
    best_single = float(estimator.best_score_) if own is None else float("nan")
    fig = _figures.plot_trajectory(selector.trajectory_, kept, best_single,
                                   ctx.score_label if own is None else own)
    section.png = png_bytes(fig)
    section.notes.append(_held_out_gain(estimator))


def _held_out_gain(estimator: Any) -> str:
    """The ensemble against its best single candidate, both chosen inside the outer folds.

    ``best_score_`` is the best of N out-of-fold scores chosen on the rows it is scored on:
    beside the nested ``cv_score_`` the ensemble lost by 0.0033 on breast_cancer where,
    nested alike, it won by 0.0008 (audit). Models saved before the nested best single was
    recorded get the old comparison, named for what it is.
    """
    metric = _data.scoring_name(estimator)
    ensemble = float(estimator.cv_score_)
    single = float(getattr(estimator, "best_single_cv_score_", float("nan")))
    if not np.isfinite(ensemble):
        return ("This ensemble has no held-out estimate (reselect or trim chose it among kept "
                "models only); choosing the best single candidate "
                f"scores {_fmt(single)} on held-out rows, in {metric}.")
    if np.isfinite(single):
        return (f"On held-out rows (selection repeated inside the outer folds) the ensemble "
                f"scores {ensemble:.5g} and choosing the best single candidate {single:.5g} "
                f"({ensemble - single:+.5g} in {metric}); the dashed line, the chosen "
                f"candidate's own out-of-fold score ({estimator.best_score_:.5g}), is optimistic.")
    return (f"The ensemble scores {ensemble:.5g} on held-out rows; the best single candidate's "
            f"out-of-fold score, chosen on the same rows and so optimistic, is "
            f"{estimator.best_score_:.5g} (in {metric}).")


def _selector_metric(selector: Any, estimator: Any) -> str | None:
    """The selector's own metric when it is not the fit's (``scoring_``), else None."""
    from ensemble_hpo._run_identity import scoring_key
    from ensemble_hpo.metrics import get_prediction_scorer

    scoring = getattr(selector, "scoring", None)
    if scoring is None:
        return None
    try:
        key = _data.metric_label(scoring_key(get_prediction_scorer(scoring, estimator._task)))
    except (ValueError, TypeError):
        return str(scoring)
    return None if key == _data.metric_label(estimator.scoring_) else key


def _correlation(ctx: _Context, section: Section) -> None:
    corr, labels, note = _data.member_correlation(ctx.estimator)
    if note:
        section.notes.append(note)
    section.png = png_bytes(_figures.plot_correlation(corr, labels))


def _learning(ctx: _Context, section: Section) -> None:
    if not ctx.learning_curves:
        section.notes.append("Skipped: learning curves were turned off (learning_curves=False).")
        return
    if ctx.X is None:
        section.notes.append("Skipped: pass the training data (X and y) to draw learning curves.")
        return
    n_groups = 0 if ctx.groups is None else len(np.unique(ctx.groups))
    if 0 < n_groups < _data.LEARNING_CV:
        section.notes.append(f"Skipped: the learning curves hold whole groups out in "
                             f"{_data.LEARNING_CV} folds, and these rows have {n_groups} groups.")
        return
    curves = _data.learning_curves(ctx.estimator, ctx.X, ctx.y, ctx.max_learning_members,
                                   sample_weight=ctx.sample_weight, groups=ctx.groups)
    for curve in curves:  # a size left out of a curve was not mentioned (audit)
        missing = [int(n) for n, row in zip(curve.train_sizes, curve.valid_scores, strict=True)
                   if np.isnan(row).all()]
        if missing:
            section.notes.append(f"{curve.label}: no score at {missing} training rows (the "
                                 "model cannot be fitted on so few rows).")
    with warnings.catch_warnings():  # the mean of a size with no score: noted above
        warnings.simplefilter("ignore", RuntimeWarning)
        section.png = png_bytes(_figures.plot_learning_curves(curves, ctx.score_label))


def _fusion(ctx: _Context, section: Section) -> None:
    comparison = getattr(ctx.estimator, "fusion_comparison_", None)
    if comparison is None or len(comparison) == 0:
        section.notes.append("Skipped: no fusion comparison was recorded.")
        return
    chosen = type(ctx.estimator.ensemble_.fuser).__name__
    estimate = "cross-validated"
    if not np.isfinite(float(ctx.estimator.cv_score_)):
        estimate = "optimistic"
        section.notes.append(
            "These scores are optimistic: reselect or trim without a run_dir could choose only "
            "among the fitted members and the best candidate, which were picked on all "
            "out-of-fold rows (the ensemble's cv_score_ is n/a for the same reason).")
    if len(comparison) == 1:
        # After trim() or keep_front_point(), or a fit out of time: one bar, unexplained (audit).
        section.notes.append(f"Only {chosen}, the fusion in use, was estimated: the others were "
                             "skipped (trim, keep_front_point, or no time left in the fit).")
    section.png = png_bytes(_figures.plot_fusion(comparison, chosen, ctx.score_label, estimate))


def _pareto(ctx: _Context, section: Section) -> None:
    front = getattr(ctx.estimator, "pareto_front_", None)
    if front is None or front.empty:
        section.notes.append("Skipped: no accuracy-latency front (this fit recorded no "
                             "prediction timings).")
        return
    held_out = _figures.front_score_column(front) == "cv_score"
    if not held_out:
        section.notes.append("The time budget ran out before every point was cross-validated: "
                             "the scores shown are in-sample and optimistic.")
    fitted = _fitted_point(ctx.estimator, held_out)
    section.png = png_bytes(_figures.plot_pareto_front(front, fitted, ctx.score_label))
    if fitted is None:
        section.notes.append("The fitted ensemble is not marked: it has no score of the kind "
                             "the axis shows.")


def _fitted_point(estimator: Any, held_out: bool) -> tuple[float, float] | None:
    """The fitted ensemble's (seconds per row, score), its score of the kind the front shows:
    the star stood at the held-out cv_score_ on an in-sample axis, 0.95 RMSE below its own
    front point (audit)."""
    cost = getattr(estimator, "prediction_cost_", None)
    score = float(estimator.cv_score_ if held_out
                  else getattr(estimator, "selection_score_", float("nan")))
    if cost is None or not np.isfinite(score):
        return None
    return float(cost["seconds_per_row"].iloc[-1]), score


_SPECS = (
    _Spec("leaderboard", "Leaderboard",
          "Every candidate of the search, best score first (members of the ensemble in bold, "
          "failed candidates in red); the chart shows the best score reached by each model family.",
          _leaderboard),
    _Spec("optimization_history", "Optimisation history",
          "Each point is one trial's cross-validated score in the order the search ran them; the "
          "black step line is the best score found so far, so long flat stretches mean the search "
          "stopped finding improvements.", _history),
    _Spec("param_importances", "Hyperparameter importances",
          "fANOVA estimates how much of the score's variation each hyperparameter explains: first "
          "for the choice of model family, then within each family; longer bars matter more.",
          _importances),
    _Spec("ensemble_weights", "Ensemble weights",
          "Each bar is one ensemble member (trial number and family) and its share of the "
          "combined prediction as the fusion weighs it; the weights sum to 1.", _weights),
    _Spec("selection_trajectory", "Selection trajectory",
          "Greedy selection adds one model per step; the line is the ensemble's score after each "
          "step on the out-of-fold rows it was selected on (in-sample, so optimistic), the star "
          "marks the step that was kept and the dashed line the best single candidate's "
          "out-of-fold score. The gap between them overstates what ensembling gained; the "
          "held-out gain is in the note below.", _trajectory),
    _Spec("prediction_correlation", "Correlation of member errors",
          "Pearson correlation between the out-of-fold errors (prediction minus target) of each "
          "pair of models; values near 1 mean the models make the same mistakes, lower values "
          "mean more diversity for the ensemble to exploit.", _correlation),
    _Spec("learning_curves", "Learning curves",
          "Training and validation scores of the heaviest members' pipelines as the training set "
          "grows (3-fold cross-validation); a large gap suggests over-fitting, a validation curve "
          "still rising suggests more data would help.", _learning),
    _Spec("fusion_comparison", "Fusion comparison",
          "Score of each way of combining the members, selection and fusion repeated inside the "
          "folds (error bars: standard "
          "deviation over folds); the fuser in use is highlighted in red.", _fusion),
    _Spec("pareto_front", "Accuracy-latency front",
          "Each point is an ensemble chosen by greedy selection with a penalty on prediction "
          "time; a point is shown only when no cheaper one scores as well. Circles keep the fold "
          "models (as fitted), squares refit one model per member on all rows (cheaper; their "
          "score is the same out-of-fold estimate). Keep one with keep_front_point().",
          _pareto),
)

FIGURE_KEYS: tuple[str, ...] = tuple(spec.key for spec in _SPECS)


def make_report(
    estimator: Any,
    out_dir: str | Path,
    *,
    X: Any = None,
    y: Any = None,
    sample_weight: Any = None,
    groups: Any = None,
    title: str = "ensemble_hpo report",
    learning_curves: bool = True,
    max_learning_members: int = 3,
) -> Path:
    """Write a self-contained HTML report of a fitted ensemble run.

    The page (``out_dir/report.html``) embeds every figure as a base64 PNG and
    needs no network; each figure is also saved as ``out_dir/figures/{key}.png``
    with ``key`` in :data:`FIGURE_KEYS`. A figure that cannot be drawn (for
    example importances with fewer than two completed trials) is replaced by a
    short note.

    Parameters
    ----------
    estimator : EnsembleClassifier or EnsembleRegressor
        A fitted estimator.
    out_dir : str or Path
        Folder to write into (created if missing).
    X, y : array-like, default=None
        The training data as passed to ``fit``; needed only for learning curves.
    sample_weight, groups : array-like of shape (n_samples,), default=None
        As passed to ``fit``: the learning curves then train and score with the weights,
        and keep each group on one side of their folds (without them, a weighted fit's
        curves would be unweighted and a grouped fit's validation rows would share
        groups with the training rows, which flatters them).
    title : str, default="ensemble_hpo report"
    learning_curves : bool, default=True
        Draw learning curves (refits clones of member pipelines: 3 sizes x 3 folds each;
        the folds keep the class shares for classification).
    max_learning_members : int, default=3
        Learning curves for at most this many members, heaviest first.

    Returns
    -------
    Path
        Path of the written ``report.html``.

    Examples
    --------
    >>> import tempfile
    >>> from sklearn.datasets import load_diabetes
    >>> from ensemble_hpo import EnsembleRegressor
    >>> from ensemble_hpo.report import make_report
    >>> X, y = load_diabetes(return_X_y=True)
    >>> reg = EnsembleRegressor(models=["ridge"], n_trials=3, cv=3, random_state=0).fit(X, y)
    >>> path = make_report(reg, tempfile.mkdtemp(), learning_curves=False)
    >>> path.name
    'report.html'
    """
    check_is_fitted(estimator, ["leaderboard_", "ensemble_", "population_"])
    # The scores shown are in the fit's metric; a scoring changed since would mislabel them.
    estimator._check_scoring_unchanged("make_report")
    _check_arguments(X, y, learning_curves, max_learning_members)
    require_matplotlib()
    # A wrong y is the caller's error, not a figure that failed to draw: raise it now.
    y_fit = None if y is None else _data.fit_target(estimator, y)
    if X is not None and len(y_fit) != _n_rows(X):
        raise ValueError(f"The 'X' and 'y' parameters must have the same number of samples. "
                         f"Got {_n_rows(X)} and {len(y_fit)} instead.")
    weights, groups = _row_arrays(X, sample_weight, groups)
    families = list(estimator.leaderboard_["family"].astype(str))
    ctx = _Context(estimator, _data.scoring_name(estimator), family_colors(families), X, y_fit,
                   learning_curves, max_learning_members, weights, groups)
    sections = [_build(spec, ctx) for spec in _SPECS]
    return _write(Path(out_dir), title, _summary(estimator, ctx.score_label), sections)


def _row_arrays(X: Any, sample_weight: Any, groups: Any) -> tuple[np.ndarray | None, np.ndarray | None]:
    if X is None and (sample_weight is not None or groups is not None):
        raise ValueError("The 'sample_weight' and 'groups' parameters need the training data: "
                         "pass X and y too. Got X=None instead.")
    if X is None:
        return None, None
    # Fewer groups than the learning curves' folds skip that section only (the whole report
    # was refused for a fit with 2 groups; audit).
    return validate_row_arrays(sample_weight, groups, _n_rows(X), cv_n_splits=None)


def _n_rows(X: Any) -> int:
    return X.shape[0] if hasattr(X, "shape") else len(X)


def _check_arguments(X: Any, y: Any, learning_curves: Any, max_learning_members: Any) -> None:
    if (X is None) != (y is None):
        raise ValueError("The 'X' and 'y' parameters must be given together or not at all. "
                         f"Got X={'None' if X is None else 'data'}, "
                         f"y={'None' if y is None else 'data'} instead.")
    if not isinstance(learning_curves, bool):
        raise ValueError(f"The 'learning_curves' parameter must be a bool. Got {learning_curves!r} "
                         "instead.")
    if (isinstance(max_learning_members, bool)
            or not isinstance(max_learning_members, numbers.Integral) or max_learning_members < 1):
        raise ValueError("The 'max_learning_members' parameter must be a positive int. "
                         f"Got {max_learning_members!r} instead.")


def _build(spec: _Spec, ctx: _Context) -> Section:
    section = Section(spec.key, spec.title, spec.how_to_read)
    try:
        spec.fill(ctx, section)
    except Exception as exc:  # noqa: BLE001 - one broken figure must not cost the whole report
        warnings.warn(f"The report section {spec.title!r} could not be drawn: {exc!r}",
                      RuntimeWarning, stacklevel=3)
        section.png = None
        section.notes.append(f"This section could not be drawn: {type(exc).__name__}: {exc}")
    return section


def _write(out_dir: Path, title: str, summary: list[tuple[str, str]],
           sections: list[Section]) -> Path:
    figures = out_dir / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    for section in sections:
        target = figures / f"{section.key}.png"
        if section.png is not None:
            target.write_bytes(section.png)
        else:
            # A figure left from an earlier report of the same folder would now be stale.
            target.unlink(missing_ok=True)
    path = out_dir / "report.html"
    path.write_text(render_page(title, summary, sections), encoding="utf-8")
    return path


def _summary(estimator: Any, score_label: str) -> list[tuple[str, str]]:
    board = estimator.leaderboard_
    best = estimator.best_candidate_
    ensemble = estimator.ensemble_
    rows = [
        ("Task", f"{ensemble.task}" + (f" ({len(estimator.classes_)} classes)"
                                        if hasattr(estimator, "classes_") else "")),
        ("Scoring", f"{score_label} (greater is better)"),
        ("Candidates", f"{len(board)} ({_status_counts(board)})"),
        ("Best single candidate (its out-of-fold score; chosen on those rows, optimistic)",
         f"#{best.number} {best.family}: {estimator.best_score_:.5g}"),
        ("Choosing the best single candidate (out-of-fold: the choice repeated inside the folds)",
         _fmt(getattr(estimator, "best_single_cv_score_", float("nan")))),
        ("Ensemble (out-of-fold: selection and fusion refitted inside the folds)",
         _fmt(estimator.cv_score_)),
        ("Ensemble on the rows it was selected on (in-sample, optimistic)",
         _fmt(getattr(estimator, "selection_score_", float("nan")))),
        ("Members (weight)",
         ", ".join(f"#{m.number} {m.family} ({m.weight:.2f})" for m in _combining_weights(ensemble)[0])),
        ("Selection", type(estimator.selector_).__name__),
        ("Fusion", type(ensemble.fuser).__name__),
    ]
    fit_time = getattr(estimator, "fit_time_", None)
    if fit_time is not None:
        rows.append(("Fit time (of fit; reselect and trim not counted)", f"{fit_time:.1f} s"))
    return rows


def _status_counts(board: Any) -> str:
    """Candidates per status, finished ones first, then the most frequent: skipped ones (never
    started for lack of time) were counted as "failed or pruned" (audit)."""
    counts = board["status"].value_counts()
    order = ["ok"] * ("ok" in counts) + [s for s in counts.index if s != "ok"]
    return ", ".join(f"{int(counts[s])} {'completed' if s == 'ok' else s}" for s in order)


def _fmt(value: Any) -> str:
    value = float(value)
    return f"{value:.5g}" if np.isfinite(value) else "n/a"
