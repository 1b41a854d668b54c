"""Connecting: a store location -> MLMD `ConnectionConfig` -> `MetadataStore`.

Every way a store can fail to open is turned into one `StoreError` that names the
location, before MLMD gets a chance to write anything to a file that is not ours.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Union

from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2 as pb

from .errors import StoreError

__all__ = ["Store", "open_store", "DEFAULT_STORE"]

log = logging.getLogger(__name__)

DEFAULT_STORE = "metadata.db"
_SQLITE_MAGIC = b"SQLite format 3\x00"
_READONLY = pb.SqliteMetadataSourceConfig.READONLY
_OPENCREATE = pb.SqliteMetadataSourceConfig.READWRITE_OPENCREATE


@dataclass(frozen=True)
class Store:
    """An open MLMD store and the location it was opened from (for messages)."""

    mlmd: metadata_store.MetadataStore
    location: str

    def __str__(self) -> str:
        return self.location


def _check_sqlite_file(path: Path, location: str, create: bool) -> None:
    if path.is_dir():
        raise StoreError(f"'{location}' is a directory, not a store file")
    parent = path.parent
    if not parent.is_dir():
        raise StoreError(f"directory '{parent}' for store '{location}' does not exist")
    if not path.exists():
        if not create:
            raise StoreError(f"no MLMD store at '{location}'")
        return
    # MLMD opens any file and fails part-way through creating its tables; read the
    # header first so that a file that is not a database is never written to.
    try:
        with path.open("rb") as f:
            header = f.read(len(_SQLITE_MAGIC))
    except OSError as e:
        raise StoreError(f"cannot read store '{location}': {e.strerror}") from None
    if header and header != _SQLITE_MAGIC:
        raise StoreError(f"'{location}' is not an SQLite database")


def _mlmd_reason(message: str) -> str:
    # MLMD says "Error when executing query: <reason> query: <sql>": keep the reason.
    prefix = "Error when executing query: "
    if message.startswith(prefix):
        message = message[len(prefix):].split(" query: ", 1)[0]
    return message.strip().splitlines()[0] if message.strip() else "unknown error"


def open_store(location: Union[str, os.PathLike] = DEFAULT_STORE, *, create: bool = False) -> Store:
    """Opens the MLMD store in the SQLite file at `location`.

    Args:
        location: path of the SQLite file.
        create: create the file and MLMD's tables if missing, and open for writing.
            Without it the store is opened read-only and must already exist, so a
            query can never change it.

    Returns:
        The open store.

    Raises:
        StoreError: the location is missing, a directory, not an SQLite database,
            not an MLMD store, or cannot be opened.
    """
    shown = os.fspath(location)
    path = Path(location)
    _check_sqlite_file(path, shown, create)

    config = pb.ConnectionConfig()
    config.sqlite.filename_uri = str(path)
    config.sqlite.connection_mode = _OPENCREATE if create else _READONLY
    try:
        mlmd = metadata_store.MetadataStore(config)
    except RuntimeError as e:
        reason = _mlmd_reason(str(e))
        log.debug("opening %s failed: %s", shown, e)
        if not create and "readonly database" in reason:
            # MLMD tried to create its tables: the file has none of them.
            raise StoreError(f"'{shown}' is not an MLMD store") from None
        raise StoreError(f"cannot open store '{shown}': {reason}") from None
    log.debug("opened %s", shown)
    return Store(mlmd, shown)
