"""Bundles: selected runs with everything their lineage needs, in one versioned file that
any store (any backend, any database) can import (docs/bundle.md describes the format).

A bundle is JSON lines: a header (`{"mlmd_exercise_bundle": VERSION, ...}`), then the
types, contexts, artifacts, executions and events, then an "end" line with the counts
(a bundle cut short is refused). This module is the format alone, plain data: writing a
line, reading a file back checked whole (bundle_check.Checker) into an index of its records,
reading them again from the file as they are asked for. Exporting a store's runs is a read
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
from array import array
from bisect import bisect_left
from dataclasses import dataclass, field
from typing import IO, Any, Callable, Dict, Iterable, Iterator, List, Mapping, Optional, Tuple, Union

from mlmd_exercise.bundle_check import NODES as _NODES, ORDER as _ORDER, BundleError, Checker
from mlmd_exercise.masking import mask, mask_values

__all__ = ["FORMAT_VERSION", "MAGIC", "BundleError", "Bundle", "Checker", "Counts", "write_line",
           "read_bundle", "bundle_ids", "is_bundle"]

MAGIC = "mlmd_exercise_bundle"  # the header's first key; its value is the format version
FORMAT_VERSION = 2  # 2: metric histories, and NaN and the infinities as {"double": "NaN"}


@dataclass
class Counts:
    """Nodes per kind: written to a bundle, or recorded by an import (and already there)."""

    executions: int = 0
    artifacts: int = 0
    events: int = 0
    contexts: int = 0
    histories: int = 0
    already: Dict[str, int] = field(default_factory=dict)  # kind -> nodes found in the store


class Bundle:
    """A bundle as read and checked: its header and types, and an index of its other
    records (where each line starts, ids, types, origins, contexts, as arrays), never the
    records themselves, which `each` and `read` read from the file again when asked (at
    200,000 runs every record held at once took about 1.4 GB). `contexts`, `artifacts`,
    `executions`, `events` and `histories` are every record of the kind, each a plain dict
    as in the file, read whole on the call: for small bundles and tests."""

    def __init__(self, path: Union[str, os.PathLike], header: Dict[str, Any]) -> None:
        self.path, self.header = path, header
        self.types: List[Dict[str, Any]] = []
        self._type_lines: Dict[Tuple[str, str], int] = {}  # (of, name) -> its line
        self.parts: Dict[str, _Part] = {kind: _Part() for kind in _ORDER[1:-1]}
        self._prefixes: Dict[str, int] = {}  # an origin's "<store>/<kind>", by its index
        self.prefixes: List[str] = []

    def _hold(self, number: int, kind: str, offset: int, record: Dict[str, Any]) -> None:
        if kind == "type":
            record = _from_json(record)
            self._type_lines[(record["of"], record["name"])] = number
            self.types.append(record)
            return
        part = self.parts[kind]
        part.offsets.append(offset)
        if kind in _NODES:
            part.lines.append(number)
            part.ids.append(record["id"])
            part.add_type(record["type"])
            head, _, tail = record["origin"].rpartition("/")
            if head and tail.isascii() and tail.isdigit() and tail == str(int(tail)):
                part.prefix.append(self._prefixes.setdefault(head, len(self._prefixes)))
                if part.prefix[-1] == len(self.prefixes):
                    self.prefixes.append(head)
                part.number.append(int(tail))
            else:  # an origin of another shape: kept whole
                part.prefix.append(-1)
                part.number.append(0)
                part.odd[len(part.ids) - 1] = record["origin"]
            part.contexts.extend(record["contexts"] if kind != "context" else ())
            part.ends.append(len(part.contexts))
        elif kind == "event":
            part.ids.append(record["execution"])
            part.number.append(record["artifact"])
        else:  # a history
            part.ids.append(record["execution"])

    def count(self, kind: str) -> int:
        """How many records of `kind` ("artifact", "event", ...) the bundle holds."""
        return len(self.parts[kind].offsets)

    def origin(self, kind: str, at: int) -> str:
        """The origin of the `at`-th node of `kind`."""
        part = self.parts[kind]
        return part.odd[at] if part.prefix[at] < 0 else f"{self.prefixes[part.prefix[at]]}/{part.number[at]}"

    def position(self, kind: str, node_id: int) -> int:
        """Where the node of `kind` with this bundle id is among its kind's records (-1: none)."""
        return self.parts[kind].position(node_id)

    def node_contexts(self, kind: str, at: int) -> "array[int]":
        """The bundle ids of the contexts the `at`-th node of `kind` is in."""
        part = self.parts[kind]
        return part.contexts[part.ends[at - 1] if at else 0:part.ends[at]]

    def each(self, kind: str) -> Iterator[Dict[str, Any]]:
        """Every record of `kind`, in the file's order, read again from the file."""
        return self.read(kind, range(self.count(kind)))

    def read(self, kind: str, positions: Iterable[int]) -> Iterator[Dict[str, Any]]:
        """The records of `kind` at these positions among their kind's, read from the file.

        Raises:
            BundleError: the file changed since it was checked.
        """
        part = self.parts[kind]
        with open(self.path, "rb") as f:
            at = -1
            for n in positions:
                if n != at + 1 or at < 0:
                    f.seek(part.offsets[n])
                at = n
                try:
                    record = json.loads(f.readline())
                    same = record.get("kind") == kind and (
                        kind not in _NODES or record.get("id") == part.ids[n])
                except (ValueError, AttributeError, RecursionError):
                    same = False
                if not same:
                    raise BundleError(f"'{self.path}' changed since it was checked: nothing more imported from it")
                yield _masked(_from_json(record))

    def line(self, kind: str, node_id: Any) -> str:
        """Where a node's record is, as a message names it: "line 12" (a type's id: (of, name))."""
        if kind == "type":
            return f"line {self._type_lines.get(node_id, '?')}"
        at = self.position(kind, node_id)
        return f"line {self.parts[kind].lines[at] if at >= 0 else '?'}"

    @property
    def contexts(self) -> List[Dict[str, Any]]:
        return list(self.each("context"))

    @property
    def artifacts(self) -> List[Dict[str, Any]]:
        return list(self.each("artifact"))

    @property
    def executions(self) -> List[Dict[str, Any]]:
        return list(self.each("execution"))

    @property
    def events(self) -> List[Dict[str, Any]]:
        return list(self.each("event"))

    @property
    def histories(self) -> List[Dict[str, Any]]:
        return list(self.each("history"))


