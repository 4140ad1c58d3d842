"""Broad evidence: ensemble_hpo against its own best single candidate on 60 real tables."""
