"""The fitted ensemble and what deploys it: export to scikit-learn, prediction cost, trimming.

:class:`Ensemble` holds the selected members (their fold models or one refit model each)
and the fitted fuser. :func:`to_sklearn` turns it into a scikit-learn VotingClassifier /
VotingRegressor / Stacking* object or a :class:`FittedEnsembleModel`;
:func:`prediction_cost` times it per row; :func:`trim_ensemble` shrinks it to a member cap
or a latency budget. The fusers describe themselves (``sklearn_export``,
``learns_from_predictions``), so nothing here dispatches on concrete fuser classes.
"""

from __future__ import annotations

from ._cost import prediction_cost, trim_ensemble
from ._export import FittedEnsembleModel, FoldAverage, LogRatioFeatures, to_sklearn
from ._fitted import Ensemble, Member, members_from_weights

__all__ = [
    "Ensemble",
    "FittedEnsembleModel",
    "FoldAverage",
    "LogRatioFeatures",
    "Member",
    "members_from_weights",
    "prediction_cost",
    "to_sklearn",
    "trim_ensemble",
]
