"""Choose between selectors by how their ensembles score on rows they were not fitted on."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.base import clone

from .._folds import Folds
from ._base import BaseSelector, BestSingleSelector, Scoring, fold_totals, rows_of
from ._greedy import GreedySelector
from ._library import ensemble_score
from ._validation import check_int


class CrossValidatedSelector(BaseSelector):
    """Pick, among candidate selectors, the one whose ensembles generalise best.

    Greedy selection is fitted on the same out-of-fold rows it is scored on, so
    on small data it can keep members that only fit noise: the ensemble then
    looks better than the best single model on the selection data and is worse
    on new data. This selector guards against that. It splits the rows into
    ``cv`` folds, fits every candidate selector on the other folds, scores the
    resulting weights on the held-out fold, and keeps the candidate with the
    best mean held-out score. Ties go to the earlier candidate, so with the
    default ``(BestSingleSelector(), GreedySelector())`` greedy selection must
    beat the best single model on held-out rows to be used. The winner is then
    refitted on all rows.

    Parameters
    ----------
    selectors : sequence of selectors or None, default=None
        Candidates, simplest first. None means
        ``(BestSingleSelector(), GreedySelector())`` with this selector's
        ``scoring`` and ``random_state``. Candidates are fitted on the class codes
        ``0..n_classes-1``: a label-reading scorer given to them (``pos_label``) must be a
        :class:`~ensemble_hpo.metrics.PredictionScorer` with ``classes``.
    cv : int, default=5
        Number of row folds (stratified for classification; groups passed to ``fit`` stay
        on one side). Fewer where the rows cannot fill them (2 rows per fold, the largest
        class, the number of groups), the rule of every selector that holds rows out;
        ``fit`` raises when not even 2 folds fit.
    scoring : str, callable, PredictionScorer or None, default=None
        Greater-is-better scorer for the held-out comparison (and the default
        candidates). None means neg_log_loss (3-D) or neg RMSE (2-D).
    random_state : int or None, default=None
        Seed of the row folds and of the default greedy candidate.

    Attributes
    ----------
    best_index_ : int
        Position of the chosen candidate.
    best_selector_ : selector
        The chosen candidate, fitted on all rows.
    selectors_ : list of selectors
        Unfitted candidates (clones) in the order they were compared.
    cv_scores_ : ndarray of shape (n_selectors,)
        Mean held-out score per candidate (weighted by fold size, or by the folds'
        weight totals with ``sample_weight``).
    fold_scores_ : ndarray of shape (n_selectors, n_folds)
        Held-out score per candidate and fold.
    weights_, score_, task_, classes_, n_models_
        See :class:`BaseSelector`.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> y = rng.normal(size=300)
    >>> preds = y + rng.normal(scale=[[0.5], [0.6], [2.0]], size=(3, 300))
    >>> sel = CrossValidatedSelector(random_state=0).fit(preds, y)
    >>> type(sel.best_selector_).__name__
    'GreedySelector'
    >>> sel.weights_.round(2)
    array([0.56, 0.42, 0.02])
    """

    def __init__(
        self,
        *,
        selectors: Sequence[BaseSelector] | None = None,
        cv: int = 5,
        scoring: Scoring = None,
        random_state: int | None = None,
    ) -> None:
        self.selectors = selectors
        self.cv = cv
        self.scoring = scoring
        self.random_state = random_state

    def _validate_params(self, task: str | None = None) -> None:
        check_int(self.cv, "cv", 2)
        for candidate in self._candidates():
            if not isinstance(candidate, BaseSelector):
                raise ValueError(
                    "The 'selectors' parameter must hold selector objects (BaseSelector "
                    f"subclasses). Got {candidate!r} instead."
                )
            candidate._validate_params(task)
        super()._validate_params(task)

    def _candidates(self, fitting: bool = False) -> list[BaseSelector]:
        if self.selectors is None:
            # The inner selections fit on the codes 0..k-1: they get the scorer on classes_.
            scoring = self._label_scoring() if fitting else self.scoring
            return [
                BestSingleSelector(scoring=scoring),
                GreedySelector(scoring=scoring, random_state=self.random_state),
            ]
        if isinstance(self.selectors, (str, bytes)) or len(self.selectors) == 0:
            raise ValueError(
                "The 'selectors' parameter must be a non-empty sequence of selectors or None. "
                f"Got {self.selectors!r} instead."
            )
        return [clone(s) if isinstance(s, BaseSelector) else s for s in self.selectors]

    def _splits(self, y: np.ndarray) -> Folds:
        splits = self._held_out_folds(y, self.cv, self.random_state)
        if splits is None:
            raise ValueError(
                "The selection rows must fill at least 2 folds of 2 rows (and 2 groups, or a "
                f"class with 2 rows) to hold rows out. Got {len(y)} rows instead."
            )
        return splits

    def _held_out_score(
        self,
        candidate: BaseSelector,
        predictions: np.ndarray,
        y: np.ndarray,
        sample_weight: np.ndarray | None,
        split: tuple[np.ndarray, np.ndarray],
    ) -> float:
        train, valid = split
        fitted = clone(candidate).fit(predictions[:, train], y[train], rows_of(sample_weight, train))
        metric = self._batch_metric(y[valid], rows_of(sample_weight, valid))
        return ensemble_score(predictions[:, valid], fitted.weights_, metric)

    def _fit(
        self, predictions: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None
    ) -> np.ndarray:
        self.selectors_ = self._candidates(fitting=True)
        splits = self._splits(y)
        self.fold_scores_ = np.array([
            [self._held_out_score(c, predictions, y, sample_weight, split) for split in splits]
            for c in self.selectors_
        ])
        totals = fold_totals(splits, sample_weight)
        self.cv_scores_ = self.fold_scores_ @ (totals / totals.sum())
        # argmax returns the first maximum, so ties keep the simpler (earlier) candidate.
        self.best_index_ = int(np.argmax(np.nan_to_num(self.cv_scores_, nan=-np.inf)))
        self.best_selector_ = clone(self.selectors_[self.best_index_]).fit(
            predictions, y, sample_weight
        )
        return np.asarray(self.best_selector_.weights_, dtype=np.float64)
