"""Records, lineage, a Diff and a metric history shown in Jupyter, and `show_lineage`.

Jupyter displays an object by calling its `_repr_html_`: each record's (records.py), a `Diff`'s
and a `MetricHistory`'s imports this module when it is called, so that nothing is paid outside
a notebook, and asks `html` for its HTML. That HTML is the explorer's own (web/views.py, every
stored string escaped; its stylesheet, scoped to the output) with no script and no reference to
any other file or address, as the HTML report: a notebook saved with its outputs shows them
anywhere. The lineage is graphviz's SVG, drawn as `mlmd-exercise graph` draws it (alike runs as
one node: collapse.py); where `dot` is missing, one line says so instead.

    mx.show_lineage(model)                       # the graph around an ArtifactRecord, in the cell
    mx.show_lineage(3, kind="execution", store="metadata.db", direction="upstream")
"""

from __future__ import annotations

import functools
import math
import os
import re
from dataclasses import dataclass
from typing import Any, List, Optional, Sequence, Tuple, Union

from mlmd_exercise import text
from mlmd_exercise.collapse import Group, collapse
from mlmd_exercise.errors import RenderError, UsageError
from mlmd_exercise.history import MetricHistory
from mlmd_exercise.records import (DIRECTIONS, METRIC_NAMES, RUN_NAME, TAG_PREFIX, ArtifactRecord, ExecutionLineage,
                                   ExecutionRecord, LineageGraph)
from mlmd_exercise.read.diff import Diff
from mlmd_exercise.store import Store
from mlmd_exercise.values import shown
from mlmd_exercise.web import views
from mlmd_exercise.web.server import MAX_DRAWN, STATIC  # one picture's nodes at most, as on the explorer

__all__ = ["LineageView", "show_lineage", "html", "MAX_DRAWN"]

_CLASS = "mlmdx"  # the class of every output's outer element: what the stylesheet is scoped to
Node = Union[ArtifactRecord, ExecutionRecord]
# What an execution's facts show already (its name, its failure), or the package keeps for itself.
_SHOWN = frozenset({RUN_NAME, METRIC_NAMES, "error_type", "error_message"})


def _no_link(kind: str, node_id: int) -> str:
    return ""  # no server behind a notebook: ids as plain text


@functools.lru_cache(maxsize=1)
def _style() -> str:
    """The explorer's stylesheet, each rule scoped to the output (`.mlmdx td`, not `td`), so
    that it styles nothing else in the notebook."""
    rules = []
    for line in (STATIC / "style.css").read_text().splitlines():
        found = re.fullmatch(r"([^@/{}][^{}]*?)\s*\{(.*)\}\s*", line.strip())
        if found is None:  # a comment, the @media rule of the two-column page
            continue
        selectors = [s.strip() for s in found.group(1).split(",")]
        scoped = [f".{_CLASS}" if s in (":root", "body") else f".{_CLASS} {s}" for s in selectors]
        rules.append(f"{', '.join(scoped)} {{{found.group(2)}}}")
    # The report's graph: as tall and as wide as it is drawn, no wider than the cell.
    rules.append(f".{_CLASS} .graph {{ height: auto; min-height: 0; overflow: auto; width: fit-content; "
                 "max-width: 100%; }")
    rules.append(f".{_CLASS} .graph svg {{ max-width: 100%; height: auto; }}")
    rules.append(f".{_CLASS} h2 {{ font-size: 15px; margin: 12px 0 4px; }}")
    return "\n".join(rules)


def _frame(title: str, body: str) -> str:
    return (f'<div class="{_CLASS}"><style>{_style()}</style>'
            f'<div class="title"><b>{views.esc(title)}</b></div>{body}</div>')


def _when(ms: Optional[int]) -> str:
    return views.esc(text.when(ms))


# -- Records ----------------------------------------------------------------------------------


def _artifact(a: ArtifactRecord) -> str:
    facts = [("type", views.esc(a.type_version)), ("name", views.esc(a.label)),
             ("uri", f"<code>{views.esc(a.uri)}</code>"), ("state", views.esc(a.state)),
             ("created", _when(a.created_ms))]
    if a.when_ms != a.created_ms:
        facts.append(("made", _when(a.when_ms)))
    body = (views.table(("", ""), ((f"<b>{k}</b>", v) for k, v in facts), "facts")
            + "<h2>Properties</h2>" + views.properties_table(a.properties))
    return _frame(f"{a.type} #{a.id}", body)


