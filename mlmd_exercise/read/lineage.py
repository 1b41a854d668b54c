"""Reading: one execution's inputs and outputs, lineage graphs, counts by state."""

from __future__ import annotations

import dataclasses
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Set, Tuple, Union

from mlmd_exercise import schema
from mlmd_exercise.errors import NotFoundError
from mlmd_exercise.records import (DIRECTIONS, INPUT_EVENTS, OUTPUT_EVENTS, ArtifactRecord, EventRecord,
                                   ExecutionLineage, ExecutionRecord, LineageEdge, LineageGraph)
from mlmd_exercise.store import Store
from mlmd_exercise.store.backend import Query

__all__ = [
    "DIRECTIONS",
    "get_execution",
    "get_artifact",
    "node_edges",
    "execution_lineage",
    "lineage_graph",
    "walk",
    "with_experiments",
]

# Every input kind and every output kind of event, followed as get_lineage_subgraph does.
_INPUTS = frozenset(INPUT_EVENTS)
_OUTPUTS = frozenset(OUTPUT_EVENTS)
_KINDS = {**{t: "INPUT" for t in _INPUTS}, **{t: "OUTPUT" for t in _OUTPUTS}}


def _get_one(store: Store, kind: str, node_id: int):
    """The artifact or execution with this id, as a record; a missing id is named,
    with a hint when the other kind has it (an id of the wrong kind)."""
    getters: Dict[str, Callable[[Query], Sequence[Union[ArtifactRecord, ExecutionRecord]]]] = {
        "artifact": store.backend.artifacts, "execution": store.backend.executions}
    found = getters[kind](Query(ids=[node_id])) if node_id > 0 else []
    if not found:
        other = "execution" if kind == "artifact" else "artifact"
        hint = f" (there is an {other} {node_id})" if node_id > 0 and getters[other](Query(ids=[node_id])) else ""
        raise NotFoundError(f"no {kind} with id {node_id} in {store}{hint}")
    return found[0]


def artifact_pages(store: Store, size: int = 1000) -> Iterator[List[ArtifactRecord]]:
    """Every artifact, `size` at a time in id order: a whole store never sits in memory."""
    last = 0
    while True:
        page = store.backend.artifacts(Query(id_above=last, order="id", ascending=True, limit=size))
        if not page:
            return
        yield page
        last = page[-1].id


def get_execution(store: Store, execution_id: int) -> ExecutionRecord:
    """The execution with this id.

    Raises:
        NotFoundError: no execution has this id.
    """
    return _get_one(store, "execution", execution_id)


def get_artifact(store: Store, artifact_id: int) -> ArtifactRecord:
    """The artifact with this id.

    Raises:
        NotFoundError: no artifact has this id.
    """
    return _get_one(store, "artifact", artifact_id)


def edges_of(events: Iterable[EventRecord]) -> List[LineageEdge]:
    """The events that lead into or out of an execution, as edges (the others are left out)."""
    return [
        LineageEdge(
            artifact_id=e.artifact_id,
            execution_id=e.execution_id,
            kind=_KINDS[e.type],
            role=e.role,
            event="" if e.type == _KINDS[e.type] else e.type,
        )
        for e in events
        if e.type in _KINDS
    ]


def node_edges(store: Store, kind: str, node_id: int) -> List[LineageEdge]:
    """Every event that joins one artifact or execution to its neighbours, as edges: the
    one read of a node's neighbours that `execution_lineage`, `show_*` and the explorer
    share."""
    events = (store.backend.events_by_artifacts if kind == "artifact" else store.backend.events_by_executions)
    return edges_of(events([node_id]))


def _artifacts(store: Store, ids: Iterable[int]) -> Dict[int, ArtifactRecord]:
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    return {a.id: a for a in store.backend.artifacts(Query(ids=wanted))}


def execution_lineage(store: Store, execution_id: int) -> ExecutionLineage:
    """One hop of lineage: the artifacts an execution read and wrote.

    Read with `get_events_by_execution_ids`.

    Raises:
        NotFoundError: no execution has this id.
    """
    execution = get_execution(store, execution_id)
    edges = node_edges(store, "execution", execution_id)
    artifacts = _artifacts(store, (e.artifact_id for e in edges))

    def side(kind: str):
        return tuple(
            (e.role, artifacts[e.artifact_id])
            for e in sorted(edges, key=lambda e: e.artifact_id)
            if e.kind == kind and e.artifact_id in artifacts
        )

    return ExecutionLineage(execution, inputs=side("INPUT"), outputs=side("OUTPUT"), events=tuple(edges))


def lineage_graph(store: Store, execution_id: Optional[int] = None) -> LineageGraph:
    """The lineage graph of one execution (one hop) or of the whole store.

    Args:
        store: an open store.
        execution_id: draw only this execution and its inputs and outputs (the same as
            `walk(store, execution_id=..., direction="both", hops=1)`); None for every
            artifact, execution and event in the store.

    Raises:
        NotFoundError: no execution has `execution_id`.
    """
    if execution_id is not None:
        return walk(store, execution_id=execution_id, direction="both", hops=1)
    executions = {e.id: e for e in store.backend.executions()}
    artifacts = {a.id: a for a in store.backend.artifacts()}
    events = store.backend.events_by_executions(list(executions)) if executions else []
    return LineageGraph(artifacts, executions, tuple(edges_of(events)))


