"""MySQL (MariaDB) stores: what differs from PostgreSQL, on the throwaway server of scripts/with-mysql,
with both backends (the `base` fixture).

The guarantees both servers share (writers at once, killed writers, types never
twice, every query) run on MySQL through the `db` fixture in the other test
files; here are the logins, rights, sockets and locks of MySQL itself.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from typing import Iterator

import pytest

import mlmd_exercise as mx
from conftest import STORES, backend_of, check, server_admin, server_base, server_ca, write
from mlmd_exercise.store import mysql
from mlmd_exercise.store.address import parse_location
from raw_mlmd import pb, raw_mlmd


def _mlmd_connect():
    """The ml-metadata backend's connecting module (tests of it skip where it is missing)."""
    return pytest.importorskip("mlmd_exercise.store.mlmd.connect", reason="ml-metadata is not installed")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- without a server ------------------------------------------------------------------------


def test_an_unreachable_server_fails_fast(run_cli):
    port = _free_port()  # nothing listens there
    start = time.monotonic()
    result = run_cli("states", "--db", f"mysql://u:secret@127.0.0.1:{port}/db")
    check(result, f"cannot reach MySQL at 127.0.0.1:{port} for store "
                  f"'mysql://u:***@127.0.0.1:{port}/db': Connection refused")
    assert "secret" not in result.err
    assert time.monotonic() - start < 30  # no retries: a bound a loaded machine keeps too


def test_a_missing_socket_is_named(run_cli, tmp_path):
    sock = tmp_path / "no.sock"
    result = run_cli("states", "--db", f"mysql://u:secret@/db?unix_socket={sock}")
    check(result, f"cannot reach MySQL at socket {sock} for store 'mysql://u:***@/db?unix_socket={sock}'")


def test_a_server_that_never_answers_fails_within_seconds(run_cli):
    with socket.socket() as silent:  # accepts connections (the kernel does), says nothing
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        start = time.monotonic()
        result = run_cli("run", "--db", f"mysql://u:secret@127.0.0.1:{port}/db")
        elapsed = time.monotonic() - start
    check(result, f"cannot connect to store 'mysql://u:***@127.0.0.1:{port}/db': no answer within 5 s")
    assert "secret" not in result.err
    assert elapsed < 60  # its own 5 s, and the start of a Python on a loaded machine


def test_the_package_sql_gets_mlmds_table_names_and_pymysql_parameters():
    assert mysql.to_mysql("SELECT c.id FROM context c JOIN type t ON t.id = c.type_id "
                          "WHERE c.name = :v AND t.name LIKE '5%'") == (
        "SELECT c.id FROM Context c JOIN Type t ON t.id = c.type_id "
        "WHERE c.name = %(v)s AND t.name LIKE '5%%'")
    assert mysql.to_mysql("SELECT schema_version FROM mlmdenv") == "SELECT schema_version FROM MLMDEnv"
    assert mysql.to_mysql("SELECT 1 FROM executionproperty p") == "SELECT 1 FROM ExecutionProperty p"


def test_mlmds_connection_config_carries_every_option():
    loc = parse_location("mysql://ann:pw@db.example.org:3307/mlmd?ssl_ca=/ca.pem&ssl_cert=/c.pem"
                         "&ssl_key=/k.pem&ssl_capath=/certs&ssl_cipher=AES256-SHA&ssl_verify_server_cert=1")
    config = _mlmd_connect().mysql_config(loc).mysql
    assert (config.host, config.port, config.database, config.user, config.password) == (
        "db.example.org", 3307, "mlmd", "ann", "pw")
    assert config.skip_db_creation  # ours to make, once, under a lock
    ssl = config.ssl_options
    assert (ssl.ca, ssl.cert, ssl.key, ssl.capath, ssl.cipher, ssl.verify_server_cert) == (
        "/ca.pem", "/c.pem", "/k.pem", "/certs", "AES256-SHA", True)
    plain = _mlmd_connect().mysql_config(parse_location("mysql://ann@h/db?unix_socket=/run/m.sock")).mysql
    assert (plain.socket, plain.host) == ("/run/m.sock", "")  # MLMD aborts given both
    assert not plain.HasField("ssl_options")


