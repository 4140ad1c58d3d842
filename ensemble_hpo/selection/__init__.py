"""Ensemble selection: choose weights for a library of out-of-fold predictions.

:class:`GreedySelector` implements Caruana-style forward selection with
replacement (sorted initialisation, bagging, pruning, trimming, member cap and
a diversity penalty); :class:`CostAwareSelector` charges each member its prediction cost;
:class:`BestSingleSelector` and
:class:`UniformTopKSelector` are baselines; :class:`GuardedGreedySelector` keeps a
small greedy gain only when it holds on held-out rows; :class:`CrossValidatedSelector` keeps
whichever of several selectors scores best on rows it was not fitted on (greedy only
when it beats the best single model there); :func:`diversity_report` summarises how
different the chosen members are.
"""

from __future__ import annotations

from ._base import BaseSelector, BestSingleSelector, UniformTopKSelector
from ._cost_aware import CostAwareSelector
from ._crossval import CrossValidatedSelector
from ._diversity import diversity_report
from ._greedy import GreedySelector
from ._guarded import GuardedGreedySelector

#: The selection stage's names (name -> class), read by the estimators and the YAML
#: configuration alike; ``ensemble_hpo._resolve.make_selector`` fills in scoring and seed.
SELECTORS: dict[str, type[BaseSelector]] = {
    "greedy": GreedySelector,
    "caruana": GreedySelector,
    "greedy_cv": CrossValidatedSelector,
    "greedy_guarded": GuardedGreedySelector,
    "best": BestSingleSelector,
}

__all__ = [
    "SELECTORS",
    "BaseSelector",
    "BestSingleSelector",
    "CostAwareSelector",
    "CrossValidatedSelector",
    "GreedySelector",
    "GuardedGreedySelector",
    "UniformTopKSelector",
    "diversity_report",
]
