"""Horizontal bar charts as inline SVG, drawn here so the report needs no script to show them.

Each bar carries its label and count as text, so the chart reads without colour and a
screen reader gets the same numbers from the SVG title and description.
"""

from __future__ import annotations

from html import escape

ROW = 26
LABEL_W = 110
BAR_W = 300
WIDTH = LABEL_W + BAR_W + 60
#: What fits left of the bars at the chart's font size.
LABEL_CHARS = 14


def bar_chart(chart_id: str, title: str, rows: list[tuple[str, int, str]]) -> str:
    """An SVG of ``rows`` (label, count, css class of the bar); empty rows still get a track."""
    if not rows:
        return f'<p class="empty">{escape(title)}: nothing to chart.</p>'
    top = max(count for _, count, _ in rows) or 1
    height = ROW * len(rows) + 8
    desc = ", ".join(f"{label}: {count}" for label, count, _ in rows)
    parts = [
        f'<svg class="chart" id="{escape(chart_id)}" role="img" '
        f'viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" '
        f'aria-labelledby="{escape(chart_id)}-t {escape(chart_id)}-d">',
        f'<title id="{escape(chart_id)}-t">{escape(title)}</title>',
        f'<desc id="{escape(chart_id)}-d">{escape(desc)}</desc>',
    ]
    for i, (label, count, css) in enumerate(rows):
        y = 4 + i * ROW
        if len(label) > LABEL_CHARS:  # the full list is in <desc>
            label = label[:LABEL_CHARS - 1] + "…"
        width = round(BAR_W * count / top) if count else 0
        parts.append(
            f'<g><text x="{LABEL_W - 8}" y="{y + 17}" text-anchor="end">{escape(label)}</text>'
            f'<rect class="track" x="{LABEL_W}" y="{y + 4}" width="{BAR_W}" height="18" rx="3"/>'
            f'<rect class="bar {escape(css)}" x="{LABEL_W}" y="{y + 4}" width="{width}" '
            f'height="18" rx="3"/>'
            f'<text x="{LABEL_W + BAR_W + 8}" y="{y + 17}">{count}</text></g>')
    parts.append("</svg>")
    return "".join(parts)
