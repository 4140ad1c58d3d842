"""Markdown report of the portfolio-tables run: ensemble vs its own best single candidate."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks._markdown import markdown
from benchmarks.tables._data import PORTFOLIO_TABLES

NOTES_MARKER = "<!-- notes: text below survives report rebuilds -->"
TASKS = ("binary", "multiclass", "regression")


#: Column formats that differ from the default 4 decimals.
FORMATS = {"members": "{:.1f}", "candidates ok": "{:.0f}", "fit_time": "{:.1f}",
           "load_before": "{:.2f}", "rel_change": "{:+.2%}", "rel change (mean)": "{:+.2%}",
           "rel change (median)": "{:+.2%}"}


def _table(frame: pd.DataFrame, floatfmt: str = "{:.4f}",
           formats: dict[str, str] | None = None) -> str:
    """Markdown table without the index; floats by ``formats`` over :data:`FORMATS`."""
    return markdown(frame, floatfmt, {**FORMATS, **(formats or {})}, index=False)


def per_table(ok: pd.DataFrame) -> pd.DataFrame:
    """One row per table: losses aggregated over its seeds (mean and median)."""
    rows = []
    for table, g in ok.groupby("table", sort=False):
        ens, single = g["ensemble_loss"].to_numpy(), g["best_single_loss"].to_numpy()
        rel = ens / single - 1.0
        rows.append({"table": table, "task": g["task"].iloc[0], "seeds": len(g),
                     "ensemble (mean)": ens.mean(), "best single (mean)": single.mean(),
                     "rel change (mean)": ens.mean() / single.mean() - 1.0,
                     "rel change (median)": float(np.median(rel)),
                     "win mean": bool(ens.mean() <= single.mean()),
                     "win median": bool(np.median(ens) <= np.median(single)),
                     "seeds won": int((ens <= single).sum()),
                     "members": g["members"].mean(), "candidates ok": g["candidates_ok"].mean()})
    return pd.DataFrame(rows)


def sign_test(rel: np.ndarray) -> tuple[int, int, float]:
    """Tables better / worse (ties dropped) and the two-sided sign-test p-value."""
    from scipy.stats import binomtest

    better, worse = int((rel < 0).sum()), int((rel > 0).sum())
    p = binomtest(better, better + worse, 0.5).pvalue if better + worse else np.nan
    return better, worse, float(p)


def summary(tables: pd.DataFrame) -> pd.DataFrame:
    rows = []
    groups = [(t, tables[tables["task"] == t]) for t in TASKS] + [("all", tables)]
    for name, g in groups:
        if g.empty:
            continue
        rel = g["rel change (mean)"].to_numpy()
        better, worse, p = sign_test(rel)
        rows.append({"task": name, "tables": len(g),
                     "ensemble ≤ best single (mean over seeds)": f"{int(g['win mean'].sum())}/{len(g)}",
                     "(median over seeds)": f"{int(g['win median'].sum())}/{len(g)}",
                     "median rel change": f"{100 * np.median(rel):+.2f} %",
                     "mean rel change": f"{100 * np.mean(rel):+.2f} %",
                     "better / worse": f"{better} / {worse}",
                     "sign test p (two-sided)": f"{p:.3g}"})
    return pd.DataFrame(rows)


def shapes() -> pd.DataFrame:
    """Every portfolio table as loaded (rows after dropping a missing target)."""
    from benchmarks.tables._data import load_table, table_info

    rows = []
    for name in PORTFOLIO_TABLES:
        info = table_info(name)
        try:
            X, y, _ = load_table(name)
            shape = {"rows": len(X), "features": X.shape[1],
                     "text columns": int(sum(not pd.api.types.is_numeric_dtype(X[c]) for c in X)),
                     "missing cells": f"{X.isna().to_numpy().mean():.1%}",
                     "classes": y.nunique() if info["task"] != "regression" else ""}
        except Exception as exc:  # noqa: BLE001 - shown in the report
            shape = {"rows": f"load failed: {exc}"}
        rows.append({"table": name, "task": info["task"],
                     "source": f"{info['package']}/{info['item']}", "target": info["target"],
                     **shape, "dropped": ", ".join(info["drop"].split("|")) if info["drop"] else ""})
    return pd.DataFrame(rows).fillna("")


def write_report(csv: Path, families_csv: Path, out: Path, command: str) -> None:
    frame = pd.read_csv(csv)
    ok = frame[frame["status"] == "ok"].copy()
    order = {t: i for i, t in enumerate(PORTFOLIO_TABLES)}
    ok = ok.sort_values(["table", "seed"], key=lambda s: s.map(order) if s.name == "table" else s)
    failed = frame[frame["status"] != "ok"]
    budget = frame["budget"].dropna().unique()
    seeds = sorted(ok["seed"].unique().tolist())
    commits = sorted(frame["commit"].dropna().astype(str).unique())
    run_commands = list(dict.fromkeys(frame["command"].dropna().astype(str)))
    tables = per_table(ok)
    n_jobs = ", ".join(map(str, frame["n_jobs"].dropna().astype(int).unique()))
    parts = [f"# ensemble_hpo vs its own best single candidate on {tables.shape[0]} portfolio "
             f"tables ({', '.join(f'{b:g}' for b in budget)} s)", "",
             f"Report: `{command}`. Runs: " + "; ".join(f"`{c}`" for c in run_commands) + ".", "",
             f"Code measured (commit of ensemble_hpo): {', '.join(commits)}. Seeds: {seeds}. "
             f"{len(ok)} ok runs, {len(failed)} failed. ensemble_hpo with its defaults "
             f"(`time_budget`, `n_jobs={n_jobs}`, "
             "`random_state=seed`, a `run_dir`); test loss on the 25 % test rows of the suite's "
             "split (tables subsampled to 5000 rows): log loss (classification), RMSE (regression). "
             "Relative change = ensemble / best single − 1 (negative: the ensemble is better); "
             "per table on the loss averaged over seeds. The sign test counts tables where the "
             "ensemble is strictly better vs strictly worse (ties dropped).", ""]
    if not ok.empty:
        parts += ["## Summary", "", _table(summary(tables)), ""]
        worst = tables.sort_values("rel change (mean)", ascending=False).head(10)
        parts += ["## Worst losses (largest relative change, mean over seeds)", "",
                  _table(worst[["table", "task", "seeds", "ensemble (mean)", "best single (mean)",
                                "rel change (mean)", "seeds won", "members"]]), ""]
        if families_csv.exists() and families_csv.stat().st_size:
            fam = pd.read_csv(families_csv)
            fam = fam.merge(ok[["table", "seed"]], on=["table", "seed"])
            if not fam.empty:
                agg = fam.groupby("family").agg(
                    runs=("ratio", "size"), median_ratio=("ratio", "median"),
                    p90_ratio=("ratio", lambda r: float(np.quantile(r, 0.9))),
                    max_ratio=("ratio", "max")).reset_index()
                parts += ["## Out-of-fold to test gap per family", "",
                          "Per run, each family's best-OOF candidate: its test loss / OOF loss "
                          "(`benchmarks/bench_oof_vs_test.family_gaps`); rows per run and family "
                          f"in `{families_csv.name}`.", "",
                          _table(agg.rename(columns={"median_ratio": "median test/OOF",
                                                     "p90_ratio": "90th pct",
                                                     "max_ratio": "max"}), "{:.3f}"), ""]
        load = ok[["load_before", "load_after"]].to_numpy().ravel()
        parts += ["## Machine", "",
                  f"1-minute load average around the fits (2 cores): median {np.median(load):.2f}, "
                  f"max {load.max():.2f}. Fit time: median {ok['fit_time'].median():.1f} s, max "
                  f"{ok['fit_time'].max():.1f} s.", ""]
        shown = ok.copy()
        shown["candidates"] = (shown["candidates_ok"].astype(int).astype(str) + "/"
                               + shown["candidates_total"].astype(int).astype(str))
        parts += ["## Every run", "",
                  _table(shown[["table", "task", "seed", "n_rows", "n_train", "n_features",
                                "ensemble_loss", "best_single_loss", "rel_change", "members",
                                "candidates", "best_single", "fit_time", "load_before"]]), ""]
    parts += ["## Tables", "",
              "As loaded by `benchmarks/tables/_data.load_table` (rows with a missing target "
              "dropped; tables above 5000 rows are subsampled per seed before the 75/25 split).",
              "", _table(shapes()), ""]
    if not failed.empty:
        parts += ["## Failed runs", "", _table(failed[["table", "seed", "status"]]), ""]
    write_keeping_notes(out, "\n".join(parts) + "\n")


def write_keeping_notes(out: Path, generated: str, marker: str = NOTES_MARKER) -> None:
    """Write ``generated`` to ``out``, keeping the hand-written text after ``marker``."""
    notes = ""
    if out.exists() and marker in out.read_text():
        notes = out.read_text().split(marker, 1)[1]
    out.write_text(generated + marker + notes.rstrip("\n") + "\n")
