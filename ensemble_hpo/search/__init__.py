"""Search stage: strategies (Optuna samplers) that grow the candidate population."""

from ensemble_hpo.search._genetic import GeneticSampler
from ensemble_hpo.search._grid import GridSampler, expand_grid, grid_size
from ensemble_hpo.search._hypergradient import (
    HypergradientResult,
    hypergradient_search,
    sklearn_param_from_log_lambda,
    validation_loss_and_grad,
)
from ensemble_hpo.search._objective import CandidateObjective
from ensemble_hpo.search._pso import PSOSampler
from ensemble_hpo.search._run import SearchRun
from ensemble_hpo.search._strategy import (
    STRATEGIES,
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
from ensemble_hpo.search._trial_value import TRIAL_VALUES, CandidateScore, EnsembleGain, TrialValue

__all__ = [
    "BayesianSearch",
    "CandidateScore",
    "EnsembleGain",
    "TRIAL_VALUES",
    "TrialValue",
    "CandidateObjective",
    "EvolutionarySearch",
    "GeneticSampler",
    "GradientSearch",
    "GridSampler",
    "GridSearch",
    "HypergradientResult",
    "PSOSampler",
    "RandomSearch",
    "SamplerStrategy",
    "SearchContext",
    "SearchRun",
    "SearchStrategy",
    "expand_grid",
    "grid_size",
    "hypergradient_search",
    "STRATEGIES",
    "make_strategy",
    "sklearn_param_from_log_lambda",
    "validation_loss_and_grad",
]
