"""What a value is: the one table of rules for every Python value a user may log as a param,
a metric or a property, checked when it is logged (the value table (docs/python.md) says the same).

- bool, str, and whole numbers inside 32 bits are stored as MLMD's bool, string and int values;
- a whole number beyond 32 bits (MLMD's PostgreSQL and MySQL int columns) and up to 2**53 is
  stored as a double, which holds it exactly; beyond 2**53 a param or property is stored as the
  string of its digits, and a metric is refused (it would no longer be a number);
- a float is stored as a double, except NaN, +inf, -inf and -0.0, which no database keeps as a
  double (SQLite turns NaN into NULL and -0.0 into 0; ml-metadata writes doubles as text, and
  "nan" is no SQL): they are stored as a `google.protobuf.DoubleValue` packed in MLMD's
  `proto_value` (an `Any`), exact, which every MLMD client reads as a proto value and both of
  this package's backends read back as the float (store/any_json.py);
- numpy and pandas scalars and 0-d arrays become the Python number, bool or str they hold;
- a dict (a JSON object) is stored as MLMD's struct value (params and properties, not metrics),
  nested at most `MAX_DEPTH` levels (dicts and lists): protobuf parses a message at most 100
  deep, and a struct level is three of those (Struct, its field, Value), so a deeper struct is
  refused by ml-metadata's writes and, written by the native backend, read by nobody;
- everything else is refused at the call, in one line naming the key and the value: None, NaN
  of pandas (pd.NA, NaT), lists, tuples, sets, bytes, datetimes, Decimals, and text with a NUL
  character (ml-metadata cuts text at a NUL, PostgreSQL refuses it) or a lone surrogate (not
  UTF-8).

A metric is a number (int or float, bool refused: a curve of it means nothing). Names: a
param's or metric's name is a non-empty string of at most `MAX_NAME` characters without a NUL,
and none of the names this package records itself (`RESERVED`).
"""

from __future__ import annotations

import enum
import math
from typing import Any, Dict, Mapping, Optional

from mlmd_exercise.errors import MlmdExerciseError
from mlmd_exercise.records import METRIC_NAMES, PropertyValue

__all__ = ["Role", "RESERVED", "MAX_NAME", "check_node_name", "MAX_DEPTH", "INT32", "EXACT_DOUBLE", "normalize", "storable",
           "check_name", "check_mapping", "exact_double", "is_number", "nesting", "shown"]


class Role(enum.Enum):
    """What a value is logged as: the rules differ a little (a metric is a number)."""

    PARAM = "param"
    METRIC = "metric"
    PROPERTY = "property"


# MLMD's PostgreSQL and MySQL tables keep integer properties in 32 bits (SQLite's in 64): a
# larger whole number is stored as a double, exact up to 2**53, so that it fits everywhere.
INT32 = range(-2 ** 31, 2 ** 31)
_INT32_FIRST, _INT32_END = INT32.start, INT32.stop
EXACT_DOUBLE = 2 ** 53
# The names a param or metric may not have: what this package records on a run itself.
RESERVED = frozenset({"version", "fingerprint", "name", "state", METRIC_NAMES, "error_type", "error_message"})
MAX_NAME = 200  # characters: a property's name column holds 255 on MySQL and PostgreSQL
MAX_DEPTH = 32  # levels of dicts and lists in a struct value: 33 is what protobuf's parser refuses


def nesting(value: Any) -> int:
    """How many levels of dicts and lists `value` holds (0 for a number), counted without
    recursion: a value nested 100,000 deep is measured, not a RecursionError."""
    deepest, todo = 0, [(value, 1)]
    while todo:
        v, level = todo.pop()
        if isinstance(v, dict):
            v = list(v.values())
        if isinstance(v, (list, tuple)):
            deepest = max(deepest, level)
            todo.extend((x, level + 1) for x in v)
    return deepest


