"""PostgreSQL stores, opened top to bottom: reachability, database creation, locks, checks, the
backend (`open_postgres`, through store/server.py's procedure).

The backend talks to the server for everything it stores; the package's own connection
(`Admin`) does what neither backend can do safely when several machines start at once: create
the database exactly once, hold an advisory lock around setup and writes, and look at the
schema before a backend touches it. Both it and the native backend's own connection are on
psycopg 3 where it imports, else pg8000, pure Python (`native_driver`, `$MLMD_PG_DRIVER`).
"""

from __future__ import annotations

import os
import re
import socket
import time
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Set

from mlmd_exercise.errors import StoreError
from mlmd_exercise.store.address import Location, root_certificates
from mlmd_exercise.store.backend import Backend
from mlmd_exercise.store.locking import AdvisoryLock, advisory_key
from mlmd_exercise.store.server import Connect, Server, native_on, open_server

if TYPE_CHECKING:
    import ssl

    from mlmd_exercise.store.native.postgres import PostgresDb
    from mlmd_exercise.store.server import Admin as AnyAdmin
    from mlmd_exercise.store.store import Store

__all__ = ["CONNECT_TIMEOUT", "BACKENDS", "SERVER", "ENV_DRIVER", "DRIVERS", "Admin", "check_reachable", "connect",
           "native_driver", "native_db", "ensure_database", "open_postgres"]

CONNECT_TIMEOUT = 5.0  # seconds: an unreachable server fails fast, never hangs
ENV_DRIVER = "MLMD_PG_DRIVER"  # the native backend's driver: psycopg (where it imports) or pg8000
DRIVERS = ("psycopg", "pg8000")
_MAINTENANCE_DBS = ("postgres", "template1")


def check_reachable(loc: Location) -> None:
    """Fails within CONNECT_TIMEOUT if nothing listens at the location's host and port."""
    _tcp(loc).close()


def _tcp(loc: Location) -> socket.socket:
    """A TCP connection to the location's server, made within CONNECT_TIMEOUT."""
    try:
        return socket.create_connection((loc.host, loc.port), timeout=CONNECT_TIMEOUT)
    except OSError as e:
        reason = "timed out" if isinstance(e, socket.timeout) else (e.strerror or str(e))
        raise StoreError(
            f"cannot reach PostgreSQL at {loc.host}:{loc.port} for store '{loc}': {reason}"
        ) from None


# sslmode as libpq reads it, for all three clients (pg8000, psycopg, ml-metadata's libpq):
# "disable" plain; "allow" plain, TLS if the server refuses plain; "prefer" (and no sslmode)
# TLS where the server offers it, else plain; "require" TLS, its certificate unchecked;
# "verify-ca" a certificate signed by an authority this machine trusts; "verify-full" that,
# for the host named. The authorities are Python's (address.root_certificates:
# $SSL_CERT_FILE where set), given to libpq too, since a store address has no sslrootcert.


def _unverified() -> "ssl.SSLContext":
    # TLS without a certificate check needs no authorities: loading the system's took 27 ms a
    # connection (pg8000 loads them for its default context, then checks nothing with them).
    global _UNVERIFIED
    if _UNVERIFIED is None:
        import ssl

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        _UNVERIFIED = context
    return _UNVERIFIED


_UNVERIFIED: Optional["ssl.SSLContext"] = None


def _tls_attempts(sslmode: str) -> List[Any]:
    """pg8000's ssl_context for each attempt in turn (False: plain), as libpq tries them."""
    if sslmode == "disable":
        return [False]
    if sslmode == "allow":
        return [False, _unverified()]
    if sslmode in ("", "prefer"):
        return [_unverified(), False]
    if sslmode == "require":
        return [_unverified()]
    import ssl

    roots = root_certificates(sslmode)
    context = ssl.create_default_context(cafile=None if roots == "system" else roots)
    context.check_hostname = sslmode == "verify-full"
    return [context]


def _message(error: Exception) -> str:
    import ssl

    diag = getattr(error, "diag", None)  # psycopg's: the server's fields
    if diag is not None and diag.message_primary:
        return str(diag.message_primary)
    if isinstance(error, ssl.SSLCertVerificationError):  # psycopg's words for the same refusal
        return f"SSL error: certificate verify failed: {error.verify_message}"
    if isinstance(error, ssl.SSLError):
        return f"SSL error: {error.reason or error}"
    detail = error.args[0] if error.args else error
    if isinstance(detail, dict):  # pg8000 passes the server's fields: M is the message
        return str(detail.get("M", detail))
    return str(detail)


