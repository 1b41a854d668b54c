"""Importing a bundle (bundle.py, docs/bundle.md): its nodes that the store does not hold
yet, found by origin, written through the Backend interface with new ids.

The bundle is checked whole before anything is written (bundle.Checker as it is read, then
here what the store's backend cannot hold). Then types by name (`put_type` adds what is
missing), contexts by type and name, runs with their events and the new artifacts those name
a batch per transaction (`put_lineage`, in their first context), then every membership
(`put_memberships`, idempotent): a kill between transactions leaves whole runs and no
artifact without its run, and importing again finishes the job.
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from mlmd_exercise.bundle import Bundle, BundleError, Counts
from mlmd_exercise.records import CREATED_MS, ORIGIN, STARTED_MS, ExecutionState, Kind, PropertyType
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
            of = f"{kind} {r['id']} of the bundle ({bundle.line(kind, r['id'])})"
            for field in ("type", "name", "uri", "origin"):
                backend.check_text(f"the {field} of {of}", r.get(field))
            backend.check_texts(f"property of {of}", {**r["properties"], **r["custom"]})
    for e in bundle.events:
        for step in e["path"]:
            backend.check_text(f"a path step key of an event of artifact {e['artifact']} "
                               f"({bundle.line('artifact', e['artifact'])})", step)


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
    with store.writing():  # what the store holds looked up first, and checked: then written
        stored_types = _stored_types(store, bundle)
        runs = _stored_runs(store, bundle, source, stored_types)
        artifact_ids = _stored_artifacts(store, bundle, source, runs, counts)
        _check_names(store, bundle, stored_types, artifact_ids)
        type_ids: Dict[Tuple[str, str], int] = {}
        for t in bundle.types:
            type_ids[(t["of"], t["name"])] = backend.put_type(
                Kind(t["of"]), t["name"], {k: PropertyType(v) for k, v in t["properties"].items()})
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
        writer = _Writer(store, bundle, type_ids, context_ids, artifact_ids, counts)
        execution_ids = _executions(writer, runs, context_ids, batch_size)
        writer.put_alone([a["id"] for a in bundle.artifacts])  # those no run of the bundle names
        artifact_ids = writer.artifact_ids
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


def _stored_artifacts(store: Store, bundle: Bundle, source: str, runs: Mapping[str, int],
                      counts: Counts) -> Dict[int, int]:
    """Bundle artifact id -> store artifact id of the artifacts the store holds: by origin,
    as themselves, or through their stored runs."""
    stored = {**_their_artifacts(store, bundle, runs),
              **_found_by_origin(store, Kind.ARTIFACT, [a["origin"] for a in bundle.artifacts]),
              **_themselves(store, Kind.ARTIFACT, bundle.artifacts, source)}
    found = {a["id"]: stored[a["origin"]] for a in bundle.artifacts if a["origin"] in stored}
    counts.already["artifacts"] = len(found)
    return found


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
        if ("execution", type_name) not in type_ids:
            continue  # a type the store does not have yet: none of its runs either
        for chunk in backend.chunks(list(names)):
            for found in backend.executions(Query(type_id=type_ids[("execution", type_name)], names=chunk)):
                stored[names[found.name]] = found.id
    return stored


def _stored_types(store: Store, bundle: Bundle) -> Dict[Tuple[str, str], int]:
    """(kind, name) -> store id of the bundle's types the store has.

    Raises:
        BundleError: a type the store has declares a property of the bundle's type otherwise
            (nothing written yet).
    """
    found: Dict[Tuple[str, str], int] = {}
    for kind in Kind:
        stored = {t.name: t for t in reversed(store.backend.types(kind))}  # the first of a name wins
        for t in bundle.types:
            if t["of"] != kind.value or t["name"] not in stored:
                continue
            have = stored[t["name"]]
            for key, declared in t["properties"].items():
                if key in have.properties and PropertyType(have.properties[key]).value != declared:
                    raise BundleError(f"{bundle.line('type', (t['of'], t['name']))} of the bundle declares property "
                                      f"'{key}' of {t['of']} type '{t['name']}' as {declared}, which the store "
                                      f"declares as {PropertyType(have.properties[key]).value}: refused, nothing "
                                      "imported")
            found[(t["of"], t["name"])] = have.id
    return found


def _check_names(store: Store, bundle: Bundle, type_ids: Mapping[Tuple[str, str], int],
                 stored: Mapping[int, int]) -> None:
    """Refuses a named artifact to record whose name its type's artifacts in the store have
    already (MLMD's names are unique per type), before anything is written."""
    named: Dict[str, Dict[str, int]] = {}
    for a in bundle.artifacts:
        if a.get("name") and a["id"] not in stored and ("artifact", a["type"]) in type_ids:
            named.setdefault(a["type"], {})[a["name"]] = a["id"]
    for type_name, names in named.items():
        for chunk in store.backend.chunks(list(names)):
            for taken in store.backend.artifacts(Query(type_id=type_ids[("artifact", type_name)], names=chunk)):
                raise BundleError(f"{bundle.line('artifact', names[taken.name])} of the bundle is artifact "
                                  f"{names[taken.name]} named {taken.name!r}, a name that artifact {taken.id} of type "
                                  f"'{type_name}' has in the store (names are unique per type): refused, nothing "
                                  "imported")


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


def _new(a: Dict[str, Any], type_ids: Mapping[Tuple[str, str], int]) -> NewArtifact:
    return NewArtifact(type_id=type_ids[("artifact", a["type"])], type=a["type"], uri=a["uri"], state=a["state"],
                       name=a["name"], properties=dict(a["properties"]),
                       custom=_times({**a["custom"], ORIGIN: a["origin"]}, CREATED_MS, a["created_ms"]))


class _Writer:
    """Writes the runs the store lacks a batch per transaction, each batch with the new
    artifacts its events name (MLMD's put_lineage_subgraph: the runs, those artifacts, the
    events, the runs' first context): a kill between transactions leaves whole runs, never
    an artifact without the run that made or used it. An artifact the bundle does not put
    in that context (or, for runs in no context, one a run has two events with) is written
    by itself just before (so that no attribution is made up), as is, at the end, an
    artifact the bundle holds without any run to write."""

    def __init__(self, store: Store, bundle: Bundle, type_ids: Mapping[Tuple[str, str], int],
                 context_ids: Mapping[int, int], artifact_ids: Dict[int, int], counts: Counts) -> None:
        self.store, self.bundle, self.type_ids, self.counts = store, bundle, type_ids, counts
        self.artifact_ids = artifact_ids  # bundle id -> store id: those stored, then those written
        self.artifacts = {a["id"]: a for a in bundle.artifacts if a["id"] not in artifact_ids}
        self.contexts_of = {i: {context_ids[c] for c in a["contexts"]} for i, a in self.artifacts.items()}

    def put_alone(self, ids: Sequence[int]) -> None:
        """Artifacts written by themselves (no run of this import carries them)."""
        ids = [i for i in dict.fromkeys(ids) if i not in self.artifact_ids]
        for chunk in self.store.backend.chunks(ids):
            made = self.store.backend.put_artifacts([_new(self.artifacts[i], self.type_ids) for i in chunk])
            self.artifact_ids.update(zip(chunk, made))
            self.counts.artifacts += len(chunk)

    def put_runs(self, batch: Sequence[Dict[str, Any]], events: Mapping[int, List[Dict[str, Any]]],
                 context: Optional[ContextWrite]) -> List[int]:
        """One batch of runs of `context` (None: in no context, a transaction each)."""
        if context is None:
            return [self._put_run(x, events.get(x["id"], [])) for x in batch]
        carried: Dict[int, int] = {}  # bundle artifact id -> its index among the new artifacts
        alone: List[int] = []
        for x in batch:
            for ev in events.get(x["id"], ()):
                i = ev["artifact"]
                if i in self.artifact_ids or i in carried:
                    continue
                if context.id in self.contexts_of[i]:
                    carried[i] = len(carried)
                else:
                    alone.append(i)
        self.put_alone(alone)
        edges = [NewEvent(ev["type"], tuple(ev["path"]), artifact_id=self.artifact_ids.get(ev["artifact"], 0),
                          artifact_index=carried.get(ev["artifact"]), execution_index=n)
                 for n, x in enumerate(batch) for ev in events.get(x["id"], ())]
        made, artifacts, _ = self.store.backend.put_lineage(
            [self._write(x) for x in batch], [_new(self.artifacts[i], self.type_ids) for i in carried], edges,
            context)
        self.artifact_ids.update(zip(carried, artifacts))
        self.counts.artifacts += len(carried)
        self.counts.events += len(edges)
        return made

    def _put_run(self, x: Dict[str, Any], events: Sequence[Dict[str, Any]]) -> int:
        """A run in no context, with its events and the new artifacts of one event each."""
        once = [ev for ev in events if ev["artifact"] not in self.artifact_ids
                and sum(e["artifact"] == ev["artifact"] for e in events) == 1]
        self.put_alone([ev["artifact"] for ev in events if ev not in once])
        execution_id, made, _ = self.store.backend.put_execution(
            self._write(x), artifacts=[(_new(self.artifacts[ev["artifact"]], self.type_ids),
                                        NewEvent(ev["type"], tuple(ev["path"]))) for ev in once],
            inputs=[(self.artifact_ids[ev["artifact"]], NewEvent(ev["type"], tuple(ev["path"])))
                    for ev in events if ev not in once])
        self.artifact_ids.update(zip((ev["artifact"] for ev in once), made))
        self.counts.artifacts += len(once)
        self.counts.events += len(events)
        return execution_id

    def _write(self, x: Dict[str, Any]) -> ExecutionWrite:
        return ExecutionWrite(self.type_ids[("execution", x["type"])], x["type"], name=x["name"],
                              state=ExecutionState(x["state"]), properties=dict(x["properties"]),
                              custom=_times({**x["custom"], ORIGIN: x["origin"]}, STARTED_MS, x["created_ms"]))


def _executions(writer: _Writer, stored: Mapping[str, int], context_ids: Mapping[int, int],
                batch_size: int) -> Dict[int, int]:
    """Bundle execution id -> store execution id, recording the missing runs (by their first
    context, `batch_size` to a transaction) with their events and new artifacts."""
    bundle, backend, counts = writer.bundle, writer.store.backend, writer.counts
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
        context = None
        if context_id is not None:
            stored_context = next(c for c in backend.contexts(Query(ids=[context_id])))
            context = ContextWrite(stored_context.type_id, stored_context.type, stored_context.name, id=context_id)
        for first in range(0, len(group), batch_size):
            batch = group[first:first + batch_size]
            new.update({x["origin"]: i for x, i in zip(batch, writer.put_runs(batch, events, context))})
    counts.executions = len(missing)
    return {x["id"]: stored.get(x["origin"]) or new[x["origin"]] for x in bundle.executions}
