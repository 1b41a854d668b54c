"""The native backend makes the same schema ml-metadata 1.17 makes, on SQLite, PostgreSQL and
MySQL: tables, columns, types, defaults, indexes, constraints, and the rows a new store holds."""

from __future__ import annotations

import sqlite3

import pytest

from mlmd_exercise.store.address import parse_location
from mlmd_exercise.store import open_store
from conftest import new_location
from raw_mlmd import config, metadata_store

# A new store's rows that are not ids handed out later: the schema version and MLMD's system types.
_ROWS = ("SELECT schema_version FROM MLMDEnv",
         "SELECT id, name, version, type_kind, description, input_type, output_type, external_id "
         "FROM Type ORDER BY id",
         "SELECT type_id, parent_type_id FROM ParentType ORDER BY 1, 2",
         "SELECT type_id, name, data_type FROM TypeProperty ORDER BY 1, 2")


def _sqlite_schema(path) -> dict:
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return {
            "objects": sorted(con.execute("SELECT type, name, tbl_name, sql FROM sqlite_master").fetchall(),
                              key=lambda r: (r[0], r[1])),
            "rows": [con.execute(q).fetchall() for q in _ROWS],
            "sequences": con.execute("SELECT name, seq FROM sqlite_sequence ORDER BY name").fetchall(),
            "journal": con.execute("PRAGMA journal_mode").fetchall(),
        }
    finally:
        con.close()


def _postgres_schema(location: str) -> dict:
    from mlmd_exercise.store.postgres import Admin

    loc = parse_location(location)
    admin = Admin(loc, loc.dbname)
    try:
        return {
            "columns": admin.run(
                "SELECT table_name, column_name, ordinal_position, data_type, is_nullable, column_default, "
                "character_maximum_length FROM information_schema.columns WHERE table_schema = 'public' "
                "ORDER BY table_name, ordinal_position"),
            "indexes": admin.run("SELECT tablename, indexname, indexdef FROM pg_indexes "
                                 "WHERE schemaname = 'public' ORDER BY tablename, indexname"),
            "constraints": admin.run(
                "SELECT conrelid::regclass::text, conname, contype, pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE connamespace = 'public'::regnamespace ORDER BY 1, 2"),
            "sequences": admin.run("SELECT sequence_name, data_type, start_value, increment "
                                   "FROM information_schema.sequences ORDER BY 1"),
            "rows": [admin.run(q) for q in _ROWS],
        }
    finally:
        admin.close()


def _mysql_schema(location: str) -> dict:
    """Each table as the server shows it (SHOW CREATE TABLE: columns, keys, engine, charset,
    the next AUTO_INCREMENT), and the rows."""
    from conftest import server_admin

    admin = server_admin(location)
    try:
        return {"tables": {t: admin.execute(f"SHOW CREATE TABLE `{t}`")[0][1] for t in sorted(admin.tables())},
                "rows": [admin.execute(q) for q in _ROWS]}
    finally:
        admin.close()


def _made_by_mlmd(location: str) -> None:
    loc = parse_location(location)
    if loc.is_sqlite:
        from mlmd_exercise.store import sqlite

        sqlite.checked(loc, create=True, upgrade=False).close()  # the package's WAL switch, as open_store does
        c = config(location)
        c.sqlite.connection_mode = c.sqlite.READWRITE_OPENCREATE
    else:
        from mlmd_exercise.store import mysql, postgres

        (mysql if loc.scheme == "mysql" else postgres).ensure_database(loc, create=True)
        c = config(location)
    store = metadata_store.MetadataStore(c)
    del store


def _schema(location: str) -> dict:
    loc = parse_location(location)
    if loc.is_sqlite:
        return _sqlite_schema(loc.path)
    return _mysql_schema(location) if loc.scheme == "mysql" else _postgres_schema(location)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql", "mysql"])
def test_native_schema_is_mlmds(backend, tmp_path):
    theirs, ours = new_location(backend, tmp_path), new_location(backend, tmp_path)
    _made_by_mlmd(theirs)
    open_store(ours, create=True, backend="native").close()
    expected, made = _schema(theirs), _schema(ours)
    assert made == expected
    assert made["rows"][0] in ([[10]], [(10,)])
    if backend == "mysql":  # the comparison saw every table, as the server shows it
        assert len(made["tables"]) == 15 and "utf8mb4_bin" in made["tables"]["Artifact"]


@pytest.mark.parametrize("backend", ["sqlite", "postgresql", "mysql"])
def test_ml_metadata_opens_a_native_store_without_changing_its_schema(backend, tmp_path):
    location = new_location(backend, tmp_path)
    open_store(location, create=True, backend="native").close()
    before = _schema(location)
    store = metadata_store.MetadataStore(config(location))
    assert store.get_artifact_types() == []
    del store
    assert _schema(location) == before
