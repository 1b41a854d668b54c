"""How the CLI shows records: text lines for people, JSON-ready dicts for scripts.

Nothing here prints; the commands do. The JSON keys are documented in docs/cli.md and
kept stable: a record is its documented fields (id, type, uri, state, properties,
created_ms; an execution's name), edges are {artifact_id, execution_id, kind, role, event}.
Runs side by side (ls columns, diff, stale) are in `side_by_side`.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, AbstractSet, Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

from mlmd_exercise.text import count, one_line, table, when
from mlmd_exercise.records import (RUN_NAME, TAG_PREFIX, ArtifactRecord, ExecutionLineage, ExecutionRecord,
                                   ExecutionState, LineageEdge, LineageGraph)

if TYPE_CHECKING:  # read.nodes and read.lineage open stores: imported where a command runs
    from mlmd_exercise.read.lineage import Hop
    from mlmd_exercise.read.nodes import NodeDetail

__all__ = [
    "artifact_cells", "execution_cells", "node_name",
    "format_lineage", "format_graph", "format_hop", "format_counts", "number_text", "format_properties", "format_listing", "listing_header", "listing_row",
    "format_detail", "format_environment", "record_json", "edge_json", "lineage_json", "same_json",
    "graph_json",
]

Node = Union[ArtifactRecord, ExecutionRecord]


def artifact_cells(artifact: ArtifactRecord, same: Optional[Mapping[int, int]] = None) -> List[str]:
    """id, type and version, URI; and "same content as artifact N" where `same` knows one."""
    twin = (same or {}).get(artifact.id)
    uri = artifact.uri + (f"  (same content as artifact {twin})" if twin else "")
    return [f"artifact {artifact.id}", artifact.type_version, uri]


def execution_cells(execution: ExecutionRecord) -> List[str]:
    return [f"execution {execution.id}", execution.type, execution.state]


def node_name(node: Node) -> str:
    kind = "artifact" if isinstance(node, ArtifactRecord) else "execution"
    return f"{node.type} #{node.id}" if node.id else kind


def _event_of(one: ExecutionLineage, kind: str, role: str, artifact_id: int) -> str:
    """The MLMD event type of one input or output: DECLARED_INPUT and the like, else `kind`."""
    for edge in one.events:
        if (edge.kind, edge.role, edge.artifact_id) == (kind, role, artifact_id) and edge.event:
            return edge.event
    return kind


def format_lineage(one: ExecutionLineage, same: Optional[Mapping[int, int]] = None) -> List[str]:
    """One execution's inputs and outputs."""
    e = one.execution
    rows = [
        (_event_of(one, kind, role, a.id), role or "-", *artifact_cells(a, same))
        for kind, side in (("INPUT", one.inputs), ("OUTPUT", one.outputs))
        for role, a in side
    ]
    return [f"execution {e.id} ({e.type}, {e.state})"] + (
        table(rows) or ["  no inputs or outputs recorded"]
    ) + reused_lines(one.reused)


def reused_lines(reused: Sequence[Tuple[int, int]], indent: str = "  ") -> List[str]:
    """What a CACHED execution's outputs are: a step not run again, re-publishing what
    earlier executions made (one line per maker)."""
    by_maker: Dict[int, List[int]] = {}
    for artifact_id, maker in reused:
        by_maker.setdefault(maker, []).append(artifact_id)
    return [f"{indent}cached: not run again; reused {_ids('artifact', ids)} that execution {maker} made"
            for maker, ids in sorted(by_maker.items())]


def _ids(kind: str, ids: Sequence[int]) -> str:
    return f"{kind} {ids[0]}" if len(ids) == 1 else f"{kind}s {', '.join(map(str, ids))}"


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
        arrows.append((tail, f"--{edge.role or edge.kind.lower()}-->",
                       head + _event_note(edge, e.state == ExecutionState.CACHED.value)))
    if arrows:
        lines += ["events:"] + table(arrows)
    return lines


def _event_note(edge: LineageEdge, cached: bool) -> str:
    """What an arrow's event is where it is not plain: DECLARED_INPUT and the like, and a
    CACHED execution's output, which re-publishes what an earlier execution made."""
    notes = ([edge.event] if edge.event else []) + (["cached: re-published"] if cached and edge.kind == "OUTPUT"
                                                    else [])
    return f" ({'; '.join(notes)})" if notes else ""


