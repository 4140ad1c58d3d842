"""One configuration on one table, through the library's own cross-validation path.

Per table, ``ensemble_hpo._fit_plan.FitPlan.build`` (private; what ``fit`` runs before its search) builds the
``CandidateEvaluator`` (fit's folds from ``make_folds`` with the default ``cv=5`` and
``random_state=0``, the default scorer, one BLAS/OpenMP thread) and the ``PipelineBuilder``
(family preprocessing + estimator, early stopping included). A configuration is then
``builder(family, params, seed)`` evaluated by ``CandidateEvaluator.evaluate`` in a killable
child process (``ensemble_hpo.population._isolation.call_with_timeout``, private), which also
predicts the test rows with the average of the five fold models (what ``fit``'s default
``final_models="folds"`` does at predict time; ``ensemble_hpo.ensemble.Member.predict``).

Time caps: ``cpu_limit`` CPU seconds for the child (``RLIMIT_CPU``; a cap in CPU time, not wall
time, because this run is niced beside another benchmark and wall times are inflated by
contention), and ``wall_limit`` wall seconds as a backstop.
"""

from __future__ import annotations

import hashlib
import os
import resource
import signal
import time
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

STATUS_OK, STATUS_TIMEOUT, STATUS_FAILED = "ok", "timeout", "failed"

#: Modules the fork server imports once, so a child does not re-import them per evaluation.
PRELOAD = [
    "benchmarks.portfolio._evaluate", "ensemble_hpo.population._evaluate", "ensemble_hpo.ensemble._fitted",
    "ensemble_hpo._preprocessing", "ensemble_hpo.spaces", "sklearn.ensemble", "sklearn.linear_model",
    "sklearn.neighbors", "sklearn.svm", "sklearn.calibration", "sklearn.neural_network",
    "sklearn.pipeline", "xgboost", "lightgbm", "catboost",
]


class CpuLimitExceeded(RuntimeError):
    """The child used more CPU seconds than its cap."""


@dataclass
class TableSetup:
    """A table's split and the library objects ``fit`` would build on its training rows."""

    name: str
    task: str
    n_classes: int | None          # the split's classes (columns of stored probabilities)
    lib_classes: np.ndarray | None  # split labels the library's encoder saw in y_train
    evaluator: Any                 # ensemble_hpo CandidateEvaluator
    builder: Any                   # ensemble_hpo.population.PipelineBuilder
    X_test: Any                    # validated like predict-time data
    y_train: np.ndarray            # split encoding (0..n_classes-1) or float
    y_test: np.ndarray
    fold: np.ndarray               # fold index of each training row
    data_hash: str


def frame_hash(*frames: Any) -> str:
    digest = hashlib.sha1()
    for frame in frames:
        if isinstance(frame, pd.DataFrame):
            digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
            digest.update(",".join(map(str, frame.columns)).encode())
        else:
            digest.update(np.ascontiguousarray(frame).tobytes())
    return digest.hexdigest()[:16]


def setup_table(name: str, seed: int = 0) -> TableSetup:
    """Load the seed's split and build fit's evaluator and pipeline builder for it."""
    from benchmarks.tables._data import load_table_split
    from ensemble_hpo import EnsembleClassifier, EnsembleRegressor
    from ensemble_hpo._deadline import Deadline
    from ensemble_hpo._fit_plan import FitPlan
    from ensemble_hpo._validation import validate_predict_data

    split = load_table_split(name, seed)
    cls = EnsembleClassifier if split.task == "classification" else EnsembleRegressor
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # rare-class warnings of tiny tables
        setup = FitPlan.build(cls(random_state=0).get_params(), split.task, split.X_train,
                              split.y_train, sample_weight=None, groups=None,
                              deadline=Deadline(None))
    evaluator = setup.evaluator
    fold = np.full(len(split.y_train), -1, dtype=np.int8)
    for k, (_, valid) in enumerate(evaluator.splits):
        fold[valid] = k
    return TableSetup(
        name=name, task=split.task, n_classes=split.n_classes,
        lib_classes=None if setup.classes is None else np.asarray(setup.classes, dtype=np.int64),
        evaluator=evaluator, builder=setup.builder,
        X_test=validate_predict_data(split.X_test, setup.info),
        y_train=np.asarray(split.y_train), y_test=np.asarray(split.y_test), fold=fold,
        data_hash=frame_hash(split.X_train, split.X_test, split.y_train, split.y_test),
    )


def _on_sigxcpu(signum: int, frame: Any) -> None:
    raise CpuLimitExceeded("the candidate exceeded its CPU time limit")


