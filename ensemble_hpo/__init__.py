"""ensemble_hpo: turn a hyperparameter search into an ensemble.

Search (Optuna) grows a population of cross-validated candidates, greedy
ensemble selection picks a weighted subset from their out-of-fold predictions,
and a fuser combines the members.
"""

from ensemble_hpo._estimators import EnsembleClassifier, EnsembleRegressor

__version__ = "0.1.0"

__all__ = ["EnsembleClassifier", "EnsembleRegressor", "__version__"]