def _socket(loc: Location) -> socket.socket:
    """A TCP connection to the server for pg8000, which makes its own without TCP_NODELAY: over
    TLS, its handshake's small writes then waited on delayed ACKs, 54 ms a connection, not 11."""
    sock = _tcp(loc)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    return sock


def connect(loc: Location, database: str) -> Any:
    """A pg8000 connection (`pg8000.native.Connection`, autocommit) to one database of the
    location's server; each read and write on it fails within CONNECT_TIMEOUT.

    Raises:
        StoreError: one line naming the store (password masked) and the server's reason.
    """
    import pg8000.native

    attempts = _tls_attempts(loc.sslmode)
    while True:
        context, sock = attempts.pop(0), _socket(loc)
        try:
            return pg8000.native.Connection(
                user=loc.user or "postgres", password=loc.password or None, host=loc.host,
                port=loc.port, database=database, timeout=CONNECT_TIMEOUT, sock=sock,
                ssl_context=context, application_name="mlmd_exercise",
            )
        except Exception as e:  # pg8000 raises InterfaceError or DatabaseError
            # The next way is tried where the server said no to this one (libpq's order), not
            # where it could not be reached in time.
            sock.close()
            said_no = isinstance(e, pg8000.native.DatabaseError) or str(e) == "Server refuses SSL"
            if not attempts or not said_no:
                raise StoreError(f"cannot connect to store '{loc}': {_message(e)}") from None


class Admin:
    """The package's own connection to one database of the location's server, on the native
    backend's driver (`native_db`): a command loads one PostgreSQL driver, not two (pg8000 took
    98 ms to import beside psycopg's 143)."""

    def __init__(self, loc: Location, database: str) -> None:
        self.loc = loc
        self._db = native_db(loc, database)
        self._prepared: Dict[str, Callable[..., list]] = {}

    def run(self, sql: str, **params: Any) -> list:
        """The rows of `sql`, its `:name` parameters taken from `params`."""
        if not params:
            return self._db.run(sql)
        values: List[Any] = []

        def positional(match: "re.Match[str]") -> str:
            if match.group(1) is None:  # a quoted literal or name, or a :: cast
                return match.group(0)
            values.append(params[match.group(1)])
            return "?"

        return self._db.run(_NAMED.sub(positional, sql), *values)

    def query(self, sql: str, *values: Any) -> list:
        """The rows of `sql`, its `?` parameters taken from `values` (a `tables.Run`)."""
        return self._db.run(sql, *values)

    def lock(self, *names: str) -> AdvisoryLock:
        """A re-entrant advisory lock on this connection's database, keyed by names."""
        key = advisory_key(*names)

        def take() -> None:
            # Poll with pg_try_advisory_lock rather than block: a blocked call would
            # run into the socket timeout that keeps an unreachable server from hanging us.
            delay = 0.002
            while not self._run_prepared("SELECT pg_try_advisory_lock(?)", key)[0][0]:
                time.sleep(delay)
                delay = min(delay * 2, 0.05)

        def free() -> None:
            self._run_prepared("SELECT pg_advisory_unlock(?)", key)

        return AdvisoryLock(take, free)

    def _run_prepared(self, sql: str, *values: Any) -> list:
        run = self._prepared.get(sql)
        if run is None:
            run = self._prepared[sql] = self._db.prepared(sql)
        return run(*values)

    def tables(self) -> Set[str]:
        return set(self._db.tables())

    def check_writable(self) -> None:
        """Nothing here: PostgreSQL refuses a reader-only user's first write itself."""

    def close(self) -> None:
        self._db.close()


# What Admin.run reads in its SQL: a quoted literal or name, a :: cast (left as they are), or a
# :name parameter.
_NAMED = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|::|:([A-Za-z_]\w*)")


def _maintenance(loc: Location) -> Admin:
    error: Optional[StoreError] = None
    for name in _MAINTENANCE_DBS:
        try:
            return Admin(loc, name)
        except StoreError as e:
            error = e
    assert error is not None
    raise error


def ensure_database(loc: Location, create: bool) -> None:
    """Makes sure the location's database exists, creating it at most once.

    Several processes may open a new store at the same moment; the check and
    the CREATE DATABASE run under an advisory lock in the maintenance database.

    Raises:
        StoreError: the database is missing and `create` is false, or cannot be made.
    """
    admin = _maintenance(loc)
    try:
        with admin.lock("create-database", loc.dbname):
            exists = admin.run("SELECT 1 FROM pg_database WHERE datname = :name", name=loc.dbname)
            if exists:
                return
            if not create:
                raise StoreError(f"no database '{loc.dbname}' on the server of store '{loc}'")
            quoted = '"' + loc.dbname.replace('"', '""') + '"'
            try:
                admin.run(f"CREATE DATABASE {quoted}")
            except Exception as e:
                raise StoreError(f"cannot create database for store '{loc}': {_message(e)}") from None
    finally:
        admin.close()


