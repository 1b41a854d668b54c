"""Opening a store with the native backend, for `store/choice.py`: the same two functions as
`store/mlmd/connect.py`, called once the store's checks have passed (`store/sqlite.py`,
`store/__init__.py`)."""

from __future__ import annotations

from typing import Callable

from mlmd_exercise.store.address import Location
from mlmd_exercise.store.native import NativeBackend

__all__ = ["connect_sqlite", "connect_postgres", "connect_mysql"]


def connect_sqlite(loc: Location, create: bool, upgrade: bool) -> NativeBackend:
    """The native backend on the SQLite file of `loc` (its checks are cheap to repeat: an
    older schema is refused here even with `upgrade`, which only ml-metadata does)."""
    from mlmd_exercise.store.native_open import open_native

    return open_native(loc, create, upgrade)


def connect_postgres(loc: Location, upgrade: bool, sql: Callable[..., list]) -> NativeBackend:
    """The native backend on the PostgreSQL database of `loc`, which the caller made and
    checked under its advisory lock, still held: the schema is made here if missing,
    without taking that lock again (another session would wait for it forever)."""
    from mlmd_exercise.store.native_open import connect_checked

    del sql, upgrade  # the backend runs its SQL on a connection of its own; it never migrates
    return connect_checked(loc)


def connect_mysql(loc: Location, upgrade: bool, sql: Callable[..., list]) -> NativeBackend:
    """The native backend on the MySQL database of `loc`, which the caller made and checked
    under its named lock (GET_LOCK), still held: as `connect_postgres`."""
    from mlmd_exercise.store.native_open import connect_checked

    del sql, upgrade
    return connect_checked(loc)
