"""Connecting: a store address -> MLMD `ConnectionConfig` -> `MetadataStore`.

Every way a store can fail to open becomes one `StoreError` that names the
store (password masked), raised before MLMD gets a chance to write anything to
a file or database that is not an MLMD store of ours.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sqlite3
import threading
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Dict, Iterator, Optional, TypeVar, Union

from mlmd_exercise.store.address import DEFAULT_STORE, Location, default_location, parse_location
from mlmd_exercise.errors import StoreError
from mlmd_exercise.store.locking import FileLock

if TYPE_CHECKING:
    from ml_metadata.metadata_store import metadata_store
    from ml_metadata.proto import metadata_store_pb2 as pb

__all__ = ["Store", "open_store", "read_sqlite", "DEFAULT_STORE", "SCHEMA_VERSION"]

log = logging.getLogger(__name__)

_SQLITE_MAGIC = b"SQLite format 3\x00"
# SqliteMetadataSourceConfig.ConnectionMode values (ml_metadata is imported only to connect,
# so that plain-SQL commands such as `states` do not pay for it; tests check these).
_READONLY, _READWRITE, _OPENCREATE = 1, 2, 3
_MLMD_TABLE = "MLMDEnv"  # MLMD keeps its schema version here: every MLMD store has it
SCHEMA_VERSION = 10  # the MLMD schema (ml-metadata 1.14 to 1.17) our plain SQL was checked against
T = TypeVar("T")

# SQLite files this process has an MLMD store open on. Python's sqlite3 must not
# open those: closing its connection would drop MLMD's POSIX locks on the file.
_open_files: Dict[str, int] = {}
# Re-entrant: a Store dropped while this thread holds the guard is closed by the garbage
# collector, in this thread, and its finalizer takes the guard again (a plain Lock hung there).
_open_files_guard = threading.RLock()
_stderr_guard = threading.Lock()


class Store:
    """An open MLMD store, where it lives, and the lock its writers share.

    `str(store)` names the store for messages, with any password masked.
    """

    def __init__(self, mlmd: "metadata_store.MetadataStore", location: Location, lock,
                 closer=None, sql=None) -> None:
        self.mlmd = mlmd
        self.location = location
        self._lock = lock
        # PostgreSQL and MySQL only: runs read-only SQL on a connection of its own
        # (pg8000's run(sql, **params), which mysql.Admin.run imitates); for SQLite,
        # see `read_sqlite`.
        self.sql = sql
        if closer is not None:
            weakref.finalize(self, closer)

    def __str__(self) -> str:
        return str(self.location)

    def __repr__(self) -> str:
        return f"Store({str(self.location)!r})"

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        """Holds the store's write lock: one writer at a time across processes."""
        if self._lock is None:
            raise StoreError(f"store '{self}' was opened read-only")
        with self._lock:
            yield


_PASSWORD_FIELD = re.compile(r'(password:\s*")((?:[^"\\]|\\.)*)(")')


def _redact(text: str, password: str = "") -> str:
    """The text with MLMD's `password: "..."` fields, and the password itself, masked."""
    text = _PASSWORD_FIELD.sub(r"\1***\3", text)
    return text.replace(password, "***") if password else text


class _RedactPasswords(logging.Filter):
    """MLMD's Python wrapper logs the whole ConnectionConfig, password included, at INFO."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "password" in message:
            record.msg, record.args = _redact(message), None
        return True


logging.getLogger("absl").addFilter(_RedactPasswords())


@contextlib.contextmanager
def _quiet_stderr(password: str) -> Iterator[None]:
    """Catches what MLMD's C++ layer writes to stderr (its PostgreSQL connection log)."""
    import tempfile

    with _stderr_guard, tempfile.TemporaryFile() as sink:
        saved = os.dup(2)
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            for line in sink.read().decode(errors="replace").splitlines():
                log.debug("mlmd: %s", _redact(line, password))


def _mlmd_reason(message: str) -> str:
    # MLMD says "Error when executing query: <reason> query: <sql>": keep the reason.
    prefix = "Error when executing query: "
    if message.startswith(prefix):
        message = message[len(prefix):].split(" query: ", 1)[0]
    return message.strip().splitlines()[0] if message.strip() else "unknown error"


def _connect(config: "pb.ConnectionConfig", loc: Location, upgrade: bool) -> "metadata_store.MetadataStore":
    from ml_metadata.metadata_store import metadata_store

    try:
        with _quiet_stderr(loc.password):
            return metadata_store.MetadataStore(config, enable_upgrade_migration=upgrade)
    except RuntimeError as e:
        reason = _redact(_mlmd_reason(str(e)), loc.password)
        log.debug("opening %s failed: %s", loc, reason)
        if "is older than library version" in reason:
            versions = reason.split(" is older than library version ")
            old, new = versions[0].rsplit(" ", 1)[-1], versions[1].split(".")[0]
            raise StoreError(
                f"store '{loc}' has MLMD schema version {old}, older than this MLMD's {new}: "
                f"it was not changed; upgrade it with --upgrade-schema "
                f"(MLMD's enable_upgrade_migration), after a backup"
            ) from None
        if "readonly database" in reason:
            raise StoreError(f"'{loc}' is not an MLMD store") from None
        raise StoreError(f"cannot open store '{loc}': {reason}") from None


# -- SQLite ---------------------------------------------------------------------------


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
                    then: Optional[Callable[[sqlite3.Connection], T]] = None) -> Optional[T]:
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
            return then(con) if then is not None else None
        finally:
            con.close()
    except sqlite3.DatabaseError as e:
        if "malformed" in str(e):
            raise StoreError(f"store '{loc}' is damaged (database disk image is malformed): "
                             "it was not changed") from None
        if "not a database" in str(e):
            raise StoreError(f"'{loc}' is not an SQLite database") from None
        raise StoreError(f"cannot open store '{loc}': {e}") from None


