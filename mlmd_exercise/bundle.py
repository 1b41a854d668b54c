"""Bundles: selected runs with everything their lineage needs, in one versioned file that
any store (any backend, any database) can import (docs/bundle.md describes the format).

A bundle is JSON lines: a header (`{"mlmd_exercise_bundle": VERSION, ...}`), then the
types, contexts, artifacts, executions and events, then an "end" line with the counts
(a bundle cut short is refused). This module is the format alone, plain data: writing a
line, reading a file back checked whole. Exporting a store's runs is a read
(`read/export.py`); importing a bundle is a write (`write/bundle_import.py`).

Each node carries its origin, "<source store>/<kind>/<id>" (kept from an earlier import
where it has one), and an imported node holds it as the custom property `ORIGIN`:
importing looks nodes up by it, so the same bundle twice, or two overlapping bundles,
record each node once, and a later bundle's runs join the artifacts an earlier one brought.
A custom property rather than MLMD's `external_id`: external_id is unique store-wide and
other tools (TFX, Kubeflow) may have set it already; a property is free, is exported again
with the node, and is searchable by both backends' queries.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from typing import IO, Any, Dict, Iterable, List, Mapping, Optional, Union

from mlmd_exercise.errors import MlmdExerciseError
from mlmd_exercise.masking import mask, mask_values

__all__ = ["FORMAT_VERSION", "MAGIC", "ORIGIN", "BundleError", "Bundle", "Counts", "write_line", "read_bundle",
           "is_bundle"]

MAGIC = "mlmd_exercise_bundle"  # the header's first key; its value is the format version
FORMAT_VERSION = 2  # 2: metric histories, and NaN and the infinities as {"double": "NaN"}
ORIGIN = "mlmd_exercise_origin"  # custom property: where an imported node came from


class BundleError(MlmdExerciseError):
    """A file that is not a bundle we can read: not one, of a newer format, cut short."""


@dataclass
class Counts:
    """Nodes per kind: written to a bundle, or recorded by an import (and already there)."""

    executions: int = 0
    artifacts: int = 0
    events: int = 0
    contexts: int = 0
    histories: int = 0
    already: Dict[str, int] = field(default_factory=dict)  # kind -> nodes found in the store


@dataclass
class Bundle:
    """A bundle as read: its header and its records, each a plain dict as in the file."""

    header: Dict[str, Any]
    types: List[Dict[str, Any]] = field(default_factory=list)
    contexts: List[Dict[str, Any]] = field(default_factory=list)
    artifacts: List[Dict[str, Any]] = field(default_factory=list)
    executions: List[Dict[str, Any]] = field(default_factory=list)
    events: List[Dict[str, Any]] = field(default_factory=list)
    histories: List[Dict[str, Any]] = field(default_factory=list)


def write_line(f: IO[str], record: Mapping[str, Any]) -> None:
    """One record as a bundle's line."""
    f.write(json.dumps(_plain_json(record), separators=(",", ":"), ensure_ascii=False, allow_nan=False) + "\n")


def _plain_json(value: Any) -> Any:
    """`value` with NaN and the infinities as {"double": "NaN"|"Infinity"|"-Infinity"}: JSON has
    no such numbers (format 2; `_from_json` reads them back)."""
    if isinstance(value, float) and not math.isfinite(value):
        return {_DOUBLE: "NaN" if value != value else ("Infinity" if value > 0 else "-Infinity")}
    if isinstance(value, dict):
        return {k: _plain_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain_json(v) for v in value]
    return value


_DOUBLE = "double"
_DOUBLES = {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}


def _from_json(value: Any) -> Any:
    if isinstance(value, dict):
        if len(value) == 1 and value.get(_DOUBLE) in _DOUBLES:
            return _DOUBLES[value[_DOUBLE]]
        return {k: _from_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_json(v) for v in value]
    return value


# -- reading --------------------------------------------------------------------------------


# -- reading --------------------------------------------------------------------------------


def is_bundle(path: Union[str, os.PathLike]) -> bool:
    """Whether the file starts as a bundle does (its header's first key), of any version."""
    try:
        with open(path, "rb") as f:
            return f.read(len(MAGIC) + 2) == b'{"' + MAGIC.encode()
    except OSError:
        return False


def _masked(record: Dict[str, Any]) -> Dict[str, Any]:
    """A node's record with its secrets masked, as it may be recorded (a bundle an older
    version wrote may hold them: see `masking`)."""
    if record.get("kind") not in ("context", "artifact", "execution"):
        return record
    record = dict(record)
    for key in ("properties", "custom"):
        if isinstance(record.get(key), dict):
            record[key] = mask_values(record[key])
    if isinstance(record.get("uri"), str):
        record["uri"] = mask(record["uri"], whole=True)
    if isinstance(record.get("name"), str):
        record["name"] = mask(record["name"])
    return record


def read_bundle(path: Union[str, os.PathLike]) -> Bundle:
    """The bundle at `path`, checked whole.

    Raises:
        BundleError: not a bundle, of a newer format version, a line that is not a record,
            or cut short (no end line, or counts that do not match it).
    """
    name = str(path)
    with open(path, encoding="utf-8") as f:
        lines: Iterable[str] = f
        bundle: Optional[Bundle] = None
        end: Optional[Dict[str, Any]] = None
        for number, text in enumerate(lines, 1):
            try:
                record = _from_json(json.loads(text))
            except ValueError:
                raise BundleError(f"'{name}' line {number} is not JSON: not a bundle, or damaged") from None
            if bundle is None:
                version = record.get(MAGIC) if isinstance(record, dict) else None
                if not isinstance(version, int):
                    raise BundleError(f"'{name}' is not a bundle (its first line has no '{MAGIC}')")
                if version > FORMAT_VERSION:
                    raise BundleError(f"'{name}' is a bundle of format version {version}, newer than this "
                                      f"mlmd-exercise reads ({FORMAT_VERSION}): upgrade mlmd-exercise")
                bundle = Bundle(record)
                continue
            kind = record.get("kind") if isinstance(record, dict) else None
            if end is not None:
                raise BundleError(f"'{name}' line {number} follows the end line: damaged")
            if kind == "end":
                end = record
            elif kind in ("type", "context", "artifact", "execution", "event", "history"):
                getattr(bundle, {"type": "types", "history": "histories"}.get(kind, f"{kind}s")).append(
                    _masked(record))
            else:
                raise BundleError(f"'{name}' line {number} holds an unknown record kind '{kind}'")
    if bundle is None:
        raise BundleError(f"'{name}' is empty, not a bundle")
    if end is None or any(end.get(k, 0) != len(getattr(bundle, k))
                          for k in ("executions", "artifacts", "events", "contexts", "histories")):
        raise BundleError(f"'{name}' is cut short (its end line is missing or does not match): damaged")
    return bundle
