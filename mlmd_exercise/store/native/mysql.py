"""The native backend's MySQL (and MariaDB) dialect: a PyMySQL connection, and what MySQL does
its own way.

What differs from SQLite and PostgreSQL is here alone: `%s` placeholders (PyMySQL formats
the values in, escaped, on the client), ids from LAST_INSERT_ID, MySQL's spelling of an
insert that skips duplicates, no physical row order to name, text stored the way
ml-metadata's latin1 client stores it (`to_stored`), MLMD's MySQL DDL (MLMDEnv last),
PyMySQL's errors by their numbers, and the connection's own lifecycle: a connection the server closed (wait_timeout, a restart) is opened again
before a statement outside a transaction, and a write whose transaction the server
surely rolled back (a deadlock, a lock wait timeout, a connection lost before COMMIT)
is said to be `retryable`, so that `native_errors.writing` runs it again.
"""

from __future__ import annotations

from typing import Any, Callable, List, Optional, Sequence, Tuple

from mlmd_exercise.errors import StoreError
from mlmd_exercise.store.native.errors import refused, taken, unclear, unreachable
from mlmd_exercise.store.native.sql import Db, Row

__all__ = ["MysqlDb", "MYSQL_DDL", "LOST", "RETRY", "to_stored", "from_stored", "decoders"]

# The connection is gone: CR_SERVER_GONE_ERROR, CR_SERVER_LOST, CR_SERVER_LOST_EXTENDED,
# ER_CONNECTION_KILLED (MariaDB), ER_SERVER_SHUTDOWN, ER_CLIENT_INTERACTION_TIMEOUT (MySQL 8).
LOST = (2006, 2013, 2055, 1927, 1053, 4031)
# The server rolled the transaction back, or the statement, and the caller rolls back the
# rest: ER_LOCK_DEADLOCK, ER_LOCK_WAIT_TIMEOUT.
RETRY = (1213, 1205)
_CHUNK = 1000  # rows per multi-row INSERT: well inside max_allowed_packet (16 MiB by default)
# Error numbers for a duplicate key: ER_DUP_KEY, ER_DUP_ENTRY, ER_DUP_ENTRY_WITH_KEY_NAME.
_TAKEN = (1022, 1062, 1586)

# ml-metadata's MySQL client speaks latin1 to the server and sends its strings' UTF-8 bytes:
# the server takes each byte for a latin1 character (MySQL's latin1 is Windows-1252, with
# its five unused bytes kept as U+0081, U+008D, U+008F, U+0090, U+009D) and stores that.
# "é" is stored as "Ã©", and read back, through latin1 again, as "é". So that either backend
# reads what the other wrote, text is stored here as ml-metadata stores it (found by
# tests/test_native_differential.py: ml-metadata read "\x80" written plainly as "?").
_CP1252_ONLY = {b: bytes([b]).decode("cp1252") for b in range(0x80, 0xA0)
                if b not in (0x81, 0x8D, 0x8F, 0x90, 0x9D)}
_TO_STORED = {b: c for b, c in _CP1252_ONLY.items()}
_FROM_STORED = {ord(c): b for b, c in _CP1252_ONLY.items()}


def to_stored(text: str) -> str:
    """`text` as ml-metadata stores it on MySQL (see above); ASCII is stored as it is."""
    if text.isascii():
        return text
    return text.encode("utf-8").decode("latin-1").translate(_TO_STORED)


def from_stored(text: str) -> str:
    """Text stored as ml-metadata stores it, as it was given; text that other programs
    stored plainly (not the form above) is given back as it is."""
    if text.isascii():
        return text
    try:
        return text.translate(_FROM_STORED).encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return text


def _read_text(value: Any) -> Any:
    """A text field as `from_stored` gives it; a binary one's bytes as they are."""
    return from_stored(value) if type(value) is str else value


