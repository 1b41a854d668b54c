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
from typing import Callable, Dict, List, Optional, Tuple, TypeVar, Union

from mlmd_exercise.errors import StoreError
from mlmd_exercise.store import choice, tables
from mlmd_exercise.store.address import Location, parse_location
from mlmd_exercise.store.backend import Backend
from mlmd_exercise.store.locking import FileLock
from mlmd_exercise.store.store import Store
from mlmd_exercise.store.tables import Run, refuse_version

__all__ = ["MLMD_TABLE", "BACKENDS", "open_sqlite", "read_sqlite", "damage", "backup", "refuse_dest", "finish_copy",
           "checked", "held_by_mlmd", "held_by_native", "open_files_guard"]

log = logging.getLogger(__name__)

_SQLITE_MAGIC = b"SQLite format 3\x00"
MLMD_TABLE = "MLMDEnv"  # MLMD keeps its schema version here: every MLMD store has it
T = TypeVar("T")
_CORRUPT, _NOT_A_DATABASE = 11, 26  # SQLITE_CORRUPT, SQLITE_NOTADB
# SQLite's primary result codes when it cannot make or map a -shm file: SQLITE_READONLY,
# SQLITE_IOERR, SQLITE_FULL, SQLITE_CANTOPEN.
_NO_SHM = (8, 10, 13, 14)
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


def _pending_wal(path: Path) -> bool:
    """Whether writes are still in the file's write-ahead log (not yet in the file itself)."""
    try:
        return os.stat(f"{path}-wal").st_size > 0
    except OSError:
        return False


