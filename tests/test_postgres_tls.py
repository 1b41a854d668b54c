"""PostgreSQL over TLS: each sslmode as libpq reads it, on every client the package opens a
PostgreSQL store with (pg8000, psycopg, ml-metadata's libpq), against scripts/with-postgres's
server, which takes TLS and plain connections alike with a certificate for 127.0.0.1 signed by a
throwaway CA ($MLMD_TEST_POSTGRES_CA).

What each mode gives is read from the server (pg_stat_ssl), not from the client: a session is
encrypted or it is not. The CA is trusted the way a user would trust theirs, through
$SSL_CERT_FILE (store addresses carry no sslrootcert).
"""

from __future__ import annotations

import ssl
import uuid
from typing import List, Tuple

import pytest

import mlmd_exercise as mx
from conftest import check, server_base, server_ca, tracked, write
from mlmd_exercise.store import postgres
from mlmd_exercise.store.address import parse_location

# sslmode -> whether the session is encrypted, on a server that offers TLS and takes plain too
ENCRYPTED = {"disable": False, "allow": False, "prefer": True, "": True, "require": True,
             "verify-ca": True, "verify-full": True}
CLIENTS = ["pg8000", "psycopg"]


@pytest.fixture
def ca() -> str:
    return server_ca("postgresql")


@pytest.fixture
def store(ca, monkeypatch) -> str:
    """A new store's address (no options), made with the native backend over plain TCP."""
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    address = tracked(server_base("postgresql").rstrip("/") + "/t_tls" + uuid.uuid4().hex[:12])
    mx.open_store(address + "?sslmode=disable", create=True, backend="native").close()
    return address


def _sessions(address: str) -> List[Tuple[str, bool]]:
    """(application name, encrypted) of every session on the store's database but the watcher's."""
    loc = parse_location(address)
    watcher = postgres.Admin(parse_location(address + "?sslmode=disable"), "postgres")
    try:
        rows = watcher.run("SELECT a.application_name, s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a "
                           "USING (pid) WHERE a.datname = :name", name=loc.dbname)
    finally:
        watcher.close()
    return sorted((name, ssl_on) for name, ssl_on in rows)


def _connect(client: str, address: str, monkeypatch) -> postgres.Admin:
    """The package's own connection to the store, on `client`'s driver (the native backend's
    own connection is on the same: postgres.native_db)."""
    if client == "psycopg":
        pytest.importorskip("psycopg")
    monkeypatch.setenv(postgres.ENV_DRIVER, client)
    loc = parse_location(address)
    return postgres.Admin(loc, loc.dbname)


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("mode", list(ENCRYPTED))
def test_each_sslmode_encrypts_as_libpq_would(store, ca, client, mode, monkeypatch):
    monkeypatch.setenv("SSL_CERT_FILE", ca)  # what verify-ca and verify-full check against
    connection = _connect(client, store + (f"?sslmode={mode}" if mode else ""), monkeypatch)
    try:
        assert _sessions(store) == [("mlmd_exercise", ENCRYPTED[mode])]
    finally:
        connection.close()


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("mode", ["verify-ca", "verify-full"])
def test_a_certificate_from_an_authority_not_trusted_here_is_refused_in_one_line(store, client, mode, run_cli,
                                                                                 monkeypatch):
    monkeypatch.setenv(postgres.ENV_DRIVER, client)
    if client == "psycopg":
        pytest.importorskip("psycopg")
    address = f"{store}?sslmode={mode}"
    result = run_cli("states", "--backend", "native", "--db", address)
    check(result, f"cannot connect to store '{parse_location(address)}': SSL error: certificate verify failed")
    assert parse_location(address).password not in result.err
    assert _sessions(store) == []


@pytest.mark.parametrize("client", CLIENTS)
def test_verify_full_checks_the_host_name_and_verify_ca_does_not(store, ca, client, run_cli, monkeypatch):
    monkeypatch.setenv("SSL_CERT_FILE", ca)
    monkeypatch.setenv(postgres.ENV_DRIVER, client)
    if client == "psycopg":
        pytest.importorskip("psycopg")
    by_name = store.replace("@127.0.0.1:", "@localhost:")  # the certificate names 127.0.0.1 alone
    assert run_cli("states", "--backend", "native", "--db", f"{by_name}?sslmode=verify-ca").code == 0
    result = run_cli("states", "--backend", "native", "--db", f"{by_name}?sslmode=verify-full")
    check(result, f"cannot connect to store '{parse_location(by_name + '?sslmode=verify-full')}': ")
    assert "localhost" in result.err.split("': ", 1)[1]  # the reason names the host it did not match


