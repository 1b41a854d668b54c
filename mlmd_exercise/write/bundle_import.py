"""Importing a bundle (bundle.py, docs/bundle.md): its nodes that the store does not hold
yet, found by origin, written through the Backend interface with new ids.

Types by name (`put_type` adds what is missing), contexts by type and name, artifacts in
batches (`put_artifacts`), runs with their events a batch per transaction (`put_lineage`,
in their first context), then every membership (`put_memberships`, idempotent): a crash
between batches leaves whole runs, and importing again finishes the job.
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from mlmd_exercise.bundle import ORIGIN, Bundle, Counts
from mlmd_exercise.records import CREATED_MS, STARTED_MS, ExecutionState, Kind, PropertyType
from mlmd_exercise.store import Store
from mlmd_exercise.store.backend import ContextWrite, ExecutionWrite, NewArtifact, NewEvent, PropertyTest, Query
from mlmd_exercise.history import Point
from mlmd_exercise.write.metrics import record_history

__all__ = ["import_bundle"]



def _found_by_origin(store: Store, kind: Kind, origins: Sequence[str]) -> Dict[str, int]:
    listing = store.backend.artifacts if kind is Kind.ARTIFACT else store.backend.executions
    found: Dict[str, int] = {}
    for chunk in store.backend.chunks(origins):
        for node in listing(Query(custom=(PropertyTest(ORIGIN, "in", tuple(chunk)),))):
            found.setdefault(str(node.custom.get(ORIGIN)), node.id)
    return found


def _themselves(store: Store, kind: Kind, records: Sequence[Dict[str, Any]], source: str) -> Dict[str, int]:
    """Nodes of a bundle made from this very store that are still in it (same id, type):
    they are themselves, not copies to make."""
    own = {r["id"]: r for r in records if r["origin"] == f"{source}/{kind.value}/{r['id']}"}
    if not own or source != store.location.identity:
        return {}
    listing = store.backend.artifacts if kind is Kind.ARTIFACT else store.backend.executions
    found: Dict[str, int] = {}
    for chunk in store.backend.chunks(sorted(own)):
        for node in listing(Query(ids=chunk)):
            if node.type == own[node.id]["type"]:
                found[own[node.id]["origin"]] = node.id
    return found


def _times(custom: Dict[str, Any], key: str, ms: Any) -> Dict[str, Any]:
    """The custom properties with the node's original time kept (a double: ms since the
    epoch do not fit MLMD's int), unless an earlier import kept it already."""
    if key not in custom and isinstance(ms, int) and ms > 0:
        custom = {**custom, key: float(ms)}
    return custom


def _check(backend, bundle: Bundle) -> None:
    """Refuses, before anything is written, a string of the bundle that the backend cannot
    store (ml-metadata's backend refuses some: store/mlmd/guard.py)."""
    for t in bundle.types:
        backend.check_text(f"the name of a {t['of']} type", t["name"])
        backend.check_texts(f"property of {t['of']} type '{t['name']}'", {k: None for k in t["properties"]})
    for kind, records in (("context", bundle.contexts), ("artifact", bundle.artifacts),
                          ("execution", bundle.executions)):
        for r in records:
            of = f"{kind} {r['id']} of the bundle"
            for field in ("type", "name", "uri", "origin"):
                backend.check_text(f"the {field} of {of}", r.get(field))
            backend.check_texts(f"property of {of}", {**r["properties"], **r["custom"]})
    for e in bundle.events:
        for step in e["path"]:
            backend.check_text(f"a path step key of an event of artifact {e['artifact']}", step)