def decoders() -> dict:
    """PyMySQL's conversions (its `conv`), with `from_stored` applied as it reads each field
    that may hold text (every type it decodes with the connection's character set; the rest
    it reads as ASCII): the rows come as they are returned, not rebuilt value by value after
    (a tenth of reading a thousand executions' events)."""
    from pymysql import connections, converters
    from pymysql.constants import FIELD_TYPE

    return {**converters.conversions, **{t: _read_text for t in (*connections.TEXT_TYPES, FIELD_TYPE.JSON)}}


_MY_PROPERTY_TABLE = (
    " CREATE TABLE IF NOT EXISTS `{table}` ( "
    "   `{owner}` INT NOT NULL, "
    "   `name` VARCHAR(255) NOT NULL, "
    "   `is_custom_property` TINYINT(1) NOT NULL, "
    "   `int_value` INT, "
    "   `double_value` DOUBLE, "
    "   `string_value` MEDIUMTEXT, "
    "   `byte_value` MEDIUMBLOB, "
    "   `proto_value` MEDIUMBLOB, "
    "   `bool_value` BOOLEAN, "
    " PRIMARY KEY (`{owner}`, `name`, `is_custom_property`)); ")
_MY_NODE_TIMES = ("   `create_time_since_epoch` BIGINT NOT NULL DEFAULT 0, "
                  "   `last_update_time_since_epoch` BIGINT NOT NULL DEFAULT 0, ")
_MY_TIME_INDICES = ("  ADD INDEX `idx_{node}_create_time_since_epoch` "
                    "             (`create_time_since_epoch`), "
                    "  ADD INDEX `idx_{node}_last_update_time_since_epoch` "
                    "             (`last_update_time_since_epoch`); ")

