"""SQLite stores, opened top to bottom: the file's checks, the writers' lock, the backend.

A file is looked at with Python's sqlite3 once per open, before anything else touches it:
another application's database, a damaged file or a schema version we do not know is
refused, unchanged; a new store is switched to WAL. The native backend then goes on with that
same connection; ml-metadata gets the file once it is closed. Python's sqlite3 must never open
a file this process has an ml-metadata store open on (two SQLite libraries in one process
break each other's POSIX locks): the registry here knows which files those are, and which
backend holds each, so that one process never opens a file with both backends at once either
(the native one is Python's sqlite3). `read_sqlite` is plain SQL on a file where that is safe.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
from pathlib import Path
from typing import Callable, Dict, Optional, TypeVar, Union

from mlmd_exercise.errors import StoreError
from mlmd_exercise.store import choice, tables
from mlmd_exercise.store.address import Location, parse_location
from mlmd_exercise.store.backend import Backend
from mlmd_exercise.store.locking import FileLock
from mlmd_exercise.store.store import Store
from mlmd_exercise.store.tables import Run, refuse_version

__all__ = ["MLMD_TABLE", "BACKENDS", "open_sqlite", "read_sqlite", "checked", "held_by_mlmd", "held_by_native",
           "open_files_guard"]

log = logging.getLogger(__name__)

_SQLITE_MAGIC = b"SQLite format 3\x00"
MLMD_TABLE = "MLMDEnv"  # MLMD keeps its schema version here: every MLMD store has it
T = TypeVar("T")
_CORRUPT, _NOT_A_DATABASE = 11, 26  # SQLITE_CORRUPT, SQLITE_NOTADB
_BUSY_TIMEOUT = 30.0  # seconds a writer waits for another's transaction

# SQLite files this process has an MLMD store open on, with how many ml-metadata holds
# (and how many the native backend). Python's sqlite3 must not open a file ml-metadata
# holds: closing its connection would drop MLMD's POSIX locks on the file.
_open_files: Dict[str, int] = {}
_native_files: Dict[str, int] = {}
# Re-entrant: a Store dropped while this thread holds the guard is closed by the garbage
# collector, in this thread, and its finalizer takes the guard again (a plain Lock hung there).
open_files_guard = threading.RLock()


def _runner(con: sqlite3.Connection) -> Run:
    return lambda sql, *values: con.execute(sql, values).fetchall()


def _check_path(path: Path, loc: Location, create: bool) -> None:
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


def _refused(error: sqlite3.DatabaseError, loc: Location) -> StoreError:
    """What an SQLite error while looking at a file says about it: by SQLite's result code
    (Python 3.11 and later give it), else by SQLite's own fixed wording for the two codes,
    which older Pythons give only as text."""
    code = getattr(error, "sqlite_errorcode", None)
    if code == _CORRUPT or (code is None and "malformed" in str(error)):
        return StoreError(f"store '{loc}' is damaged (database disk image is malformed): it was not changed")
    if code == _NOT_A_DATABASE or (code is None and "not a database" in str(error)):
        return StoreError(f"'{loc}' is not an SQLite database")
    return StoreError(f"cannot open store '{loc}': {error}")


def _refuse_foreign(tables: set, loc: Location, create: bool) -> None:
    if MLMD_TABLE in tables:
        return
    if tables:
        raise StoreError(
            f"'{loc}' is an SQLite database of another application (it has table "
            f"'{sorted(tables)[0]}'): refusing to add MLMD's tables to it"
        )
    if not create:
        raise StoreError(f"'{loc}' is not an MLMD store")


def checked(loc: Location, create: bool, upgrade: bool, versions: bool = True) -> sqlite3.Connection:
    """A connection to the file once it has passed (read-only unless `create`), in
    autocommit mode: another application's database, a damaged one or an unknown schema
    version (`versions`) is refused; a new store is switched to WAL, which lets readers work
    while one writer commits. check_same_thread=False: the native backend is used by one
    thread, but a Store dropped in it may be closed by the garbage collector in another."""
    assert loc.path is not None
    mode = "rwc" if create else "ro"
    try:
        con = sqlite3.connect(f"{loc.path.resolve().as_uri()}?mode={mode}", uri=True, timeout=_BUSY_TIMEOUT,
                              isolation_level=None, check_same_thread=False)
    except sqlite3.Error as e:
        raise StoreError(f"cannot open store '{loc}': {e}") from None
    try:
        found = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if create and not found:
            con.execute("PRAGMA journal_mode=WAL")
        _refuse_foreign(found, loc, create)
        if versions and MLMD_TABLE in found:
            [(version,)] = con.execute(f"SELECT schema_version FROM {MLMD_TABLE}").fetchall()
            refuse_version(version, loc, upgrade)
    except BaseException as e:
        con.close()
        if isinstance(e, sqlite3.DatabaseError):
            raise _refused(e, loc) from None
        raise
    return con


def _with_mlmd(loc: Location, create: bool, upgrade: bool) -> Backend:
    """ml-metadata on the file, once it has passed (looked at with Python's sqlite3 only where
    no ml-metadata store of this process holds the file: closing that connection would drop
    MLMD's locks; the first one here looked already)."""
    with open_files_guard:
        if not _open_files.get(os.path.realpath(str(loc.path))):
            checked(loc, create, upgrade).close()
    from mlmd_exercise.store.mlmd.connect import connect_sqlite

    return connect_sqlite(loc, create, upgrade)


def _with_native(loc: Location, create: bool, upgrade: bool) -> Backend:
    """The native backend on the connection that looked at the file: one connection per open.
    An older schema is refused even with `upgrade`, which only ml-metadata does; a new store
    gets MLMD's schema, made once (BEGIN IMMEDIATE: two processes making one store make it once)."""
    from mlmd_exercise.store.native.backend import NativeBackend
    from mlmd_exercise.store.native.errors import translate
    from mlmd_exercise.store.native.schema import create_schema
    from mlmd_exercise.store.native.sqlite import SqliteDb

    db = SqliteDb(checked(loc, create, upgrade=False))
    try:
        if create:
            with db.transaction():
                if not db.run("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", MLMD_TABLE):
                    create_schema(db)
    except sqlite3.Error as e:
        db.close()
        raise translate(e, str(loc), True, SqliteDb) from None
    return NativeBackend(db, str(loc), writable=create)


# The backends that open an SQLite store, by name (store/choice.py chooses).
BACKENDS: Dict[str, Callable[[Location, bool, bool], Backend]] = {"mlmd": _with_mlmd, "native": _with_native}


def _refuse_both(key: str, loc: Location, backend: str) -> None:
    """Refuses to open a file with one backend while this process holds it with the other:
    ml-metadata brings its own copy of SQLite, and two copies in one process break each
    other's locks (a write can be lost). Different processes may use either at once."""
    with open_files_guard:
        other = "native" if backend == "mlmd" else "mlmd"
        if (_native_files if other == "native" else _open_files).get(key):
            raise StoreError(f"store '{loc}' is open with the {other} backend in this process: "
                             f"close it before opening it with the {backend} backend")


def open_sqlite(loc: Location, create: bool, upgrade: bool, backend: Optional[str] = None) -> Store:
    """Opens an SQLite store (see `open_store`): the file's checks, the lock file beside it
    for writers, the backend."""
    path = loc.path
    assert path is not None
    _check_path(path, loc, create)
    key = os.path.realpath(path)
    lock_path = Path(f"{path}.lock")
    made_lock = create and not lock_path.exists()
    lock = FileLock(lock_path) if create else None
    try:
        with lock if lock is not None else contextlib.nullcontext():
            name = choice.opening(backend, "sqlite")
            _refuse_both(key, loc, name)
            opened = BACKENDS[name](loc, create, upgrade)
    except BaseException:
        if lock is not None:
            lock.close()
            if made_lock:  # leave nothing beside a file we refused
                lock_path.unlink(missing_ok=True)
        raise
    # Only ml-metadata brings a second SQLite library into the process: a native store's
    # connection is Python's own sqlite3, which plain SQL may share the file with.
    registry = _open_files if opened.name == "mlmd" else _native_files
    with open_files_guard:
        registry[key] = registry.get(key, 0) + 1

    def close() -> None:
        with open_files_guard:
            registry[key] -= 1
        opened.close()
        if lock is not None:
            lock.close()

    return Store(opened, loc, lock, close)


def held_by_mlmd(loc: Location) -> bool:
    """Whether an ml-metadata store of this process holds the file (no plain SQL here then)."""
    return loc.path is not None and bool(_open_files.get(os.path.realpath(loc.path)))


def held_by_native(loc: Location) -> bool:
    """Whether a native-backend store of this process holds the file."""
    return loc.path is not None and bool(_native_files.get(os.path.realpath(loc.path)))


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
    _check_path(path, loc, create=False)
    with open_files_guard:
        if _open_files.get(os.path.realpath(path)):
            return None
        con = checked(loc, create=False, upgrade=False, versions=False)
        try:
            return query(_runner(con)) if tables.known_schema(_runner(con)) else None
        except sqlite3.DatabaseError as e:  # MLMD's API will say what is wrong, if anything
            log.debug("plain SQL on %s failed: %s", loc, e)
            return None
        finally:
            con.close()
