"""The native backend's SQL: one connection over SQLite, PostgreSQL or MySQL, MLMD's encoding
of property values, and a `Query` turned into parameterized SQL.

Statements are written once, with `?` placeholders, in the SQL the three databases speak;
`Db` is the one dialect layer: it runs them on Python's sqlite3, on pg8000 (whose `$n`
parameters it rewrites them to) or on PyMySQL (`%s`: `native_mysql.MysqlDb`), and its
attributes name what else differs. Values are always parameters, never text in a statement.
"""

from __future__ import annotations

import base64
import contextlib
import json
import sqlite3
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple, Union

from mlmd_exercise.errors import MlmdExerciseError
from mlmd_exercise.records import ArtifactState, ExecutionState, Kind, PropertyValue
from mlmd_exercise.store.backend import Query
from mlmd_exercise.values import exact_double

__all__ = ["Db", "SqliteDb", "PostgresDb", "NODES", "encode", "decode", "select_nodes"]

Row = Tuple[Any, ...]
# MLMD keeps a struct value as this prefix and the serialized google.protobuf.Struct in
# base64, in string_value (every database); a proto value (google.protobuf.Any) as its
# serialized bytes in proto_value: raw on PostgreSQL, base64 text on SQLite and MySQL.
STRUCT_PREFIX = "mlmd-struct::"
_PG_CHUNK = 1000  # rows per multi-row INSERT on PostgreSQL (65535 parameters at most)


class Db:
    """One connection, in `?` SQL. Not thread-safe.

    The class attributes are what else differs between the databases: `name` ("sqlite",
    "postgresql", "mysql"); `row_order`, the column that gives rows in the order they were
    stored (an event path's steps have no number), or None where a plain scan does;
    `double_type`, the name CAST knows a double by; `protos_in_base64`, whether proto
    values come back as base64 text in bytes (MySQL's BLOB; SQLite's come as str, which
    is always base64) rather than as their raw bytes (PostgreSQL's BYTEA).
    """

    name = "sqlite"
    row_order: Optional[str] = "rowid"
    double_type = "DOUBLE PRECISION"
    protos_in_base64 = False

    def run(self, sql: str, *values: Any) -> List[Row]:
        raise NotImplementedError

    def proto_param(self, raw: bytes) -> Any:
        """A serialized proto value as this database's proto_value column holds it, as
        ml-metadata writes it: base64 text on SQLite and MySQL, the bytes on PostgreSQL."""
        return raw if not (self.name == "sqlite" or self.protos_in_base64) else base64.b64encode(raw).decode()

    def insert(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]],
               ids: bool = False, ignore: bool = False) -> List[int]:
        """Inserts rows; their new ids in order where `ids` (the table has an id column).
        `ignore`: rows that would break a UNIQUE constraint are left out (MLMD's
        insert-if-not-exist for associations and attributions)."""
        raise NotImplementedError

    def in_list(self, column: str, values: Sequence[Any]) -> Tuple[str, List[Any]]:
        """`column` among `values`, as SQL and its parameters: one parameter, whatever the count."""
        raise NotImplementedError

    def tables(self) -> List[str]:
        """The names of the database's tables (of the connection's database or schema)."""
        raise NotImplementedError

    def delete(self, table: str, where: str, *values: Any) -> int:
        """Deletes the rows of `table` that `where` picks; how many there were."""
        return len(self.run(f"DELETE FROM {table} WHERE {where} RETURNING 1", *values))

    def begin(self) -> None:
        raise NotImplementedError

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """One transaction: committed when the block ends, rolled back when it raises (if the
        rollback fails too, the connection gone, the first error is the one that says why)."""
        self.begin()
        try:
            yield
            self.commit()
        except BaseException:
            try:
                self.rollback()
            except Exception:
                pass
            raise

    def commit(self) -> None:
        self.run("COMMIT")

    def rollback(self) -> None:
        self.run("ROLLBACK")

    def close(self) -> None:
        raise NotImplementedError

    def retryable(self, error: Exception) -> bool:
        """Whether a write that failed with `error` is surely not recorded and may be run
        again, whole, in a new transaction (a deadlock the database broke, say)."""
        return False


def _insert_sql(table: str, columns: Sequence[str], ignore: bool, rows: int = 1) -> str:
    marks = "(" + ", ".join("?" for _ in columns) + ")"
    tail = " ON CONFLICT DO NOTHING" if ignore else ""
    return f"INSERT INTO {table}({', '.join(columns)}) VALUES {', '.join([marks] * rows)}{tail}"


