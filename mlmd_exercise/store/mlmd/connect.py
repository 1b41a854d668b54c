"""Opening a store with ml-metadata: address -> `ConnectionConfig` -> `MlmdBackend`.

MLMD's Python wrapper logs the whole ConnectionConfig, password included, and its C++
layer writes its PostgreSQL connection log to stderr: both are caught here and masked.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import threading
from typing import Callable, Iterator, Optional

from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2 as pb

from mlmd_exercise.errors import StoreError
from mlmd_exercise.store.address import Location, root_certificates
from mlmd_exercise.store.mlmd.backend import MlmdBackend
from mlmd_exercise.store.native.errors import damaged

__all__ = ["connect_sqlite", "connect_postgres", "connect_mysql", "mysql_config", "mysql_refused",
           "postgres_refused"]

log = logging.getLogger(__name__)
_stderr_guard = threading.Lock()

_PASSWORD_FIELD = re.compile(r'(password:\s*")((?:[^"\\]|\\.)*)(")')


def _redact(text: str, password: str = "") -> str:
    """The text with MLMD's `password: "..."` fields, and the password itself, masked."""
    text = _PASSWORD_FIELD.sub(r"\1***\3", text)
    return text.replace(password, "***") if password else text


class _RedactPasswords(logging.Filter):
    """MLMD's Python wrapper logs the whole ConnectionConfig, password included, at INFO."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "password" in message:
            record.msg, record.args = _redact(message), None
        return True


logging.getLogger("absl").addFilter(_RedactPasswords())


@contextlib.contextmanager
def _quiet_stderr(password: str) -> Iterator[None]:
    """Catches what MLMD's C++ layer writes to stderr (its PostgreSQL connection log)."""
    import tempfile

    with _stderr_guard, tempfile.TemporaryFile() as sink:
        saved = os.dup(2)
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            for line in sink.read().decode(errors="replace").splitlines():
                log.debug("mlmd: %s", _redact(line, password))


def _connect(config: pb.ConnectionConfig, loc: Location, upgrade: bool,
             sql: Optional[Callable[..., list]] = None,
             before_write: Optional[Callable[[], None]] = None) -> MlmdBackend:
    def opened(upgrade: bool = False) -> metadata_store.MetadataStore:
        with _quiet_stderr(loc.password):
            return metadata_store.MetadataStore(config, enable_upgrade_migration=upgrade)

    try:
        mlmd = opened(upgrade)
    except RuntimeError as e:  # MLMD's constructor raises no error class of its own
        # The schema version and the file were checked before: what is left is the
        # database's own refusal, said in MLMD's words (first line, password masked).
        text = str(e).strip()
        if "database disk image is malformed" in text:
            raise damaged(str(loc), writing=False) from None
        reason = _redact(text.splitlines()[0] if text else "unknown error", loc.password)
        log.debug("opening %s failed: %s", loc, reason)
        raise StoreError(f"cannot open store '{loc}': {reason}") from None
    return MlmdBackend(mlmd, str(loc), sql, database=loc.scheme, reopen=opened, before_write=before_write)


def connect_sqlite(loc: Location, create: bool, upgrade: bool, uri: Optional[str] = None,
                   before_write: Optional[Callable[[], None]] = None) -> MlmdBackend:
    """MLMD on the SQLite file of `loc` (checked already): created if `create`, read-only
    unless `create` or `upgrade` (an upgrade writes MLMD's new schema); `uri` is SQLite's
    URI for it where it must be read as it is on disk; `before_write` raises where a write
    must not be made (the file deleted or replaced)."""
    config = pb.ConnectionConfig()
    config.sqlite.filename_uri = uri or str(loc.path)
    mode = pb.SqliteMetadataSourceConfig
    config.sqlite.connection_mode = (mode.READWRITE_OPENCREATE if create else mode.READWRITE if upgrade
                                     else mode.READONLY)
    return _connect(config, loc, upgrade, before_write=before_write)


