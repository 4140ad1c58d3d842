"""A repository of evaluations: many configurations of every built-in family on the 60 tables.

Each configuration is cross-validated with the library's own evaluation path (``fit``'s folds,
preprocessing pipeline and early stopping); its out-of-fold and test-split predictions are kept
outside the repository so that portfolios and ensembles can be simulated without retraining.
See ``benchmarks/portfolio/README.md``.
"""
