"""The one seam to a store: what the package asks of an MLMD store, in plain records.

Everything above `store/` reaches a store only through a `Backend`. An implementation
speaks to one kind of engine (ml-metadata's C++ library, or MLMD's tables directly) and
is the only code that imports it; it turns that engine's errors into the package's
errors (`errors.py`) by their kinds, never by their message text.

The operations mirror MLMD's own API, so that their meaning is MLMD's meaning:
nodes are MLMD's artifacts, executions and contexts; an event joins an artifact to
an execution; attributions and associations put artifacts and executions in
contexts. Records come back frozen (`records.py`); writes go in as the drafts below.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import (TYPE_CHECKING, Callable, Dict, Iterable, Iterator, List, Mapping, NamedTuple, Optional, Sequence,
                    Set, Tuple, TypeVar, Union)

from mlmd_exercise.content import FINGERPRINT
from mlmd_exercise.errors import MlmdExerciseError, StoreError
from mlmd_exercise.records import (LEADS_ON, ArtifactRecord, ContextRecord, EventRecord, ExecutionRecord,
                                   ExecutionState, Kind, LineageEdge, PropertyType, PropertyValue, TypeRecord,
                                   edge_of, type_version)

__all__ = [
    "Query",
    "PropertyTest",
    "TextSearch",
    "NewArtifact",
    "ExecutionWrite",
    "ContextWrite",
    "NewEvent",
    "Backend",
    "LegHop",
    "NodeLine",
]

if TYPE_CHECKING:
    from mlmd_exercise.where import Expr

Values = Mapping[str, PropertyValue]
# One hop of a walk's leg (`Backend.walk_leg`): its number, the artifact and execution ids first
# reached there, the events crossed.
LegHop = Tuple[int, Set[int], Set[int], List[LineageEdge]]
T = TypeVar("T")


class NodeLine(NamedTuple):
    """What a walk's text shows of a node, read without its other properties (`Backend.node_lines`):
    an artifact's id, type, URI, version and fingerprint (its text, ours or another program's;
    None if it holds no text); an execution's id, type and state. Its fields are named as a
    record's, so that the text of either is made alike (`cli.output.artifact_cells`)."""

    id: int
    type: str
    state: str
    uri: str = ""
    version: Optional[int] = None
    fingerprint: Optional[str] = None

    @property
    def type_version(self) -> str:
        return type_version(self.type, self.version)

    @classmethod
    def of(cls, node: Union[ArtifactRecord, ExecutionRecord]) -> "NodeLine":
        if isinstance(node, ArtifactRecord):
            fingerprint = node.properties.get(FINGERPRINT)
            return cls(node.id, node.type, node.state, node.uri, node.version,
                       fingerprint if isinstance(fingerprint, str) else None)
        return cls(node.id, node.type, node.state)


@dataclass(frozen=True)
class PropertyTest:
    """A test on one custom property: `op` is "in" (a string value among `values`) or
    ">=" (a number, int or double, at least `values[0]`)."""

    key: str
    op: str
    values: Tuple[Union[str, float], ...]


@dataclass(frozen=True)
class TextSearch:
    """Nodes whose type name, name or one of the string custom properties `keys` contains
    `text` (case as stored), or whose id is `text` when it is a number."""

    text: str
    keys: Tuple[str, ...] = ()


@dataclass(frozen=True)
class Query:
    """Which nodes of one kind to list, in which order, how many. Every field narrows.

    The values are data, never query text: a backend passes them as parameters (or,
    where MLMD's filter language has no parameters, as quoted literals it escapes).
    """

    ids: Optional[Sequence[int]] = None
    id_above: Optional[int] = None  # id > this: paging by id
    type_id: Optional[int] = None
    not_type_id: Optional[int] = None  # of any other type (the metric histories' contexts, say)
    context_id: Optional[int] = None  # a member of this context
    uris: Optional[Sequence[str]] = None  # artifacts only
    names: Optional[Sequence[str]] = None
    states: Optional[Sequence[str]] = None  # state names: ExecutionState, or an artifact's
    created_from: Optional[int] = None  # create time >= this, ms since the epoch
    created_before: Optional[int] = None  # create time < this
    custom: Tuple[PropertyTest, ...] = ()
    text: Optional[TextSearch] = None
    # A filter query (where.parse's tree for this kind): MLMD's own language, evaluated over
    # MLMD's tables by every backend (store/where_sql.py), its values bound parameters.
    where: Optional["Expr"] = None
    order: str = "created"  # "created" (MLMD's create time, then id) or "id"
    ascending: bool = False
    limit: Optional[int] = None


