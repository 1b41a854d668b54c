"""Bad input, on both backends: one line naming the bad value, exit 2, the store unchanged."""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

import mlmd_exercise as mx
from conftest import PG_BASE, check, digest, mlmd_python, server_admin, write
from mlmd_exercise import workflow
from mlmd_exercise.store import choice
from mlmd_exercise.store.address import parse_location
from mlmd_exercise.store.postgres import Admin
from raw_mlmd import pb, raw_mlmd

ODD = "'; DROP TABLE Artifact; --"
TABLES = ("artifact", "execution", "event", "type", "context", "attribution", "association")


def snapshot(db: str):
    """What must not change: an SQLite file's bytes, or a server store's row counts."""
    if "://" not in db:
        # SQLite's -wal and -shm files come and go with any reader of a WAL store.
        return {p.name: digest(p) for p in sorted(Path(db).parent.iterdir())
                if p.is_file() and not p.name.endswith(("-wal", "-shm"))}
    admin = server_admin(db)
    try:
        return {t: admin.run(f"SELECT count(*) FROM {t}")[0][0] for t in TABLES}
    finally:
        admin.close()


# -- files (SQLite) ----------------------------------------------------------------------


def _demo_store(path: Path) -> Path:
    workflow.run_demo(mx.open_store(path, create=True), path.parent)
    return path


def _text(path):
    return write(path, "hello, not a database\n")


def _random(path):
    path.write_bytes(os.urandom(8192))
    return path


def _other_app(path):
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE invoices (amount INT)")
    con.commit()
    con.close()
    return path


def _truncated(path):
    _demo_store(path)
    # A store file cut short, as a full disk or a bad copy leaves it.
    code = f"import os; os.truncate({str(path)!r}, 20000)"
    subprocess.run([sys.executable, "-c", code], check=True)
    return path


def _old_schema(path):
    _demo_store(path)
    code = (
        "from ml_metadata.metadata_store import metadata_store as m\n"
        "from ml_metadata.proto import metadata_store_pb2 as pb\n"
        f"c = pb.ConnectionConfig(); c.sqlite.filename_uri = {str(path)!r}\n"
        "m.downgrade_schema(c, 8)\n"
    )
    subprocess.run([mlmd_python(), "-c", code], check=True)  # this Python, or the other virtualenv's
    return path


@pytest.mark.parametrize("make, command, message", [
    (lambda p: p.parent, "states", "'{path}' is a directory, not a store file"),
    (_text, "states", "'{path}' is not an SQLite database"),
    (_text, "run", "'{path}' is not an SQLite database"),
    (_random, "run", "'{path}' is not an SQLite database"),
    (_other_app, "run", "'{path}' is an SQLite database of another application (it has table 'invoices')"),
    (_other_app, "states", "'{path}' is an SQLite database of another application (it has table 'invoices')"),
    (_truncated, "states", "store '{path}' is damaged (database disk image is malformed): it was not changed"),
    (_truncated, "run", "store '{path}' is damaged (database disk image is malformed): it was not changed"),
    (_old_schema, "states", "store '{path}' has MLMD schema version 8, older than this MLMD's 10: it was "
                            "not changed; upgrade it with --upgrade-schema"),
    (_old_schema, "run", "--upgrade-schema (MLMD's enable_upgrade_migration)"),
], ids=["directory", "text", "text-run", "random-run", "other-app-run", "other-app", "truncated",
        "truncated-run", "old-schema", "old-schema-run"])
def test_bad_store_files(run_cli, tmp_path, make, command, message):
    store_dir = tmp_path / "store"
    store_dir.mkdir()
    path = make(store_dir / "m.db")
    work = tmp_path / "work"
    work.mkdir()
    before = snapshot(str(store_dir / "x"))
    args = ["run", "--workdir", work] if command == "run" else [command]
    result = run_cli(*args, "--db", path)
    check(result, message.format(path=path))
    assert snapshot(str(store_dir / "x")) == before
    assert list(work.iterdir()) == []  # refused before any work


def test_an_old_schema_is_upgraded_only_when_asked(run_cli, tmp_path):
    if choice.mlmd_missing():
        pytest.skip("only ml-metadata upgrades a schema, and it is not installed here")
    path = _old_schema(tmp_path / "m.db")
    assert run_cli("states", "--db", path).code == 2
    upgraded = run_cli("--upgrade-schema", "states", "--db", path)
    assert (upgraded.code, upgraded.out) == (0, "COMPLETE  1\n")
    assert run_cli("states", "--db", path).code == 0


def _without_root_powers(args, cwd):
    """Runs the CLI without the power to write any file, which root has: its DAC
    capabilities are dropped, so file modes apply as they do to a user."""
    command = [sys.executable, "-m", "mlmd_exercise", *map(str, args)]
    if os.geteuid() == 0:
        drop = "-dac_override,-dac_read_search"
        command = ["setpriv", f"--inh-caps={drop}", f"--bounding-set={drop}", *command]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=120)


