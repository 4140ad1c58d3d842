"""One function per figure; each returns a standalone matplotlib Figure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ensemble_hpo.report._data import LearningCurve, member_label
from ensemble_hpo.report._mpl import new_figure

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "plot_correlation",
    "plot_family_scores",
    "plot_fusion",
    "plot_history",
    "plot_importances",
    "plot_learning_curves",
    "plot_pareto_front",
    "plot_trajectory",
    "plot_weights",
]

_WIDTH = 9.0
_STRATEGY_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
_HIGHLIGHT = "#d62728"
_MUTED = "#8c8c8c"


def _bar_height(n_rows: int) -> float:
    return min(12.0, 1.2 + 0.45 * max(n_rows, 1))


def _label_bars(ax: Axes, values: Sequence[float], fmt: str = "{:.4g}",
                at: Sequence[float] | None = None) -> None:
    """Write each value to the right of its bar end (or of ``at``, e.g. an error bar's end)."""
    for i, (value, x) in enumerate(zip(values, values if at is None else at, strict=True)):
        if np.isfinite(value):
            ax.annotate(fmt.format(value), (x, i), xytext=(5, 0), textcoords="offset points",
                        va="center", ha="left", fontsize=8)


def _score_bars(ax: Axes, values: np.ndarray, *, errors: np.ndarray | None = None,
                colors: Sequence[Any], also: Sequence[float] = ()) -> None:
    """Horizontal score bars zoomed on the scores' range.

    Scores are often negated losses with a large common magnitude (RMSE around
    -55), where bars from 0 would hide every difference; the bars therefore start
    just left of the worst score shown, and the axis label says so.
    """
    errors = np.zeros_like(values) if errors is None else errors
    shown = np.concatenate([values - errors, values + errors, np.asarray(also, dtype=float)])
    shown = shown[np.isfinite(shown)]
    low, high = (shown.min(), shown.max()) if len(shown) else (0.0, 1.0)
    span = (high - low) or (abs(high) * 0.1) or 1.0
    base = low - 0.08 * span
    widths = np.where(np.isfinite(values), values - base, 0.0)
    ax.barh(np.arange(len(values)), widths, left=base, color=colors, xerr=errors, capsize=4,
            error_kw={"elinewidth": 1}, alpha=0.85)
    _label_bars(ax, list(values), at=list(values + errors))
    ax.set_xlim(base, high + 0.22 * span)
    ax.ticklabel_format(axis="x", useOffset=False)


def plot_family_scores(board: pd.DataFrame, colors: Mapping[str, Any], score_label: str) -> Figure:
    """Best score per family as a bar, every completed candidate as a dot."""
    ok = board[board["status"] == "ok"].dropna(subset=["score"])
    best = ok.groupby("family")["score"].max().sort_values()
    fig, axes = new_figure(_WIDTH, _bar_height(len(best)))
    ax = axes[0, 0]
    _score_bars(ax, best.to_numpy(dtype=float),
                colors=[colors.get(str(f), _MUTED) for f in best.index],
                also=ok["score"].to_numpy(dtype=float))
    for i, family in enumerate(best.index):
        scores = ok.loc[ok["family"] == family, "score"].to_numpy(dtype=float)
        jitter = np.linspace(-0.2, 0.2, len(scores)) if len(scores) > 1 else np.zeros(1)
        ax.scatter(scores, i + jitter, s=12, color="black", zorder=3, alpha=0.6)
    ax.set_yticks(np.arange(len(best)), [str(f) for f in best.index])
    ax.set_xlabel(f"{score_label} (greater is better; bars start at the worst score shown)")
    ax.set_title("Best score per family (bars) and every completed candidate (dots)")
    return fig


def plot_history(history: pd.DataFrame, colors: Mapping[str, Any], score_label: str) -> Figure:
    """Score against trial number, best-so-far line; colour = family, marker = strategy."""
    fig, axes = new_figure(_WIDTH, 4.6)
    ax = axes[0, 0]
    ok = history.dropna(subset=["score"])
    strategies = [s for s in pd.unique(history["strategy"].dropna())]
    markers = {s: _STRATEGY_MARKERS[i % len(_STRATEGY_MARKERS)] for i, s in enumerate(strategies)}
    low, high = _robust_limits(ok["score"].to_numpy(dtype=float))
    for (family, strategy), group in ok.groupby(["family", ok["strategy"].fillna("")], sort=True):
        label = f"{family} ({strategy})" if strategy else str(family)
        ax.scatter(group["number"], group["score"].clip(lower=low), s=36, label=label,
                   color=colors.get(str(family), _MUTED), marker=markers.get(strategy, "o"),
                   edgecolor="black", linewidth=0.4, zorder=3)
    best = ok.set_index("number")["score"].cummax()
    ax.step(best.index, best.to_numpy(), where="post", color="black", linewidth=1.5,
            label="best so far", zorder=2)
    failed = history[history["score"].isna()]
    if len(failed):
        ax.scatter(failed["number"], np.full(len(failed), low), marker="x", color=_HIGHLIGHT,
                   s=30, label="not finished (failed, pruned, timed out, skipped)", zorder=3)
    ax.set_ylim(low - 0.05 * (high - low or 1), high + 0.05 * (high - low or 1))
    n_clipped = int((ok["score"] < low).sum())
    if n_clipped:
        ax.annotate(f"{n_clipped} trial(s) scoring below {low:.4g} drawn at the bottom edge",
                    (0.01, 0.01), xycoords="axes fraction", fontsize=8, color=_MUTED)
    ax.set_xlabel("trial number")
    ax.set_ylabel(f"{score_label}")
    ax.set_title("Optimisation history")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return fig


def _robust_limits(scores: np.ndarray) -> tuple[float, float]:
    """Lower limit that keeps a few disastrous trials from flattening the rest."""
    if len(scores) == 0:
        return 0.0, 1.0
    high = float(np.max(scores))
    q1, q3 = np.percentile(scores, [25, 75])
    floor = q1 - 3 * max(q3 - q1, 1e-12 + 0.05 * abs(high))
    return float(max(np.min(scores), floor)), high


def plot_importances(groups: Mapping[str, Mapping[str, float]]) -> Figure:
    """One horizontal bar panel per group (family choice, then each family's parameters)."""
    n = len(groups)
    ncols = 1 if n == 1 else 2
    nrows = int(np.ceil(n / ncols))
    tallest = max(len(v) for v in groups.values())
    fig, axes = new_figure(_WIDTH, nrows * (0.9 + 0.35 * tallest), ncols=ncols, nrows=nrows)
    flat = axes.ravel()
    for ax, (group, values) in zip(flat, groups.items(), strict=False):
        names = list(values)[::-1]
        prefix = f"{group}__"
        shown = [name[len(prefix):] if name.startswith(prefix) else name for name in names]
        importances = [values[name] for name in names]
        ax.barh(np.arange(len(names)), importances, color="#4c72b0")
        ax.set_yticks(np.arange(len(names)), shown, fontsize=8)
        ax.set_xlim(0, 1.15)
        _label_bars(ax, importances, "{:.2f}")
        ax.set_title(group, fontsize=10)
        ax.set_xlabel("importance (fANOVA, sums to 1)", fontsize=8)
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig


def plot_weights(members: Sequence[Any], colors: Mapping[str, Any]) -> Figure:
    labels = [member_label(m.number, m.family) for m in members][::-1]
    weights = [float(m.weight) for m in members][::-1]
    fig, axes = new_figure(_WIDTH, _bar_height(len(labels)))
    ax = axes[0, 0]
    ax.barh(np.arange(len(labels)), weights,
            color=[colors.get(str(m.family), _MUTED) for m in members][::-1])
    ax.set_yticks(np.arange(len(labels)), labels)
    ax.set_xlim(0, max(weights) * 1.15)
    _label_bars(ax, weights, "{:.3f}")
    ax.set_xlabel("ensemble weight")
    ax.set_title("Ensemble members and their weights")
    return fig


def plot_trajectory(trajectory: np.ndarray, best_iteration: Any, best_single: float,
                    score_label: str) -> Figure:
    """Ensemble score per greedy step (one line per bag when selection was bagged)."""
    runs = np.atleast_2d(np.asarray(trajectory, dtype=float))
    bests = np.atleast_1d(np.asarray(best_iteration, dtype=int))
    fig, axes = new_figure(_WIDTH, 4.2)
    ax = axes[0, 0]
    steps = np.arange(1, runs.shape[1] + 1)
    for i, (run, best) in enumerate(zip(runs, bests, strict=True)):
        label = "ensemble (in-sample)" if len(runs) == 1 else f"bag {i + 1} (in-sample)"
        line, = ax.plot(steps, run, linewidth=1.5, label=label)
        ax.scatter([best + 1], [run[best]], s=70, marker="*", color=line.get_color(),
                   edgecolor="black", zorder=4,
                   label="kept (best iteration)" if i == 0 else None)
    if np.isfinite(best_single):
        ax.axhline(best_single, color=_MUTED, linestyle="--", label="best single candidate")
    _keep_visible_span(ax, np.append(runs.ravel(), best_single))
    ax.set_xlabel("greedy step (ensemble size, with repeats)")
    ax.set_ylabel(score_label)
    ax.set_title("Greedy selection trajectory")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return fig


def _keep_visible_span(ax: Axes, values: np.ndarray) -> None:
    # A flat trajectory would otherwise be drawn with a 1e-10 offset axis.
    finite = values[np.isfinite(values)]
    low, high = finite.min(), finite.max()
    margin = max(0.1 * (high - low), 1e-3 * max(abs(high), abs(low)), 1e-9)
    ax.set_ylim(low - margin, high + margin)
    ax.ticklabel_format(axis="y", useOffset=False)


def plot_correlation(corr: np.ndarray, labels: Sequence[str]) -> Figure:
    n = len(labels)
    side = min(9.0, 2.5 + 0.6 * n)
    fig, axes = new_figure(side + 1.5, side)
    ax = axes[0, 0]
    image = ax.imshow(corr, vmin=-1, vmax=1, cmap="RdBu_r")
    ax.set_xticks(np.arange(n), labels, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(np.arange(n), labels, fontsize=8)
    if n <= 12:
        for i in range(n):
            for j in range(n):
                value = corr[i, j]
                text = "nan" if not np.isfinite(value) else f"{value:.2f}"
                ax.text(j, i, text, ha="center", va="center", fontsize=8,
                        color="white" if np.isfinite(value) and abs(value) > 0.6 else "black")
    fig.colorbar(image, ax=ax, shrink=0.8, label="Pearson correlation")
    ax.set_title("Correlation of out-of-fold predictions")
    return fig


def plot_learning_curves(curves: Sequence[LearningCurve], score_label: str) -> Figure:
    n = len(curves)
    fig, axes = new_figure(_WIDTH if n > 1 else 6.0, 3.8, ncols=n)
    for ax, curve in zip(axes.ravel(), curves, strict=True):
        for scores, name, color in ((curve.train_scores, "training", "#1f77b4"),
                                    (curve.valid_scores, "validation", "#ff7f0e")):
            mean, std = np.nanmean(scores, axis=1), np.nanstd(scores, axis=1)
            ax.plot(curve.train_sizes, mean, marker="o", color=color, label=name)
            ax.fill_between(curve.train_sizes, mean - std, mean + std, color=color, alpha=0.2)
        ax.set_title(curve.label, fontsize=10)
        ax.set_xlabel("training samples")
        ax.grid(alpha=0.3)
    first = axes[0, 0]
    first.set_ylabel(score_label)
    first.legend(fontsize=8, loc="lower right")
    return fig


def plot_fusion(comparison: pd.DataFrame, chosen: str | None, score_label: str,
                estimate: str = "cross-validated") -> Figure:
    frame = comparison.sort_values("cv_score", na_position="first")
    scores = frame["cv_score"].to_numpy(dtype=float)
    errors = np.nan_to_num(frame["cv_std"].to_numpy(dtype=float))
    names = [str(f) for f in frame["fusion"]]
    fig, axes = new_figure(_WIDTH, _bar_height(len(names)))
    ax = axes[0, 0]
    _score_bars(ax, scores, errors=errors,
                colors=[_HIGHLIGHT if name == chosen else "#4c72b0" for name in names])
    ax.set_yticks(np.arange(len(names)), [f"{n} (used)" if n == chosen else n for n in names])
    ax.set_xlabel(f"{estimate} {score_label} (greater is better), error bar = std over folds")
    ax.set_title("Fusion methods on the members' out-of-fold predictions")
    return fig


def front_score_column(front: pd.DataFrame) -> str:
    """The front's held-out scores, or its in-sample ones when some point has none."""
    return "cv_score" if front["cv_score"].notna().all() else "selection_score"


def plot_pareto_front(front: pd.DataFrame, fitted: tuple[float, float] | None,
                      score_label: str) -> Figure:
    """Score against prediction seconds per row, one step line per ``final_models`` kind.

    ``fitted`` is the fitted ensemble's (seconds per row, score), drawn as a star: its
    score must be of the kind the axis shows (:func:`front_score_column`).
    """
    fig, axes = new_figure(_WIDTH, 4.5)
    ax = axes[0, 0]
    score_column = front_score_column(front)
    for kind, marker in (("folds", "o"), ("refit", "s")):
        part = front[front["final_models"] == kind].sort_values("seconds_per_row")
        if part.empty:
            continue
        ax.step(part["seconds_per_row"], part[score_column], where="post", marker=marker,
                label=f"final_models={kind!r}")
        for cost, score, n in zip(part["seconds_per_row"], part[score_column],
                                  part["n_members"], strict=True):
            ax.annotate(str(n), (cost, score), textcoords="offset points", xytext=(4, -10),
                        fontsize=8, color=_MUTED)
    if fitted is not None and all(np.isfinite(fitted)):
        ax.plot(*fitted, marker="*", markersize=14, color=_HIGHLIGHT, linestyle="none",
                label="fitted ensemble (measured)")
    ax.set_xscale("log")
    ax.set_xlabel("prediction seconds per row (log scale)")
    estimate = "cross-validated" if score_column == "cv_score" else "in-sample (optimistic)"
    ax.set_ylabel(f"{estimate} {score_label}")
    ax.set_title("Accuracy-latency front (numbers: distinct members)")
    ax.legend(loc="lower right")
    return fig
