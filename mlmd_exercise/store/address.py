"""Store addresses: a file path or URL -> a parsed location that never shows a password.

Accepted forms:
    metadata.db, ./runs/metadata.db, /abs/path.db      an SQLite file
    sqlite:///relative/path.db, sqlite:////abs/path.db  the same, as a URL
    postgresql://user:password@host:port/dbname[?sslmode=require]
    mysql://user:password@host:port/dbname[?ssl_ca=/path&ssl_verify_server_cert=true]
    mysql://user:password@/dbname?unix_socket=/run/mysqld/mysqld.sock
    @path                                               the address, read from a file

The password runs from the first ':' of the user info to the last '@' that a host and a
/dbname follow, so that one holding '#', '/', '?', '@', '[', ':' or spaces works as it is
(percent-encoded, it works too: %40 for '@'). It is never shown: every message shows the
address as `user:***@host...`. A server address with no password takes it from where the
database's own tools keep it (store/credentials.py).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Optional, Tuple, Union
from urllib.parse import SplitResult, parse_qs, unquote, urlsplit

from mlmd_exercise.errors import StoreError

__all__ = ["DEFAULT_STORE", "ENV_STORE", "MYSQL_SSL_OPTIONS", "Location", "parse_location", "default_location",
           "root_certificates"]

DEFAULT_STORE = "metadata.db"
ENV_STORE = "MLMD_STORE"  # the default store when --db is not given
_SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
# MLMD's MySQLDatabaseConfig.SSLOptions, named as the mysql client's --ssl-* options.
MYSQL_SSL_OPTIONS = ("ssl_key", "ssl_cert", "ssl_ca", "ssl_capath", "ssl_cipher", "ssl_verify_server_cert")
_MYSQL_OPTIONS = MYSQL_SSL_OPTIONS + ("unix_socket",)
_MYSQL_NAME = re.compile(r"[A-Za-z0-9_$]+")
_BOOLEANS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
_FORMS = ("a file path, sqlite:///path, postgresql://user:password@host:port/dbname "
          "or mysql://user:password@host:port/dbname")


@dataclass(frozen=True)
class Location:
    """Where a store lives. `str()` of it is safe to print: the password is masked."""

    scheme: str  # "sqlite", "postgresql" or "mysql"
    display: str
    path: Optional[Path] = None
    host: str = ""
    port: int = 0
    user: str = ""
    password: str = field(default="", repr=False)
    dbname: str = ""
    sslmode: str = ""
    # MySQL only: a Unix socket to connect through instead of host and port, and the
    # ssl_* options as (name, value) pairs, ssl_verify_server_cert as "true" or "false".
    socket: str = ""
    ssl: Tuple[Tuple[str, str], ...] = ()

    def __str__(self) -> str:
        return self.display

    @property
    def is_sqlite(self) -> bool:
        return self.scheme == "sqlite"

    @property
    def identity(self) -> str:
        """The store, named so that it means the same store elsewhere (a bundle's origins):
        host and absolute path of an SQLite file, server, port and database otherwise (never
        a password)."""
        if self.path is not None:
            import socket

            return f"sqlite://{socket.gethostname()}{self.path.resolve()}"
        return f"{self.scheme}://{self.host}:{self.port}/{self.dbname}"

    @property
    def ssl_options(self) -> Dict[str, str]:
        """MySQL's ssl_* options, by name."""
        return dict(self.ssl)


def root_certificates(sslmode: str) -> Optional[str]:
    """The certificate authorities a PostgreSQL sslmode that checks the server's certificate
    (verify-ca, verify-full) checks it against, for every client alike: the file Python's ssl
    module trusts ($SSL_CERT_FILE where set, else the system's bundle), else libpq's "system"
    for verify-full; None for the other modes (nothing to check), or where there is neither."""
    if sslmode not in ("verify-ca", "verify-full"):
        return None
    import ssl

    found = ssl.get_default_verify_paths().cafile
    if found and os.path.isfile(found):
        return found
    return "system" if sslmode == "verify-full" else None


def default_location(folder: Union[str, os.PathLike, None] = None) -> str:
    """$MLMD_STORE if set, else metadata.db (in `folder`, if given: `run --workdir`'s)."""
    return os.environ.get(ENV_STORE) or os.fspath(Path(folder) / DEFAULT_STORE if folder else DEFAULT_STORE)


_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*)://")
_HOST_PORT = re.compile(r"(\[[0-9A-Fa-f:.]*\]|[^\[\]/?#@]*)(:[^/?#@]*)?")


def _split(text: str) -> Tuple[str, Optional[str], Optional[str], str]:
    """(scheme, user or None, password or None, the rest: host[:port]/dbname[?query]) of a
    URL, its user info taken apart by hand: a password may hold any character, which
    urllib's parser would take for the end of the host (#, /, ?) or for an IPv6 host ([)."""
    found = _SCHEME.match(text)
    assert found is not None
    scheme, rest = found.group(1), text[found.end():]
    ats = [i for i, char in enumerate(rest) if char == "@"]
    if not ats:
        return scheme, None, None, rest
    at = ats[-1]
    for candidate in reversed(ats):  # the last '@' that a host and a /dbname follow
        host = _HOST_PORT.match(rest, candidate + 1)
        if host is not None and rest[host.end():host.end() + 1] == "/":
            at = candidate
            break
    user, colon, password = rest[:at].partition(":")
    return scheme, user, password if colon else None, rest[at + 1:]


