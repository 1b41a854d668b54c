"""`mlmd-exercise report`: one self-contained file with the lineage, the runs and the states.

HTML: inline SVG graph and chart, inline styles, no script and no reference to
any other file or address, so that it opens anywhere, offline (a CI artifact, a
review attachment). Markdown: a Mermaid flowchart of the lineage, which code
hosts draw in pull requests, and the tables as Markdown.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from mlmd_exercise.errors import RenderError
from mlmd_exercise.history import Point
from mlmd_exercise.read.counts import count_apart
from mlmd_exercise.read.lineage import walk
from mlmd_exercise.records import ArtifactRecord, ExecutionLineage, LineageEdge, LineageGraph
from mlmd_exercise import text
from mlmd_exercise.store import Store
from mlmd_exercise.store.backend import Query
from mlmd_exercise.web import pages, views
from mlmd_exercise.web.runs import RunsPage, RunsQuery, runs_of, runs_page

__all__ = ["FORMATS", "ReportData", "gather", "report_format", "html_report", "markdown_report",
           "mermaid", "write_report"]

FORMATS = ("html", "md")
RUNS = 50  # runs in the table; with no node given, the lineage drawn is theirs


@dataclass(frozen=True)
class ReportData:
    store: str
    title: str
    lineage_title: str
    graph: LineageGraph
    start: Optional[Tuple[str, int]]
    runs: RunsPage
    counts: Dict[str, int]
    # Each metric the report's runs logged more than once -> run label -> its curve.
    curves: Dict[str, Dict[str, Tuple[Point, ...]]] = field(default_factory=dict)


def report_format(path: str, fmt: Optional[str]) -> str:
    """The format to write, once `path` is known to be writable and to match it.

    Raises:
        RenderError: the folder is missing or read-only, the path is a folder, or the
            extension does not name the format.
    """
    from mlmd_exercise.render import output_format

    ext = output_format(path, ("html", "htm", "md"))
    named = "md" if ext == "md" else "html"
    if fmt is not None and fmt != named:
        raise RenderError(f"output path '{path}' names {named.upper()} but --format is {fmt}: "
                          f"use a .{'md' if fmt == 'md' else 'html'} file")
    return named


def gather(store: Store, *, artifact: Optional[int] = None, execution: Optional[int] = None,
           experiment: Optional[str] = None, direction: str = "both", hops: Optional[int] = None) -> ReportData:
    """What a report shows: a node's lineage (else that of the newest runs), the newest
    runs and the counts by state, for the store or one experiment.

    Raises:
        NotFoundError: the node or experiment is not in the store.
    """
    from mlmd_exercise.read.lineage import execution_lineage

    context = store.catalog.context_id(experiment) if experiment is not None else None
    start: Optional[Tuple[str, int]] = None
    if artifact is not None:
        start = ("artifact", artifact)
    elif execution is not None:
        start = ("execution", execution)
    if start is not None:  # the node's lineage, and the runs in it (not the store's newest)
        graph = walk(store, artifact_id=artifact, execution_id=execution, direction=direction, hops=hops)
        reach = "all hops" if hops is None else f"{hops} hops"
        lineage_title = f"Lineage of {start[0]} {start[1]} ({direction}, {reach})"
        in_lineage = sorted(graph.executions.values(), key=lambda e: -e.id)
        if context is not None:  # the lineage's runs that are in the experiment
            members = {e.id for e in store.backend.executions(Query(ids=[e.id for e in in_lineage],
                                                                    context_id=context))}
            in_lineage = [e for e in in_lineage if e.id in members]
        newest = runs_of(store, in_lineage[:RUNS])
        node = (graph.artifacts if start[0] == "artifact" else graph.executions)[start[1]]
        where = f"{start[0]} {start[1]} ({node.type})" + (f", experiment {experiment}" if experiment else "")
        counts = dict(Counter(e.state for e in in_lineage))
    else:
        newest = runs_page(store, RunsQuery(context=context, per=RUNS))
        graph = _merge([execution_lineage(store, r.execution.id) for r in newest.rows])
        lineage_title = (f"Lineage of the newest {len(newest.rows)} runs: their inputs and outputs"
                         if newest.rows else "Lineage: no runs recorded")
        where = f"experiment {experiment}" if experiment is not None else "the whole store"
        counts = count_apart(store, experiment)
    curves: Dict[str, Dict[str, Tuple[Point, ...]]] = {}
    for row in newest.rows[:6]:  # as many as a chart tells apart by colour
        for key, points in pages.run_curves(store, row.execution.id).items():
            curves.setdefault(key, {})[f"{row.execution.type} #{row.execution.id}"] = points
    return ReportData(str(store), f"Lineage report: {where}", lineage_title, graph, start, newest,
                      counts, curves)


def _merge(runs: List[ExecutionLineage]) -> LineageGraph:
    artifacts: Dict[int, ArtifactRecord] = {}
    executions = {}
    edges: List[LineageEdge] = []
    for one in runs:
        executions[one.execution.id] = one.execution
        for kind, side in (("INPUT", one.inputs), ("OUTPUT", one.outputs)):
            for role, a in side:
                artifacts[a.id] = a
                edges.append(LineageEdge(a.id, one.execution.id, kind, role))
    return LineageGraph(artifacts, executions, tuple(edges))


def _no_link(kind: str, node_id: int) -> str:
    return ""


def html_report(data: ReportData) -> str:
    """The report as one HTML document with nothing outside it."""
    from mlmd_exercise.render import states_chart_svg
    from mlmd_exercise.web.curves import curves_svg
    from mlmd_exercise.web.server import STATIC

    css = (STATIC / "style.css").read_text()
    graph = (views.lineage_svg(data.graph, _no_link, data.start) if data.graph.artifacts or data.graph.executions
             else '<p class="none">nothing to draw</p>')
    chart = states_chart_svg(data.counts)
    chart = chart[chart.index("<svg"):]
    counts = "".join(f"<tr><td>{views.esc(s)}</td><td>{n}</td></tr>" for s, n in data.counts.items())
    curves = "".join(curves_svg(key, series) for key, series in sorted(data.curves.items()))
    body = (f'<div class="report"><p class="muted">store {views.esc(data.store)} · written '
            f'{views.esc(datetime.now().strftime("%Y-%m-%d %H:%M"))} by mlmd-exercise report</p>'
            f"<h2>{views.esc(data.lineage_title)}</h2>{views.legend()}<div class=\"graph\">{graph}</div>"
            f"<h2>{_runs_title(data)}</h2>{_runs_html(data.runs)}"
            + (f'<h2>Curves</h2><div class="curves">{curves}</div>' if curves else "")
            + f'<h2>Executions by state</h2><div class="chart">{chart}</div>'
            f"<table><thead><tr><th>state</th><th>executions</th></tr></thead><tbody>{counts}</tbody></table></div>")
    return views.layout(data.title, body, scripts=False, inline_css=css)


def _runs_title(data: ReportData) -> str:
    return "The lineage's runs, newest first" if data.start is not None else "Runs, newest first"


def _runs_html(page: RunsPage) -> str:
    table = views.runs_table(page, link=_no_link, sortable=False, select=False)
    return re.sub(r'<a href="">(.*?)</a>', r"\1", table)  # no server behind the report: plain ids


# -- Markdown ---------------------------------------------------------------------------------

_MERMAID_ENTITIES = {"#": "#35;", '"': "#quot;", "<": "#lt;", ">": "#gt;", "&": "#amp;", "`": "#96;",
                     "|": "#124;", "[": "#91;", "]": "#93;", "{": "#123;", "}": "#125;", "(": "#40;", ")": "#41;"}


def mermaid_text(text: str) -> str:
    """Text for a quoted Mermaid label: every character that Mermaid or a code host could
    read as syntax or markup written as Mermaid's entity code, line breaks as spaces."""
    return "".join(_MERMAID_ENTITIES.get(c, c) for c in " ".join(str(text).split()))


