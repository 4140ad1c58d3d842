"""Fusers that take a fixed weighted combination of the members."""

from __future__ import annotations

import numpy as np

from .._checks import CLASSIFICATION
from ._base import BaseFuser

__all__ = ["WeightedAverage", "SoftVoting", "HardVoting"]

# Vote shares within this distance of the row maximum count as tied: summing
# float weights in different orders must not decide a tie.
_TIE_TOLERANCE = 1e-12


def weighted_mean(predictions: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted sum over the member axis (weights assumed to sum to one)."""
    return np.tensordot(weights, predictions, axes=1)


def nonzero_uniform(weights: np.ndarray) -> np.ndarray:
    """Equal weight for every member whose selection weight is positive."""
    chosen = (weights > 0).astype(np.float64)
    return chosen / chosen.sum()


class _FixedWeightFuser(BaseFuser):
    """Fuser whose ``weights_`` are derived from the selection weights alone."""

    learns_from_predictions = False
    sklearn_export = "soft"

    def _fit(self, predictions, y, weights, X, sample_weight) -> None:
        self.weights_ = self._member_weights(weights)

    def _member_weights(self, weights: np.ndarray) -> np.ndarray:
        return weights

    def _combine(self, predictions: np.ndarray, X: np.ndarray | None) -> np.ndarray:
        return weighted_mean(predictions, self.weights_)


class WeightedAverage(_FixedWeightFuser):
    """Average of member predictions weighted by the selection weights.

    The project default: with greedy ensemble selection the weights are the
    selection counts, so this reproduces the selected ensemble exactly.

    Attributes
    ----------
    weights_ : ndarray of shape (n_members,)
        Selection weights normalised to sum to one (uniform if none were given).

    Examples
    --------
    >>> import numpy as np
    >>> P = np.array([[[0.9, 0.1], [0.2, 0.8]], [[0.5, 0.5], [0.4, 0.6]]])
    >>> fuser = WeightedAverage().fit(P, np.array([0, 1]), weights=[3, 1])
    >>> fuser.combine(P).round(2)
    array([[0.8 , 0.2 ],
           [0.25, 0.75]])
    """

    def __init__(self) -> None:
        pass


class SoftVoting(_FixedWeightFuser):
    """Unweighted average of the members that have a positive selection weight.

    Attributes
    ----------
    weights_ : ndarray of shape (n_members,)
        ``1 / n_selected`` for selected members, 0 for the others.

    Examples
    --------
    >>> import numpy as np
    >>> P = np.array([[[0.9, 0.1]], [[0.5, 0.5]], [[0.0, 1.0]]])
    >>> SoftVoting().fit(P, np.array([0]), weights=[3, 1, 0]).combine(P)
    array([[0.7, 0.3]])
    """

    def __init__(self) -> None:
        pass

    def _member_weights(self, weights: np.ndarray) -> np.ndarray:
        return nonzero_uniform(weights)


class HardVoting(_FixedWeightFuser):
    """Each member votes for its most probable class; output the vote shares.

    Classification only. A member whose own probabilities tie votes for the
    lowest tied class index. Vote shares that tie across members are made
    exactly equal, so taking the ``argmax`` of :meth:`combine` (as any
    ``predict`` does) breaks the tie deterministically towards the **lowest
    class index**.

    Parameters
    ----------
    weighted : bool, default=True
        Weight each vote by the member's selection weight; if False every
        member with a positive selection weight has one vote.

    Attributes
    ----------
    weights_ : ndarray of shape (n_members,)
        Vote weight of every member (sums to one).

    Examples
    --------
    >>> import numpy as np
    >>> P = np.array([[[0.6, 0.4]], [[0.3, 0.7]], [[0.2, 0.8]]])
    >>> HardVoting().fit(P, np.array([1]), weights=[2, 1, 1]).combine(P)
    array([[0.5, 0.5]])
    """

    sklearn_export = "hard"

    def __init__(self, *, weighted: bool = True) -> None:
        self.weighted = weighted

    def _check_params(self, task: str) -> None:
        if task != CLASSIFICATION:
            raise ValueError(
                "HardVoting supports classification only (3-D class probabilities). Got a "
                f"{task} task (2-D predictions) instead."
            )
        if not isinstance(self.weighted, (bool, np.bool_)):
            raise ValueError(
                f"The 'weighted' parameter must be a bool. Got {self.weighted!r} instead."
            )

    def _member_weights(self, weights: np.ndarray) -> np.ndarray:
        return weights if self.weighted else nonzero_uniform(weights)

    def _combine(self, predictions: np.ndarray, X: np.ndarray | None) -> np.ndarray:
        n_classes = predictions.shape[2]
        one_hot = np.eye(n_classes)[np.argmax(predictions, axis=2)]
        return equalize_ties(weighted_mean(one_hot, self.weights_))


def equalize_ties(shares: np.ndarray) -> np.ndarray:
    """Replace near-tied row maxima by their exact mean (row sums are preserved)."""
    tied = shares >= shares.max(axis=1, keepdims=True) - _TIE_TOLERANCE
    tied_mean = (shares * tied).sum(axis=1, keepdims=True) / tied.sum(axis=1, keepdims=True)
    return np.where(tied, tied_mean, shares)