def format_hop(hop: Hop, same: Optional[Mapping[int, int]] = None, legs: bool = False,
               cached: AbstractSet[int] = frozenset()) -> List[str]:
    """One hop of a walk printed as it is reached: its number (and its way, for a walk
    both ways), the nodes first reached there, then the events crossed. An event names
    its nodes by id: the node at its other end may have been printed long before
    (`cached`: the CACHED executions reached so far)."""
    rows = [artifact_cells(a, same) for a in hop.artifacts] + [execution_cells(e) for e in hop.executions]
    arrows = []
    edges = hop.edges if len(hop.edges) < 2 else sorted(hop.edges, key=_arrow_order)
    for edge in edges:
        a_name, e_name = f"artifact {edge.artifact_id}", f"execution {edge.execution_id}"
        tail, head = (a_name, e_name) if edge.kind == "INPUT" else (e_name, a_name)
        arrows.append((tail, f"--{edge.role or edge.kind.lower()}-->",
                       head + (_event_note(edge, edge.execution_id in cached) if edge.event or cached else "")))
    way = f" {hop.direction}" if legs and hop.number else ""
    return [f"hop {hop.number:,}{way}", *table(rows), *table(arrows)]


def _arrow_order(edge: LineageEdge) -> Tuple[int, str, int]:
    return edge.execution_id, edge.kind, edge.artifact_id


def format_counts(counts: Mapping[str, int]) -> str:
    if not counts:
        return "no executions"
    return ", ".join(f"{state} {n}" for state, n in counts.items())


def number_text(value: Any) -> str:
    """A number as text; a double to 6 decimals, as much as ml-metadata keeps of one (the
    native backend keeps every digit, and the two must print alike)."""
    return str(round(value, 6)) if isinstance(value, float) else str(value)


def _value_text(value: Any) -> str:
    """A property value on one line: a string quoted, a struct or proto value as JSON."""
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, float):
        return number_text(value)
    if isinstance(value, (dict, list)):
        import json

        return json.dumps(value, sort_keys=True, ensure_ascii=False)
    return str(value)


def format_properties(properties: Mapping[str, Any]) -> List[str]:
    rows = ((k, _value_text(v)) for k, v in sorted(properties.items()))
    return table(rows, indent="    ")


def format_listing(records: Sequence[Any]) -> List[str]:
    """`ls` rows under a header: artifacts, executions or experiments."""
    if not records:
        return []
    return table([listing_header(type(records[0])), *(listing_row(r) for r in records)], indent="")


def listing_header(kind: type) -> Tuple[str, ...]:
    """The header of `ls` for records of this class (ArtifactRecord, ExecutionRecord, experiments)."""
    if issubclass(kind, ArtifactRecord):
        return ("ID", "TYPE", "VERSION", "CREATED", "URI")
    if issubclass(kind, ExecutionRecord):
        return ("ID", "TYPE", "STATE", "CREATED")
    return ("ID", "NAME", "TYPE", "EXECUTIONS", "ARTIFACTS", "CREATED")


def listing_row(r: Any) -> Tuple[str, ...]:
    """One record's row of `ls`, under `listing_header` (made one line: see text.aligned)."""
    if isinstance(r, ArtifactRecord):
        cells: Tuple[str, ...] = (str(r.id), r.type, f"v{r.version}" if r.version else "-", when(r.when_ms), r.uri)
    elif isinstance(r, ExecutionRecord):
        cells = (str(r.id), r.type, r.state, when(r.when_ms))
    else:
        cells = (str(r.id), r.name, r.type, str(r.executions), str(r.artifacts), when(r.created_ms))
    return one_line(cells)


def format_detail(detail: NodeDetail) -> List[str]:
    """`show`: one node, its properties, its events and its experiments."""
    node = detail.node
    is_artifact = isinstance(node, ArtifactRecord)
    cells = artifact_cells(node) if isinstance(node, ArtifactRecord) else execution_cells(node)
    lines = [f"{cells[0]} ({cells[1]}, {node.state})"]
    if isinstance(node, ArtifactRecord):
        lines.append(f"  uri          {node.uri}")
    if node.when_ms != node.created_ms:  # imported with its original times
        lines.append(f"  {'created' if is_artifact else 'started':12} {when(node.when_ms)}")
        if isinstance(node, ExecutionRecord) and node.ended_ms is not None:
            lines.append(f"  ended        {when(node.ended_ms)}")
        lines.append(f"  recorded     {when(node.created_ms)}")
    else:
        lines.append(f"  created      {when(node.created_ms)}")
    lines.append(f"  experiments  {', '.join(detail.experiments) or '-'}")
    if isinstance(node, ExecutionRecord) and node.label:
        lines.append(f"  name         {node.label}")
    if isinstance(node, ExecutionRecord) and node.tags:
        lines.append("  tags         " + ", ".join(f"{k}={v}" for k, v in node.tags.items()))
    if detail.same_content:
        lines.append("  same content as " + ", ".join(f"artifact {i}" for i in detail.same_content))
    properties: Mapping[str, Any] = node.properties
    env: Mapping[str, Any] = {}
    if not is_artifact:  # the environment it ran in, in a block of its own
        from mlmd_exercise.environment import split_environment

        properties, env = split_environment(node.properties)
        properties = {k: v for k, v in properties.items() if k != RUN_NAME and not k.startswith(TAG_PREFIX)}
    lines += ["  properties"] + (format_properties(properties) or ["    none"])
    if env:
        lines += ["  recorded with"] + format_environment(env)
    rows = [
        (e.event or e.kind, e.role or "-",
         f"execution {e.execution_id}" if is_artifact else f"artifact {e.artifact_id}")
        + ((("(cached: re-published)" if e.execution_id in detail.cached and e.kind == "OUTPUT" else ""),)
           if detail.cached else ())
        for e in detail.events
    ]
    return (lines + reused_lines(detail.reused) + ["  events"]
            + (table(rows, indent="    ") or ["    none"]))


