"""The candidate population: records, out-of-fold predictions, fold models and their storage."""

from ensemble_hpo.population._builder import PipelineBuilder
from ensemble_hpo.population._evaluate import (
    CandidateEvaluator,
    CandidateFailed,
    CandidateTimeout,
    EvaluationResult,
    fit_routing,
)
from ensemble_hpo.population._population import (
    IDENTITY_ATTR,
    STATUS_OK,
    STATUS_SKIPPED,
    Candidate,
    Population,
    candidate_score,
)
from ensemble_hpo.population._store import ArtifactStore, FileArtifactStore, MemoryArtifactStore

__all__ = [
    "STATUS_OK",
    "IDENTITY_ATTR",
    "STATUS_SKIPPED",
    "ArtifactStore",
    "Candidate",
    "candidate_score",
    "CandidateEvaluator",
    "CandidateFailed",
    "CandidateTimeout",
    "EvaluationResult",
    "FileArtifactStore",
    "MemoryArtifactStore",
    "PipelineBuilder",
    "Population",
    "fit_routing",
]
