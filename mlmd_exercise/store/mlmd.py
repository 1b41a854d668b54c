"""The ml-metadata backend: Google's MLMD library behind the package's `Backend` interface.

This module and `store/connect_mlmd.py` are the only code that imports `ml_metadata` or
touches a proto. MLMD's errors become the package's errors in one place (`_translate`), by
their classes. Records are built from protos here and nowhere else.
"""

from __future__ import annotations

import functools
import re
from typing import Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, TypeVar

from ml_metadata import errors as mlmd_errors
from ml_metadata.metadata_store import metadata_store
from ml_metadata.metadata_store.metadata_store import ListOptions, OrderByField
from ml_metadata.proto import metadata_store_pb2 as pb

from mlmd_exercise.errors import ConflictError, MlmdExerciseError, NotFoundError, StoreError, UnclearWriteError
from mlmd_exercise.records import (ArtifactRecord, ArtifactState, ContextRecord, EventRecord, ExecutionRecord,
                                   ExecutionState, Kind, PropertyType, PropertyValue, TypeRecord)
from mlmd_exercise.store import tables
from mlmd_exercise.store.backend import (Backend, ContextWrite, ExecutionWrite, NewArtifact, NewEvent,
                                         PropertyTest, Query)

__all__ = ["MlmdBackend"]

T = TypeVar("T")
_CHUNK = 200  # values per IN list of a filter query
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")  # a property name MLMD's filter language can name
# Errors after which a write may or may not have been committed.
_UNCLEAR = (mlmd_errors.AbortedError, mlmd_errors.UnavailableError,
            mlmd_errors.DeadlineExceededError, mlmd_errors.InternalError)


def _translate(store: object, e: mlmd_errors.StatusError) -> MlmdExerciseError:
    """The package's error for one of MLMD's, by its class (MLMD's text is kept for -v)."""
    if isinstance(e, mlmd_errors.AlreadyExistsError):
        return ConflictError(f"{store} already holds a node of that type and name")
    if isinstance(e, _UNCLEAR):
        return UnclearWriteError(f"store '{store}' broke off a write: it may or may not be recorded")
    if isinstance(e, mlmd_errors.NotFoundError):
        return NotFoundError(f"not found in {store}")
    return StoreError(f"store '{store}' refused: {str(e).strip().splitlines()[0] if str(e).strip() else e}")