def format_environment(env: Mapping[str, Any]) -> List[str]:
    """show's "recorded with" block: the code, the command and where it ran."""
    from mlmd_exercise import environment as e

    rows: List[Sequence[str]] = []
    if e.GIT_COMMIT in env:
        dirty = env.get(e.GIT_DIRTY)
        note = " (uncommitted changes)" if dirty == 1 else " (clean)" if dirty == 0 else ""
        rows.append(("git_commit", f"{env[e.GIT_COMMIT]}{note}"))
    for key in (e.COMMAND, e.CWD):
        if key in env:
            rows.append((key[len(e.PREFIX):], str(env[key])))
    if e.PYTHON in env:
        where = f" ({env[e.EXECUTABLE]})" if env.get(e.EXECUTABLE) else ""
        rows.append(("python", f"{env[e.PYTHON]}{where}"))
    packages = e.parse_packages(env.get(e.PACKAGES))
    for i, (name, version) in enumerate(packages.items()):
        rows.append(("packages" if i == 0 else "", f"{name}=={version}"))
    shown = {e.GIT_COMMIT, e.GIT_DIRTY, e.COMMAND, e.CWD, e.PYTHON, e.EXECUTABLE, e.PACKAGES,
             e.INPUTS, *e.PROCESS_KEYS}  # INPUTS: bookkeeping for `check`; show lists the inputs
    rows += [(k[len(e.PREFIX):] if k.startswith(e.PREFIX) else k, str(v))
             for k, v in sorted(env.items()) if k not in shown]
    rows += [(k, str(env[k]) + (" (clock ticks after boot)" if k == e.PID_START else ""))
             for k in e.PROCESS_KEYS if k in env]
    return table(rows, indent="    ")


# -- JSON -------------------------------------------------------------------------


# The keys of a node in --json, as docs/cli.md documents them. The records have grown fields
# for the store's own use since (type_id, custom, external_id, updated_ms): scripts see them
# only once they are documented here and there.
_JSON_KEYS: Dict[type, Tuple[str, ...]] = {
    ArtifactRecord: ("id", "type", "uri", "state", "properties", "created_ms"),
    ExecutionRecord: ("id", "type", "state", "properties", "created_ms", "name"),
}


def record_json(record: Any) -> Dict[str, Any]:
    """A record as a dict: an artifact's or execution's documented keys, any other
    record's dataclass fields, under the same names."""
    keys = _JSON_KEYS.get(type(record))
    data = dataclasses.asdict(record) if keys is None else {k: getattr(record, k) for k in keys}
    data["properties"] = dict(record.properties)
    return data


def edge_json(edge: LineageEdge) -> Dict[str, Any]:
    """An event: its fields, with `event` the MLMD event type (INPUT, DECLARED_INPUT, ...)."""
    data = dataclasses.asdict(edge)
    data["event"] = edge.event or edge.kind
    return data


def lineage_json(one: ExecutionLineage) -> Dict[str, Any]:
    return {
        "execution": record_json(one.execution),
        "inputs": [{"role": r, "event": _event_of(one, "INPUT", r, a.id), "artifact": record_json(a)}
                   for r, a in one.inputs],
        "outputs": [{"role": r, "event": _event_of(one, "OUTPUT", r, a.id), "artifact": record_json(a)}
                    for r, a in one.outputs],
        **reused_json(one.reused),
    }


def reused_json(reused: Sequence[Tuple[int, int]]) -> Dict[str, List[Dict[str, int]]]:
    """A CACHED execution's re-published outputs, {"reused": [{"artifact": id, "made_by":
    execution id}]}; nothing for any other execution (whose keys stay as they were)."""
    return {"reused": [{"artifact": a, "made_by": e} for a, e in reused]} if reused else {}


def same_json(same: Mapping[int, int]) -> Dict[str, int]:
    """{"artifact id": id of the oldest other artifact with the same bytes}; JSON keys are strings."""
    return {str(k): v for k, v in sorted(same.items())}


def graph_json(graph: LineageGraph, **query: Any) -> Dict[str, Any]:
    return {
        **query,
        "artifacts": [record_json(a) for _, a in sorted(graph.artifacts.items())],
        "executions": [record_json(e) for _, e in sorted(graph.executions.items())],
        "events": [edge_json(e) for e in graph.edges],
    }
