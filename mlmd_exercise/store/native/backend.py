"""The native backend: MLMD's own tables (schema version 10), read and written with
Python's sqlite3, psycopg 3 or pg8000, or PyMySQL, without ml-metadata.

A store written here is a normal MLMD store: ml-metadata opens it and reads every node,
type, property, event, context, attribution and association as if it had written them,
and goes on writing to it; whatever ml-metadata writes, this reads. Each write is one
transaction (BEGIN IMMEDIATE on SQLite). The reads are `reads.NativeReads`; each engine's
SQL is its dialect's (`sql.Db`: sqlite.py, postgres.py, mysql.py), the schema `schema.py`;
database errors become the package's errors in `errors.translate` alone, by their class and
code, never by their text. Stores are opened by store/sqlite.py, postgres.py and mysql.py.
"""

from __future__ import annotations

import time
from array import array
from typing import Any, Callable, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Tuple

from mlmd_exercise.errors import ConflictError, MlmdExerciseError, NotFoundError, StoreError
from mlmd_exercise.records import (EVENT_TYPES, ArtifactState, ExecutionState, Kind, PropertyType, PropertyValue)
from mlmd_exercise.store import tables
from mlmd_exercise.store.backend import ContextWrite, ExecutionWrite, NewArtifact, NewEvent
from mlmd_exercise.store.native.errors import writing
from mlmd_exercise.store.native.reads import PROPERTY_COLUMNS, PROPERTY_TYPES, TYPE_KINDS, NativeReads
from mlmd_exercise.store.native.rows import NODES, Node, encode
from mlmd_exercise.values import exact_double

__all__ = ["NativeBackend"]

# The PropertyType number of each kind of value a record holds (MLMD's declared kinds).
_VALUE_KINDS = {bool: 6, int: 1, float: 2, str: 3, dict: 4}
_ARTIFACT_STATES = list(ArtifactState)
_EXECUTION_STATES = list(ExecutionState)
# A state's or event type's number by its name, looked up once per row of a batch.
_ARTIFACT_NUMBERS = {s.value: n for n, s in enumerate(_ARTIFACT_STATES)}
_EXECUTION_NUMBERS = {s.value: n for n, s in enumerate(_EXECUTION_STATES)}
_EVENT_NUMBERS = {name: n for n, name in enumerate(EVENT_TYPES) if n}  # MLMD refuses an event without a type


def _artifact_state(state: Any) -> int:
    number = _ARTIFACT_NUMBERS.get(state)
    return _ARTIFACT_STATES.index(ArtifactState(state)) if number is None else number


def _execution_state(state: Any) -> Optional[int]:
    if state is None:
        return None
    number = _EXECUTION_NUMBERS.get(state)
    return _EXECUTION_STATES.index(ExecutionState(state)) if number is None else number


def _now() -> int:
    return int(time.time() * 1000)