def _execution_facts(e: ExecutionRecord) -> str:
    facts = [("type", views.esc(e.type)), ("state", views.state_badge(e.state))]
    if e.label:
        facts.append(("name", views.esc(e.label)))
    if e.tags:
        facts.append(("tags", ", ".join(f"{views.esc(k)}={views.esc(v)}" for k, v in e.tags.items())))
    facts.append(("created", _when(e.created_ms)))
    if e.when_ms != e.created_ms:
        facts.append(("started", _when(e.when_ms)))
    if e.ended_ms is not None:
        facts.append(("duration", views.esc(text.duration(e.ended_ms - e.when_ms))))
    failure = "" if "error_message" not in e.properties else (
        f'<p class="notice"><b>{views.esc(e.properties.get("error_type") or e.state)}:</b> '
        f'<code>{views.esc(e.properties["error_message"])}</code></p>')
    return failure + views.table(("", ""), ((f"<b>{k}</b>", v) for k, v in facts), "facts")


def _execution(e: ExecutionRecord, outputs: Sequence[Tuple[str, ArtifactRecord]] = ()) -> str:
    from mlmd_exercise.web.pages import split_properties

    params, metrics, environment = split_properties(e, outputs)
    rest = {k: v for k, v in e.properties.items()
            if k not in params and k not in metrics and k not in environment
            and k not in _SHOWN and not k.startswith(TAG_PREFIX) and not (k == "state" and v == e.state)}
    left = [_execution_facts(e), "<h2>Metrics</h2>", views.properties_table(metrics)]
    if rest:
        left += ["<h2>Other properties</h2>", views.properties_table(rest)]
    if environment:  # long (every package): folded, as a <details> opens with no script
        left.append(f"<details><summary>Environment ({text.count(len(environment), 'value')})</summary>"
                    f"{views.properties_table(environment)}</details>")
    right = ["<h2>Params</h2>", views.properties_table(params)]
    return f'<div class="columns"><div>{"".join(left)}</div><div>{"".join(right)}</div></div>'


def _events(rows: Sequence[Tuple[str, str, Node]]) -> str:
    cells = [(views.esc(kind), views.esc(role or "-"), views.node_link(node, _no_link) + (
        f' <span class="muted">{views.esc(node.label)}</span>' if isinstance(node, ArtifactRecord)
        else f" {views.state_badge(node.state)}")) for kind, role, node in rows]
    return (views.table(("kind", "role", "artifact"), cells, "events") if cells
            else '<p class="none">none</p>')


def _lineage_hop(hop: ExecutionLineage) -> str:
    e = hop.execution
    rows = [("INPUT", role, a) for role, a in hop.inputs] + [("OUTPUT", role, a) for role, a in hop.outputs]
    return _frame(f"{e.type} #{e.id} ({e.state})",
                  _execution(e, hop.outputs) + "<h2>Inputs and outputs</h2>" + _events(rows))


# -- Lineage ----------------------------------------------------------------------------------


def _counts(graph: LineageGraph) -> str:
    artifacts = len(graph.artifacts) + sum(len(ids) - 1 for ids in graph.collapsed_artifacts.values())
    executions = len(graph.executions) + sum(len(ids) - 1 for ids in graph.collapsed.values())
    return f"{text.count(artifacts, 'artifact')}, {text.count(executions, 'execution')}"


def _draw(graph: LineageGraph, start: Optional[Tuple[str, int]]) -> Tuple[Optional[str], str]:
    """(the SVG, None where it is not drawn; the line that says why not, else "")."""
    size = len(graph.artifacts) + len(graph.executions)
    if not size:
        return None, '<p class="none">nothing to draw</p>'
    if size > MAX_DRAWN:
        return None, views.too_big(size, MAX_DRAWN)
    try:
        return views.lineage_svg(graph, _no_link, start), ""
    except RenderError as e:  # dot missing, or refused the graph: said, not raised into the cell
        return None, f'<p class="notice">{views.esc(e)}</p>'