def connect_postgres(loc: Location, upgrade: bool, sql: Callable[..., list]) -> MlmdBackend:
    """MLMD on the PostgreSQL database of `loc` (made already, once, under a lock); `sql`
    runs read-only SQL on a connection of the package's own."""
    config = pb.ConnectionConfig()
    pg = config.postgresql
    pg.host, pg.port, pg.dbname = loc.host, str(loc.port), loc.dbname
    pg.user, pg.password = loc.user or "postgres", loc.password
    pg.skip_db_creation = True
    if loc.sslmode:
        pg.ssloption.sslmode = loc.sslmode
    roots = root_certificates(loc.sslmode)  # the authorities the package's own clients trust
    if roots:
        pg.ssloption.sslrootcert = roots
    try:
        return _connect(config, loc, upgrade, sql)
    except StoreError as e:
        raise postgres_refused(e, loc) from None


def postgres_refused(error: StoreError, loc: Location) -> StoreError:
    """MLMD's error when its PostgreSQL client could not connect, made readable where it gave
    no reason: the libpq in ml-metadata's wheels (1.17, 1.21) has no TLS, and says so only in
    its log ('sslmode value "require" invalid when SSL support is not compiled in'), so an
    sslmode that needs TLS cannot work there. ("prefer" and "allow" connect in plain.)"""
    if not str(error).rstrip().endswith("metadata source error:") or loc.sslmode not in _NEEDS_TLS:
        return error
    return StoreError(f"cannot open store '{loc}': ml-metadata's PostgreSQL client has no TLS here, "
                      f"which sslmode={loc.sslmode} needs: open the store with the native backend "
                      "(--backend native, or MLMD_BACKEND=native)")


_NEEDS_TLS = ("require", "verify-ca", "verify-full")


def mysql_refused(error: StoreError, loc: Location) -> StoreError:
    """MLMD's error when its client could not connect where ours could, made readable.

    MLMD's MySQL client reports some refusals as "mysql_real_connect failed: errno: ,
    error: " with nothing after it; in tests it did so for a TLS certificate it would not
    verify (ssl_verify_server_cert=true) that PyMySQL verified.
    """
    if not str(error).rstrip().endswith("errno: , error:"):
        return error
    hint = (": it refused to verify the server's certificate (ssl_verify_server_cert=true), "
            "which this package's own client accepted" if loc.ssl_options.get("ssl_verify_server_cert") == "true"
            else ", though this package's own client did (look at the ssl_* options)")
    return StoreError(f"cannot open store '{loc}': MLMD's MySQL client could not connect and gave no reason{hint}")


def mysql_config(loc: Location) -> pb.ConnectionConfig:
    """MLMD's ConnectionConfig for the location; the database is never created by MLMD."""
    config = pb.ConnectionConfig()
    my = config.mysql
    my.database, my.user, my.password = loc.dbname, loc.user or "root", loc.password
    if loc.socket:  # MLMD aborts the whole process unless exactly one of host and socket is set
        my.socket = loc.socket
    else:
        my.host, my.port = loc.host, loc.port
    my.skip_db_creation = True  # made by ensure_database, once, under a lock
    options = loc.ssl_options
    if options:
        ssl = my.ssl_options
        for name in ("key", "cert", "ca", "capath", "cipher"):
            if f"ssl_{name}" in options:
                setattr(ssl, name, options[f"ssl_{name}"])
        ssl.verify_server_cert = options.get("ssl_verify_server_cert") == "true"
    return config


def connect_mysql(loc: Location, upgrade: bool, sql: Callable[..., list]) -> MlmdBackend:
    """MLMD on the MySQL database of `loc` (made already, once, under a lock); `sql` runs
    read-only SQL on the package's own connection."""
    try:
        return _connect(mysql_config(loc), loc, upgrade, sql)
    except StoreError as e:
        raise mysql_refused(e, loc) from None