def import_bundle(store: Store, bundle: Bundle, batch_size: int = 500) -> Counts:
    """Records a bundle's nodes that the store does not hold yet (by origin, or as the
    same nodes where the bundle came from this store), with new ids, their original create
    times as the custom properties `created_ms`/`started_ms`, and their contexts.

    Returns:
        What was recorded, and (`already`) how many of each were there before.
    """
    backend = store.backend
    _check(backend, bundle)
    source = str(bundle.header.get("source", ""))
    counts = Counts()
    type_ids: Dict[Tuple[str, str], int] = {}
    with store.writing():
        for t in bundle.types:
            kind = Kind(t["of"])
            type_ids[(t["of"], t["name"])] = backend.put_type(
                kind, t["name"], {k: PropertyType(v) for k, v in t["properties"].items()})
        context_ids: Dict[int, int] = {}
        for c in bundle.contexts:
            type_id = type_ids[("context", c["type"])]
            stored = backend.context_by_name(c["type"], c["name"])
            if stored is not None:
                context_ids[c["id"]] = stored.id
                counts.already["contexts"] = counts.already.get("contexts", 0) + 1
                continue
            context_ids[c["id"]] = backend.put_context(ContextWrite(
                type_id, c["type"], c["name"], properties=dict(c["properties"]),
                custom=_times({**c["custom"], ORIGIN: c["origin"]}, CREATED_MS, c["created_ms"])))
            counts.contexts += 1
        runs = _stored_runs(store, bundle, source, type_ids)
        artifact_ids = _artifacts(store, bundle, source, type_ids, counts, _their_artifacts(store, bundle, runs),
                                  batch_size)
        execution_ids = _executions(store, bundle, runs, type_ids, context_ids, artifact_ids, counts, batch_size)
        made = {x["id"] for x in bundle.executions if x["origin"] not in runs}  # recorded now
        for h in bundle.histories:  # a run already in the store has its history already
            if h["execution"] in made:
                record_history(store, execution_ids[h["execution"]], h["key"],
                               [Point(int(s), int(ms), v) for s, ms, v in h["points"]])
                counts.histories += 1
        members: Dict[int, Tuple[List[int], List[int]]] = {}
        for a in bundle.artifacts:
            for c in a["contexts"]:
                members.setdefault(context_ids[c], ([], []))[1].append(artifact_ids[a["id"]])
        for x in bundle.executions:
            for c in x["contexts"]:
                members.setdefault(context_ids[c], ([], []))[0].append(execution_ids[x["id"]])
        for context_id, (executions, artifacts) in members.items():
            backend.put_memberships(context_id, executions, artifacts)
    return counts


def _artifacts(store: Store, bundle: Bundle, source: str, type_ids: Mapping[Tuple[str, str], int],
               counts: Counts, known: Mapping[str, int], batch_size: int) -> Dict[int, int]:
    """Bundle artifact id -> store artifact id, recording the ones missing, `batch_size` to a
    call (`known`: origin -> id of those found through their runs)."""
    origins = [a["origin"] for a in bundle.artifacts]
    stored = {**known, **_found_by_origin(store, Kind.ARTIFACT, origins),
              **_themselves(store, Kind.ARTIFACT, bundle.artifacts, source)}
    missing = [a for a in bundle.artifacts if a["origin"] not in stored]
    counts.already["artifacts"] = len(bundle.artifacts) - len(missing)
    new: Dict[str, int] = {}
    for first in range(0, len(missing), batch_size):
        chunk = missing[first:first + batch_size]
        made = store.backend.put_artifacts([NewArtifact(
            type_id=type_ids[("artifact", a["type"])], type=a["type"], uri=a["uri"], state=a["state"],
            name=a["name"], properties=dict(a["properties"]),
            custom=_times({**a["custom"], ORIGIN: a["origin"]}, CREATED_MS, a["created_ms"])) for a in chunk])
        new.update({a["origin"]: i for a, i in zip(chunk, made)})
    counts.artifacts = len(missing)
    return {a["id"]: stored.get(a["origin"]) or new[a["origin"]] for a in bundle.artifacts}


