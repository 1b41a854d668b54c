"""Opening a store: an address -> its engine's opening module -> a `Store` with a `Backend`.

Each engine is opened top to bottom by one module (`sqlite.py`, `postgres.py`, `mysql.py`,
the servers' shared procedure in `server.py`), each choosing its backend from an explicit
table (`BACKENDS`: ml-metadata or the native one). Every way a store can fail to open becomes
one `StoreError` that names the store (password masked), raised before anything is written
to a file or database that is not an MLMD store of ours, or whose schema version we do not
know.
"""

from __future__ import annotations

import os
from typing import Callable, Dict, List, Optional, TypeVar, Union

from mlmd_exercise.store import mysql, postgres, sqlite
from mlmd_exercise.store.address import DEFAULT_STORE, Location, default_location, parse_location
from mlmd_exercise.store.sqlite import read_sqlite
from mlmd_exercise.store.store import Store
from mlmd_exercise.store.tables import SCHEMA_VERSION, Run

__all__ = ["Store", "open_store", "read_sqlite", "damage", "readable", "answer", "Address", "ENGINES", "DEFAULT_STORE",
           "SCHEMA_VERSION"]

T = TypeVar("T")
Address = Union[Store, Location, str, os.PathLike, None]  # a store, or where one is (None: the default)
Opener = Callable[[Location, bool, bool, Optional[str]], Store]

# Location.scheme -> the module function that opens such a store: (location, create, upgrade, backend).
ENGINES: Dict[str, Opener] = {"sqlite": sqlite.open_sqlite, "postgresql": postgres.open_postgres,
                              "mysql": mysql.open_mysql}


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
    loc = parse_location(default_location() if location is None else location)
    return ENGINES[loc.scheme](loc, create, upgrade, backend)


def damage(location: Location) -> Optional[List[str]]:
    """What the database's own check finds damaged in the store's file, in its words; empty if
    nothing. None where there is no such check here: a server's store (the server keeps its own
    pages), or an SQLite file an ml-metadata store of this process holds."""
    return sqlite.damage(location) if location.is_sqlite else None


def readable(location: Location, *, upgrade: bool = False, backend: Optional[str] = None) -> Union[Location, Store]:
    """The store for a reader that takes an address or a store (`answer`): its address where
    plain SQL reads it alike whatever the backend (an SQLite file not to be upgraded: no store
    is opened); else the store, opened so (a named backend; MLMD's upgrade first)."""
    if not upgrade and (backend is None or location.is_sqlite):
        return location
    return open_store(location, upgrade=upgrade, backend=backend)


def answer(where: Address, by_sql: Callable[[Run, Location], Optional[T]], by_store: Callable[[Store], T],
           apart: Optional[Callable[[str], Optional[T]]] = None) -> T:
    """An answer read by plain SQL over MLMD's tables where that is safe and fast, else
    through the store's backend: the one place that rule is kept.

    Args:
        where: an open store, or a store's address (None: the default store).
        by_sql: the answer from `run(sql, *values)` (and the parsed address, to name it) on an
            SQLite file given by its address
            (no ml-metadata store open on it in this process, a schema our SQL knows), without
            opening the store at all; None where SQL cannot say.
        by_store: the answer from the store (opened, where an address was given).
        apart: for an open store whose SQLite file ml-metadata holds in this process (no plain
            SQL here: two SQLite libraries break each other's locks), the answer from a child
            process given the file's absolute path; None where it could not run.
    """
    if not isinstance(where, Store):
        loc = parse_location(default_location() if where is None else where)
        if loc.is_sqlite:
            found = read_sqlite(loc, lambda run: by_sql(run, loc))
            if found is not None:
                return found
        where = open_store(loc)
    path = where.location.path
    if apart is not None and path is not None and sqlite.held_by_mlmd(where.location):
        found = apart(str(path.resolve()))
        if found is not None:
            return found
    return by_store(where)