# MLMD's MySQL statements, in the order it runs them, but for MLMDEnv: MySQL commits each
# CREATE at once, so the table that marks a database as an MLMD store is made last
# (`MYSQL_ENV`), and a creator killed half-way leaves no store that claims to be whole.
MYSQL_DDL: Tuple[str, ...] = (
    " CREATE TABLE IF NOT EXISTS `Type` ( "
    "   `id` INT PRIMARY KEY AUTO_INCREMENT, "
    "   `name` VARCHAR(255) NOT NULL, "
    "   `version` VARCHAR(255), "
    "   `type_kind` TINYINT(1) NOT NULL, "
    "   `description` TEXT, "
    "   `input_type` TEXT, "
    "   `output_type` TEXT, "
    "   `external_id` VARCHAR(255) UNIQUE "
    " ); ",
    " CREATE TABLE IF NOT EXISTS `ParentType` ( "
    "   `type_id` INT NOT NULL, "
    "   `parent_type_id` INT NOT NULL, "
    " PRIMARY KEY (`type_id`, `parent_type_id`)); ",
    " CREATE TABLE IF NOT EXISTS `TypeProperty` ( "
    "   `type_id` INT NOT NULL, "
    "   `name` VARCHAR(255) NOT NULL, "
    "   `data_type` INT NULL, "
    " PRIMARY KEY (`type_id`, `name`)); ",
    " CREATE TABLE IF NOT EXISTS `Artifact` ( "
    "   `id` INTEGER PRIMARY KEY AUTO_INCREMENT, "
    "   `type_id` INT NOT NULL, "
    "   `uri` TEXT, "
    "   `state` INT, "
    "   `name` VARCHAR(255), "
    "   `external_id` VARCHAR(255) UNIQUE, "
    + _MY_NODE_TIMES +
    "   CONSTRAINT UniqueArtifactTypeName UNIQUE(`type_id`, `name`) "
    " ); ",
    _MY_PROPERTY_TABLE.format(table="ArtifactProperty", owner="artifact_id"),
    " CREATE TABLE IF NOT EXISTS `Execution` ( "
    "   `id` INTEGER PRIMARY KEY AUTO_INCREMENT, "
    "   `type_id` INT NOT NULL, "
    "   `last_known_state` INT, "
    "   `name` VARCHAR(255), "
    "   `external_id` VARCHAR(255) UNIQUE, "
    + _MY_NODE_TIMES +
    "   CONSTRAINT UniqueExecutionTypeName UNIQUE(`type_id`, `name`) "
    " ); ",
    _MY_PROPERTY_TABLE.format(table="ExecutionProperty", owner="execution_id"),
    " CREATE TABLE IF NOT EXISTS `Context` ( "
    "   `id` INTEGER PRIMARY KEY AUTO_INCREMENT, "
    "   `type_id` INT NOT NULL, "
    "   `name` VARCHAR(255) NOT NULL, "
    "   `external_id` VARCHAR(255) UNIQUE, "
    + _MY_NODE_TIMES +
    "   UNIQUE(`type_id`, `name`) "
    " ); ",
    _MY_PROPERTY_TABLE.format(table="ContextProperty", owner="context_id"),
    " CREATE TABLE IF NOT EXISTS `ParentContext` ( "
    "   `context_id` INT NOT NULL, "
    "   `parent_context_id` INT NOT NULL, "
    " PRIMARY KEY (`context_id`, `parent_context_id`)); ",
    " CREATE TABLE IF NOT EXISTS `Event` ( "
    "   `id` INTEGER PRIMARY KEY AUTO_INCREMENT, "
    "   `artifact_id` INT NOT NULL, "
    "   `execution_id` INT NOT NULL, "
    "   `type` INT NOT NULL, "
    "   `milliseconds_since_epoch` BIGINT, "
    "   CONSTRAINT UniqueEvent UNIQUE( "
    "     `artifact_id`, `execution_id`, `type`) "
    " ); ",
    " CREATE TABLE IF NOT EXISTS `EventPath` ( "
    "   `event_id` INT NOT NULL, "
    "   `is_index_step` TINYINT(1) NOT NULL, "
    "   `step_index` INT, "
    "   `step_key` TEXT "
    " ); ",
    " CREATE TABLE IF NOT EXISTS `Association` ( "
    "   `id` INTEGER PRIMARY KEY AUTO_INCREMENT, "
    "   `context_id` INT NOT NULL, "
    "   `execution_id` INT NOT NULL, "
    "   UNIQUE(`context_id`, `execution_id`) "
    " ); ",
    " CREATE TABLE IF NOT EXISTS `Attribution` ( "
    "   `id` INTEGER PRIMARY KEY AUTO_INCREMENT, "
    "   `context_id` INT NOT NULL, "
    "   `artifact_id` INT NOT NULL, "
    "   UNIQUE(`context_id`, `artifact_id`) "
    " ); ",
    # MLMD's secondary indices (MySQL indexes a prefix of a TEXT column only).
    " ALTER TABLE `Artifact` "
    "  ADD INDEX `idx_artifact_uri`(`uri`(255)), " + _MY_TIME_INDICES.format(node="artifact"),
    " ALTER TABLE `Event` "
    " ADD INDEX `idx_event_execution_id` (`execution_id`); ",
    " ALTER TABLE `ParentContext` "
    " ADD INDEX "
    "   `idx_parentcontext_parent_context_id` (`parent_context_id`); ",
    " ALTER TABLE `Type` "
    " ADD INDEX `idx_type_name` (`name`); ",
    " ALTER TABLE `Execution` " + _MY_TIME_INDICES.format(node="execution"),
    " ALTER TABLE `Context` " + _MY_TIME_INDICES.format(node="context"),
    " ALTER TABLE `EventPath` "
    "  ADD INDEX `idx_eventpath_event_id`(`event_id`); ",
) + tuple(
    f" ALTER TABLE `{table}` "
    f"  ADD INDEX `idx_{node}_property_{kind}`( "
    f"    `name`, `is_custom_property`, `{kind}_value`{'(255)' if kind == 'string' else ''}); "
    for node, table in (("artifact", "ArtifactProperty"), ("execution", "ExecutionProperty"),
                        ("context", "ContextProperty"))
    for kind in ("int", "double", "string")
) + tuple(
    f" ALTER TABLE `{table}` "
    f" ADD INDEX `idx_{table.lower()}_external_id` (`external_id`);"
    for table in ("Type", "Artifact", "Execution", "Context")
)
MYSQL_ENV = (" CREATE TABLE IF NOT EXISTS `MLMDEnv` ( "
             "   `schema_version` INTEGER PRIMARY KEY "
             " ); ")


