"""The native backend's PostgreSQL dialect: a connection through psycopg 3 or pg8000, and what
PostgreSQL does its own way.

Ids from RETURNING (SERIAL), an id list as one array parameter, rows in the order they were
stored by ctid, proto values as raw BYTEA, MLMD's PostgreSQL DDL, and the driver's errors by
their SQLSTATE, in `PostgresDb`; each driver's placeholders (psycopg's `%s`, pg8000's `$n`)
and exception classes in its small subclass (`PsycopgDb`, `Pg8000Db`).
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from mlmd_exercise.store.native.errors import disk_full, refused, taken, unclear, unreachable
from mlmd_exercise.store import tables
from mlmd_exercise.store.native.sql import Db, Row, insert_sql

__all__ = ["PostgresDb", "PsycopgDb", "Pg8000Db", "POSTGRES_DDL"]

_CHUNK = 1000  # rows per multi-row INSERT (65535 parameters at most)

_PG_PROPERTY_TABLE = (
    " CREATE TABLE IF NOT EXISTS {table} ( "
    "   {owner} INT NOT NULL, "
    "   name VARCHAR(255) NOT NULL, "
    "   is_custom_property BOOLEAN NOT NULL, "
    "   int_value INT, "
    "   double_value DOUBLE PRECISION, "
    "   string_value TEXT, "
    "   byte_value BYTEA, "
    "   proto_value BYTEA, "
    "   bool_value BOOLEAN, "
    " PRIMARY KEY ({owner}, name, is_custom_property)); ")
_PG_NODE_TIMES = ("   create_time_since_epoch BIGINT NOT NULL DEFAULT 0, "
                  "   last_update_time_since_epoch BIGINT NOT NULL DEFAULT 0, ")

# MLMD's PostgreSQL statements, in the order it runs them.
POSTGRES_DDL: Tuple[str, ...] = (
    " CREATE TABLE IF NOT EXISTS Type( "
    "   id SERIAL PRIMARY KEY, "
    "   name VARCHAR(255) NOT NULL, "
    "   version VARCHAR(255), "
    "   type_kind SMALLINT NOT NULL, "
    "   description TEXT, "
    "   input_type TEXT, "
    "   output_type TEXT, "
    "   external_id VARCHAR(255) UNIQUE"
    " ); ",
    " CREATE TABLE IF NOT EXISTS ParentType ( "
    "   type_id INT NOT NULL, "
    "   parent_type_id INT NOT NULL, "
    " PRIMARY KEY (type_id, parent_type_id)); ",
    " CREATE TABLE IF NOT EXISTS TypeProperty ( "
    "   type_id INT NOT NULL, "
    "   name VARCHAR(255) NOT NULL, "
    "   data_type INT NULL, "
    " PRIMARY KEY (type_id, name)); ",
    " CREATE TABLE IF NOT EXISTS Artifact ( "
    "   id SERIAL PRIMARY KEY, "
    "   type_id INT NOT NULL, "
    "   uri TEXT, "
    "   state INT, "
    "   name VARCHAR(255), "
    "   external_id VARCHAR(255) UNIQUE, "
    + _PG_NODE_TIMES +
    "   CONSTRAINT UniqueArtifactTypeName UNIQUE(type_id, name) "
    " ); ",
    _PG_PROPERTY_TABLE.format(table="ArtifactProperty", owner="artifact_id"),
    " CREATE TABLE IF NOT EXISTS Execution ( "
    "   id SERIAL PRIMARY KEY, "
    "   type_id INT NOT NULL, "
    "   last_known_state INT, "
    "   name VARCHAR(255), "
    "   external_id VARCHAR(255) UNIQUE, "
    + _PG_NODE_TIMES +
    "   CONSTRAINT UniqueExecutionTypeName UNIQUE(type_id, name) "
    " ); ",
    _PG_PROPERTY_TABLE.format(table="ExecutionProperty", owner="execution_id"),
    " CREATE TABLE IF NOT EXISTS Context ( "
    "   id SERIAL PRIMARY KEY, "
    "   type_id INT NOT NULL, "
    "   name VARCHAR(255) NOT NULL, "
    "   external_id VARCHAR(255) UNIQUE, "
    + _PG_NODE_TIMES +
    "   UNIQUE(type_id, name) "
    " ); ",
    _PG_PROPERTY_TABLE.format(table="ContextProperty", owner="context_id"),
    " CREATE TABLE IF NOT EXISTS ParentContext ( "
    "   context_id INT NOT NULL, "
    "   parent_context_id INT NOT NULL, "
    " PRIMARY KEY (context_id, parent_context_id)); ",
    " CREATE TABLE IF NOT EXISTS Event ( "
    "   id SERIAL PRIMARY KEY, "
    "   artifact_id INT NOT NULL, "
    "   execution_id INT NOT NULL, "
    "   type INT NOT NULL, "
    "   milliseconds_since_epoch BIGINT, "
    "   CONSTRAINT UniqueEvent UNIQUE( "
    "     artifact_id, execution_id, type) "
    " ); ",
    " CREATE TABLE IF NOT EXISTS EventPath ( "
    "   event_id INT NOT NULL, "
    "   is_index_step BOOLEAN NOT NULL, "
    "   step_index INT, "
    "   step_key TEXT "
    " ); ",
    " CREATE TABLE IF NOT EXISTS Association ( "
    "   id SERIAL PRIMARY KEY, "
    "   context_id INT NOT NULL, "
    "   execution_id INT NOT NULL, "
    "   UNIQUE(context_id, execution_id) "
    " ); ",
    " CREATE TABLE IF NOT EXISTS Attribution ( "
    "   id SERIAL PRIMARY KEY, "
    "   context_id INT NOT NULL, "
    "   artifact_id INT NOT NULL, "
    "   UNIQUE(context_id, artifact_id) "
    " ); ",
    " CREATE TABLE IF NOT EXISTS MLMDEnv ( "
    "   schema_version INT PRIMARY KEY "
    " ); ",
    # MLMD's secondary indices.
    " CREATE INDEX IF NOT EXISTS idx_artifact_uri ON Artifact (uri); ",
    " CREATE INDEX IF NOT EXISTS idx_artifact_create_time_since_epoch ON Artifact (create_time_since_epoch); ",
    " CREATE INDEX IF NOT EXISTS idx_artifact_last_update_time_since_epoch "
    " ON Artifact (last_update_time_since_epoch); ",
    " CREATE INDEX IF NOT EXISTS idx_event_execution_id ON Event (execution_id); ",
    " CREATE INDEX IF NOT EXISTS idx_parentcontext_parent_context_id ON ParentContext (parent_context_id); ",
    " CREATE INDEX IF NOT EXISTS idx_type_name ON Type (name); ",
    " CREATE INDEX IF NOT EXISTS idx_execution_create_time_since_epoch ON Execution (create_time_since_epoch); ",
    " CREATE INDEX IF NOT EXISTS idx_execution_last_update_time_since_epoch "
    " ON Execution (last_update_time_since_epoch); ",
    " CREATE INDEX IF NOT EXISTS idx_context_create_time_since_epoch ON Context (create_time_since_epoch); ",
    " CREATE INDEX IF NOT EXISTS idx_context_last_update_time_since_epoch "
    " ON Context (last_update_time_since_epoch); ",
    " CREATE INDEX IF NOT EXISTS idx_eventpath_event_id ON EventPath (event_id); ",
) + tuple(
    f" CREATE INDEX IF NOT EXISTS idx_{node}_property_{kind} ON {table} (name, is_custom_property, {kind}_value); "
    for node, table in (("artifact", "ArtifactProperty"), ("execution", "ExecutionProperty"),
                        ("context", "ContextProperty"))
    for kind in ("int", "double", "string")
) + tuple(
    f" CREATE INDEX IF NOT EXISTS idx_{table.lower()}_external_id ON {table}(external_id); "
    for table in ("Type", "Artifact", "Execution", "Context")
)


_DEFAULT_JOINS = ("SELECT set_config(name, reset_val, false) FROM pg_settings "
                  "WHERE name IN ('enable_hashjoin', 'enable_mergejoin')")


class PostgresDb(Db):
    """One PostgreSQL connection, autocommit unless in BEGIN: the SQL, the DDL and the error
    translation of both drivers. A subclass per driver runs the statements (`run`, `close`)
    and says what its errors are (`_server_error`, `_broken`): `PsycopgDb` (psycopg 3, the
    default where it imports) and `Pg8000Db` (pg8000, pure Python, the fallback).
    """

    name = "postgresql"
    driver = ""
    row_order = "ctid"
    snapshot_sql = "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY"
    ddl = POSTGRES_DDL
    holds_nul = False  # "invalid byte sequence for encoding UTF8: 0x00"
    number_marks = ("CAST(? AS BIGINT)", "CAST(? AS DOUBLE PRECISION)")
    title = "PostgreSQL"

    def __init__(self, con: Any) -> None:
        self._con = con
        self._texts: Dict[str, str] = {}

    def _placeholders(self, sql: str) -> str:
        """`sql` with the driver's placeholders for the package's `?` (once per statement)."""
        text = self._texts.get(sql)
        if text is None:
            text = self._texts[sql] = self._rewritten(sql)
        return text

    def _rewritten(self, sql: str) -> str:
        raise NotImplementedError

    def insert(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]],
               ids: bool = False, ignore: bool = False) -> List[int]:
        found: List[int] = []
        for first in range(0, len(rows), _CHUNK):
            chunk = rows[first:first + _CHUNK]
            sql = insert_sql(table, columns, ignore, len(chunk)) + (" RETURNING id" if ids else "")
            values = [v for row in chunk for v in row]
            if ids:
                # nextval runs in row order: sorted ids are the rows' ids in order.
                found += sorted(r[0] for r in self.run(sql, *values))
            else:
                self.send(sql, *values)
        return found

    def among(self, column: str, values: Sequence[Any]) -> Tuple[str, List[Any]]:
        return f"{column} = ANY(?)", [list(values)]

    def prepared(self, sql: str) -> Callable[..., List[Row]]:
        """`run` of a statement run again and again (the store's lock, taken around every
        write): psycopg prepares it on the server by itself once it has run a few times."""
        return lambda *values: self.run(sql, *values)

    def tables(self) -> List[str]:
        return [r[0] for r in self.run("SELECT table_name FROM information_schema.tables WHERE "
                                       "table_schema = current_schema() AND table_type = 'BASE TABLE'")]

    def run_by_index(self, sql: str, *values: Any) -> List[Row]:
        # PostgreSQL plans a recursive query once, knowing neither how many rows its work table
        # will hold at each level nor, without statistics, a temporary table's size: it hashed
        # the whole Event table and merge-joined the reached nodes, sorted again at every level
        # (quadratic: a 20,000-run chain's walk took 328 s, ml-metadata's hop by hop 10.7 s).
        # Without hash and merge joins, it takes the indexes node by node. The settings are the
        # connection's own (a statement's, in effect), back to their defaults after it.
        self.run("SELECT set_config('enable_hashjoin', 'off', false), set_config('enable_mergejoin', 'off', false)")
        try:
            found = self.run(sql, *values)
        except BaseException:
            try:
                self.run(_DEFAULT_JOINS)
            except Exception:  # an aborted transaction: its rollback takes the settings back
                pass
            raise
        self.run(_DEFAULT_JOINS)
        return found

    def begin(self) -> None:
        self.run("BEGIN")

    def close(self) -> None:
        try:
            self._con.close()
        except Exception:  # already gone: nothing to release
            pass

    @classmethod
    def _server_error(cls, error: Exception) -> Optional[Tuple[str, object]]:
        """(SQLSTATE, the server's message) where `error` is the driver's for a statement the
        server refused, else None."""
        raise NotImplementedError

    @classmethod
    def _broken(cls, error: Exception) -> bool:
        """Whether `error` is the driver's for a connection that broke (no word from the server)."""
        raise NotImplementedError

    @classmethod
    def translated(cls, error: Exception, label: str, writing: bool, opening: bool) -> Optional[Exception]:
        if not type(error).__module__.startswith(cls.driver):
            return None
        refusal = cls._server_error(error)
        if refusal is not None:
            state, message = refusal
            if state == "23505":  # unique_violation
                return taken(label)
            if writing and (state.startswith("08") or state.startswith("57P")):  # connection lost, shut down
                return unclear(label)
            if state == "53100" and writing:  # disk_full: the statement failed, the transaction is rolled back
                return disk_full(label)
            return refused(label, message, opening)
        if cls._broken(error):
            return unclear(label) if writing else unreachable(label)
        return None


_NUL_REFUSED = 'invalid byte sequence for encoding "UTF8": 0x00'  # PostgreSQL's words (SQLSTATE 22021)


def _holds_nul(values: Sequence[Any]) -> bool:
    return any(isinstance(v, str) and "\x00" in v or isinstance(v, list) and _holds_nul(v) for v in values)


class PsycopgDb(PostgresDb):
    """A psycopg 3 connection (`psycopg.Connection`, autocommit, tuples for rows).

    The package's `?` become psycopg's `%s` (and a literal `%` its `%%`). Each statement is one
    round trip (pg8000's take three), and psycopg prepares it on the server once it has run a
    few times (its `prepare_threshold`); a write's transaction is one pipeline (`begin`), where
    libpq has them (14 and later: psycopg[binary]'s own).
    """

    driver = "psycopg"

    def __init__(self, con: Any) -> None:
        super().__init__(con)
        self._entered: Any = None  # a write's transaction's pipeline (`begin`)
        self._pipeline: Any = None
        from psycopg.adapt import Dumper

        class IntAsUnknown(Dumper):
            # An int goes as text of no type, which the server reads as its column's (as
            # pg8000 sends it): a value too big for an INT column is refused in the same words
            # ('value "1099511627776" is out of range for type integer'), not as a BIGINT's.
            oid = 0

            def dump(self, obj: Any) -> bytes:
                return str(obj).encode()

        con.adapters.register_dumper(int, IntAsUnknown)

    def _rewritten(self, sql: str) -> str:
        return sql.replace("%", "%%").replace("?", "%s")

    def _execute(self, sql: str, values: Sequence[Any]) -> Any:
        import psycopg

        try:
            if values:
                return self._con.execute(self._placeholders(sql), values)
            return self._con.execute(sql)
        except psycopg.DataError as e:
            if e.sqlstate is None and _holds_nul(values):
                # psycopg refuses a NUL before sending (libpq's text ends at one): the refusal
                # in the server's words, as pg8000, which sends it, is given it.
                raise psycopg.errors.CharacterNotInRepertoire(_NUL_REFUSED) from e
            raise

    def run(self, sql: str, *values: Any) -> List[Row]:
        cursor = self._execute(sql, values)
        if self._pipeline is not None:
            # Its answer, and those of the statements sent before it, in one round trip;
            # the first error among them is raised here, as the server's.
            self._pipeline.sync()
        return cursor.fetchall() if cursor.description is not None else []

    def send(self, sql: str, *values: Any) -> None:
        self._execute(sql, values)  # in a transaction, queued: sent with the next that waits

    def begin(self) -> None:
        # A write's transaction is one pipeline: BEGIN and the statements sent (`send`) go
        # with the next statement whose answer is read, or with the COMMIT.
        import psycopg

        if not psycopg.Pipeline.is_supported():  # an older system libpq under pure-Python psycopg
            self.run("BEGIN")
            return
        self._entered = self._con.pipeline()  # a context manager: the Pipeline is what it enters
        self._pipeline = self._entered.__enter__()
        self.send("BEGIN")

    def _end_pipeline(self) -> None:
        entered, self._entered, self._pipeline = self._entered, None, None
        if entered is not None:
            entered.__exit__(None, None, None)  # syncs: raises the first error not yet raised

    def commit(self) -> None:
        if self._pipeline is None:
            self.run("COMMIT")
            return
        self.send("COMMIT")
        self._end_pipeline()

    def rollback(self) -> None:
        try:
            self._end_pipeline()
        except Exception:  # the error that made it roll back, raised already (or the connection gone)
            pass
        self.run("ROLLBACK")

    @classmethod
    def _server_error(cls, error: Exception) -> Optional[Tuple[str, object]]:
        import psycopg

        state = getattr(error, "sqlstate", None)
        if not isinstance(error, psycopg.Error) or not state:
            return None
        return state, error.diag.message_primary or error

    @classmethod
    def _broken(cls, error: Exception) -> bool:
        import psycopg

        # No SQLSTATE: the connection broke or was closed (libpq's own words), never the
        # server's refusal; a value psycopg cannot send (DataError) is not one.
        return isinstance(error, (psycopg.OperationalError, psycopg.InterfaceError))


class Pg8000Db(PostgresDb):
    """A pg8000 connection (`pg8000.native.Connection`).

    Statements go to pg8000's `execute_unnamed` with PostgreSQL's own `$n` parameters:
    pg8000.native's `run(sql, **params)` looks each named parameter up in a list, which
    made a 7000-value INSERT of put_lineage take most of a second.
    """

    driver = "pg8000"

    def _rewritten(self, sql: str) -> str:
        first, *rest = sql.split("?")
        return first + "".join(f"${i}{part}" for i, part in enumerate(rest, 1))

    def prepared(self, sql: str) -> Callable[..., List[Row]]:
        # Prepared once on the server: one round trip a run, where an unnamed statement takes
        # three (0.10 against 0.32 ms for the store's lock taken and freed).
        statement = self._con.prepare(tables.named(sql))  # pg8000's prepare names its parameters
        return lambda *values: [tuple(r) for r in statement.run(**tables.named_values(values)) or []]

    def run(self, sql: str, *values: Any) -> List[Row]:
        if values:
            rows = self._con.execute_unnamed(self._placeholders(sql), vals=list(values)).rows
        else:
            rows = self._con.run(sql)
        return [tuple(r) for r in rows] if rows else []

    @classmethod
    def _server_error(cls, error: Exception) -> Optional[Tuple[str, object]]:
        import pg8000.exceptions as pg

        if not isinstance(error, pg.DatabaseError):
            return None
        detail = error.args[0] if error.args else None
        state = str(detail.get("C", "")) if isinstance(detail, dict) else ""
        message = detail.get("M", detail) if isinstance(detail, dict) else (detail or error)
        return state, message

    @classmethod
    def _broken(cls, error: Exception) -> bool:
        import pg8000.exceptions as pg

        return isinstance(error, pg.InterfaceError)