def _read_only_store(path: Path) -> str:
    _demo_store(path)
    for p in path.parent.iterdir():
        p.chmod(0o444)  # the directory stays writable; the store file is not
    return "store '{path}' is read-only: cannot record into it"


def _empty_in_read_only_dir(path: Path) -> str:
    path.touch()
    path.parent.chmod(0o555)
    return "store '{path}' is read-only: cannot record into it"


def _new_in_read_only_dir(path: Path) -> str:
    path.parent.chmod(0o555)
    return "cannot create store '{path}': directory '{dir}' is read-only"


def _unreadable(path: Path) -> str:
    _demo_store(path)
    path.chmod(0o000)
    return "cannot read store '{path}': Permission denied"


def _read_only_lock_file(path: Path) -> str:
    _demo_store(path)
    Path(f"{path}.lock").chmod(0o444)  # the store is writable; its writers' lock is not
    return "cannot create lock file '{path}.lock': Permission denied"


@pytest.mark.parametrize("make", [_read_only_store, _empty_in_read_only_dir, _new_in_read_only_dir,
                                  _unreadable, _read_only_lock_file])
def test_a_store_that_cannot_be_written_is_refused_before_the_run(tmp_path, make):
    store_dir = tmp_path / "store"
    store_dir.mkdir()
    path = store_dir / "m.db"
    message = make(path).format(path=path, dir=store_dir)
    work = tmp_path / "work"
    work.mkdir()
    before = snapshot(str(path))
    try:
        proc = _without_root_powers(["run", "--workdir", work, "--db", path], cwd=tmp_path)
    finally:
        store_dir.chmod(0o755)  # so that pytest can clean up
        if path.exists():
            path.chmod(0o644)
    assert (proc.returncode, proc.stderr, proc.stdout) == (2, f"mlmd-exercise: error: {message}\n", "")
    assert list(work.iterdir()) == []  # found out before training, not after
    assert snapshot(str(path)) == before


# -- addresses and servers -----------------------------------------------------------------


@pytest.mark.parametrize("address, message", [
    ("redis://127.0.0.1/0", "unknown store scheme 'redis' in 'redis://127.0.0.1/0': use a file path, "
                            "sqlite:///path, postgresql://user:password@host:port/dbname "
                            "or mysql://user:password@host:port/dbname"),
    ("mysql://u:secret@127.0.0.1", "store address 'mysql://u:***@127.0.0.1' names no database"),
    ("mysql://u:secret@127.0.0.1:0x1/db", "bad port or host in store address 'mysql://u:***@127.0.0.1:0x1/db'"),
    ("mysql://u:secret@127.0.0.1/db?sslmode=require", "unknown option 'sslmode' in store address "
                                                     "'mysql://u:***@127.0.0.1/db?sslmode=require': only ssl_key"),
    ("mysql://u:secret@127.0.0.1/db?ssl_verify_server_cert=maybe",
     "ssl_verify_server_cert must be true or false, not 'maybe'"),
    ("mysql://u:secret@/db", "store address 'mysql://u:***@/db' names no host"),
    ("mysql://u:secret@127.0.0.1/my-db", "database name 'my-db' in store address 'mysql://u:***@127.0.0.1/my-db' "
                                        "cannot be used by MLMD on MySQL: use letters, digits, _ and $ only"),
    ("mysql://u:secret@127.0.0.1/" + "d" * 65, "longer than MySQL's 64 characters"),
    ("postgresql://u:secret@127.0.0.1:99999/db", "bad port or host in store address "
                                                 "'postgresql://u:***@127.0.0.1:99999/db'"),
    ("postgresql://u:secret@127.0.0.1:http/db", "bad port or host in store address "
                                                "'postgresql://u:***@127.0.0.1:http/db'"),
    ("postgresql://u:secret@127.0.0.1:5432", "store address 'postgresql://u:***@127.0.0.1:5432' names no database"),
    ("postgresql://u:secret@127.0.0.1/db?sslmode=maybe", "unknown sslmode 'maybe'"),
    ("postgresql://u:secret@127.0.0.1/db?timeout=3", "unknown option 'timeout'"),
    ("sqlite://host/x.db", "bad SQLite address 'sqlite://host/x.db'"),
])
def test_bad_addresses_are_named_with_the_password_masked(run_cli, tmp_path, address, message):
    for args in (["states"], ["run", "--workdir", tmp_path]):
        result = run_cli(*args, "--db", address)
        check(result, message)
        assert "secret" not in result.err
    assert list(tmp_path.iterdir()) == []


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreachable_server_fails_fast(run_cli):
    port = _free_port()  # nothing listens there
    start = time.monotonic()
    result = run_cli("states", "--db", f"postgresql://u:secret@127.0.0.1:{port}/db")
    check(result, f"cannot reach PostgreSQL at 127.0.0.1:{port} for store "
                  f"'postgresql://u:***@127.0.0.1:{port}/db': Connection refused")
    assert time.monotonic() - start < 30  # no retries: a bound a loaded machine keeps too