def _code(error: Exception) -> Optional[int]:
    return error.args[0] if error.args and isinstance(error.args[0], int) else None


class MysqlDb(Db):
    """A PyMySQL connection in autocommit mode, except between BEGIN and COMMIT.

    `connect()` makes a new connection (store/mysql.py's `connect`, with this backend's
    read timeout and `decoders`); it is called again after the old one was lost.
    """

    name = "mysql"
    row_order = None  # InnoDB's own row id is hidden: a scan gives rows in its order
    double_type = "DOUBLE"  # MySQL's CAST knows no DOUBLE PRECISION
    protos_in_base64 = True  # MLMD keeps them as base64 text, in a MEDIUMBLOB
    ddl = MYSQL_DDL
    ddl_after_types = (MYSQL_ENV,)
    title = "MySQL"
    walk_span = 500  # a recursion stops at 1,000 levels (cte_max_recursion_depth, MariaDB's max_recursive_iterations)
    stored_text = staticmethod(to_stored)  # ml-metadata's latin1 client's form of text

    def __init__(self, connect: Callable[[], Any]) -> None:
        self._connect = connect
        self._con: Any = connect()
        self._in_transaction = False
        self._commit_failed = False
        self._step: Optional[int] = None  # ids one multi-row INSERT hands out are this far apart
        self._closed = False  # closed by its store: never opened again behind the caller's back

    def _execute(self, sql: str, values: Sequence[Any]) -> Tuple[List[Row], Any, int]:
        import pymysql

        # `?` -> `%s`, and a literal % doubled: PyMySQL formats every statement with `%`.
        text = sql.replace("%", "%%").replace("?", "%s")
        for attempt in (1, 2):
            if self._con is None:
                if self._closed:
                    raise pymysql.err.InterfaceError(0, "the store was closed")
                if self._in_transaction:  # never half a transaction on a new connection
                    raise pymysql.err.InterfaceError(0, "the connection was lost in this transaction")
                self._con = self._connect()
            try:
                with self._con.cursor() as cursor:
                    cursor.execute(text, tuple(to_stored(v) if type(v) is str else v for v in values))
                    # Text comes back as from_stored gives it (the connection's `decoders`).
                    return list(cursor.fetchall()), cursor.lastrowid, cursor.rowcount
            except pymysql.err.MySQLError as e:
                if not self.lost(e):
                    raise
                self._drop()
                # Outside a transaction a statement stands alone: run it again on a new
                # connection. Inside one, the transaction died with the connection: the
                # caller must know (see `retryable`).
                if self._in_transaction or attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def run(self, sql: str, *values: Any) -> List[Row]:
        return self._execute(sql, values)[0]

    def _steps(self) -> Optional[int]:
        """How far apart the ids of one multi-row INSERT are, or None where InnoDB does
        not promise them consecutive (innodb_autoinc_lock_mode 2, MySQL 8's default)."""
        if self._step is None:
            [(mode, increment)] = self.run("SELECT @@innodb_autoinc_lock_mode, @@auto_increment_increment")
            self._step = int(increment) if int(mode) in (0, 1) else 0
        return self._step or None

    def insert(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]],
               ids: bool = False, ignore: bool = False) -> List[int]:
        if not rows:
            return []
        marks = "(" + ", ".join("?" for _ in columns) + ")"
        head = f"INSERT INTO {table}({', '.join(columns)}) VALUES "
        # A duplicate is skipped, and only a duplicate (INSERT IGNORE would pass other errors).
        tail = f" ON DUPLICATE KEY UPDATE {columns[0]} = {columns[0]}" if ignore else ""
        step = self._steps() if ids else 1
        chunk = _CHUNK if step else 1  # no promise of consecutive ids: one row at a time, as MLMD does
        found: List[int] = []
        for first in range(0, len(rows), chunk):
            part = rows[first:first + chunk]
            _, last_id, _ = self._execute(head + ", ".join([marks] * len(part)) + tail, [v for r in part for v in r])
            if ids:
                # LAST_INSERT_ID is the first row's id; InnoDB hands one statement's rows
                # ids in their order, `step` apart (innodb_autoinc_lock_mode 0 or 1).
                found += [last_id + k * (step or 1) for k in range(len(part))]
        return found

    def delete(self, table: str, where: str, *values: Any) -> int:
        # MySQL 8 has no DELETE ... RETURNING (MariaDB has): the server's count of rows.
        return self._execute(f"DELETE FROM {table} WHERE {where}", values)[2]

    def among(self, column: str, values: Sequence[Any]) -> Tuple[str, List[Any]]:
        # MySQL has no array parameter: one placeholder per value.
        if not values:
            return "1 = 0", []
        return f"{column} IN ({', '.join('?' for _ in values)})", list(values)

    def drop_temporary(self, name: str) -> str:
        return f"DROP TEMPORARY TABLE {name}"  # never a table of the store of that name

    def emptied_temporary(self, name: str, columns: str) -> Tuple[str, ...]:
        # InnoDB keeps a temporary table's deleted rows: a walk's span tables, emptied after
        # each span, grew slower to read and write with every one (a 200,000-run chain's walk
        # leg 49.7 s, 10.0 s made anew). TRUNCATE would commit the caller's transaction; a
        # temporary table's DROP and CREATE do not.
        return self.drop_temporary(name), self.temporary_table(name, columns)

    def tables(self) -> List[str]:
        return [r[0] for r in self.run("SELECT table_name FROM information_schema.tables WHERE "
                                       "table_schema = DATABASE() AND table_type = 'BASE TABLE'")]

    def begin(self) -> None:
        self._commit_failed = False
        self.run("BEGIN")  # on a new connection if the old one was lost meanwhile
        self._in_transaction = True

    def begin_snapshot(self) -> None:
        self.run("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
        self._in_transaction = True  # never the rest of the snapshot on a new connection

    def commit(self) -> None:
        try:
            self.run("COMMIT")
        except BaseException:
            self._commit_failed = True
            raise
        finally:
            self._in_transaction = False

    def rollback(self) -> None:
        try:
            if self._con is not None:  # a lost connection took its transaction with it
                self.run("ROLLBACK")
        finally:
            self._in_transaction = False

    def close(self) -> None:
        self._closed = True
        self._drop()

    def _drop(self) -> None:
        con, self._con = self._con, None
        if con is not None:
            try:
                con.close()
            except Exception:  # already gone: nothing to release
                pass

    @staticmethod
    def lost(error: Exception) -> bool:
        """Whether `error` says the connection is gone."""
        import pymysql

        return isinstance(error, pymysql.err.InterfaceError) or (
            isinstance(error, pymysql.err.MySQLError) and _code(error) in LOST)

    def retryable(self, error: Exception) -> bool:
        import pymysql

        if isinstance(error, pymysql.err.MySQLError) and _code(error) in RETRY:
            return True
        # A connection lost before COMMIT was sent took its transaction with it; lost
        # during COMMIT, the write may or may not be recorded (UnclearWriteError).
        return self.lost(error) and not self._commit_failed

    @classmethod
    def translated(cls, error: Exception, label: str, writing: bool, opening: bool) -> Optional[Exception]:
        if not type(error).__module__.startswith("pymysql"):
            return None
        code = _code(error)
        # The server's own message: it names the user and host for a refused right.
        message = str(error.args[1] if len(error.args) > 1 else error).splitlines()[0] if error.args else str(error)
        if code in _TAKEN:
            return taken(label)
        if cls.lost(error):
            return unclear(label) if writing else unreachable(label, message)
        if code in RETRY:  # given up after the attempts `errors.writing` makes: every run was rolled back
            return StoreError(f"store '{label}' is busy: the write was not recorded ({message}); try again")
        return refused(label, message, opening)
