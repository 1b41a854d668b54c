"""The native backend's dialect: what one database engine does its own way, behind one class.

Statements are written once, with `?` placeholders, in the SQL the three databases speak.
`Db` is one connection, and the one place where an engine's differences live: each engine's
subclass (`sqlite.SqliteDb`, `postgres.PostgresDb`, `mysql.MysqlDb`) runs the statements on its
driver (Python's sqlite3; psycopg's `%s` or pg8000's `$n`, which it rewrites them to; PyMySQL's `%s`),
hands out ids its way, makes MLMD's schema with its DDL, turns its driver's errors into the
package's (`translated`, by class and code, never by text) and says how it is tuned. Values
are always parameters, never text in a statement. A new engine is one more subclass.
"""

from __future__ import annotations

import base64
import contextlib
from typing import Any, Iterator, List, Optional, Sequence, Tuple

__all__ = ["Db", "Row", "insert_sql"]

Row = Tuple[Any, ...]


class Db:
    """One connection, in `?` SQL. Not thread-safe.

    The class attributes are what else differs between the databases:

    name: "sqlite", "postgresql" or "mysql" (Location.scheme).
    row_order: the column that gives rows in the order they were stored (an event path's
        steps have no number), or None where a plain scan does.
    double_type: the name CAST knows a double by.
    protos_in_base64: whether proto values are kept as base64 text, as ml-metadata writes them
        there (SQLite, and MySQL, whose BLOB gives it back as bytes), rather than as their raw
        bytes (PostgreSQL's BYTEA).
    typed_coalesce: COALESCE keeps each value's own type (SQLite), so that a run's identity
        properties are read one row per run (`tables.running_processes`).
    ddl, ddl_after_types: MLMD's schema, made by `schema.create_schema`: the statements that
        come before its system types, and those after them.
    ids_per_query: how many ids one `in_list` takes well (a list call a page of ids at a time).
    snapshot_sql: the statement that begins a read-only transaction whose reads all see one
        moment of the database (`snapshot`).
    holds_nul: whether its text columns store a NUL character (PostgreSQL's do not).
    number_marks: how a whole number and a double are bound where a filter query compares
        them with a property (store/where_sql.py): PostgreSQL types a parameter by the column
        it meets (20.5 against an integer column is refused, 2**40 overflows MLMD's 32-bit
        int_value), so there each is cast to its own type; SQLite binds typed values, and
        PyMySQL writes them out as literals.
    title: the database's name as its users know it.
    walk_span: the most hops one recursive query of a lineage walk goes (store/native/walk.py).
    """

    name = ""
    row_order: Optional[str] = None
    double_type = "DOUBLE PRECISION"
    protos_in_base64 = False
    typed_coalesce = False
    ddl: Tuple[str, ...] = ()
    ddl_after_types: Tuple[str, ...] = ()
    ids_per_query = 10000  # one parameter (SQLite's JSON, PostgreSQL's array) or one each (MySQL)
    snapshot_sql = "BEGIN"  # SQLite: a deferred transaction reads one snapshot of a WAL file
    holds_nul = True
    number_marks = ("?", "?")
    title = ""
    walk_span = 4096

    @staticmethod
    def stored_text(text: str) -> str:
        """`text` as ml-metadata's own client stores it in this database: what plain SQL
        binds to find text ml-metadata wrote (as it is, but on MySQL)."""
        return text

    def run(self, sql: str, *values: Any) -> List[Row]:
        raise NotImplementedError

    def send(self, sql: str, *values: Any) -> None:
        """Runs a statement whose rows, if any, nobody reads (an INSERT of properties, an
        UPDATE). A driver that can may send it without waiting for the server's answer, within
        a transaction, its error (if any) raised by the next statement that waits or the commit
        (psycopg's pipeline: `postgres.PsycopgDb`); here it is simply run."""
        self.run(sql, *values)

    def proto_param(self, raw: bytes) -> Any:
        """A serialized proto value as this database's proto_value column holds it, as
        ml-metadata writes it (see `protos_in_base64`)."""
        return base64.b64encode(raw).decode() if self.protos_in_base64 else raw

    def insert(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]],
               ids: bool = False, ignore: bool = False) -> List[int]:
        """Inserts rows; their new ids in order where `ids` (the table has an id column).
        `ignore`: rows that would break a UNIQUE constraint are left out (MLMD's
        insert-if-not-exist for associations and attributions)."""
        raise NotImplementedError

    def in_list(self, column: str, values: Sequence[Any]) -> Tuple[str, List[Any]]:
        """`column` among `values`, as SQL and its parameters. One value is `column = ?`
        whatever its type: a planner without statistics (an MLMD SQLite file has none) keeps
        an equality on the column's index, where a list parameter (SQLite's `json_each`) had it
        scan every node of the type, the version look-up by URI growing with the store."""
        if len(values) == 1:
            return f"{column} = ?", [values[0]]
        return self.among(column, values)

    def among(self, column: str, values: Sequence[Any]) -> Tuple[str, List[Any]]:
        """`column` among several `values` (or none), in this database's form of a list."""
        raise NotImplementedError

    def by_type(self, narrower: bool) -> str:
        """The test of a node's type (`n.type_id = ?`), as this engine's planner does best
        with it (`narrower`: the query also asks for a context's members, URIs or a property's
        values, which an index finds among far fewer nodes than a type holds)."""
        return "n.type_id = ?"

    def like(self, text: str) -> str:
        """A LIKE pattern that finds `text` anywhere (its own % and _ stay wildcards, as in
        ml-metadata's filter query; a backslash is a backslash)."""
        return "%" + text.replace("\\", "\\\\") + "%"  # PostgreSQL's and MySQL's LIKE escape with it

    def run_by_index(self, sql: str, *values: Any) -> List[Row]:
        """`run` of a statement whose joins must go node by node through the indexes, however
        the planner guesses (a recursive walk, `store/native/walk.py`): here as `run`."""
        return self.run(sql, *values)

    def temporary_table(self, name: str, columns: str) -> str:
        """The statement that makes a table of this connection alone, gone when it closes."""
        return f"CREATE TEMPORARY TABLE {name} ({columns})"

    def drop_temporary(self, name: str) -> str:
        """The statement that drops a `temporary_table`."""
        return f"DROP TABLE {name}"

    def emptied_temporary(self, name: str, columns: str) -> Tuple[str, ...]:
        """The statements that empty a `temporary_table` of these columns (no key), to be
        filled again: here a DELETE (SQLite's truncates; PostgreSQL prunes a page as it
        reads it)."""
        return (f"DELETE FROM {name}",)

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

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[None]:
        """One read-only transaction whose reads all see the database as it was at its first
        (a copy of the whole store while writers go on); nothing is written in it."""
        self.begin_snapshot()
        try:
            yield
        finally:
            self.rollback()

    def begin_snapshot(self) -> None:
        self.run(self.snapshot_sql)

    def proto_raw(self, stored: Any) -> bytes:
        """A proto value's bytes from what the proto_value column holds (`proto_param`'s inverse)."""
        return base64.b64decode(stored) if self.protos_in_base64 else bytes(stored)

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

    @classmethod
    def translated(cls, error: Exception, label: str, writing: bool, opening: bool) -> Optional[Exception]:
        """The package's error for one of this engine's driver (see `errors.translate`), or
        None where `error` is none of its."""
        return None


def insert_sql(table: str, columns: Sequence[str], ignore: bool, rows: int = 1) -> str:
    """A multi-row INSERT of `rows` rows; `ignore`: skipping duplicates (ON CONFLICT DO NOTHING)."""
    marks = "(" + ", ".join("?" for _ in columns) + ")"
    tail = " ON CONFLICT DO NOTHING" if ignore else ""
    return f"INSERT INTO {table}({', '.join(columns)}) VALUES {', '.join([marks] * rows)}{tail}"
