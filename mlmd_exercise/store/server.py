"""Opening a store on a database server (PostgreSQL, MySQL): the procedure, written once.

Reachable within seconds; the database connected to at once where it is there, else made at
most once (or refused when missing and not to be made); then, under the store's lock (held by
the package's own connection, `Admin`): another application's tables are refused, a store of
a schema we do not know is refused, a reader-only user asked to record is told so, and the
backend connects (MLMD's schema made once, inside the lock, where the database is new). Each
engine's module (postgres.py, mysql.py) gives its own parts as a `Server`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Mapping, Optional, Protocol, Set

from mlmd_exercise.errors import StoreError
from mlmd_exercise.store import choice
from mlmd_exercise.store.address import Location
from mlmd_exercise.store.backend import Backend
from mlmd_exercise.store.locking import AdvisoryLock
from mlmd_exercise.store.store import Store
from mlmd_exercise.store.tables import holds_mlmd, refuse_version

if TYPE_CHECKING:
    from mlmd_exercise.store.native.sql import Db

__all__ = ["Admin", "Connect", "Server", "open_server", "native_on"]


class Admin(Protocol):
    """The package's own connection to a store's database: its lock, its checks, its SQL."""

    loc: Location

    def run(self, sql: str, **params: object) -> list: ...

    def query(self, sql: str, *values: object) -> list: ...

    def lock(self, *names: str) -> AdvisoryLock: ...

    def tables(self) -> Set[str]: ...

    def check_writable(self) -> None: ...

    def close(self) -> None: ...


# A backend's connect: (the location, create, upgrade, whether the database holds MLMD's schema
# already, the admin connection) -> the backend, under the store's lock.
Connect = Callable[[Location, bool, bool, bool, Admin], Backend]


@dataclass(frozen=True)
class Server:
    """What one database server engine brings to `open_server`."""

    database: str  # Location.scheme: "postgresql", "mysql"
    check_reachable: Callable[[Location], None]
    ensure_database: Callable[[Location, bool], None]
    admin: Callable[[Location, str], Admin]
    backends: Mapping[str, Connect]  # by name: store/choice.py chooses
    case_sensitive: bool = False  # its table names keep their case (MySQL's do, on Linux)
    # Refuses a database, on the package's connection to it, that the backends could not use
    # (a MySQL name MLMD cannot USE); ensure_database checks the same before it makes one.
    check_database: Callable[[Admin], None] = lambda admin: None


def open_server(server: Server, loc: Location, create: bool, upgrade: bool, backend: Optional[str]) -> Store:
    """Opens the store of `loc` on `server` (see the module's docstring)."""
    server.check_reachable(loc)
    admin = _admin(server, loc, create)
    try:
        lock = admin.lock("store")
        with lock:
            held = holds_mlmd(admin.tables(), loc, create, case_sensitive=server.case_sensitive)
            name = choice.opening(backend, server.database)
            if held:
                # ml-metadata migrates an older schema when asked; the native backend never does.
                refuse_version(admin.run("SELECT schema_version FROM MLMDEnv")[0][0], loc, upgrade and name == "mlmd")
                if create:
                    admin.check_writable()  # a reader-only user is told before anything is done
            opened = server.backends[name](loc, create, upgrade, held, admin)
    except BaseException:
        admin.close()
        raise

    def close() -> None:
        opened.close()
        admin.close()

    return Store(opened, loc, lock if create else None, close, admin)


def _admin(server: Server, loc: Location, create: bool) -> Admin:
    """The package's connection to the store's database. Where the database is there (most
    opens) it is the first connection made; else the server's maintenance connection makes the
    database, at most once under a lock of its own, or says why it cannot be opened (missing
    and not to be made, the login refused), and the connection is made after it. A store
    opened so took three connections where two do; and a user allowed on its own database
    alone, as managed servers often have it, could not open it at all."""
    try:
        admin = server.admin(loc, loc.dbname)
    except StoreError:  # no such database, or a refusal: the maintenance connection tells which
        server.ensure_database(loc, create)
        return server.admin(loc, loc.dbname)
    try:
        server.check_database(admin)
    except BaseException:
        admin.close()
        raise
    return admin


def native_on(db: "Db", loc: Location, create: bool, held: bool) -> Backend:
    """The native backend on `db`, the backend's own connection to the store's database, which
    `open_server` checked under the store's lock, still held: MLMD's schema is made where the
    database is new (`held` false), without taking that lock again (another session would
    wait for it forever). The native backend never migrates a schema; it writes only where
    the store was opened to (`create`)."""
    from mlmd_exercise.store.native.backend import NativeBackend
    from mlmd_exercise.store.native.errors import translate
    from mlmd_exercise.store.native.schema import create_schema

    try:
        if not held:
            with db.transaction():
                create_schema(db)
    except Exception as e:
        db.close()
        raise translate(e, str(loc), False, type(db), opening=True) from None
    except BaseException:
        db.close()
        raise
    return NativeBackend(db, str(loc), writable=create)
