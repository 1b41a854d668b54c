"""The native backend's reads: MLMD's own tables (schema version 10) read with the dialect's
SQL (`sql.Db`), into plain records, without ml-metadata.

`NativeReads` is the backend of a store opened read-only as far as it goes; `backend.NativeBackend`
adds the writes. Database errors become the package's in `errors.translate` alone.
"""

from __future__ import annotations

from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

from mlmd_exercise.errors import MlmdExerciseError
from mlmd_exercise.content import FINGERPRINT
from mlmd_exercise.masking import mask, mask_values
from mlmd_exercise.records import (EVENT_TYPES, ArtifactRecord, ArtifactState, ContextRecord, EventRecord,
                                   ExecutionRecord, ExecutionState, Kind, PropertyType, PropertyValue, TypeRecord)
from mlmd_exercise.store import tables
from mlmd_exercise.store.backend import Backend, LegHop, NodeLine, Query
from mlmd_exercise.store.native import walk
from mlmd_exercise.store.native.errors import reading, translate
from mlmd_exercise.store.native.rows import (NODES, STEP_TEXT, STRUCT_PREFIX, Node, decode, record, select_nodes,
                                            stored_steps)
from mlmd_exercise.store.native.schema import BASE_TYPES
from mlmd_exercise.store.native.sql import Db

__all__ = ["NativeReads", "TYPE_KINDS", "PROPERTY_TYPES", "PROPERTY_COLUMNS"]

_ARTIFACT_STATES = [s.value for s in ArtifactState]  # MLMD's number -> the state's name
_EXECUTION_STATES = [s.value for s in ExecutionState]
TYPE_KINDS = {Kind.EXECUTION: 0, Kind.ARTIFACT: 1, Kind.CONTEXT: 2}  # Type.type_kind
PROPERTY_TYPES = list(PropertyType)  # in the proto's order: index = MLMD's number
PROPERTY_COLUMNS = ("name", "is_custom_property", "int_value", "double_value", "string_value",
                    "proto_value", "bool_value")


