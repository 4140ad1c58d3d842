"""Lazy matplotlib access: figures are built without pyplot, so no global figure state."""

from __future__ import annotations

import io
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["family_colors", "new_figure", "png_bytes", "require_matplotlib"]

_INSTALL_HINT = "pip install 'ensemble_hpo[report]'"
_DPI = 100


def require_matplotlib() -> None:
    """Raise an ImportError naming the install command when matplotlib is missing."""
    try:
        import matplotlib.figure  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            "The run report needs matplotlib, which is not installed. "
            f"Install it with: {_INSTALL_HINT}"
        ) from exc


def new_figure(
    width: float, height: float, *, ncols: int = 1, nrows: int = 1
) -> tuple[Figure, Any]:
    """A standalone Figure (Agg rendering, never registered with pyplot) and its axes."""
    require_matplotlib()
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=_DPI, layout="constrained")
    axes = fig.subplots(nrows=nrows, ncols=ncols, squeeze=False)
    return fig, axes


def png_bytes(fig: Figure) -> bytes:
    """Render ``fig`` to PNG bytes with the Agg canvas."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=_DPI, facecolor="white")
    return buffer.getvalue()


def family_colors(families: Iterable[str | None]) -> dict[str, Any]:
    """One stable colour per family name (sorted order), shared by every figure."""
    require_matplotlib()
    from matplotlib import colormaps

    names = sorted({str(f) for f in families})
    cmap = colormaps["tab10" if len(names) <= 10 else "tab20"]
    return {name: cmap(i % cmap.N) for i, name in enumerate(names)}
