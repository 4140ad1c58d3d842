"""Search stage: strategies (Optuna samplers) that grow the candidate population."""

from ensemble_hpo.search._objective import CandidateObjective
from ensemble_hpo.search._run import SearchRun
from ensemble_hpo.search._strategy import (
    BayesianSearch,
    EvolutionarySearch,
    GradientSearch,
    GridSearch,
    RandomSearch,
    SamplerStrategy,
    SearchContext,
    SearchStrategy,
    make_strategy,
)

__all__ = [
    "BayesianSearch",
    "CandidateObjective",
    "EvolutionarySearch",
    "GradientSearch",
    "GridSearch",
    "RandomSearch",
    "SamplerStrategy",
    "SearchContext",
    "SearchRun",
    "SearchStrategy",
    "make_strategy",
]
