"""A bundle's records checked as they are read (bundle.py reads; docs/bundle.md is the
format): what makes a file refused, with its line, before anything of it is written."""

from __future__ import annotations

from typing import Any, Dict, Set, Tuple

from mlmd_exercise.errors import MlmdExerciseError
from mlmd_exercise.records import EVENT_TYPES, ArtifactState, ExecutionState
from mlmd_exercise.values import MAX_DEPTH, is_number, nesting, shown

__all__ = ["BundleError", "Checker", "ORDER", "NODES"]


class BundleError(MlmdExerciseError):
    """A file that is not a bundle we can read: not one, of a newer format, cut short."""


# The kinds of record in the order a bundle holds them: a record names only what came before.
ORDER = ("type", "context", "artifact", "execution", "event", "history", "end")
NODES = ("context", "artifact", "execution")
_FIELDS: Dict[str, Dict[str, Tuple[type, ...]]] = {  # what each record must hold, of what kind
    "type": {"of": (str,), "name": (str,), "properties": (dict,)},
    "context": {"id": (int,), "type": (str,), "name": (str,), "properties": (dict,), "custom": (dict,),
                "origin": (str,)},
    "artifact": {"id": (int,), "type": (str,), "uri": (str,), "state": (str,), "properties": (dict,),
                 "custom": (dict,), "origin": (str,), "contexts": (list,)},
    "execution": {"id": (int,), "type": (str,), "state": (str,), "properties": (dict,), "custom": (dict,),
                  "origin": (str,), "contexts": (list,)},
    "event": {"artifact": (int,), "execution": (int,), "type": (str,), "path": (list,)},
    "history": {"execution": (int,), "key": (str,), "points": (list,)},
}
_OPTIONAL: Dict[str, Tuple[type, ...]] = {"name": (str, type(None)), "created_ms": (int, type(None)),
                                          "updated_ms": (int, type(None)), "external_id": (str, type(None)),
                                          "ms": (int, type(None))}
_STATES = {"artifact": {s.value for s in ArtifactState}, "execution": {s.value for s in ExecutionState}}
_KINDS = {"INT": (int,), "DOUBLE": (int, float, dict), "STRING": (str,), "BOOLEAN": (bool,),
          "STRUCT": (dict, list, str, int, float, bool, type(None)), "PROTO": (dict,)}  # a double may be {"double": ...}