class _Part:
    """One kind's records as the index holds them, each column an array in the file's order:
    where its line starts; a node's line number, id, type (by index), origin (its
    "<store>/<kind>" by index and its number, or whole in `odd`) and contexts (`ends`: where
    each node's end in `contexts`); an event's execution (`ids`) and artifact (`number`); a
    history's execution (`ids`)."""

    def __init__(self) -> None:
        self.offsets, self.ids, self.number, self.lines = array("q"), array("q"), array("q"), array("q")
        self.type, self.prefix = array("i"), array("i")
        self.type_names: List[str] = []
        self._types: Dict[str, int] = {}
        self.odd: Dict[int, str] = {}
        self.contexts, self.ends = array("q"), array("q")
        self._sorted: Optional[Tuple["array[int]", "array[int]"]] = None

    def add_type(self, name: str) -> None:
        if name not in self._types:
            self._types[name] = len(self.type_names)
            self.type_names.append(name)
        self.type.append(self._types[name])

    def type_of(self, at: int) -> str:
        return self.type_names[self.type[at]]

    def position(self, node_id: int) -> int:
        if self._sorted is None:  # ids ascending, and where each is (made once, on the first call)
            order = array("q", sorted(range(len(self.ids)), key=self.ids.__getitem__))
            self._sorted = (array("q", (self.ids[i] for i in order)), order)
        keys, order = self._sorted
        at = bisect_left(keys, node_id)
        return order[at] if at < len(keys) and keys[at] == node_id else -1


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
    """The bundle at `path`, checked whole before anything is written from it: every record
    as `Checker` checks it, in one pass.

    Raises:
        BundleError: not a bundle, of a newer format version, a line that is not a record
            (naming its line), or cut short (no end line, or counts that do not match it).
    """
    found: List[Bundle] = []

    def hold(number: int, kind: str, record: Dict[str, Any], offset: int) -> None:
        found[0]._hold(number, kind, offset, record)

    with open(path, "rb") as f:
        _read(str(path), _offsets(f), lambda header: found.append(Bundle(path, header)), hold)
    return found[0]


