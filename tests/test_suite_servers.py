"""The suite's own care for the shared machine: the server databases it makes are dropped, and
the store matrix can be narrowed (MLMD_TEST_MATRIX) for a pass that repeats another's."""

import os
import subprocess
import sys
from pathlib import Path

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
    second = location + "m1a2b"  # a test's second store, named after its first
    mx.open_store(second, create=True).close()
    drop_server_stores([location])
    assert not _exists(location, backend) and not _exists(second, backend)
    drop_server_stores([location])  # already gone: nothing to do, no error


def test_the_matrix_can_be_narrowed_to_sqlite_and_the_server_tests_stay(tmp_path):
    """.ci/run's second pass: MLMD_TEST_MATRIX=sqlite runs the store matrix on SQLite alone, while
    a test written for the servers is still collected; a name that is no database is refused."""
    here = Path(__file__).parent

    def collected(matrix: str) -> subprocess.CompletedProcess:
        env = {**os.environ, "MLMD_TEST_MATRIX": matrix}
        return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--co",
                               "tests/test_cli_queries.py", "tests/test_suite_servers.py"],
                              cwd=here.parent, env=env, capture_output=True, text=True, timeout=120)

    narrowed, whole = collected("sqlite"), collected("")
    assert narrowed.returncode == 0 and whole.returncode == 0, narrowed.stdout + whole.stdout
    ids = [line for line in narrowed.stdout.splitlines() if "::" in line]
    matrix = [i for i in ids if i.startswith("tests/test_cli_queries.py")]
    assert [i for i in matrix if "[sqlite" in i] and not [i for i in matrix if "[postgresql" in i or "[mysql" in i]
    assert [i for i in whole.stdout.splitlines() if "[postgresql" in i and "test_cli_queries" in i]
    assert "tests/test_suite_servers.py::test_a_server_store_is_dropped_even_while_a_connection_holds_it[mysql]" in ids
    wrong = collected("sqlite,oracle")
    assert wrong.returncode != 0 and "MLMD_TEST_MATRIX='sqlite,oracle': list some of sqlite,postgresql,mysql" in (
        wrong.stdout + wrong.stderr)
