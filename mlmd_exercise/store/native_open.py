"""Opening a store for the native backend: the same checks and refusals as opening it with
ml-metadata (`store/sqlite.py`, `store/postgres.py`), then MLMD's schema where the store is new.

The native backend never migrates a schema: an older store is refused with the way to
upgrade it (ml-metadata's --upgrade-schema), a newer one is refused and left as it is.
"""

from __future__ import annotations

import sqlite3

from mlmd_exercise.errors import StoreError
from mlmd_exercise.store.address import Location
from mlmd_exercise.store.native import NativeBackend, translate
from mlmd_exercise.store.native_schema import create_schema
from mlmd_exercise.store.native_sql import PostgresDb, SqliteDb
from mlmd_exercise.store.sqlite import MLMD_TABLE, _check_sqlite_path, _inspect_sqlite
from mlmd_exercise.store.tables import holds_mlmd, refuse_version

__all__ = ["open_native", "connect_checked_postgres"]

_BUSY_TIMEOUT = 30.0  # seconds a writer waits for another's transaction, as the package's other SQLite opens


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
            db.begin()  # BEGIN IMMEDIATE: two processes making one store make it once
            try:
                if not db.run("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", MLMD_TABLE):
                    create_schema(db.run, postgres=False)
                db.commit()
            except BaseException:
                db.rollback()
                raise
    except sqlite3.Error as e:
        con.close()
        raise translate(e, str(loc), writing=True) from None
    return NativeBackend(db, str(loc), writable=create)


def _open_postgres(loc: Location, create: bool) -> NativeBackend:
    from mlmd_exercise.store import postgres

    postgres.check_reachable(loc)
    postgres.ensure_database(loc, create)
    admin = postgres.Admin(loc, loc.dbname)
    # Its own connection, whose low-level call takes positional parameters (see PostgresDb).
    db = PostgresDb(admin._con, admin.close)
    try:
        # The same advisory lock as opening with ml-metadata: the schema is made once.
        with admin.lock("store"):
            if not holds_mlmd(admin.tables(), loc, create):
                db.begin()
                try:
                    create_schema(db.run, postgres=True)
                    db.commit()
                except BaseException:
                    db.rollback()
                    raise
            else:
                refuse_version(db.run("SELECT schema_version FROM MLMDEnv")[0][0], loc, upgrade=False)
    except BaseException as e:
        admin.close()
        if isinstance(e, Exception):
            translated = translate(e, str(loc), writing=False)
            if translated is not e:
                raise translated from None
        raise
    return NativeBackend(db, str(loc), writable=create)


def connect_checked_postgres(loc: Location, upgrade: bool) -> NativeBackend:
    """The native backend on a PostgreSQL database that opening has made and checked (not
    another application's) under the store's advisory lock, which the caller still holds:
    MLMD's schema is made where missing, an unknown version refused."""
    from mlmd_exercise.store import postgres

    del upgrade  # never migrated here: see `open_native`
    admin = postgres.Admin(loc, loc.dbname)
    db = PostgresDb(admin._con, admin.close)
    try:
        if MLMD_TABLE.lower() not in {t.lower() for t in admin.tables()}:
            db.begin()
            try:
                create_schema(db.run, postgres=True)
                db.commit()
            except BaseException:
                db.rollback()
                raise
        else:
            refuse_version(db.run("SELECT schema_version FROM MLMDEnv")[0][0], loc, upgrade=False)
    except BaseException as e:
        admin.close()
        if isinstance(e, Exception):
            translated = translate(e, str(loc), writing=False)
            if translated is not e:
                raise translated from None
        raise
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
    return _open_postgres(location, create)
