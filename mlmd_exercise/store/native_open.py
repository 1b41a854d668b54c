"""Opening a store for the native backend: the same checks and refusals as opening it with
ml-metadata (`store/sqlite.py`, `store/postgres.py`, `store/mysql.py`), then MLMD's schema
where the store is new.

The native backend never migrates a schema: an older store is refused with the way to
upgrade it (ml-metadata's --upgrade-schema), a newer one is refused and left as it is.
"""

from __future__ import annotations

import functools
import sqlite3
from typing import Any, Optional

from mlmd_exercise.errors import StoreError
from mlmd_exercise.store.address import Location
from mlmd_exercise.store.native import NativeBackend, translate
from mlmd_exercise.store.native_schema import create_schema
from mlmd_exercise.store.native_sql import Db, PostgresDb, SqliteDb
from mlmd_exercise.store.sqlite import MLMD_TABLE, _check_sqlite_path, _inspect_sqlite
from mlmd_exercise.store.tables import holds_mlmd, refuse_version

__all__ = ["open_native", "connect_checked"]

_BUSY_TIMEOUT = 30.0  # seconds a writer waits for another's transaction, as the package's other SQLite opens
# Seconds one MySQL statement may take (the connection itself fails within mysql.CONNECT_TIMEOUT):
# longer than InnoDB's lock wait (50 s by default), after which the server answers itself.
_MYSQL_TIMEOUT = 120.0


def _open_sqlite(loc: Location, create: bool) -> NativeBackend:
    path = loc.path
    assert path is not None
    _check_sqlite_path(path, loc, create)
    # Another application's file, a damaged one or an unknown schema version is refused
    # here, unchanged; a new file is switched to WAL. upgrade=False: we never migrate.
    _inspect_sqlite(path, loc, create, upgrade=False)
    mode = "rwc" if create else "ro"
    try:
        # check_same_thread=False: the backend is used by one thread, but a Store dropped in
        # it may be closed by the garbage collector in another.
        con = sqlite3.connect(f"{path.resolve().as_uri()}?mode={mode}", uri=True, timeout=_BUSY_TIMEOUT,
                              isolation_level=None, check_same_thread=False)
    except sqlite3.Error as e:
        raise StoreError(f"cannot open store '{loc}': {e}") from None
    db = SqliteDb(con)
    try:
        if create:
            with db.transaction():  # BEGIN IMMEDIATE: two processes making one store make it once
                if not db.run("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", MLMD_TABLE):
                    create_schema(db.run, db.name)
    except sqlite3.Error as e:
        con.close()
        raise translate(e, str(loc), writing=True) from None
    return NativeBackend(db, str(loc), writable=create)


def _make_or_check(db: Db, loc: Location, create: bool) -> None:
    """Under the store's lock, which the caller holds: MLMD's schema made where the database
    is empty (and `create`), else an unknown schema version refused. Another application's
    database, or an empty one that must hold a store, is refused by `holds_mlmd`."""
    if holds_mlmd(db.tables(), loc, create, case_sensitive=db.name == "mysql"):
        refuse_version(db.run("SELECT schema_version FROM MLMDEnv")[0][0], loc, upgrade=False)
        return
    with db.transaction():
        create_schema(db.run, db.name)


def _server_db(loc: Location, admin=None) -> Db:
    """The backend's connection to the location's database: on PostgreSQL `admin`'s own
    (whose low-level call takes positional parameters: see PostgresDb), or a new one; on
    MySQL always a new one, which opens itself again when the server closed it."""
    if loc.scheme == "mysql":
        from mlmd_exercise.store import mysql
        from mlmd_exercise.store.native_mysql import MysqlDb

        return MysqlDb(functools.partial(mysql.connect, loc, loc.dbname, _MYSQL_TIMEOUT))
    from mlmd_exercise.store import postgres

    admin = admin or postgres.Admin(loc, loc.dbname)
    return PostgresDb(admin._con, admin.close)


def _failed(error: BaseException, loc: Location) -> BaseException:
    """What to raise for an error while opening: the package's error for a database's."""
    if isinstance(error, Exception):
        translated = translate(error, str(loc), writing=False, opening=True)
        if translated is not error:
            return translated
    return error


def _open_server(loc: Location, create: bool) -> NativeBackend:
    """PostgreSQL or MySQL: the checks and the lock of opening with ml-metadata
    (store/__init__.py, store/mysql.py), then MLMD's schema where the database is new."""
    from mlmd_exercise.store import mysql, postgres

    server: Any = mysql if loc.scheme == "mysql" else postgres
    server.check_reachable(loc)
    server.ensure_database(loc, create)  # made once, under a lock of its own
    admin = server.Admin(loc, loc.dbname)
    db: Optional[Db] = None
    try:
        # The same lock as opening with ml-metadata: the schema is made once.
        with admin.lock("store"):
            db = _server_db(loc, admin if server is postgres else None)
            _make_or_check(db, loc, create)
            if server is mysql and create:
                admin.check_writable()  # a reader-only user is told before anything is done
    except BaseException as e:
        if db is not None and server is mysql:
            db.close()
        admin.close()
        raise _failed(e, loc) from None
    if server is mysql:
        admin.close()  # on PostgreSQL, its connection is the backend's
    return NativeBackend(db, str(loc), writable=create)


def connect_checked(loc: Location) -> NativeBackend:
    """The native backend on a PostgreSQL or MySQL database that opening has made and checked
    (not another application's, not of another schema version) under the store's lock,
    which the caller still holds: MLMD's schema is made where missing, without taking that
    lock again (another session would wait for it forever)."""
    db = _server_db(loc)
    try:
        _make_or_check(db, loc, create=True)
    except BaseException as e:
        db.close()
        raise _failed(e, loc) from None
    return NativeBackend(db, str(loc), writable=True)


def open_native(location: Location, create: bool, upgrade: bool) -> NativeBackend:
    """Opens an MLMD store for the native backend.

    Args:
        location: the parsed store address.
        create: make the store if missing and open it for writing; else it must exist and
            is only read.
        upgrade: asked to migrate an older schema, which only ml-metadata does: an older
            store is refused either way, with the way to upgrade it.

    Raises:
        StoreError: the store is missing, a directory, not a database, another
            application's, damaged, read-only when asked to write, of another schema
            version, unreachable, or refuses the login.
    """
    del upgrade  # the refusal of an older schema says how to upgrade it with ml-metadata
    if location.is_sqlite:
        return _open_sqlite(location, create)
    return _open_server(location, create)
