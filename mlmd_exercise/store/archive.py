"""A server's MLMD store copied whole into a new SQLite file: every table row by row, ids kept.

For the stores a team keeps on PostgreSQL or MySQL, and above all for the MLMD databases that
Kubeflow Pipelines leaves behind now that it has removed MLMD: the file is a plain MLMD store
that this package, ml-metadata and `sqlite3` read as they read the server, node for node (ids,
types, properties, events, contexts, times, other tools' own property names). The server is
only read, in one snapshot (`Db.snapshot`): writers there go on, and the copy is of one moment.
MLMD's schema is the same on every engine; what differs (MySQL's text as ml-metadata's latin1
client stores it, proto values as bytes or base64 text) is each dialect's, which reads and
writes plain values.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator, List, Sequence, Tuple

from mlmd_exercise.store.address import Location, parse_location

__all__ = ["backup", "archive_to_sqlite", "TABLES"]

# MLMD's tables (schema 10), parents before the rows that name them, each with the column
# its rows are read by, in windows (an id, or the node, type or event the row belongs to).
TABLES: Tuple[Tuple[str, str], ...] = (
    ("Type", "id"), ("TypeProperty", "type_id"), ("ParentType", "type_id"),
    ("Artifact", "id"), ("ArtifactProperty", "artifact_id"),
    ("Execution", "id"), ("ExecutionProperty", "execution_id"),
    ("Context", "id"), ("ContextProperty", "context_id"), ("ParentContext", "context_id"),
    ("Event", "id"), ("EventPath", "event_id"),
    ("Association", "id"), ("Attribution", "id"),
)
_WINDOW = 5000  # key values per read: a page of rows in memory, never the whole store


def backup(location: Location, dest: Path) -> int:
    """Any store copied whole into a new SQLite file `dest`, checked, named only once whole;
    its size in bytes. An SQLite store by SQLite's online backup (`sqlite.backup`), a server's
    in one snapshot, table by table with its ids (`archive_to_sqlite`)."""
    if location.is_sqlite:
        from mlmd_exercise.store.sqlite import backup as backup_sqlite

        return backup_sqlite(location, dest)
    return archive_to_sqlite(location, dest)


def _columns(sqlite_db, table: str) -> List[str]:
    return [r[1] for r in sqlite_db.run(f"PRAGMA table_info(`{table}`)")]


def _rows(source, table: str, key: str, columns: Sequence[str]) -> Iterator[List[tuple]]:
    """The table's rows, a window of key values at a time, in the key's order."""
    [(low, high)] = source.run(f"SELECT MIN({key}), MAX({key}) FROM {table}")
    if low is None:
        return
    listed = ", ".join(columns)
    for start in range(int(low), int(high) + 1, _WINDOW):
        rows = source.run(f"SELECT {listed} FROM {table} WHERE {key} >= ? AND {key} < ?",
                          start, start + _WINDOW)
        if rows:
            yield rows


def _copy(source, target, progress: Callable[[str, int], None]) -> int:
    """Every row of MLMD's tables from `source` into `target` (a new SQLite store made with
    MLMD's schema, in its own transaction); the number of rows. Proto values change form
    to the form the target keeps them in (bytes, or base64 text)."""
    copied = 0
    target.run("DELETE FROM Type")  # the system types a new store is made with: the server's own come
    for table, key in TABLES:
        columns = _columns(target, table)
        proto = columns.index("proto_value") if "proto_value" in columns else None
        done = 0
        for rows in _rows(source, table, key, columns):
            if proto is not None:
                rows = [_proto_as(row, proto, source, target) for row in rows]
            target.insert(table, columns, rows)
            done += len(rows)
            progress(table, done)
        copied += done
    return copied


def _proto_as(row: tuple, at: int, source, target) -> tuple:
    """The row with its proto value in the form the target keeps it in."""
    if row[at] is None:
        return row
    return row[:at] + (target.proto_param(source.proto_raw(row[at])),) + row[at + 1:]


def archive_to_sqlite(location: Location, dest: Path,
                      progress: Callable[[str, int], None] = lambda table, rows: None) -> int:
    """Copies the server store at `location` whole into the new SQLite file `dest` (see the
    module's docstring); `progress(table, rows)` is called after each page. Written as
    `dest.partial`, checked by SQLite, synced and only then named `dest`. Returns its size in
    bytes.

    Raises:
        StoreError: the store cannot be read, `dest` exists, or its folder is missing or
            cannot be written.
    """
    from mlmd_exercise.store import open_store
    from mlmd_exercise.store.sqlite import finish_copy, refuse_dest

    partial = refuse_dest(dest)
    source = open_store(location, backend="native")
    try:
        target = open_store(parse_location(str(partial)), create=True, backend="native")
        try:
            source_db, target_db = source.backend.db, target.backend.db  # type: ignore[attr-defined]
            with source_db.snapshot(), target_db.transaction():
                _copy(source_db, target_db, progress)
        finally:
            target.close()
    except BaseException:
        for leftover in (partial, Path(f"{partial}.lock"), Path(f"{partial}-wal"), Path(f"{partial}-shm")):
            leftover.unlink(missing_ok=True)
        raise
    finally:
        source.close()
    Path(f"{partial}.lock").unlink(missing_ok=True)
    return finish_copy(partial, dest, location)