@dataclass(frozen=True)
class LineageView:
    """A lineage graph drawn for a notebook: what `show_lineage` returns, shown in the cell as
    the graph (`_repr_html_`, and `_repr_svg_` where it could be drawn)."""

    graph: LineageGraph  # as drawn: alike runs as one node unless expanded (`groups` says which)
    title: str
    svg: Optional[str]  # graphviz's SVG element; None where it was not drawn (`note` says why)
    note: str = ""  # HTML: why there is no picture
    groups: Tuple[Group, ...] = ()
    start: Optional[Tuple[str, int]] = None

    def _repr_svg_(self) -> Optional[str]:
        return self.svg

    def _repr_html_(self) -> str:
        return html(self)


def _graph_html(view: LineageView) -> str:
    expand = "show_lineage(..., expand=True) draws every run." if view.start is not None else ""
    body = (f'<p class="actions">{views.esc(_counts(view.graph))}</p>'
            + views.collapsed_note(list(view.groups), expand_text=expand) + view.note)
    if view.svg is not None:
        body += views.legend() + f'<div class="graph">{view.svg}</div>'
    return _frame(view.title, body)


def _view(graph: LineageGraph, title: str, start: Optional[Tuple[str, int]] = None,
          expand: bool = False) -> LineageView:
    groups: List[Group] = []
    if not expand and not graph.collapsed:
        graph, groups = collapse(graph)
    svg, note = _draw(graph, start)
    return LineageView(graph, title, svg, note, tuple(groups), start)


def _node_of(node: Any, kind: Optional[str]) -> Tuple[str, int, Optional[Node]]:
    """(kind, id, the record given, if one) of show_lineage's `node` and `kind`."""
    from mlmd_exercise.write.run import Run

    if kind is not None and kind not in ("artifact", "execution"):
        raise UsageError(f"show_lineage: kind must be 'artifact' or 'execution', not {shown(kind)}")
    if isinstance(node, (ArtifactRecord, ExecutionRecord)):
        found = "artifact" if isinstance(node, ArtifactRecord) else "execution"
        if kind is not None and kind != found:
            raise UsageError(f"show_lineage: kind is '{kind}', but node is an {found} ({node.type} #{node.id})")
        return found, node.id, node
    if isinstance(node, Run):
        if kind == "artifact":
            raise UsageError(f"show_lineage: kind is 'artifact', but node is a run (execution {node.id})")
        return "execution", node.id, None
    if isinstance(node, int) and not isinstance(node, bool):
        if node <= 0:
            raise UsageError(f"show_lineage: node must be a positive id, not {node}")
        if kind is None:
            raise UsageError(f"show_lineage: kind must say what the id {node} is: kind='artifact' or "
                             "kind='execution'")
        return kind, node, None
    raise UsageError("show_lineage: node must be an ArtifactRecord, an ExecutionRecord, a Run or an id, "
                     f"not {shown(node)}")