@dataclass
class NewArtifact:
    """An artifact to store: always a new node (MLMD gives it its id)."""

    type_id: int
    type: str
    uri: str
    properties: Dict[str, PropertyValue] = field(default_factory=dict)  # declared by its type
    custom: Dict[str, PropertyValue] = field(default_factory=dict)
    state: str = "LIVE"
    name: Optional[str] = None


@dataclass
class ExecutionWrite:
    """A new execution (`id` 0), or changes to a stored one: the values given are set, the
    stored ones not given are kept (never MLMD's "write the whole node" overwrite)."""

    type_id: int
    type: str
    id: int = 0
    name: Optional[str] = None  # a new execution's name, unique per type
    state: Optional[ExecutionState] = None
    properties: Dict[str, PropertyValue] = field(default_factory=dict)
    custom: Dict[str, PropertyValue] = field(default_factory=dict)


@dataclass
class ContextWrite:
    """A context by type and name: stored if missing, else the stored one (left as it is)."""

    type_id: int
    type: str
    name: str
    id: int = 0  # the stored context's id, where the caller knows it
    properties: Dict[str, PropertyValue] = field(default_factory=dict)
    custom: Dict[str, PropertyValue] = field(default_factory=dict)


@dataclass(frozen=True)
class NewEvent:
    """An event to store. Its artifact is a stored one (`artifact_id`) or the
    `artifact_index`-th new artifact of the same write; its execution likewise."""

    type: str  # MLMD's event type name: "INPUT", "OUTPUT", "DECLARED_INPUT", ...
    path: Tuple[Union[str, int], ...] = ()  # steps: a key (str) or an index (int)
    artifact_id: int = 0
    artifact_index: Optional[int] = None
    execution_id: int = 0
    execution_index: Optional[int] = None


