"""Benchmark suite: ensemble_hpo against the tools users would pick instead (issue 9)."""