def show_lineage(node: Any, store: Union[Store, str, "os.PathLike[str]", None] = None, *,
                 kind: Optional[str] = None, direction: str = "both", hops: Optional[int] = None,
                 expand: bool = False) -> LineageView:
    """The lineage of one artifact or execution, drawn in the notebook cell it is shown in.

    Args:
        node: an `ArtifactRecord` or `ExecutionRecord` (`run.outputs["model"]`, what
            `mx.list_artifacts` returns), a `Run`, or an id with `kind`.
        store: an open `Store` or a store's address (opened to read, and closed); default
            $MLMD_STORE, else `metadata.db`.
        kind: what an id is, "artifact" or "execution".
        direction: "upstream", "downstream" or "both" (DIRECTIONS).
        hops: the most events to cross from the node; None for all.
        expand: draw every run (without it, alike runs with nothing downstream are one node,
            `Trainer x2000`, as `mlmd-exercise graph` draws them).

    Returns:
        A `LineageView`: Jupyter shows it as the graph (SVG, drawn by graphviz's `dot`; where
        `dot` is missing, or the graph has more than MAX_DRAWN nodes, one line says so).

    Raises:
        UsageError: an argument is wrong, naming it; a record given is not the one the store
            holds under its id (a record of another store: pass `store=`).
        NotFoundError: the store holds no such node.
        StoreError: the store cannot be opened.
    """
    from mlmd_exercise.read.lineage import walk
    from mlmd_exercise.store import open_store

    node_kind, node_id, record = _node_of(node, kind)
    if direction not in DIRECTIONS:
        raise UsageError(f"show_lineage: direction must be one of {', '.join(DIRECTIONS)}, not {shown(direction)}")
    if hops is not None and (not isinstance(hops, int) or isinstance(hops, bool) or hops < 0):
        raise UsageError(f"show_lineage: hops must be a whole number 0 or more, or None for all, not {shown(hops)}")
    if not isinstance(expand, bool):
        raise UsageError(f"show_lineage: expand must be True or False, not {shown(expand)}")
    if store is not None and not isinstance(store, (Store, str, os.PathLike)):
        raise UsageError(f"show_lineage: store must be a store's address or an open Store, not {shown(store)}")
    opened = store if isinstance(store, Store) else open_store(store)
    try:
        start = {"artifact_id": node_id} if node_kind == "artifact" else {"execution_id": node_id}
        graph = walk(opened, direction=direction, hops=hops, **start)
        stored = (graph.artifacts if node_kind == "artifact" else graph.executions)[node_id]
        if record is not None and (stored.type, stored.created_ms, _identity(stored)) != \
                (record.type, record.created_ms, _identity(record)):
            raise UsageError(f"show_lineage: {node_kind} {node_id} in {opened} is not the {record.type} given "
                             "(a record of another store?): pass that store, store=...")
        where = "all hops" if hops is None else text.count(hops, "hop")
        title = f"Lineage of {stored.type} #{node_id} ({direction}, {where})"
        return _view(graph, title, (node_kind, node_id), expand)
    finally:
        if opened is not store:
            opened.close()


def _identity(node: Node) -> str:
    return node.uri if isinstance(node, ArtifactRecord) else node.name


# -- A diff, a metric history ------------------------------------------------------------------


def _diff(d: Diff) -> str:
    from mlmd_exercise.web.pages import comparison

    return _frame(f"Compare {d.a.type} #{d.a.id} and {d.b.type} #{d.b.id}",
                  views.compare_body(comparison(d), _no_link))


def _history(h: MetricHistory) -> str:
    from mlmd_exercise.read.history import downsample
    from mlmd_exercise.web.curves import POINTS, curves_svg

    title = f"{h.key or 'metric'} of execution {h.execution_id}" if h.execution_id else (h.key or "metric")
    finite = [p.value for p in h if isinstance(p.value, (int, float)) and math.isfinite(p.value)]
    facts = f"{text.count(len(h), 'point')}"
    if h:
        facts += (f", steps {h[0].step} to {h[-1].step}" if len(h) > 1 else f", step {h[0].step}")
        facts += f", last {views.value(h[-1].value)}"
    if finite:
        facts += f", min {views.value(min(finite))}, max {views.value(max(finite))}"
    curve = curves_svg(title, {h.key or "metric": downsample(h, POINTS)})
    return _frame(title, f'<p class="actions">{views.esc(facts)}</p><div class="curves">{curve}</div>')


def html(obj: Any) -> str:
    """The HTML a notebook shows for a record, a lineage graph or hop, a Diff, a metric
    history or a LineageView.

    Raises:
        UsageError: `obj` is none of those.
    """
    if isinstance(obj, LineageView):
        return _graph_html(obj)
    if isinstance(obj, LineageGraph):  # what mx.walk returns
        return _graph_html(_view(obj, "Lineage"))
    if isinstance(obj, ArtifactRecord):
        return _artifact(obj)
    if isinstance(obj, ExecutionRecord):
        return _frame(f"{obj.type} #{obj.id}", _execution(obj))
    if isinstance(obj, ExecutionLineage):
        return _lineage_hop(obj)
    if isinstance(obj, Diff):
        return _diff(obj)
    if isinstance(obj, MetricHistory):
        return _history(obj)
    raise UsageError(f"html: cannot show {shown(obj)}: give a record, a lineage graph, a Diff or a metric history")