def _stored_runs(store: Store, bundle: Bundle, source: str,
                 type_ids: Mapping[Tuple[str, str], int]) -> Dict[str, int]:
    """Origin -> store id of the bundle's runs that the store holds: by origin, as themselves,
    or by type and name."""
    backend = store.backend
    stored = {**_found_by_origin(store, Kind.EXECUTION, [x["origin"] for x in bundle.executions]),
              **_themselves(store, Kind.EXECUTION, bundle.executions, source)}
    # A run of the same type and name is the same run (names are unique per type; ours are UUIDs),
    # whatever recorded it: never a second one, never a name conflict.
    by_type: Dict[str, List[Dict[str, Any]]] = {}
    for x in bundle.executions:
        if x["origin"] not in stored and x["name"]:
            by_type.setdefault(x["type"], []).append(x)
    for type_name, group in by_type.items():
        names = {x["name"]: x["origin"] for x in group}
        listed = list(names)
        for chunk in backend.chunks(listed):
            for found in backend.executions(Query(type_id=type_ids[("execution", type_name)], names=chunk)):
                stored[names[found.name]] = found.id
    return stored


def _their_artifacts(store: Store, bundle: Bundle, runs: Mapping[str, int]) -> Dict[str, int]:
    """Origin -> store id of the artifacts the stored runs used or made, by each event's run,
    type and path: a run found by its name (in a copy of the source store, say) brings its
    artifacts, which then are not recorded twice."""
    by_id = {x["id"]: runs[x["origin"]] for x in bundle.executions if x["origin"] in runs}
    if not by_id:
        return {}
    stored: Dict[Tuple[int, str, Tuple[Any, ...]], int] = {}
    for chunk in store.backend.chunks(sorted(set(by_id.values()))):
        for e in store.backend.events_by_executions(chunk):
            stored[(e.execution_id, e.type, tuple(e.path))] = e.artifact_id
    origin = {a["id"]: a["origin"] for a in bundle.artifacts}
    found: Dict[str, int] = {}
    for ev in bundle.events:
        if ev["execution"] in by_id:
            hit = stored.get((by_id[ev["execution"]], ev["type"], tuple(ev["path"])))
            if hit is not None:
                found.setdefault(origin[ev["artifact"]], hit)
    return found


def _executions(store: Store, bundle: Bundle, stored: Mapping[str, int], type_ids: Mapping[Tuple[str, str], int],
                context_ids: Mapping[int, int], artifact_ids: Mapping[int, int], counts: Counts,
                batch_size: int) -> Dict[int, int]:
    """Bundle execution id -> store execution id, recording the missing ones with their events."""
    backend = store.backend
    missing = [x for x in bundle.executions if x["origin"] not in stored]
    counts.already["executions"] = len(bundle.executions) - len(missing)
    events: Dict[int, List[Dict[str, Any]]] = {}
    for ev in bundle.events:
        events.setdefault(ev["execution"], []).append(ev)
    by_context: Dict[Optional[int], List[Dict[str, Any]]] = {}
    for x in missing:
        by_context.setdefault(context_ids[x["contexts"][0]] if x["contexts"] else None, []).append(x)
    new: Dict[str, int] = {}
    for context_id, group in by_context.items():
        for first in range(0, len(group), batch_size):
            batch = group[first:first + batch_size]
            writes = [ExecutionWrite(type_ids[("execution", x["type"])], x["type"], name=x["name"],
                                     state=ExecutionState(x["state"]), properties=dict(x["properties"]),
                                     custom=_times({**x["custom"], ORIGIN: x["origin"]}, STARTED_MS,
                                                   x["created_ms"])) for x in batch]
            edges = [NewEvent(ev["type"], tuple(ev["path"]), artifact_id=artifact_ids[ev["artifact"]],
                              execution_index=i) for i, x in enumerate(batch) for ev in events.get(x["id"], ())]
            if context_id is None:
                made = [backend.put_execution(w, inputs=[(e.artifact_id, NewEvent(e.type, e.path))
                                                         for e in edges if e.execution_index == i])[0]
                        for i, w in enumerate(writes)]
            else:
                context = next(c for c in backend.contexts(Query(ids=[context_id])))
                made, _, _ = backend.put_lineage(writes, [], edges, ContextWrite(
                    context.type_id, context.type, context.name, id=context_id))
            new.update({x["origin"]: i for x, i in zip(batch, made)})
            counts.events += len(edges)
    counts.executions = len(missing)
    return {x["id"]: stored.get(x["origin"]) or new[x["origin"]] for x in bundle.executions}