def _translated(method: Callable[..., T]) -> Callable[..., T]:
    @functools.wraps(method)
    def wrapper(self: "MlmdBackend", *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except mlmd_errors.StatusError as e:
            raise _translate(self.label, e) from e
    return wrapper


# -- protos <-> plain values ------------------------------------------------------------


def _get(value: pb.Value) -> PropertyValue:
    which = value.WhichOneof("value")
    if which == "int_value":
        return value.int_value
    if which == "double_value":
        return value.double_value
    if which == "bool_value":
        return value.bool_value
    if which == "string_value":
        return value.string_value
    if which == "struct_value":  # Kubeflow's metrics and parameters: a JSON object
        from google.protobuf import json_format

        return json_format.MessageToDict(value.struct_value)
    if which == "proto_value":
        return _proto_json(value.proto_value)
    return ""


def _proto_json(message) -> dict:
    """A `google.protobuf.Any` as JSON: its JSON form (with "@type") where the message type
    is known here, else its type URL and its bytes in base64."""
    import base64

    from google.protobuf import json_format

    try:
        return json_format.MessageToDict(message)
    except (TypeError, KeyError, ValueError):  # the type is not in this process's descriptor pool
        return {"type_url": message.type_url, "value": base64.b64encode(message.value).decode()}


def _set(target, key: str, value: PropertyValue) -> None:
    """Stores a value (already made storable by `schema.storable`) under its MLMD kind."""
    if isinstance(value, bool):
        target[key].bool_value = value
    elif isinstance(value, int):
        target[key].int_value = value
    elif isinstance(value, float):
        target[key].double_value = value
    elif isinstance(value, str):
        target[key].string_value = value
    elif isinstance(value, dict):
        from google.protobuf import json_format

        json_format.ParseDict(value, target[key].struct_value)
    else:
        raise MlmdExerciseError(f"property '{key}' has a value MLMD cannot store: {value!r}")


def _values(node) -> Tuple[Dict[str, PropertyValue], Dict[str, PropertyValue]]:
    """(declared and custom, declared winning; custom alone)."""
    custom = {k: _get(v) for k, v in node.custom_properties.items()}
    merged = dict(custom)
    merged.update((k, _get(v)) for k, v in node.properties.items())
    return merged, custom


def artifact_record(a: pb.Artifact) -> ArtifactRecord:
    merged, custom = _values(a)
    return ArtifactRecord(
        id=a.id, type=a.type, uri=a.uri, state=ArtifactState(pb.Artifact.State.Name(a.state)).value,
        properties=merged, created_ms=a.create_time_since_epoch, type_id=a.type_id, custom=custom,
        name=a.name, external_id=a.external_id if a.HasField("external_id") else None,
        updated_ms=a.last_update_time_since_epoch)


def execution_record(e: pb.Execution) -> ExecutionRecord:
    merged, custom = _values(e)
    return ExecutionRecord(
        id=e.id, type=e.type, state=ExecutionState(pb.Execution.State.Name(e.last_known_state)).value,
        properties=merged, created_ms=e.create_time_since_epoch, name=e.name, type_id=e.type_id,
        custom=custom, external_id=e.external_id if e.HasField("external_id") else None,
        updated_ms=e.last_update_time_since_epoch)


def context_record(c: pb.Context) -> ContextRecord:
    merged, custom = _values(c)
    return ContextRecord(
        id=c.id, type=c.type, name=c.name, properties=merged, created_ms=c.create_time_since_epoch,
        type_id=c.type_id, custom=custom, external_id=c.external_id if c.HasField("external_id") else None,
        updated_ms=c.last_update_time_since_epoch)


def event_record(e: pb.Event) -> EventRecord:
    steps = tuple(s.key if s.WhichOneof("value") == "key" else s.index for s in e.path.steps)
    return EventRecord(e.artifact_id, e.execution_id, pb.Event.Type.Name(e.type), steps,
                       e.milliseconds_since_epoch)


_BASE_TYPES = {Kind.ARTIFACT: pb.ArtifactType, Kind.EXECUTION: pb.ExecutionType, Kind.CONTEXT: pb.ContextType}


def type_record(kind: Kind, t) -> TypeRecord:
    base = _BASE_TYPES[kind].SystemDefinedBaseType.Name(t.base_type) if t.HasField("base_type") else None
    return TypeRecord(
        id=t.id, kind=kind, name=t.name,
        properties={k: PropertyType(pb.PropertyType.Name(v)) for k, v in t.properties.items()},
        version=t.version if t.HasField("version") else None,
        description=t.description if t.HasField("description") else None,
        external_id=t.external_id if t.HasField("external_id") else None, base_type=base)


def _new_artifact(a: NewArtifact) -> pb.Artifact:
    proto = pb.Artifact(type_id=a.type_id, type=a.type, uri=a.uri, state=pb.Artifact.State.Value(a.state))
    if a.name:
        proto.name = a.name
    for key, value in a.properties.items():
        _set(proto.properties, key, value)
    for key, value in a.custom.items():
        _set(proto.custom_properties, key, value)
    return proto


def _apply(execution: pb.Execution, change: ExecutionWrite) -> pb.Execution:
    if change.name is not None and not execution.id:
        execution.name = change.name
    if change.state is not None:
        execution.last_known_state = pb.Execution.State.Value(ExecutionState(change.state).value)
    for key, value in change.properties.items():
        _set(execution.properties, key, value)
    for key, value in change.custom.items():
        _set(execution.custom_properties, key, value)
    return execution


def _event(e: NewEvent, artifact_id: int = 0, execution_id: int = 0) -> pb.Event:
    event = pb.Event(type=pb.Event.Type.Value(e.type))
    if artifact_id or e.artifact_id:
        event.artifact_id = artifact_id or e.artifact_id
    if execution_id or e.execution_id:
        event.execution_id = execution_id or e.execution_id
    for step in e.path:
        if isinstance(step, int):
            event.path.steps.add().index = step
        else:
            event.path.steps.add().key = step
    return event


def _context(c: ContextWrite) -> pb.Context:
    proto = pb.Context(type_id=c.type_id, type=c.type, name=c.name)
    for key, value in c.properties.items():
        _set(proto.properties, key, value)
    for key, value in c.custom.items():
        _set(proto.custom_properties, key, value)
    return proto


# -- queries ------------------------------------------------------------------------------


# Characters a value may hold to go into a filter query as a quoted literal: MLMD copies
# the literal into its SQL as it is (no escape works on every database), so a value with a
# quote, a backslash or anything unusual is looked up another way.
_PLAIN = re.compile(r"[A-Za-z0-9._~:/?#\[\]@!$&()*+,;=% -]*")


def _literal(text: str) -> Optional[str]:
    """`text` as a string literal of MLMD's filter language, or None where it holds
    characters that could not be quoted safely (those are looked up another way)."""
    return f"'{text}'" if _PLAIN.fullmatch(text) else None


def _key(name: str) -> str:
    if not _KEY.fullmatch(name):
        raise MlmdExerciseError(f"property name '{name}' cannot be searched")
    return name


def _in(column: str, literals: Sequence[str]) -> str:
    return f"{column} IN ({', '.join(literals)})"


def _test(test: PropertyTest) -> str:
    column = f"custom_properties.{_key(test.key)}"
    if test.op == ">=":
        return f"{column}.double_value >= {float(test.values[0])!r}"
    literals = [_literal(str(v)) for v in test.values]
    return _in(f"{column}.string_value", [lit for lit in literals if lit is not None] or ["''"])


def _filters(query: Query, kind: Kind) -> List[str]:
    found: List[str] = []
    if query.ids is not None:
        found.append(_in("id", [str(int(i)) for i in query.ids]) if query.ids else "id < 0")
    if query.id_above is not None:
        found.append(f"id > {int(query.id_above)}")
    if query.type_id is not None:
        found.append(f"type_id = {int(query.type_id)}")
    if query.context_id is not None and kind is not Kind.CONTEXT:
        found.append(f"contexts_a.id = {int(query.context_id)}")
    if query.created_from is not None:
        found.append(f"create_time_since_epoch >= {int(query.created_from)}")
    if query.created_before is not None:
        found.append(f"create_time_since_epoch < {int(query.created_before)}")
    if query.states:
        column = "last_known_state" if kind is Kind.EXECUTION else "state"
        known = [s for s in query.states if s != "UNKNOWN"]
        if known and len(known) == len(query.states):
            found.append("(" + " OR ".join(f"{column} = {s}" for s in known) + ")")
    found += [_test(t) for t in query.custom]
    if query.text is not None and query.text.text:
        like = _literal(f"%{query.text.text}%")
        if like is None:  # a quote or a backslash cannot reach MLMD's SQL: such text matches nothing here
            return found + ["id < 0"]
        terms = [f"type LIKE {like}", f"name LIKE {like}"]
        terms += [f"custom_properties.{k}.string_value LIKE {like}" for k in query.text.keys if _KEY.fullmatch(k)]
        if query.text.text.isdigit() and len(query.text.text) < 18:
            terms.append(f"id = {int(query.text.text)}")
        found.append("(" + " OR ".join(terms) + ")")
    return found


def _options(query: Query, filters: List[str], limit: Optional[int]) -> ListOptions:
    return ListOptions(limit=limit, order_by=OrderByField.ID if query.order == "id" else OrderByField.CREATE_TIME,
                       is_asc=query.ascending, filter_query=" AND ".join(filters))


def _order(query: Query) -> Callable:
    return (lambda r: r.id) if query.order == "id" else (lambda r: (r.created_ms, r.id))


def _matches(record, query: Query, kind: Kind) -> bool:
    """Whether a record passes the query's other fields, where MLMD could not filter it (a
    value its filter language cannot quote): those a lookup by URI or name can meet."""
    if query.type_id is not None and record.type_id != query.type_id:
        return False
    if query.ids is not None and record.id not in set(query.ids):
        return False
    if query.id_above is not None and record.id <= query.id_above:
        return False
    if query.states and record.state not in query.states:
        return False
    if query.created_from is not None and record.created_ms < query.created_from:
        return False
    if query.created_before is not None and record.created_ms >= query.created_before:
        return False
    if query.context_id is not None or query.custom or query.text is not None:
        raise MlmdExerciseError("a lookup by a URI or name with quotes cannot be combined with "
                                "a context, property or text filter")
    return True


class MlmdBackend(Backend):
    """An MLMD store opened by ml-metadata.

    `sql`, where given, runs read-only SQL over MLMD's tables on a connection of its own
    (PostgreSQL's admin connection): counts and audits then need no node loaded.
    """

    name = "mlmd"

    def __init__(self, mlmd: metadata_store.MetadataStore, label: str,
                 sql: Optional[Callable[..., list]] = None) -> None:
        self._mlmd = mlmd
        self.label = label
        self._sql = sql

    # -- types --------------------------------------------------------------------------

    @_translated
    def types(self, kind: Kind) -> List[TypeRecord]:
        getter = {Kind.ARTIFACT: self._mlmd.get_artifact_types, Kind.EXECUTION: self._mlmd.get_execution_types,
                  Kind.CONTEXT: self._mlmd.get_context_types}[kind]
        return sorted((type_record(kind, t) for t in getter()), key=lambda t: t.id)

    @_translated
    def put_type(self, kind: Kind, name: str, properties: Mapping[str, PropertyType]) -> int:
        proto = _BASE_TYPES[kind](name=name)
        for key, ptype in properties.items():
            proto.properties[key] = pb.PropertyType.Value(ptype.value)
        put = {Kind.ARTIFACT: self._mlmd.put_artifact_type, Kind.EXECUTION: self._mlmd.put_execution_type,
               Kind.CONTEXT: self._mlmd.put_context_type}[kind]
        return put(proto, can_add_fields=True, can_omit_fields=True)

    # -- nodes --------------------------------------------------------------------------

    def _list(self, kind: Kind, query: Query, by_id: Callable, listing: Callable, convert: Callable) -> list:
        if query.limit is not None and query.limit <= 0:
            return []
        if query.uris is not None or query.names is not None:
            return self._by_values(kind, query, by_id, listing, convert)
        states = query.states or ()
        sift = "UNKNOWN" in states
        filters = _filters(query, kind)
        if query.ids is not None and len(filters) == 1 and not sift:
            # By id alone: MLMD's indexed lookup, far cheaper than a filter query.
            found = [convert(n) for n in by_id(sorted(set(query.ids)))] if query.ids else []
            found.sort(key=_order(query), reverse=not query.ascending)
            return found[:query.limit] if query.limit is not None else found
        found = [convert(n) for n in listing(list_options=_options(query, filters, None if sift else query.limit))]
        if sift:
            found = [r for r in found if r.state in states]
            found = found[:query.limit] if query.limit is not None else found
        return found

    def _by_values(self, kind: Kind, query: Query, by_id: Callable, listing: Callable, convert: Callable) -> list:
        """Nodes by URI or name, a chunk of values per query; values the filter language
        cannot quote are looked up one by one."""
        import dataclasses

        column, values = ("uri", query.uris) if query.uris is not None else ("name", query.names)
        rest = dataclasses.replace(query, uris=None, names=None, limit=None)
        filters = _filters(rest, kind)
        found: Dict[int, object] = {}
        plain = [v for v in dict.fromkeys(values or ()) if _literal(v) is not None]
        odd = [v for v in dict.fromkeys(values or ()) if _literal(v) is None]
        if column == "uri" and len(plain) == 1:  # MLMD's indexed lookup: no filter query
            odd, plain = plain, []
        for first in range(0, len(plain), _CHUNK):
            chunk = [f"'{v}'" for v in plain[first:first + _CHUNK]]  # plain: _literal said so
            for node in listing(list_options=_options(rest, filters + [_in(column, chunk)], None)):
                found[node.id] = convert(node)
        if odd:
            for value in odd:
                for node in self._one_value(kind, column, value, query.type_id):
                    record = convert(node)
                    if _matches(record, rest, kind):
                        found[node.id] = record
        records = sorted(found.values(), key=_order(query), reverse=not query.ascending)
        return records[:query.limit] if query.limit is not None else records

    def _one_value(self, kind: Kind, column: str, value: str, type_id: Optional[int] = None) -> list:
        if column == "uri":
            return self._mlmd.get_artifacts_by_uri(value)
        if type_id is not None:  # by type and name: MLMD's exact-match lookup
            by_id = {Kind.ARTIFACT: self._mlmd.get_artifact_types_by_id,
                     Kind.EXECUTION: self._mlmd.get_execution_types_by_id,
                     Kind.CONTEXT: self._mlmd.get_context_types_by_id}[kind]
            by_name = {Kind.ARTIFACT: self._mlmd.get_artifact_by_type_and_name,
                       Kind.EXECUTION: self._mlmd.get_execution_by_type_and_name,
                       Kind.CONTEXT: self._mlmd.get_context_by_type_and_name}[kind]
            found = [by_name(t.name, value) for t in by_id([type_id])]
            return [n for n in found if n is not None]
        return [n for n in {Kind.ARTIFACT: self._mlmd.get_artifacts, Kind.EXECUTION: self._mlmd.get_executions,
                            Kind.CONTEXT: self._mlmd.get_contexts}[kind]() if n.name == value]

    @_translated
    def artifacts(self, query: Query = Query()) -> List[ArtifactRecord]:
        return self._list(Kind.ARTIFACT, query, self._mlmd.get_artifacts_by_id, self._mlmd.get_artifacts,
                          artifact_record)

    @_translated
    def executions(self, query: Query = Query()) -> List[ExecutionRecord]:
        return self._list(Kind.EXECUTION, query, self._mlmd.get_executions_by_id, self._mlmd.get_executions,
                          execution_record)

    @_translated
    def contexts(self, query: Query = Query()) -> List[ContextRecord]:
        return self._list(Kind.CONTEXT, query, self._mlmd.get_contexts_by_id, self._mlmd.get_contexts,
                          context_record)

    @_translated
    def execution_by_name(self, type_name: str, name: str) -> Optional[ExecutionRecord]:
        try:
            found = self._mlmd.get_execution_by_type_and_name(type_name, name)
        except mlmd_errors.NotFoundError:  # no such type
            return None
        return execution_record(found) if found is not None else None

    @_translated
    def context_by_name(self, type_name: str, name: str) -> Optional[ContextRecord]:
        try:
            found = self._mlmd.get_context_by_type_and_name(type_name, name)
        except mlmd_errors.NotFoundError:
            return None
        return context_record(found) if found is not None else None

    @_translated
    def contexts_of(self, kind: Kind, node_id: int) -> List[ContextRecord]:
        getter = self._mlmd.get_contexts_by_artifact if kind is Kind.ARTIFACT else self._mlmd.get_contexts_by_execution
        try:
            return [context_record(c) for c in getter(node_id)]
        except mlmd_errors.NotFoundError:  # MLMD's answer for a node in no context
            return []

    @_translated
    def contexts_of_executions(self, ids: Sequence[int]) -> Dict[int, List[ContextRecord]]:
        """MLMD looks up one execution's contexts by scanning its Association table (5 ms
        each at 200k runs), so this asks once which contexts hold any of them and then, for
        a few contexts, which of them each holds."""
        found: Dict[int, List[ContextRecord]] = {i: [] for i in ids}
        if not ids:
            return found
        listed = ", ".join(str(int(i)) for i in ids)
        contexts = self._mlmd.get_contexts(list_options=ListOptions(filter_query=f"executions_a.id IN ({listed})"))
        if len(contexts) > 5:
            return super().contexts_of_executions(ids)
        for c in contexts:
            # MLMD pages results 100 at a time, re-running the query for each page: for many
            # runs, reading the context's members whole is faster than an IN list.
            member = f"contexts_a.id = {int(c.id)}"
            if len(ids) <= 100:
                member = f"id IN ({listed}) AND " + member
            record = context_record(c)
            for e in self._mlmd.get_executions(list_options=ListOptions(filter_query=member)):
                if e.id in found:
                    found[e.id].append(record)
        return {i: sorted(v, key=lambda c: c.id) for i, v in found.items()}

    # -- events -------------------------------------------------------------------------

    @_translated
    def events_by_executions(self, ids: Sequence[int]) -> List[EventRecord]:
        return [event_record(e) for e in self._mlmd.get_events_by_execution_ids(list(ids))] if ids else []

    @_translated
    def events_by_artifacts(self, ids: Sequence[int]) -> List[EventRecord]:
        return [event_record(e) for e in self._mlmd.get_events_by_artifact_ids(list(ids))] if ids else []

    # -- writes -------------------------------------------------------------------------

    @_translated
    def put_artifacts(self, artifacts: Sequence[NewArtifact]) -> List[int]:
        return list(self._mlmd.put_artifacts([_new_artifact(a) for a in artifacts])) if artifacts else []

    def _execution(self, change: ExecutionWrite) -> pb.Execution:
        if not change.id:
            return _apply(pb.Execution(type_id=change.type_id, type=change.type), change)
        # The stored execution itself: a proto with only the id set would overwrite its
        # properties (an MLMD pitfall).
        found = self._mlmd.get_executions_by_id([change.id])
        if not found:
            raise NotFoundError(f"no execution with id {change.id} in {self.label}")
        return _apply(found[0], change)

    @_translated
    def put_execution(self, execution: ExecutionWrite,
                      artifacts: Sequence[Tuple[NewArtifact, NewEvent]] = (),
                      inputs: Sequence[Tuple[int, NewEvent]] = (),
                      context: Optional[ContextWrite] = None) -> Tuple[int, List[int], Optional[int]]:
        contexts = [self._stored_context(context)] if context is not None else []
        pairs = [(_new_artifact(a), _event(e)) for a, e in artifacts]
        execution_id, artifact_ids, context_ids = self._mlmd.put_execution(
            self._execution(execution), pairs, contexts, reuse_context_if_already_exist=True,
            force_reuse_context=True)
        context_id = context_ids[0] if context_ids else None
        if inputs:
            # Stored artifacts: their events, then their attribution (MLMD's put_execution would
            # write the artifacts themselves again).
            self._mlmd.put_events([_event(e, artifact_id, execution_id) for artifact_id, e in inputs])
            if context_id is not None:
                self._mlmd.put_attributions_and_associations(
                    [pb.Attribution(artifact_id=i, context_id=context_id) for i, _ in inputs], [])
        return execution_id, list(artifact_ids), context_id

    def _stored_context(self, context: ContextWrite, whole: bool = False) -> pb.Context:
        """The context to write with: by id where it is stored (`put_execution` with
        force_reuse_context then leaves it as it is), or, `whole`, the full stored context
        (`put_lineage_subgraph` updates a context given by id: a proto with only its name
        would wipe its properties); a new one where none is stored."""
        if context.id and not whole:
            return pb.Context(id=context.id, type_id=context.type_id, name=context.name)
        stored = self._mlmd.get_context_by_type_and_name(context.type, context.name)
        if stored is not None:
            return stored if whole else pb.Context(id=stored.id, type_id=context.type_id, name=context.name)
        return _context(context)

    @_translated
    def put_lineage(self, executions: Sequence[ExecutionWrite], artifacts: Sequence[NewArtifact],
                    events: Sequence[NewEvent], context: ContextWrite) -> Tuple[List[int], List[int], int]:
        edges = [(e.execution_index, e.artifact_index, _event(e)) for e in events]
        execution_ids, artifact_ids, [context_id] = self._mlmd.put_lineage_subgraph(
            [self._execution(e) for e in executions], [_new_artifact(a) for a in artifacts],
            [self._stored_context(context, whole=True)], edges, reuse_context_if_already_exist=True)
        return list(execution_ids), list(artifact_ids), context_id

    @_translated
    def update_executions(self, changes: Sequence[ExecutionWrite]) -> None:
        if changes:
            self._mlmd.put_executions([self._execution(c) for c in changes])  # one transaction

    @_translated
    def put_context(self, context: ContextWrite) -> int:
        stored = self._mlmd.get_context_by_type_and_name(context.type, context.name)
        if stored is not None:
            return stored.id
        try:
            [context_id] = self._mlmd.put_contexts([_context(context)])
        except mlmd_errors.AlreadyExistsError:  # made meanwhile by another writer
            made = self._mlmd.get_context_by_type_and_name(context.type, context.name)
            if made is None:
                raise
            return made.id
        return context_id

    # -- counts and audits ------------------------------------------------------------------

    def _tables(self) -> Optional[Callable[..., list]]:
        """Plain SQL over MLMD's tables, where this store offers it at a schema our SQL knows."""
        if self._sql is None or not tables.known_schema(self._sql):
            return None
        return self._sql

    @_translated
    def count_by_state(self, context_id: Optional[int] = None) -> Dict[ExecutionState, int]:
        run = self._tables()
        if run is not None:
            return tables.count_by_state(run, context_id)
        query = Query(context_id=context_id) if context_id is not None else Query()
        counts: Dict[ExecutionState, int] = {}
        for e in self.executions(query):
            state = ExecutionState(e.state)
            counts[state] = counts.get(state, 0) + 1
        return {s: counts[s] for s in ExecutionState if s in counts}

    @_translated
    def context_sizes(self, ids: Sequence[int]) -> Dict[int, Tuple[int, int]]:
        return {i: (len(self._mlmd.get_executions_by_context(i)), len(self._mlmd.get_artifacts_by_context(i)))
                for i in ids}

    @_translated
    def running_processes(self, host: str) -> List[Tuple[int, object, object, object]]:
        run = self._tables()
        if run is not None:
            return tables.running_processes(run, host)
        from mlmd_exercise import process

        found: List[Tuple[int, object, object, object]] = []
        for e in self.executions(Query(states=[ExecutionState.RUNNING.value])):
            if e.properties.get(process.HOST) == host:
                found.append((e.id, host, e.properties.get(process.PID), e.properties.get(process.PID_START)))
        return found

    def _artifact_pages(self, size: int = 1000) -> Iterable[List[ArtifactRecord]]:
        last = 0
        while True:
            page = self.artifacts(Query(id_above=last, order="id", ascending=True, limit=size))
            if not page:
                return
            yield page
            last = page[-1].id

    @_translated
    def artifacts_without_events(self) -> List[Tuple[int, str, str]]:
        run = self._tables()
        if run is not None:
            return tables.artifacts_without_events(run)
        found = []
        for page in self._artifact_pages():  # a page of artifacts and their events at a time
            joined = {e.artifact_id for e in self.events_by_artifacts([a.id for a in page])}
            found += [(a.id, a.type, a.uri) for a in page if a.id not in joined]
        return found

    @_translated
    def shared_outputs(self) -> List[Tuple[int, str, str, Tuple[int, ...]]]:
        run = self._tables()
        if run is not None:
            return tables.shared_outputs(run)
        found = []
        for page in self._artifact_pages():
            producers: Dict[int, set] = {}
            for e in self.events_by_artifacts([a.id for a in page]):
                if e.type in tables.OUTPUT_EVENT_NAMES:
                    producers.setdefault(e.artifact_id, set()).add(e.execution_id)
            found += [(a.id, a.type, a.uri, tuple(sorted(producers[a.id])))
                      for a in page if len(producers.get(a.id, ())) > 1]
        return found

    def close(self) -> None:
        self._mlmd = None  # type: ignore[assignment]