def mermaid(graph: LineageGraph) -> str:
    """The lineage as a Mermaid flowchart: artifacts as boxes, executions as rounded boxes
    coloured by state, edges labelled by role."""
    from mlmd_exercise.render import STATE_COLORS

    lines = ["flowchart LR"]
    for a in sorted(graph.artifacts.values(), key=lambda a: a.id):
        version = f" v{a.version}" if a.version is not None else ""
        lines.append(f'    a{a.id}["{mermaid_text(f"{a.type} #{a.id}")}<br/>{mermaid_text(a.label + version)}"]')
    for e in sorted(graph.executions.values(), key=lambda e: e.id):
        lines.append(f'    e{e.id}("{mermaid_text(f"{e.type} #{e.id}")}<br/>{mermaid_text(e.state)}")')
        lines.append(f"    class e{e.id} state_{e.state}")
    for edge in graph.edges:
        if edge.artifact_id not in graph.artifacts or edge.execution_id not in graph.executions:
            continue
        a_node, e_node = f"a{edge.artifact_id}", f"e{edge.execution_id}"
        tail, head = (a_node, e_node) if edge.kind == "INPUT" else (e_node, a_node)
        label = f'|"{mermaid_text(edge.role)}"|' if edge.role else ""
        lines.append(f"    {tail} -->{label} {head}")
    for state, color in STATE_COLORS.items():
        lines.append(f"    classDef state_{state} fill:{color},stroke:#444")
    return "\n".join(lines)


def md_text(text: object) -> str:
    """Text for a Markdown table cell: no markup, no HTML, no cell break."""
    out = " ".join(str(text).split())
    out = out.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return re.sub(r"([\\`*_\[\]{}()#+!|~])", r"\\\1", out)


def markdown_report(data: ReportData) -> str:
    page = data.runs
    header = ["run", "type", "state", "experiment / context", "start", "duration",
              *page.param_columns, *page.metric_columns]
    rows = []
    for r in page.rows:
        e = r.execution
        cells = [f"#{e.id}", e.type, e.state, ", ".join(name for _, name, _ in r.contexts) or "-",
                 text.when(r.started_ms), text.duration(r.duration_ms)]
        cells += [views.value(r.params.get(k)) for k in page.param_columns]
        cells += [views.value(r.metrics.get(k)) for k in page.metric_columns]
        rows.append(cells)
    table = ["| " + " | ".join(md_text(h) for h in header) + " |", "|" + " --- |" * len(header)]
    table += ["| " + " | ".join(md_text(c) for c in row) + " |" for row in rows]
    counts = ["| state | executions |", "| --- | --- |"] + [f"| {s} | {n} |" for s, n in data.counts.items()]
    return "\n".join([
        f"# {md_text(data.title)}", "",
        f"store {md_text(data.store)}, written {datetime.now():%Y-%m-%d %H:%M} by mlmd-exercise report", "",
        f"## {md_text(data.lineage_title)}", "", "```mermaid", mermaid(data.graph), "```", "",
        f"## {_runs_title(data)}", "", *(table if rows else ["no runs"]), "",
        "## Executions by state", "", *(counts if data.counts else ["no executions"]), ""])


def write_report(data: ReportData, path: str, fmt: str) -> Path:
    text = markdown_report(data) if fmt == "md" else html_report(data)
    out = Path(path)
    out.write_text(text, encoding="utf-8")
    return out

