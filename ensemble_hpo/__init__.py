"""ensemble_hpo: turn a hyperparameter search into an ensemble.

Search (Optuna) grows a population of cross-validated candidates, greedy
ensemble selection picks a weighted subset from their out-of-fold predictions,
and a fuser combines the members.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["EnsembleClassifier", "EnsembleRegressor", "__version__"]

if TYPE_CHECKING:
    from ensemble_hpo._estimators import EnsembleClassifier, EnsembleRegressor


def __getattr__(name: str) -> Any:
    # Lazy: the CLI's --help, config validation and worker start-up should not pay
    # for importing scikit-learn, Optuna and XGBoost up front.
    if name in ("EnsembleClassifier", "EnsembleRegressor"):
        from ensemble_hpo import _estimators

        return getattr(_estimators, name)
    raise AttributeError(f"module 'ensemble_hpo' has no attribute {name!r}")
