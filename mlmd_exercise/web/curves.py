"""Metric curves as SVG, for the explorer's run and compare pages and the HTML report: plain
points in (downsampled on the server: read/history.downsample), one SVG element out, every
string in it escaped. NaN and the infinities are not drawn as numbers: each is a mark at the
chart's edge (NaN at the bottom, +inf at the top, -inf at the bottom), so a diverged run shows."""

from __future__ import annotations

import html
import math
from typing import List, Mapping, Sequence, Tuple

from mlmd_exercise.history import Point

__all__ = ["POINTS", "curves_svg"]

POINTS = 800  # at most this many points of a series reach the page
_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")
_W, _H, _LEFT, _RIGHT, _TOP, _BOTTOM = 520, 200, 64, 12, 24, 34


def _esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def _number(value: float) -> str:
    return f"{value:.4g}"


def curves_svg(title: str, series: Mapping[str, Sequence[Point]]) -> str:
    """One chart: each named series (a run, or a metric) a line against its steps, in the
    order given, with a legend where there are several."""
    legend = 14 * len(series) + 6 if len(series) > 1 else 0  # a line per series above the chart
    top_margin = _TOP + legend
    height = _H + legend
    finite = [(p.step, float(p.value)) for points in series.values() for p in points if math.isfinite(p.value)]
    steps = [p.step for points in series.values() for p in points]
    parts: List[str] = [f'<svg class="curve" xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{height}" '
                        f'viewBox="0 0 {_W} {height}" role="img" aria-label="{_esc(title)}">',
                        f'<title>{_esc(title)}</title>',
                        f'<text x="{_LEFT}" y="15" class="curve-title">{_esc(title)}</text>']
    if not steps:
        parts.append(f'<text x="{_LEFT}" y="{height // 2}">no values</text></svg>')
        return "".join(parts)
    x0, x1 = float(min(steps)), float(max(steps))
    ys = [y for _, y in finite] or [0.0]
    y0, y1 = min(ys), max(ys)
    if y0 == y1:
        y0, y1 = y0 - 1, y1 + 1
    if x0 == x1:
        x0, x1 = x0 - 1, x1 + 1
    inner_w, inner_h = _W - _LEFT - _RIGHT, _H - _TOP - _BOTTOM

    def at(step: float, value: float) -> Tuple[float, float]:
        return (_LEFT + (step - x0) / (x1 - x0) * inner_w, top_margin + (1 - (value - y0) / (y1 - y0)) * inner_h)

    bottom, top = float(top_margin + inner_h), float(top_margin)
    parts.append(f'<rect x="{_LEFT}" y="{top_margin}" width="{inner_w}" height="{inner_h}" fill="#fff" '
                 'stroke="#ccc"/>')
    for value, level in ((y1, top), (y0, bottom)):
        parts.append(f'<text x="{_LEFT - 4}" y="{level + 4:.1f}" text-anchor="end" class="tick">'
                     f'{_number(value)}</text>')
    for step, anchor in ((x0, "start"), (x1, "end")):
        tick_x = _LEFT if anchor == "start" else _LEFT + inner_w
        parts.append(f'<text x="{tick_x}" y="{bottom + 14}" text-anchor="{anchor}" class="tick">{_esc(int(step))}</text>')
    parts.append(f'<text x="{_LEFT + inner_w / 2:.0f}" y="{height - 4}" text-anchor="middle" class="tick">step</text>')
    for n, (name, points) in enumerate(series.items()):
        color = _COLORS[n % len(_COLORS)]
        runs: List[List[str]] = [[]]
        for p in points:
            if math.isfinite(p.value):
                x, y = at(p.step, float(p.value))
                runs[-1].append(f"{x:.1f},{y:.1f}")
            else:  # a gap in the line, and a mark at the edge
                runs.append([])
                x, _ = at(p.step, y0)
                y = top if p.value == math.inf else bottom
                label = "NaN" if math.isnan(p.value) else ("inf" if p.value > 0 else "-inf")
                parts.append(f'<path d="M{x - 3:.1f},{y - 3:.1f}L{x + 3:.1f},{y + 3:.1f}M{x - 3:.1f},{y + 3:.1f}'
                             f'L{x + 3:.1f},{y - 3:.1f}" stroke="{color}" class="odd">'
                             f'<title>{_esc(name)}: step {_esc(p.step)} is {label}</title></path>')
        for run in runs:
            if len(run) == 1:
                cx, cy = run[0].split(",")
                parts.append(f'<circle cx="{cx}" cy="{cy}" r="2.5" fill="{color}"/>')
            elif run:
                parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{" ".join(run)}"/>')
        if legend:
            y = _TOP + 14 * n + 8
            parts.append(f'<rect x="{_LEFT}" y="{y - 4}" width="12" height="3" fill="{color}"/>'
                         f'<text x="{_LEFT + 16}" y="{y}" fill="{color}" class="legend">{_esc(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)
