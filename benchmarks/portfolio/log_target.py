"""Do log-target candidates help the greedy ensemble on regression tables? (offline, repository)

Issue 16 item 4: regression lags the best anchor on price-like tables. Fitting *every*
candidate on a log target (``tables.run --target-transform signlog``) helped two price tables
and hurt most others (``tables_60s_signlog.md``). Here log-target candidates are *added* to the
raw ones and greedy selection decides, on out-of-fold predictions in the user's scale.

Per regression table of the portfolio repository (seed-0 split, ``fit``'s folds; targets with a
value <= -1 are skipped): the ``--top`` best raw configurations of each family with a built-in
log-target twin (``ensemble_hpo.spaces.LOG_TARGET_FAMILIES``) by out-of-fold RMSE are fitted
again as
``ensemble_hpo.spaces.LogTargetRegressor`` (``log1p`` / ``expm1``) through the library's
``CandidateEvaluator``; test predictions average the fold models, as ``fit`` does. Then
``GreedySelector()`` selects on

* ``raw``: every stored raw configuration (what the repository's ensemble is);
* ``raw+log``: the same plus the log-target refits;

and the weighted averages are scored on the test rows (RMSE), against the best raw single
configuration by out-of-fold RMSE. From the repository root (about 15 min on 2 cores)::

    python -m benchmarks.portfolio.run run --max-evals 0      # unpack the committed packs
    python -m benchmarks.portfolio.log_target --out benchmarks/results/
"""

from __future__ import annotations

import warnings
import zlib

import numpy as np
import pandas as pd
from scipy.stats import skew
from threadpoolctl import threadpool_limits

from benchmarks._markdown import markdown
from benchmarks.portfolio import _offline
from benchmarks.portfolio._evaluate import setup_table
from benchmarks.portfolio._store import Repository
from benchmarks.portfolio.configs import family_configs
from benchmarks.tables._data import PORTFOLIO_TABLES, table_info
from benchmarks.tables._report import sign_test
from ensemble_hpo.ensemble import Member
from ensemble_hpo.selection import GreedySelector
from ensemble_hpo.spaces import (
    DEFAULT_FAMILIES,
    LOG_TARGET_FAMILIES,
    LogTargetRegressor,
    get_family,
    log_target_suits,
)

FAMILIES = [f for f in DEFAULT_FAMILIES if get_family(f).supports("regression")]


def rmse(y: np.ndarray, pred: np.ndarray) -> float:
    return float(np.sqrt(np.mean((y - pred) ** 2)))


def configurations() -> dict[str, dict]:
    """Config id -> configuration, seeded as ``benchmarks.portfolio.configs.build_configs``."""
    return {c["id"]: {**c, "seed": zlib.crc32(c["id"].encode()) % (2**31 - 1)}
            for f in FAMILIES for c in family_configs(f, 200, 0)}


def log_refits(table: str, picks: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """Out-of-fold and test predictions of ``picks`` refitted on a log target."""
    setup = setup_table(table, 0)
    oof, test = [], []
    for config in picks:
        inner = setup.builder(get_family(config["family"]), dict(config["params"]), config["seed"])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = setup.evaluator.evaluate(LogTargetRegressor(regressor=inner))
        with threadpool_limits(limits=1):
            member = Member(number=0, family="", params={}, weight=1.0, models=result.models)
            test.append(member.predict(setup.X_test, "regression", None))
        oof.append(result.predictions)
    return np.asarray(oof, dtype=np.float64), np.asarray(test, dtype=np.float64)


def table_row(repo: Repository, table: str, configs: dict[str, dict], top: int) -> dict | None:
    d = repo.load_table(table, FAMILIES)
    y, y_test = d["y_train"].astype(np.float64), d["y_test"].astype(np.float64)
    if y.min() <= -1:
        return None
    raw_oof, raw_test = d["oof"].astype(np.float64), d["test"].astype(np.float64)
    oof_rmse = np.array([rmse(y, p) for p in raw_oof])
    picks = []
    for family in LOG_TARGET_FAMILIES:
        idx = np.flatnonzero(d["families"] == family)
        picks += [configs[str(d["ids"][i])] for i in idx[np.argsort(oof_rmse[idx])[:top]]]
    log_oof, log_test = log_refits(table, picks)
    row = {"table": table, "n_train": len(y), "skewness": float(skew(y)),
           "auto_adds_twins": log_target_suits(y), "raw_candidates": len(raw_oof),
           "log_candidates": len(picks), "best_single": rmse(y_test, raw_test[int(np.argmin(oof_rmse))])}
    arms = {"raw": (raw_oof, raw_test),
            "raw+log": (np.concatenate([raw_oof, log_oof]), np.concatenate([raw_test, log_test]))}
    for name, (oof, test) in arms.items():
        weights = GreedySelector().fit(oof, y).weights_
        row[name] = rmse(y_test, np.tensordot(weights, test, axes=1))
    row["log_weight"] = float(weights[len(raw_oof):].sum())
    return row


def summary(frame: pd.DataFrame) -> pd.DataFrame:
    rows = []
    groups = [("all", frame), ("skewness > 1, non-negative (auto adds twins)", frame[frame.auto_adds_twins]),
              ("other", frame[~frame.auto_adds_twins])]
    for name, group in groups:
        vs = group["raw+log"] / group["raw"] - 1
        better, worse, p = sign_test(vs.to_numpy())
        rows.append({"tables": name, "n": len(group),
                     "raw+log vs raw: better / worse": f"{better} / {worse}",
                     "mean": f"{vs.mean():+.2%}", "median": f"{vs.median():+.2%}",
                     "sign p": f"{p:.3g}" if better + worse else "",
                     "<= best single: raw": f"{int((group['raw'] <= group.best_single).sum())}/{len(group)}",
                     "raw+log": f"{int((group['raw+log'] <= group.best_single).sum())}/{len(group)}"})
    return pd.DataFrame(rows).set_index("tables")


def main(argv: list[str] | None = None) -> int:
    parser = _offline.parser(__doc__.splitlines()[0])
    parser.add_argument("--top", type=int, default=4, help="raw configurations per family refitted")
    args = parser.parse_args(argv)
    repo, configs = Repository(args.repo), configurations()
    tables = [t for t in PORTFOLIO_TABLES if table_info(t)["task"] == "regression"]
    rows = [r for t in tables if (r := table_row(repo, t, configs, args.top)) is not None]
    frame = pd.DataFrame(rows)
    change = (frame["raw+log"] / frame["raw"] - 1).map("{:+.2%}".format)
    per_table = frame.assign(**{"raw+log vs raw": change})
    text = "\n".join([
        "# Log-target candidates added to the raw ones, offline on the portfolio repository",
        "", "Command: `python -m benchmarks.portfolio.log_target --out benchmarks/results/ "
        f"--top {args.top}` "
        f"(see its docstring). Skipped: {len(tables) - len(frame)} table(s) with a target <= -1. "
        "Test RMSE of the greedy ensemble; sign test over tables (ties dropped).", "",
        markdown(summary(frame)), "", "## Per table", "",
        markdown(per_table.set_index("table").round(4)), ""])
    _offline.write(args.out, "log_target_offline", frame, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
