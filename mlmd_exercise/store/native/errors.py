"""The native backend's errors: a database's become the package's, each engine's by its dialect.

By each error's class and code (SQLite's result code, PostgreSQL's SQLSTATE, MySQL's error
number: `Db.translated` of each dialect), never its text: a name taken is a `ConflictError`,
a connection lost during a write an `UnclearWriteError`, anything else a `StoreError` naming
the store (password masked: the label is `str(location)`). `reading` and `writing` wrap the
backend's methods; `writing` also makes each call one transaction, and runs it again, whole,
where the database says it surely was not recorded (`Db.retryable`: a MySQL deadlock, say).
"""

from __future__ import annotations

import functools
import random
import time
from typing import Any, Callable, Type, TypeVar

from mlmd_exercise.errors import ConflictError, MlmdExerciseError, StoreError, UnclearWriteError
from mlmd_exercise.store.native.sql import Db

__all__ = ["translate", "reading", "writing", "taken", "unclear", "refused", "unreachable", "disk_full", "damaged"]

T = TypeVar("T")
_ATTEMPTS = 5  # runs of one write the database broke off before it gives up


def taken(label: str) -> ConflictError:
    return ConflictError(f"{label} already holds a node of that type and name")


def unclear(label: str) -> UnclearWriteError:
    return UnclearWriteError(f"store '{label}' broke off a write: it may or may not be recorded")


def disk_full(label: str) -> StoreError:
    # The database ran out of space before its commit: the transaction was rolled back whole.
    return StoreError(f"the disk holding store '{label}' is full: the write was rolled back, nothing of it "
                      "is recorded; free some space and run it again")


def damaged(label: str, writing: bool) -> StoreError:
    done = "the write was rolled back, nothing of it is recorded" if writing else "it cannot be read"
    return StoreError(f"store '{label}' is damaged (database disk image is malformed): {done}; "
                      "'mlmd-exercise check' says more")


def refused(label: str, message: object, opening: bool) -> StoreError:
    # While a store is opened, in the words of opening it with ml-metadata.
    return StoreError(f"cannot open store '{label}': {message}" if opening else f"store '{label}' refused: {message}")


def unreachable(label: str, message: str = "") -> StoreError:
    return StoreError(f"store '{label}' cannot be reached" + (f": {message}" if message else ""))


def translate(error: Exception, label: str, writing: bool, dialect: Type[Db], opening: bool = False) -> Exception:
    """The package's error for a database's (see the module's docstring); other exceptions
    come back unchanged. `opening`: the error came while the store was being opened."""
    if isinstance(error, MlmdExerciseError):
        return error
    found = dialect.translated(error, label, writing, opening)
    if found is not None:
        return found
    if isinstance(error, OSError):  # the connection broke under the driver
        return unclear(label) if writing else unreachable(label)
    return error


def reading(method: Callable[..., T]) -> Callable[..., T]:
    @functools.wraps(method)
    def wrapper(self: Any, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except Exception as e:
            translated = translate(e, self.label, False, type(self.db))
            if translated is e:
                raise
            raise translated from e
    return wrapper


def writing(method: Callable[..., T]) -> Callable[..., T]:
    """One transaction: committed when the method returns, rolled back when it raises."""
    @functools.wraps(method)
    def wrapper(self: Any, *args, **kwargs):
        if not self.writable:
            raise StoreError(f"store '{self.label}' was opened read-only")
        for attempt in range(1, _ATTEMPTS + 1):
            try:
                with self.db.transaction():
                    result = method(self, *args, **kwargs)
                return result
            except Exception as e:
                if attempt < _ATTEMPTS and self.db.retryable(e):
                    # Rolled back whole: run it again, after a short wait that differs
                    # between writers, so that two that deadlocked do not meet again.
                    time.sleep(random.uniform(0.005, 0.02) * attempt)
                    continue
                translated = translate(e, self.label, True, type(self.db))
                if translated is e:
                    raise
                raise translated from e
        raise AssertionError("unreachable")
    return wrapper