@pytest.mark.parametrize("client", CLIENTS)
def test_a_whole_run_recorded_and_read_over_verified_tls(store, ca, client, run_cli, tmp_path, monkeypatch):
    monkeypatch.setenv("SSL_CERT_FILE", ca)
    monkeypatch.setenv(postgres.ENV_DRIVER, client)
    if client == "psycopg":
        pytest.importorskip("psycopg")
    monkeypatch.setenv("MLMD_BACKEND", "native")
    address = f"{store}?sslmode=verify-full"
    tracker = mx.Tracker(address)
    with tracker.execution(inputs={"examples": tracker.dataset(write(tmp_path / "d.csv", "d"))}):
        pass
    assert {name: on for name, on in _sessions(store)} == {"mlmd_exercise": True}
    tracker.store.close()
    result = run_cli("states", "--backend", "native", "--db", address)
    assert result.code == 0 and "COMPLETE" in result.out, result


def test_tls_without_a_certificate_check_loads_no_authorities(store, monkeypatch):
    # pg8000 loaded the system's authorities, 27 ms a connection, twice for each command, for
    # a check that "prefer" and "require" never make.
    monkeypatch.setenv(postgres.ENV_DRIVER, "pg8000")
    loaded = []
    real = ssl.SSLContext.load_default_certs
    monkeypatch.setattr(ssl.SSLContext, "load_default_certs",
                        lambda self, *a, **k: loaded.append(1) or real(self, *a, **k))
    for mode in ("", "prefer", "require", "allow"):
        address = store + (f"?sslmode={mode}" if mode else "")
        mx.open_store(address, backend="native").close()
        connection = postgres.Admin(parse_location(address), parse_location(address).dbname)
        assert _sessions(store) == [("mlmd_exercise", ENCRYPTED[mode])]
        connection.close()
    assert loaded == []


def test_prefer_falls_back_to_plain_where_the_server_says_no_to_tls(store, monkeypatch):
    # A server without TLS answers the TLS request with "N": as libpq, carry on in plain.
    import pg8000.native

    real = pg8000.native.Connection.__init__

    def no_tls_here(self, *args, ssl_context=None, **kwargs):
        if ssl_context is not False:
            raise pg8000.native.InterfaceError("Server refuses SSL")
        real(self, *args, ssl_context=ssl_context, **kwargs)

    monkeypatch.setattr(pg8000.native.Connection, "__init__", no_tls_here)
    monkeypatch.setenv(postgres.ENV_DRIVER, "pg8000")
    connection = postgres.Admin(parse_location(store), parse_location(store).dbname)
    monkeypatch.undo()
    try:
        assert _sessions(store) == [("mlmd_exercise", False)]
    finally:
        connection.close()


def test_allow_takes_tls_where_the_server_refuses_plain(store, monkeypatch):
    # A server whose pg_hba.conf has hostssl lines alone refuses a plain session: as libpq, try TLS.
    import pg8000.native

    real = pg8000.native.Connection.__init__

    def tls_only_here(self, *args, ssl_context=None, **kwargs):
        if ssl_context is False:
            raise pg8000.native.DatabaseError({"S": "FATAL", "C": "28000", "M": "no pg_hba.conf entry: no encryption"})
        real(self, *args, ssl_context=ssl_context, **kwargs)

    monkeypatch.setattr(pg8000.native.Connection, "__init__", tls_only_here)
    monkeypatch.setenv(postgres.ENV_DRIVER, "pg8000")
    connection = postgres.Admin(parse_location(store + "?sslmode=allow"), parse_location(store).dbname)
    monkeypatch.undo()
    try:
        assert _sessions(store) == [("mlmd_exercise", True)]
    finally:
        connection.close()


@pytest.mark.parametrize("mode", ["disable", "allow", "prefer", "", "require", "verify-full"])
def test_ml_metadatas_backend_opens_each_sslmode_or_says_it_cannot_in_one_line(store, ca, mode, run_cli,
                                                                             monkeypatch):
    pytest.importorskip("ml_metadata")
    monkeypatch.setenv("SSL_CERT_FILE", ca)
    address = store + (f"?sslmode={mode}" if mode else "")
    result = run_cli("states", "--backend", "mlmd", "--db", address)
    if mode not in ("require", "verify-full"):
        assert result.code == 0, result  # in plain where its libpq has no TLS
    elif result.code != 0:  # the wheels' libpq has no TLS (1.17, 1.21)
        check(result, f"cannot open store '{parse_location(address)}': ml-metadata's PostgreSQL client has no "
                      f"TLS here, which sslmode={mode} needs: open the store with the native backend")
