"""Opening a store on a server: the store's own database is connected to first, and the
server's maintenance connection (which makes a missing database, once, under a lock) is made
only where that fails. Each open of a store that is there took three connections where two do,
and a user allowed on its own database alone could not open it at all."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import List

import pytest

import mlmd_exercise as mx
from conftest import check, new_location, server_base, write
from mlmd_exercise.store import mysql, postgres
from mlmd_exercise.store.address import parse_location

MODULES = {"postgresql": postgres, "mysql": mysql}
BACKENDS = ("native", "mlmd")


@pytest.fixture(params=[f"{s}-{b}" for s in MODULES for b in BACKENDS])
def server(request, monkeypatch) -> str:
    scheme, backend = request.param.split("-")
    server_base(scheme)  # skips where the suite has no such server
    if backend == "mlmd":
        pytest.importorskip("ml_metadata", reason="ml-metadata is not installed")
    monkeypatch.setenv("MLMD_BACKEND", backend)
    return scheme


def _calls(monkeypatch, scheme: str, refuse: bool = False) -> List[str]:
    """The databases the server's maintenance step (`ensure_database`) is asked for from now on;
    `refuse`: it fails the test instead."""
    module = MODULES[scheme]
    made: List[str] = []
    real = module.SERVER.ensure_database

    def ensure(loc, create: bool) -> None:
        made.append(loc.dbname)
        if refuse:
            raise AssertionError(f"the maintenance connection was made for database '{loc.dbname}', which exists")
        real(loc, create)

    monkeypatch.setattr(module, "SERVER", dataclasses.replace(module.SERVER, ensure_database=ensure))
    return made


def test_an_existing_store_is_opened_without_the_maintenance_connection(server, tmp_path: Path, monkeypatch,
                                                                        run_cli):
    location = new_location(server, tmp_path)
    tracker = mx.Tracker(location)
    with tracker.execution(inputs={"examples": tracker.dataset(write(tmp_path / "d.csv", "a\n"))}):
        pass
    tracker.store.close()
    _calls(monkeypatch, server, refuse=True)
    assert mx.count_by_state(location) == {"COMPLETE": 1}
    result = run_cli("states", "--db", location)
    assert (result.code, result.err) == (0, "") and "COMPLETE" in result.out
    again = mx.Tracker(location)  # opened to record: the same path
    with again.execution(inputs={"examples": again.dataset(write(tmp_path / "d.csv", "a\n"))}):
        pass
    again.store.close()
    assert mx.count_by_state(location) == {"COMPLETE": 2}


def test_a_missing_database_is_made_through_the_maintenance_connection(server, tmp_path: Path, monkeypatch):
    location = new_location(server, tmp_path)
    made = _calls(monkeypatch, server)
    assert mx.count_by_state(mx.open_store(location, create=True)) == {}
    assert made == [parse_location(location).dbname]
    made.clear()
    assert mx.count_by_state(location) == {}  # there now: connected to at once
    assert made == []


def test_a_missing_database_not_to_be_made_is_still_named(server, tmp_path: Path, run_cli):
    location = new_location(server, tmp_path)
    check(run_cli("states", "--db", location),
          f"no database '{parse_location(location).dbname}' on the server of store '{parse_location(location)}'")


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_existing_mysql_database_of_a_name_mlmd_cannot_use_is_refused(backend, tmp_path: Path, monkeypatch,
                                                                         run_cli):
    base = server_base("mysql")
    if backend == "mlmd":
        pytest.importorskip("ml_metadata", reason="ml-metadata is not installed")
    monkeypatch.setenv("MLMD_BACKEND", backend)
    root = mysql.Admin(parse_location(base + "x"), None)  # to no database
    name = "kill"
    root.execute(f"CREATE DATABASE IF NOT EXISTS {mysql.quote(name)}")
    try:
        check(run_cli("run", "--db", base + name, "--workdir", str(tmp_path)),
              f"database name '{name}' of store '{parse_location(base + name)}' is a reserved word or a number "
              "on this server, which MLMD cannot use (it does not quote it): choose another name")
        assert root.execute(f"SHOW TABLES FROM {mysql.quote(name)}") == []
    finally:
        root.execute(f"DROP DATABASE IF EXISTS {mysql.quote(name)}")
        root.close()
