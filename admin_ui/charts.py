"""Server-rendered SVG charts. Each chart is an image with a title and a description for
screen readers; the page always shows the same figures in a table beside it, so the
chart is never the only way to read them. Colours come from `static/css/hub.css`
(the CSP allows no inline styles), so the SVG carries classes, not style attributes."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

_ids = itertools.count(1)


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[float]
    css: str = ""  # modifier: "" (blue), "records" (purple), "error" (red)


def _nice_max(value: float) -> float:
    """The axis top: the smallest 1, 2 or 5 × 10ⁿ not below `value`."""
    if value <= 0:
        return 1.0
    exponent = math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        top = step * 10 ** exponent
        if top >= value:
            return float(top)
    return float(10 ** (exponent + 1))


def _steps(top: float) -> int:
    """Grid lines that fall on round numbers: 5 for a top of 1, 5 or 10 × 10ⁿ, 4 for 2 × 10ⁿ."""
    lead = round(top / 10 ** math.floor(math.log10(top))) if top > 0 else 1
    return 4 if lead == 2 else 5


def _fmt(value: float) -> str:
    return f"{value:,.0f}" if value >= 10 or float(value).is_integer() else f"{value:.2g}"


def _frame(title: str, description: str, width: int, height: int, body: list[str], chart_id: str) -> Markup:
    return Markup(
        f'<svg class="hub-chart" id="{chart_id}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-labelledby="{chart_id}-title {chart_id}-desc" focusable="false" xmlns="http://www.w3.org/2000/svg">'
        f'<title id="{chart_id}-title">{escape(title)}</title><desc id="{chart_id}-desc">{escape(description)}</desc>'
        + "".join(body) + "</svg>")


def _axes(top: float, left: int, right: int, plot_top: int, plot_bottom: int, unit: str) -> list[str]:
    body = []
    steps = _steps(top)
    for i in range(steps + 1):
        value = top * i / steps
        y = plot_bottom - (plot_bottom - plot_top) * i / steps
        body.append(f'<line class="hub-chart__grid" x1="{left}" x2="{right}" y1="{y:.1f}" y2="{y:.1f}"/>')
        body.append(f'<text class="hub-chart__label" x="{left - 6}" y="{y + 5:.1f}" text-anchor="end">'
                    f'{escape(_fmt(value))}</text>')
    body.append(f'<line class="hub-chart__axis" x1="{left}" x2="{left}" y1="{plot_top}" y2="{plot_bottom}"/>')
    body.append(f'<line class="hub-chart__axis" x1="{left}" x2="{right}" y1="{plot_bottom}" y2="{plot_bottom}"/>')
    if unit:
        body.append(f'<text class="hub-chart__label" x="{left}" y="{plot_top - 8}">{escape(unit)}</text>')
    return body


def _x_labels(labels: Sequence[str], xs: Sequence[float], y: int, every: int) -> list[str]:
    return [f'<text class="hub-chart__label" x="{x:.1f}" y="{y}" text-anchor="middle">{escape(label)}</text>'
            for i, (label, x) in enumerate(zip(labels, xs)) if i % every == 0 or i == len(labels) - 1]


def bar_chart(title: str, labels: Sequence[str], values: Sequence[float], *, unit: str = "",
              description: str | None = None, width: int = 640, height: int = 220, css: str = "") -> Markup:
    """A bar per label. `description` defaults to a sentence giving the total and the peak."""
    chart_id = f"chart-{next(_ids)}"
    left, right, plot_top, plot_bottom = 56, width - 10, 28, height - 30
    top = _nice_max(max(values, default=0))
    n = max(len(values), 1)
    slot = (right - left) / n
    body = _axes(top, left, right, plot_top, plot_bottom, unit)
    modifier = f" hub-chart__bar--{css}" if css else ""
    for i, value in enumerate(values):
        h = (plot_bottom - plot_top) * (value / top)
        x = left + i * slot + slot * 0.1
        body.append(f'<rect class="hub-chart__bar{modifier}" x="{x:.1f}" y="{plot_bottom - h:.1f}" '
                    f'width="{max(slot * 0.8, 1):.1f}" height="{h:.1f}"/>')
    xs = [left + i * slot + slot / 2 for i in range(n)]
    body += _x_labels(labels, xs, height - 8, every=max(1, n // 6))
    if description is None:
        peak = max(values, default=0)
        description = (f"{len(values)} bars from {labels[0] if labels else ''} to {labels[-1] if labels else ''}; "
                       f"total {_fmt(sum(values))}, highest {_fmt(peak)}. The same figures are in the table below.")
    return _frame(title, description, width, height, body, chart_id)


def line_chart(title: str, labels: Sequence[str], series: Sequence[Series], *, unit: str = "",
               description: str | None = None, width: int = 640, height: int = 260) -> Markup:
    """One line per series over shared labels (for example days), each with point markers."""
    chart_id = f"chart-{next(_ids)}"
    left, right, plot_top, plot_bottom = 64, width - 16, 28, height - 30
    top = _nice_max(max((v for s in series for v in s.values), default=0))
    n = max(len(labels), 1)
    step = (right - left) / max(n - 1, 1)
    xs = [left + i * step if n > 1 else (left + right) / 2 for i in range(n)]
    body = _axes(top, left, right, plot_top, plot_bottom, unit)
    for s in series:
        modifier = f"--{s.css}" if s.css else ""
        points = [(xs[i], plot_bottom - (plot_bottom - plot_top) * (v / top)) for i, v in enumerate(s.values)]
        if len(points) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
            body.append(f'<polyline class="hub-chart__line{" hub-chart__line" + modifier if modifier else ""}" '
                        f'points="{path}"/>')
        for x, y in points:
            body.append(f'<circle class="hub-chart__point{" hub-chart__point" + modifier if modifier else ""}" '
                        f'cx="{x:.1f}" cy="{y:.1f}" r="4"/>')
    body += _x_labels(labels, xs, height - 8, every=max(1, n // 6))
    if description is None:
        parts = [f"{s.name} from {_fmt(s.values[0])} to {_fmt(s.values[-1])}" for s in series if s.values]
        description = (f"{', '.join(parts) or 'no data yet'}, between {labels[0] if labels else ''} and "
                       f"{labels[-1] if labels else ''}. The same figures are in the table below.")
    return _frame(title, description, width, height, body, chart_id)


def weight_bars(title: str, items: Sequence[tuple[str, float]], *, total: float | None = None,
                description: str | None = None, width: int = 640) -> Markup:
    """Match evidence as horizontal bars either side of zero: each comparison's weight in bits
    (for the same person to the right, against to the left), and the total when given."""
    chart_id = f"chart-{next(_ids)}"
    rows = list(items) + ([("total", total)] if total is not None else [])
    row_h, top_pad, label_w = 26, 10, 120
    height = top_pad * 2 + row_h * max(len(rows), 1)
    span = max((abs(w) for _, w in rows), default=0) or 1.0
    mid = label_w + (width - label_w - 60) / 2
    half = (width - label_w - 60) / 2
    body = [f'<line class="hub-chart__axis" x1="{mid:.1f}" x2="{mid:.1f}" y1="{top_pad}" y2="{height - top_pad}"/>']
    for i, (label, weight) in enumerate(rows):
        y = top_pad + i * row_h
        length = half * abs(weight) / span
        x = mid if weight >= 0 else mid - length
        css = "hub-chart__bar" + ("" if weight >= 0 else " hub-chart__bar--error")
        body.append(f'<text class="hub-chart__label" x="0" y="{y + 18}">{escape(label)}</text>')
        body.append(f'<rect class="{css}" x="{x:.1f}" y="{y + 4}" width="{max(length, 1):.1f}" height="{row_h - 8}"/>')
        anchor_x = mid + length + 4 if weight >= 0 else mid - length - 4
        anchor = "start" if weight >= 0 else "end"
        body.append(f'<text class="hub-chart__label" x="{anchor_x:.1f}" y="{y + 18}" text-anchor="{anchor}">'
                    f'{weight:+.2f}</text>')
    if description is None:
        description = "; ".join(f"{label} {weight:+.2f} bits" for label, weight in rows) + \
            ". The same figures are in the table below."
    return _frame(title, description, width, height, body, chart_id)
