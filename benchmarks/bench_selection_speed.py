"""Speed and memory of GreedySelector against a straightforward per-candidate loop.

Run from the repository root::

    python benchmarks/bench_selection_speed.py

Writes ``benchmarks/results/selection_speed.md``. Predictions are synthetic but
realistic: every model sees a noisy version of a true logit signal (model
quality and noise correlation vary), stored as float32 probabilities.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.metrics import log_loss

from ensemble_hpo.selection import GreedySelector

RESULTS = Path(__file__).parent / "results" / "selection_speed.md"


def synthetic_library(
    n_models: int, n_samples: int, n_classes: int = 2, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Float32 probabilities (n_models, n_samples, n_classes) from noisy logits, built in chunks."""
    rng = np.random.default_rng(seed)
    signal = rng.normal(size=(n_samples, n_classes)) * 1.5
    y = np.argmax(signal + rng.gumbel(size=signal.shape), axis=1)
    shared = rng.normal(size=(4, n_samples, n_classes))  # groups of models share error
    out = np.empty((n_models, n_samples, n_classes), dtype=np.float32)
    step = max(1, 4_000_000 // (n_samples * n_classes))
    for start in range(0, n_models, step):
        m = min(step, n_models - start)
        quality = rng.uniform(0.3, 1.2, size=(m, 1, 1))
        noise = rng.normal(size=(m, n_samples, n_classes)) + shared[rng.integers(0, 4, m)]
        logits = quality * signal + rng.uniform(0.5, 1.5, size=(m, 1, 1)) * noise
        logits -= logits.max(axis=2, keepdims=True)
        p = np.exp(logits)
        out[start : start + m] = p / p.sum(axis=2, keepdims=True)
    return out, y


def naive_selection(predictions: np.ndarray, y: np.ndarray, max_iter: int) -> np.ndarray:
    """What many AutoML systems do: one sklearn log_loss call per candidate per iteration."""
    labels = np.arange(predictions.shape[2])
    current = np.zeros(predictions.shape[1:])
    order = []
    # float32 rows sum to 1 only up to float32 rounding, which sklearn warns about.
    warnings.filterwarnings("ignore", message="The y_prob values do not sum to one")
    for it in range(max_iter):
        scores = [
            -log_loss(y, (current + predictions[j]) / (it + 1), labels=labels)
            for j in range(len(predictions))
        ]
        best = int(np.argmax(scores))
        current += predictions[best]
        order.append(best)
    return np.asarray(order)


def fast_selection(predictions: np.ndarray, y: np.ndarray, max_iter: int) -> GreedySelector:
    return GreedySelector(max_iter=max_iter).fit(predictions, y)


def timed(fn, *args, repeat: int = 1) -> tuple[float, object]:
    """Best wall time of ``repeat`` runs (the machine is shared) and the last result."""
    best = np.inf
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn(*args)
        best = min(best, time.perf_counter() - start)
    return best, result


def versus_naive(n_models: int, n_samples: int, max_iter: int) -> str:
    preds, y = synthetic_library(n_models, n_samples)
    t_fast, sel = timed(fast_selection, preds, y, max_iter, repeat=3)
    t_naive, order = timed(naive_selection, preds, y, max_iter)
    assert np.array_equal(sel.order_, order), (sel.order_, order)
    return (
        f"| {n_models} x {n_samples} x 2, {max_iter} iterations | {t_naive:.1f} s | "
        f"{t_fast:.2f} s | {t_naive / t_fast:.0f}x | identical ({len(set(order))} distinct) |"
    )


def scaling_rows() -> list[str]:
    base = {"n_models": 300, "n_samples": 20_000, "n_classes": 2, "max_iter": 50}
    grid = [("n_models", [100, 300, 1000]), ("n_samples", [5_000, 20_000, 80_000]),
            ("n_classes", [2, 5, 10]), ("max_iter", [25, 50, 100])]
    rows = []
    for name, values in grid:
        for value in values:
            cfg = {**base, name: value}
            preds, y = synthetic_library(cfg["n_models"], cfg["n_samples"], cfg["n_classes"])
            seconds, _ = timed(fast_selection, preds, y, cfg["max_iter"], repeat=3)
            rows.append(
                f"| {name} | {cfg['n_models']} | {cfg['n_samples']} | {cfg['n_classes']} | "
                f"{cfg['max_iter']} | {seconds:.2f} |"
            )
    return rows


def memory_child(n_models: int, n_samples: int, max_iter: int) -> None:
    """Runs in a fresh process: build the library, fit, print RSS figures as JSON."""
    preds, y = synthetic_library(n_models, n_samples)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    seconds, sel = timed(fast_selection, preds, y, max_iter)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"array_bytes": preds.nbytes, "peak_before_fit": before, "peak": peak,
                      "seconds": seconds, "distinct": int(np.count_nonzero(sel.weights_))}))


def memory_row(n_models: int, n_samples: int, max_iter: int) -> str:
    cmd = [sys.executable, __file__, "--memory-child", str(n_models), str(n_samples),
           str(max_iter)]
    out = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    gb = 1024**3
    return (
        f"| {n_models} x {n_samples} x 2 float32 | {out['array_bytes'] / gb:.2f} GB | "
        f"{out['peak_before_fit'] / gb:.2f} GB | {out['peak'] / gb:.2f} GB | "
        f"{out['peak'] / out['array_bytes']:.2f}x | {max_iter} | {out['seconds']:.0f} s |"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--memory-child", nargs=3, type=int)
    args = parser.parse_args()
    if args.memory_child:
        memory_child(*args.memory_child)
        return
    lines = [
        "# GreedySelector speed and memory",
        "",
        "Command: `python benchmarks/bench_selection_speed.py` (2 cores, shared with other",
        "jobs, so absolute times are noisy; GreedySelector times are the best of 3 runs).",
        "",
        "## Against a per-candidate sklearn `log_loss` loop (binary, float32)",
        "",
        "| library | naive loop | GreedySelector | speed-up | chosen members |",
        "|---|---|---|---|---|",
        versus_naive(300, 20_000, 50),
        "",
        "## Scaling (fast path, log loss, one factor varied at a time, best of 3 runs)",
        "",
        "| varied | n_models | n_samples | n_classes | max_iter | seconds |",
        "|---|---|---|---|---|---|",
        *scaling_rows(),
        "",
        "## Peak memory (fresh subprocess, `ru_maxrss`)",
        "",
        "| library | array | peak RSS after building it | peak RSS after fit | peak / array "
        "| max_iter | fit time |",
        "|---|---|---|---|---|---|---|",
        memory_row(2000, 100_000, 10),
    ]
    text = "\n".join(lines) + "\n"
    RESULTS.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
