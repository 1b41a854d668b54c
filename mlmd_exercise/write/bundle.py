"""Bundles: selected runs with everything their lineage needs, in one versioned file that
any store (any backend, any database) can import (docs/bundle.md describes the format).

A bundle is JSON lines: a header (`{"mlmd_exercise_bundle": VERSION, ...}`), then the
types, contexts, artifacts, executions and events, then an "end" line with the counts
(a bundle cut short is refused). Export reads through the Backend interface; import
writes through it (`put_type`, `put_context`, `put_artifacts`, `put_lineage`,
`put_memberships`), so both work on ml-metadata and on the native backend.

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
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Set, Tuple, Union

from mlmd_exercise.errors import MlmdExerciseError
from mlmd_exercise.masking import mask, mask_values
from mlmd_exercise.records import (METRIC_NAMES, ArtifactRecord, ContextRecord, EventRecord, ExecutionRecord, Kind,
                                   PropertyType, TypeRecord)
from mlmd_exercise.store import Store
from mlmd_exercise.store.backend import Query

__all__ = ["FORMAT_VERSION", "MAGIC", "ORIGIN", "BundleError", "Bundle", "Counts", "store_identity",
           "select_executions", "export_bundle", "read_bundle", "is_bundle", "import_bundle"]

MAGIC = "mlmd_exercise_bundle"  # the header's first key; its value is the format version
FORMAT_VERSION = 2  # 2: metric histories, and NaN and the infinities as {"double": "NaN"}
ORIGIN = "mlmd_exercise_origin"  # custom property: where an imported node came from
# (no dot in it: MLMD's filter language reads a dot as a path)
_CHUNK = 500  # ids per query


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


def store_identity(store: Store) -> str:
    """The store, named so that an origin stays meaningful elsewhere (`Location.identity`)."""
    return store.location.identity


def _chunks(ids: Sequence[int], size: int = _CHUNK) -> Iterator[List[int]]:
    ids = list(ids)
    for first in range(0, len(ids), size):
        yield ids[first:first + size]


# -- choosing and writing ------------------------------------------------------------------


def select_executions(store: Store, *, context_id: Optional[int] = None, since_ms: Optional[int] = None,
                      until_ms: Optional[int] = None, artifact_id: Optional[int] = None,
                      direction: str = "upstream") -> List[int]:
    """The ids of the runs to export: of a context, started in [since, until) (their
    original time where imported with one), and/or in the lineage walk from an artifact."""
    from mlmd_exercise.read.lineage import walk

    if artifact_id is not None:
        ids: Optional[Set[int]] = set(walk(store, artifact_id=artifact_id, direction=direction).executions)
    else:
        ids = None
    chosen: List[int] = []
    last = 0
    while True:
        page = store.backend.executions(Query(id_above=last, context_id=context_id, order="id", ascending=True,
                                              limit=5000))
        if not page:
            return chosen
        last = page[-1].id
        for e in page:
            if (ids is None or e.id in ids) and (since_ms is None or e.when_ms >= since_ms) \
                    and (until_ms is None or e.when_ms < until_ms):
                chosen.append(e.id)


def _origin(source: str, kind: str, node: Union[ArtifactRecord, ExecutionRecord, ContextRecord]) -> str:
    found = node.custom.get(ORIGIN)
    return found if isinstance(found, str) and found else f"{source}/{kind}/{node.id}"


def _declared(node: Union[ArtifactRecord, ExecutionRecord, ContextRecord], types: Mapping[int, TypeRecord]
              ) -> Dict[str, Any]:
    declared = types[node.type_id].properties if node.type_id in types else {}
    # A record's `properties` holds declared and custom; where a key is both, the declared wins.
    return {k: v for k, v in node.properties.items()
            if k in declared and (k not in node.custom or node.custom[k] != v)}


def export_bundle(store: Store, path: Union[str, os.PathLike], execution_ids: Sequence[int],
                  artifact_ids: Sequence[int] = (), selection: Optional[Mapping[str, Any]] = None) -> Counts:
    """Writes these runs, every artifact they used or made (and `artifact_ids`), their
    events, types and contexts (the runs' contexts, with the artifacts attributed to them)
    to a bundle at `path` (written to a temporary file first and
    then renamed: a failure leaves no half bundle).

    Returns:
        How many of each were written.
    """
    backend = store.backend
    source = store_identity(store)
    types = {t.id: t for kind in Kind for t in backend.types(kind)}
    executions: List[ExecutionRecord] = []
    events: List[EventRecord] = []
    for chunk in _chunks(sorted(set(int(i) for i in execution_ids))):
        executions += backend.executions(Query(ids=chunk, order="id", ascending=True))
        events += backend.events_by_executions(chunk)
    wanted = sorted({e.artifact_id for e in events} | {int(i) for i in artifact_ids})
    artifacts: List[ArtifactRecord] = []
    for chunk in _chunks(wanted):
        artifacts += backend.artifacts(Query(ids=chunk, order="id", ascending=True))
    contexts, member = _memberships(store, [x.id for x in executions], [a.id for a in artifacts])
    histories = _histories(store, executions)
    used_types = {x.type_id for x in executions} | {a.type_id for a in artifacts} \
        | {c.type_id for c in contexts.values()}
    path = Path(path)
    partial = path.with_name(path.name + ".partial")
    counts = Counts(len(executions), len(artifacts), len(events), len(contexts), len(histories))
    with partial.open("w", encoding="utf-8") as f:
        _line(f, {MAGIC: FORMAT_VERSION, "source": source, "written_ms": int(time.time() * 1000),
                  "selection": dict(selection or {}),
                  "format": "JSON lines: this header, then types, contexts, artifacts, executions, events, "
                            "histories, end (see docs/bundle.md)"})
        for t in sorted((types[i] for i in used_types if i in types), key=lambda t: t.id):
            _line(f, {"kind": "type", "of": t.kind.value, "id": t.id, "name": t.name,
                      "properties": {k: PropertyType(v).value for k, v in t.properties.items()}})
        for c in sorted(contexts.values(), key=lambda c: c.id):
            _line(f, {"kind": "context", "id": c.id, "type": c.type, "name": c.name,
                      "properties": _declared(c, types), "custom": dict(c.custom), "created_ms": c.created_ms,
                      "updated_ms": c.updated_ms, "origin": _origin(source, "context", c)})
        for a in artifacts:
            _line(f, {"kind": "artifact", "id": a.id, "type": a.type, "uri": a.uri, "state": a.state,
                      "name": a.name or None, "properties": _declared(a, types), "custom": dict(a.custom),
                      "created_ms": a.created_ms, "updated_ms": a.updated_ms, "external_id": a.external_id,
                      "origin": _origin(source, "artifact", a), "contexts": member[("artifact", a.id)]})
        for x in executions:
            _line(f, {"kind": "execution", "id": x.id, "type": x.type, "state": x.state, "name": x.name or None,
                      "properties": _declared(x, types), "custom": dict(x.custom), "created_ms": x.created_ms,
                      "updated_ms": x.updated_ms, "external_id": x.external_id,
                      "origin": _origin(source, "execution", x), "contexts": member[("execution", x.id)]})
        for ev in events:
            _line(f, {"kind": "event", "artifact": ev.artifact_id, "execution": ev.execution_id, "type": ev.type,
                      "path": list(ev.path), "ms": ev.ms})
        for h in histories:
            _line(f, h)
        _line(f, {"kind": "end", "executions": counts.executions, "artifacts": counts.artifacts,
                  "events": counts.events, "contexts": counts.contexts, "histories": counts.histories})
    os.replace(partial, path)
    return counts


def _histories(store: Store, executions: Sequence[ExecutionRecord]) -> List[Dict[str, Any]]:
    """A history line for each metric of each run that has a history (read only here)."""
    from mlmd_exercise.read.history import history_chunks
    from mlmd_exercise.history import series

    found = []
    for x in executions:
        names = x.properties.get(METRIC_NAMES)
        for key in (k for k in names.split(",") if k) if isinstance(names, str) else ():
            points = series(c.custom for c in history_chunks(store, x.id, key))
            if points:
                found.append({"kind": "history", "execution": x.id, "key": key,
                              "points": [[p.step, p.ms, p.value] for p in points]})
    return found


_FEW_CONTEXTS = 50  # up to this many contexts in the store, memberships are asked context by context


def _memberships(store: Store, execution_ids: List[int], artifact_ids: List[int]
                 ) -> Tuple[Dict[int, ContextRecord], Dict[Tuple[str, int], List[int]]]:
    """The contexts of these runs, and (kind, id) -> the context ids each run and artifact is
    in (an artifact: among the runs' contexts).

    Asked per context and chunk of ids where the store has few contexts (experiments): asking
    per node, or ml-metadata's contexts-of-executions, reads a context's members whole
    (49 s for 10,000 runs at 200,000 on ml-metadata; 5 s this way)."""
    backend = store.backend
    # Each query reads the context's members once: as many ids as the backend takes well.
    size = backend.ids_per_query
    member: Dict[Tuple[str, int], List[int]] = {("execution", i): [] for i in execution_ids}
    member.update({("artifact", i): [] for i in artifact_ids})
    from mlmd_exercise.read.history import history_type

    everyone = backend.contexts(Query(order="id", ascending=True, limit=_FEW_CONTEXTS + 1,
                                      not_type_id=history_type(store)))
    if len(everyone) <= _FEW_CONTEXTS:
        contexts: Dict[int, ContextRecord] = {}
        for c in everyone:
            for chunk in _chunks(execution_ids, size):
                for x in backend.executions(Query(ids=chunk, context_id=c.id)):
                    member[("execution", x.id)].append(c.id)
                    contexts[c.id] = c
    else:
        found = backend.contexts_of_executions(execution_ids)
        contexts = {c.id: c for cs in found.values() for c in cs}
        for i, cs in found.items():
            member[("execution", i)] = [c.id for c in cs]
    for context_id in sorted(contexts):
        for chunk in _chunks(artifact_ids, size):
            for a in backend.artifacts(Query(ids=chunk, context_id=context_id)):
                member[("artifact", a.id)].append(context_id)
    return contexts, member


def _line(f: IO[str], record: Mapping[str, Any]) -> None:
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


def import_bundle(store: Store, bundle: Bundle, batch_size: int = 500) -> Counts:
    """Records a bundle into a store: see `write/bundle_import.py`."""
    from mlmd_exercise.write.bundle_import import import_bundle as record

    return record(store, bundle, batch_size)
