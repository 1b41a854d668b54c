"""SQLite stores: the checks before anyone opens a file, and plain SQL where it is safe.

A file is looked at with Python's sqlite3 before MLMD opens it: another application's
database, a damaged file or a schema version we do not know is refused, unchanged.
Python's sqlite3 must never open a file this process has an MLMD store open on (two
SQLite libraries in one process break each other's POSIX locks): the registry here
knows which files those are, and which backend holds each, so that one process never
opens a file with both backends at once either (the native one is Python's sqlite3).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Dict, Optional, TypeVar, Union

from mlmd_exercise.errors import StoreError
from mlmd_exercise.store.address import Location, parse_location
from mlmd_exercise.store.locking import FileLock
from mlmd_exercise.store import tables
from mlmd_exercise.store.tables import Run, refuse_version

if TYPE_CHECKING:
    from mlmd_exercise.store import Store

__all__ = ["MLMD_TABLE", "open_sqlite", "read_sqlite"]

log = logging.getLogger(__name__)

_SQLITE_MAGIC = b"SQLite format 3\x00"
MLMD_TABLE = "MLMDEnv"  # MLMD keeps its schema version here: every MLMD store has it
T = TypeVar("T")
_CORRUPT, _NOT_A_DATABASE = 11, 26  # SQLITE_CORRUPT, SQLITE_NOTADB

# SQLite files this process has an MLMD store open on, with how many ml-metadata holds
# (and how many the native backend). Python's sqlite3 must not open a file ml-metadata
# holds: closing its connection would drop MLMD's POSIX locks on the file.
_open_files: Dict[str, int] = {}
_native_files: Dict[str, int] = {}
# Re-entrant: a Store dropped while this thread holds the guard is closed by the garbage
# collector, in this thread, and its finalizer takes the guard again (a plain Lock hung there).
_open_files_guard = threading.RLock()


def _runner(con: sqlite3.Connection) -> Run:
    return lambda sql, *values: con.execute(sql, values).fetchall()


def _check_sqlite_path(path: Path, loc: Location, create: bool) -> None:
    """Checks the file before anyone opens it."""
    if path.is_dir():
        raise StoreError(f"'{loc}' is a directory, not a store file")
    parent = path.parent
    if not parent.is_dir():
        raise StoreError(f"directory '{parent}' for store '{loc}' does not exist")
    if not path.exists():
        if not create:
            raise StoreError(f"no MLMD store at '{loc}': record a run first "
                             "('mlmd-exercise run', or mlmd_exercise.Tracker in Python)")
        if not os.access(parent, os.W_OK):
            raise StoreError(f"cannot create store '{loc}': directory '{parent}' is read-only")
        return
    try:
        with path.open("rb") as f:
            header = f.read(len(_SQLITE_MAGIC))
    except OSError as e:
        raise StoreError(f"cannot read store '{loc}': {e.strerror}") from None
    if header and header != _SQLITE_MAGIC:
        raise StoreError(f"'{loc}' is not an SQLite database")
    if create and not (os.access(path, os.W_OK) and os.access(parent, os.W_OK)):
        # MLMD opens a read-only file happily and fails at its first write: say so now.
        raise StoreError(f"store '{loc}' is read-only: cannot record into it")


def _inspect_sqlite(path: Path, loc: Location, create: bool,
                    then: Optional[Callable[[sqlite3.Connection], T]] = None, upgrade: bool = False,
                    versions: bool = True) -> Optional[T]:
    """Looks at the tables with Python's sqlite3, then closes it before MLMD opens the file.

    Refuses another application's database and a damaged one; a new store is
    switched to WAL, which lets readers work while one writer commits. `then`,
    if given, runs on the same connection once the file has passed.
    """
    mode = "rwc" if create else "ro"
    try:
        con = sqlite3.connect(f"{path.resolve().as_uri()}?mode={mode}", uri=True, timeout=30)
        try:
            tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if create and not tables:
                con.execute("PRAGMA journal_mode=WAL")
            _refuse_foreign(tables, loc, create)
            if versions and MLMD_TABLE in tables:
                [(version,)] = con.execute(f"SELECT schema_version FROM {MLMD_TABLE}").fetchall()
                refuse_version(version, loc, upgrade)
            return then(con) if then is not None else None
        finally:
            con.close()
    except sqlite3.DatabaseError as e:
        # By SQLite's result code (Python 3.11 and later say it), else by SQLite's own
        # fixed wording for the two codes, which older Pythons give only as text.
        code = getattr(e, "sqlite_errorcode", None)
        if code == _CORRUPT or (code is None and "malformed" in str(e)):
            raise StoreError(f"store '{loc}' is damaged (database disk image is malformed): "
                             "it was not changed") from None
        if code == _NOT_A_DATABASE or (code is None and "not a database" in str(e)):
            raise StoreError(f"'{loc}' is not an SQLite database") from None
        raise StoreError(f"cannot open store '{loc}': {e}") from None


def _refuse_foreign(tables, loc: Location, create: bool) -> None:
    if MLMD_TABLE in tables:
        return
    if tables:
        raise StoreError(
            f"'{loc}' is an SQLite database of another application (it has table "
            f"'{sorted(tables)[0]}'): refusing to add MLMD's tables to it"
        )
    if not create:
        raise StoreError(f"'{loc}' is not an MLMD store")


def _refuse_both(key: str, loc: Location, backend: str) -> None:
    """Refuses to open a file with one backend while this process holds it with the other:
    ml-metadata brings its own copy of SQLite, and two copies in one process break each
    other's locks (a write can be lost). Different processes may use either at once."""
    with _open_files_guard:
        other = "native" if backend == "mlmd" else "mlmd"
        if (_native_files if other == "native" else _open_files).get(key):
            raise StoreError(f"store '{loc}' is open with the {other} backend in this process: "
                             f"close it before opening it with the {backend} backend")


