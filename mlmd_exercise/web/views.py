"""HTML for the explorer's pages and the report, from the plain data `pages` gathers.

Every string that comes from a store goes through `esc` (or `href`, for links
built from our own numbers and the user's query), so that a property holding
`<script>` is shown as those characters. Every address a page names goes through
`url`, which puts the served session's prefix (ROOT) before it. Graphs and charts are SVG drawn by
graphviz and matplotlib, which escape the text they draw.
"""

from __future__ import annotations

import html
import re
from contextvars import ContextVar
from typing import Any, Callable, Iterable, Mapping, Optional, Sequence, Tuple
from urllib.parse import urlencode

from mlmd_exercise.masking import mask
from mlmd_exercise.records import CREATED_MS, ENDED_MS, STARTED_MS, ArtifactRecord, ExecutionRecord, LineageGraph
from mlmd_exercise.render import STATE_COLORS
from mlmd_exercise.text import count, duration, when
from mlmd_exercise.web.curves import SweepPoint, curves_svg, sweep_svg
from mlmd_exercise.web.pages import Comparison, LineagePage, NodePage, StatesPage
from mlmd_exercise.web.runs import RunsPage, RunsQuery, Sweep

__all__ = ["ROOT", "url", "esc", "layout", "runs_view", "node_view", "lineage_view", "compare_view", "states_view",
           "error_view", "lineage_svg", "legend", "runs_table", "table", "properties_table", "state_badge",
           "node_link", "compare_body", "too_big", "collapsed_note"]

Link = Callable[[str, int], str]  # (kind, id) -> href
# What the addresses of the page being made start with: "/<token>" when the explorer serves
# it (server.py sets it for each request), "" for the report.
ROOT: ContextVar[str] = ContextVar("ROOT", default="")


def url(path: str) -> str:
    """The address of one of our pages or files (`path` starts with "/"), for this session."""
    return ROOT.get() + path


