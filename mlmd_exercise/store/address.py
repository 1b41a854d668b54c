"""Store addresses: a file path or URL -> a parsed location that never shows a password.

Accepted forms:
    metadata.db, ./runs/metadata.db, /abs/path.db      an SQLite file
    sqlite:///relative/path.db, sqlite:////abs/path.db  the same, as a URL
    postgresql://user:password@host:port/dbname[?sslmode=require]
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Union
from urllib.parse import parse_qs, unquote, urlsplit

from mlmd_exercise.errors import StoreError

__all__ = ["DEFAULT_STORE", "ENV_STORE", "Location", "parse_location", "default_location"]

DEFAULT_STORE = "metadata.db"
ENV_STORE = "MLMD_STORE"  # the default store when --db is not given
_SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
_FORMS = "a file path, sqlite:///path or postgresql://user:password@host:port/dbname"


@dataclass(frozen=True)
class Location:
    """Where a store lives. `str()` of it is safe to print: the password is masked."""

    scheme: str  # "sqlite" or "postgresql"
    display: str
    path: Optional[Path] = None
    host: str = ""
    port: int = 0
    user: str = ""
    password: str = field(default="", repr=False)
    dbname: str = ""
    sslmode: str = ""

    def __str__(self) -> str:
        return self.display

    @property
    def is_sqlite(self) -> bool:
        return self.scheme == "sqlite"


def default_location(folder: Union[str, os.PathLike, None] = None) -> str:
    """$MLMD_STORE if set, else metadata.db (in `folder`, if given: `run --workdir`'s)."""
    return os.environ.get(ENV_STORE) or os.fspath(Path(folder) / DEFAULT_STORE if folder else DEFAULT_STORE)


def _masked(text: str) -> str:
    parts = urlsplit(text)
    if parts.password is None:
        return text
    host = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return parts._replace(netloc=f"{user}:***@{host}").geturl()


def parse_location(location: Union[str, os.PathLike, Location]) -> Location:
    """Parses a store address with the standard library's URL parser (a Location is
    returned as it is, so that one parsed by the CLI can go wherever an address can).

    Raises:
        StoreError: an unknown scheme, a bad port, a missing database name or an
            unknown option; the message shows the address with its password masked.
    """
    if isinstance(location, Location):
        return location
    text = os.fspath(location)
    if "://" not in text:
        return Location("sqlite", text, path=Path(text))
    shown = _masked(text)
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as e:  # urllib's "Port out of range 0-65535", "Port could not be cast ..."
        raise StoreError(f"bad port in store address '{shown}': {e}") from None
    scheme = parts.scheme.lower()
    if scheme == "sqlite":
        if parts.netloc or not parts.path.startswith("/") or len(parts.path) < 2:
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
        return Location(
            "postgresql",
            shown,
            host=parts.hostname or "localhost",
            port=port or 5432,
            user=unquote(parts.username or ""),
            password=unquote(parts.password or ""),
            dbname=dbname,
            sslmode=sslmode,
        )
    raise StoreError(f"unknown store scheme '{parts.scheme}' in '{shown}': use {_FORMS}")
