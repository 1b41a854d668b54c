"""Which backend opens a store: Google's ml-metadata where it is installed, else our own.

ml-metadata stays the reference and the default for SQLite and MySQL stores wherever it
installs (CPython 3.9 to 3.11 on Linux x86-64). PostgreSQL stores open with the native
backend by default: ml-metadata 1.17 quotes a string with a backslash wrongly in the SQL it
writes there, so that the rest of the value would run as SQL (store/mlmd/guard.py). Elsewhere
the native backend reads and writes the same tables. `--backend` (the CLI) or
`$MLMD_BACKEND` chooses explicitly (ml-metadata on PostgreSQL then refuses such strings). A
store written by one is read and written by the other, on the same file, with no conversion.

The choice is made without importing ml-metadata (a third of a second): by its
installed version. An ml-metadata that is installed but cannot be imported (a
pre-release, a broken wheel) is found when a store is opened, and then, unless it
was asked for by name, the native backend opens the store instead.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Dict, Optional

from mlmd_exercise.errors import StoreError
from mlmd_exercise.store.native.dialects import DIALECTS

__all__ = ["BACKENDS", "DATABASES", "ENV_BACKEND", "Choice", "choose", "choices", "mlmd_missing", "opening", "title"]

log = logging.getLogger(__name__)

BACKENDS = ("mlmd", "native")
DATABASES = tuple(DIALECTS)  # Location.scheme of each kind of store
ENV_BACKEND = "MLMD_BACKEND"
_OLDEST = (1, 14)  # the oldest ml-metadata with schema version 10


@dataclass(frozen=True)
class Choice:
    """The backend to open stores with, and why (what `doctor` says)."""

    name: str
    reason: str
    explicit: bool = False  # named by --backend or $MLMD_BACKEND: no silent fallback


def _version_tuple(text: str) -> tuple:
    parts = []
    for piece in text.split(".")[:2]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


def mlmd_missing() -> Optional[str]:
    """Why ml-metadata cannot serve here ("is not installed", "0.13.1.dev0 is older than
    1.14"), or None if an ml-metadata of schema 10 is installed."""
    from importlib import metadata

    try:
        version = metadata.version("ml-metadata")
    except metadata.PackageNotFoundError:
        return "is not installed"
    if _version_tuple(version) < _OLDEST:
        return f"{version} is older than 1.14"
    return None


def choose(requested: Optional[str] = None, database: Optional[str] = None) -> Choice:
    """The backend for a store of `database` ("sqlite", "postgresql", "mysql"; None: SQLite's
    and MySQL's): `requested`, else $MLMD_BACKEND, else ml-metadata where it is installed
    (native for PostgreSQL), else native.

    Raises:
        StoreError: an unknown backend name, or ml-metadata asked for where it is missing.
    """
    name = requested or os.environ.get(ENV_BACKEND) or ""
    if name:
        where = "--backend" if requested else f"${ENV_BACKEND}"
        if name not in BACKENDS:
            raise StoreError(f"unknown backend '{name}' (from {where}): use {' or '.join(BACKENDS)}")
        if name == "mlmd":
            missing = mlmd_missing()
            if missing is not None:
                raise StoreError(f"backend 'mlmd' (from {where}) cannot be used: ml-metadata {missing}; "
                                 "use the native backend (--backend native)")
        return Choice(name, f"chosen by {where}", explicit=True)
    missing = mlmd_missing()
    if missing is None:
        if database == "postgresql":
            return Choice("native", "PostgreSQL stores open with the native backend: ml-metadata 1.17 quotes a "
                                    "backslash wrongly in its PostgreSQL SQL, so that the rest of a value would run "
                                    "as SQL (--backend mlmd uses it, refusing such values)")
        from importlib import metadata

        return Choice("mlmd", f"ml-metadata {metadata.version('ml-metadata')} is installed (the reference)")
    return Choice("native", f"ml-metadata {missing}")


def title(database: str) -> str:
    """A kind of store (Location.scheme) as its users name it: "PostgreSQL"."""
    return DIALECTS[database].title


def choices(requested: Optional[str] = None) -> Dict[str, Choice]:
    """The backend for each kind of store (DATABASES), as `choose` picks it."""
    return {database: choose(requested, database) for database in DATABASES}


def opening(requested: Optional[str], database: str) -> str:
    """The backend that opens a store of `database` here: the one `choose` picks, unless that
    is ml-metadata and it cannot be imported (a broken install), when the native one opens it
    instead, unless ml-metadata was asked for by name. The name keys each engine's table of
    backends (store/sqlite.py, postgres.py, mysql.py).

    Raises:
        StoreError: as `choose`; ml-metadata asked for by name cannot be imported.
    """
    choice = choose(requested, database)
    if choice.name == "mlmd":
        try:  # a third of a second, paid only where ml-metadata opens the store
            from mlmd_exercise.store.mlmd import connect  # noqa: F401
        except ImportError as e:  # installed, but not importable here
            if choice.explicit:
                raise StoreError(f"backend 'mlmd' cannot be used: ml-metadata cannot be imported ({e})") from None
            log.info("ml-metadata cannot be imported (%s): using the native backend", e)
            return "native"
    return choice.name