def esc(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def href(path: str, params: Optional[Mapping[str, Any]] = None) -> str:
    """A link to one of our pages, escaped for an attribute."""
    return esc(url(path) + ("?" + urlencode(params) if params else ""))


def node_href(kind: str, node_id: int) -> str:
    return url(f"/{kind}/{int(node_id)}")


def value(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    return "" if v is None else str(v)


def layout(title: str, body: str, *, active: str = "", scripts: bool = True, inline_css: str = "") -> str:
    """A whole page. `inline_css` (the report) replaces the packaged stylesheet."""
    nav = "".join(
        f'<a href="{href(path)}"{" class=active" if name == active else ""}>{name}</a>'
        for name, path in (("Runs", "/runs"), ("States", "/states"))) if scripts else ""
    head_css = (f"<style>{inline_css}</style>" if inline_css else
                f'<link rel="stylesheet" href="{href("/static/style.css")}">'
                f'<link rel="icon" href="{href("/static/favicon.svg")}">')
    head_js = (f'<script src="{href("/static/svg-pan-zoom.min.js")}"></script>'
               f'<script src="{href("/static/app.js")}"></script>' if scripts else "")
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{esc(title)} · mlmd-exercise</title>{head_css}{head_js}</head><body>"
            f'<header><span class="brand">mlmd-exercise</span><nav>{nav}</nav></header>'
            f"<main><h1>{esc(title)}</h1>{body}</main></body></html>")


def error_view(status: int, message: str) -> str:
    reason = {400: "Bad request", 403: "Forbidden", 404: "Not found", 405: "Method not allowed"}.get(
        status, "Error")
    # An error names the bad value, which may hold a secret (a store's address, say).
    text = f'<p class="error">{esc(mask(message))}</p>'
    if not ROOT.get():  # refused before the token was known good: no link or file of ours would open
        from pathlib import Path

        css = (Path(__file__).parent / "static" / "style.css").read_text()
        return layout(f"{status} {reason}", text, scripts=False, inline_css=css)
    return layout(f"{status} {reason}", text + f'<p><a href="{href("/runs")}">Runs</a></p>')


def table(header: Sequence[str], rows: Iterable[Sequence[str]], cls: str = "") -> str:
    """A table; `header` is text, `rows` cells already made HTML."""
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    thead = f"<thead><tr>{head}</tr></thead>" if any(header) else ""
    return f'<table class="{cls}">{thead}<tbody>{body}</tbody></table>'


def properties_table(props: Mapping[str, Any]) -> str:
    if not props:
        return '<p class="none">none</p>'
    return table(("name", "value"), ((f"<code>{esc(k)}</code>", esc(value(v))) for k, v in sorted(props.items())),
                  "props")


def node_link(node, link: Link = node_href) -> str:
    """"Trainer #3", a link to its page; plain text where `link` gives no address (the report, a notebook)."""
    kind = "artifact" if isinstance(node, ArtifactRecord) else "execution"
    target = link(kind, node.id)
    return f'<a href="{esc(target)}">{esc(node.type)} #{node.id}</a>' if target else f"{esc(node.type)} #{node.id}"


def state_badge(state: str) -> str:
    color = STATE_COLORS.get(state, "#ffffff")
    return f'<span class="state" style="background:{color}">{esc(state)}</span>'


# -- Runs -------------------------------------------------------------------------------------


def _select(name: str, current: str, options: Sequence[Tuple[str, str]]) -> str:
    items = "".join(f'<option value="{esc(v)}"{" selected" if v == current else ""}>{esc(label)}</option>'
                    for v, label in options)
    return f'<select name="{name}" id="f-{name}">{items}</select>'


def _filter_form(page: RunsPage) -> str:
    q = page.query
    contexts = [("", "any experiment or context")] + [(str(i), f"{name} ({ctype})") for i, ctype, name in page.contexts]
    types = [("", "any type")] + [(t, t) for t in page.types]
    states = [("", "any state")] + [(s, s) for s in STATE_COLORS]
    return (
        f'<form class="filters" method="get" action="{href("/runs")}">'
        f"<label>context {_select('context', str(q.context or ''), contexts)}</label>"
        f"<label>type {_select('type', q.type, types)}</label>"
        f"<label>state {_select('state', q.state, states)}</label>"
        f'<label>since <input name="since" id="f-since" value="{esc(q.since)}" placeholder="date or 7d" size="11"></label>'
        f'<label>until <input name="until" id="f-until" value="{esc(q.until)}" placeholder="date" size="11"></label>'
        f'<label>text <input name="q" id="f-q" value="{esc(q.q)}" placeholder="name, type, value" size="16"></label>'
        f'<label>tag <input name="tag" id="f-tag" value="{esc(q.tag)}" placeholder="key=value" size="12"></label>'
        f'<label>where <input name="where" id="f-where" value="{esc(q.where)}" '
        f'placeholder="MLMD filter: custom_properties.C.double_value &lt; 1" size="28"></label>'
        f'<input type="hidden" name="sort" value="{esc(q.sort)}">'
        f'<button type="submit" id="f-apply">Filter</button> <a href="{href("/runs")}">clear</a></form>')


def _sort_link(q: RunsQuery, column: str, label: str) -> str:
    current = q.sort.lstrip("-")
    descending = q.sort.startswith("-")
    new = ("" if current == column and descending else "-") + column if current == column else "-" + column
    mark = (" ▼" if descending else " ▲") if current == column else ""
    return f'<a href="{href("/runs", q.params(sort=new, page=1))}">{esc(label)}{mark}</a>'


def runs_table(page: RunsPage, link: Link = node_href, sortable: bool = True, select: bool = True) -> str:
    q = page.query
    columns = [("id", "run"), ("type", "type"), ("state", "state"), ("experiment", "experiment / context"),
               ("start", "start"), ("duration", "duration")]
    columns += [(f"param:{k}", k) for k in page.param_columns]
    columns += [(f"metric:{k}", k) for k in page.metric_columns]
    heads = [_sort_link(q, c, label) if sortable else esc(label) for c, label in columns]
    groups = ""
    if page.param_columns or page.metric_columns:
        groups = ('<tr class="groups">' + ('<th></th>' if select else "") + '<th colspan="6"></th>'
                  + (f'<th colspan="{len(page.param_columns)}">params</th>' if page.param_columns else "")
                  + (f'<th colspan="{len(page.metric_columns)}">metrics</th>' if page.metric_columns else "")
                  + "</tr>")
    head = "<tr>" + ("<th></th>" if select else "") + "".join(
        f'<th class="{"num" if c.startswith(("param:", "metric:")) else ""}">{h}</th>'
        for (c, _), h in zip(columns, heads)) + "</tr>"
    body = []
    for r in page.rows:
        e = r.execution
        cells = ([f'<input type="checkbox" name="execution" value="{e.id}" form="compare" class="pick">']
                 if select else [])
        named = f' <span class="run-name">{esc(e.label)}</span>' if e.label else ""
        cells += [f'<a href="{esc(link("execution", e.id))}">#{e.id}</a>{named}', esc(e.type), state_badge(e.state),
                  ", ".join(f'<a href="{href("/runs", {"context": cid})}">{esc(name)}</a>' if sortable else esc(name)
                            for _, name, cid in r.contexts) or "-",
                  esc(when(r.started_ms)), esc(duration(r.duration_ms))]
        cells += [esc(value(r.params.get(k))) for k in page.param_columns]
        cells += [esc(value(r.metrics.get(k))) for k in page.metric_columns]
        body.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    if not body:
        return '<p class="none">no runs match</p>'
    return (f'<div class="scroll"><table class="runs"><thead>{groups}{head}</thead>'
            f'<tbody>{"".join(body)}</tbody></table></div>')


def _sweep_view(sweep: Sweep, q: RunsQuery) -> str:
    """The chart of a metric against a param for the runs listed, with its choice of both, and
    the highest and lowest value said in words (which is best depends on the metric)."""
    keep = "".join(f'<input type="hidden" name="{esc(k)}" value="{esc(v)}">'
                   for k, v in q.params(x="", y="", page=q.page).items())
    form = (f'<form class="filters" method="get" action="{href("/runs")}" id="sweep-form">{keep}'
            f"<label>chart {_select('y', sweep.y, [(m, m) for m in sweep.metrics])}</label>"
            f"<label>against {_select('x', sweep.x, [(p, p) for p in sweep.params])}</label>"
            '<button type="submit" id="sweep-apply">Draw</button></form>')
    points = [SweepPoint(x, y, run, node_href("execution", run)) for x, y, run in sweep.points]
    said = ""
    finite = [p for p in points if p.y == p.y and abs(p.y) != float("inf")]
    if len(finite) > 1:
        hi, lo = max(finite, key=lambda p: p.y), min(finite, key=lambda p: p.y)

        def also(p: SweepPoint) -> str:
            ties = sum(1 for o in finite if o.y == p.y) - 1
            return f" and {count(ties, 'other run')}" if ties else ""

        said = "<p class=\"muted\" id=\"sweep-extremes\">" + " · ".join(
            f'{word} {esc(sweep.y)}: {value(p.y)} at {esc(sweep.x)} = {value(p.x)} '
            f'(<a href="{p.href}">run #{p.run}</a>{also(p)})' for word, p in (("highest", hi), ("lowest", lo))) + "</p>"
    return f'<div class="sweep" id="sweep">{form}{sweep_svg(sweep.x, sweep.y, points)}{said}</div>'


def runs_view(page: RunsPage) -> str:
    q = page.query
    parts = [_filter_form(page)]
    if page.notice:
        parts.append(f'<p class="notice">{esc(page.notice)}</p>')
    if page.sweep is not None:
        parts.append(_sweep_view(page.sweep, q))
    parts.append(f'<form id="compare" method="get" action="{href("/compare")}"></form>')
    parts.append(runs_table(page))
    pager = []
    if q.page > 1:
        pager.append(f'<a href="{href("/runs", q.params(page=q.page - 1))}" rel="prev">← newer</a>'
                     if q.sort == "-start" else f'<a href="{href("/runs", q.params(page=q.page - 1))}" rel="prev">← previous</a>')
    of = f" of {(page.total + q.per - 1) // q.per:,}" if page.total is not None else ""
    pager.append(f"page {q.page}{of}" + (f" ({count(page.total, 'run')})" if page.total is not None else ""))
    if page.has_next:
        pager.append(f'<a href="{href("/runs", q.params(page=q.page + 1))}" rel="next">next →</a>')
    parts.append('<div class="pager">' + " · ".join(pager)
                 + ' <button type="submit" form="compare" id="compare-button">Compare the two selected</button></div>')
    return layout("Runs", "".join(parts), active="Runs")


# -- A node -----------------------------------------------------------------------------------


def _compare_form(kind: str, node_id: int) -> str:
    return (f'<form class="inline" method="get" action="{href("/compare")}">'
            f'<input type="hidden" name="{kind}" value="{node_id}">'
            f'compare with {kind} <input name="{kind}" size="6" id="compare-with" required> '
            f'<button type="submit">Compare</button></form>')


def node_view(page: NodePage) -> str:
    n = page.node
    is_artifact = isinstance(n, ArtifactRecord)
    facts = [("id", esc(n.id)), ("type", esc(n.type)), ("state", state_badge(n.state) if not is_artifact else esc(n.state))]
    if isinstance(n, ArtifactRecord):
        facts.append(("uri", f"<code>{esc(n.uri)}</code>"))
        if page.file_check:
            ok = page.file_check.startswith("matches")
            facts.append(("file", f'<span class="{"ok" if ok else "bad"}">{esc(page.file_check)}</span>'))
        if page.same_content:
            facts.append(("same content as", ", ".join(
                f'<a href="{node_href("artifact", i)}">artifact #{i}</a>' for i in page.same_content)))
    facts.append(("created", esc(when(n.created_ms))))
    if n.when_ms != n.created_ms:
        facts.append(("started" if not is_artifact else "made", esc(when(n.when_ms))))
    if isinstance(n, ExecutionRecord) and n.ended_ms is not None:
        facts.append(("ended", esc(when(n.ended_ms))))
    # An imported node's original times, shown above as times: not again below as numbers.
    shown_as_times = {k for k in ((CREATED_MS,) if is_artifact else (STARTED_MS, ENDED_MS))
                      if isinstance(n.properties.get(k), (int, float)) and not isinstance(n.properties.get(k), bool)}
    contexts = ", ".join(f'<a href="{href("/runs", {"context": cid})}">{esc(name)}</a> <span class="muted">({esc(ctype)})</span>'
                         for ctype, name, cid in page.contexts) or "none"
    facts.append(("experiments and contexts", contexts))
    if isinstance(n, ExecutionRecord) and n.label:
        facts.append(("name", esc(n.label)))
    if isinstance(n, ExecutionRecord) and n.tags:
        facts.append(("tags", ", ".join(f'<a href="{href("/runs", {"tag": f"{k}={v}"})}">{esc(k)}={esc(v)}</a>'
                                        for k, v in n.tags.items())))
    if page.reused:  # a step TFX or Kubeflow did not run again
        facts.append(("cached", "not run again; reused " + ", ".join(
            f'<a href="{node_href("artifact", a)}">artifact #{a}</a> that '
            f'<a href="{node_href("execution", e)}">execution #{e}</a> made' for a, e in page.reused)))
    kind = "artifact" if is_artifact else "execution"
    lineage = f"/lineage/{kind}/{n.id}"
    actions = (f'<p class="actions"><a href="{href(lineage, {"direction": "upstream"})}" id="lineage-link">'
               f'Lineage upstream</a> · <a href="{href(lineage, {"direction": "downstream"})}">downstream</a>'
               f' · <a href="{href(lineage)}">both</a></p><p class="actions">{_compare_form(kind, n.id)}</p>')
    rows = [(esc(k), esc(role or "-"), node_link(other) + (
        f' <span class="muted">{esc(other.label)}</span>' if isinstance(other, ArtifactRecord)
        else f" {state_badge(other.state)}")) for k, role, other in page.events]
    left = [table(("", ""), ((f"<b>{k}</b>", v) for k, v in facts), "facts"),
            "<h2>Events</h2>" if is_artifact else "<h2>Inputs and outputs</h2>",
            table(("kind", "role", "execution" if is_artifact else "artifact"), rows, "events")
            if rows else '<p class="none">none</p>']
    if is_artifact:
        right = ["<h2>Properties</h2>",
                 properties_table({k: v for k, v in n.properties.items() if k not in shown_as_times})]
    else:
        right = ["<h2>Params</h2>", properties_table(page.params), "<h2>Metrics</h2>", properties_table(page.metrics),
                 "<h2>Environment</h2>", properties_table(page.environment)]
        rest = {k: v for k, v in n.properties.items()
                if k not in page.params and k not in page.metrics and k not in page.environment
                and k not in ("error_type", "error_message")  # shown first, above
                and k not in shown_as_times
                and not (k == "state" and v == n.state)}  # the guide's mirror of the state
        if rest:
            right += ["<h2>Other properties</h2>", properties_table(rest)]
    if page.curves:
        left += ["<h2>Curves</h2>", '<div class="curves">' + "".join(
            curves_svg(key, {key: points}) for key, points in page.curves.items()) + "</div>"]
    failure = "" if is_artifact or "error_message" not in n.properties else (
        # Why a run failed is what its page is opened for: first, above the fold.
        f'<p class="notice" id="error"><b>{esc(n.properties.get("error_type") or n.state)}:</b> '
        f'<code>{esc(n.properties["error_message"])}</code></p>')
    body = (failure + actions + f'<div class="columns"><div>{"".join(left)}</div><div>{"".join(right)}</div></div>')
    return layout(f"{n.type} #{n.id}" + ("" if is_artifact else f" ({n.state})"), body)


# -- Lineage ----------------------------------------------------------------------------------


def lineage_svg(graph: LineageGraph, link: Link = node_href, start: Optional[Tuple[str, int]] = None) -> str:
    """The graph as an SVG element drawn by graphviz (same shapes and colours as
    `mlmd-exercise graph`), each node a link to its page, the start node outlined."""
    from mlmd_exercise.render import draw, lineage_source, require_dot

    require_dot()
    source = lineage_source(graph, legend=False).rstrip().rstrip("}")  # the page has its own legend
    targets = [("a", "artifact", i) for i in sorted(graph.artifacts)]
    targets += [("e", "execution", i) for i in sorted(graph.executions)]
    extra = [f'\t{p}{i} [URL="{esc(link(kind, i))}" target="_top"]' for p, kind, i in targets if link(kind, i)]
    if start is not None:
        extra.append(f'\t{start[0][0]}{int(start[1])} [penwidth=3 color="#1f4e99"]')
    svg = draw(source + "\n".join(extra) + "\n}\n", "svg", "the lineage").decode()
    svg = svg[svg.index("<svg"):]
    svg = re.sub(r"<!--.*?-->", "", svg, flags=re.S)  # graphviz comments hold node names
    return svg


def too_big(size: int, limit: int) -> str:
    return (f'<p class="notice" id="too-big">{size:,} nodes are too many to draw (at most {limit:,}): '
            "choose fewer hops or one direction.</p>")


def legend() -> str:
    states = "".join(f'<span class="key"><span class="box" style="background:{c}"></span>{esc(s)}</span>'
                     for s, c in STATE_COLORS.items())
    return (f'<div class="legend"><span class="key"><span class="note"></span>artifact (note: type #id, name, version)</span>'
            f'<span class="key">execution (rounded box, filled by state):</span>{states}</div>')


def collapsed_note(groups, expand_href: str = "", expand_text: str = "") -> str:
    """What was drawn as one node, with a link that draws every run (else `expand_text`: how to)."""
    if not groups:
        return ""
    drawn = ", ".join(f"{count(len(g.ids), g.type + ' run')} ({'; '.join((g.state, *g.differ))})" for g in groups)
    expand = (f'<a href="{esc(expand_href)}" id="expand">Draw every run</a>' if expand_href
              else esc(expand_text))
    return f'<p class="notice" id="collapsed">Drawn as one node each, being alike: {esc(drawn)}. {expand}</p>'


def lineage_view(page: LineagePage, svg: str, note: str = "") -> str:
    kind = page.kind
    n = page.node
    form = (f'<form class="filters" method="get" action="{href(f"/lineage/{kind}/{n.id}")}">'
            + "".join(f'<label><input type="radio" name="direction" value="{d}"{" checked" if d == page.direction else ""}> {d}</label>'
                      for d in ("upstream", "downstream", "both"))
            + f'<label>hops <input name="hops" type="number" min="0" max="50" value="{"" if page.hops is None else page.hops}" size="3"></label>'
            '<button type="submit">Show</button></form>')
    counts = f"{count(len(page.graph.artifacts), 'artifact')}, {count(len(page.graph.executions), 'execution')}"
    body = (f'<p class="actions">{node_link(n)} · {esc(page.direction)}, '
            f'{"all hops" if page.hops is None else count(page.hops, "hop")}: {counts}. '
            'Drag to pan, scroll to zoom, click a node to open it.</p>'
            + form + note + legend() + f'<div id="graph" class="graph">{svg}</div>')
    return layout(f"Lineage of {n.type} #{n.id}", body)


# -- Compare and States ------------------------------------------------------------------------


def compare_view(c: Comparison) -> str:
    return layout(f"Compare {c.a.type} #{c.a.id} and {c.b.type} #{c.b.id}", compare_body(c))


def compare_body(c: Comparison, link: Link = node_href) -> str:
    """What differs between two nodes, and their curves: the compare page without its frame."""
    rows = [f'<tr class="differs"><td>{esc(section)}</td><td><code>{esc(key)}</code></td>'
            f"<td>{esc(x)}</td><td>{esc(y)}</td></tr>" for section, key, x, y in c.rows]
    head = (f"<tr><th>section</th><th>what</th><th>{node_link(c.a, link)}</th><th>{node_link(c.b, link)}</th></tr>")
    made = ""
    if c.kind == "artifact":
        made = " · ".join(f"{side} made by " + ((f'<a href="{esc(link("execution", run))}">execution {run}</a>'
                                                  if link("execution", run) else f"execution {run}")
                                                 if run else "no recorded run")
                          for side, run in zip(("A", "B"), c.runs))
        made = f"<p>{made}</p>"
    differs = (f'<table class="compare"><thead>{head}</thead><tbody>{"".join(rows)}</tbody></table>'
               if rows else "")
    charts = "".join(curves_svg(key, {f"{c.a.type} #{c.a.id}": a, f"{c.b.type} #{c.b.id}": b})
                     for key, (a, b) in c.curves.items())
    curves = f'<h2>Curves</h2><div class="curves">{charts}</div>' if charts else ""
    return f'<p class="actions">{esc(c.verdict)}</p>{made}{differs}{curves}'


def states_view(page: StatesPage, svg: str) -> str:
    options = [("", "the whole store")] + [(str(i), f"{name} ({ctype})") for i, ctype, name in page.contexts]
    current = str(page.context[0]) if page.context else ""
    form = (f'<form class="filters" method="get" action="{href("/states")}">'
            f"<label>count {_select('context', current, options)}</label>"
            '<button type="submit">Show</button></form>')
    rows = [(state_badge(s), esc(n)) for s, n in page.counts.items()]
    counts = table(("state", "executions"), rows, "counts") if rows else '<p class="none">no executions</p>'
    where = f"{page.context[2]} ({page.context[1]})" if page.context else "the whole store"
    return layout("Executions by state", form + f'<p class="actions">{esc(where)}</p>'
                  + f'<div class="side"><div class="chart">{svg}</div>{counts}</div>', active="States")