class SqliteDb(Db):
    """Python's sqlite3, in autocommit mode: transactions are ours (BEGIN IMMEDIATE)."""

    def __init__(self, con: sqlite3.Connection) -> None:
        self.con = con

    def run(self, sql: str, *values: Any) -> List[Row]:
        return self.con.execute(sql, values).fetchall()

    def insert(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]],
               ids: bool = False, ignore: bool = False) -> List[int]:
        if not rows:
            return []
        self.con.executemany(_insert_sql(table, columns, ignore), rows)
        if not ids:
            return []
        # AUTOINCREMENT ids of one writer's rows (BEGIN IMMEDIATE holds the write lock) follow
        # each other: the last one and the count give them all.
        last = self.con.execute("SELECT last_insert_rowid()").fetchone()[0]
        return list(range(last - len(rows) + 1, last + 1))

    def in_list(self, column: str, values: Sequence[Any]) -> Tuple[str, List[Any]]:
        if len(values) == 1 and type(values[0]) is int:
            # One id (each hop of a long chain's walk): a plain comparison, no JSON to build
            # and parse; the same rows, as an int compares alike both ways.
            return f"{column} = ?", [values[0]]
        return f"{column} IN (SELECT value FROM json_each(?))", [json.dumps(list(values))]

    def tables(self) -> List[str]:
        return [r[0] for r in self.run("SELECT name FROM sqlite_master WHERE type = 'table'")]

    def begin(self) -> None:
        self.run("BEGIN IMMEDIATE")

    def close(self) -> None:
        self.con.close()


class PostgresDb(Db):
    """A pg8000 connection, autocommit unless in BEGIN.

    Statements go to pg8000's `execute_unnamed` with PostgreSQL's own `$n` parameters:
    pg8000.native's `run(sql, **params)` looks each named parameter up in a list, which
    made a 7000-value INSERT of put_lineage take most of a second.
    """

    name = "postgresql"
    row_order = "ctid"

    def __init__(self, con, close) -> None:
        self._con = con  # a pg8000.native.Connection
        self._close = close
        self._texts: Dict[str, str] = {}

    def _numbered(self, sql: str) -> str:
        text = self._texts.get(sql)
        if text is None:
            first, *rest = sql.split("?")
            text = first + "".join(f"${i}{part}" for i, part in enumerate(rest, 1))
            self._texts[sql] = text
        return text

    def run(self, sql: str, *values: Any) -> List[Row]:
        if values:
            rows = self._con.execute_unnamed(self._numbered(sql), vals=list(values)).rows
        else:
            rows = self._con.run(sql)
        return [tuple(r) for r in rows] if rows else []

    def insert(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]],
               ids: bool = False, ignore: bool = False) -> List[int]:
        found: List[int] = []
        for first in range(0, len(rows), _PG_CHUNK):
            chunk = rows[first:first + _PG_CHUNK]
            sql = _insert_sql(table, columns, ignore, len(chunk)) + (" RETURNING id" if ids else "")
            got = self.run(sql, *[v for row in chunk for v in row])
            # nextval runs in row order: sorted ids are the rows' ids in order.
            found += sorted(r[0] for r in got)
        return found

    def in_list(self, column: str, values: Sequence[Any]) -> Tuple[str, List[Any]]:
        return f"{column} = ANY(?)", [list(values)]

    def tables(self) -> List[str]:
        return [r[0] for r in self.run("SELECT table_name FROM information_schema.tables WHERE "
                                       "table_schema = current_schema() AND table_type = 'BASE TABLE'")]

    def begin(self) -> None:
        self.run("BEGIN")

    def close(self) -> None:
        self._close()


# -- values -----------------------------------------------------------------------------


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
        # With a context too, SQLite (no statistics in an MLMD file) would pick the type's
        # index and sort every node of the type (0.35 s for the explorer's filtered page at
        # 200k runs); `+` keeps the type as a row test, so the context's members lead (0.04 s).
        within = query.context_id is not None and node.member is not None and db.name == "sqlite"
        add(("+" if within else "") + "n.type_id = ?", int(query.type_id))
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
            bound = float(test.values[0])
            add(custom + f"(p.int_value >= CAST(? AS {db.double_type}) OR p.double_value >= ?))",
                test.key, True, bound, bound)
        elif test.op == "in":
            sql, values = db.in_list("p.string_value", [str(v) for v in test.values])
            add(custom + sql + ")", test.key, True, *values)
        else:
            raise MlmdExerciseError(f"unknown property test '{test.op}' on '{test.key}'")
    if query.text is not None and query.text.text:
        # LIKE, as ml-metadata's filter query: % and _ are wildcards (the README says so),
        # case-insensitive on SQLite for ASCII, as stored on PostgreSQL. The text is a parameter;
        # a backslash in it is a backslash (PostgreSQL's and MySQL's LIKE escape with it).
        text = query.text.text
        like = f"%{text}%" if db.name == "sqlite" else "%" + text.replace("\\", "\\\\") + "%"
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
    direction = "ASC" if query.ascending else "DESC"
    order = (f"n.id {direction}" if query.order == "id"
             else f"n.create_time_since_epoch {direction}, n.id {direction}")
    sql = (f"SELECT {node.columns} FROM {node.table} n LEFT JOIN Type t ON t.id = n.type_id"
           + (" WHERE " + " AND ".join(where) if where else "") + f" ORDER BY {order}")
    if query.limit is not None:
        sql += " LIMIT ?"
        params.append(int(query.limit))
    return sql, params
