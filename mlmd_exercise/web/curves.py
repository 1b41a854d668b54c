"""Metric curves as SVG, for the explorer's run and compare pages and the HTML report (and a
sweep's metric against its param, for the runs page): plain
points in (downsampled on the server: read/history.downsample), one SVG element out, every
string in it escaped. NaN and the infinities are not drawn as numbers: each is a mark at the
chart's edge (NaN at the bottom, +inf at the top, -inf at the bottom), so a diverged run shows."""

from __future__ import annotations

import html
import math
from typing import List, Mapping, NamedTuple, Sequence, Tuple

from mlmd_exercise.history import Point

__all__ = ["POINTS", "curves_svg", "SweepPoint", "sweep_svg"]

POINTS = 800  # at most this many points of a series reach the page
_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")
_W, _H, _LEFT, _RIGHT, _TOP, _BOTTOM = 520, 200, 64, 12, 24, 34


def _esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def _number(value: float) -> str:
    return f"{value:.4g}"


def _chart(cls: str, title: str, height: int) -> List[str]:
    """A chart's SVG element opened, with its title (its tooltip and its heading)."""
    return [f'<svg class="{cls}" xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{height}" '
            f'viewBox="0 0 {_W} {height}" role="img" aria-label="{_esc(title)}">',
            f'<title>{_esc(title)}</title>', f'<text x="{_LEFT}" y="15" class="curve-title">{_esc(title)}</text>']


def _empty(parts: List[str], height: int, said: str) -> str:
    return "".join(parts) + f'<text x="{_LEFT}" y="{height // 2}">{said}</text></svg>'


def curves_svg(title: str, series: Mapping[str, Sequence[Point]]) -> str:
    """One chart: each named series (a run, or a metric) a line against its steps, in the
    order given, with a legend where there are several."""
    legend = 14 * len(series) + 6 if len(series) > 1 else 0  # a line per series above the chart
    top_margin = _TOP + legend
    height = _H + legend
    finite = [(p.step, float(p.value)) for points in series.values() for p in points if math.isfinite(p.value)]
    steps = [p.step for points in series.values() for p in points]
    parts = _chart("curve", title, height)
    if not steps:
        return _empty(parts, height, "no values")
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


class SweepPoint(NamedTuple):
    """One run on the sweep chart: its param's value, its metric's, and where it links."""

    x: float
    y: float
    run: int
    href: str


def _ticks(lo: float, hi: float, log: bool) -> List[float]:
    if log:  # each power of ten between them, else the two ends
        first, last = math.ceil(math.log10(lo)), math.floor(math.log10(hi))
        powers = [10.0 ** p for p in range(first, last + 1)]
        return powers if 2 <= len(powers) <= 8 else [lo, hi]
    return [lo, hi] if lo != hi else [lo]


def sweep_svg(param: str, metric: str, points: Sequence[SweepPoint]) -> str:
    """A metric against a param, one dot per run (a link to it), a line through each value's
    mean: the chart a sweep asks for. The param's axis is logarithmic where its values are all
    positive and span a factor of 100 or more (C = 0.01 ... 100); NaN and the infinities are
    left out (the table shows them)."""
    shown = [p for p in points if math.isfinite(p.x) and math.isfinite(p.y)]
    title = f"{metric} by {param}"
    parts = _chart("curve sweep", title, _H)
    if not shown:
        return _empty(parts, _H, "no run has a number for both")
    xs, ys = [p.x for p in shown], [p.y for p in shown]
    log = min(xs) > 0 and max(xs) >= 100 * min(xs)

    def scale(v: float) -> float:
        return math.log10(v) if log else v

    x0, x1 = scale(min(xs)), scale(max(xs))
    y0, y1 = min(ys), max(ys)
    if x0 == x1:
        x0, x1 = x0 - 1, x1 + 1
    if y0 == y1:
        y0, y1 = y0 - 1, y1 + 1
    inner_w, inner_h = _W - _LEFT - _RIGHT - 8, _H - _TOP - _BOTTOM

    def at(x: float, y: float) -> Tuple[float, float]:
        return (_LEFT + 4 + (scale(x) - x0) / (x1 - x0) * inner_w, _TOP + (1 - (y - y0) / (y1 - y0)) * inner_h)

    bottom = _TOP + inner_h
    parts.append(f'<rect x="{_LEFT}" y="{_TOP}" width="{inner_w + 8}" height="{inner_h}" fill="#fff" stroke="#ccc"/>')
    for level, label in ((_TOP, max(ys)), (bottom, min(ys))):
        parts.append(f'<text x="{_LEFT - 4}" y="{level + 4:.1f}" text-anchor="end" class="tick">{_number(label)}</text>')
    for tick in _ticks(min(xs), max(xs), log):
        tx, _ = at(tick, y0)
        parts.append(f'<text x="{tx:.1f}" y="{bottom + 14}" text-anchor="middle" class="tick">{_number(tick)}</text>')
    parts.append(f'<text x="{_LEFT + inner_w / 2:.0f}" y="{_H - 4}" text-anchor="middle" class="tick">'
                 f'{_esc(param)}{" (log scale)" if log else ""}</text>')
    by_x: dict = {}
    for p in shown:
        by_x.setdefault(p.x, []).append(p.y)
    if len(by_x) > 1:
        line = " ".join("{:.1f},{:.1f}".format(*at(x, sum(v) / len(v))) for x, v in sorted(by_x.items()))
        parts.append(f'<polyline fill="none" stroke="#9ab" stroke-width="1" points="{line}"/>')
    for p in shown:
        cx, cy = at(p.x, p.y)
        parts.append(f'<a href="{_esc(p.href)}"><circle cx="{cx:.1f}" cy="{cy:.1f}" r="4" fill="{_COLORS[0]}">'
                     f'<title>run #{p.run}: {_esc(param)} = {_number(p.x)}, {_esc(metric)} = {_number(p.y)}'
                     '</title></circle></a>')
    parts.append("</svg>")
    return "".join(parts)
