"""Visual run report: a self-contained HTML page of a fitted ensemble run.

matplotlib is imported only when a report is made; install it with
``pip install 'ensemble_hpo[report]'``.
"""

from ensemble_hpo.report._report import FIGURE_KEYS, make_report

__all__ = ["FIGURE_KEYS", "make_report"]
