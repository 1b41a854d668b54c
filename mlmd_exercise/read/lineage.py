"""Reading: one execution's inputs and outputs, lineage graphs, counts by state."""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Dict, Generic, Iterable, Iterator, List, Optional, Sequence, Set, Tuple, TypeVar, Union

from mlmd_exercise import schema
from mlmd_exercise.errors import NotFoundError
from mlmd_exercise.records import (DIRECTIONS, INPUT_EVENTS, OUTPUT_EVENTS, ArtifactRecord, EventRecord,
                                   ExecutionLineage, ExecutionRecord, ExecutionState, Kind, LineageEdge, LineageGraph,
                                   edge_of)
from mlmd_exercise.store import Store
from mlmd_exercise.store.backend import NodeLine, Query

__all__ = [
    "DIRECTIONS",
    "get_execution",
    "get_artifact",
    "node_edges",
    "store_parts",
    "walk_parts",
    "execution_lineage",
    "cached_among",
    "reused_outputs",
    "lineage_graph",
    "walk",
    "walk_hops",
    "walk_hops_from",
    "Hop",
    "with_records",
    "PAGE",
    "graph_of",
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
    return [_edge(e) for e in events if e.type in _KINDS]


_edge = edge_of


def node_edges(store: Store, kind: str, node_id: int) -> List[LineageEdge]:
    """Every event that joins one artifact or execution to its neighbours, as edges: the
    one read of a node's neighbours that `execution_lineage`, `show_*` and the explorer
    share."""
    events = (store.backend.events_by_artifacts if kind == "artifact" else store.backend.events_by_executions)
    return edges_of(events([node_id]))


def cached_among(store: Store, execution_ids: Iterable[int]) -> Set[int]:
    """The CACHED executions among these: steps TFX or Kubeflow did not run again, whose
    OUTPUT events re-publish what an earlier execution made."""
    wanted = sorted(set(execution_ids))
    if not wanted:
        return set()
    return {e.id for e in store.backend.executions(Query(ids=wanted)) if e.state == ExecutionState.CACHED.value}


def reused_outputs(store: Store, execution: ExecutionRecord, edges: Sequence[LineageEdge]
                   ) -> Tuple[Tuple[int, int], ...]:
    """For a CACHED execution, (artifact id, the execution that made it) of each output it
    re-published: the other executions that output it, CACHED ones aside; () otherwise."""
    if execution.state != ExecutionState.CACHED.value:
        return ()
    outputs = sorted({e.artifact_id for e in edges if e.kind == "OUTPUT"})
    others = [e for e in edges_of(store.backend.events_by_artifacts(outputs)) if e.kind == "OUTPUT"
              and e.execution_id != execution.id] if outputs else []
    cached = cached_among(store, (e.execution_id for e in others))
    return tuple(sorted({(e.artifact_id, e.execution_id) for e in others if e.execution_id not in cached}))


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

    return ExecutionLineage(execution, inputs=side("INPUT"), outputs=side("OUTPUT"), events=tuple(edges),
                            reused=reused_outputs(store, execution, edges))


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


def store_parts(store: Store) -> Tuple[Dict[int, Tuple[str, str]], Dict[int, str], Iterator[LineageEdge]]:
    """The whole store's lineage graph without its records: every execution's (type, state)
    and every artifact's type by id, read a page at a time, and its edges as they are read a
    chunk of executions at a time. How many nodes a picture of the whole store has is known from
    these (collapse.Shape) before any record is held: at 200,000 runs the records took 647 MB."""
    backend = store.backend
    executions: Dict[int, Tuple[str, str]] = {}
    artifacts: Dict[int, str] = {}
    pairs: Dict[Tuple[str, str], Tuple[str, str]] = {}  # one tuple for each (type, state): 200,000 runs hold a few
    for e in _every(backend.executions):
        executions[e.id] = pairs.setdefault((e.type, e.state), (e.type, e.state))
    for a in _every(backend.artifacts):
        artifacts[a.id] = a.type

    def edges() -> Iterator[LineageEdge]:
        for chunk in backend.chunks(sorted(executions)):
            yield from edges_of(backend.events_by_executions(chunk))

    return executions, artifacts, edges()


def walk_parts(store: Store, *, artifact_id: Optional[int] = None, execution_id: Optional[int] = None,
               direction: str = "upstream", hops: Optional[int] = None
               ) -> Tuple[Dict[int, Tuple[str, str]], Dict[int, str], Iterator[LineageEdge]]:
    """`store_parts` of a walk (`walk_hops`'s arguments), read with `lines=True`, no record held (a
    200,000-run chain's records took 650 MB before `graph` could count them): its executions'
    (type, state) and its artifacts' types by id, filled as its edges are read, each hop's nodes
    before its edges (so that an edge's two nodes are known when it comes).

    Raises:
        NotFoundError: the starting node is not in the store.
        ValueError: as `walk_hops`.
    """
    executions: Dict[int, Tuple[str, str]] = {}
    artifacts: Dict[int, str] = {}
    pairs: Dict[Tuple[str, str], Tuple[str, str]] = {}  # one tuple for each (type, state), as store_parts
    names: Dict[str, str] = {}
    walked = walk_hops(store, artifact_id=artifact_id, execution_id=execution_id, direction=direction,
                       hops=hops, lines=True)  # the start checked here, at the call

    def edges() -> Iterator[LineageEdge]:
        for hop in walked:
            for e in hop.executions:
                executions[e.id] = pairs.setdefault((e.type, e.state), (e.type, e.state))
            for a in hop.artifacts:
                artifacts[a.id] = names.setdefault(a.type, a.type)
            yield from hop.edges

    return executions, artifacts, edges()


def _every(listing: Callable[[Query], Sequence[Any]]) -> Iterator[Any]:
    last = 0
    while True:
        page = listing(Query(id_above=last, order="id", ascending=True, limit=PAGE))
        if not page:
            return
        last = page[-1].id
        yield from page


PAGE = 1000  # the most node records a walk fetches in one query
A = TypeVar("A", ArtifactRecord, NodeLine)
X = TypeVar("X", ExecutionRecord, NodeLine)


@dataclasses.dataclass(frozen=True)
class Hop(Generic[A, X]):
    """One hop of a walk (`walk_hops`): the nodes first reached there and the events crossed.
    Its nodes are records, or with `lines=True` what a walk's text shows of them (`NodeLine`).

    Attributes:
        number: how many events lie between the start and these nodes; 0 is the start.
        direction: the way this hop went, "upstream" or "downstream" (a walk "both"
            ways goes all the way up, then all the way down).
        artifacts: the artifacts first reached at this hop, by id.
        executions: the executions first reached at this hop, by id.
        edges: the events crossed at this hop, one per artifact, execution and event type.
        page_end: the last hop of the records fetched together: the next hop waits on the
            store (a printer flushes here; a reader of more records reads the page's at once).
    """

    number: int
    direction: str
    artifacts: Tuple[A, ...] = ()
    executions: Tuple[X, ...] = ()
    edges: Tuple[LineageEdge, ...] = ()
    page_end: bool = True


class _Leg:
    """One direction of a walk, as the backend walks it (`Backend.walk_leg`: breadth-first, each
    hop crossing one event); `remember`: it also keeps the ids it has reached (sets of ints), for
    the walk "both" ways that goes down after it (`crossed`)."""

    def __init__(self, store: Store, start_a: Set[int], start_e: Set[int], direction: str,
                 hops: Optional[int], remember: bool = False) -> None:
        self.store, self.direction, self.hops, self.remember = store, direction, hops, remember
        self.start_a, self.start_e = start_a, start_e
        self.reached_a, self.reached_e = set(start_a), set(start_e)
        self.frontier_a, self.frontier_e = set(start_a), set(start_e)

    def walk(self) -> Iterator[Tuple[int, Set[int], Set[int], List[LineageEdge]]]:
        """Per hop: its number, the artifact and execution ids first reached, the edges
        crossed (events of one artifact, execution and type are one edge)."""
        for number, next_a, next_e, edges in self.store.backend.walk_leg(
                sorted(self.start_a), sorted(self.start_e), self.direction, self.hops):
            if self.remember:
                self.reached_a |= next_a
                self.reached_e |= next_e
                self.frontier_a, self.frontier_e = next_a, next_e
            yield number, next_a, next_e, edges

    def crossed(self, edge: LineageEdge) -> bool:
        """Whether this leg, once walked, crossed this edge (or one of its artifact, execution
        and type): every event leading on from a node it reached but not its last frontier."""
        from_artifact = ("OUTPUT" if self.direction == "upstream" else "INPUT") == edge.kind
        if from_artifact:
            return edge.artifact_id in self.reached_a and edge.artifact_id not in self.frontier_a
        return edge.execution_id in self.reached_e and edge.execution_id not in self.frontier_e


def walk_hops(
    store: Store,
    *,
    artifact_id: Optional[int] = None,
    execution_id: Optional[int] = None,
    direction: str = "upstream",
    hops: Optional[int] = None,
    page: int = PAGE,
    lines: bool = False,
) -> Iterator[Hop]:
    """Lineage over many hops, hop by hop as the walk reaches them: what `walk` is made of,
    for a caller that shows a long walk as it goes.

    A hop crosses one event: from a model, hop 1 upstream is the execution that made it,
    hop 2 its inputs. Each node comes once, at the first hop that reaches it (a walk "both"
    ways: upstream first), with the events crossed to it and between nodes already reached.
    The walk keeps the ids it has reached (sets of ints: about 30 MB for the 400,000 nodes
    of a 200,000-run chain) and fetches node records `page` at a time, a page of hops ahead
    of what it yields: memory does not grow with what was already yielded (a single hop
    wider than a page, a dataset that 100,000 runs read, is still yielded whole). The start
    is checked at once; the rest is read as the hops are asked for.

    Args:
        store: an open store.
        artifact_id: start from this artifact (give this or `execution_id`).
        execution_id: start from this execution.
        direction: one of DIRECTIONS.
        hops: the most events to cross from the start; None for no limit.
        page: the most node records to fetch in one query.
        lines: yield what a walk's text shows of each node (`NodeLine`), not its record: a
            printed walk of 400,000 nodes spent most of its time reading their properties.

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
    start: Union[ArtifactRecord, ExecutionRecord]
    if artifact_id is not None:
        start = get_artifact(store, artifact_id)
    elif execution_id is not None:  # always, after the check above: said so for the type checker
        start = get_execution(store, execution_id)
    if isinstance(start, ArtifactRecord):
        return _hops(store, (start,), (), direction, hops, page, lines)
    return _hops(store, (), (start,), direction, hops, page, lines)


def walk_hops_from(store: Store, artifacts: Sequence[ArtifactRecord] = (), executions: Sequence[ExecutionRecord] = (),
                   *, direction: str = "upstream", hops: Optional[int] = None, page: int = PAGE,
                   lines: bool = False) -> Iterator[Hop]:
    """`walk_hops` from many nodes at once (those a filter query found): hop 0 is all of them,
    and each node reached comes once, at the first hop any start reaches it.

    Raises:
        ValueError: no start, an unknown direction or negative hops.
    """
    if not artifacts and not executions:
        raise ValueError("give at least one artifact or execution to walk from")
    if direction not in DIRECTIONS:
        raise ValueError(f"unknown direction '{direction}': use one of {', '.join(DIRECTIONS)}")
    if hops is not None and hops < 0:
        raise ValueError(f"hops must be 0 or more, not {hops}")
    return _hops(store, tuple(artifacts), tuple(executions), direction, hops, page, lines)


_Walked = Tuple[int, str, Set[int], Set[int], List[LineageEdge]]  # a Hop by ids, records not read


def _hops(store: Store, artifacts: Tuple[ArtifactRecord, ...], executions: Tuple[ExecutionRecord, ...],
          direction: str, hops: Optional[int], page: int, lines: bool) -> Iterator[Hop]:
    ways = ("upstream", "downstream") if direction == "both" else (direction,)
    start_a, start_e = {a.id for a in artifacts}, {e.id for e in executions}
    if lines:
        yield Hop(0, ways[0], tuple(map(NodeLine.of, artifacts)), tuple(map(NodeLine.of, executions)))
    else:
        yield Hop(0, ways[0], artifacts=artifacts, executions=executions)
    pending: List[_Walked] = []  # walked, records not fetched yet
    size = 0
    before: Optional[_Leg] = None  # the upstream leg, once walked, when going both ways
    for way in ways:
        leg = _Leg(store, start_a, start_e, way, hops, remember=way != ways[-1])
        for number, new_a, new_e, edges in leg.walk():
            if before is not None:  # each node and edge once: the upstream leg showed these
                new_a = {i for i in new_a if i not in before.reached_a}
                new_e = {i for i in new_e if i not in before.reached_e}
                edges = [e for e in edges if not before.crossed(e)]
            if not (new_a or new_e or edges):
                continue
            pending.append((number, way, new_a, new_e, edges))
            size += len(new_a) + len(new_e)
            if size >= page:
                yield from _fetched(store, pending, page, lines)
                pending, size = [], 0
        before = leg
    yield from _fetched(store, pending, page, lines)


def _fetched(store: Store, pending: Sequence[_Walked], page: int, lines: bool) -> Iterator[Hop]:
    """Walked hops with their nodes' records (or `lines`), read `page` ids a query."""
    def records(kind: Kind, ids: List[int]) -> Dict[int, Any]:
        found: Dict[int, Any] = {}
        getter = store.backend.artifacts if kind is Kind.ARTIFACT else store.backend.executions
        for first in range(0, len(ids), page):
            chunk = ids[first:first + page]
            found.update((r.id, r) for r in (store.backend.node_lines(kind, chunk) if lines
                                             else getter(Query(ids=chunk))))
        return found

    artifacts = records(Kind.ARTIFACT, sorted(i for p in pending for i in p[2]))
    executions = records(Kind.EXECUTION, sorted(i for p in pending for i in p[3]))
    last = len(pending) - 1
    for n, (number, way, new_a, new_e, edges) in enumerate(pending):
        yield Hop(number, way, _in_order(new_a, artifacts), _in_order(new_e, executions), tuple(edges), n == last)


def _in_order(ids: Set[int], found: Dict[int, Any]) -> Tuple[Any, ...]:
    """The nodes of these ids that were found, by id (a chain's hop holds one: 400,000 times)."""
    if len(ids) < 2:
        for i in ids:
            return (found[i],) if i in found else ()
        return ()
    return tuple(found[i] for i in sorted(ids) if i in found)


def with_records(store: Store, hops: Sequence[Hop]) -> List[Hop]:
    """Hops walked with `lines=True`, their nodes read again as records (one query a kind: for
    the few hops of a walk printed whole)."""
    artifacts = {a.id: a for a in store.backend.artifacts(Query(ids=[a.id for h in hops for a in h.artifacts]))} \
        if any(h.artifacts for h in hops) else {}
    executions = {e.id: e for e in store.backend.executions(Query(ids=[e.id for h in hops for e in h.executions]))} \
        if any(h.executions for h in hops) else {}
    return [dataclasses.replace(h, artifacts=tuple(artifacts[a.id] for a in h.artifacts if a.id in artifacts),
                                executions=tuple(executions[e.id] for e in h.executions if e.id in executions))
            for h in hops]


def graph_of(hops: Iterable[Hop]) -> LineageGraph:
    """The lineage graph of a walk's hops: what `walk` returns."""
    artifacts: List[ArtifactRecord] = []
    executions: List[ExecutionRecord] = []
    edges: List[LineageEdge] = []
    for hop in hops:
        artifacts += hop.artifacts
        executions += hop.executions
        edges += hop.edges

    def newest_first(node: Union[ArtifactRecord, ExecutionRecord]) -> Tuple[int, int]:
        return node.created_ms, node.id  # the order of a Query by ids, as walks always gave

    return LineageGraph({a.id: a for a in sorted(artifacts, key=newest_first, reverse=True)},
                        {e.id: e for e in sorted(executions, key=newest_first, reverse=True)},
                        tuple(edges))


def walk(
    store: Store,
    *,
    artifact_id: Optional[int] = None,
    execution_id: Optional[int] = None,
    direction: str = "upstream",
    hops: Optional[int] = None,
) -> LineageGraph:
    """Lineage over many hops from one artifact or one execution, as one graph.

    A hop crosses one event: from a model, 1 hop upstream reaches the execution
    that made it, 2 hops its inputs. "upstream" answers "what produced this, all
    the way back"; "downstream" answers "what came from this"; "both" is the
    union of the two (ancestors and descendants, not cousins).

    A breadth-first walk over events by node ids, one query per hop and side
    (`make bench` measures it against MLMD's `get_lineage_subgraph`): the hops of
    `walk_hops`, gathered.

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
    return graph_of(walk_hops(store, artifact_id=artifact_id, execution_id=execution_id,
                              direction=direction, hops=hops))


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
