"""Wall time of a time-budgeted fit whose metric has no vectorised selection path.

Selection, the nested estimate and the accuracy-latency front score candidate ensembles with the
user's metric many times; a metric without a vectorised path is called through scikit-learn once
per candidate and greedy step. Measured on breast_cancer, ``time_budget=20``, 2026-12-08, on the
2-core machine while a 60-table benchmark ran beside it (load about 3), separate runs before and
after commit b16a330 (label-only scorers called once per distinct label vector, vectorised binary
average precision, the front's sweep stopped at the deadline):

=================  ===============  ==============
scoring            before (wall s)  after (wall s)
=================  ===============  ==============
neg_log_loss       21.1             (unchanged)
f1                 120.3            22.6
average_precision  71.5             25.0
precision_macro    --               26.5
=================  ===============  ==============

Run: ``python -m benchmarks.bench_generic_scoring_time f1 average_precision``.
"""

from __future__ import annotations

import sys
import time

from sklearn.datasets import load_breast_cancer

from ensemble_hpo import EnsembleClassifier


def main(scorings: list[str]) -> None:
    X, y = load_breast_cancer(return_X_y=True)
    for scoring in scorings:
        start = time.time()
        model = EnsembleClassifier(time_budget=20, random_state=0, scoring=scoring).fit(X, y)
        stages = {k: round(v, 1) for k, v in model.fit_timings_.items()}
        print(f"{scoring}: wall {time.time() - start:.1f} s, {len(model.leaderboard_)} candidates, "
              f"stages {stages}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:] or ["neg_log_loss", "f1", "average_precision"])