class NativeReads(Backend):
    """An MLMD store read through its tables (see the module's docstring)."""

    name = "native"

    def __init__(self, db: Db, label: str, writable: bool) -> None:
        self.db = db
        self.label = label
        self.writable = writable
        self._declared: Dict[int, Dict[str, int]] = {}  # type id -> its properties' MLMD numbers
        self.ids_per_query = db.ids_per_query  # the dialect's tuning

    def check_text(self, where: str, text: Optional[str]) -> None:
        super().check_text(where, text)
        if isinstance(text, str) and "\x00" in text and not self.db.holds_nul:
            raise MlmdExerciseError(f"refusing {where} {text[:60]!r}: it holds a NUL character, which this "
                                    f"database does not keep in text ({self.db.name}); nothing was sent to "
                                    f"store '{self.label}': remove it")

    def storable_text(self, text: str) -> str:
        return text if self.db.holds_nul else text.replace("\x00", "\ufffd")

    # -- types ------------------------------------------------------------------------

    @reading
    def types(self, kind: Kind) -> List[TypeRecord]:
        rows = self.db.run("SELECT id, name, version, description, external_id FROM Type "
                           "WHERE type_kind = ? ORDER BY id", TYPE_KINDS[kind])
        rows = [r for r in rows if r[1] not in BASE_TYPES]  # MLMD hides its system types
        if not rows:
            return []
        ids = [r[0] for r in rows]
        properties: Dict[int, Dict[str, PropertyType]] = {i: {} for i in ids}
        sql, values = self.db.in_list("type_id", ids)
        for type_id, name, data_type in self.db.run(f"SELECT type_id, name, data_type FROM TypeProperty "
                                                     f"WHERE {sql}", *values):
            properties[type_id][name] = PROPERTY_TYPES[data_type or 0]
        bases: Dict[int, str] = {}
        for type_id, parent in self.db.run(f"SELECT p.type_id, t.name FROM ParentType p JOIN Type t "
                                           f"ON t.id = p.parent_type_id WHERE {sql.replace('type_id', 'p.type_id')}",
                                           *values):
            if parent in BASE_TYPES:
                bases[type_id] = BASE_TYPES[parent]
        return [TypeRecord(id=i, kind=kind, name=n, properties=properties[i], version=v, description=d,
                           external_id=x, base_type=bases.get(i)) for i, n, v, d, x in rows]

    # -- nodes --------------------------------------------------------------------------

    def _properties(self, node: Node, ids: Sequence[int]) -> Dict[int, Tuple[Dict[str, PropertyValue],
                                                                         Dict[str, PropertyValue]]]:
        """Each node's (declared and custom, declared winning; custom alone), secrets masked (a
        store an older version or another program wrote may hold them: see `masking`)."""
        found: Dict[int, Tuple[Dict[str, PropertyValue], Dict[str, PropertyValue]]] = {i: ({}, {}) for i in ids}
        if not ids:
            return found
        sql, values = self.db.in_list(node.owner, list(ids))
        rows = self.db.run(f"SELECT {node.owner}, {', '.join(PROPERTY_COLUMNS)} FROM {node.properties} "
                           f"WHERE {sql}", *values)
        declared: Dict[int, Dict[str, PropertyValue]] = {}
        base64 = self.db.protos_in_base64
        for owner, key, custom, int_value, double_value, string_value, proto_value, bool_value in rows:
            merged, customs = found[owner]
            value = decode(int_value, double_value, string_value, proto_value, bool_value, base64)
            if custom:
                customs[key] = value
            else:
                declared.setdefault(owner, {})[key] = value
        for owner, (merged, customs) in found.items():
            masked = mask_values(customs)
            customs.clear()
            customs.update(masked)
            merged.update(customs)
            merged.update(mask_values(declared.get(owner, {})))
        return found

    def _nodes(self, kind: Kind, query: Query) -> list:
        node = NODES[kind]
        select = select_nodes(self.db, node, query)
        if select is None:
            return []
        rows = self.db.run(select[0], *select[1])
        values = self._properties(node, [r[0] for r in rows])
        return [record(kind, row, *values[row[0]]) for row in rows]

    @reading
    def artifacts(self, query: Query = Query()) -> List[ArtifactRecord]:
        return self._nodes(Kind.ARTIFACT, query)

    @reading
    def executions(self, query: Query = Query()) -> List[ExecutionRecord]:
        return self._nodes(Kind.EXECUTION, query)

    @reading
    def node_lines(self, kind: Kind, ids: Sequence[int]) -> List[NodeLine]:
        # The two properties shown (a deep walk's 400,000 nodes read whole took most of its time),
        # each as a record has it: the declared one where there is one, else the custom one.
        if not ids:
            return []
        sql, values = self.db.in_list("n.id", list(ids))
        if kind is Kind.EXECUTION:
            return [NodeLine(i, name or "", _EXECUTION_STATES[state or 0])
                    for i, name, state in self.db.run(
                        f"SELECT n.id, t.name, n.last_known_state FROM Execution n LEFT JOIN Type t ON t.id = n.type_id "
                        f"WHERE {sql} ORDER BY n.id", *values)]
        lines: List[NodeLine] = []
        shown: Dict[str, Tuple[int, Any]] = {}  # a property's value, and whether it was custom
        rows = self.db.run(
            "SELECT n.id, t.name, n.state, n.uri, p.name, p.is_custom_property, p.int_value, p.string_value "
            "FROM Artifact n LEFT JOIN Type t ON t.id = n.type_id LEFT JOIN ArtifactProperty p ON p.artifact_id = n.id "
            f"AND p.name IN ('version', '{FINGERPRINT}') WHERE {sql} ORDER BY n.id", *values)
        for n, (i, name, state, uri, key, custom, int_value, string_value) in enumerate(rows):
            if key is not None and (key not in shown or shown[key][0] > int(custom)):  # declared wins
                shown[key] = (int(custom), (None if int_value is None else int(int_value)) if key == "version"
                              else None if string_value is None or string_value.startswith(STRUCT_PREFIX)
                              else string_value)
            if n + 1 == len(rows) or rows[n + 1][0] != i:  # the artifact's last row
                lines.append(NodeLine(i, name or "", _ARTIFACT_STATES[state or 0], mask(uri or "", whole=True),
                                      shown.get("version", (0, None))[1], shown.get(FINGERPRINT, (0, None))[1]))
                shown = {}
        return lines

    @reading
    def contexts(self, query: Query = Query()) -> List[ContextRecord]:
        return self._nodes(Kind.CONTEXT, query)

    def _by_name(self, kind: Kind, type_name: str, name: str) -> Optional[int]:
        node = NODES[kind]
        found = self.db.run(f"SELECT n.id FROM {node.table} n JOIN Type t ON t.id = n.type_id WHERE t.name = ? "
                            "AND t.version IS NULL AND t.type_kind = ? AND n.name = ?",
                            type_name, TYPE_KINDS[kind], name)
        return found[0][0] if found else None

    @reading
    def execution_by_name(self, type_name: str, name: str) -> Optional[ExecutionRecord]:
        found = self._by_name(Kind.EXECUTION, type_name, name)
        return self._nodes(Kind.EXECUTION, Query(ids=[found]))[0] if found is not None else None

    @reading
    def context_by_name(self, type_name: str, name: str) -> Optional[ContextRecord]:
        found = self._by_name(Kind.CONTEXT, type_name, name)
        return self._nodes(Kind.CONTEXT, Query(ids=[found]))[0] if found is not None else None

    @reading
    def contexts_of(self, kind: Kind, node_id: int) -> List[ContextRecord]:
        node = NODES[kind]
        ids = [r[0] for r in self.db.run(f"SELECT context_id FROM {node.member} WHERE {node.owner} = ?",
                                         int(node_id))]
        return self._nodes(Kind.CONTEXT, Query(ids=ids, order="id", ascending=True)) if ids else []

    @reading
    def contexts_of_executions(self, ids: Sequence[int]) -> Dict[int, List[ContextRecord]]:
        found: Dict[int, List[ContextRecord]] = {int(i): [] for i in ids}
        if not ids:
            return found
        sql, values = self.db.in_list("execution_id", [int(i) for i in ids])
        pairs = self.db.run(f"SELECT execution_id, context_id FROM Association WHERE {sql}", *values)
        contexts = {c.id: c for c in self._nodes(Kind.CONTEXT, Query(ids=sorted({c for _, c in pairs})))} \
            if pairs else {}
        for execution_id, context_id in sorted(pairs, key=lambda p: p[1]):
            found[execution_id].append(contexts[context_id])
        return found

    # -- events -------------------------------------------------------------------------

    def _events(self, column: str, ids: Sequence[int]) -> List[EventRecord]:
        if not ids:
            return []
        sql, values = self.db.in_list(f"e.{column}", [int(i) for i in ids])
        if self.db.row_order:
            return self._events_with_paths(sql, values)
        # MySQL (see rows.STEP_TEXT): the events come with their paths in one query (a path of
        # one step, as this package writes, has no order to keep: half the rows PyMySQL decodes
        # of reading the paths apart), the steps of a longer path read again apart. Reading a
        # thousand executions' events was mostly PyMySQL decoding fields: a row comes as one,
        # "id,artifact,execution,type,ms" and, for an event with a path, its step. The four ids
        # are NOT NULL in MLMD's schema; a missing time is 0, as it reads.
        rows = self.db.run("SELECT CONCAT_WS(',', e.id, e.artifact_id, e.execution_id, e.type, "
                           f"COALESCE(e.milliseconds_since_epoch, 0), {STEP_TEXT}) "
                           f"FROM Event e LEFT JOIN EventPath p ON p.event_id = e.id WHERE {sql} ORDER BY e.id",
                           *values)
        events: Dict[int, Tuple[int, int, int, int]] = {}
        steps: Dict[int, List[Any]] = {}
        for (row,) in rows:
            i, a, x, t, ms, *step = row.split(",", 5)
            event_id = int(i)
            events[event_id] = (int(a), int(x), int(t), int(ms))
            if step:
                key = step[0]
                steps.setdefault(event_id, []).append(int(key[1:]) if key[0] == "#" else key[1:])
        steps.update(stored_steps(self.db, [i for i, path in steps.items() if len(path) > 1]))
        return [EventRecord(a, x, EVENT_TYPES[t] if 0 <= t < len(EVENT_TYPES) else "UNKNOWN",
                            tuple(steps.get(i, ())), ms or 0) for i, (a, x, t, ms) in events.items()]

    def _events_with_paths(self, sql: str, values: List[Any]) -> List[EventRecord]:
        # The events and their paths in one query (a walk asks once per hop: half the round
        # trips of reading the paths apart); a path's steps in the order they were stored
        # (MLMD keeps no step number), an event without a path once, with NULL steps.
        physical = f"p.{self.db.row_order}"
        rows = self.db.run("SELECT e.id, e.artifact_id, e.execution_id, e.type, e.milliseconds_since_epoch, "
                           "p.is_index_step, p.step_index, p.step_key "
                           f"FROM Event e LEFT JOIN EventPath p ON p.event_id = e.id WHERE {sql} "
                           f"ORDER BY e.id, {physical}", *values)
        events: List[EventRecord] = []
        steps: List[Any] = []
        for n, (i, a, x, t, ms, is_index, index, key) in enumerate(rows):
            if is_index is not None:
                steps.append(int(index) if is_index else key)
            if n + 1 == len(rows) or rows[n + 1][0] != i:  # the event's last row
                events.append(EventRecord(a, x, EVENT_TYPES[t] if 0 <= t < len(EVENT_TYPES) else "UNKNOWN",
                                          tuple(steps), ms or 0))
                steps = []
        return events

    @reading
    def events_by_executions(self, ids: Sequence[int]) -> List[EventRecord]:
        return self._events("execution_id", ids)

    @reading
    def events_by_artifacts(self, ids: Sequence[int]) -> List[EventRecord]:
        return self._events("artifact_id", ids)

    def walk_leg(self, artifact_ids: Iterable[int], execution_ids: Iterable[int], direction: str,
                 hops: Optional[int] = None) -> Iterator[LegHop]:
        # Many hops per recursive query (store/native/walk.py); hop by hop, as the base class
        # walks, where the connection cannot make temporary tables (a user without the right).
        try:
            tables = walk.temporary_tables(self.db)
        except Exception:
            yield from super().walk_leg(artifact_ids, execution_ids, direction, hops)
            return
        try:
            yield from walk.walk_leg(self.db, tables, artifact_ids, execution_ids, direction, hops)
        except Exception as e:
            translated = translate(e, self.label, False, type(self.db))
            if translated is e:
                raise
            raise translated from e

    # -- counts and audits ------------------------------------------------------------------

    @reading
    def count_by_state(self, context_id: Optional[int] = None) -> Dict[ExecutionState, int]:
        return tables.count_by_state(self.db.run, context_id)

    @reading
    def context_sizes(self, ids: Sequence[int]) -> Dict[int, Tuple[int, int]]:
        return tables.context_sizes(self.db.run, ids)

    @reading
    def running_processes(self, host: str) -> List[Tuple[int, object, object, object]]:
        return tables.running_processes(self.db.run, host, typed_coalesce=self.db.typed_coalesce)

    @reading
    def artifacts_without_events(self) -> List[Tuple[int, str, str]]:
        return tables.artifacts_without_events(self.db.run)

    @reading
    def shared_outputs(self) -> List[Tuple[int, str, str, Tuple[int, ...]]]:
        return tables.shared_outputs(self.db.run)

    @reading
    def unreadable_properties(self) -> List[Tuple[str, int, str, bool, str]]:
        return tables.unreadable_properties(self.db.run)

    @reading
    def histories_without_runs(self) -> List[Tuple[int, int]]:
        return tables.histories_without_runs(self.db.run)

    @reading
    def runs_missing_inputs(self) -> List[Tuple[int, str, int, int]]:
        return tables.runs_missing_inputs(self.db.run)

    def close(self) -> None:
        self.db.close()
