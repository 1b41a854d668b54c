"""The native backend's MySQL (and MariaDB) dialect: a PyMySQL connection as a `native_sql.Db`.

What differs from SQLite and PostgreSQL is here alone: `%s` placeholders (PyMySQL formats
the values in, escaped, on the client), ids from LAST_INSERT_ID, MySQL's spelling of an
insert that skips duplicates, no physical row order to name, text stored the way
ml-metadata's latin1 client stores it (`to_stored`), and the connection's own
lifecycle: a connection the server closed (wait_timeout, a restart) is opened again
before a statement outside a transaction, and a write whose transaction the server
surely rolled back (a deadlock, a lock wait timeout, a connection lost before COMMIT)
is said to be `retryable`, so that `native_errors.writing` runs it again.
"""

from __future__ import annotations

from typing import Any, Callable, List, Optional, Sequence, Tuple

from mlmd_exercise.store.native_sql import Db, Row

__all__ = ["MysqlDb", "LOST", "RETRY", "to_stored", "from_stored"]

# The connection is gone: CR_SERVER_GONE_ERROR, CR_SERVER_LOST, CR_SERVER_LOST_EXTENDED,
# ER_CONNECTION_KILLED (MariaDB), ER_SERVER_SHUTDOWN, ER_CLIENT_INTERACTION_TIMEOUT (MySQL 8).
LOST = (2006, 2013, 2055, 1927, 1053, 4031)
# The server rolled the transaction back, or the statement, and the caller rolls back the
# rest: ER_LOCK_DEADLOCK, ER_LOCK_WAIT_TIMEOUT.
RETRY = (1213, 1205)
_CHUNK = 1000  # rows per multi-row INSERT: well inside max_allowed_packet (16 MiB by default)

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


def _code(error: Exception) -> Optional[int]:
    return error.args[0] if error.args and isinstance(error.args[0], int) else None


class MysqlDb(Db):
    """A PyMySQL connection in autocommit mode, except between BEGIN and COMMIT.

    `connect()` makes a new connection (store/mysql.py's `connect`, with this backend's
    read timeout); it is called again after the old one was lost.
    """

    name = "mysql"
    row_order = None  # InnoDB's own row id is hidden: a scan gives rows in its order
    double_type = "DOUBLE"  # MySQL's CAST knows no DOUBLE PRECISION
    protos_in_base64 = True  # MLMD keeps them as base64 text, in a MEDIUMBLOB

    def __init__(self, connect: Callable[[], Any]) -> None:
        self._connect = connect
        self._con: Any = connect()
        self._in_transaction = False
        self._commit_failed = False
        self._step: Optional[int] = None  # ids one multi-row INSERT hands out are this far apart

    def _execute(self, sql: str, values: Sequence[Any]) -> Tuple[List[Row], Any, int]:
        import pymysql

        # `?` -> `%s`, and a literal % doubled: PyMySQL formats every statement with `%`.
        text = sql.replace("%", "%%").replace("?", "%s")
        for attempt in (1, 2):
            if self._con is None:
                if self._in_transaction:  # never half a transaction on a new connection
                    raise pymysql.err.InterfaceError(0, "the connection was lost in this transaction")
                self._con = self._connect()
            try:
                with self._con.cursor() as cursor:
                    cursor.execute(text, tuple(to_stored(v) if type(v) is str else v for v in values))
                    rows = [tuple(from_stored(v) if type(v) is str else v for v in row)
                            for row in cursor.fetchall()]
                    return rows, cursor.lastrowid, cursor.rowcount
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

    def in_list(self, column: str, values: Sequence[Any]) -> Tuple[str, List[Any]]:
        # MySQL has no array parameter: one placeholder per value.
        if not values:
            return "1 = 0", []
        return f"{column} IN ({', '.join('?' for _ in values)})", list(values)

    def tables(self) -> List[str]:
        return [r[0] for r in self.run("SELECT table_name FROM information_schema.tables WHERE "
                                       "table_schema = DATABASE() AND table_type = 'BASE TABLE'")]

    def begin(self) -> None:
        self._commit_failed = False
        self.run("BEGIN")  # on a new connection if the old one was lost meanwhile
        self._in_transaction = True

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