def _with_mlmd(loc: Location, create: bool, upgrade: bool, held: bool, admin: "AnyAdmin") -> Backend:
    """ml-metadata on the database (made already, once, under a lock); our SQL runs read-only
    on the admin connection."""
    from mlmd_exercise.store.mlmd.connect import connect_postgres

    return connect_postgres(loc, upgrade, admin.query)


def native_driver() -> str:
    """The native backend's PostgreSQL driver: $MLMD_PG_DRIVER where set, else psycopg 3 where
    it imports (its C speedups or libpq: a round trip per statement), else pg8000 (pure Python).

    Raises:
        StoreError: an unknown driver name, or psycopg asked for where it cannot be imported.
    """
    name = os.environ.get(ENV_DRIVER, "")
    if name and name not in DRIVERS:
        raise StoreError(f"unknown PostgreSQL driver '{name}' (from ${ENV_DRIVER}): use {' or '.join(DRIVERS)}")
    if name == "pg8000":
        return name  # psycopg not imported for nothing
    try:
        import psycopg  # noqa: F401
    except ImportError as e:  # no wheel here, or no libpq for the pure-Python one
        if name == "psycopg":
            raise StoreError(f"PostgreSQL driver 'psycopg' (from ${ENV_DRIVER}) cannot be imported: {e}; "
                             "install psycopg[binary], or use pg8000") from None
        return "pg8000"
    return name or "psycopg"


def _psycopg_options(sslmode: str) -> Dict[str, Any]:
    # libpq reads sslmode itself; the authorities are those pg8000 and Python use (see above).
    options: Dict[str, Any] = {"sslmode": sslmode or "prefer"}
    roots = root_certificates(sslmode)
    if roots:
        options["sslrootcert"] = roots
    return options


def native_db(loc: Location, database: str) -> "PostgresDb":
    """The native backend's connection to one database of the location's server, on
    `native_driver()`'s driver, autocommit; a server that stops answering fails within
    CONNECT_TIMEOUT (pg8000: its socket timeout; psycopg: libpq's connect and TCP timeouts).
    The password is the one store/credentials.py found (libpq reads no ~/.pgpass of its own).

    Raises:
        StoreError: one line naming the store (password masked) and the server's reason.
    """
    from mlmd_exercise.store.native.postgres import Pg8000Db, PsycopgDb

    if native_driver() == "pg8000":
        return Pg8000Db(connect(loc, database))
    import psycopg

    seconds = int(CONNECT_TIMEOUT)
    try:
        con = psycopg.connect(
            user=loc.user or "postgres", password=loc.password or None, host=loc.host, port=loc.port,
            dbname=database, connect_timeout=seconds, application_name="mlmd_exercise", autocommit=True,
            tcp_user_timeout=seconds * 1000, keepalives=1, keepalives_idle=seconds, keepalives_interval=1,
            keepalives_count=seconds, passfile=os.devnull, **_psycopg_options(loc.sslmode))
    except psycopg.Error as e:
        raise StoreError(f"cannot connect to store '{loc}': {_psycopg_message(e)}") from None
    return PsycopgDb(con)


def _psycopg_message(error: Exception) -> str:
    # The server's words where it refused (a wrong password, a missing database), as pg8000
    # gives them: libpq's first line without the address it names and the severity.
    line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    if " failed: FATAL: " in line:  # the server's refusal
        return line.split(" failed: FATAL: ", 1)[1].strip()
    return line.rsplit(" failed: ", 1)[-1]  # libpq's own reason (timed out, refused)


def _with_native(loc: Location, create: bool, upgrade: bool, held: bool, admin: "AnyAdmin") -> Backend:
    """The native backend on a connection of its own (see `server.native_on`)."""
    return native_on(native_db(loc, loc.dbname), loc, create, held)


# The backends that open a PostgreSQL store, by name (store/choice.py chooses).
BACKENDS: Dict[str, Connect] = {"mlmd": _with_mlmd, "native": _with_native}
SERVER = Server("postgresql", check_reachable, ensure_database, Admin, BACKENDS)


def open_postgres(loc: Location, create: bool, upgrade: bool, backend: Optional[str] = None) -> "Store":
    """Opens a PostgreSQL store (see `open_store` and store/server.py)."""
    return open_server(SERVER, loc, create, upgrade, backend)
