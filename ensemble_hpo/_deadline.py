"""The fit's time budget as one object that travels to every stage.

``fit`` used to turn ``time_budget`` into a search deadline and hope that selection,
fusion, the fusion comparison, refit and the cost measurement fitted into the 5 % left
over. A :class:`Deadline` is created when ``fit`` starts; the search stops starting
candidates at :attr:`Deadline.search_end`, a candidate in flight stops between folds when
its next fold would end past it, the fusion comparison skips the other fusers once
:meth:`Deadline.expired`, and :meth:`Deadline.stage` records the seconds each stage took
(``fit_timings_``), so an overrun can be traced to its stage.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator

__all__ = ["Deadline"]

# Share of ``time_budget`` kept for the stages after the search. Selection and the nested
# estimate of an averaging ensemble took a median 1.03 s, 1.8 % of a 60 s fit, on the
# development suite (benchmarks/results/nested_cost.md); the rest covers the candidate in
# flight when the search deadline passes, which finishes its current fold.
POST_SEARCH_SHARE = 0.05
# Share kept on top for ``final_models="refit"``, which trains every member once more on all
# rows after selection. Estimated on the 60 kept 60 s runs of the portfolio tables
# (benchmarks/results/refit_share.md): median 1.6 %, 90th percentile 3.7 %, above 10 % on 2
# (large tables with slow boosters, whose refit is then skipped with a warning); the 5 %
# above is mostly spent by selection, the accuracy-latency front and the cost measurement.
REFIT_SHARE = 0.10


class Deadline:
    """When a fit must end, when its search must stop, and how long each stage took.

    Parameters
    ----------
    budget : float or None
        Seconds for the whole fit; None means no limit (every time check passes).
    post_search_share : float, default=0.05
        Share of ``budget`` kept for selection, fusion and what follows the search.
    start : float, default=None
        ``time.time()`` at which the budget started; now when None.

    Examples
    --------
    >>> deadline = Deadline(60.0, start=0.0)
    >>> deadline.end, deadline.search_end
    (60.0, 57.0)
    >>> Deadline(None).remaining()
    inf
    """

    def __init__(self, budget: float | None, *, post_search_share: float = POST_SEARCH_SHARE,
                 start: float | None = None) -> None:
        self.budget = budget
        self.post_search_share = post_search_share
        self.start = time.time() if start is None else start
        self.timings: dict[str, float] = {}

    @classmethod
    def for_fit(cls, budget: float | None, final_models: str) -> Deadline:
        """The deadline of a ``fit``: a refit after selection gets its own share of the budget."""
        share = POST_SEARCH_SHARE + (REFIT_SHARE if final_models == "refit" else 0.0)
        return cls(budget, post_search_share=share)

    @property
    def end(self) -> float | None:
        """``time.time()`` by which the whole fit should be done (None without a budget)."""
        return None if self.budget is None else self.start + self.budget

    @property
    def search_end(self) -> float | None:
        """``time.time()`` after which the search starts no candidate."""
        if self.budget is None:
            return None
        return self.start + self.budget * (1.0 - self.post_search_share)

    def remaining(self) -> float:
        """Seconds left of the whole budget (``inf`` without one, never negative)."""
        return math.inf if self.end is None else max(0.0, self.end - time.time())

    def expired(self) -> bool:
        """Whether the whole budget is spent."""
        return self.end is not None and time.time() >= self.end

    def elapsed(self) -> float:
        return time.time() - self.start

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time the block and add its seconds to ``timings[name]``."""
        began = time.time()
        try:
            yield
        finally:
            self.timings[name] = self.timings.get(name, 0.0) + time.time() - began