def _refuse_foreign(tables, loc: Location, create: bool) -> None:
    if _MLMD_TABLE in tables:
        return
    if tables:
        raise StoreError(
            f"'{loc}' is an SQLite database of another application (it has table "
            f"'{sorted(tables)[0]}'): refusing to add MLMD's tables to it"
        )
    if not create:
        raise StoreError(f"'{loc}' is not an MLMD store")


def _open_sqlite(loc: Location, create: bool, upgrade: bool) -> Store:
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
                    _inspect_sqlite(path, loc, create)
            from ml_metadata.proto import metadata_store_pb2 as pb

            config = pb.ConnectionConfig()
            config.sqlite.filename_uri = str(path)
            # An upgrade writes MLMD's new schema, so it cannot be read-only.
            config.sqlite.connection_mode = _OPENCREATE if create else _READWRITE if upgrade else _READONLY
            mlmd = _connect(config, loc, upgrade)
    except BaseException:
        if lock is not None:
            lock.close()
            if made_lock:  # leave nothing beside a file we refused
                lock_path.unlink(missing_ok=True)
        raise
    with _open_files_guard:
        _open_files[key] = _open_files.get(key, 0) + 1

    def close() -> None:
        with _open_files_guard:
            _open_files[key] -= 1
        if lock is not None:
            lock.close()

    return Store(mlmd, loc, lock, close)


def read_sqlite(location: Union[str, os.PathLike, Location], query: Callable[[sqlite3.Connection], T]
                ) -> Optional[T]:
    """Runs `query` with Python's sqlite3 on an SQLite MLMD store, read-only.

    Plain SQL over MLMD's tables can be far faster than MLMD's API, but it is
    only safe in a process with no MLMD store open on the same file (two SQLite
    libraries in one process break each other's locks), and only for a schema
    whose tables this package was checked against.

    Returns:
        What `query` returns, or None when this is not safe here: an MLMD store
        is open on the file in this process, or the store's schema version is
        not SCHEMA_VERSION.

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
                [(version,)] = con.execute(f"SELECT schema_version FROM {_MLMD_TABLE}").fetchall()
                return query(con) if version == SCHEMA_VERSION else None
            except sqlite3.DatabaseError as e:  # MLMD's API will say what is wrong, if anything
                log.debug("plain SQL on %s failed: %s", loc, e)
                return None

        return _inspect_sqlite(path, loc, create=False, then=checked_query)


# -- PostgreSQL -----------------------------------------------------------------------


def _open_postgres(loc: Location, create: bool, upgrade: bool) -> Store:
    from mlmd_exercise.store import postgres

    postgres.check_reachable(loc)
    postgres.ensure_database(loc, create)
    admin = postgres.Admin(loc, loc.dbname)
    try:
        lock = admin.lock("store")
        with lock:
            tables = admin.tables()
            if _MLMD_TABLE.lower() not in {t.lower() for t in tables}:
                if tables:
                    raise StoreError(
                        f"database '{loc.dbname}' of store '{loc}' belongs to another application "
                        f"(it has table '{sorted(tables)[0]}'): refusing to add MLMD's tables to it"
                    )
                if not create:
                    raise StoreError(f"database '{loc.dbname}' of store '{loc}' holds no MLMD store")
            from ml_metadata.proto import metadata_store_pb2 as pb

            config = pb.ConnectionConfig()
            pg = config.postgresql
            pg.host, pg.port, pg.dbname = loc.host, str(loc.port), loc.dbname
            pg.user, pg.password = loc.user or "postgres", loc.password
            pg.skip_db_creation = True  # made above, once, under a lock
            if loc.sslmode:
                pg.ssloption.sslmode = loc.sslmode
            # The schema is created (once) inside the lock, too.
            mlmd = _connect(config, loc, upgrade)
    except BaseException:
        admin.close()
        raise
    return Store(mlmd, loc, lock if create else None, admin.close, sql=admin.run)


# -- MySQL and MariaDB ----------------------------------------------------------------


def _open_mysql(loc: Location, create: bool, upgrade: bool) -> Store:
    """As _open_postgres, with MySQL's named locks: see store/mysql.py."""
    from mlmd_exercise.store import mysql

    return mysql.open_mysql(loc, create, upgrade)


def open_store(
    location: Union[str, os.PathLike, Location, None] = None,
    *,
    create: bool = False,
    upgrade: bool = False,
) -> Store:
    """Opens an MLMD store: an SQLite file, a PostgreSQL or a MySQL database.

    Args:
        location: a file path, `sqlite:///path` or
            `postgresql://user:password@host:port/dbname` or
            `mysql://user:password@host:port/dbname`; default $MLMD_STORE,
            else `metadata.db`.
        create: create the store if missing, and open it for writing. Without it
            the store must exist and is only read (SQLite opens read-only).
        upgrade: let MLMD migrate a store made by an older MLMD to its schema.

    Returns:
        The open store.

    Raises:
        StoreError: the address is bad; the store is missing, a directory, not a
            database, another application's database, damaged, read-only when
            asked to write, of an older schema, unreachable, or refuses the login.
    """
    if isinstance(location, Location):
        loc = location
    else:
        loc = parse_location(default_location() if location is None else location)
    if loc.is_sqlite:
        return _open_sqlite(loc, create, upgrade)
    if loc.scheme == "mysql":
        return _open_mysql(loc, create, upgrade)
    return _open_postgres(loc, create, upgrade)
