"""Speed part of the suite: selection speed, search overhead and parallel scaling.

Usage (from the repository root)::

    python -m benchmarks.suite.speed                # run the three benchmarks, then the index
    python -m benchmarks.suite.speed --report-only  # rebuild the index from their result files

Each benchmark is its own script (it belongs to the issue that set its target) and writes
its own result file; this module runs them one after the other, because timings taken side
by side on 2 cores would disturb each other, and writes ``speed.md``: one section per
benchmark with its command and the summary paragraph of its result file.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results"


@dataclass(frozen=True)
class SpeedBenchmark:
    title: str
    target: str
    script: str
    args: tuple[str, ...]
    result: str

    @property
    def command(self) -> str:
        return " ".join(["python", f"benchmarks/{self.script}", *self.args])


BENCHMARKS = (
    SpeedBenchmark("Selection speed and memory", "vectorised greedy selection vs a per-candidate "
                   "metric loop (issue 4)", "bench_selection_speed.py", (), "selection_speed.md"),
    SpeedBenchmark("Search overhead", "at most 5 % extra wall time over a bare Optuna loop "
                   "calling cross_val_predict, 50 trials (issue 3)", "bench_search_overhead.py",
                   (), "search_overhead.md"),
    SpeedBenchmark("Parallel scaling", "at least 1.6x trials per minute at n_jobs=2 vs 1 on "
                   "2 cores (issue 7)", "bench_parallel.py", ("--n-trials", "30", "--repeats", "3"),
                   "parallel.md"),
)


def summary_of(path: Path) -> str:
    """The result file's verdict paragraph, or else its first table (the headline numbers)."""
    if not path.exists():
        return "(not run yet)"
    paragraphs = [p.strip() for p in path.read_text().split("\n\n") if p.strip()]
    for wanted in ("**Verdict", "|"):
        found = [p for p in paragraphs if p.startswith(wanted)]
        if found:
            return found[0]
    return "(no verdict or table in the result file)"


def run_all(benchmarks: tuple[SpeedBenchmark, ...] = BENCHMARKS) -> None:
    for bench in benchmarks:
        print(f"[{time.strftime('%H:%M:%S')}] {bench.command}", flush=True)
        subprocess.run([sys.executable, str(ROOT / "benchmarks" / bench.script), *bench.args],
                       cwd=ROOT, check=True)


def write_index(out: Path = RESULTS / "speed.md") -> Path:
    parts = ["# Speed benchmarks", "",
             "Built by `python -m benchmarks.suite.speed` (runs the three scripts below one after "
             "the other, then rewrites this index; `--report-only` only rewrites it).", ""]
    for bench in BENCHMARKS:
        parts += [f"## {bench.title}", "", f"Target: {bench.target}.", "",
                  f"Command: `{bench.command}`; full results: [{bench.result}]({bench.result}).",
                  "", summary_of(RESULTS / bench.result), ""]
    out.write_text("\n".join(parts))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--report-only", action="store_true", help="only rebuild speed.md")
    args = parser.parse_args(argv)
    if not args.report_only:
        run_all()
    print(write_index())
    return 0


if __name__ == "__main__":
    sys.exit(main())