def _offsets(f: IO[bytes]) -> Iterator[Tuple[bytes, int]]:
    """Each line of `f` with where it starts."""
    offset = 0
    for raw in f:
        yield raw, offset
        offset += len(raw)


def bundle_ids(path: Union[str, os.PathLike]) -> Dict[str, "array[int]"]:
    """The ids of the executions and artifacts the bundle at `path` holds ("execution",
    "artifact" -> the ids, ascending, each once), every line checked as `read_bundle` checks
    it, holding ids alone (in arrays: 8 bytes an id): how a prune reads its archive back.

    Raises:
        BundleError: as `read_bundle`.
    """
    ids: Dict[str, "array[int]"] = {"execution": array("q"), "artifact": array("q")}

    def hold(number: int, kind: str, record: Dict[str, Any], offset: int) -> None:
        if kind in ids:
            ids[kind].append(record["id"])

    with open(path, "rb") as f:
        _read(str(path), ((raw, 0) for raw in f), lambda header: None, hold)
    return {kind: array("q", sorted(found)) for kind, found in ids.items()}  # unique: Checker refuses a duplicate


def _read(name: str, lines: Iterable[Tuple[bytes, int]], begin: Callable[[Dict[str, Any]], None],
          hold: Callable[..., None]) -> None:
    """Checks a bundle's lines (each with where it starts), handing its header to `begin` and
    each record after it, with its line number, kind and where it starts, to `hold`."""
    started = False
    counts: Dict[str, int] = {}
    check = Checker(name)
    end: Optional[Dict[str, Any]] = None
    for number, (raw, offset) in enumerate(lines, 1):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise BundleError(f"'{name}' line {number} is not UTF-8 (byte {e.start + 1} of the line): not a "
                              "bundle, or damaged") from None
        try:
            record = json.loads(text)
        except ValueError:
            raise BundleError(f"'{name}' line {number} is not JSON: not a bundle, or damaged") from None
        except RecursionError:
            raise BundleError(f"'{name}' line {number} is nested too deeply to read: damaged") from None
        if not started:
            version = record.get(MAGIC) if isinstance(record, dict) else None
            if not isinstance(version, int) or isinstance(version, bool):
                raise BundleError(f"'{name}' is not a bundle (its first line has no '{MAGIC}')")
            if version > FORMAT_VERSION:
                raise BundleError(f"'{name}' is a bundle of format version {version}, newer than this "
                                  f"mlmd-exercise reads ({FORMAT_VERSION}): upgrade mlmd-exercise")
            begin(record)
            started = True
            continue
        if end is not None:
            raise BundleError(f"'{name}' line {number} follows the end line: damaged")
        kind = check.record(number, record)
        if kind == "end":
            end = record
        else:
            plural = _LISTS.get(kind, f"{kind}s")
            counts[plural] = counts.get(plural, 0) + 1
            hold(number, kind, record, offset)
    if not started:
        raise BundleError(f"'{name}' is empty, not a bundle")
    if end is None or any(end.get(k, 0) != counts.get(k, 0)
                          for k in ("executions", "artifacts", "events", "contexts", "histories")):
        raise BundleError(f"'{name}' is cut short (its end line is missing or does not match): damaged")


_LISTS = {"type": "types", "history": "histories"}
