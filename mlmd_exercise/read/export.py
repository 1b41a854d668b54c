"""Exporting runs to a bundle (bundle.py, docs/bundle.md): the runs chosen, every artifact
they used or made, their events, types, contexts and metric histories, read through the
Backend interface, so that it works on ml-metadata and on the native backend alike.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Set, Tuple, Union

from mlmd_exercise.bundle import FORMAT_VERSION, MAGIC, Counts, write_line
from mlmd_exercise.records import (METRIC_NAMES, ORIGIN, ArtifactRecord, ContextRecord, EventRecord, ExecutionRecord, Kind,
                                   PropertyType, TypeRecord)
from mlmd_exercise.store import Store
from mlmd_exercise.store.backend import Query

__all__ = ["FEW_CONTEXTS", "select_executions", "export_bundle"]

_COPY = 1 << 20  # bytes a part is copied into the bundle at a time

def select_executions(store: Store, *, context_id: Optional[int] = None, since_ms: Optional[int] = None,
                      until_ms: Optional[int] = None, artifact_id: Optional[int] = None,
                      direction: str = "upstream", tags: Optional[Mapping[str, str]] = None,
                      where: Optional[str] = None) -> List[int]:
    """The ids of the runs to export: of a context, started in [since, until) (their
    original time where imported with one), with every one of `tags`, matching the filter
    query `where` (MLMD's language, `where.py`), and/or in the lineage walk from an artifact.

    Raises:
        UsageError: `where` is no filter query.
    """
    from mlmd_exercise.read.lineage import walk_hops
    from mlmd_exercise.read.nodes import parsed

    expr = parsed(where, Kind.EXECUTION)

    if artifact_id is not None:  # the ids alone: a 200,000-run chain's records took 500 MB
        ids: Optional[Set[int]] = {e.id for hop in walk_hops(store, artifact_id=artifact_id, direction=direction,
                                                             lines=True) for e in hop.executions}
    else:
        ids = None
    chosen: List[int] = []
    last = 0
    while True:
        page = store.backend.executions(Query(id_above=last, context_id=context_id, order="id", ascending=True,
                                              limit=5000, where=expr))
        if not page:
            return chosen
        last = page[-1].id
        for e in page:
            if (ids is None or e.id in ids) and (since_ms is None or e.when_ms >= since_ms) \
                    and (until_ms is None or e.when_ms < until_ms) \
                    and all(e.tags.get(k) == v for k, v in (tags or {}).items()):
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

    Streamed a chunk of ids at a time: the artifacts, executions, events and histories go to
    temporary files beside the bundle as they are read, and are joined behind the header,
    types and contexts once those are known, so memory holds ids, not records.

    Returns:
        How many of each were written.
    """
    backend = store.backend
    source = store.location.identity
    types = {t.id: t for kind in Kind for t in backend.types(kind)}
    path = Path(path)
    partial = path.with_name(path.name + ".partial")
    try:
        out = partial.open("w", encoding="utf-8")
    except OSError as e:  # named as the user gave it, not as the temporary file beside it
        raise OSError(e.errno, e.strerror, str(path)) from e
    counts = Counts()
    used_types: Set[int] = set()
    contexts: Dict[int, ContextRecord] = {}
    few = _few_contexts(store)
    try:
        with out as f, tempfile.TemporaryDirectory(prefix=".export-", dir=path.parent) as folder:
            parts = {name: Path(folder) / name for name in ("artifacts", "executions", "events", "histories")}
            wanted: Set[int] = {int(i) for i in artifact_ids}
            with parts["executions"].open("w", encoding="utf-8") as xf, \
                    parts["events"].open("w", encoding="utf-8") as ef, \
                    parts["histories"].open("w", encoding="utf-8") as hf:
                for chunk in backend.chunks(sorted(set(int(i) for i in execution_ids))):
                    executions = backend.executions(Query(ids=chunk, order="id", ascending=True))
                    member = _execution_contexts(store, few, chunk, contexts)
                    for x in executions:
                        used_types.add(x.type_id)
                        write_line(xf, {"kind": "execution", "id": x.id, "type": x.type, "state": x.state,
                                        "name": x.name or None, "properties": _declared(x, types),
                                        "custom": dict(x.custom), "created_ms": x.created_ms,
                                        "updated_ms": x.updated_ms, "external_id": x.external_id,
                                        "origin": _origin(source, "execution", x), "contexts": member.get(x.id, [])})
                    counts.executions += len(executions)
                    for ev in backend.events_by_executions(chunk):
                        wanted.add(ev.artifact_id)
                        write_line(ef, {"kind": "event", "artifact": ev.artifact_id, "execution": ev.execution_id,
                                        "type": ev.type, "path": list(ev.path), "ms": ev.ms})
                        counts.events += 1
                    for h in _histories(store, executions):
                        write_line(hf, h)
                        counts.histories += 1
            with parts["artifacts"].open("w", encoding="utf-8") as af:
                for chunk in backend.chunks(sorted(wanted)):
                    member = _artifact_contexts(store, chunk, sorted(contexts))
                    for a in backend.artifacts(Query(ids=chunk, order="id", ascending=True)):
                        used_types.add(a.type_id)
                        write_line(af, {"kind": "artifact", "id": a.id, "type": a.type, "uri": a.uri,
                                        "state": a.state, "name": a.name or None, "properties": _declared(a, types),
                                        "custom": dict(a.custom), "created_ms": a.created_ms,
                                        "updated_ms": a.updated_ms, "external_id": a.external_id,
                                        "origin": _origin(source, "artifact", a), "contexts": member.get(a.id, [])})
                        counts.artifacts += 1
            counts.contexts = len(contexts)
            used_types |= {c.type_id for c in contexts.values()}
            write_line(f, {MAGIC: FORMAT_VERSION, "source": source, "written_ms": int(time.time() * 1000),
                           "selection": dict(selection or {}),
                           "format": "JSON lines: this header, then types, contexts, artifacts, executions, events, "
                                     "histories, end (see docs/bundle.md)"})
            for t in sorted((types[i] for i in used_types if i in types), key=lambda t: t.id):
                write_line(f, {"kind": "type", "of": t.kind.value, "id": t.id, "name": t.name,
                               "properties": {k: PropertyType(v).value for k, v in t.properties.items()}})
            for c in sorted(contexts.values(), key=lambda c: c.id):
                write_line(f, {"kind": "context", "id": c.id, "type": c.type, "name": c.name,
                               "properties": _declared(c, types), "custom": dict(c.custom),
                               "created_ms": c.created_ms, "updated_ms": c.updated_ms,
                               "origin": _origin(source, "context", c)})
            for name in ("artifacts", "executions", "events", "histories"):
                with parts[name].open("r", encoding="utf-8") as part:
                    shutil.copyfileobj(part, f, _COPY)
            write_line(f, {"kind": "end", "executions": counts.executions, "artifacts": counts.artifacts,
                           "events": counts.events, "contexts": counts.contexts, "histories": counts.histories})
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
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


FEW_CONTEXTS = 50  # up to this many contexts in the store, memberships are asked context by context


def _few_contexts(store: Store) -> Optional[List[ContextRecord]]:
    """Every context of the store (metric histories' aside) where it has few (experiments),
    else None.

    With few, memberships are asked per context and chunk of ids: asking per node, or
    ml-metadata's contexts-of-executions, reads a context's members whole (49 s for 10,000
    runs at 200,000 on ml-metadata; 5 s this way)."""
    from mlmd_exercise.read.history import history_type

    everyone = store.backend.contexts(Query(order="id", ascending=True, limit=FEW_CONTEXTS + 1,
                                            not_type_id=history_type(store)))
    return everyone if len(everyone) <= FEW_CONTEXTS else None


def _execution_contexts(store: Store, few: Optional[List[ContextRecord]], chunk: List[int],
                        contexts: Dict[int, ContextRecord]) -> Dict[int, List[int]]:
    """Execution id -> the ids of the contexts it is in, for a chunk of runs; the contexts
    found are added to `contexts`."""
    backend = store.backend
    member: Dict[int, List[int]] = {}
    if few is not None:
        for c in few:
            for x in backend.executions(Query(ids=chunk, context_id=c.id)):
                member.setdefault(x.id, []).append(c.id)
                contexts[c.id] = c
    else:
        for i, cs in backend.contexts_of_executions(chunk).items():
            member[i] = [c.id for c in cs]
            contexts.update((c.id, c) for c in cs)
    return member


def _artifact_contexts(store: Store, chunk: List[int], context_ids: List[int]) -> Dict[int, List[int]]:
    """Artifact id -> the ids of the runs' contexts it is in, for a chunk of artifacts."""
    member: Dict[int, List[int]] = {}
    for context_id in context_ids:
        for a in store.backend.artifacts(Query(ids=chunk, context_id=context_id)):
            member.setdefault(a.id, []).append(context_id)
    return member
