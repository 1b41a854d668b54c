"""The package's exceptions.

Every message names the offending value, quoted, so that the CLI can print it as
the one line a user sees. The CLI maps all of these to exit code 2 (bad input).
"""

from __future__ import annotations

__all__ = [
    "MlmdExerciseError",
    "StoreError",
    "SchemaError",
    "NotFoundError",
    "RenderError",
    "ConflictError",
    "UnclearWriteError",
    "UsageError",
]


class MlmdExerciseError(Exception):
    """Base class of every error this package raises on purpose."""


class StoreError(MlmdExerciseError):
    """The store cannot be opened or used: missing, not a database, unreachable."""


class SchemaError(MlmdExerciseError):
    """A type in the store conflicts with the type this package declares."""


class NotFoundError(MlmdExerciseError):
    """An id or name that is not in the store."""


class RenderError(MlmdExerciseError):
    """A picture cannot be drawn: unknown output format, graphviz missing."""


class ConflictError(StoreError):
    """A write the store refused because a name is taken (a run's name, for its type)."""


class UnclearWriteError(StoreError):
    """A write whose outcome is unknown: the connection broke, perhaps after the commit.
    Check by the run's name before trying again."""


class UsageError(MlmdExerciseError):
    """A call given an argument it cannot use (a malformed filter query, say): the message
    names the argument and the value, and where it fails."""
