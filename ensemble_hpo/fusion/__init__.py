"""Fusion stage: combine the predictions of the selected ensemble members.

Member predictions are stacked into one array, ``(n_members, n_samples,
n_classes)`` probabilities for classification or ``(n_members, n_samples)``
for regression; every fuser is fitted on the members' out-of-fold predictions
and fuses new ones with :meth:`BaseFuser.combine`.
"""

from __future__ import annotations

from ._averaging import HardVoting, SoftVoting, WeightedAverage
from ._base import BaseFuser
from ._compare import compare_fusers, default_fusers
from ._optimized import OptimizedWeights
from ._stacking import Stacking

#: The fusion stage's names (name -> class), read by the estimators and the YAML
#: configuration alike; ``ensemble_hpo._resolve.make_fuser`` fills in scoring and seed.
FUSERS: dict[str, type[BaseFuser]] = {
    "average": WeightedAverage,
    "weighted_average": WeightedAverage,
    "soft_voting": SoftVoting,
    "hard_voting": HardVoting,
    "optimized": OptimizedWeights,
    "stacking": Stacking,
}

__all__ = [
    "FUSERS",
    "BaseFuser",
    "WeightedAverage",
    "SoftVoting",
    "HardVoting",
    "OptimizedWeights",
    "Stacking",
    "compare_fusers",
    "default_fusers",
]