def child_evaluate(evaluator: Any, estimator: Any, X_test: Any, cpu_limit: float | None) -> dict:
    """Runs in the child: cross-validate, then predict the test rows with the fold models."""
    from threadpoolctl import threadpool_limits

    from ensemble_hpo.ensemble import Member

    if cpu_limit:
        soft = int(np.ceil(cpu_limit))
        # SIGXCPU at the soft limit (raised as an exception between bytecodes); a native call
        # that does not return is killed at the hard limit.
        signal.signal(signal.SIGXCPU, _on_sigxcpu)
        resource.setrlimit(resource.RLIMIT_CPU, (soft, soft + 15))
    cpu0 = time.process_time()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = evaluator.evaluate(estimator)
            t0 = time.perf_counter()
            with threadpool_limits(limits=1):
                member = Member(number=0, family="", params={}, weight=1.0, models=result.models)
                test = member.predict(X_test, evaluator.task, evaluator.n_classes)
            predict_seconds = time.perf_counter() - t0
    except BaseException as exc:
        # CatBoost turns a Python exception raised by a signal handler during its training
        # loop into KeyboardInterrupt: past the CPU limit, any exception is the limit's.
        if cpu_limit and time.process_time() >= int(np.ceil(cpu_limit)) - 0.5:
            raise CpuLimitExceeded(f"the candidate exceeded its CPU time limit "
                                   f"({type(exc).__name__} at {time.process_time():.1f}s)") from None
        if isinstance(exc, KeyboardInterrupt):
            # Nobody interrupts this child but a library's own signal handling; re-raised in
            # the parent it stopped the whole run twice (14:49 and 15:24 on 2026-12-04).
            raise RuntimeError("KeyboardInterrupt inside the candidate's training") from None
        raise
    if not np.all(np.isfinite(test)):
        raise RuntimeError("the fold models predicted NaN or infinite values on the test rows")
    categories = sorted({w.category.__name__ for w in caught})
    return {
        "oof": result.predictions.astype(np.float32), "test": np.asarray(test, dtype=np.float32),
        "fold_scores": [float(s) for s in result.fold_scores], "fit_seconds": float(result.fit_time),
        "predict_seconds": float(predict_seconds), "cpu_seconds": time.process_time() - cpu0,
        "warnings": ";".join(categories),
    }


def start_fork_server() -> None:
    """Start the fork server ``call_with_timeout`` uses, with our heavier preload list.

    ``call_with_timeout`` sets its own (lighter) preload before every call, which only takes
    effect if the server is not running yet; started here first, ours stays.
    """
    import multiprocessing
    from multiprocessing import forkserver

    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(PRELOAD)
    forkserver.ensure_running()


def _expand(pred: np.ndarray, table: TableSetup) -> np.ndarray:
    """Probabilities in the split's class columns (a class missing from y_train gets 0)."""
    if table.task != "classification" or pred.shape[-1] == table.n_classes:
        return pred
    out = np.zeros(pred.shape[:-1] + (table.n_classes,), dtype=pred.dtype)
    out[..., table.lib_classes] = pred
    return out


def evaluate_config(table: TableSetup, config: dict, *, cpu_limit: float | None,
                    wall_limit: float) -> tuple[dict, np.ndarray | None, np.ndarray | None]:
    """Evaluate one configuration; returns ``(record, oof, test)`` (arrays None unless ok)."""
    from ensemble_hpo.population import CandidateFailed, CandidateTimeout
    from ensemble_hpo.population._isolation import call_with_timeout
    from ensemble_hpo.spaces import get_family

    record: dict[str, Any] = {"config_id": config["id"], "family": config["family"],
                              "rank": config["rank"], "load1": round(os.getloadavg()[0], 2)}
    start = time.perf_counter()
    oof = test = None
    try:
        family = get_family(config["family"])
        estimator = table.builder(family, dict(config["params"]), config["seed"])
        out = call_with_timeout(child_evaluate, table.evaluator, estimator, table.X_test, cpu_limit,
                                timeout=wall_limit)
    except CpuLimitExceeded as exc:
        record.update(status=STATUS_TIMEOUT, error=f"cpu>{cpu_limit:g}s: {exc}")
    except CandidateTimeout as exc:
        record.update(status=STATUS_TIMEOUT, error=f"wall>{wall_limit:g}s: {exc}")
    except CandidateFailed as exc:
        # Killed at the hard CPU limit (SIGKILL) or by SIGXCPU's default action.
        killed = "exit code -9" in str(exc) or "exit code -24" in str(exc)
        record.update(status=STATUS_TIMEOUT if killed and cpu_limit else STATUS_FAILED,
                      error=(f"cpu>{cpu_limit:g}s (killed): " if killed and cpu_limit else "") + str(exc))
    except Exception as exc:  # noqa: BLE001 - any failure of a candidate is recorded
        record.update(status=STATUS_FAILED, error=f"{type(exc).__name__}: {exc}")
    else:
        oof, test = _expand(out.pop("oof"), table), _expand(out.pop("test"), table)
        scorer = table.evaluator.scorer
        record.update(
            status=STATUS_OK,
            # Both losses from the stored float32 arrays and the library's default scorer
            # (log loss / RMSE), so they can be recomputed from the repository exactly.
            oof_loss=-scorer(table.y_train, oof), test_loss=-scorer(table.y_test, test),
            fold_losses=[-s for s in out.pop("fold_scores")], **out)
    record["wall_seconds"] = time.perf_counter() - start
    record["finished_utc"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    if "error" in record:
        record["error"] = record["error"][:500]
    return record, oof, test
