"""Serialising writers: a lock file beside an SQLite store, an advisory lock on PostgreSQL,
a named lock (GET_LOCK) on MySQL.

Raw MLMD loses runs when several processes write at once: on SQLite its
constructor is not retried on lock waits, and on PostgreSQL concurrent type
registration creates duplicate `Type` rows without an error. Every first-time
setup and every write therefore runs under one lock per store. Both locks are
re-entrant within a process and safe across its threads.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import threading
from pathlib import Path
from typing import Callable

from mlmd_exercise.errors import StoreError

__all__ = ["FileLock", "AdvisoryLock", "advisory_key"]


def advisory_key(*names: str) -> int:
    """A stable signed 64-bit key for pg_advisory_lock, from names."""
    digest = hashlib.sha256("\0".join(("mlmd_exercise",) + names).encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class _Reentrant:
    """Counts nested holds so that only the outermost one takes and frees the real lock."""

    def __init__(self) -> None:
        self._guard = threading.RLock()
        self._depth = 0

    def _take(self) -> None:  # the real lock, implemented by subclasses
        raise NotImplementedError

    def _free(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> "_Reentrant":
        self._guard.acquire()
        try:
            if self._depth == 0:
                self._take()
            self._depth += 1
        except BaseException:
            self._guard.release()
            raise
        return self

    def __exit__(self, *exc) -> None:
        try:
            self._depth -= 1
            if self._depth == 0:
                self._free()
        finally:
            self._guard.release()


class FileLock(_Reentrant):
    """flock(2) on a sibling file: `metadata.db.lock` for `metadata.db`.

    A separate file, because SQLite's own locks are POSIX locks on the database
    file, which any close() of that file in this process would drop.
    """

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        try:
            self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as e:
            raise StoreError(f"cannot create lock file '{path}': {e.strerror}") from None

    def _take(self) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_EX)

    def _free(self) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        os.close(self._fd)


class AdvisoryLock(_Reentrant):
    """A server's lock (PostgreSQL's advisory lock, MySQL's GET_LOCK), held through a connection
    of its own: `take` and `free` are the server's calls."""

    def __init__(self, take: Callable[[], None], free: Callable[[], None]) -> None:
        super().__init__()
        self._take, self._free = take, free  # type: ignore[method-assign]