class Checker:
    """A bundle's records checked as they are read, one line at a time, so that a bundle is
    refused before anything of it is written: each record's fields and their kinds, its
    kind in the format's order, ids unique per kind, every id and type it names declared on
    an earlier line (an event's artifact and execution, a node's type and contexts, a
    history's run), states and event types MLMD knows, properties its type declares, and
    values MLMD can read back (nested at most `values.MAX_DEPTH` levels). It keeps only the
    index of ids and the types' declared properties, not the records.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.ids: Dict[str, Set[int]] = {kind: set() for kind in NODES}
        self.types: Dict[Tuple[str, str], Dict[str, str]] = {}  # (of, name) -> property -> its type
        self.at = 0  # the kind's place in ORDER the last record had

    def _refuse(self, number: int, why: str) -> BundleError:
        return BundleError(f"'{self.name}' line {number} {why}: refused, nothing imported")

    def record(self, number: int, record: Any) -> str:
        """Checks one record (line `number`); its kind.

        Raises:
            BundleError: naming the line and what is wrong with it.
        """
        kind = record.get("kind") if isinstance(record, dict) else None
        if kind not in ORDER:
            raise self._refuse(number, f"holds an unknown record kind '{kind}'")
        place = ORDER.index(kind)
        if place < self.at:
            raise self._refuse(number, f"is {_a(kind)} after {_a(ORDER[self.at])} (a bundle holds types, contexts, "
                               "artifacts, executions, events, histories, in this order)")
        self.at = place
        if kind == "end":
            return kind
        for key, kinds in _FIELDS[kind].items():
            self._field(number, kind, record, key, kinds)
        for key, kinds in _OPTIONAL.items():
            if key in record:
                self._field(number, kind, record, key, kinds)
        getattr(self, f"_{kind}")(number, record)
        return kind

    def _field(self, number: int, kind: str, record: Dict[str, Any], key: str, kinds: Tuple[type, ...]) -> None:
        value = record.get(key, _MISSING)
        if value is _MISSING:
            raise self._refuse(number, f"is {_a(kind)} without '{key}'")
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            raise self._refuse(number, f"is {_a(kind)} whose '{key}' is {shown(value)}, not {_kind_names(kinds)}")

    def _type(self, number: int, t: Dict[str, Any]) -> None:
        if t["of"] not in NODES:
            raise self._refuse(number, f"is a type of '{t['of']}', not of an artifact, execution or context")
        for key, declared in t["properties"].items():
            if declared not in _KINDS:
                raise self._refuse(number, f"is type '{t['name']}' declaring property '{key}' as {shown(declared)}, "
                                   f"not one of MLMD's ({', '.join(_KINDS)})")
        if self.types.setdefault((t["of"], t["name"]), t["properties"]) != t["properties"]:
            raise self._refuse(number, f"declares {t['of']} type '{t['name']}' a second time, otherwise")

    def _node(self, number: int, kind: str, node: Dict[str, Any]) -> None:
        of = f"{kind} {node['id']}"
        if node["id"] in self.ids[kind]:
            raise self._refuse(number, f"is {of} a second time (a duplicate id)")
        declared = self.types.get((kind, node["type"]))
        if declared is None:
            raise self._refuse(number, f"is {of} of type '{node['type']}', which the bundle does not declare")
        if kind in _STATES and node["state"] not in _STATES[kind]:
            raise self._refuse(number, f"is {of} in state {shown(node['state'])}, which MLMD does not know "
                               f"({', '.join(sorted(_STATES[kind]))})")
        for key, value in node["properties"].items():
            if key not in declared:
                raise self._refuse(number, f"is {of} with property '{key}', which its type '{node['type']}' "
                                   "does not declare")
            if not _of_kind(value, declared[key]):
                raise self._refuse(number, f"is {of} whose property '{key}' is {shown(value)}, not the "
                                   f"{declared[key]} its type declares")
        for key, value in {**node["properties"], **node["custom"]}.items():
            if nesting(value) > MAX_DEPTH:
                raise self._refuse(number, f"is {of} whose property '{key}' is nested more than {MAX_DEPTH} levels "
                                   "deep, which MLMD cannot read back")
        for c in node.get("contexts", ()):
            if isinstance(c, bool) or c not in self.ids["context"]:  # True == 1: not an id
                raise self._refuse(number, f"is {of} in context {shown(c)}, which is not in the bundle")
        self.ids[kind].add(node["id"])

    def _context(self, number: int, node: Dict[str, Any]) -> None:
        self._node(number, "context", node)

    def _artifact(self, number: int, node: Dict[str, Any]) -> None:
        self._node(number, "artifact", node)

    def _execution(self, number: int, node: Dict[str, Any]) -> None:
        self._node(number, "execution", node)

    def _event(self, number: int, e: Dict[str, Any]) -> None:
        if e["type"] not in EVENT_TYPES:
            raise self._refuse(number, f"is an event of type {shown(e['type'])}, which MLMD does not know "
                               f"({', '.join(EVENT_TYPES)})")
        for kind in ("artifact", "execution"):
            if e[kind] not in self.ids[kind]:
                raise self._refuse(number, f"is an event naming {kind} {e[kind]}, which is not in the bundle")
        if any(isinstance(step, bool) or not isinstance(step, (str, int)) for step in e["path"]):
            raise self._refuse(number, f"is an event whose path {shown(e['path'])} holds a step that is neither "
                               "a key (a string) nor an index (a whole number)")

    def _history(self, number: int, h: Dict[str, Any]) -> None:
        if h["execution"] not in self.ids["execution"]:
            raise self._refuse(number, f"is a history of execution {h['execution']}, which is not in the bundle")
        for point in h["points"]:
            if not (isinstance(point, list) and len(point) == 3 and all(
                    isinstance(v, int) and not isinstance(v, bool) for v in point[:2])
                    and (is_number(point[2]) or isinstance(point[2], dict))):
                raise self._refuse(number, f"is a history whose point {shown(point)} is not [step, ms, value]")


_MISSING = object()


def _of_kind(value: Any, declared: str) -> bool:
    """Whether a property's value (as JSON) can be of the kind its type declares."""
    if declared in ("INT", "DOUBLE") and isinstance(value, bool):  # True is an int to Python, not to MLMD
        return False
    return isinstance(value, _KINDS[declared])


def _a(kind: str) -> str:
    return ("an " if kind[0] in "aeiou" else "a ") + kind


def _kind_names(kinds: Tuple[type, ...]) -> str:
    names = {int: "a whole number", float: "a number", str: "a string", dict: "an object", list: "a list",
             bool: "true/false", type(None): "null"}
    return " or ".join(names[k] for k in kinds)