class Backend(abc.ABC):
    """An open MLMD store. Not thread-safe: one per thread, as MLMD's own store.

    Every method raises the package's errors only: `NotFoundError` for a missing id
    where it says so, `ConflictError` for a name already taken, `UnclearWriteError`
    when a write may or may not have been committed (the connection broke), and
    `StoreError` for everything else the database refuses.
    """

    name: str = ""  # "mlmd" or "native"
    # How many ids one query takes well (the native backend passes a list as one parameter;
    # ml-metadata's filter queries slow down with long IN lists): a caller reading many nodes
    # by id asks this many at a time (`chunks`).
    ids_per_query: int = 500

    def chunks(self, values: Iterable[T]) -> Iterator[List[T]]:
        """`values` (ids, names, URIs) as many at a time as one query takes well."""
        values = list(values)
        for first in range(0, len(values), self.ids_per_query):
            yield values[first:first + self.ids_per_query]

    # -- types ------------------------------------------------------------------------

    @abc.abstractmethod
    def types(self, kind: Kind) -> List[TypeRecord]:
        """Every type of this kind, in id order (two of one name where others made them)."""

    @abc.abstractmethod
    def put_type(self, kind: Kind, name: str, properties: Mapping[str, PropertyType]) -> int:
        """Stores a type, or adds properties to the stored type of that name (never removes
        or changes one); returns its id."""

    # -- nodes ------------------------------------------------------------------------

    @abc.abstractmethod
    def artifacts(self, query: Query = Query()) -> List[ArtifactRecord]:
        """The artifacts `query` selects, in its order."""

    @abc.abstractmethod
    def executions(self, query: Query = Query()) -> List[ExecutionRecord]:
        """The executions `query` selects, in its order (`states` names ExecutionStates;
        an execution with no state is UNKNOWN)."""

    @abc.abstractmethod
    def contexts(self, query: Query = Query()) -> List[ContextRecord]:
        """The contexts `query` selects (`context_id` does not apply)."""

    @abc.abstractmethod
    def execution_by_name(self, type_name: str, name: str) -> Optional[ExecutionRecord]:
        """The execution of this type and name, if any (exact match)."""

    @abc.abstractmethod
    def context_by_name(self, type_name: str, name: str) -> Optional[ContextRecord]:
        """The context of this type and name, if any (exact match)."""

    @abc.abstractmethod
    def contexts_of(self, kind: Kind, node_id: int) -> List[ContextRecord]:
        """The contexts an artifact (by attribution) or an execution (by association)
        belongs to; none for a node in none, or not stored."""

    def contexts_of_executions(self, ids: Sequence[int]) -> Dict[int, List[ContextRecord]]:
        """The contexts of each of these executions (each list in context id order)."""
        return {i: sorted(self.contexts_of(Kind.EXECUTION, i), key=lambda c: c.id) for i in ids}

    # -- events -----------------------------------------------------------------------

    @abc.abstractmethod
    def events_by_executions(self, ids: Sequence[int]) -> List[EventRecord]:
        """Every event of these executions."""

    @abc.abstractmethod
    def events_by_artifacts(self, ids: Sequence[int]) -> List[EventRecord]:
        """Every event of these artifacts."""

    def node_lines(self, kind: Kind, ids: Sequence[int]) -> List[NodeLine]:
        """What a walk's text shows of these artifacts or executions (`NodeLine`), those stored,
        in id order. Here from their records; the native backend reads only what is shown."""
        if not ids:
            return []
        nodes: Sequence[Union[ArtifactRecord, ExecutionRecord]] = (
            self.artifacts if kind is Kind.ARTIFACT else self.executions)(Query(ids=list(ids)))
        return [NodeLine.of(r) for r in sorted(nodes, key=lambda r: r.id)]

    def walk_leg(self, artifact_ids: Iterable[int], execution_ids: Iterable[int], direction: str,
                 hops: Optional[int] = None) -> Iterator[LegHop]:
        """One direction ("upstream" or "downstream") of a lineage walk from these nodes (hop 0),
        breadth-first, hop by hop as it goes: per hop, its number, the ids of the artifacts and
        executions first reached there, and the events crossed, as edges.

        A hop crosses one event: the events that lead on (records.LEADS_ON) from the nodes first
        reached at hop d are crossed at hop d + 1, those to nodes already reached too; a node's
        hop is its shortest distance from a start. The edges of a hop: those from its artifacts
        first, then those from its executions, each side in event id order. A hop is yielded
        while the one before it reached a node (the last may reach none) and `hops` allows it.

        Here one query per hop and side (`events_by_artifacts`, `events_by_executions`), the
        reached ids kept in sets; the native backend walks many hops per recursive query.
        """
        from_artifact, from_execution = LEADS_ON[direction]
        reached_a, reached_e = set(artifact_ids), set(execution_ids)
        frontier_a, frontier_e = set(reached_a), set(reached_e)
        number = 0
        while (frontier_a or frontier_e) and (hops is None or number < hops):
            number += 1
            crossed: Dict[Tuple[int, int, str], LineageEdge] = {}
            next_a: Set[int] = set()
            next_e: Set[int] = set()
            if frontier_a:
                for ev in self.events_by_artifacts(sorted(frontier_a)):
                    if ev.type in from_artifact:
                        crossed[(ev.artifact_id, ev.execution_id, ev.type)] = edge_of(ev)
                        if ev.execution_id not in reached_e:
                            reached_e.add(ev.execution_id)
                            next_e.add(ev.execution_id)
            if frontier_e:
                for ev in self.events_by_executions(sorted(frontier_e)):
                    if ev.type in from_execution:
                        crossed[(ev.artifact_id, ev.execution_id, ev.type)] = edge_of(ev)
                        if ev.artifact_id not in reached_a:
                            reached_a.add(ev.artifact_id)
                            next_a.add(ev.artifact_id)
            frontier_a, frontier_e = next_a, next_e
            yield number, next_a, next_e, list(crossed.values())

    # -- writes: each call is one transaction ------------------------------------------

    @abc.abstractmethod
    def put_artifacts(self, artifacts: Sequence[NewArtifact]) -> List[int]:
        """Stores new artifacts; their ids in order."""

    @abc.abstractmethod
    def put_execution(self, execution: ExecutionWrite,
                      artifacts: Sequence[Tuple[NewArtifact, NewEvent]] = (),
                      inputs: Sequence[Tuple[int, NewEvent]] = (),
                      context: Optional[ContextWrite] = None) -> Tuple[int, List[int], Optional[int]]:
        """An execution (new or changed), its new artifacts with their events, events to
        stored artifacts (`inputs`: artifact id and event), and the context it and those
        artifacts belong to (made if missing), as MLMD's `put_execution`.

        Returns:
            The execution's id, the new artifacts' ids, the context's id.

        Raises:
            ConflictError: a new execution's name is taken for its type.
        """

    @abc.abstractmethod
    def put_lineage(self, executions: Sequence[ExecutionWrite], artifacts: Sequence[NewArtifact],
                    events: Sequence[NewEvent], context: ContextWrite) -> Tuple[List[int], List[int], int]:
        """Many new executions, new artifacts and the events between them (by index, or to
        stored artifacts by id), all in `context`, as MLMD's `put_lineage_subgraph`.

        Returns:
            The executions' ids, the artifacts' ids, the context's id.
        """

    @abc.abstractmethod
    def update_executions(self, changes: Sequence[ExecutionWrite]) -> None:
        """Changes stored executions (see `ExecutionWrite`), all in one transaction."""

    @abc.abstractmethod
    def append_properties(self, execution: ExecutionWrite, contexts: Sequence[ContextWrite] = (),
                          added: Sequence[Tuple[int, int, Mapping[str, PropertyValue]]] = ()) -> List[int]:
        """What logging a metric writes, each part touching only what it names, so that its
        cost does not grow with what the nodes already hold: new contexts (their ids
        returned; a name taken is a ConflictError); custom properties set on stored contexts
        ((context id, its type id, the values): a row each, the context's other properties
        untouched); and the execution's changes (as `update_executions`: only the
        properties it gives).

        One transaction on the native backend. ml-metadata has no call that takes both an
        execution and contexts with field masks: it is a call each, in this order (a kill
        between them leaves the contexts' part written and the execution's not).
        """

    @abc.abstractmethod
    def put_context(self, context: ContextWrite) -> int:
        """The stored context of this type and name, made if missing; its id."""

    # -- counts and audits: what needs no node loaded -----------------------------------

    @abc.abstractmethod
    def count_by_state(self, context_id: Optional[int] = None) -> Dict[ExecutionState, int]:
        """Executions by state (no state reads as UNKNOWN), of the store or one context."""

    @abc.abstractmethod
    def context_sizes(self, ids: Sequence[int]) -> Dict[int, Tuple[int, int]]:
        """For each context, how many executions and how many artifacts it holds."""

    @abc.abstractmethod
    def running_processes(self, host: str) -> List[Tuple[int, object, object, object]]:
        """(execution id, host, pid, pid start) of the RUNNING executions recorded on `host`,
        read from their properties (`process.HOST`, `PID`, `PID_START`; a declared property
        wins over a custom one of the same name)."""

    @abc.abstractmethod
    def artifacts_without_events(self) -> List[Tuple[int, str, str]]:
        """(id, type name, uri) of every artifact no event joins to an execution, by id."""

    @abc.abstractmethod
    def shared_outputs(self) -> List[Tuple[int, str, str, Tuple[int, ...]]]:
        """(id, type name, uri, producing execution ids) of every artifact that more than one
        execution output (any output kind of event), by id; a CACHED execution (TFX and
        Kubeflow re-publish a cached step's outputs) is not a producer."""

    def unreadable_properties(self) -> List[Tuple[str, int, str, bool, str]]:
        """(kind, node id, name, is custom, what is wrong) of each property row ml-metadata
        cannot read (see `tables.unreadable_properties`); found by SQL over MLMD's tables."""
        raise StoreError(f"the {self.name or 'this'} backend cannot read property rows by SQL here")

    def histories_without_runs(self) -> List[Tuple[int, int]]:
        """(context id, execution id) of each metric-history context whose run is gone."""
        raise StoreError(f"the {self.name or 'this'} backend cannot read property rows by SQL here")

    def runs_missing_inputs(self) -> List[Tuple[int, str, int, int]]:
        """(id, type name, inputs its start recorded, input events it has) of every execution
        with fewer input events than its custom property `environment.INPUTS` says, by id
        (`tables.runs_missing_inputs`). Here through the reads, a page of executions at a time."""
        from mlmd_exercise.environment import INPUTS
        from mlmd_exercise.records import INPUT_EVENTS

        found: List[Tuple[int, str, int, int]] = []
        last = 0
        while True:
            page = self.executions(Query(id_above=last, order="id", ascending=True, limit=1000))
            if not page:
                return found
            last = page[-1].id
            given: Dict[int, Tuple[str, int]] = {}
            for x in page:
                n = x.custom.get(INPUTS)
                if isinstance(n, int) and not isinstance(n, bool) and n > 0:
                    given[x.id] = (x.type, n)
            if not given:
                continue
            counted = dict.fromkeys(given, 0)
            for e in self.events_by_executions(list(given)):
                if e.type in INPUT_EVENTS:
                    counted[e.execution_id] += 1
            found += [(i, given[i][0], given[i][1], counted[i]) for i in sorted(given) if counted[i] < given[i][1]]

    def set_property(self, kind: Kind, node_id: int, key: str, custom: bool, value: PropertyValue) -> None:
        """Writes one property row of a stored node as it is (the mending of `check
        --repair`): only a backend that writes MLMD's tables itself (native) can."""
        raise StoreError(f"the {self.name or 'this'} backend cannot mend a property row: "
                         "open the store with the native backend")

    # -- strings it cannot be given --------------------------------------------------------

    def check_text(self, where: str, text: Optional[str]) -> None:
        """Refuses, at the call and before anything is written, a string this backend would
        not store exactly (ml-metadata: store/mlmd/guard.py); `where` says what it is ("the
        experiment name"). No backend takes a lone surrogate (it is not UTF-8 text: no database
        stores it); ml-metadata's refuses more."""
        if isinstance(text, str):
            try:
                text.encode("utf-8")
            except UnicodeEncodeError as e:
                raise MlmdExerciseError(
                    f"refusing {where} {text[:60]!r}: it holds a lone surrogate (U+{ord(text[e.start]):04X}), "
                    "which is not UTF-8 text: no database stores it") from None

    def plain_texts(self, texts: Iterable[object]) -> bool:
        """Whether `check_text` takes every one of `texts` as it is, by a quick test that may say
        False of some it takes: ASCII strings with no NUL and no backslash, which no backend
        refuses (one that refuses more overrides this). For a caller that checks many strings
        (bulk recording), naming each one only where one may be refused."""
        try:
            joined = "\n".join(texts)  # type: ignore[arg-type]  # one pass in C; TypeError: not all strings
        except TypeError:
            return False
        return joined.isascii() and "\x00" not in joined and "\\" not in joined

    def check_texts(self, what: str, values: Mapping[str, object]) -> None:
        """`check_text` for each key of `values` ("the name of param 'x'") and each string value
        ("the param 'x'"); `what` names them ("param", "metric", "property")."""
        for key, value in values.items():
            self.check_text(f"the name of {what} '{key}'", key)
            if isinstance(value, str):
                self.check_text(f"the {what} '{key}'", value)

    def storable_text(self, text: str) -> str:
        """`text` as this backend can store it: for what the package records of its own
        accord and must not fail a run over (an error's message)."""
        return text

    # -- memberships and removal ----------------------------------------------------------

    def put_memberships(self, context_id: int, execution_ids: Sequence[int], artifact_ids: Sequence[int]) -> None:
        """Puts stored executions (associations) and artifacts (attributions) in a stored
        context, in one transaction; those already in it are left as they are."""
        raise StoreError(f"the {self.name or 'this'} backend cannot add nodes to a context")

    def delete_nodes(self, execution_ids: Sequence[int], artifact_ids: Sequence[int],
                     step: Optional[Callable[[str], None]] = None) -> Dict[str, int]:
        """Removes executions and artifacts with their properties, every event of either
        (and its path), their associations and attributions, in ONE transaction: a crash
        leaves the store as before or as after. Contexts and types stay.

        MLMD has no delete call: only a backend that writes MLMD's tables itself (native)
        can do this; the others refuse. `step` is called with each table's name once its
        rows are gone, inside the transaction (progress; tests kill the process there).

        Returns:
            Rows removed per table.
        """
        raise StoreError(f"the {self.name or 'this'} backend cannot remove nodes (MLMD has no delete call): "
                         "open the store with the native backend")

    def close(self) -> None:
        """Lets go of the connection; the backend is not used after."""
