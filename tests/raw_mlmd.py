"""Raw ml-metadata on a store this package opened: what tests use to check what is
stored, exactly as any other MLMD client reads it (the package itself never hands
out an MLMD object).

Where ml-metadata is not installed (Python 3.12 and later, where only the native
backend runs), a test that reaches for it is skipped, and only that test: `pb`,
`mlmd_errors` and `metadata_store` here import ml-metadata when first used.
"""

from __future__ import annotations

from typing import Any

import pytest

from mlmd_exercise.store.address import Location, parse_location


class _Later:
    """A module imported on first use; a test that uses it is skipped without it."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__") or attr.startswith("pytest"):  # pytest looking at a module's names
            raise AttributeError(attr)
        module = pytest.importorskip(self._name, reason="ml-metadata is not installed: a check against it")
        return getattr(module, attr)


pb: Any = _Later("ml_metadata.proto.metadata_store_pb2")
mlmd_errors: Any = _Later("ml_metadata.errors")
metadata_store: Any = _Later("ml_metadata.metadata_store.metadata_store")


def config(location) -> Any:
    loc = location if isinstance(location, Location) else parse_location(str(location))
    c = pb.ConnectionConfig()
    if loc.is_sqlite:
        c.sqlite.filename_uri = str(loc.path)
        c.sqlite.connection_mode = pb.SqliteMetadataSourceConfig.READWRITE
    elif loc.scheme == "mysql":
        from mlmd_exercise.store.mlmd.connect import mysql_config

        c = mysql_config(loc)
    else:
        pg = c.postgresql
        pg.host, pg.port, pg.dbname = loc.host, str(loc.port), loc.dbname
        pg.user, pg.password = loc.user or "postgres", loc.password
        pg.skip_db_creation = True
    return c


def raw_mlmd(store) -> Any:
    """ml-metadata's own MetadataStore on the same store (an open Store, or an address).

    Skips the test where the native backend has the store's SQLite file open in this
    process: ml-metadata brings a second copy of SQLite, and two copies in one process
    break each other's locks (the package refuses it too). tests/test_native_differential.py
    and tests/test_native_crossread.py read native stores with ml-metadata in turn or in
    another process."""
    from mlmd_exercise.store import sqlite

    store_class = metadata_store.MetadataStore  # first: skips where ml-metadata is missing
    location = getattr(store, "location", store)
    loc = location if isinstance(location, Location) else parse_location(str(location))
    if sqlite.held_by_native(loc):
        pytest.skip("the native backend has this SQLite file open here: ml-metadata must not open it too")
    return store_class(config(location))
