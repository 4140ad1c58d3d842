"""How far each family's out-of-fold score carries over to the suite's test rows.

Greedy selection trusts out-of-fold (OOF) scores. Where a family's test loss is much
worse than its OOF loss, members of that family help the OOF ensemble and hurt on test
(breast_cancer and diabetes in the suite). This script scores every kept candidate of
suite runs kept with ``SUITE_KEEP_RUNS=<folder>`` on the test rows, and reports per run
and family the best-OOF candidate's OOF loss, its test loss and their ratio::

    python benchmarks/bench_oof_vs_test.py /tmp/suite_runs_300 --runs breast_cancer_s0 diabetes_s0

Writes ``benchmarks/results/oof_vs_test.md``.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._markdown import markdown  # noqa: E402
from benchmarks.suite._metrics import primary_loss, score_predictions  # noqa: E402
from benchmarks.suite._systems import KEPT_FIT, kept_runs, load_kept_run  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "oof_vs_test.md"


def family_gaps(model, split) -> pd.DataFrame:
    """Per family of a fitted run_dir estimator: its best-OOF candidate's OOF and test loss.

    Columns ``family``, ``candidates`` (finished ones), ``number`` (the best-OOF candidate),
    ``oof_loss``, ``test_loss`` (primary metric on ``split``'s test rows) and ``ratio``
    (test / OOF). Used here and by ``benchmarks/tables/run.py``.
    """
    board = model.leaderboard_
    board = board[board["status"] == "ok"]
    rows = []
    for family, group in board.groupby("family"):
        best = group.loc[group["score"].idxmax()]
        test = score_predictions(split.task, split.y_test,
                                 model.predict_candidate(split.X_test, int(best["number"])),
                                 split.n_classes)
        oof_loss, test_loss = -float(best["score"]), primary_loss(split.task, test)
        rows.append({"family": family, "candidates": len(group), "number": int(best["number"]),
                     "oof_loss": oof_loss, "test_loss": test_loss,
                     "ratio": test_loss / oof_loss})
    return pd.DataFrame(rows, columns=["family", "candidates", "number", "oof_loss",
                                       "test_loss", "ratio"])


def family_rows(path: Path) -> pd.DataFrame:
    """Best-OOF candidate per family of one kept run, with its test loss."""
    model, split = load_kept_run(path)
    gaps = family_gaps(model, split)
    return pd.DataFrame({"run / family": [f"{path.name} / {f}" for f in gaps["family"]],
                         "candidates": gaps["candidates"], "best OOF loss": gaps["oof_loss"],
                         "its test loss": gaps["test_loss"], "test / OOF": gaps["ratio"]})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, help="folder given to SUITE_KEEP_RUNS")
    parser.add_argument("--runs", dest="names", nargs="*", default=None,
                        help="run folder names (default: every kept run)")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    paths = [p for p in kept_runs(args.runs) if args.names is None or p.name in args.names]
    if not paths:
        parser.error(f"no kept run (a folder with {KEPT_FIT}) matches in {args.runs}")
    table = pd.concat([family_rows(p) for p in paths], ignore_index=True).set_index("run / family")
    command = "python benchmarks/bench_oof_vs_test.py " + " ".join(sys.argv[1:] if argv is None else argv)
    text = "\n".join([
        "# Out-of-fold vs test loss per family (suite runs)", "",
        f"Command: `{command}`.", "",
        "Per kept suite run and family: the candidate with the best OOF score, its OOF loss "
        "(log loss / RMSE), its loss on the suite's test rows, and their ratio. Families with a "
        "ratio well above the best family's help the OOF ensemble more than the test one.", "",
        markdown(table, "{:.4f}"), ""])
    args.output.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