class NativeBackend(NativeReads):
    """An MLMD store read and written through its tables (see the module's docstring)."""

    def _check(self, type_id: int, type_name: str, properties: Mapping[str, PropertyValue]) -> None:
        """Refuses what MLMD refuses: a node of a type not stored, or a declared property
        its type does not declare, or declares as another kind of value."""
        declared = self._declared.get(type_id)
        if declared is None or any(k not in declared for k in properties):  # another writer may have added some
            declared = dict(self.db.run("SELECT name, data_type FROM TypeProperty WHERE type_id = ?", type_id))
            if not declared and not self.db.run("SELECT 1 FROM Type WHERE id = ?", type_id):
                raise NotFoundError(f"no type with id {type_id} ('{type_name}') in {self.label}")
            self._declared[type_id] = declared
        for key, value in properties.items():
            if key not in declared:
                raise StoreError(f"store '{self.label}' refused: type '{type_name}' declares no property '{key}'")
            kind = _VALUE_KINDS[type(value)] if type(value) in _VALUE_KINDS else None
            if isinstance(value, float) and not exact_double(value):
                kind = PROPERTY_TYPES.index(PropertyType.PROTO)  # stored as a DoubleValue
            if kind is not None and declared[key] != kind:
                raise StoreError(f"store '{self.label}' refused: property '{key}' of type '{type_name}' holds "
                                 f"{PROPERTY_TYPES[declared[key] or 0].value} values, not "
                                 f"{PROPERTY_TYPES[kind].value}")

    def _type_id(self, kind: Kind, name: str) -> Optional[int]:
        found = self.db.run("SELECT id FROM Type WHERE name = ? AND version IS NULL AND type_kind = ? "
                            "ORDER BY id LIMIT 1", name, TYPE_KINDS[kind])
        return found[0][0] if found else None

    @writing
    def put_type(self, kind: Kind, name: str, properties: Mapping[str, PropertyType]) -> int:
        type_id = self._type_id(kind, name)
        if type_id is None:
            [type_id] = self.db.insert("Type", ("name", "type_kind"), [(name, TYPE_KINDS[kind])], ids=True)
            stored: Dict[str, int] = {}
        else:
            stored = dict(self.db.run("SELECT name, data_type FROM TypeProperty WHERE type_id = ?", type_id))
        for key, ptype in properties.items():
            number = PROPERTY_TYPES.index(PropertyType(ptype))
            if key in stored and stored[key] != number:
                raise ConflictError(f"type '{name}' in {self.label} already has property '{key}' as "
                                    f"{PROPERTY_TYPES[stored[key] or 0].value}, not {PropertyType(ptype).value}")
        self._declared.pop(type_id, None)
        self.db.insert("TypeProperty", ("type_id", "name", "data_type"),
                       [(type_id, k, PROPERTY_TYPES.index(PropertyType(p)))
                        for k, p in properties.items() if k not in stored])
        return type_id

    # -- writes -------------------------------------------------------------------------

    def _put_properties(self, node: Node, rows: List[Tuple[int, str, bool, PropertyValue]]) -> None:
        self.db.insert(node.properties, (node.owner,) + PROPERTY_COLUMNS,
                       [(owner, key, custom) + self._encoded(key, value) for owner, key, custom, value in rows])

    def _encoded(self, key: str, value: PropertyValue) -> Tuple[Any, ...]:
        kind = type(value)  # the common kinds at once (`encode` gives the same), the rest by `encode`
        if kind is str:
            return None, None, value, None, None
        if kind is int:
            return value, None, None, None, None
        if kind is bool:
            return None, None, None, None, value
        int_value, double_value, string_value, proto_value, bool_value = encode(key, value)
        if proto_value is not None:
            proto_value = self.db.proto_param(proto_value)
        return int_value, double_value, string_value, proto_value, bool_value

    def _insert_artifacts(self, artifacts: Sequence[NewArtifact]) -> List[int]:
        if not artifacts:
            return []
        for a in artifacts:
            self._check(a.type_id, a.type, a.properties)
        now = _now()
        ids = self.db.insert(
            "Artifact", ("type_id", "uri", "state", "name", "external_id", "create_time_since_epoch",
                         "last_update_time_since_epoch"),
            [(a.type_id, a.uri, _artifact_state(a.state), a.name or None, None, now, now)
             for a in artifacts], ids=True)
        self._put_properties(NODES[Kind.ARTIFACT], [
            (i, key, custom, value) for i, a in zip(ids, artifacts)
            for custom, values in ((False, a.properties), (True, a.custom)) for key, value in values.items()])
        return ids

    def _insert_executions(self, executions: Sequence[ExecutionWrite]) -> List[int]:
        for e in executions:
            self._check(e.type_id, e.type, e.properties)
        now = _now()
        ids = self.db.insert(
            "Execution", ("type_id", "last_known_state", "name", "external_id", "create_time_since_epoch",
                          "last_update_time_since_epoch"),
            [(e.type_id, _execution_state(e.state), e.name or None, None, now, now) for e in executions], ids=True)
        self._put_properties(NODES[Kind.EXECUTION], [
            (i, key, custom, value) for i, e in zip(ids, executions)
            for custom, values in ((False, e.properties), (True, e.custom)) for key, value in values.items()])
        return ids

    def _update_execution(self, change: ExecutionWrite) -> int:
        """Sets what `change` gives on a stored execution, keeping the rest."""
        found = self.db.run("SELECT last_known_state FROM Execution WHERE id = ?", int(change.id))
        if not found:
            raise NotFoundError(f"no execution with id {change.id} in {self.label}")
        self._check(change.type_id, change.type, change.properties)
        node = NODES[Kind.EXECUTION]
        given = [(change.id, k, False, v) for k, v in change.properties.items()]
        given += [(change.id, k, True, v) for k, v in change.custom.items()]
        for _, key, custom, _ in given:
            self.db.send(f"DELETE FROM {node.properties} WHERE execution_id = ? AND name = ? "
                        "AND is_custom_property = ?", change.id, key, custom)
        self._put_properties(node, given)
        state = found[0][0] if change.state is None else _EXECUTION_STATES.index(ExecutionState(change.state))
        self.db.send("UPDATE Execution SET last_known_state = ?, last_update_time_since_epoch = ? WHERE id = ?",
                    state, _now(), change.id)
        return change.id

    def _put_executions(self, executions: Sequence[ExecutionWrite]) -> List[int]:
        new = [e for e in executions if not e.id]
        made = iter(self._insert_executions(new)) if new else iter(())
        return [self._update_execution(e) if e.id else next(made) for e in executions]

    def _insert_events(self, events: Sequence[Tuple[int, int, NewEvent]]) -> None:
        """(artifact id, execution id, event) each; MLMD's own time when it stores one."""
        if not events:
            return
        numbers = []
        for _, _, e in events:
            number = _EVENT_NUMBERS.get(e.type) if type(e.type) is str else None
            if number is None:
                if e.type not in EVENT_TYPES[1:]:  # MLMD refuses an event without a type
                    raise StoreError(f"store '{self.label}' refused: an event needs a type, not '{e.type}'")
                number = EVENT_TYPES.index(e.type)
            numbers.append(number)
        now = _now()
        ids = self.db.insert("Event", ("artifact_id", "execution_id", "type", "milliseconds_since_epoch"),
                             [(a, x, number, now) for (a, x, _), number in zip(events, numbers)], ids=True)
        self.db.insert("EventPath", ("event_id", "is_index_step", "step_index", "step_key"),
                       [(i, True, s, None) if isinstance(s, int) else (i, False, None, s)
                        for i, (_, _, e) in zip(ids, events) for s in e.path])

    def _context_id(self, context: ContextWrite) -> int:
        """The stored context of this type and name, made if missing (MLMD's
        reuse_context_if_already_exist)."""
        if context.id:
            if not self.db.run("SELECT 1 FROM Context WHERE id = ?", int(context.id)):
                raise NotFoundError(f"no context with id {context.id} in {self.label}")
            return context.id
        found = self.db.run("SELECT id FROM Context WHERE type_id = ? AND name = ?", context.type_id, context.name)
        if found:
            return found[0][0]
        [context_id] = self._insert_contexts([context])
        return context_id

    def _insert_contexts(self, contexts: Sequence[ContextWrite]) -> List[int]:
        """New contexts (a name its type holds already breaks MLMD's unique key: ConflictError)."""
        if not contexts:
            return []
        for context in contexts:
            self._check(context.type_id, context.type, context.properties)
        now = _now()
        ids = self.db.insert(
            "Context", ("type_id", "name", "external_id", "create_time_since_epoch", "last_update_time_since_epoch"),
            [(c.type_id, c.name, None, now, now) for c in contexts], ids=True)
        self._put_properties(NODES[Kind.CONTEXT], [
            (i, key, custom, value) for i, c in zip(ids, contexts)
            for custom, values in ((False, c.properties), (True, c.custom)) for key, value in values.items()])
        return ids

    def _join(self, context_id: int, execution_ids: Sequence[int], artifact_ids: Sequence[int]) -> None:
        self.db.insert("Association", ("context_id", "execution_id"),
                       [(context_id, i) for i in dict.fromkeys(execution_ids)], ignore=True)
        self.db.insert("Attribution", ("context_id", "artifact_id"),
                       [(context_id, i) for i in dict.fromkeys(artifact_ids)], ignore=True)

    @writing
    def put_artifacts(self, artifacts: Sequence[NewArtifact]) -> List[int]:
        return self._insert_artifacts(artifacts)

    @writing
    def put_execution(self, execution: ExecutionWrite,
                      artifacts: Sequence[Tuple[NewArtifact, NewEvent]] = (),
                      inputs: Sequence[Tuple[int, NewEvent]] = (),
                      context: Optional[ContextWrite] = None) -> Tuple[int, List[int], Optional[int]]:
        # MLMD's order: the artifacts, the execution, the events, then the context.
        artifact_ids = self._insert_artifacts([a for a, _ in artifacts])
        [execution_id] = self._put_executions([execution])
        self._insert_events([(a, execution_id, e) for a, (_, e) in zip(artifact_ids, artifacts)]
                            + [(int(a), execution_id, e) for a, e in inputs])
        context_id = None
        if context is not None:
            context_id = self._context_id(context)
            self._join(context_id, [execution_id], artifact_ids + [int(a) for a, _ in inputs])
        return execution_id, artifact_ids, context_id

    @writing
    def put_lineage(self, executions: Sequence[ExecutionWrite], artifacts: Sequence[NewArtifact],
                    events: Sequence[NewEvent], context: ContextWrite) -> Tuple[List[int], List[int], int]:
        # MLMD's put_lineage_subgraph: the context, the artifacts, the executions, their
        # attributions and associations, then the events.
        context_id = self._context_id(context)
        artifact_ids = self._insert_artifacts(artifacts)
        execution_ids = self._put_executions(executions)
        self._join(context_id, execution_ids, artifact_ids)
        self._insert_events([(_pick(e.artifact_id, e.artifact_index, artifact_ids),
                              _pick(e.execution_id, e.execution_index, execution_ids), e) for e in events])
        return execution_ids, artifact_ids, context_id

    @writing
    def update_executions(self, changes: Sequence[ExecutionWrite]) -> None:
        for change in changes:
            self._update_execution(change)

    @writing
    def append_properties(self, execution: ExecutionWrite, contexts: Sequence[ContextWrite] = (),
                          added: Sequence[Tuple[int, int, Mapping[str, PropertyValue]]] = ()) -> List[int]:
        ids = self._insert_contexts(contexts)
        node = NODES[Kind.CONTEXT]
        for context_id, _, values in added:
            for key in values:  # by the (context_id, name, is_custom_property) key: one row each
                self.db.run(f"DELETE FROM {node.properties} WHERE context_id = ? AND name = ? "
                            "AND is_custom_property = ?", int(context_id), key, True)
        self._put_properties(node, [(int(i), key, True, value) for i, _, values in added
                                    for key, value in values.items()])
        if added:
            in_ids, changed = self.db.in_list("id", sorted({int(i) for i, _, _ in added}))
            self.db.send(f"UPDATE Context SET last_update_time_since_epoch = ? WHERE {in_ids}", _now(), *changed)
        self._update_execution(execution)
        return ids

    @writing
    def put_context(self, context: ContextWrite) -> int:
        return self._context_id(context)

    @writing
    def put_memberships(self, context_id: int, execution_ids: Sequence[int], artifact_ids: Sequence[int]) -> None:
        self._join(self._context_id(ContextWrite(0, "", "", id=int(context_id))),
                   [int(i) for i in execution_ids], [int(i) for i in artifact_ids])

    @writing
    def delete_nodes(self, execution_ids: Sequence[int], artifact_ids: Sequence[int],
                     step: Optional[Callable[[str], None]] = None) -> Dict[str, int]:
        # A chunk of ids to a statement (the dialect's ids_per_query), never one statement
        # binding every id: at 200,000 runs that held the ids several times over, every event's
        # id, and each DELETE's returned rows at once. The ids are arrays (8 bytes an id).
        executions, artifacts = _unique(execution_ids), _unique(artifact_ids)
        step_ids = self.ids_per_query

        def chunks(ids: "array[int]") -> Iterator["array[int]"]:
            return (ids[first:first + step_ids] for first in range(0, len(ids), step_ids))

        # The metric histories of the runs that go (history.py): contexts that name the run.
        histories = array("q")
        for chunk in chunks(executions):
            in_runs, values = self.db.in_list("p.int_value", chunk)
            histories.extend(r[0] for r in self.db.run(
                "SELECT c.id FROM Context c JOIN Type t ON t.id = c.type_id JOIN ContextProperty p "
                f"ON p.context_id = c.id WHERE t.name = ? AND p.name = 'execution_id' AND {in_runs}",
                tables.HISTORY_TYPE, *values))
        histories = _unique(histories)
        removed: Dict[str, int] = {}

        def gone(table: str, column: str, ids: "array[int]", within: str = "") -> int:
            count = 0
            for chunk in chunks(ids):
                where, values = self.db.in_list(column, chunk)
                count += self.db.delete(table, within.format(where) if within else where, *values)
            return count

        events = "event_id IN (SELECT id FROM Event WHERE {})"  # an event of a run or an artifact that goes
        # Children first, so that no row ever points at a removed one, even mid-transaction.
        for table, parts in (
                ("EventPath", (("execution_id", executions, events), ("artifact_id", artifacts, events))),
                ("Event", (("execution_id", executions, ""), ("artifact_id", artifacts, ""))),
                ("Association", (("execution_id", executions, ""),)),
                ("Attribution", (("artifact_id", artifacts, ""),)),
                ("ExecutionProperty", (("execution_id", executions, ""),)),
                ("ArtifactProperty", (("artifact_id", artifacts, ""),)),
                ("Execution", (("id", executions, ""),)), ("Artifact", (("id", artifacts, ""),)),
                ("ContextProperty", (("context_id", histories, ""),)), ("Context", (("id", histories, ""),))):
            removed[table] = sum(gone(table, column, ids, within) for column, ids, within in parts)
            if step is not None:
                step(table)
        return removed

    @writing
    def set_property(self, kind: Kind, node_id: int, key: str, custom: bool, value: PropertyValue) -> None:
        node = NODES[kind]
        self.db.run(f"DELETE FROM {node.properties} WHERE {node.owner} = ? AND name = ? AND is_custom_property = ?",
                    int(node_id), key, custom)
        self._put_properties(node, [(int(node_id), key, custom, value)])


def _unique(ids: Iterable[int]) -> "array[int]":
    """`ids` ascending, each once, as an array."""
    found = array("q", sorted(int(i) for i in ids))
    return array("q", (i for n, i in enumerate(found) if n == 0 or found[n - 1] != i))


def _pick(given: int, index: Optional[int], made: Sequence[int]) -> int:
    """An event's end: a stored node's id, else the index-th node of the same write."""
    if given:
        return int(given)
    if index is None or not 0 <= index < len(made):
        raise MlmdExerciseError(f"an event names neither a stored node nor one of the {len(made)} new ones")
    return made[index]