def check_node_name(where: str, name: Optional[str]) -> None:
    """A run's, type's, experiment's or role's name, checked as a param's is: at most MAX_NAME
    characters, on every database (MLMD's name columns are VARCHAR(255) on PostgreSQL and
    MySQL; SQLite would take any length, and such a store would not export to a server).

    Raises:
        MlmdExerciseError: a longer name, at the call and before anything is written.
    """
    if isinstance(name, str) and len(name) > MAX_NAME:
        raise MlmdExerciseError(f"{where} {shown(name)} is {len(name):,} characters long: a name may have at "
                                f"most {MAX_NAME} on every database (MLMD's servers keep 255)")


def shown(value: Any, limit: int = 60) -> str:
    """A value as an error message names it: its repr, cut to `limit` characters."""
    try:
        text = repr(value)
    except Exception:  # a repr that fails is no reason to hide the real error
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[:limit - 3] + "..."


def exact_double(value: float) -> bool:
    """Whether a database double holds `value` as it is: not NaN, not infinite, not -0.0."""
    return math.isfinite(value) and not (value == 0.0 and math.copysign(1.0, value) < 0)


def is_number(value: Any) -> bool:
    """An int or a float, not a bool."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


_BUILTIN = frozenset({bool, int, float, str, dict})


def _plain(value: Any) -> Any:
    """numpy and pandas scalars and 0-d arrays as the Python value they hold; else `value`."""
    if type(value) in _BUILTIN:  # most values, told without asking for their module
        return value
    module = type(value).__module__.split(".")[0]
    if module not in ("numpy", "pandas"):
        return value
    dtype = getattr(value, "dtype", None)
    # numpy's (and pandas') bools, ints, floats and text, as scalars or 0-d arrays; not its
    # datetimes or complex numbers, whose .item() would be another kind of value.
    if getattr(value, "shape", None) == () and getattr(dtype, "kind", "") in ("b", "i", "u", "f", "U"):
        return value.item()
    return value


def _refuse(role: Role, key: str, value: Any, why: str) -> MlmdExerciseError:
    from mlmd_exercise.masking import mask_value

    # The value as it may be shown: a secret in it (a password param, a token) masked; the key
    # as its repr, so that a NUL or a lone surrogate in it is named, not printed.
    return MlmdExerciseError(f"{role.value} {key!r} = {shown(mask_value(key, value))}: {why}")


def _check_text(role: Role, key: str, text: str) -> None:
    if "\x00" in text:
        raise _refuse(role, key, text, "text with a NUL character (ml-metadata cuts text there, "
                      "PostgreSQL refuses it): remove it")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise _refuse(role, key, text, "text with a lone surrogate, which is not UTF-8: "
                      "no database stores it") from None


def normalize(key: str, value: Any, role: Role = Role.PARAM) -> PropertyValue:
    """`value` as the package stores it (see the module's rules), numpy's and pandas' scalars
    made Python's; a whole number beyond 32 bits is a double, beyond 2**53 a string.

    Raises:
        MlmdExerciseError: the value is refused, in one line naming `key` and the value.
    """
    value = _plain(value)
    if isinstance(value, bool):
        if role is Role.METRIC:
            raise _refuse(role, key, value, "a metric is a number, not true/false: log it as a param")
        return value
    if isinstance(value, int):
        if value in INT32:
            return value
        if abs(value) <= EXACT_DOUBLE:
            return float(value)
        if role is Role.METRIC:
            raise _refuse(role, key, value, f"a whole number beyond 2**53, which no database stores as a "
                          "number exactly: log it as a param (kept as its digits)")
        return str(value)
    if isinstance(value, float):
        return value
    if isinstance(value, str):
        if role is Role.METRIC:
            raise _refuse(role, key, value, "a metric is a number: log text as a param")
        _check_text(role, key, value)
        return value
    if isinstance(value, dict) and role is not Role.METRIC:
        if nesting(value) > MAX_DEPTH:
            raise _refuse(role, key, value, f"a dict nested more than {MAX_DEPTH} levels deep, which MLMD "
                          "cannot read back (protobuf parses 100 levels, three a struct level)")
        return _struct(role, key, value)
    hint = _HINTS.get(type(value).__name__, "use a number, a string, true/false"
                      + ("" if role is Role.METRIC else " or a dict (a JSON object)"))
    raise _refuse(role, key, value, f"a {type(value).__name__} cannot be stored: {hint}")


_HINTS = {
    "NoneType": "there is no value: leave the key out",
    "NAType": "there is no value: leave the key out",
    "NaTType": "there is no time: leave the key out",
    "list": "log each item under a key of its own, or a string (json.dumps)",
    "tuple": "log each item under a key of its own, or a string (json.dumps)",
    "set": "log each item under a key of its own, or a string",
    "ndarray": "log each item under a key of its own (an array of one value: .item())",
    "bytes": "log a string (its hex, or base64)",
    "datetime": "log a string (.isoformat()) or a number (.timestamp())",
    "date": "log a string (.isoformat())",
    "Timestamp": "log a string (.isoformat()) or a number (.timestamp())",
    "Decimal": "log float(value) for a number, or str(value) to keep every digit",
    "complex": "log its real and imaginary parts under keys of their own",
    "complex64": "log its real and imaginary parts under keys of their own",
    "complex128": "log its real and imaginary parts under keys of their own",
    "datetime64": "log a string (str(value))",
    "timedelta64": "log a number of seconds",
}


def _struct(role: Role, key: str, value: Mapping[Any, Any]) -> Dict[str, Any]:
    """A dict as MLMD's struct holds it: string keys; JSON values (a struct's numbers are
    doubles: NaN and infinities cannot be one)."""
    def plain(v: Any) -> Any:
        v = _plain(v)
        if v is None or isinstance(v, (bool, str)):
            if isinstance(v, str):
                _check_text(role, key, v)
            return v
        if is_number(v):
            if not math.isfinite(v):
                raise _refuse(role, key, value, "a dict holding NaN or an infinity (a struct's numbers are "
                              "finite): log that number under a key of its own")
            return float(v)
        if isinstance(v, dict):
            return {check(k): plain(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        raise _refuse(role, key, value, f"a dict holding a {type(v).__name__}, which JSON cannot hold")

    def check(k: Any) -> str:
        if not isinstance(k, str):
            raise _refuse(role, key, value, f"a dict with a key that is not a string ({shown(k)})")
        _check_text(role, key, k)
        return k

    return plain(value)


def storable(key: str, value: Any) -> PropertyValue:
    """`value` as every MLMD database can hold it (`normalize` as a param or property)."""
    kind = type(value)  # what `normalize` keeps as it is, told at once: most values
    if kind is float or kind is bool or (kind is int and _INT32_FIRST <= value < _INT32_END) or (
            kind is str and value.isascii() and "\x00" not in value):
        return value
    return normalize(key, value, Role.PROPERTY)


def check_name(key: Any, role: Role, reserved: bool = True) -> str:
    """A param's or metric's name, checked: a non-empty string of at most MAX_NAME
    characters, no NUL, and (`reserved`) none of the names this package records itself.

    Raises:
        MlmdExerciseError: naming the bad name.
    """
    if not isinstance(key, str):
        raise MlmdExerciseError(f"a {role.value}'s name must be a string, not {shown(key)}")
    if not key.strip():
        raise MlmdExerciseError(f"a {role.value}'s name must not be empty, not {key!r}")
    if len(key) > MAX_NAME:
        raise MlmdExerciseError(f"{role.value} name {shown(key)} is {len(key)} characters long: "
                                f"at most {MAX_NAME}")
    _check_text(role, key, key)
    if reserved and key in RESERVED:
        raise MlmdExerciseError(f"'{key}' names what this package records itself "
                                f"({', '.join(sorted(RESERVED))}): give the {role.value} another name")
    return key


def check_mapping(what: str, given: Optional[Mapping[Any, Any]]) -> Mapping[Any, Any]:
    """`given` where it is a dict (None: an empty one): params, properties, inputs.

    Raises:
        MlmdExerciseError: it is something else, naming `what`.
    """
    if given is None:
        return {}
    if not isinstance(given, Mapping):
        raise MlmdExerciseError(f"{what} must be a dict of name -> value, not {shown(given)}")
    return given
