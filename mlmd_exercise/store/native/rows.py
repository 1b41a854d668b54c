"""How MLMD's rows read as records, and a `Query` as parameterized SQL, on every dialect.

MLMD's encoding of property values (`encode`, `decode`), each kind of node's tables (`NODES`),
the SELECT a Query makes (`select_nodes`) and the record a row makes (`record`).
"""

from __future__ import annotations

import base64
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

from mlmd_exercise.errors import MlmdExerciseError
from mlmd_exercise.masking import mask
from mlmd_exercise.records import (ArtifactRecord, ArtifactState, ContextRecord, ExecutionRecord, ExecutionState, Kind,
                                   PropertyValue)
from mlmd_exercise.store.backend import Query
from mlmd_exercise.store.native.sql import Db
from mlmd_exercise.values import exact_double

__all__ = ["STRUCT_PREFIX", "NODES", "Node", "encode", "decode", "select_nodes", "record", "STEP_TEXT",
           "stored_steps"]

# MLMD keeps a struct value as this prefix and the serialized google.protobuf.Struct in
# base64, in string_value (every database); a proto value (google.protobuf.Any) as its
# serialized bytes in proto_value: raw on PostgreSQL, base64 text on SQLite and MySQL.
STRUCT_PREFIX = "mlmd-struct::"
_ARTIFACT_STATES = list(ArtifactState)
_EXECUTION_STATES = list(ExecutionState)


# Where a database has no physical row order (MySQL: InnoDB names none), a join gives a path's
# steps in any order, and PyMySQL decodes each field in Python: there an event's row is read as
# one text field with its step last, this field of EventPath `p` ("#<index>" or ":<key>"; a key
# may hold commas, so it ends the row), and the steps of a longer path are read again apart
# (`stored_steps`).
STEP_TEXT = "IF(p.is_index_step, CONCAT('#', p.step_index), CONCAT(':', p.step_key))"


def stored_steps(db: Db, event_ids: Sequence[int]) -> Dict[int, List[Union[int, str]]]:
    """The path steps of these events in the order they were stored (MLMD keeps no step
    number): as a scan by the event_id index gives them, in the hidden row id's order."""
    steps: Dict[int, List[Union[int, str]]] = {i: [] for i in event_ids}
    for first in range(0, len(event_ids), db.ids_per_query):
        sql, ids = db.in_list("event_id", list(event_ids[first:first + db.ids_per_query]))
        for event_id, is_index, index, key in db.run(
                f"SELECT event_id, is_index_step, step_index, step_key FROM EventPath WHERE {sql}", *ids):
            steps[event_id].append(int(index) if is_index else key)
    return steps


def encode(key: str, value: PropertyValue) -> Tuple[Any, Any, Any, Any, Any]:
    """(int_value, double_value, string_value, proto_value, bool_value) of a value, as MLMD
    stores it; a proto value as its serialized bytes (`Db.proto_param` makes them the
    database's form). Never a row with every value NULL: ml-metadata refuses to read one."""
    if isinstance(value, bool):
        return None, None, None, None, value
    if isinstance(value, int):
        return value, None, None, None, None
    if isinstance(value, float):
        if exact_double(value):
            return None, value, None, None, None
        # NaN, an infinity, -0.0: SQLite keeps NaN as NULL and -0.0 as 0 (values.py).
        from mlmd_exercise.store.any_json import double_any

        return None, None, None, double_any(value), None
    if isinstance(value, str):
        return None, None, value, None, None
    if isinstance(value, dict):
        from google.protobuf import json_format, struct_pb2

        struct = struct_pb2.Struct()
        try:
            json_format.ParseDict(value, struct)
        except json_format.ParseError as e:
            raise MlmdExerciseError(f"property '{key}' has a value MLMD cannot store: {e}") from None
        text = STRUCT_PREFIX + base64.b64encode(struct.SerializeToString()).decode()
        return None, None, text, None, None
    raise MlmdExerciseError(f"property '{key}' has a value MLMD cannot store: {value!r}")


def _proto_value(data: Any, in_base64: bool) -> Union[float, Dict[str, Any]]:
    """A stored google.protobuf.Any as the ml-metadata backend reads it: a DoubleValue as its
    float, any other as JSON (`any_json`)."""
    from google.protobuf import any_pb2

    from mlmd_exercise.store.any_json import any_json, double_of

    raw = base64.b64decode(data) if in_base64 or isinstance(data, str) else bytes(data)
    message = any_pb2.Any.FromString(raw)
    number = double_of(message)
    return any_json(message) if number is None else number


