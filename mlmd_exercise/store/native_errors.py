"""The native backend's errors: sqlite3's, pg8000's and PyMySQL's become the package's, in one place.

By each error's class and code (SQLite's result code, PostgreSQL's SQLSTATE, MySQL's error
number), never its text: a name taken is a `ConflictError`, a connection lost during a
write an `UnclearWriteError`, anything else a `StoreError` naming the store (password
masked: the label is `str(location)`). `reading` and `writing` wrap the backend's methods;
`writing` also makes each call one transaction, and runs it again, whole, where the
database says it surely was not recorded (`Db.retryable`: a MySQL deadlock, say).
"""

from __future__ import annotations

import functools
import random
import time
from typing import Any, Callable, TypeVar

from mlmd_exercise.errors import ConflictError, MlmdExerciseError, StoreError, UnclearWriteError

__all__ = ["translate", "reading", "writing"]

T = TypeVar("T")


# SQLite's extended result codes for a broken UNIQUE or PRIMARY KEY constraint, and its
# primary codes after which a write's outcome is unknown (I/O error, disk full).
_SQLITE_TAKEN = (2067, 1555)
_SQLITE_UNCLEAR = (10, 13)
# MySQL's error numbers for a duplicate key: ER_DUP_KEY, ER_DUP_ENTRY, ER_DUP_ENTRY_WITH_KEY_NAME.
_MYSQL_TAKEN = (1022, 1062, 1586)
_ATTEMPTS = 5  # runs of one write the database broke off before it gives up


def _sqlstate(error: Exception) -> str:
    detail = error.args[0] if error.args else None
    return str(detail.get("C", "")) if isinstance(detail, dict) else ""


def _refused(label: str, message: object, opening: bool) -> StoreError:
    # While a store is opened, in the words of opening it with ml-metadata.
    return StoreError(f"cannot open store '{label}': {message}" if opening else f"store '{label}' refused: {message}")


def translate(error: Exception, label: str, writing: bool, opening: bool = False) -> Exception:
    """The package's error for a database's, by its class and code (SQLSTATE on PostgreSQL,
    SQLite's result code, MySQL's error number), never its text; other exceptions come back
    unchanged. `opening`: the error came while the store was being opened."""
    import sqlite3

    if isinstance(error, MlmdExerciseError):
        return error
    if isinstance(error, sqlite3.IntegrityError):
        code = getattr(error, "sqlite_errorcode", None)  # Python 3.11 and later
        if code is None or code in _SQLITE_TAKEN:
            return ConflictError(f"{label} already holds a node of that type and name")
        return _refused(label, error, opening)
    if isinstance(error, sqlite3.Error):
        code = getattr(error, "sqlite_errorcode", None)
        if writing and code is not None and code & 0xFF in _SQLITE_UNCLEAR:
            return UnclearWriteError(f"store '{label}' broke off a write: it may or may not be recorded")
        return _refused(label, error, opening)
    if type(error).__module__.startswith("pymysql"):
        return _translate_mysql(error, label, writing, opening)
    import pg8000.exceptions as pg

    if isinstance(error, pg.DatabaseError):
        state = _sqlstate(error)
        if state == "23505":  # unique_violation
            return ConflictError(f"{label} already holds a node of that type and name")
        if writing and (state.startswith("08") or state.startswith("57P")):  # connection lost, shut down
            return UnclearWriteError(f"store '{label}' broke off a write: it may or may not be recorded")
        detail = error.args[0] if error.args else error
        message = detail.get("M", detail) if isinstance(detail, dict) else detail
        return _refused(label, message, opening)
    if isinstance(error, (pg.InterfaceError, OSError)):  # the connection broke
        if writing:
            return UnclearWriteError(f"store '{label}' broke off a write: it may or may not be recorded")
        return StoreError(f"store '{label}' cannot be reached")
    return error


def _translate_mysql(error: Exception, label: str, writing: bool, opening: bool) -> Exception:
    from mlmd_exercise.store.native_mysql import RETRY, MysqlDb

    code = error.args[0] if error.args and isinstance(error.args[0], int) else None
    # The server's own message: it names the user and host for a refused right.
    message = str(error.args[1] if len(error.args) > 1 else error).splitlines()[0] if error.args else str(error)
    if code in _MYSQL_TAKEN:
        return ConflictError(f"{label} already holds a node of that type and name")
    if MysqlDb.lost(error):
        if writing:
            return UnclearWriteError(f"store '{label}' broke off a write: it may or may not be recorded")
        return StoreError(f"store '{label}' cannot be reached: {message}")
    if code in RETRY:  # given up after `_ATTEMPTS`: every run was rolled back
        return StoreError(f"store '{label}' is busy: the write was not recorded ({message}); try again")
    return _refused(label, message, opening)


def reading(method: Callable[..., T]) -> Callable[..., T]:
    @functools.wraps(method)
    def wrapper(self: Any, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except Exception as e:
            translated = translate(e, self.label, writing=False)
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
                translated = translate(e, self.label, writing=True)
                if translated is e:
                    raise
                raise translated from e
        raise AssertionError("unreachable")
    return wrapper