def experiment_id(store: Store, name: str, context_type: Optional[str] = None) -> int:
    """The id of the experiment, or any other context, called `name`.

    Raises:
        NotFoundError: no context has that name, or several of other types than
            Experiment have it and `context_type` does not say which.
    """
    from mlmd_exercise.read.contexts import context_id

    return context_id(store, name, context_type)


# Which events lead on from a node, by direction: walking upstream, an artifact
# leads to the execution that output it, and an execution to its inputs.
_FROM_ARTIFACT = {"upstream": _OUTPUTS, "downstream": _INPUTS}
_FROM_EXECUTION = {"upstream": _INPUTS, "downstream": _OUTPUTS}


def _walk_one_way(store: Store, start_a: Set[int], start_e: Set[int], direction: str,
                  hops: Optional[int]) -> Tuple[Set[int], Set[int], List[EventRecord]]:
    """Breadth-first by ids, each hop crossing one event: the nodes reached and the events."""
    traversed: List[EventRecord] = []
    artifacts, executions = set(start_a), set(start_e)
    frontier_a, frontier_e = set(start_a), set(start_e)
    hop = 0
    while (frontier_a or frontier_e) and (hops is None or hop < hops):
        hop += 1
        next_a: Set[int] = set()
        next_e: Set[int] = set()
        if frontier_a:
            for ev in store.backend.events_by_artifacts(sorted(frontier_a)):
                if ev.type in _FROM_ARTIFACT[direction]:
                    traversed.append(ev)
                    if ev.execution_id not in executions:
                        executions.add(ev.execution_id)
                        next_e.add(ev.execution_id)
        if frontier_e:
            for ev in store.backend.events_by_executions(sorted(frontier_e)):
                if ev.type in _FROM_EXECUTION[direction]:
                    traversed.append(ev)
                    if ev.artifact_id not in artifacts:
                        artifacts.add(ev.artifact_id)
                        next_a.add(ev.artifact_id)
        frontier_a, frontier_e = next_a, next_e
    return artifacts, executions, traversed


def walk(
    store: Store,
    *,
    artifact_id: Optional[int] = None,
    execution_id: Optional[int] = None,
    direction: str = "upstream",
    hops: Optional[int] = None,
) -> LineageGraph:
    """Lineage over many hops from one artifact or one execution.

    A hop crosses one event: from a model, 1 hop upstream reaches the execution
    that made it, 2 hops its inputs. "upstream" answers "what produced this, all
    the way back"; "downstream" answers "what came from this"; "both" is the
    union of the two (ancestors and descendants, not cousins).

    A breadth-first walk over events by node ids, one query per hop and side
    (`make bench` measures it against MLMD's `get_lineage_subgraph`).

    Args:
        store: an open store.
        artifact_id: start from this artifact (give this or `execution_id`).
        execution_id: start from this execution.
        direction: one of DIRECTIONS.
        hops: the most events to cross from the start; None for no limit.

    Raises:
        NotFoundError: the starting node is not in the store.
        ValueError: not exactly one start, an unknown direction or negative hops.
    """
    if (artifact_id is None) == (execution_id is None):
        raise ValueError("give exactly one of artifact_id and execution_id")
    if direction not in DIRECTIONS:
        raise ValueError(f"unknown direction '{direction}': use one of {', '.join(DIRECTIONS)}")
    if hops is not None and hops < 0:
        raise ValueError(f"hops must be 0 or more, not {hops}")
    start_a: Set[int] = set()
    start_e: Set[int] = set()
    if artifact_id is not None:
        start_a.add(get_artifact(store, artifact_id).id)
    elif execution_id is not None:  # always, after the check above: said so for the type checker
        start_e.add(get_execution(store, execution_id).id)

    artifacts, executions = set(start_a), set(start_e)
    events: List[EventRecord] = []
    for way in ("upstream", "downstream") if direction == "both" else (direction,):
        reached_a, reached_e, traversed = _walk_one_way(store, start_a, start_e, way, hops)
        artifacts |= reached_a
        executions |= reached_e
        events += traversed
    found_a = {a.id: a for a in store.backend.artifacts(Query(ids=sorted(artifacts)))} if artifacts else {}
    found_e = {e.id: e for e in store.backend.executions(Query(ids=sorted(executions)))} if executions else {}
    unique = {(e.artifact_id, e.execution_id, e.type): e for e in events}
    return LineageGraph(found_a, found_e, tuple(edges_of(unique.values())))


def with_experiments(store: Store, graph: LineageGraph, grouping: Optional[str] = None) -> LineageGraph:
    """The same graph, with the context each of its executions belongs to, for boxes.

    Args:
        store: an open store.
        graph: the graph to group.
        grouping: the context type to group by; None for our Experiment where there
            is one, else the type that gives the most telling boxes (`contexts.grouping_of`).
    """
    from mlmd_exercise.read.contexts import contexts_of, grouping_of

    memberships = {e: contexts_of(store, "execution", e) for e in sorted(graph.executions)}
    ctype = grouping_of(memberships, grouping)
    members: Dict[str, List[int]] = {}
    for execution_id, contexts in memberships.items():
        mine = sorted((c for c in contexts if c.type == ctype), key=lambda c: c.id)
        if mine:  # boxes cannot overlap: an execution in two goes in the first
            members.setdefault(mine[0].name, []).append(execution_id)
    clusters = {name: tuple(ids) for name, ids in sorted(members.items())}
    label = "experiment" if ctype in (None, schema.EXPERIMENT.name) else ctype
    return dataclasses.replace(graph, experiments=clusters, grouping=label)
