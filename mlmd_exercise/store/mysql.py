"""MySQL (and MariaDB) stores, opened top to bottom: reachability, database creation, locks,
checks, the backend (`open_mysql`, through store/server.py's procedure).

As for PostgreSQL (postgres.py), the backend talks to the server for everything it stores;
this module's small pure-Python client (PyMySQL) does what neither backend can do safely when
several machines start at once: create the database exactly once, hold a named lock
(GET_LOCK) around setup and writes, look at the tables before a backend touches them, and
answer the counting and checking queries by plain SQL.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import re
import socket
import threading
from typing import TYPE_CHECKING, Any, Dict, Optional, Set, Tuple, cast

from mlmd_exercise.errors import StoreError
from mlmd_exercise.store.address import Location
from mlmd_exercise.store.backend import Backend
from mlmd_exercise.store.locking import AdvisoryLock
from mlmd_exercise.store.server import Connect, Server, native_on, open_server
from mlmd_exercise.store import tables

if TYPE_CHECKING:
    from mlmd_exercise.store.server import Admin as AnyAdmin
    from mlmd_exercise.store.store import Store

__all__ = ["CONNECT_TIMEOUT", "NATIVE_TIMEOUT", "TABLES", "BACKENDS", "SERVER", "Admin", "check_reachable", "connect",
           "ensure_database", "lock_name", "open_mysql", "quote", "to_mysql"]

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 5.0  # seconds: an unreachable server fails fast, never hangs
# Seconds one statement of the native backend may take (its connection fails within
# CONNECT_TIMEOUT): longer than InnoDB's lock wait (50 s by default), after which the server
# answers itself.
NATIVE_TIMEOUT = 120.0
_LOCK_WAIT = 2  # seconds one GET_LOCK waits in the server: well inside CONNECT_TIMEOUT
# MLMD's tables on MySQL keep their CamelCase names, and MySQL's table names are case
# sensitive on Linux: the package's SQL (written lower case, as PostgreSQL folds it) is
# given these names before it runs.
TABLES = ("Artifact", "ArtifactProperty", "Association", "Attribution", "Context",
          "ContextProperty", "Event", "EventPath", "Execution", "ExecutionProperty", "MLMDEnv",
          "ParentContext", "ParentType", "Type", "TypeProperty")
_BY_LOWER = {t.lower(): t for t in TABLES}
_TABLE_REF = re.compile(r"\b(FROM|JOIN|INTO|UPDATE)(\s+)([A-Za-z_]+)\b", re.IGNORECASE)
_LOST = (2006, 2013)  # CR_SERVER_GONE_ERROR, CR_SERVER_LOST: the connection is gone
_NAMED_PARAM = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


def check_reachable(loc: Location) -> None:
    """Fails within CONNECT_TIMEOUT if nothing listens at the location's socket or host and port."""
    try:
        if loc.socket:
            with socket.socket(socket.AF_UNIX) as s:
                s.settimeout(CONNECT_TIMEOUT)
                s.connect(loc.socket)
        else:
            socket.create_connection((loc.host, loc.port), timeout=CONNECT_TIMEOUT).close()
    except OSError as e:
        reason = "timed out" if isinstance(e, socket.timeout) else (e.strerror or str(e))
        where = f"socket {loc.socket}" if loc.socket else f"{loc.host}:{loc.port}"
        raise StoreError(f"cannot reach MySQL at {where} for store '{loc}': {reason}") from None


def _message(error: Exception) -> str:
    # PyMySQL's errors carry (code, message); its own ones sometimes only a message.
    args: Tuple[Any, ...] = tuple(getattr(error, "args", ()))
    text = str(args[1] if len(args) > 1 else args[0] if args else error)
    if "timed out" in text:
        return f"no answer within {CONNECT_TIMEOUT:g} s ({text.splitlines()[0]})"
    return text.splitlines()[0] if text else type(error).__name__


def _ssl(loc: Location) -> Optional[dict]:
    """PyMySQL's ssl argument from the address's ssl_* options, or None without any."""
    options = loc.ssl_options
    if not options:
        return None
    ssl: Dict[str, Any] = {key: options[f"ssl_{key}"] for key in ("ca", "cert", "key", "capath", "cipher")
                           if f"ssl_{key}" in options}
    verify = options.get("ssl_verify_server_cert") == "true"
    ssl["check_hostname"] = verify
    if not verify:
        ssl["verify_mode"] = False  # encrypted, as MLMD's client does unless asked to verify
    return ssl


def lock_name(database: str, *names: str) -> str:
    """The GET_LOCK name for names in a database: named locks are server-wide and at most
    64 characters, so the database is hashed in with the names."""
    digest = hashlib.sha256("\0".join(("mlmd_exercise", database) + names).encode()).hexdigest()
    return f"mlmd_exercise:{digest[:40]}"


