"""Server-side SVG charts for the console dashboard: no chart library, no script, CSP-friendly.

Each function is pure: data in, an escaped ``Markup`` SVG out. Colours come from CSS classes
(``chart-bar``, ``chart-line``…) so the design system owns them; labels are escaped, so a campaign called
``<script>`` is drawn as text. Every chart has a ``<title>`` and ``<desc>`` and the page shows the same
numbers in a table for screen readers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from markupsafe import Markup, escape

WIDTH = 640
HEIGHT = 220
_PAD_LEFT = 44
_PAD_RIGHT = 12
_PAD_TOP = 14
_PAD_BOTTOM = 28


def nice_max(value: float) -> float:
    """A round axis maximum at or above ``value`` (1, 2, 2.5 or 5 times a power of ten)."""
    if value <= 0:
        return 1.0
    exponent = math.floor(math.log10(value))
    for step in (1.0, 2.0, 2.5, 5.0, 10.0):
        candidate = step * 10**exponent
        if candidate >= value:
            return float(candidate)
    return 10.0 ** (exponent + 1)  # pragma: no cover - the loop always returns


def _fmt(value: float) -> str:
    if abs(value) >= 1_000_000:
        return f"{value / 1_000_000:g}M"
    if abs(value) >= 10_000:
        return f"{value / 1_000:g}k"
    return f"{value:g}"


def _open(chart_id: str, title: str, desc: str, height: int) -> list[str]:
    return [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {height}" role="img" '
        f'aria-labelledby="{chart_id}-t {chart_id}-d" preserveAspectRatio="xMidYMid meet">',
        f'<title id="{chart_id}-t">{escape(title)}</title>',
        f'<desc id="{chart_id}-d">{escape(desc)}</desc>',
    ]


def _grid(top: float, max_value: float, plot_height: float) -> list[str]:
    parts = []
    for i in range(5):
        value = max_value * i / 4
        y = top + plot_height - plot_height * i / 4
        parts.append(
            f'<line class="chart-grid" x1="{_PAD_LEFT}" y1="{y:.1f}" x2="{WIDTH - _PAD_RIGHT}" y2="{y:.1f}"/>'
            f'<text class="chart-axis" x="{_PAD_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{_fmt(value)}</text>'
        )
    return parts


def _x_labels(labels: Sequence[str], step: float, top: float, plot_height: float) -> list[str]:
    every = max(1, math.ceil(len(labels) / 10))
    return [
        f'<text class="chart-axis" x="{_PAD_LEFT + step * (i + 0.5):.1f}" y="{top + plot_height + 18:.1f}" '
        f'text-anchor="middle">{escape(label)}</text>'
        for i, label in enumerate(labels)
        if i % every == 0 or i == len(labels) - 1
    ]


def column_chart(
    chart_id: str, *, title: str, desc: str, labels: Sequence[str], values: Sequence[float], css: str = "chart-bar"
) -> Markup:
    """Vertical bars, one per label (e.g. events per day)."""
    plot_height = HEIGHT - _PAD_TOP - _PAD_BOTTOM
    max_value = nice_max(max(values, default=0))
    step = (WIDTH - _PAD_LEFT - _PAD_RIGHT) / max(1, len(values))
    parts = _open(chart_id, title, desc, HEIGHT) + _grid(_PAD_TOP, max_value, plot_height)
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        height = plot_height * value / max_value
        x = _PAD_LEFT + step * i + step * 0.15
        y = _PAD_TOP + plot_height - height
        parts.append(
            f'<rect class="{css}" x="{x:.1f}" y="{y:.1f}" width="{step * 0.7:.1f}" height="{height:.1f}" rx="2">'
            f"<title>{escape(label)}: {_fmt(value)}</title></rect>"
        )
    parts += _x_labels(labels, step, _PAD_TOP, plot_height)
    parts.append("</svg>")
    return Markup("".join(parts))  # every interpolated label is escaped above


def line_chart(chart_id: str, *, title: str, desc: str, labels: Sequence[str], values: Sequence[float]) -> Markup:
    """A line with a soft area under it (e.g. active members per day)."""
    plot_height = HEIGHT - _PAD_TOP - _PAD_BOTTOM
    max_value = nice_max(max(values, default=0))
    step = (WIDTH - _PAD_LEFT - _PAD_RIGHT) / max(1, len(values))
    points = [
        (_PAD_LEFT + step * (i + 0.5), _PAD_TOP + plot_height - plot_height * value / max_value)
        for i, value in enumerate(values)
    ]
    parts = _open(chart_id, title, desc, HEIGHT) + _grid(_PAD_TOP, max_value, plot_height)
    if points:
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
        base = _PAD_TOP + plot_height
        parts.append(
            f'<polygon class="chart-area" points="{points[0][0]:.1f},{base:.1f} {path} {points[-1][0]:.1f},{base:.1f}"/>'
        )
        parts.append(f'<polyline class="chart-line" points="{path}"/>')
        for (x, y), label, value in zip(points, labels, values, strict=True):
            parts.append(
                f'<circle class="chart-dot" cx="{x:.1f}" cy="{y:.1f}" r="3">'
                f"<title>{escape(label)}: {_fmt(value)}</title></circle>"
            )
    parts += _x_labels(labels, step, _PAD_TOP, plot_height)
    parts.append("</svg>")
    return Markup("".join(parts))  # every interpolated label is escaped above


def bar_list(
    chart_id: str,
    *,
    title: str,
    desc: str,
    labels: Sequence[str],
    values: Sequence[float],
    suffix: str = "",
    max_value: float | None = None,
) -> Markup:
    """Horizontal bars with their label and value (e.g. completions per challenge, badge rarity)."""
    row = 30
    height = max(row, row * len(values)) + 8
    label_width = 190
    value_width = 64
    track = WIDTH - label_width - value_width
    top = max_value if max_value is not None else nice_max(max(values, default=0))
    parts = _open(chart_id, title, desc, height)
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        y = 4 + i * row
        width = track * (value / top if top else 0)
        shown = label if len(label) <= 28 else label[:27] + "…"
        parts.append(
            f'<text class="chart-label" x="0" y="{y + 19}">{escape(shown)}</text>'
            f'<rect class="chart-track" x="{label_width}" y="{y + 6}" width="{track}" height="16" rx="8"/>'
            f'<rect class="chart-bar" x="{label_width}" y="{y + 6}" width="{width:.1f}" height="16" rx="8">'
            f"<title>{escape(label)}: {_fmt(value)}{escape(suffix)}</title></rect>"
            f'<text class="chart-value" x="{WIDTH}" y="{y + 19}" text-anchor="end">{_fmt(value)}{escape(suffix)}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # every interpolated label is escaped above
