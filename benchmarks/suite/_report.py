"""Markdown table, mean ranks and rank figure from the suite's raw CSV."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.suite._metrics import primary_metric
from benchmarks.tables._report import write_keeping_notes

#: Text below this marker in an existing report is kept when the report is rebuilt.
NOTES_MARKER = "<!-- notes: hand-written analysis below is preserved -->"
SYSTEM_ORDER = ("ensemble_hpo", "ehpo_best_single", "optuna_xgboost", "sklearn_stacking",
                "flaml", "autogluon", "autogluon_best")
#: Other selections on the default run's population: compared with the default, not ranked.
VARIANTS = ("ehpo_plain_caruana", "ehpo_prune50", "ehpo_greedy_cv")


def add_primary(results: pd.DataFrame) -> pd.DataFrame:
    """Column ``loss`` = log loss (classification) or RMSE (regression); lower is better."""
    out = results.copy()
    out["loss"] = np.where(out["task"] == "classification", out.get("log_loss"), out.get("rmse"))
    return out


def ranks(results: pd.DataFrame) -> pd.DataFrame:
    """Rank of each system per (seed, data set) by the primary loss; failures rank last."""
    ok = add_primary(results)
    ok["loss"] = ok["loss"].where(ok["status"] == "ok", np.inf)
    ok = ok[(ok["status"] != "not installed") & ~ok["system"].isin(VARIANTS)]
    # Extra seeds may be run for ensemble_hpo alone (its comparison with its best single
    # candidate needs no competitor); ranking those runs would pit two systems only.
    n_systems = ok.groupby(["seed", "dataset"])["system"].transform("nunique")
    ok = ok[n_systems == ok["system"].nunique()].copy()
    ok["rank"] = ok.groupby(["seed", "dataset"])["loss"].rank(method="average")
    return ok


def _table(results: pd.DataFrame) -> str:
    res = add_primary(results)
    systems = [s for s in SYSTEM_ORDER if s in set(res["system"])]
    lines = ["| data set | task | metric | " + " | ".join(systems) + " |",
             "|---" * (3 + len(systems)) + "|"]
    for (seed, dataset), group in res.groupby(["seed", "dataset"], sort=False):
        task = group["task"].iloc[0]
        by_sys = group.set_index("system")
        ok_losses = by_sys.loc[by_sys["status"] == "ok", "loss"]
        best = ok_losses.min() if len(ok_losses) else np.nan
        metric_rows = [(primary_metric(task), "loss")]
        if task == "classification":
            metric_rows.append(("roc_auc", "roc_auc"))
        metric_rows.append(("fit s", "fit_time"))
        for label, col in metric_rows:
            cells = []
            for s in systems:
                if s not in by_sys.index:
                    cells.append("")
                    continue
                r = by_sys.loc[s]
                if r["status"] != "ok":
                    cells.append(str(r["status"]))
                    continue
                v = r[col]
                text = f"{v:.1f}" if col == "fit_time" else f"{v:.4f}"
                cells.append(f"**{text}**" if col == "loss" and v == best else text)
            name = f"{dataset} (s{seed})" if label == metric_rows[0][0] else ""
            lines.append(f"| {name} | {task[:5] if name else ''} | {label} | "
                         + " | ".join(cells) + " |")
    return "\n".join(lines)


def _rank_table(ranked: pd.DataFrame) -> str:
    agg = ranked.groupby("system").agg(mean_rank=("rank", "mean"), n=("rank", "size"),
                                       wins=("rank", lambda r: int((r == 1).sum())),
                                       median_fit_s=("fit_time", "median"))
    agg = agg.sort_values("mean_rank")
    lines = ["| system | mean rank | data sets | wins | median fit s |", "|---|---|---|---|---|"]
    for s, r in agg.iterrows():
        lines.append(f"| {s} | {r.mean_rank:.2f} | {int(r.n)} | {int(r.wins)} | {r.median_fit_s:.1f} |")
    return "\n".join(lines)


def _ensemble_vs_single(results: pd.DataFrame) -> tuple[str, int, int]:
    res = add_primary(results)
    res = res[res["status"] == "ok"]
    piv = res.pivot_table(index=["seed", "dataset"], columns="system", values="loss")
    if not {"ensemble_hpo", "ehpo_best_single"} <= set(piv.columns):
        return "(no ensemble_hpo results)", 0, 0
    piv = piv[["ensemble_hpo", "ehpo_best_single"]].dropna()
    piv["rel_change_%"] = 100 * (piv["ensemble_hpo"] - piv["ehpo_best_single"]) / piv["ehpo_best_single"]
    # Notes hold "cv <score>" (greater is better, i.e. minus the loss) for both rows.
    cv = res.assign(cv=-res["note"].str.extract(r"cv (-?[0-9.e+-]+)")[0].astype(float))
    cv = cv.pivot_table(index=["seed", "dataset"], columns="system", values="cv")
    best_family = res[res["system"] == "ehpo_best_single"].set_index(["seed", "dataset"])["note"]
    wins = int((piv["ensemble_hpo"] < piv["ehpo_best_single"]).sum())
    lines = ["| data set | test ensemble | test best single | test change (%) | OOF ensemble | "
             "OOF best single | OOF change (%) | best single |", "|---|---|---|---|---|---|---|---|"]
    for key, r in piv.iterrows():
        cv_e, cv_s = cv.loc[key, "ensemble_hpo"], cv.loc[key, "ehpo_best_single"]
        lines.append(f"| {key[1]} (s{key[0]}) | {r.ensemble_hpo:.4f} | {r.ehpo_best_single:.4f} | "
                     f"{r['rel_change_%']:+.2f} | {cv_e:.4f} | {cv_s:.4f} | "
                     f"{100 * (cv_e - cv_s) / cv_s:+.2f} | {best_family.get(key, '')} |")
    return "\n".join(lines), wins, len(piv)


def _selection_variants(results: pd.DataFrame) -> str:
    """Default selection and its variants against the best single candidate, same populations."""
    res = add_primary(results)
    piv = res[res["status"] == "ok"].pivot_table(index=["seed", "dataset"], columns="system",
                                                 values="loss")
    names = [s for s in ("ensemble_hpo", *VARIANTS) if s in piv.columns]
    if "ehpo_best_single" not in piv.columns or len(names) < 2:
        return "(no selection variants in these results)"
    lines = ["| selection | runs | beats best single (runs) | ties | loses | beats best single "
             "(data sets, mean over seeds) | mean test change vs best single (%) |",
             "|---|---|---|---|---|---|---|"]
    for name in names:
        # Each variant on the runs that have it: a variant that was the default at the time
        # of a run has no separate row there.
        pair = piv[["ehpo_best_single", name]].dropna()
        per_set = pair.groupby(level="dataset").mean()
        change = (pair[name] - pair["ehpo_best_single"]) / pair["ehpo_best_single"]
        set_change = (per_set[name] - per_set["ehpo_best_single"]) / per_set["ehpo_best_single"]
        tol = 1e-12
        lines.append(f"| {name} | {len(pair)} | {int((change < -tol).sum())} | "
                     f"{int((change.abs() <= tol).sum())} | {int((change > tol).sum())} | "
                     f"{int((set_change < -tol).sum())} of {len(set_change)} | "
                     f"{100 * change.mean():+.2f} |")
    return "\n".join(lines)


def _variant_rank_table(results: pd.DataFrame) -> str:
    """Mean rank of each selection variant when it stands in for ``ensemble_hpo``."""
    lines = ["| ensemble_hpo selection | its mean rank | runs |", "|---|---|---|"]
    for name in ("ensemble_hpo", *VARIANTS):
        if name not in set(results["system"]):
            continue
        others = results[~results["system"].isin({"ensemble_hpo", name})]
        stand_in = results[results["system"] == name].assign(system="ensemble_hpo")
        ranked = ranks(pd.concat([others, stand_in], ignore_index=True))
        own = ranked[ranked["system"] == "ensemble_hpo"]["rank"]
        if own.empty:
            continue
        lines.append(f"| {name} | {own.mean():.2f} | {len(own)} |")
    return "\n".join(lines)


def _family_table(boards: pd.DataFrame) -> str:
    if boards.empty:
        return "(no leaderboards)"
    b = boards.copy()
    b["member"] = b["weight"].fillna(0) > 0
    grp = b.groupby(["dataset", "family"]).agg(
        trials=("number", "size"), complete=("status", lambda s: int((s == "ok").sum())),
        fit_s=("fit_time", "sum"), members=("member", "sum"))
    grp[["trials", "complete", "members"]] = grp[["trials", "complete", "members"]].astype(int)
    grp["fit_s"] = grp["fit_s"].round(1)
    cells = grp.apply(
        lambda r: f"{int(r.complete)}/{int(r.trials)} ({r.fit_s:g}s, {int(r.members)}m)", axis=1)
    wide = cells.unstack("family").fillna("")
    lines = ["Per data set and family: ok/all candidates (summed candidate fit time, ensemble members).",
             "", "| data set | " + " | ".join(wide.columns) + " |",
             "|---" * (1 + len(wide.columns)) + "|"]
    for ds, r in wide.iterrows():
        lines.append(f"| {ds} | " + " | ".join(r.values) + " |")
    return "\n".join(lines)


def _rank_figure(ranked: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    piv = ranked.pivot_table(index="dataset", columns="system", values="rank")
    order = piv.mean().sort_values().index
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for i, s in enumerate(order):
        vals = piv[s].dropna().to_numpy()
        jitter = np.linspace(-0.15, 0.15, len(vals)) if len(vals) > 1 else np.zeros(1)
        ax.scatter(vals, i + jitter, alpha=0.5, s=18)
        ax.scatter([vals.mean()], [i], marker="D", color="black", s=50, zorder=3)
    ax.set_yticks(range(len(order)), order)
    ax.invert_yaxis()
    ax.set_xlabel("rank per data set by log loss / RMSE (1 = best); diamond = mean")
    ax.set_title(f"Rank per data set ({piv.shape[0]} data sets)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(out_dir: Path, tag: str, command: str) -> Path:
    """Write ``<tag>.md`` and ``<tag>_ranks.png`` from ``<tag>.csv``."""
    results = pd.read_csv(out_dir / f"{tag}.csv")
    boards_path = out_dir / f"{tag}_leaderboards.csv"
    boards = pd.read_csv(boards_path) if boards_path.exists() else pd.DataFrame()
    uptime_path = out_dir / f"{tag}_uptime.csv"
    uptime = pd.read_csv(uptime_path) if uptime_path.exists() else pd.DataFrame()
    ranked = ranks(results)
    _rank_figure(ranked, out_dir / f"{tag}_ranks.png")
    vs_table, wins, n = _ensemble_vs_single(results)
    md_path = out_dir / f"{tag}.md"
    load = results["load_1min"]
    parts = [
        f"# Benchmark suite, budget {results['budget'].iloc[0]:g} s",
        "",
        f"Report built by: `{command}` (run commands: see the notes at the end).",
        "",
        f"Raw results `{tag}.csv`; ensemble_hpo leaderboards `{tag}_leaderboards.csv`; "
        f"rank figure `{tag}_ranks.png`.",
        "",
        f"Machine load (1-min load average when each system started): min {load.min():.2f}, "
        f"median {load.median():.2f}, max {load.max():.2f} on 2 cores.",
        *[f"- uptime, {r.when}: `{r.uptime}`" for r in uptime.itertuples()],
        "",
        "Lower is better for log loss / RMSE; **bold** = best on that data set. Test split 25 %, "
        "stratified for classification, same seeded split for every system. Tables larger than "
        "5000 rows (nassCDS 26217, CPS1988 28155) are subsampled to 5000 rows (seeded, stratified "
        "for classification) before the split.",
        "",
        "## Mean rank (by log loss / RMSE)",
        "",
        f"Over the {ranked.groupby(['seed', 'dataset']).ngroups} runs (data set x seed) in which "
        "every system ran; runs of ensemble_hpo alone count only in the comparisons with its "
        "best single candidate below.",
        "",
        _rank_table(ranked),
        "",
        f"![ranks]({tag}_ranks.png)",
        "",
        "## Ensemble vs its own best single candidate (test loss)",
        "",
        f"The ensemble beats its best single candidate on {wins} of {n} runs (data set x seed).",
        "",
        vs_table,
        "",
        "## Selection variants on the same populations (test loss)",
        "",
        "`ensemble_hpo` is the library default at the time of the run; `ehpo_plain_caruana` is "
        "greedy selection over all candidates (`prune=None`), `ehpo_prune50` over the better half "
        "(`prune=0.5`); `ehpo_greedy_cv` keeps greedy selection only when it beats the best "
        "single candidate on held-out OOF rows (`selection=\"greedy_cv\"`). Each is re-run on the "
        "default run's population with `reselect` (nothing retrained) and is not ranked above; "
        "the last table ranks each variant in place of `ensemble_hpo`.",
        "",
        _selection_variants(results),
        "",
        _variant_rank_table(results),
        "",
        "## Results per data set",
        "",
        _table(results),
        "",
        "## Speed",
        "",
        "Selection speed, search overhead against a bare Optuna loop and parallel scaling are "
        "measured by `python -m benchmarks.suite.speed`; their verdicts are collected in "
        "[speed.md](speed.md).",
        "",
        "## ensemble_hpo search: candidates per family",
        "",
        _family_table(boards),
        "",
        "",
    ]
    write_keeping_notes(md_path, "\n".join(parts), NOTES_MARKER)
    return md_path