def quote(name: str) -> str:
    """A MySQL identifier, quoted."""
    return "`" + name.replace("`", "``") + "`"


def to_mysql(sql: str) -> str:
    """The package's SQL (pg8000's :name parameters, lower-case table names) for PyMySQL.

    A plain rewrite, not a parser: it serves the package's own queries, which name their
    tables after FROM, JOIN, INTO or UPDATE and put no ':name' inside string literals.
    """
    sql = _TABLE_REF.sub(lambda m: m.group(1) + m.group(2) + _BY_LOWER.get(m.group(3).lower(), m.group(3)), sql)
    return _NAMED_PARAM.sub(r"%(\1)s", sql.replace("%", "%%"))


def connect(loc: Location, database: Optional[str], timeout: float = CONNECT_TIMEOUT,
            conv: Optional[dict] = None):
    """A PyMySQL connection (autocommit) to the location's server, to `database` or to none;
    `conv`: PyMySQL's conversions, where not its own.

    `timeout` bounds each read and write on it (the connection itself is bounded by
    CONNECT_TIMEOUT): an unreachable or silent server fails within seconds.

    Raises:
        StoreError: one line naming the store (password masked) and the server's reason,
            which for a refused login names the user and the host it came from.
    """
    import pymysql

    try:
        return pymysql.connect(
            host=loc.host, port=loc.port, unix_socket=loc.socket or None,
            user=loc.user or "root", password=loc.password, database=database,
            connect_timeout=CONNECT_TIMEOUT, read_timeout=timeout,
            write_timeout=timeout, ssl=_ssl(loc), autocommit=True, charset="utf8mb4",
            # PyMySQL would use TLS whenever the server offers it, MLMD's client only when
            # asked: without ssl_* options neither does, so that both see the same refusal.
            ssl_disabled=not loc.ssl, program_name="mlmd_exercise", conv=conv,
        )
    except Exception as e:  # OperationalError, InternalError, ssl and socket errors
        raise StoreError(f"cannot connect to store '{loc}': {_message(e)}") from None


class Admin:
    """A PyMySQL connection to the location's server, to one database or to none."""

    def __init__(self, loc: Location, database: Optional[str]) -> None:
        self.loc = loc
        self._database = database
        self._guard = threading.Lock()  # one statement at a time on the connection
        self._holding = 0  # named locks this connection holds now
        self._con = self._connect()

    def _connect(self):
        return connect(self.loc, self._database)

    def execute(self, sql: str, args=None) -> list:
        """Runs MySQL's own SQL (%s parameters); the rows, as lists of tuples.

        A connection the server closed while it sat idle (wait_timeout: 8 hours by
        default; a long-lived explorer or Tracker meets it) is opened again and the
        statement tried once more, unless this connection holds a named lock: the lock
        died with the old connection, and carrying on would break the writers' turns.
        """
        import pymysql

        with self._guard:
            for attempt in (1, 2):
                try:
                    if attempt == 2:
                        self.close()
                        self._con = self._connect()
                    with self._con.cursor() as cursor:
                        cursor.execute(sql, args)
                        return list(cursor.fetchall())
                except (pymysql.err.OperationalError, pymysql.err.InterfaceError) as e:
                    lost = isinstance(e, pymysql.err.InterfaceError) or (e.args and e.args[0] in _LOST)
                    if not lost:
                        raise
                    if attempt == 2 or self._holding:
                        raise StoreError(f"lost the connection to store '{self.loc}': {_message(e)}") from None
            raise AssertionError("unreachable")

    def run(self, sql: str, **params) -> list:
        """Runs the package's SQL as pg8000's run() does: :name parameters, lower-case tables."""
        # Always a dict, even empty: PyMySQL only turns to_mysql's %% back into % when it
        # formats parameters in.
        return self.execute(to_mysql(sql), params)

    def query(self, sql: str, *values) -> list:
        """The rows of `sql`, its `?` parameters taken from `values` (a `tables.Run`)."""
        return self.run(tables.named(sql), **tables.named_values(values))

    def lock(self, *names: str) -> AdvisoryLock:
        """A re-entrant named lock (GET_LOCK) on this server, keyed by database and names.

        Named locks belong to the session: a writer that dies frees its lock with its
        connection, so a killed writer never blocks the others.
        """
        key = lock_name(self.loc.dbname, *names)

        def take() -> None:
            # Wait in the server, a little at a time: one long wait would run into the
            # read timeout that keeps an unreachable server from hanging us.
            while self.execute("SELECT GET_LOCK(%s, %s)", (key, _LOCK_WAIT))[0][0] != 1:
                pass
            self._holding += 1

        def free() -> None:
            self._holding -= 1
            try:
                self.execute("SELECT RELEASE_LOCK(%s)", (key,))
            except StoreError:  # the connection is gone, and the server freed the lock with it
                log.debug("lock %s of %s was freed with its lost connection", key, self.loc)

        return AdvisoryLock(take, free)

    def tables(self) -> Set[str]:
        rows = self.execute("SELECT table_name FROM information_schema.tables "
                            "WHERE table_schema = DATABASE() AND table_type = 'BASE TABLE'")
        return {r[0] for r in rows}

    def check_writable(self) -> None:
        """Fails with one line if this user may read MLMD's tables but not write them.

        Privileges are checked before a statement runs, so an INSERT of no rows and an
        UPDATE of none prove the right without changing anything.
        """
        import pymysql

        for probe in ("INSERT INTO `Execution` SELECT * FROM `Execution` WHERE 1 = 0",
                      "UPDATE `Execution` SET `id` = `id` WHERE 1 = 0"):
            try:
                self.execute(probe)
            except (pymysql.err.OperationalError, pymysql.err.ProgrammingError) as e:
                raise StoreError(f"store '{self.loc}' is read-only for user '{self.loc.user}': "
                                 f"cannot record into it ({_message(e)})") from None

    def close(self) -> None:
        try:
            self._con.close()
        except Exception:  # already gone: nothing to release
            pass


