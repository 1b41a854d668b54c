"""The suite's own care for the shared machine: the server databases it makes are dropped."""

import pytest

import mlmd_exercise as mx
from conftest import _SERVER_STORES, drop_server_stores, new_location, server_admin
from mlmd_exercise.store import mysql
from mlmd_exercise.store.address import parse_location


def _exists(location: str, backend: str) -> bool:
    loc = parse_location(location)
    name = loc.dbname
    if backend == "mysql":
        admin = mysql.Admin(loc, None)  # on no database: this one may be gone
        try:
            return bool(admin.execute("SELECT 1 FROM information_schema.schemata WHERE schema_name = %s", (name,)))
        finally:
            admin.close()
    admin = server_admin(location, "postgres")
    try:
        return bool(admin.run("SELECT 1 FROM pg_database WHERE datname = :name", name=name))
    finally:
        admin.close()


@pytest.mark.parametrize("backend", ["postgresql", "mysql"])
def test_a_server_store_is_dropped_even_while_a_connection_holds_it(backend, tmp_path):
    location = new_location(backend, tmp_path)
    assert location in _SERVER_STORES  # so the module's end drops it too
    store = mx.open_store(location, create=True)
    (tmp_path / "d.csv").write_text("x\n1\n")
    mx.Tracker(store).log_dataset(tmp_path / "d.csv")  # a store with rows, and still open
    assert _exists(location, backend)
    drop_server_stores([location])
    assert not _exists(location, backend)
    drop_server_stores([location])  # already gone: nothing to do, no error
