"""Fit AutoGluon-Tabular in its own interpreter: ``python -m ... DIR TASK N_CLASSES BUDGET SEED [PRESETS]``.

Reads ``DIR/train.pkl`` (target column ``__target__``) and ``DIR/test.pkl``; writes
``DIR/pred.npy`` and ``DIR/meta.json``. Exit code 3 means AutoGluon is not installed.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd


def main(argv: list[str]) -> int:
    folder, task, n_classes, budget, seed = argv[:5]
    presets = argv[5] if len(argv) > 5 else "medium_quality"
    try:
        from autogluon.tabular import TabularPredictor
    except ImportError as exc:
        print(f"autogluon not installed: {exc}", file=sys.stderr)
        return 3
    root = Path(folder)
    train = pd.DataFrame(pd.read_pickle(root / "train.pkl"))
    test = pd.DataFrame(pd.read_pickle(root / "test.pkl"))
    k = int(n_classes)
    if task == "classification":
        problem, metric = ("binary" if k == 2 else "multiclass"), "log_loss"
    else:
        problem, metric = "regression", "root_mean_squared_error"
    np.random.seed(int(seed))
    predictor = TabularPredictor(label="__target__", problem_type=problem, eval_metric=metric,
                                 path=str(root / "ag"), verbosity=0)
    start = time.time()
    threads = int(os.environ.get("SUITE_THREADS", "0")) or "auto"
    predictor.fit(train, time_limit=float(budget), presets=presets, num_cpus=threads)
    fit_time = time.time() - start
    if task == "classification":
        proba = predictor.predict_proba(test)
        pred = np.column_stack([proba[c].to_numpy() if c in proba.columns else np.zeros(len(test))
                                for c in range(k)])
    else:
        pred = predictor.predict(test).to_numpy()
    np.save(root / "pred.npy", pred)
    board = predictor.leaderboard(silent=True)
    meta = {"fit_time": fit_time, "n_models": len(board), "best": str(predictor.model_best),
            "presets": presets}
    (root / "meta.json").write_text(json.dumps(meta))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