def open_sqlite(loc: Location, create: bool, upgrade: bool, backend: Optional[str] = None) -> "Store":
    path = loc.path
    assert path is not None
    _check_sqlite_path(path, loc, create)
    key = os.path.realpath(path)
    lock_path = Path(f"{path}.lock")
    made_lock = create and not lock_path.exists()
    lock = FileLock(lock_path) if create else None
    try:
        with lock if lock is not None else contextlib.nullcontext():
            with _open_files_guard:
                if not _open_files.get(key):
                    _inspect_sqlite(path, loc, create, upgrade=upgrade)
            from mlmd_exercise.store.choice import choose, connector

            choice = choose(backend, "sqlite")
            _refuse_both(key, loc, choice.name)
            opened = connector(choice, "sqlite")(loc, create, upgrade)
    except BaseException:
        if lock is not None:
            lock.close()
            if made_lock:  # leave nothing beside a file we refused
                lock_path.unlink(missing_ok=True)
        raise
    # Only ml-metadata brings a second SQLite library into the process: a native store's
    # connection is Python's own sqlite3, which plain SQL may share the file with.
    registry = _open_files if opened.name == "mlmd" else _native_files
    with _open_files_guard:
        registry[key] = registry.get(key, 0) + 1

    def close() -> None:
        with _open_files_guard:
            registry[key] -= 1
        opened.close()
        if lock is not None:
            lock.close()

    from mlmd_exercise.store import Store

    return Store(opened, loc, lock, close)


def read_sqlite(location: Union[str, os.PathLike, Location], query: Callable[[Run], T]
                ) -> Optional[T]:
    """Runs `query` with Python's sqlite3 on an SQLite MLMD store, read-only.

    `query` gets `run(sql, *values)` (see `tables`). Plain SQL over MLMD's tables can be
    far faster than MLMD's API, but it is
    only safe in a process with no MLMD store open on the same file (two SQLite
    libraries in one process break each other's locks), and only for a schema
    whose tables this package was checked against.

    Returns:
        What `query` returns, or None when this is not safe here: an MLMD store
        is open on the file in this process, or the store's schema version is
        not `tables.SCHEMA_VERSION`.

    Raises:
        StoreError: as `open_store` would for this location.
    """
    loc = location if isinstance(location, Location) else parse_location(location)
    path = loc.path
    if path is None:
        return None
    _check_sqlite_path(path, loc, create=False)
    with _open_files_guard:
        if _open_files.get(os.path.realpath(path)):
            return None

        def checked_query(con: sqlite3.Connection) -> Optional[T]:
            try:
                return query(_runner(con)) if tables.known_schema(_runner(con)) else None
            except sqlite3.DatabaseError as e:  # MLMD's API will say what is wrong, if anything
                log.debug("plain SQL on %s failed: %s", loc, e)
                return None

        return _inspect_sqlite(path, loc, create=False, then=checked_query, versions=False)
