"""Reading: one execution's inputs and outputs, lineage graphs, counts by state."""

from __future__ import annotations

from collections import Counter
from typing import Dict, Iterable, List, Optional

from ml_metadata.proto import metadata_store_pb2 as pb

from . import schema
from .errors import NotFoundError
from .records import ArtifactRecord, ExecutionLineage, ExecutionRecord, LineageEdge, LineageGraph
from .schema import ExecutionState
from .store import Store

__all__ = ["get_execution", "execution_lineage", "count_by_state", "lineage_graph"]

_KINDS = {pb.Event.INPUT: "INPUT", pb.Event.OUTPUT: "OUTPUT"}


def get_execution(store: Store, execution_id: int) -> ExecutionRecord:
    """The execution with this id.

    Raises:
        NotFoundError: no execution has this id.
    """
    found = store.mlmd.get_executions_by_id([execution_id]) if execution_id > 0 else []
    if not found:
        raise NotFoundError(f"no execution with id {execution_id} in {store}")
    return schema.execution_record(found[0])


def _edges(events: Iterable[pb.Event]) -> List[LineageEdge]:
    return [
        LineageEdge(
            artifact_id=e.artifact_id,
            execution_id=e.execution_id,
            kind=_KINDS[e.type],
            role=e.path.steps[0].key if e.path.steps else "",
        )
        for e in events
        if e.type in _KINDS
    ]


def _artifacts(store: Store, ids: Iterable[int]) -> Dict[int, ArtifactRecord]:
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    return {a.id: schema.artifact_record(a) for a in store.mlmd.get_artifacts_by_id(wanted)}


def execution_lineage(store: Store, execution_id: int) -> ExecutionLineage:
    """One hop of lineage: the artifacts an execution read and wrote.

    Read with `get_events_by_execution_ids`.

    Raises:
        NotFoundError: no execution has this id.
    """
    execution = get_execution(store, execution_id)
    edges = _edges(store.mlmd.get_events_by_execution_ids([execution_id]))
    artifacts = _artifacts(store, (e.artifact_id for e in edges))

    def side(kind: str):
        return tuple(
            (e.role, artifacts[e.artifact_id])
            for e in sorted(edges, key=lambda e: e.artifact_id)
            if e.kind == kind and e.artifact_id in artifacts
        )

    return ExecutionLineage(execution, inputs=side("INPUT"), outputs=side("OUTPUT"))


def count_by_state(store: Store) -> Dict[str, int]:
    """Numbers of executions by `last_known_state`, only states present, in MLMD's order."""
    counts = Counter(pb.Execution.State.Name(e.last_known_state) for e in store.mlmd.get_executions())
    return {s.value: counts[s.value] for s in ExecutionState if counts[s.value]}


def lineage_graph(store: Store, execution_id: Optional[int] = None) -> LineageGraph:
    """The lineage graph of one execution (one hop) or of the whole store.

    Args:
        store: an open store.
        execution_id: draw only this execution and its inputs and outputs;
            None for every artifact, execution and event in the store.

    Raises:
        NotFoundError: no execution has `execution_id`.
    """
    if execution_id is not None:
        one = execution_lineage(store, execution_id)
        edges = tuple(
            LineageEdge(a.id, execution_id, kind, role)
            for kind, side in (("INPUT", one.inputs), ("OUTPUT", one.outputs))
            for role, a in side
        )
        artifacts = {a.id: a for _, a in one.inputs + one.outputs}
        return LineageGraph(artifacts, {execution_id: one.execution}, edges)

    executions = {e.id: schema.execution_record(e) for e in store.mlmd.get_executions()}
    artifacts = {a.id: schema.artifact_record(a) for a in store.mlmd.get_artifacts()}
    events = store.mlmd.get_events_by_execution_ids(list(executions)) if executions else []
    return LineageGraph(artifacts, executions, tuple(_edges(events)))
