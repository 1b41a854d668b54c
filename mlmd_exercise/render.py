"""Drawing: the lineage graph with graphviz, the executions-by-state chart with matplotlib.

This module draws plain records (see `records`) and never touches a store, so
it can be tested without one. matplotlib and graphviz are imported inside the
functions that need them: query commands that draw nothing start faster.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Set, Union

from mlmd_exercise.errors import RenderError
from mlmd_exercise.labels import execution_name, headline_metric, short_type, shorten
from mlmd_exercise.records import LineageGraph

__all__ = [
    "GRAPH_FORMATS",
    "CHART_FORMATS",
    "STATE_COLORS",
    "output_format",
    "require_dot",
    "check_graph_output",
    "lineage_source",
    "render_lineage",
    "draw",
    "render_states_chart",
    "show_states_chart",
    "states_chart_svg",
]

PathLike = Union[str, os.PathLike]
GRAPH_FORMATS = ("svg", "png", "pdf", "dot")
PNG_DPI = 192
DOT_TEXT = 4_000  # at most this many characters of a stored string in the DOT source (escaped: twice that)
CHART_DPI = 200
CHART_FORMATS = ("png", "svg", "pdf")
STATE_COLORS = {
    "UNKNOWN": "#d9d9d9",
    "NEW": "#c6dbef",
    "RUNNING": "#fdd870",
    "COMPLETE": "#a1d99b",
    "FAILED": "#fc9272",
    "CACHED": "#9ecae1",
    "CANCELED": "#bdbdbd",
}


def output_format(path: PathLike, allowed: Sequence[str]) -> str:
    """The format named by `path`'s extension, once `path` is known to be writable.

    Raises:
        RenderError: the extension is missing or not one of `allowed`, or the
            file cannot be written there (no such folder, a folder, no permission).
    """
    out = Path(path)
    folder = out.parent
    if out.is_dir():
        raise RenderError(f"output path '{os.fspath(path)}' is a folder: give a file name")
    if not folder.is_dir():
        raise RenderError(f"cannot write '{os.fspath(path)}': folder '{os.fspath(folder)}' does not exist")
    if not os.access(folder, os.W_OK | os.X_OK) or (out.exists() and not os.access(out, os.W_OK)):
        raise RenderError(f"cannot write '{os.fspath(path)}': permission denied")
    ext = out.suffix.lower().lstrip(".")
    if ext not in allowed:
        shown = ", ".join("." + a for a in allowed)
        raise RenderError(
            f"unknown output format '.{ext}' of '{os.fspath(path)}': use one of {shown}"
            if ext else f"output path '{os.fspath(path)}' has no extension: use one of {shown}"
        )
    return ext


def require_dot() -> str:
    """The path of graphviz's `dot` program.

    Raises:
        RenderError: `dot` is not on the PATH.
    """
    dot = shutil.which("dot")
    if dot is None:
        raise RenderError(
            "graphviz's 'dot' program is not on the PATH: "
            "install it with 'apt-get install graphviz'"
        )
    return dot


def check_graph_output(path: PathLike) -> str:
    """Checks, before any work, that a lineage graph can be written to `path`.

    Returns:
        The output format.

    Raises:
        RenderError: unknown format, or `dot` missing for a format it renders.
    """
    fmt = output_format(path, GRAPH_FORMATS)
    if fmt != "dot":
        require_dot()
    return fmt


# Control characters other than newline and tab, shown as their Unicode pictures (U+2400...).
_CONTROLS = {c: 0x2400 + c for c in range(32) if chr(c) not in "\n\t"}
_CONTROLS[0x7F] = 0x2421


def _quote(text: str):
    """Any stored string as DOT text that graphviz shows as it is: backslashes and quotes
    escaped, and marked as never an HTML label (a type named `<class 'x'>` is text)."""
    from graphviz import nohtml

    if len(text) > DOT_TEXT:  # dot refuses a string of more than 16,384 characters
        text = text[:DOT_TEXT - 1] + "…"
    return nohtml(text.translate(_CONTROLS).replace("\\", "\\\\").replace('"', '\\"'))


def _artifact_label(a, count: int) -> str:
    if count > 1:
        return f"{shorten(short_type(a.type))} x{count:,}"
    label = f"{shorten(short_type(a.type))} #{a.id}\n{shorten(a.label)}"
    if short_type(a.type) == "Metrics":  # a Metrics node says how good the model is
        headline = headline_metric(a.properties)
        label += f"\n{headline}" if headline else ""
    return label + (f"\nv{a.version}" if a.version is not None else "")


def _execution_label(e, count: int, differ: Sequence[str] = ()) -> str:
    title = shorten(execution_name(e.properties) or short_type(e.type))
    if count > 1:  # a sweep drawn as one: what tells its runs apart
        return f"{title} x{count:,}\n" + "".join(f"{shorten(d)}\n" for d in differ) + e.state
    name = e.label  # a run's own name, under its step's
    return f"{title} #{e.id}\n" + (f"{shorten(name)}\n" if name and name != title else "") + e.state


def _legend(dot, graph: LineageGraph) -> None:
    """A box that says what the shapes and the fill colours mean (the states drawn)."""
    states = [s for s in STATE_COLORS if any(e.state == s for e in graph.executions.values())]
    with dot.subgraph(name="cluster_legend") as legend:
        legend.attr(label="legend", style="rounded", color="#bbbbbb", fontsize="10",
                    fontcolor="#555555")
        legend.node("legend_artifact", "artifact\n(file, model, ...)", shape="note", fontsize="9")
        for state in states:
            legend.node(f"legend_{state}", f"execution\n{state}", shape="box", style="rounded,filled",
                        fillcolor=STATE_COLORS[state], fontsize="9")
        chain = ["legend_artifact"] + [f"legend_{state}" for state in states]
        for tail, head in zip(chain, chain[1:]):  # one column, kept apart from the lineage
            legend.edge(tail, head, style="invis")


def lineage_source(graph: LineageGraph, legend: bool = True) -> str:
    """The graph in graphviz's DOT language.

    Artifacts are notes labelled with type, id, name (or file name) and version;
    executions are rounded boxes filled by state, drawn inside a dashed box per
    experiment when `graph.experiments` is filled. Edges run from an input
    artifact to the execution, and from the execution to an output artifact.
    """
    import graphviz

    # pad: a margin around the picture (inches), so that nothing touches its edge.
    dot = graphviz.Digraph("lineage", graph_attr={"rankdir": "LR", "fontname": "Helvetica",
                                                  "pad": "0.3", "nodesep": "0.3"})
    dot.attr("node", fontname="Helvetica", fontsize="11")
    dot.attr("edge", fontname="Helvetica", fontsize="10")
    cluster_of = {e: name for name, ids in graph.experiments.items() for e in ids}
    # An artifact is drawn inside an experiment's box when every execution it is
    # joined to in this graph belongs to that experiment.
    touching: Dict[int, Set[Optional[str]]] = {}
    for edge in graph.edges:
        touching.setdefault(edge.artifact_id, set()).add(cluster_of.get(edge.execution_id))
    members: Dict[Optional[str], List[str]] = {}
    for a in sorted(graph.artifacts.values(), key=lambda a: a.id):
        homes = touching.get(a.id, {None})
        members.setdefault(homes.pop() if len(homes) == 1 else None, []).append(f"a{a.id}")
        many = len(graph.collapsed_artifacts.get(a.id, ()))
        tip = f"{a.type} #{a.id}" + (f" and {many - 1:,} more" if many > 1 else "") + f"\n{a.label}\n{a.uri}"
        dot.node(f"a{a.id}", _quote(_artifact_label(a, many)), shape="note", tooltip=_quote(tip))
    for e in sorted(graph.executions.values(), key=lambda e: e.id):
        members.setdefault(cluster_of.get(e.id), []).append(f"e{e.id}")
        many = len(graph.collapsed.get(e.id, ()))
        name = execution_name(e.properties) or e.label
        differ = graph.collapsed_differ.get(e.id, ())
        tip = f"{e.type} #{e.id}" + (f" and {many - 1:,} more" if many > 1 else "") + \
            (f"\n{name}" if name else "") + "".join(f"\n{d}" for d in differ) + f"\n{e.state}"
        dot.node(
            f"e{e.id}",
            _quote(_execution_label(e, many, differ)),
            tooltip=_quote(tip),
            shape="box",
            style="rounded,filled",
            fillcolor=STATE_COLORS.get(e.state, "white"),
        )
    for index, name in enumerate(n for n in graph.experiments if members.get(n)):
        with dot.subgraph(name=f"cluster_{index}") as cluster:
            cluster.attr(label=_quote(shorten(f"{graph.grouping} {name}", 60)), style="rounded,dashed",
                         color="#777777", tooltip=_quote(f"{graph.grouping} {name}"))
            for node in members[name]:
                cluster.node(node)
    for edge in graph.edges:
        if edge.artifact_id not in graph.artifacts or edge.execution_id not in graph.executions:
            continue
        a_node, e_node = f"a{edge.artifact_id}", f"e{edge.execution_id}"
        tail, head = (a_node, e_node) if edge.kind == "INPUT" else (e_node, a_node)
        role = edge.role + (f" ({edge.event})" if edge.event else "")  # DECLARED_INPUT and the like
        if edge.kind == "OUTPUT" and graph.executions[edge.execution_id].state == "CACHED":
            # A step not run again: its output re-publishes what an earlier execution made.
            dot.edge(tail, head, label=_quote(shorten(role) + "\n(cached)"), style="dashed", color="#4a7fb0")
            continue
        dot.edge(tail, head, label=_quote(shorten(role)))
    if legend and (graph.executions or graph.artifacts):
        _legend(dot, graph)
    return dot.source


def render_lineage(graph: LineageGraph, path: PathLike) -> Path:
    """Writes the lineage graph to `path`, in the format its extension names.

    Returns:
        The path written.

    Raises:
        RenderError: unknown format, `dot` missing, or `dot` failed.
    """
    fmt = check_graph_output(path)
    source = lineage_source(graph)
    if fmt == "dot":
        data = source.encode()
    else:
        if fmt == "png":  # twice graphviz's 96 dpi: sharp when zoomed, and on high-density screens
            source = source.replace("digraph lineage {", f"digraph lineage {{\n\tdpi={PNG_DPI}", 1)
        data = draw(source, fmt, f"'{os.fspath(path)}'")
    out = Path(path)
    out.write_bytes(data)
    return out


def draw(source: str, fmt: str, what: str) -> bytes:
    """DOT source drawn by graphviz's `dot` in `fmt`.

    Raises:
        RenderError: dot is missing, or refused the graph (its own message; where dot quit while
            the source was still being written to it, the pipe breaking says so, not a closed stdout).
    """
    import graphviz

    try:
        return graphviz.Source(source).pipe(format=fmt)
    except graphviz.ExecutableNotFound:
        require_dot()
        raise
    except graphviz.CalledProcessError as e:
        raise RenderError(f"graphviz failed to draw {what}: {e.stderr!r}") from None
    except BrokenPipeError:
        raise RenderError(f"graphviz failed to draw {what}: dot quit before it had read the whole graph") from None


def render_states_chart(counts: Mapping[str, int], path: PathLike) -> Path:
    """Saves a bar chart of executions by state: one bar per state in `counts`.

    Returns:
        The path written.

    Raises:
        RenderError: the extension is not one of CHART_FORMATS.
    """
    fmt = output_format(path, CHART_FORMATS)
    import matplotlib

    matplotlib.use("Agg")
    fig = _states_figure(counts)
    import matplotlib.pyplot as plt

    try:
        fig.savefig(path, format=fmt, dpi=CHART_DPI)  # twice a screen's 100 dpi: sharp when zoomed
    finally:
        plt.close(fig)
    return Path(path)


def states_chart_svg(counts: Mapping[str, int]) -> str:
    """The same chart as an SVG document, as text (for web pages and reports)."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = _states_figure(counts)
    buffer = io.StringIO()
    try:
        with matplotlib.rc_context({"svg.hashsalt": "mlmd-exercise", "svg.fonttype": "path"}):
            fig.savefig(buffer, format="svg")
    finally:
        plt.close(fig)
    # The picture alone: matplotlib's <metadata> names web addresses, which a
    # self-contained page must not hold.
    return re.sub(r"<metadata>.*?</metadata>", "", buffer.getvalue(), flags=re.S)


def show_states_chart(counts: Mapping[str, int]) -> None:
    """Opens the chart in a window; needs a display."""
    import matplotlib.pyplot as plt

    _states_figure(counts)
    plt.show()


def _states_figure(counts: Mapping[str, int]):
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(6, 4))
    states, values = list(counts), list(counts.values())
    bars = ax.bar(states, values, width=0.6, edgecolor="#444444",
                  color=[STATE_COLORS.get(s, "#cccccc") for s in states])
    pad = max(0.0, (3 - len(states)) / 2)  # a lone bar stands in the middle, not too wide
    ax.set_xlim(-0.75 - pad, len(states) - 0.25 + pad)
    ax.bar_label(bars)
    if not states:
        ax.text(0.5, 0.5, "no executions yet", ha="center", va="center", transform=ax.transAxes)
    ax.set_title(f"Executions by state ({sum(values)} in all)")
    ax.set_xlabel("State")
    ax.set_ylabel("Executions")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylim(0, max(values, default=1) * 1.15 + 0.01)
    fig.tight_layout()
    return fig
