"""Does a family outside ``models="auto"`` add to the greedy ensemble? (issue 16, families)

CatBoost's best configuration beats the auto families' best single one on 27 of 60 tables
(``portfolio_repo_scores.csv``), neutral as a single model; what matters to ensemble_hpo is
whether its predictions add to the ensemble. On every table of the portfolio repository
(5-fold out-of-fold and fold-averaged test predictions, split seed 0), ``GreedySelector()``
selects on the out-of-fold predictions of

* ``base``: the first ``--ranks`` configurations of each auto family (rank 0 is the default);
* ``more_of_same``: ``base`` plus as many further auto configurations (ranks ``--ranks`` and
  up, round robin over the families) as the new family brings: the control, since any
  extra candidates give selection more to choose from;
* ``plus_<family>``: ``base`` plus the new family's first ``--added-ranks`` configurations
  (default ``--ranks``);

and the weighted average is scored on the test rows. The fit seconds of the candidates each
arm adds are summed, since at a fixed time budget a slower family means fewer candidates.

Usage::

    python -m benchmarks.portfolio.run run --families catboost --max-rank 12
    python -m benchmarks.portfolio.family_added --family catboost --out benchmarks/results/
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from benchmarks._markdown import markdown
from benchmarks.portfolio import _offline
from benchmarks.portfolio._store import Repository
from benchmarks.portfolio.member_filter import AUTO_FAMILIES
from benchmarks.tables._report import sign_test
from ensemble_hpo.metrics import get_prediction_scorer
from ensemble_hpo.selection import GreedySelector


def _ranked(repo: Repository, table: str, families: list[str]) -> dict[str, tuple[str, int, float]]:
    """config id -> (family, rank, fit seconds) for every ok configuration stored."""
    out = {}
    for family in families:
        if repo.family_path(table, family).exists():
            for rec in repo.records(table, family):
                if rec["status"] == "ok":
                    out[rec["config_id"]] = (family, int(rec["rank"]), float(rec["fit_seconds"]))
    return out


def _extra_same(info: dict[str, tuple[str, int, float]], ranks: int, count: int) -> list[str]:
    """``count`` auto configurations beyond the first ``ranks``, round robin over the families."""
    by_family = {}
    for cid, (family, rank, _) in sorted(info.items(), key=lambda kv: kv[1][1]):
        if family in AUTO_FAMILIES and rank >= ranks:
            by_family.setdefault(family, []).append(cid)
    order = [c for group in itertools.zip_longest(*by_family.values()) for c in group if c is not None]
    return order[:count]


def arms(info: dict[str, tuple[str, int, float]], family: str, ranks: int,
         added_ranks: int | None = None) -> dict[str, list[str]]:
    """The configuration ids of each arm (see the module docstring)."""
    added_ranks = ranks if added_ranks is None else added_ranks
    base = [c for c, (f, r, _) in info.items() if f in AUTO_FAMILIES and r < ranks]
    added = [c for c, (f, r, _) in info.items() if f == family and r < added_ranks]
    return {"base": base, "more_of_same": base + _extra_same(info, ranks, len(added)),
            f"plus_{family}": base + added}


def table_row(repo: Repository, table: str, family: str, ranks: int, added_ranks: int) -> dict | None:
    info = _ranked(repo, table, AUTO_FAMILIES + [family])
    groups = arms(info, family, ranks, added_ranks)
    if len(groups[f"plus_{family}"]) == len(groups["base"]):
        return None  # the family has no ok configuration on this table
    d = repo.load_table(table, AUTO_FAMILIES + [family])
    task = "regression" if d["task"] == "regression" else "classification"
    score = get_prediction_scorer(None, task)
    index = {cid: i for i, cid in enumerate(d["ids"])}
    oof, test = d["oof"].astype(np.float64), d["test"].astype(np.float64)
    base_seconds = sum(info[c][2] for c in groups["base"])
    row = {"table": table, "task": task, "added": len(groups[f"plus_{family}"]) - len(groups["base"]),
           "added_same": len(groups["more_of_same"]) - len(groups["base"])}
    for arm, ids in groups.items():
        rows = [index[c] for c in ids]
        oof_loss = np.array([-score(d["y_train"], oof[i]) for i in rows])
        selector = GreedySelector().fit(oof[rows], d["y_train"])
        row[arm] = -score(d["y_test"], np.tensordot(selector.weights_, test[rows], axes=1))
        row[f"{arm}_best_single"] = -score(d["y_test"], test[rows[int(np.argmin(oof_loss))]])
        row[f"{arm}_seconds_added"] = sum(info[c][2] for c in ids) - base_seconds
        if arm != "base":
            row[f"{arm}_weight_added"] = float(selector.weights_[len(groups["base"]):].sum())
    return row


def summary(frame: pd.DataFrame, family: str) -> pd.DataFrame:
    rows = []
    pairs = [("more_of_same", "base"), (f"plus_{family}", "base"), (f"plus_{family}", "more_of_same")]
    for task, group in [("all", frame)] + list(frame.groupby("task")):
        for arm, reference in pairs:
            rel = group[arm] / group[reference] - 1
            better, worse, p = sign_test(rel.to_numpy())
            rows.append({"task": task, "arm": arm, "vs": reference, "tables": len(group),
                         "better / worse": f"{better} / {worse}", "sign test p": f"{p:.3g}",
                         "mean rel change": f"{rel.mean():+.2%}", "median rel change": f"{rel.median():+.2%}",
                         "<= own best single": f"{int((group[arm] <= group[f'{arm}_best_single']).sum())}"
                                               f"/{len(group)}"})
    return pd.DataFrame(rows)


def report(frame: pd.DataFrame, family: str, ranks: int, added_ranks: int) -> str:
    plus = f"plus_{family}"
    cost = pd.DataFrame({
        "arm": ["more_of_same", plus],
        "configurations added (mean)": [frame.added_same.mean(), frame.added.mean()],
        "fit seconds added (median)": [frame.more_of_same_seconds_added.median(),
                                       frame[f"{plus}_seconds_added"].median()],
        "weight on the added (mean)": [frame.more_of_same_weight_added.mean(),
                                       frame[f"{plus}_weight_added"].mean()]})
    return "\n".join([
        f"# Does {family} add to the greedy ensemble? (portfolio repository, offline)", "",
        f"Command: `python -m benchmarks.portfolio.family_added --family {family} --ranks {ranks} "
        f"--added-ranks {added_ranks} --out benchmarks/results/`. See the module docstring for the "
        "arms. Test loss (log loss, "
        "RMSE) of the greedy ensemble's weighted average; relative change per table against the "
        "reference arm, sign test over tables (ties dropped).", "",
        markdown(summary(frame, family), index=False), "",
        "## What the added candidates cost and get", "", markdown(cost, "{:.2f}", index=False), "",
    ])


def main() -> None:
    cli = _offline.parser(__doc__.splitlines()[0])
    cli.add_argument("--family", default="catboost")
    cli.add_argument("--ranks", type=int, default=12, help="configurations per auto family (by rank)")
    cli.add_argument("--added-ranks", type=int, default=None,
                     help="configurations of the new family (default: --ranks)")
    args = cli.parse_args()
    added = args.ranks if args.added_ranks is None else args.added_ranks
    repo = Repository(args.repo)
    rows = [table_row(repo, t, args.family, args.ranks, added) for t in repo.tables()]
    frame = pd.DataFrame([r for r in rows if r is not None])
    text = report(frame, args.family, args.ranks, added)
    _offline.write(args.out, f"family_added_{args.family}", frame, text)


if __name__ == "__main__":
    main()
