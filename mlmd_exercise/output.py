"""How the CLI shows records: text lines for people, JSON-ready dicts for scripts.

Nothing here prints; `cli` does. The JSON keys are documented in the README and
kept stable: a record is `dataclasses.asdict` of it (id, type, uri, state,
properties, created_ms), edges are {artifact_id, execution_id, kind, role}.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Union

from .records import ENDED_MS, ArtifactRecord, ExecutionLineage, ExecutionRecord, LineageGraph

Node = Union[ArtifactRecord, ExecutionRecord]


def table(rows: Iterable[Sequence[str]], indent: str = "  ") -> List[str]:
    """Rows as aligned columns; the last column is not padded."""
    rows = [list(r) for r in rows]
    if not rows:
        return []
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    return [
        indent + "  ".join([c.ljust(w) for c, w in zip(r, widths)] + [r[-1]]).rstrip()
        for r in rows
    ]


def count(n: int, noun: str) -> str:
    """"1 artifact", "2 artifacts"."""
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {noun}s"


def when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M:%S") if ms else "-"


def artifact_cells(artifact: ArtifactRecord, same: Optional[Mapping[int, int]] = None) -> List[str]:
    """id, type and version, URI; and "same content as artifact N" where `same` knows one."""
    version = f" v{artifact.version}" if artifact.version is not None else ""
    twin = (same or {}).get(artifact.id)
    uri = artifact.uri + (f"  (same content as artifact {twin})" if twin else "")
    return [f"artifact {artifact.id}", artifact.type + version, uri]


def execution_cells(execution: ExecutionRecord) -> List[str]:
    return [f"execution {execution.id}", execution.type, execution.state]


def node_name(node: Node) -> str:
    kind = "artifact" if isinstance(node, ArtifactRecord) else "execution"
    return f"{node.type} #{node.id}" if node.id else kind


def format_lineage(one: ExecutionLineage, same: Optional[Mapping[int, int]] = None) -> List[str]:
    """One execution's inputs and outputs."""
    e = one.execution
    rows = [
        (kind, role or "-", *artifact_cells(a, same))
        for kind, side in (("INPUT", one.inputs), ("OUTPUT", one.outputs))
        for role, a in side
    ]
    return [f"execution {e.id} ({e.type}, {e.state})"] + (
        table(rows) or ["  no inputs or outputs recorded"]
    )


def format_graph(graph: LineageGraph, title: str, same: Optional[Mapping[int, int]] = None
                 ) -> List[str]:
    """A walked lineage graph: its nodes, then each event as an arrow."""
    lines = [f"{title}: {count(len(graph.artifacts), 'artifact')}, "
             f"{count(len(graph.executions), 'execution')}"]
    rows = [artifact_cells(a, same) for a in sorted(graph.artifacts.values(), key=lambda a: a.id)]
    rows += [execution_cells(e) for e in sorted(graph.executions.values(), key=lambda e: e.id)]
    lines += table(rows)
    arrows = []
    for edge in sorted(graph.edges, key=lambda e: (e.execution_id, e.kind, e.artifact_id)):
        a, e = graph.artifacts.get(edge.artifact_id), graph.executions.get(edge.execution_id)
        if a is None or e is None:
            continue
        a_name, e_name = node_name(a), node_name(e)
        tail, head = (a_name, e_name) if edge.kind == "INPUT" else (e_name, a_name)
        arrows.append((tail, f"--{edge.role or edge.kind.lower()}-->", head))
    if arrows:
        lines += ["events:"] + table(arrows)
    return lines


def format_counts(counts: Mapping[str, int]) -> str:
    if not counts:
        return "no executions"
    return ", ".join(f"{state} {n}" for state, n in counts.items())


def format_properties(properties: Mapping[str, Any]) -> List[str]:
    rows = ((k, repr(v) if isinstance(v, str) else str(v)) for k, v in sorted(properties.items()))
    return table(rows, indent="    ")


def format_listing(records: Sequence[Any]) -> List[str]:
    """`ls` rows under a header: artifacts, executions or experiments."""
    if not records:
        return []
    first = records[0]
    if isinstance(first, ArtifactRecord):
        header = ("ID", "TYPE", "VERSION", "CREATED", "URI")
        rows = [(str(a.id), a.type, f"v{a.version}" if a.version else "-", when(a.when_ms), a.uri)
                for a in records]
    elif isinstance(first, ExecutionRecord):
        header = ("ID", "TYPE", "STATE", "CREATED")
        rows = [(str(e.id), e.type, e.state, when(e.when_ms)) for e in records]
    else:
        header = ("ID", "NAME", "EXECUTIONS", "ARTIFACTS", "CREATED")
        rows = [(str(x.id), x.name, str(x.executions), str(x.artifacts), when(x.created_ms))
                for x in records]
    return table([header, *rows], indent="")


def format_detail(detail) -> List[str]:
    """`show`: one node, its properties, its events and its experiments."""
    node = detail.node
    is_artifact = isinstance(node, ArtifactRecord)
    cells = artifact_cells(node) if is_artifact else execution_cells(node)
    lines = [f"{cells[0]} ({cells[1]}, {node.state})"]
    if is_artifact:
        lines.append(f"  uri          {node.uri}")
    if node.when_ms != node.created_ms:  # imported with its original times
        lines.append(f"  {'created' if is_artifact else 'started':12} {when(node.when_ms)}")
        ended = node.properties.get(ENDED_MS)
        if isinstance(ended, (int, float)) and not is_artifact:
            lines.append(f"  ended        {when(int(ended))}")
        lines.append(f"  recorded     {when(node.created_ms)}")
    else:
        lines.append(f"  created      {when(node.created_ms)}")
    lines.append(f"  experiments  {', '.join(detail.experiments) or '-'}")
    if detail.same_content:
        lines.append("  same content as " + ", ".join(f"artifact {i}" for i in detail.same_content))
    lines += ["  properties"] + (format_properties(node.properties) or ["    none"])
    rows = [
        (e.kind, e.role or "-",
         f"execution {e.execution_id}" if is_artifact else f"artifact {e.artifact_id}")
        for e in detail.events
    ]
    return lines + ["  events"] + (table(rows, indent="    ") or ["    none"])


# -- JSON -------------------------------------------------------------------------


def record_json(record) -> Dict[str, Any]:
    """A record as a dict: its dataclass fields, under the same names."""
    data = dataclasses.asdict(record)
    data["properties"] = dict(record.properties)
    return data


def lineage_json(one: ExecutionLineage) -> Dict[str, Any]:
    return {
        "execution": record_json(one.execution),
        "inputs": [{"role": r, "artifact": record_json(a)} for r, a in one.inputs],
        "outputs": [{"role": r, "artifact": record_json(a)} for r, a in one.outputs],
    }


def same_json(same: Mapping[int, int]) -> Dict[str, int]:
    """{"artifact id": id of the oldest other artifact with the same bytes}; JSON keys are strings."""
    return {str(k): v for k, v in sorted(same.items())}


def graph_json(graph: LineageGraph, **query: Any) -> Dict[str, Any]:
    return {
        **query,
        "artifacts": [record_json(a) for _, a in sorted(graph.artifacts.items())],
        "executions": [record_json(e) for _, e in sorted(graph.executions.items())],
        "events": [dataclasses.asdict(e) for e in graph.edges],
    }