def test_a_server_that_never_answers_fails_within_seconds(run_cli):
    with socket.socket() as silent:  # accepts connections (the kernel does), says nothing
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        start = time.monotonic()
        result = run_cli("states", "--db", f"postgresql://u:secret@127.0.0.1:{port}/db")
        elapsed = time.monotonic() - start
    check(result, f"cannot connect to store 'postgresql://u:***@127.0.0.1:{port}/db'")
    assert "secret" not in result.err
    assert elapsed < 60  # its own 5 s, and the start of a Python on a loaded machine


needs_server = pytest.mark.skipif(not PG_BASE and not os.environ.get("MLMD_REQUIRE_POSTGRES"),
                                  reason="MLMD_TEST_POSTGRES is not set")


@needs_server
def test_a_wrong_password_is_refused_without_printing_it(run_cli):
    loc = parse_location(PG_BASE + "postgres")
    bad = f"postgresql://{loc.user}:not-the-password@{loc.host}:{loc.port}/anything"
    result = run_cli("states", "--db", bad)
    check(result, f"cannot connect to store 'postgresql://{loc.user}:***@{loc.host}:{loc.port}/anything': "
                  f"password authentication failed for user \"{loc.user}\"")
    assert "not-the-password" not in result.err


@needs_server
def test_missing_and_foreign_databases_on_the_server(run_cli, tmp_path):
    missing = PG_BASE + "no_such_db_" + str(os.getpid())
    check(run_cli("states", "--db", missing), "no database 'no_such_db_")
    foreign = PG_BASE + "foreign_" + str(os.getpid())
    loc = parse_location(foreign)
    admin = Admin(loc, "postgres")
    admin.run(f'CREATE DATABASE "{loc.dbname}"')
    admin.close()
    admin = Admin(loc, loc.dbname)
    admin.run("CREATE TABLE invoices (amount INT)")
    admin.close()
    for args in (["states"], ["run", "--workdir", tmp_path]):
        check(run_cli(*args, "--db", foreign),
              f"database '{loc.dbname}' of store '{loc}' belongs to another application "
              "(it has table 'invoices')")


# -- the same on both backends ---------------------------------------------------------------


@pytest.fixture
def demo_db(db, tmp_path):
    """A store on each backend with one demo run (artifacts 1 and 2, execution 1)."""
    workdir = tmp_path / "demo"
    workdir.mkdir()
    workflow.run_demo(mx.open_store(db, create=True), workdir)
    return db


@pytest.mark.parametrize("args, message", [
    (["lineage", "42"], "no execution with id 42 in {shown}"),
    (["lineage", "2"], "no execution with id 2 in {shown} (there is an artifact 2)"),
    (["lineage", "--artifact", "1", "--hops", "-1"], "hops must be 0 or more, not '-1'"),
    (["lineage", "-5"], "execution id must be positive, not '-5'"),
    (["show", "artifact", "77"], "no artifact with id 77 in {shown}"),
    (["metrics", "77"], "no execution with id 77 in {shown}"),
    (["metrics", "0"], "execution id must be positive, not '0'"),
    (["metrics", "1", ODD], f"execution 1 logged no metric '{ODD}' (its metrics: train_accuracy)"),
    (["graph", "--execution", "9", "-o", "{tmp}/g.svg"], "no execution with id 9 in {shown}"),
    (["ls", "executions", "--experiment", ODD], f"no experiment named '{ODD}' in {{shown}}"),
    (["ls", "artifacts", "--type", ODD], f"no artifact type named '{ODD}' in {{shown}}"),
    (["states", "--experiment", "x' OR 1=1 --"], "no experiment named 'x' OR 1=1 --' in {shown}"),
])
def test_bad_ids_and_names_on_both_backends(run_cli, demo_db, tmp_path, args, message):
    shown = str(parse_location(demo_db))
    before = snapshot(demo_db)
    result = run_cli(*[str(a).format(tmp=tmp_path) for a in args], "--db", demo_db)
    check(result, message.format(shown=shown), before, lambda: snapshot(demo_db))
    assert mx.count_by_state(mx.open_store(demo_db)) == {"COMPLETE": 1}  # Artifact et al. intact


def test_a_type_another_tool_declared_differently_is_left_as_it_is(run_cli, db, tmp_path):
    store = mx.open_store(db, create=True)
    other = pb.ArtifactType(name="DataSet")
    other.properties["split"] = pb.INT  # another tool's DataSet
    type_id = raw_mlmd(store).put_artifact_type(other)
    result = run_cli("run", "--workdir", tmp_path, "--db", db)
    assert result.code == 0, result.err
    stored = raw_mlmd(mx.open_store(db)).get_artifact_type("DataSet")
    assert (stored.id, dict(stored.properties)) == (type_id, {"split": pb.INT})  # unchanged
    [dataset] = raw_mlmd(mx.open_store(db)).get_artifacts_by_type("DataSet")
    assert dict(dataset.properties) == {}  # ours went into custom properties
    assert dataset.custom_properties["split"].string_value == "train"
    assert dataset.custom_properties["version"].int_value == 1