def _shown(scheme: str, user: Optional[str], password: Optional[str], rest: str) -> str:
    """The address as it may be printed: the password, whatever it holds, as ***."""
    userinfo = "" if user is None else f"{user}:***@" if password else f"{user}@"
    return f"{scheme}://{userinfo}{rest}"


def parse_location(location: Union[str, os.PathLike, Location]) -> Location:
    """Parses a store address (a Location is returned as it is, so that one parsed by the
    CLI can go wherever an address can); "@path" reads the address from a file.

    Raises:
        StoreError: an unknown scheme, a bad port, a missing database name or an
            unknown option; the message shows the address with its password masked.
    """
    if isinstance(location, Location):
        return location
    text = os.fspath(location)
    if text.startswith("@"):
        from mlmd_exercise.store.credentials import address_from_file

        text = address_from_file(text)
    if "://" not in text or not _SCHEME.match(text):
        return Location("sqlite", text, path=Path(text))
    scheme_text, user_text, password_text, rest = _split(text)
    shown = _shown(scheme_text, user_text, password_text, rest)
    try:
        parts = urlsplit(f"{scheme_text}://{rest}")
        port = parts.port
    except ValueError as e:  # urllib's "Port out of range 0-65535", "Port could not be cast ..."
        hint = ("; a password may hold any character, as it is or percent-encoded (%40 for @, %2F for /)"
                if password_text else "")
        raise StoreError(f"bad port or host in store address '{shown}': {e}{hint}") from None
    user, password = unquote(user_text or ""), unquote(password_text or "")
    scheme = parts.scheme.lower()
    if scheme == "sqlite":
        if parts.netloc or user_text is not None or not parts.path.startswith("/") or len(parts.path) < 2:
            raise StoreError(
                f"bad SQLite address '{shown}': use sqlite:///relative/path or sqlite:////absolute/path"
            )
        return Location("sqlite", shown, path=Path(unquote(parts.path[1:])))
    if scheme in ("postgresql", "postgres"):
        dbname = unquote(parts.path.lstrip("/"))
        if not dbname or "/" in dbname:
            raise StoreError(f"store address '{shown}' names no database: add /dbname after the host")
        options = parse_qs(parts.query, keep_blank_values=True)
        unknown = sorted(set(options) - {"sslmode"})
        if unknown:
            raise StoreError(f"unknown option '{unknown[0]}' in store address '{shown}': only sslmode is read")
        sslmode = options.get("sslmode", [""])[-1]
        if sslmode and sslmode not in _SSLMODES:
            raise StoreError(
                f"unknown sslmode '{sslmode}' in store address '{shown}': use one of {', '.join(_SSLMODES)}"
            )
        host, port = parts.hostname or "localhost", port or 5432
        if not password:
            from mlmd_exercise.store.credentials import pg_password

            password = pg_password(host, port, dbname, user or "postgres")
        return Location("postgresql", shown, host=host, port=port, user=user, password=password,
                        dbname=dbname, sslmode=sslmode)
    if scheme == "mysql":
        return _mysql(parts, port, shown, user, password)
    raise StoreError(f"unknown store scheme '{parts.scheme}' in '{shown}': use {_FORMS}")


def _mysql(parts: SplitResult, port: Optional[int], shown: str, user: str, password: str) -> Location:
    dbname = unquote(parts.path.lstrip("/"))
    if not dbname or "/" in dbname:
        raise StoreError(f"store address '{shown}' names no database: add /dbname after the host")
    if len(dbname) > 64:  # MySQL's limit: say so before the server does, less clearly
        raise StoreError(f"database name in store address '{shown}' is longer than MySQL's 64 characters")
    if not _MYSQL_NAME.fullmatch(dbname):  # MLMD sends `USE <name>` unquoted
        raise StoreError(f"database name '{dbname}' in store address '{shown}' cannot be used by MLMD "
                         "on MySQL: use letters, digits, _ and $ only")
    options = parse_qs(parts.query, keep_blank_values=True)
    unknown = sorted(set(options) - set(_MYSQL_OPTIONS))
    if unknown:
        raise StoreError(f"unknown option '{unknown[0]}' in store address '{shown}': "
                         f"only {', '.join(_MYSQL_OPTIONS)} are read")
    values = {name: found[-1] for name, found in options.items()}
    verify = values.get("ssl_verify_server_cert")
    if verify is not None:
        if verify.lower() not in _BOOLEANS:
            raise StoreError(f"ssl_verify_server_cert must be true or false, not '{verify}', "
                             f"in store address '{shown}'")
        values["ssl_verify_server_cert"] = "true" if _BOOLEANS[verify.lower()] else "false"
    socket = values.get("unix_socket", "")
    if not parts.hostname and not socket:
        raise StoreError(f"store address '{shown}' names no host: add one after '@', "
                         "or a socket with ?unix_socket=/path")
    if not password:
        from mlmd_exercise.store.credentials import mysql_login

        user, password = mysql_login(user)
    return Location(
        "mysql",
        shown,
        host=parts.hostname or "localhost",
        port=port or 3306,
        user=user,
        password=password,
        dbname=dbname,
        socket=socket,
        ssl=tuple((name, values[name]) for name in MYSQL_SSL_OPTIONS if name in values),
    )
