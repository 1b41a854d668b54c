"""The ml-metadata backend: Google's MLMD library behind the package's `Backend` interface.

This module and its siblings in store/mlmd/ are the only code that imports `ml_metadata` or
touches a proto. MLMD's errors become the package's errors in one place (`_translate`), by
their classes.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, TypeVar, cast

import ml_metadata
from ml_metadata import errors as mlmd_errors
from ml_metadata.metadata_store import metadata_store
from ml_metadata.metadata_store.metadata_store import ListOptions
from ml_metadata.proto import metadata_store_pb2 as pb

from mlmd_exercise.errors import ConflictError, MlmdExerciseError, NotFoundError, StoreError, UnclearWriteError
from mlmd_exercise.records import (ArtifactRecord, ContextRecord, EventRecord, ExecutionRecord, ExecutionState, Kind,
                                   PropertyType, PropertyValue, TypeRecord)
from mlmd_exercise.store import tables
from mlmd_exercise.store.backend import Backend, ContextWrite, ExecutionWrite, NewArtifact, NewEvent, Query
from mlmd_exercise.store.mlmd import filters as mf, protos as mp
from mlmd_exercise.store.mlmd.guard import SafeLookups, guarded
from mlmd_exercise.store.native.dialects import DIALECTS
from mlmd_exercise.store.native.errors import damaged, disk_full
from mlmd_exercise.version import MLMD_WITHOUT_FILTERS, major_minor

__all__ = ["MlmdBackend"]

T = TypeVar("T")
_CHUNK = 200  # values per IN list of a filter query

# Errors after which a write may or may not have been committed.
_UNCLEAR = (mlmd_errors.AbortedError, mlmd_errors.UnavailableError,
            mlmd_errors.DeadlineExceededError, mlmd_errors.InternalError)


_FULL = ("database or disk is full", "No space left on device")  # SQLite's words, PostgreSQL's and MySQL's
_WRITES = ("put_", "update_", "append_")


def _full(e: mlmd_errors.StatusError) -> bool:
    return any(words in str(e) for words in _FULL)


def _translate(store: str, e: mlmd_errors.StatusError, writing: bool) -> MlmdExerciseError:
    """The package's error for one of MLMD's, by its class (MLMD's text is kept for -v); a
    full disk and a damaged file only by the database's words, which MLMD passes on as text."""
    if isinstance(e, mlmd_errors.AlreadyExistsError):
        return ConflictError(f"{store} already holds a node of that type and name")
    if writing and _full(e):
        return disk_full(store)  # the commit failed: its transaction is rolled back (`_recover`)
    if "database disk image is malformed" in str(e):
        return damaged(store, writing)
    if isinstance(e, _UNCLEAR):
        return UnclearWriteError(f"store '{store}' broke off a write: it may or may not be recorded")
    if isinstance(e, mlmd_errors.NotFoundError):
        return NotFoundError(f"not found in {store}")
    return StoreError(f"store '{store}' refused: {str(e).strip().splitlines()[0] if str(e).strip() else e}")


def _translated(method: Callable[..., T]) -> Callable[..., T]:
    writing = method.__name__.startswith(_WRITES)

    @functools.wraps(method)
    def wrapper(self: "MlmdBackend", *args, **kwargs):
        if self._broken:
            self._recover()
        if writing and self._before_write is not None:
            self._before_write()
        try:
            return method(self, *args, **kwargs)
        except mlmd_errors.StatusError as e:
            error = _translate(self.label, e, writing)
            if isinstance(e, _UNCLEAR):
                self._broken = True  # the next call opens ml-metadata's connection again
                self._full = writing and _full(e)
            raise error from e
    return wrapper


# Seconds to wait before each try to open ml-metadata's connection again after a call it broke
# off (`_recover`): at once, then for about 3 s in all.
REOPEN_WAITS = (0.0, 0.1, 0.2, 0.4, 0.8, 1.5)


class MlmdBackend(SafeLookups, Backend):
    """An MLMD store opened by ml-metadata.

    `sql`, where given, runs read-only SQL over MLMD's tables on a connection of its own
    (the server's admin connection): counts and audits then need no node loaded, and a name or
    URI that ml-metadata would quote wrongly is looked up there, with bound parameters.
    `database` ("sqlite", "postgresql", "mysql") says which strings ml-metadata must never be
    given (store/mlmd/guard.py): every call to it goes through that guard. `reopen` opens
    ml-metadata's store again the same way, after a call it broke off (`_recover`);
    `before_write` raises where no write may be made (an SQLite file deleted or replaced).
    """

    name = "mlmd"

    def __init__(self, mlmd: metadata_store.MetadataStore, label: str,
                 sql: Optional[Callable[..., list]] = None, database: str = "sqlite",
                 reopen: Optional[Callable[[], metadata_store.MetadataStore]] = None,
                 before_write: Optional[Callable[[], None]] = None) -> None:
        self._mlmd = guarded(mlmd, database, label)
        self._reopen, self._broken = reopen, False
        self._full = False  # whether what broke it off was a full disk
        self._before_write = before_write
        # Whether this ml-metadata runs filter queries (1.21 dropped them): by its version,
        # never by trying one and catching the error.
        self.filters = major_minor(ml_metadata.__version__) < MLMD_WITHOUT_FILTERS
        self.label = label
        self._sql = sql
        self.database = database

    # -- types --------------------------------------------------------------------------

    @_translated
    def types(self, kind: Kind) -> List[TypeRecord]:
        getter = {Kind.ARTIFACT: self._mlmd.get_artifact_types, Kind.EXECUTION: self._mlmd.get_execution_types,
                  Kind.CONTEXT: self._mlmd.get_context_types}[kind]
        return sorted((mp.type_record(kind, t) for t in getter()), key=lambda t: t.id)

    @_translated
    def put_type(self, kind: Kind, name: str, properties: Mapping[str, PropertyType]) -> int:
        proto = mp.BASE_TYPES[kind](name=name)
        for key, ptype in properties.items():
            proto.properties[key] = pb.PropertyType.Value(ptype.value)
        put = {Kind.ARTIFACT: self._mlmd.put_artifact_type, Kind.EXECUTION: self._mlmd.put_execution_type,
               Kind.CONTEXT: self._mlmd.put_context_type}[kind]
        return put(proto, can_add_fields=True, can_omit_fields=True)

    # -- nodes --------------------------------------------------------------------------

    def _list(self, kind: Kind, query: Query, by_id: Callable, listing: Callable, convert: Callable) -> list:
        if query.limit is not None and query.limit <= 0:
            return []
        if query.where is not None:
            query = self._where(kind, query)
            if query.ids is not None and len(query.ids) > self.ids_per_query:
                # Ids by the package's SQL: asked a chunk at a time (a filter query with a long
                # IN list slows ml-metadata down), then ordered and limited here as MLMD would.
                found = [r for chunk in self.chunks(sorted(query.ids))
                         for r in self._list(kind, dataclasses.replace(query, ids=chunk, limit=None), by_id,
                                             listing, convert)]
                found.sort(key=mf.order(query), reverse=not query.ascending)
                return found[:query.limit] if query.limit is not None else found
        if not self.filters:
            return self._plain_list(kind, query, by_id, listing, convert)
        unsaid = tuple(t for t in query.custom if not mf.sayable(t))
        search = None if mf.says_text(query.text) else query.text
        if unsaid or search is not None:  # asked without them, then tested here
            rest = dataclasses.replace(query, custom=tuple(t for t in query.custom if mf.sayable(t)), limit=None,
                                       text=query.text if search is None else None)
            found = [r for r in self._list(kind, rest, by_id, listing, convert)
                     if all(mf.property_passes(r, t) for t in unsaid) and (search is None or mf.text_passes(r, search))]
            return found[:query.limit] if query.limit is not None else found
        if query.uris is not None or query.names is not None:
            return self._by_values(kind, query, by_id, listing, convert)
        states = query.states or ()
        sift = "UNKNOWN" in states
        filters = mf.filters(query, kind)
        if query.ids is not None and len(filters) == 1 and not sift:
            # By id alone: MLMD's indexed lookup, far cheaper than a filter query.
            found = [convert(n) for n in by_id(sorted(set(query.ids)))] if query.ids else []
            found.sort(key=mf.order(query), reverse=not query.ascending)
            return found[:query.limit] if query.limit is not None else found
        found = [convert(n) for n in listing(list_options=mf.options(query, filters, None if sift else query.limit))]
        if sift:
            found = [r for r in found if r.state in states]
            found = found[:query.limit] if query.limit is not None else found
        return found

    def _where(self, kind: Kind, query: Query) -> Query:
        """`query` with its filter query made ids, by the package's SQL over MLMD's tables where
        this store offers plain SQL (a server's); else left for ml-metadata's own filter
        language (1.17, an SQLite file it holds: Python's sqlite3 must not open it too), which
        takes it as the package wrote it out again, once every string in it can be quoted."""

        assert query.where is not None
        run = self._tables()
        if run is not None:
            from mlmd_exercise.store.where_sql import matching_ids

            dialect, plain = DIALECTS[self.database], run
            run = lambda sql, *values: plain(sql, *(dialect.stored_text(v) if type(v) is str else v  # noqa: E731
                                                   for v in values))
            found = matching_ids(run, query.where, kind, dialect.number_marks)
            ids = found if query.ids is None else sorted(set(found) & {int(i) for i in query.ids})
            return dataclasses.replace(query, where=None, ids=ids)
        if not self.filters:
            raise StoreError(f"store '{self.label}': a filter query needs plain SQL over its tables, which this "
                             "ml-metadata gives none of here (and has no filter language): open it with "
                             "--backend native")
        from mlmd_exercise.where import strings

        odd = next((t for t in strings(query.where) if mf.literal(t) is None), None)
        if odd is not None:
            raise StoreError(f"store '{self.label}': ml-metadata's filter language cannot be given {odd!r} "
                             "(it copies strings into its SQL as they are): open the store with --backend native")
        return query

    def _plain_list(self, kind: Kind, query: Query, by_id: Callable, listing: Callable, convert: Callable) -> list:
        """`_list` with no filter query (ml-metadata 1.21 has none): the narrowest plain call
        (by id, by URI, by context, by type; else every node), then the query's other fields
        tested here, ordered and limited as MLMD would."""
        members: Optional[set] = None
        if query.context_id is not None and kind is not Kind.CONTEXT:
            by_context = (self._mlmd.get_artifacts_by_context if kind is Kind.ARTIFACT
                          else self._mlmd.get_executions_by_context)
            nodes = by_context(query.context_id)
            members = {n.id for n in nodes}
        elif query.ids is not None:
            nodes = by_id(sorted(set(query.ids))) if query.ids else []
        elif query.uris is not None and kind is Kind.ARTIFACT:
            nodes = [n for uri in dict.fromkeys(query.uris) for n in self._one_value(kind, "uri", uri)]
        elif query.names is not None and query.type_id is not None:
            nodes = [n for name in dict.fromkeys(query.names) for n in self._one_value(kind, "name", name, query.type_id)]
        else:
            nodes = listing()
        found = {r.id: r for r in map(convert, nodes) if mf.passes(r, query, members)}
        records = sorted(found.values(), key=mf.order(query), reverse=not query.ascending)
        return records[:query.limit] if query.limit is not None else records

    def _by_values(self, kind: Kind, query: Query, by_id: Callable, listing: Callable, convert: Callable) -> list:
        """Nodes by URI or name, a chunk of values per query; values the filter language
        cannot quote are looked up one by one."""

        column, values = ("uri", query.uris) if query.uris is not None else ("name", query.names)
        rest = dataclasses.replace(query, uris=None, names=None, limit=None)
        filters = mf.filters(rest, kind)
        found: Dict[int, object] = {}
        plain = [v for v in dict.fromkeys(values or ()) if mf.literal(v) is not None]
        odd = [v for v in dict.fromkeys(values or ()) if mf.literal(v) is None]
        if column == "uri" and len(plain) == 1:  # MLMD's indexed lookup: no filter query
            odd, plain = plain, []
        for first in range(0, len(plain), _CHUNK):
            chunk = [f"'{v}'" for v in plain[first:first + _CHUNK]]  # plain: _literal said so
            for node in listing(list_options=mf.options(rest, filters + [mf.in_list(column, chunk)], None)):
                found[node.id] = convert(node)
        if odd:
            for value in odd:
                for node in self._one_value(kind, column, value, query.type_id):
                    record = convert(node)
                    if mf.matches(record, rest, kind):
                        found[node.id] = record
        records = sorted(found.values(), key=mf.order(query), reverse=not query.ascending)
        return records[:query.limit] if query.limit is not None else records

    def _one_value(self, kind: Kind, column: str, value: str, type_id: Optional[int] = None) -> list:
        if column == "uri":
            plain = self._sql_values(value)
            if plain is not None and self._sql is not None:
                return self._ids_then(kind, tables.artifact_ids_at(self._sql, *plain))
            return self._mlmd.get_artifacts_by_uri(value)
        if type_id is not None:  # by type and name: MLMD's exact-match lookup
            by_id = {Kind.ARTIFACT: self._mlmd.get_artifact_types_by_id,
                     Kind.EXECUTION: self._mlmd.get_execution_types_by_id,
                     Kind.CONTEXT: self._mlmd.get_context_types_by_id}[kind]
            found = [self._by_type_and_name(kind, t.name, value) for t in by_id([type_id])]
            return [n for n in found if n is not None]
        return [n for n in {Kind.ARTIFACT: self._mlmd.get_artifacts, Kind.EXECUTION: self._mlmd.get_executions,
                            Kind.CONTEXT: self._mlmd.get_contexts}[kind]() if n.name == value]

    @_translated
    def artifacts(self, query: Query = Query()) -> List[ArtifactRecord]:
        return self._list(Kind.ARTIFACT, query, self._mlmd.get_artifacts_by_id, self._mlmd.get_artifacts,
                          mp.artifact_record)

    @_translated
    def executions(self, query: Query = Query()) -> List[ExecutionRecord]:
        return self._list(Kind.EXECUTION, query, self._mlmd.get_executions_by_id, self._mlmd.get_executions,
                          mp.execution_record)

    @_translated
    def contexts(self, query: Query = Query()) -> List[ContextRecord]:
        return self._list(Kind.CONTEXT, query, self._mlmd.get_contexts_by_id, self._mlmd.get_contexts,
                          mp.context_record)

    @_translated
    def execution_by_name(self, type_name: str, name: str) -> Optional[ExecutionRecord]:
        try:
            found = self._by_type_and_name(Kind.EXECUTION, type_name, name)
        except mlmd_errors.NotFoundError:  # no such type
            return None
        return mp.execution_record(found) if found is not None else None

    @_translated
    def context_by_name(self, type_name: str, name: str) -> Optional[ContextRecord]:
        try:
            found = self._by_type_and_name(Kind.CONTEXT, type_name, name)
        except mlmd_errors.NotFoundError:
            return None
        return mp.context_record(found) if found is not None else None

    @_translated
    def contexts_of(self, kind: Kind, node_id: int) -> List[ContextRecord]:
        getter = self._mlmd.get_contexts_by_artifact if kind is Kind.ARTIFACT else self._mlmd.get_contexts_by_execution
        try:
            return [mp.context_record(c) for c in getter(node_id)]
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
        if not self.filters:  # ml-metadata 1.21: one execution's contexts at a time
            return super().contexts_of_executions(ids)
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
            record = mp.context_record(c)
            for e in self._mlmd.get_executions(list_options=ListOptions(filter_query=member)):
                if e.id in found:
                    found[e.id].append(record)
        return {i: sorted(v, key=lambda c: c.id) for i, v in found.items()}

    # -- events -------------------------------------------------------------------------

    @_translated
    def events_by_executions(self, ids: Sequence[int]) -> List[EventRecord]:
        return [mp.event_record(e) for e in self._mlmd.get_events_by_execution_ids(list(ids))] if ids else []

    @_translated
    def events_by_artifacts(self, ids: Sequence[int]) -> List[EventRecord]:
        return [mp.event_record(e) for e in self._mlmd.get_events_by_artifact_ids(list(ids))] if ids else []

    # -- writes -------------------------------------------------------------------------

    @_translated
    def put_artifacts(self, artifacts: Sequence[NewArtifact]) -> List[int]:
        return list(self._mlmd.put_artifacts([mp.new_artifact(a) for a in artifacts])) if artifacts else []

    def _execution(self, change: ExecutionWrite) -> pb.Execution:
        if not change.id:
            return mp.apply(pb.Execution(type_id=change.type_id, type=change.type), change)
        # The stored execution itself: a proto with only the id set would overwrite its
        # properties (an MLMD pitfall).
        found = self._mlmd.get_executions_by_id([change.id])
        if not found:
            raise NotFoundError(f"no execution with id {change.id} in {self.label}")
        return mp.apply(found[0], change)

    @_translated
    def put_execution(self, execution: ExecutionWrite,
                      artifacts: Sequence[Tuple[NewArtifact, NewEvent]] = (),
                      inputs: Sequence[Tuple[int, NewEvent]] = (),
                      context: Optional[ContextWrite] = None) -> Tuple[int, List[int], Optional[int]]:
        contexts = [self._stored_context(context)] if context is not None else []
        pairs = [(mp.new_artifact(a), mp.event(e)) for a, e in artifacts]
        # Stored inputs go into the same call, as the stored artifacts themselves (a proto
        # with only the id would overwrite one; unchanged, MLMD leaves it as it is): the
        # execution, its events, attributions and association in ONE transaction, never a
        # started run without the inputs its start recorded.
        if inputs:
            ids = list(dict.fromkeys(int(i) for i, _ in inputs))
            stored = {a.id: a for a in self._mlmd.get_artifacts_by_id(ids)}
            missing = [i for i in ids if i not in stored]
            if missing:
                raise NotFoundError(f"no artifact with id {missing[0]} in {self.label}")
            pairs += [(stored[int(i)], mp.event(e)) for i, e in inputs]
        execution_id, artifact_ids, context_ids = self._mlmd.put_execution(
            self._execution(execution), pairs, contexts, reuse_context_if_already_exist=True,
            force_reuse_context=True)
        context_id = context_ids[0] if context_ids else None
        artifact_ids = list(artifact_ids)[:len(artifacts)]  # the new ones'
        return execution_id, list(artifact_ids), context_id

    def _stored_context(self, context: ContextWrite, whole: bool = False) -> pb.Context:
        """The context to write with: by id where it is stored (`put_execution` with
        force_reuse_context then leaves it as it is), or, `whole`, the full stored context
        (`put_lineage_subgraph` updates a context given by id: a proto with only its name
        would wipe its properties); a new one where none is stored."""
        if context.id and not whole:
            return pb.Context(id=context.id, type_id=context.type_id, name=context.name)
        stored = self._by_type_and_name(Kind.CONTEXT, context.type, context.name)
        if stored is not None:
            return stored if whole else pb.Context(id=stored.id, type_id=context.type_id, name=context.name)
        return mp.context(context)

    @_translated
    def put_lineage(self, executions: Sequence[ExecutionWrite], artifacts: Sequence[NewArtifact],
                    events: Sequence[NewEvent], context: ContextWrite) -> Tuple[List[int], List[int], int]:
        edges = [(e.execution_index, e.artifact_index, mp.event(e)) for e in events]
        execution_ids, artifact_ids, [context_id] = self._mlmd.put_lineage_subgraph(
            [self._execution(e) for e in executions], [mp.new_artifact(a) for a in artifacts],
            [self._stored_context(context, whole=True)], edges, reuse_context_if_already_exist=True)
        return list(execution_ids), list(artifact_ids), context_id

    @_translated
    def update_executions(self, changes: Sequence[ExecutionWrite]) -> None:
        if changes:
            self._mlmd.put_executions([self._execution(c) for c in changes])  # one transaction

    @_translated
    def append_properties(self, execution: ExecutionWrite, contexts: Sequence[ContextWrite] = (),
                          added: Sequence[Tuple[int, int, Mapping[str, PropertyValue]]] = ()) -> List[int]:
        ids = list(self._mlmd.put_contexts([mp.context(c) for c in contexts])) if contexts else []
        for context_id, type_id, values in added:  # the named properties alone: MLMD's field mask
            proto = pb.Context(id=int(context_id), type_id=int(type_id))
            for key, value in values.items():
                mp.set_value(proto.custom_properties, key, value)
            self._mlmd.put_contexts([proto], field_mask_paths=[f"custom_properties.{k}" for k in values])
        change = pb.Execution(id=int(execution.id), type_id=execution.type_id)
        mp.apply(change, execution)
        paths = [f"properties.{k}" for k in execution.properties] + [f"custom_properties.{k}" for k in execution.custom]
        if execution.state is not None:
            paths.append("last_known_state")
        if paths:
            self._mlmd.put_executions([change], field_mask_paths=paths)
        return ids

    @_translated
    def put_context(self, context: ContextWrite) -> int:
        stored = self._by_type_and_name(Kind.CONTEXT, context.type, context.name)
        if stored is not None:
            return stored.id
        try:
            [context_id] = self._mlmd.put_contexts([mp.context(context)])
        except mlmd_errors.AlreadyExistsError:  # made meanwhile by another writer
            made = self._by_type_and_name(Kind.CONTEXT, context.type, context.name)
            if made is None:
                raise
            return made.id
        return context_id

    @_translated
    def put_memberships(self, context_id: int, execution_ids: Sequence[int], artifact_ids: Sequence[int]) -> None:
        # MLMD inserts each pair if it is missing, in one transaction.
        self._mlmd.put_attributions_and_associations(
            [pb.Attribution(artifact_id=int(i), context_id=int(context_id)) for i in dict.fromkeys(artifact_ids)],
            [pb.Association(execution_id=int(i), context_id=int(context_id)) for i in dict.fromkeys(execution_ids)])

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
        run = self._tables()
        if run is not None:
            return tables.context_sizes(run, ids)
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
            several = {e for ids in producers.values() if len(ids) > 1 for e in ids}
            cached = ({x.id for x in self.executions(Query(ids=sorted(several))) if x.state == "CACHED"}
                      if several else set())
            makers = {a: ids - cached for a, ids in producers.items()}  # a cached step re-publishes
            found += [(a.id, a.type, a.uri, tuple(sorted(makers[a.id])))
                      for a in page if len(makers.get(a.id, ())) > 1]
        return found

    def unreadable_properties(self) -> List[Tuple[str, int, str, bool, str]]:
        run = self._tables()
        return tables.unreadable_properties(run) if run is not None else super().unreadable_properties()

    def histories_without_runs(self) -> List[Tuple[int, int]]:
        run = self._tables()
        return tables.histories_without_runs(run) if run is not None else super().histories_without_runs()

    def runs_missing_inputs(self) -> List[Tuple[int, str, int, int]]:
        run = self._tables()
        return tables.runs_missing_inputs(run) if run is not None else super().runs_missing_inputs()

    def _recover(self) -> None:
        """Opens ml-metadata's connection again after a call it broke off (`reopen`, where
        given): a commit that failed (a full disk) leaves its transaction open in ml-metadata,
        and every later call would say "Transaction already open", even once there is room.
        Dropping the old connection first rolls that transaction back and frees its locks.
        Opening again can fail for a moment, while the server still ends the connection dropped
        here (a loaded PostgreSQL server with a full disk has said nothing but "metadata source
        error"): it is tried again, REOPEN_WAITS apart. If it still fails, the call is refused (as
        the full disk it is, where one broke the write off), and the next call tries again."""
        if self._reopen is None:
            self._broken = False
            return
        self._mlmd._store._metadata_store = None  # ml-metadata's C++ store, and its connection, close
        for wait in REOPEN_WAITS:
            time.sleep(wait)
            try:
                self._mlmd = guarded(self._reopen(), self.database, self.label)
                break
            except Exception as e:
                failure = e
        else:
            if self._full:
                raise disk_full(self.label) from None
            raise StoreError(f"cannot open store '{self.label}' again after a write it broke off: {failure}") from None
        self._broken = False

    def close(self) -> None:
        self._mlmd = cast(Any, None)  # its connection closes with it (Any: mypy with or without ml-metadata)