# -- on the server ---------------------------------------------------------------------------


@pytest.fixture(params=[store for store in STORES if store.startswith("mysql")])
def base(request) -> Iterator[str]:
    """The test server's base URL: each test on the server runs with each backend (ml-metadata's
    where it is installed, and the native one)."""
    with backend_of(request.param):
        yield server_base("mysql")


def _name(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


@pytest.fixture
def root(base):
    """The test server's all-powerful user, on no database."""
    admin = server_admin(base + "x", database="")
    yield admin
    admin.close()


@pytest.fixture
def user(root, base):
    """A new user with no rights at all yet: (address base for it, its name)."""
    loc = parse_location(base + "x")
    name = _name("u")
    made = []
    for host in ("127.0.0.1", "localhost"):
        root.execute(f"CREATE USER '{name}'@'{host}' IDENTIFIED BY 'their-secret'")
        made.append(host)
    yield f"mysql://{name}:their-secret@{loc.host}:{loc.port}/", name
    for host in made:
        root.execute(f"DROP USER '{name}'@'{host}'")


def _grant(root, what: str, database: str, name: str) -> None:
    for host in ("127.0.0.1", "localhost"):
        root.execute(f"GRANT {what} ON {mysql.quote(database)}.* TO '{name}'@'{host}'")


def test_a_wrong_password_is_refused_without_printing_it(run_cli, base):
    loc = parse_location(base + "anything")
    bad = f"mysql://{loc.user}:not-the-password@{loc.host}:{loc.port}/anything"
    for args in (["states"], ["run"]):
        result = run_cli(*args, "--db", bad)
        check(result, f"cannot connect to store 'mysql://{loc.user}:***@{loc.host}:{loc.port}/anything': "
                      f"Access denied for user '{loc.user}'@")
        assert "not-the-password" not in result.err


def test_a_missing_database_without_the_right_to_create_it(run_cli, user, tmp_path):
    address_base, name = user
    missing = address_base + _name("missing")
    shown = str(parse_location(missing))
    check(run_cli("states", "--db", missing), f"no database '{missing.rsplit('/', 1)[1]}' on the server "
                                             f"of store '{shown}'")
    result = run_cli("run", "--workdir", tmp_path, "--db", missing)
    check(result, f"cannot create database for store '{shown}': Access denied for user '{name}'@")
    assert "their-secret" not in result.err
    assert list(tmp_path.iterdir()) == []  # found out before training, not after


def test_a_user_who_may_only_read_reads_and_is_told_they_cannot_write(run_cli, user, base, root, tmp_path):
    address_base, name = user
    database = _name("readonly")
    tracker = mx.Tracker(base + database)
    with tracker.execution(inputs={"examples": tracker.dataset(write(tmp_path / "d.csv", "d"))}):
        pass
    del tracker
    _grant(root, "SELECT", database, name)
    theirs = address_base + database
    ok = run_cli("states", "--db", theirs)
    assert (ok.code, ok.out) == (0, "COMPLETE  1\n"), ok.err
    work = tmp_path / "work"
    work.mkdir()
    result = run_cli("run", "--workdir", work, "--db", theirs)
    check(result, f"store '{parse_location(theirs)}' is read-only for user '{name}': cannot record into it "
                  f"(INSERT command denied to user '{name}'@")
    assert list(work.iterdir()) == []
    assert mx.count_by_state(mx.open_store(base + database)) == {"COMPLETE": 1}


def test_a_new_store_without_the_right_to_make_tables_is_one_line(run_cli, user, base, root):
    address_base, name = user
    database = _name("notables")
    root.execute(f"CREATE DATABASE {mysql.quote(database)}")
    _grant(root, "SELECT, INSERT, UPDATE, DELETE", database, name)
    result = run_cli("run", "--db", address_base + database)
    check(result, f"cannot open store '{parse_location(address_base + database)}': ")
    assert "CREATE command denied" in result.err and "their-secret" not in result.err


@pytest.mark.parametrize("name", ["kill", "select", "123"])
def test_a_database_name_mlmd_cannot_use_is_refused_before_anything_is_made(run_cli, base, root, name):
    address = base + name
    check(run_cli("run", "--db", address),
          f"database name '{name}' of store '{parse_location(address)}' is a reserved word or a number "
          "on this server, which MLMD cannot use (it does not quote it): choose another name")
    assert not root.execute("SELECT 1 FROM information_schema.schemata WHERE schema_name = %s", (name,))


def test_another_applications_database_is_refused(run_cli, base, root, tmp_path):
    database = _name("foreign")
    root.execute(f"CREATE DATABASE {mysql.quote(database)}")
    root.execute(f"CREATE TABLE {mysql.quote(database)}.invoices (amount INT)")
    loc = parse_location(base + database)
    for args in (["states"], ["run", "--workdir", tmp_path]):
        check(run_cli(*args, "--db", base + database),
              f"database '{database}' of store '{loc}' belongs to another application (it has table 'invoices')")
    assert [r[0] for r in root.execute(f"SHOW TABLES FROM {mysql.quote(database)}")] == ["invoices"]


def test_a_store_through_the_servers_socket(base, tmp_path):
    sock = os.environ.get("MLMD_TEST_MYSQL_SOCKET")
    if not sock:
        pytest.skip("MLMD_TEST_MYSQL_SOCKET is not set (scripts/with-mysql sets it)")
    loc = parse_location(base + "x")
    address = f"mysql://{loc.user}:{loc.password}@/{_name('sock')}?unix_socket={sock}"
    tracker = mx.Tracker(address)
    with tracker.execution(inputs={"examples": tracker.dataset(write(tmp_path / "d.csv", "d"))}):
        pass
    assert mx.count_by_state(address) == {"COMPLETE": 1}
    assert str(mx.open_store(address)) == f"mysql://{loc.user}:***@/{address.split('/', 3)[3]}"


def test_the_package_sql_runs_as_written_with_and_without_parameters(base):
    store = mx.open_store(base + _name("sql"), create=True)
    assert store.admin.run("SELECT schema_version FROM mlmdenv") == [(10,)]
    assert store.admin.run("SELECT '5%', COUNT(*) FROM type WHERE name LIKE 'D%'") == [("5%", 0)]
    assert store.admin.run("SELECT :a, '%' FROM mlmdenv", a="it's :b") == [("it's :b", "%")]


def test_the_database_is_made_with_exact_names(base, root):
    database = _name("exact")
    store = mx.open_store(base + database, create=True)
    [(charset, collation)] = root.execute(
        "SELECT default_character_set_name, default_collation_name FROM information_schema.schemata "
        "WHERE schema_name = %s", (database,))
    assert (charset, collation) == ("utf8mb4", "utf8mb4_bin")
    # Names that differ only in case are two types, as on SQLite and PostgreSQL.
    raw = raw_mlmd(store)
    raw.put_artifact_type(pb.ArtifactType(name="Model"))
    raw.put_artifact_type(pb.ArtifactType(name="model"))
    assert sorted(t.name for t in raw.get_artifact_types()) == ["Model", "model"]


HOLD = ("import sys, time; from mlmd_exercise.store import mysql; "
        "from mlmd_exercise.store.address import parse_location; "
        "a = mysql.Admin(parse_location(sys.argv[1]), None); lock = a.lock('store'); lock.__enter__(); "
        "print('held', flush=True); time.sleep(600)")


def test_the_writers_lock_excludes_others_and_dies_with_its_holder(base):
    address = base + _name("lock")
    loc = parse_location(address)
    key = mysql.lock_name(loc.dbname, "store")
    holder = subprocess.Popen([sys.executable, "-c", HOLD, address], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        mine = mysql.Admin(loc, None)
        assert mine.execute("SELECT IS_FREE_LOCK(%s)", (key,))[0][0] == 0  # another session holds it
        os.kill(holder.pid, signal.SIGKILL)  # a writer killed mid-write...
        holder.wait(10)
        with mine.lock("store"):  # ... frees the lock with its connection
            with mine.lock("store"):  # re-entrant within a process
                assert mine.execute("SELECT IS_USED_LOCK(%s) = CONNECTION_ID()", (key,))[0][0] == 1
            assert mine.execute("SELECT IS_USED_LOCK(%s) = CONNECTION_ID()", (key,))[0][0] == 1
        assert mine.execute("SELECT IS_FREE_LOCK(%s)", (key,))[0][0] == 1
        mine.close()
    finally:
        holder.kill()
        holder.wait(10)


def test_a_connection_the_server_closed_is_opened_again_unless_it_held_the_lock(base, root, tmp_path):
    tracker = mx.Tracker(base + _name("gone"))
    admin = tracker.store.admin  # the store's own connection: its lock and its SQL
    [(first,)] = admin.execute("SELECT CONNECTION_ID()")
    root.execute(f"KILL CONNECTION {first}")  # as the server does after wait_timeout (8 h idle)
    with tracker.execution(inputs={"examples": tracker.dataset(write(tmp_path / "d.csv", "d"))}):
        pass
    assert mx.count_by_state(tracker.store) == {"COMPLETE": 1}
    with tracker.store.writing():
        [(second,)] = admin.execute("SELECT CONNECTION_ID()")
        assert second != first
        root.execute(f"KILL CONNECTION {second}")  # the writers' lock dies with it...
        with pytest.raises(mx.StoreError, match="^lost the connection to store 'mysql://"):
            admin.execute("SELECT 1")  # ... so this writer must not carry on as if it held it
    assert mx.count_by_state(tracker.store) == {"COMPLETE": 1}  # and the next turn reconnects


@pytest.fixture
def ca(base) -> str:
    """The CA of the test server's certificate (scripts/with-mysql makes one with openssl)."""
    return server_ca("mysql")


def test_a_store_over_tls_with_the_servers_ca(base, root, ca, tmp_path):
    address = f"{base}{_name('tls')}?ssl_ca={ca}"
    tracker = mx.Tracker(address)
    with tracker.execution(inputs={"examples": tracker.dataset(write(tmp_path / "d.csv", "d"))}):
        pass
    assert mx.count_by_state(address) == {"COMPLETE": 1}
    admin = mx.open_store(address).admin
    [(_, cipher)] = admin.execute("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
    assert cipher  # our connection is encrypted; MLMD's connected with the same options
    plain = server_admin(base + "x", database="")
    assert plain.execute("SHOW SESSION STATUS LIKE 'Ssl_cipher'")[0][1] == ""  # as MLMD's would be
    plain.close()


def test_a_user_who_must_use_tls_is_told_so_in_one_line(run_cli, user, root, ca):
    address_base, name = user
    for host in ("127.0.0.1", "localhost"):
        root.execute(f"GRANT ALL ON *.* TO '{name}'@'{host}'")
        root.execute(f"ALTER USER '{name}'@'{host}' REQUIRE SSL")
    database = _name("tlsonly")
    check(run_cli("states", "--db", address_base + database),
          f"cannot connect to store '{parse_location(address_base + database)}': Access denied for user '{name}'@")
    ok = run_cli("run", "--db", f"{address_base}{database}?ssl_ca={ca}")
    assert ok.code == 0, ok.err


def test_mlmds_refusal_without_a_reason_is_given_one():
    verify = parse_location("mysql://u:pw@h/db?ssl_ca=/ca.pem&ssl_verify_server_cert=true")
    bare = mx.StoreError(f"cannot open store '{verify}': mysql_real_connect failed: errno: , error: ")
    assert str(_mlmd_connect().mysql_refused(bare, verify)) == (
        "cannot open store 'mysql://u:***@h/db?ssl_ca=/ca.pem&ssl_verify_server_cert=true': MLMD's MySQL "
        "client could not connect and gave no reason: it refused to verify the server's certificate "
        "(ssl_verify_server_cert=true), which this package's own client accepted")
    other = mx.StoreError("cannot open store 'x': Unknown database 'x'")
    assert _mlmd_connect().mysql_refused(other, verify) is other
