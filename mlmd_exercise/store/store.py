"""An open store: where it lives, its backend, the lock its writers share, its catalog."""

from __future__ import annotations

import contextlib
import weakref
from typing import TYPE_CHECKING, Any, Callable, Iterator, Optional

from mlmd_exercise.errors import StoreError
from mlmd_exercise.store.address import Location
from mlmd_exercise.store.backend import Backend

if TYPE_CHECKING:
    from mlmd_exercise.store.catalog import Catalog

__all__ = ["Store"]


class Store:
    """An open MLMD store: where it lives, its backend, and the lock its writers share.

    `str(store)` names the store for messages, with any password masked. Made by `open_store`
    (store/__init__.py), through the opening module of its engine.
    """

    def __init__(self, backend: Backend, location: Location, lock: Any,
                 closer: Optional[Callable[[], None]] = None, admin: object = None) -> None:
        self._backend = backend
        self.location = location
        # PostgreSQL and MySQL: the package's own connection to the server (its locks, its
        # checks), beside the backend's; None for SQLite.
        self.admin = admin
        self._lock = lock
        self._catalog: Optional["Catalog"] = None
        # Closed when dropped (by the garbage collector, in any thread) or by `close`, once.
        self._closer = weakref.finalize(self, closer if closer is not None else backend.close)

    @property
    def backend(self) -> Backend:
        """The backend, while the store is open.

        Raises:
            StoreError: the store was closed (a closed connection is never opened again behind
                the caller's back).
        """
        if not self._closer.alive:
            raise StoreError(f"store '{self}' was closed: open it again to use it")
        return self._backend

    def __str__(self) -> str:
        return str(self.location)

    def __repr__(self) -> str:
        return f"Store({str(self.location)!r})"

    @property
    def catalog(self) -> "Catalog":
        """Its types and contexts by name, looked up once (see `store.catalog`)."""
        self.backend  # noqa: B018 (raises where the store was closed)
        if self._catalog is None:
            from mlmd_exercise.store.catalog import Catalog

            # Not self: no cycle keeps a store open.
            self._catalog = Catalog(self._backend, self.location, self._lock)
        return self._catalog

    def close(self) -> None:
        """Closes its connections and frees its lock; a store dropped is closed the same way.
        Using it after that raises StoreError."""
        self._closer()

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        """Holds the store's write lock: one writer at a time across processes."""
        self.backend  # noqa: B018 (raises where the store was closed)
        if self._lock is None:
            raise StoreError(f"store '{self}' was opened read-only")
        with self._lock:
            yield
