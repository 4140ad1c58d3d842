"""Self-contained HTML: inline CSS, figures as base64 PNG data URIs, nothing fetched."""

from __future__ import annotations

import base64
import html
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

__all__ = ["Section", "leaderboard_table", "render_page"]

_CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 0;
       background: #f6f7f9; color: #222; }
main { max-width: 1100px; margin: 0 auto; padding: 24px; }
h1 { margin-top: 0; }
section { background: #fff; border: 1px solid #dde1e6; border-radius: 6px; padding: 16px 20px;
          margin-bottom: 20px; }
h2 { margin: 0 0 6px 0; font-size: 1.25em; }
p.how { color: #555; margin: 0 0 12px 0; }
p.note { background: #fff8e1; border-left: 4px solid #f0b400; padding: 6px 10px; }
img { max-width: 100%; height: auto; display: block; margin: 8px 0; }
table { border-collapse: collapse; font-size: 0.85em; width: 100%; }
th, td { border-bottom: 1px solid #e3e6ea; padding: 4px 6px; text-align: left;
         vertical-align: top; }
th { background: #eef1f4; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.params { font-family: monospace; font-size: 0.9em; word-break: break-word; }
tr.failed td { background: #fdecea; color: #8a1c1c; }
tr.member td:first-child { font-weight: bold; }
dl.summary { display: grid; grid-template-columns: max-content auto; gap: 4px 16px; margin: 0; }
dl.summary dt { font-weight: bold; }
dl.summary dd { margin: 0; }
"""

_TEXT_LIMIT = 160


@dataclass
class Section:
    """One report section: heading, how to read it, then a figure, a table and/or notes."""

    key: str
    title: str
    how_to_read: str
    png: bytes | None = None
    table: str = ""
    notes: list[str] = field(default_factory=list)

    def render(self) -> str:
        parts = [f'<section id="{self.key}">', f"<h2>{html.escape(self.title)}</h2>",
                 f'<p class="how">{html.escape(self.how_to_read)}</p>']
        parts += [f'<p class="note">{html.escape(note)}</p>' for note in self.notes]
        parts.append(self.table)
        if self.png is not None:
            data = base64.b64encode(self.png).decode("ascii")
            alt = html.escape(self.title)
            parts.append(f'<img alt="{alt}" src="data:image/png;base64,{data}">')
        parts.append("</section>")
        return "\n".join(p for p in parts if p)


def render_page(title: str, summary: Sequence[tuple[str, str]], sections: Sequence[Section]) -> str:
    items = "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in summary)
    body = "\n".join(section.render() for section in sections)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f"<title>{html.escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n<main>\n"
        f"<h1>{html.escape(title)}</h1>\n"
        f'<section id="summary"><h2>Summary</h2><dl class="summary">{items}</dl></section>\n'
        f"{body}\n</main>\n</body>\n</html>\n"
    )


def leaderboard_table(board: pd.DataFrame, limit: int, failed_limit: int = 10) -> str:
    """The best ``limit`` completed candidates, then up to ``failed_limit`` failed ones."""
    ok = board["status"] == "ok"
    shown = pd.concat([board[ok].head(limit), board[~ok].head(failed_limit)])
    columns = ["number", "family", "status", "score", "fit_time", "weight", "params", "error"]
    header = "".join(f"<th>{c}</th>" for c in columns)
    rows = "\n".join(_row(record) for record in shown.to_dict("records"))
    return f"<table>\n<thead><tr>{header}</tr></thead>\n<tbody>\n{rows}\n</tbody>\n</table>"


def _row(record: dict[str, Any]) -> str:
    css = "failed" if record["status"] != "ok" else ("member" if record["weight"] > 0 else "")
    cells = [
        f'<td class="num">{record["number"]}</td>',
        f"<td>{html.escape(str(record['family']))}</td>",
        f"<td>{html.escape(str(record['status']))}</td>",
        f'<td class="num">{_number(record["score"], "{:.5g}")}</td>',
        f'<td class="num">{_number(record["fit_time"], "{:.2f}s")}</td>',
        f'<td class="num">{_number(record["weight"], "{:.3f}") if record["weight"] else ""}</td>',
        f'<td class="params">{_short(_params_text(record["params"]))}</td>',
        f"<td>{_short(record['error'])}</td>",
    ]
    return f'<tr class="{css}">' + "".join(cells) + "</tr>"


def _number(value: Any, fmt: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return fmt.format(value)


def _params_text(params: Any) -> str:
    if not isinstance(params, dict):
        return "" if params is None else str(params)
    return json.dumps({k: _plain(v) for k, v in params.items()}, default=str)


def _plain(value: Any) -> Any:
    if isinstance(value, float):
        return float(f"{value:.4g}")
    return value


def _short(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    text = str(value)
    if len(text) > _TEXT_LIMIT:
        text = text[: _TEXT_LIMIT - 1] + "…"
    return html.escape(text)
