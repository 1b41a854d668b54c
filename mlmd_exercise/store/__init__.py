"""Opening a store: an address -> the checks -> a `Backend` (store/backend.py).

Every way a store can fail to open becomes one `StoreError` that names the store
(password masked), raised before anything is written to a file or database that is
not an MLMD store of ours, or whose schema version we do not know.
"""

from __future__ import annotations

import contextlib
import os
import weakref
from typing import TYPE_CHECKING, Callable, Iterator, Optional, Union

from mlmd_exercise.errors import StoreError
from mlmd_exercise.store.address import DEFAULT_STORE, Location, default_location, parse_location
from mlmd_exercise.store.backend import Backend
from mlmd_exercise.store.sqlite import open_sqlite, read_sqlite
from mlmd_exercise.store.tables import SCHEMA_VERSION, holds_mlmd, pg_runner, refuse_version

if TYPE_CHECKING:
    from mlmd_exercise.store.catalog import Catalog

__all__ = ["Store", "open_store", "read_sqlite", "DEFAULT_STORE", "SCHEMA_VERSION"]


class Store:
    """An open MLMD store: where it lives, its backend, and the lock its writers share.

    `str(store)` names the store for messages, with any password masked.
    """

    def __init__(self, backend: Backend, location: Location, lock,
                 closer: Optional[Callable[[], None]] = None, admin: object = None) -> None:
        self.backend = backend
        self.location = location
        # PostgreSQL and MySQL: the package's own connection to the server (its locks, its
        # checks), beside the backend's; None for SQLite.
        self.admin = admin
        self._lock = lock
        self._catalog: Optional["Catalog"] = None
        if closer is not None:
            weakref.finalize(self, closer)

    def __str__(self) -> str:
        return str(self.location)

    def __repr__(self) -> str:
        return f"Store({str(self.location)!r})"

    @property
    def catalog(self) -> "Catalog":
        """Its types and contexts by name, looked up once (see `store.catalog`)."""
        if self._catalog is None:
            from mlmd_exercise.store.catalog import Catalog

            self._catalog = Catalog(self.backend, self.location)  # not self: no cycle keeps a store open
        return self._catalog

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        """Holds the store's write lock: one writer at a time across processes."""
        if self._lock is None:
            raise StoreError(f"store '{self}' was opened read-only")
        with self._lock:
            yield


def _open_postgres(loc: Location, create: bool, upgrade: bool, backend: Optional[str]) -> Store:
    from mlmd_exercise.store import postgres

    postgres.check_reachable(loc)
    postgres.ensure_database(loc, create)
    admin = postgres.Admin(loc, loc.dbname)
    try:
        lock = admin.lock("store")
        with lock:
            if holds_mlmd(admin.tables(), loc, create):
                refuse_version(admin.run("SELECT schema_version FROM mlmdenv")[0][0], loc, upgrade)
            from mlmd_exercise.store.choice import choose, connector

            # The schema is created (once) inside the lock, too.
            opened = connector(choose(backend, "postgresql"), "postgres")(loc, upgrade, pg_runner(admin.run))
    except BaseException:
        admin.close()
        raise

    def close() -> None:
        opened.close()
        admin.close()

    return Store(opened, loc, lock if create else None, close, admin)


def open_store(
    location: Union[str, os.PathLike, Location, None] = None,
    *,
    create: bool = False,
    upgrade: bool = False,
    backend: Optional[str] = None,
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
        backend: "mlmd" (Google's ml-metadata) or "native" (this package's own, on the
            same tables); default $MLMD_BACKEND, else ml-metadata where it is installed.

    Returns:
        The open store.

    Raises:
        StoreError: the address is bad; the store is missing, a directory, not a
            database, another application's database, damaged, read-only when
            asked to write, of an older or newer schema, unreachable, or refuses the login.
    """
    if isinstance(location, Location):
        loc = location
    else:
        loc = parse_location(default_location() if location is None else location)
    if loc.is_sqlite:
        return open_sqlite(loc, create, upgrade, backend)
    if loc.scheme == "mysql":
        from mlmd_exercise.store import mysql

        return mysql.open_mysql(loc, create, upgrade, backend)
    return _open_postgres(loc, create, upgrade, backend)