def decode(int_value: Any, double_value: Any, string_value: Any, proto_value: Any, bool_value: Any,
           protos_in_base64: bool = False) -> PropertyValue:
    """A stored property row's value, as a record holds it (`protos_in_base64`: the
    database's `Db.protos_in_base64`)."""
    if int_value is not None:
        return int(int_value)
    if double_value is not None:
        return float(double_value)
    if string_value is not None:
        if string_value.startswith(STRUCT_PREFIX):
            from google.protobuf import json_format, struct_pb2

            struct = struct_pb2.Struct.FromString(base64.b64decode(string_value[len(STRUCT_PREFIX):]))
            return json_format.MessageToDict(struct)
        return string_value
    if proto_value is not None:
        return _proto_value(proto_value, protos_in_base64)
    if bool_value is not None:
        return bool(bool_value)
    return ""


# -- nodes --------------------------------------------------------------------------------


class Node:
    """One kind of node's tables and the columns a record is read from."""

    def __init__(self, kind: Kind, table: str, owner: str, columns: str, member: Optional[str]) -> None:
        self.kind, self.table, self.owner, self.columns, self.member = kind, table, owner, columns, member
        self.properties = f"{table}Property"


NODES = {
    Kind.ARTIFACT: Node(Kind.ARTIFACT, "Artifact", "artifact_id",
                        "n.id, n.type_id, t.name, n.uri, n.state, n.name, n.external_id, "
                        "n.create_time_since_epoch, n.last_update_time_since_epoch", "Attribution"),
    Kind.EXECUTION: Node(Kind.EXECUTION, "Execution", "execution_id",
                         "n.id, n.type_id, t.name, n.last_known_state, n.name, n.external_id, "
                         "n.create_time_since_epoch, n.last_update_time_since_epoch", "Association"),
    Kind.CONTEXT: Node(Kind.CONTEXT, "Context", "context_id",
                       "n.id, n.type_id, t.name, n.name, n.external_id, "
                       "n.create_time_since_epoch, n.last_update_time_since_epoch", None),
}
_STATES = {Kind.ARTIFACT: [s.value for s in ArtifactState], Kind.EXECUTION: [s.value for s in ExecutionState]}


def _states(node: Node, names: Sequence[str]) -> Tuple[str, List[Any]]:
    column = "n.state" if node.kind is Kind.ARTIFACT else "n.last_known_state"
    known = _STATES[node.kind]
    numbers = [known.index(s) for s in dict.fromkeys(names) if s in known]
    terms = [f"{column} = ?" for _ in numbers]
    if "UNKNOWN" in names:  # no state at all reads as UNKNOWN
        terms.append(f"{column} IS NULL")
    return "(" + (" OR ".join(terms) or "1 = 0") + ")", numbers