def _no_shm(error: sqlite3.Error) -> bool:
    """Whether SQLite failed to make or map the -shm file a WAL reader needs (a read-only folder
    or medium, a full disk), by its result code, or on Pythons before 3.11 by its fixed words."""
    code = getattr(error, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in _NO_SHM
    return any(words in str(error) for words in ("unable to open", "disk is full", "disk I/O error",
                                                 "readonly database"))


def _connect(loc: Location, create: bool) -> Tuple[sqlite3.Connection, bool]:
    """A connection to the file and whether it reads the file as it is on disk (SQLite's
    `immutable`): only for a reader where SQLite cannot make its -shm file (a read-only folder
    or medium, a full disk) and the write-ahead log holds nothing, so nothing is missed and no
    file is made beside the store. Pending writes there are refused: they would be missed."""
    assert loc.path is not None
    uri = loc.path.resolve().as_uri()
    con = None
    try:
        con = sqlite3.connect(f"{uri}?mode={'rwc' if create else 'ro'}", uri=True, timeout=_BUSY_TIMEOUT,
                              isolation_level=None, check_same_thread=False)
        con.execute("SELECT count(*) FROM sqlite_master").fetchall()  # the first read opens the WAL
        return con, False
    except sqlite3.Error as e:
        if con is not None:
            con.close()
        if create or not _no_shm(e):
            raise (_refused(e, loc) if isinstance(e, sqlite3.DatabaseError)
                   else StoreError(f"cannot open store '{loc}': {e}")) from None
        if _pending_wal(loc.path):
            raise StoreError(f"cannot read store '{loc}': its latest writes are still in "
                             f"'{loc.path.name}-wal', which SQLite reads only where it can make "
                             f"'{loc.path.name}-shm' beside it (the folder or medium is read-only, "
                             "or the disk is full): copy the folder somewhere writable") from None
    con = sqlite3.connect(f"{uri}?mode=ro&immutable=1", uri=True, isolation_level=None,
                          check_same_thread=False)
    log.warning("store '%s' is read as it is on disk: SQLite cannot make '%s-shm' beside it "
                "(a read-only folder or medium, or a full disk); nothing is written there", loc, loc.path.name)
    return con, True


def _checked(loc: Location, create: bool, upgrade: bool, versions: bool = True
             ) -> Tuple[sqlite3.Connection, bool]:
    assert loc.path is not None
    # A writer holds the lock here: an empty file is not another writer's store being made.
    empty = create and loc.path.is_file() and loc.path.stat().st_size == 0 and not _pending_wal(loc.path)
    con, as_on_disk = _connect(loc, create)
    try:
        found = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if create and not found:
            if empty:
                raise StoreError(f"store '{loc}' is an empty file (0 bytes), not an MLMD store: nothing "
                                 "was written to it (a copy cut short?); delete it to start a new store there")
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
    return con, as_on_disk


def checked(loc: Location, create: bool, upgrade: bool, versions: bool = True) -> sqlite3.Connection:
    """A connection to the file once it has passed (read-only unless `create`), in
    autocommit mode: another application's database, a damaged one, an empty file to write
    into or an unknown schema version (`versions`) is refused; a new store is switched to WAL,
    which lets readers work while one writer commits. A reader where SQLite cannot make its
    -shm file reads the file as it is on disk (see `_connect`). check_same_thread=False: the
    native backend is used by one thread, but a Store dropped in it may be closed by the
    garbage collector in another."""
    return _checked(loc, create, upgrade, versions)[0]


class FileWatch:
    """The store's file as a writer opened it (device and inode): `check` refuses a write once
    the path names another file or none (the folder deleted, the file replaced by a restored
    copy), which SQLite would otherwise go on writing into, unlinked, every later run lost."""

    def __init__(self, loc: Location) -> None:
        assert loc.path is not None
        self.loc, self.path = loc, loc.path
        self.identity = self._identity()

    def _identity(self) -> Optional[Tuple[int, int]]:
        try:
            found = os.stat(self.path)
        except OSError:
            return None
        return found.st_dev, found.st_ino

    def check(self) -> None:
        """Raises StoreError if the path no longer names the file this writer opened."""
        now = self._identity()
        if now != self.identity:
            what = "deleted" if now is None else "replaced by another file"
            raise StoreError(f"store '{self.loc}' was {what} while this process recorded into it: this write "
                             "was not recorded; open the store again")


def _with_mlmd(loc: Location, create: bool, upgrade: bool) -> Backend:
    """ml-metadata on the file, once it has passed (looked at with Python's sqlite3 only where
    no ml-metadata store of this process holds the file: closing that connection would drop
    MLMD's locks; the first one here looked already)."""
    as_on_disk = False
    with open_files_guard:
        if not _open_files.get(os.path.realpath(str(loc.path))):
            con, as_on_disk = _checked(loc, create, upgrade)
            con.close()
    from mlmd_exercise.store.mlmd.connect import connect_sqlite

    assert loc.path is not None
    return connect_sqlite(loc, create, upgrade,
                          f"{loc.path.resolve().as_uri()}?mode=ro&immutable=1" if as_on_disk else None,
                          FileWatch(loc).check if create else None)


def _with_native(loc: Location, create: bool, upgrade: bool) -> Backend:
    """The native backend on the connection that looked at the file: one connection per open.
    An older schema is refused even with `upgrade`, which only ml-metadata does; a new store
    gets MLMD's schema, made once (BEGIN IMMEDIATE: two processes making one store make it once)."""
    from mlmd_exercise.store.native.backend import NativeBackend
    from mlmd_exercise.store.native.errors import translate
    from mlmd_exercise.store.native.schema import create_schema
    from mlmd_exercise.store.native.sqlite import SqliteDb

    db = SqliteDb(checked(loc, create, upgrade=False), FileWatch(loc).check if create else None)
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


def damage(loc: Location) -> Optional[List[str]]:
    """What SQLite's own check of the file finds damaged (`PRAGMA quick_check`: every page,
    every index entry against its table; 0.1 s for a 50,000-run store), in its words; empty if
    nothing. None where the file cannot be looked at here: an ml-metadata store of this
    process holds it (Python's sqlite3 there would break its locks)."""
    assert loc.path is not None
    _check_path(loc.path, loc, create=False)
    with open_files_guard:
        if _open_files.get(os.path.realpath(loc.path)):
            return None
        con = checked(loc, create=False, upgrade=False, versions=False)
        try:
            found = [line for r in con.execute("PRAGMA quick_check") for line in str(r[0]).splitlines()
                     if not line.startswith("*** in database")]
        except sqlite3.DatabaseError as e:  # a page so damaged that the check itself stops
            found = [str(e)]
        finally:
            con.close()
    return [] if found == ["ok"] else found


def refuse_dest(dest: Path) -> Path:
    """The `.partial` file a copy to the new file `dest` is written as, once `dest` may be made.

    Raises:
        StoreError: `dest` exists (a copy never replaces a file), or its folder does not.
    """
    if dest.exists() or dest.is_symlink():
        raise StoreError(f"'{dest}' exists already: a backup never replaces a file; name a new one")
    if not dest.parent.is_dir():
        raise StoreError(f"directory '{dest.parent}' for the backup '{dest}' does not exist")
    partial = dest.with_name(dest.name + ".partial")
    if partial.exists():
        raise StoreError(f"'{partial}' exists: another backup to '{dest}' is being written, or one was cut "
                         "short; delete it if none is running")
    return partial


def _not_copied(source: object) -> StoreError:
    return StoreError(f"store '{source}' is damaged: no backup was made ('mlmd-exercise check' says more)")


def finish_copy(partial: Path, dest: Path, source: object) -> int:
    """Checks the copy written as `partial` (SQLite's `quick_check`), syncs it, and gives it
    the name `dest`, never over a file another process made meanwhile; its size in bytes."""
    damaged = _not_copied(source)
    try:
        with contextlib.closing(sqlite3.connect(partial, isolation_level=None)) as con:
            whole = [r[0] for r in con.execute("PRAGMA quick_check")] == ["ok"]
        if not whole:
            raise damaged
        with partial.open("rb+") as f:
            os.fsync(f.fileno())
        os.link(partial, dest)
    except FileExistsError:
        raise StoreError(f"'{dest}' exists already: a backup never replaces a file; name a new one") from None
    except sqlite3.Error as e:  # a page so damaged that the check itself stops
        raise (damaged if "malformed" in str(e) else StoreError(f"cannot write the backup '{dest}': {e}")) from None
    finally:
        partial.unlink(missing_ok=True)
    _sync_folder(dest.parent)
    return dest.stat().st_size


def backup(loc: Location, dest: Path) -> int:
    """Copies the store to the new file `dest` as it is at one moment, what is still in its
    write-ahead log included, while other processes go on recording (SQLite's online backup,
    in one step: one read transaction for the whole copy); see `finish_copy`. Returns the
    copy's size in bytes.

    Raises:
        StoreError: the store cannot be read or is damaged, `dest` exists, or its folder is
            missing or cannot be written.
    """
    assert loc.path is not None
    if os.path.realpath(dest) == os.path.realpath(loc.path):
        raise StoreError(f"'{dest}' is the store itself")
    partial = refuse_dest(dest)
    _check_path(loc.path, loc, create=False)
    with open_files_guard:
        if _open_files.get(os.path.realpath(loc.path)):
            raise StoreError(f"store '{loc}' is open with ml-metadata in this process: back it up from another")
        source = checked(loc, create=False, upgrade=False)
        try:
            _copy(source, loc, partial, dest)
        finally:
            source.close()
    return finish_copy(partial, dest, loc)


def _copy(source: sqlite3.Connection, loc: Location, partial: Path, dest: Path) -> None:
    try:
        target = sqlite3.connect(partial, isolation_level=None)
    except sqlite3.Error as e:
        raise StoreError(f"cannot write the backup '{dest}': {e}") from None
    try:
        try:
            source.backup(target)
        finally:
            target.close()  # the copy's own -wal and -shm go with its connection
    except sqlite3.Error as e:
        partial.unlink(missing_ok=True)
        if isinstance(e, sqlite3.DatabaseError) and "malformed" in str(e):
            raise _not_copied(loc) from None
        raise StoreError(f"cannot write the backup '{dest}': {e}") from None
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def _sync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