def _check_name(admin: Admin) -> None:
    """Refuses a database name MLMD cannot use: it sends `USE <name>` unquoted, so a reserved
    word of this server (`kill`, `select`, `key`, ...) or a name of digits only fails there.

    The server itself judges, with the name as an unquoted table alias, since the reserved
    words differ between MySQL and MariaDB versions; parse_location allowed only letters,
    digits, _ and $, so the name cannot change the statement.
    """
    import pymysql

    name = admin.loc.dbname
    try:
        admin.execute(f"SELECT {name}.x FROM (SELECT 1 AS x) AS {name}")
    except pymysql.err.ProgrammingError:
        raise StoreError(f"database name '{name}' of store '{admin.loc}' is a reserved word or a "
                         "number on this server, which MLMD cannot use (it does not quote it): "
                         "choose another name") from None


def ensure_database(loc: Location, create: bool) -> None:
    """Makes sure the location's database exists, creating it at most once.

    Several processes may open a new store at the same moment; the check and the
    CREATE DATABASE run under a named lock. The database is made with utf8mb4 and
    a binary collation, so that names compare as exactly as on SQLite and PostgreSQL.

    Raises:
        StoreError: the database is missing and `create` is false, or cannot be made.
    """
    admin = Admin(loc, None)
    try:
        _check_name(admin)
        with admin.lock("create-database"):
            exists = admin.execute("SELECT 1 FROM information_schema.schemata WHERE schema_name = %s",
                                   (loc.dbname,))
            if exists:
                return
            if not create:
                raise StoreError(f"no database '{loc.dbname}' on the server of store '{loc}'")
            try:
                admin.execute(f"CREATE DATABASE {quote(loc.dbname)} "
                              "CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
            except Exception as e:
                raise StoreError(f"cannot create database for store '{loc}': {_message(e)}") from None
    finally:
        admin.close()


def _check_database(admin: "AnyAdmin") -> None:
    """`_check_name` on the connection `open_server` made: this module's `Admin`."""
    _check_name(cast(Admin, admin))


def _with_mlmd(loc: Location, create: bool, upgrade: bool, held: bool, admin: "AnyAdmin") -> Backend:
    """ml-metadata on the database (made already, once, under a lock); our SQL runs read-only
    on the admin connection."""
    from mlmd_exercise.store.mlmd.connect import connect_mysql

    return connect_mysql(loc, upgrade, admin.query)


def _with_native(loc: Location, create: bool, upgrade: bool, held: bool, admin: "AnyAdmin") -> Backend:
    """The native backend on a connection of its own, which opens itself again when the server
    closed it (see `server.native_on`)."""
    from mlmd_exercise.store.native.mysql import MysqlDb, decoders

    return native_on(MysqlDb(functools.partial(connect, loc, loc.dbname, NATIVE_TIMEOUT, decoders())),
                     loc, create, held)


# The backends that open a MySQL store, by name (store/choice.py chooses).
BACKENDS: Dict[str, Connect] = {"mlmd": _with_mlmd, "native": _with_native}
SERVER = Server("mysql", check_reachable, ensure_database, Admin, BACKENDS, case_sensitive=True,
                check_database=_check_database)


def open_mysql(loc: Location, create: bool, upgrade: bool, backend: Optional[str] = None) -> "Store":
    """Opens a MySQL or MariaDB store (see `open_store` and store/server.py)."""
    return open_server(SERVER, loc, create, upgrade, backend)