def select_nodes(db: Db, node: Node, query: Query) -> Optional[Tuple[str, List[Any]]]:
    """The SELECT of the nodes `query` picks, with its parameters; None where it picks none."""
    where: List[str] = []
    params: List[Any] = []

    def add(sql: str, *values: Any) -> None:
        where.append(sql)
        params.extend(values)

    if query.limit is not None and query.limit <= 0:
        return None
    if query.ids is not None:
        if not query.ids:
            return None
        sql, values = db.in_list("n.id", [int(i) for i in query.ids])
        add(sql, *values)
    if query.id_above is not None:
        add("n.id > ?", int(query.id_above))
    if query.type_id is not None:
        narrower = ((query.context_id is not None and node.member is not None)
                    or (query.uris is not None and node.kind is Kind.ARTIFACT)
                    or any(test.op == ">=" for test in query.custom))
        add(db.by_type(narrower), int(query.type_id))
    if query.not_type_id is not None:
        add("n.type_id <> ?", int(query.not_type_id))
    if query.context_id is not None and node.member is not None:
        add(f"n.id IN (SELECT {node.owner} FROM {node.member} WHERE context_id = ?)", int(query.context_id))
    if query.uris is not None and node.kind is Kind.ARTIFACT:
        if not query.uris:
            return None
        sql, values = db.in_list("n.uri", list(query.uris))
        add(sql, *values)
    if query.names is not None:
        if not query.names:
            return None
        sql, values = db.in_list("n.name", list(query.names))
        add(sql, *values)
    if query.states and node.kind is not Kind.CONTEXT:
        sql, values = _states(node, query.states)
        add(sql, *values)
    if query.created_from is not None:
        add("n.create_time_since_epoch >= ?", int(query.created_from))
    if query.created_before is not None:
        add("n.create_time_since_epoch < ?", int(query.created_before))
    custom = (f"EXISTS (SELECT 1 FROM {node.properties} p WHERE p.{node.owner} = n.id "
              "AND p.name = ? AND p.is_custom_property = ? AND ")
    for test in query.custom:
        if test.op == ">=":
            # The nodes from the property's indexes (by name, then value): a test on every
            # node in turn read all of them where few or none have the property (the
            # explorer's question whether any run was imported with its original time).
            bound = float(test.values[0])
            add(f"n.id IN (SELECT p.{node.owner} FROM {node.properties} p WHERE p.name = ? "
                f"AND p.is_custom_property = ? AND (p.int_value >= CAST(? AS {db.double_type}) "
                "OR p.double_value >= ?))", test.key, True, bound, bound)
        elif test.op == "in":
            sql, values = db.in_list("p.string_value", [str(v) for v in test.values])
            add(custom + sql + ")", test.key, True, *values)
        else:
            raise MlmdExerciseError(f"unknown property test '{test.op}' on '{test.key}'")
    if query.text is not None and query.text.text:
        # LIKE, as ml-metadata's filter query: % and _ are wildcards (docs/explorer.md says so),
        # case-insensitive on SQLite for ASCII, as stored on PostgreSQL. The text is a parameter.
        text = query.text.text
        like = db.like(text)
        terms = ["t.name LIKE ?", "n.name LIKE ?"]
        searched: List[Any] = [like, like]
        if query.text.keys:
            keys_sql, keys = db.in_list("p.name", list(query.text.keys))
            terms.append(f"EXISTS (SELECT 1 FROM {node.properties} p WHERE p.{node.owner} = n.id AND {keys_sql} "
                         "AND p.is_custom_property = ? AND p.string_value LIKE ?)")
            searched += keys + [True, like]
        if text.isdigit() and len(text) < 18:
            terms.append("n.id = ?")
            searched.append(int(text))
        add("(" + " OR ".join(terms) + ")", *searched)
    if query.where is not None:
        from mlmd_exercise.store.where_sql import node_ids

        sql, values = node_ids(query.where, node.kind, db.number_marks)
        add(f"n.id IN ({sql})", *values)
    direction = "ASC" if query.ascending else "DESC"
    order = (f"n.id {direction}" if query.order == "id"
             else f"n.create_time_since_epoch {direction}, n.id {direction}")
    sql = (f"SELECT {node.columns} FROM {node.table} n LEFT JOIN Type t ON t.id = n.type_id"
           + (" WHERE " + " AND ".join(where) if where else "") + f" ORDER BY {order}")
    if query.limit is not None:
        sql += " LIMIT ?"
        params.append(int(query.limit))
    return sql, params


def record(kind: Kind, row: Tuple[Any, ...], merged: Dict[str, PropertyValue],
           custom: Dict[str, PropertyValue]) -> Any:
    """A node's record from its row (`NODES[kind].columns`) and its properties (declared and
    custom, declared winning; custom alone), its name and URI masked as its properties were."""
    if kind is Kind.ARTIFACT:
        i, type_id, type_name, uri, state, name, external_id, created, updated = row
        return ArtifactRecord(id=i, type=type_name or "", uri=mask(uri or "", whole=True),
                              state=_ARTIFACT_STATES[state or 0].value, properties=merged, created_ms=created,
                              type_id=type_id, custom=custom, name=mask(name or ""), external_id=external_id,
                              updated_ms=updated)
    if kind is Kind.EXECUTION:
        i, type_id, type_name, state, name, external_id, created, updated = row
        return ExecutionRecord(id=i, type=type_name or "", state=_EXECUTION_STATES[state or 0].value,
                               properties=merged, created_ms=created, name=mask(name or ""), type_id=type_id,
                               custom=custom, external_id=external_id, updated_ms=updated)
    i, type_id, type_name, name, external_id, created, updated = row
    return ContextRecord(id=i, type=type_name or "", name=mask(name or ""), properties=merged, created_ms=created,
                         type_id=type_id, custom=custom, external_id=external_id, updated_ms=updated)
