"""Importing a bundle (bundle.py, docs/bundle.md): its nodes that the store does not hold
yet, found by origin, written through the Backend interface with new ids.

The bundle is checked whole before anything is written (bundle.Checker as it is read, then
here what the store's backend cannot hold). Then types by name (`put_type` adds what is
missing), contexts by type and name, runs with their events and the new artifacts those name
a batch per transaction (`put_lineage`, in their first context), then every membership
(`put_memberships`, idempotent, a chunk of ids to a call): a kill between transactions leaves whole runs and no
artifact without its run, and importing again finishes the job.

What is held is the bundle's index (bundle.Bundle: ids, types, origins, contexts, where each
line starts) and, per node, its store id in an array by the node's place among its kind's
records (0: none yet); each pass over records reads them from the file again, a batch at a
time, so that memory holds ids, not records (at 200,000 runs, about 1.4 GB when it held them).
"""

from __future__ import annotations

from array import array
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from mlmd_exercise.bundle import Bundle, BundleError, Counts
from mlmd_exercise.records import CREATED_MS, ORIGIN, STARTED_MS, ExecutionState, Kind, PropertyType
from mlmd_exercise.store import Store
from mlmd_exercise.store.backend import ContextWrite, ExecutionWrite, NewArtifact, NewEvent, PropertyTest, Query
from mlmd_exercise.history import Point
from mlmd_exercise.write.metrics import record_history

__all__ = ["import_bundle"]



_ARTIFACT, _EXECUTION = "artifact", "execution"


def _none(n: int) -> "array[int]":
    """n store ids, none known yet (0: MLMD's ids start at 1)."""
    return array("q", bytes(8 * n))


def _found_by_origin(store: Store, bundle: Bundle, kind: Kind, ids: "array[int]") -> None:
    """Sets `ids` (by place) of the bundle's nodes of `kind` the store holds by origin."""
    listing = store.backend.artifacts if kind is Kind.ARTIFACT else store.backend.executions
    step = store.backend.ids_per_query
    for first in range(0, bundle.count(kind.value), step):
        places: Dict[str, List[int]] = {}
        for at in range(first, min(first + step, bundle.count(kind.value))):
            places.setdefault(bundle.origin(kind.value, at), []).append(at)
        found: Dict[str, int] = {}
        for node in listing(Query(custom=(PropertyTest(ORIGIN, "in", tuple(places)),))):
            found.setdefault(str(node.custom.get(ORIGIN)), node.id)
        for origin, node_id in found.items():
            for at in places.get(origin, ()):
                ids[at] = node_id


def _themselves(store: Store, bundle: Bundle, kind: Kind, source: str, ids: "array[int]") -> None:
    """Sets `ids` of the nodes of a bundle made from this very store that are still in it
    (same id, type): they are themselves, not copies to make."""
    if source != store.location.identity:
        return
    part, prefix = bundle.parts[kind.value], f"{source}/{kind.value}"
    own = {part.ids[at]: at for at in range(bundle.count(kind.value))
           if part.prefix[at] >= 0 and bundle.prefixes[part.prefix[at]] == prefix and part.number[at] == part.ids[at]}
    listing = store.backend.artifacts if kind is Kind.ARTIFACT else store.backend.executions
    for chunk in store.backend.chunks(sorted(own)):
        for node in listing(Query(ids=chunk)):
            if node.type == part.type_of(own[node.id]):
                ids[own[node.id]] = node.id


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
    for kind in ("context", _ARTIFACT, _EXECUTION):
        for r in bundle.each(kind):
            of = f"{kind} {r['id']} of the bundle ({bundle.line(kind, r['id'])})"
            for field in ("type", "name", "uri", "origin"):
                backend.check_text(f"the {field} of {of}", r.get(field))
            backend.check_texts(f"property of {of}", {**r["properties"], **r["custom"]})
    for e in bundle.each("event"):
        for step in e["path"]:
            backend.check_text(f"a path step key of an event of artifact {e['artifact']} "
                               f"({bundle.line('artifact', e['artifact'])})", step)


def import_bundle(store: Store, bundle: Bundle, batch_size: int = 500) -> Counts:
    """Records a bundle's nodes that the store does not hold yet (by origin, or as the
    same nodes where the bundle came from this store), with new ids, their original create
    times as the custom properties `created_ms`/`started_ms`, and their contexts.

    Returns:
        What was recorded, and (`already`) how many of each were there before.

    Raises:
        BundleError: the bundle cannot be imported (naming its line), or its file changed
            since it was read.
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
        for ctx in bundle.each("context"):
            type_id = type_ids[("context", ctx["type"])]
            stored = backend.context_by_name(ctx["type"], ctx["name"])
            if stored is not None:
                context_ids[ctx["id"]] = stored.id
                counts.already["contexts"] = counts.already.get("contexts", 0) + 1
                continue
            context_ids[ctx["id"]] = backend.put_context(ContextWrite(
                type_id, ctx["type"], ctx["name"], properties=dict(ctx["properties"]),
                custom=_times({**ctx["custom"], ORIGIN: ctx["origin"]}, CREATED_MS, ctx["created_ms"])))
            counts.contexts += 1
        writer = _Writer(store, bundle, type_ids, context_ids, artifact_ids, counts)
        execution_ids = _executions(writer, runs, context_ids, batch_size)
        writer.put_alone([at for at in range(bundle.count(_ARTIFACT)) if not artifact_ids[at]])  # no run names them
        executions = bundle.parts[_EXECUTION]
        for h in bundle.each("history"):  # a run already in the store has its history already
            at = executions.position(h["execution"])
            if not runs[at]:  # recorded now
                record_history(store, execution_ids[at], h["key"],
                               [Point(int(s), int(ms), v) for s, ms, v in h["points"]])
                counts.histories += 1
        members: Dict[int, Tuple["array[int]", "array[int]"]] = {}
        for at in range(bundle.count(_ARTIFACT)):
            for c in bundle.node_contexts(_ARTIFACT, at):
                members.setdefault(context_ids[c], (array("q"), array("q")))[1].append(artifact_ids[at])
        for at in range(bundle.count(_EXECUTION)):
            for c in bundle.node_contexts(_EXECUTION, at):
                members.setdefault(context_ids[c], (array("q"), array("q")))[0].append(execution_ids[at])
        step = backend.ids_per_query  # a chunk to a call: ml-metadata makes a message of each pair at once
        for context_id, (run_ids, made_ids) in members.items():
            for first in range(0, max(len(run_ids), len(made_ids)), step):
                backend.put_memberships(context_id, run_ids[first:first + step], made_ids[first:first + step])
    return counts


def _stored_artifacts(store: Store, bundle: Bundle, source: str, runs: "array[int]",
                      counts: Counts) -> "array[int]":
    """The store id of each of the bundle's artifacts (by place; 0: none) the store holds:
    through their stored runs, by origin, as themselves (a later way overrides)."""
    ids = _their_artifacts(store, bundle, runs)
    _found_by_origin(store, bundle, Kind.ARTIFACT, ids)
    _themselves(store, bundle, Kind.ARTIFACT, source, ids)
    counts.already["artifacts"] = sum(1 for i in ids if i)
    return ids


def _stored_runs(store: Store, bundle: Bundle, source: str,
                 type_ids: Mapping[Tuple[str, str], int]) -> "array[int]":
    """The store id of each of the bundle's runs (by place; 0: none) the store holds: by
    origin, as themselves, or by type and name."""
    backend = store.backend
    ids = _none(bundle.count(_EXECUTION))
    _found_by_origin(store, bundle, Kind.EXECUTION, ids)
    _themselves(store, bundle, Kind.EXECUTION, source, ids)
    # A run of the same type and name is the same run (names are unique per type; ours are UUIDs),
    # whatever recorded it: never a second one, never a name conflict.
    by_type: Dict[str, Dict[str, int]] = {}  # type -> name -> place, a query's worth at a time

    def look(type_name: str) -> None:
        names = by_type.pop(type_name)
        for found in backend.executions(Query(type_id=type_ids[("execution", type_name)], names=list(names))):
            ids[names[found.name]] = found.id

    if all(ids) or not any(("execution", t) in type_ids for t in bundle.parts[_EXECUTION].type_names):
        return ids  # every run found, or none of a type the store has: no pass over the file for names
    for at, x in enumerate(bundle.each(_EXECUTION)):
        if not ids[at] and x.get("name") and ("execution", x["type"]) in type_ids:
            names = by_type.setdefault(x["type"], {})
            names[x["name"]] = at
            if len(names) >= backend.ids_per_query:
                look(x["type"])
    for type_name in list(by_type):
        look(type_name)
    return ids


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
                 stored: "array[int]") -> None:
    """Refuses a named artifact to record whose name its type's artifacts in the store have
    already (MLMD's names are unique per type), before anything is written."""
    named: Dict[str, Dict[str, int]] = {}  # type -> name -> bundle id, a query's worth at a time

    def look(type_name: str) -> None:
        names = named.pop(type_name)
        for taken in store.backend.artifacts(Query(type_id=type_ids[("artifact", type_name)], names=list(names))):
            raise BundleError(f"{bundle.line('artifact', names[taken.name])} of the bundle is artifact "
                              f"{names[taken.name]} named {taken.name!r}, a name that artifact {taken.id} of type "
                              f"'{type_name}' has in the store (names are unique per type): refused, nothing "
                              "imported")

    if not any(("artifact", t) in type_ids for t in bundle.parts[_ARTIFACT].type_names):
        return  # no artifact of a type the store has: no pass over the file
    for at, a in enumerate(bundle.each(_ARTIFACT)):
        if a.get("name") and not stored[at] and ("artifact", a["type"]) in type_ids:
            names = named.setdefault(a["type"], {})
            names[a["name"]] = a["id"]
            if len(names) >= store.backend.ids_per_query:
                look(a["type"])
    for type_name in list(named):
        look(type_name)


def _their_artifacts(store: Store, bundle: Bundle, runs: "array[int]") -> "array[int]":
    """The store id of each artifact (by place; 0: none) the stored runs used or made, by
    each event's run, type and path: a run found by its name (in a copy of the source store,
    say) brings its artifacts, which then are not recorded twice. The events are read a
    query's worth at a time, in the file's order (the first event that finds one wins)."""
    ids = _none(bundle.count(_ARTIFACT))
    if not any(runs):
        return ids
    executions, artifacts = bundle.parts[_EXECUTION], bundle.parts[_ARTIFACT]
    step = store.backend.ids_per_query

    def look(batch: List[Tuple[int, Dict[str, Any]]]) -> None:
        stored: Dict[Tuple[int, str, Tuple[Any, ...]], int] = {}
        for chunk in store.backend.chunks(sorted({run for run, _ in batch})):
            for e in store.backend.events_by_executions(chunk):
                stored[(e.execution_id, e.type, tuple(e.path))] = e.artifact_id
        for run, ev in batch:
            hit = stored.get((run, ev["type"], tuple(ev["path"])))
            at = artifacts.position(ev["artifact"])
            if hit is not None and not ids[at]:
                ids[at] = hit

    batch: List[Tuple[int, Dict[str, Any]]] = []
    for ev in bundle.each("event"):
        run = runs[executions.position(ev["execution"])]
        if run:
            batch.append((run, ev))
            if len(batch) >= step:
                look(batch)
                batch = []
    look(batch)
    return ids


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
    artifact the bundle holds without any run to write. Records are read from the bundle's
    file a batch at a time; an event is read with its artifact's place (`at`)."""

    def __init__(self, store: Store, bundle: Bundle, type_ids: Mapping[Tuple[str, str], int],
                 context_ids: Mapping[int, int], artifact_ids: "array[int]", counts: Counts) -> None:
        self.store, self.bundle, self.type_ids, self.counts = store, bundle, type_ids, counts
        self.context_ids = context_ids
        self.artifact_ids = artifact_ids  # by place: those stored, then those written (0: not yet)
        part = bundle.parts["event"]  # each run's events, in the file's order: places sorted by run
        self.event_order = array("q", sorted(range(len(part.ids)), key=part.ids.__getitem__))
        self.event_runs = array("q", (part.ids[i] for i in self.event_order))

    def _in(self, at: int, context_id: int) -> bool:
        return any(self.context_ids[c] == context_id for c in self.bundle.node_contexts(_ARTIFACT, at))

    def _artifacts(self, places: Sequence[int]) -> List[NewArtifact]:
        return [_new(a, self.type_ids) for a in self.bundle.read(_ARTIFACT, places)]

    def events(self, runs: Sequence[Dict[str, Any]]) -> Dict[int, List[Dict[str, Any]]]:
        """The events of these runs (bundle id -> its events, in the file's order)."""
        from bisect import bisect_left, bisect_right

        places = sorted(self.event_order[n] for x in runs for n in range(
            bisect_left(self.event_runs, x["id"]), bisect_right(self.event_runs, x["id"])))
        found: Dict[int, List[Dict[str, Any]]] = {}
        artifacts = self.bundle.parts[_ARTIFACT]
        for ev in self.bundle.read("event", places):  # in the file's order
            found.setdefault(ev["execution"], []).append({**ev, "at": artifacts.position(ev["artifact"])})
        return found

    def put_alone(self, places: Iterable[int]) -> None:
        """Artifacts (by place) written by themselves (no run of this import carries them)."""
        todo = [at for at in dict.fromkeys(places) if not self.artifact_ids[at]]
        for chunk in self.store.backend.chunks(todo):
            made = self.store.backend.put_artifacts(self._artifacts(chunk))
            for at, i in zip(chunk, made):
                self.artifact_ids[at] = i
            self.counts.artifacts += len(chunk)

    def put_runs(self, batch: Sequence[int], context: Optional[ContextWrite]) -> List[int]:
        """One batch of runs (by place) of `context` (None: in no context, a transaction each)."""
        runs = list(self.bundle.read(_EXECUTION, batch))
        events = self.events(runs)
        if context is None:
            return [self._put_run(x, events.get(x["id"], [])) for x in runs]
        carried: Dict[int, int] = {}  # artifact place -> its index among the new artifacts
        alone: List[int] = []
        for x in runs:
            for ev in events.get(x["id"], ()):
                i = ev["at"]
                if self.artifact_ids[i] or i in carried:
                    continue
                if self._in(i, context.id):
                    carried[i] = len(carried)
                else:
                    alone.append(i)
        self.put_alone(alone)
        edges = [NewEvent(ev["type"], tuple(ev["path"]), artifact_id=self.artifact_ids[ev["at"]],
                          artifact_index=carried.get(ev["at"]), execution_index=n)
                 for n, x in enumerate(runs) for ev in events.get(x["id"], ())]
        made, artifacts, _ = self.store.backend.put_lineage(
            [self._write(x) for x in runs], self._artifacts(list(carried)), edges, context)
        for at, i in zip(carried, artifacts):
            self.artifact_ids[at] = i
        self.counts.artifacts += len(carried)
        self.counts.events += len(edges)
        return made

    def _put_run(self, x: Dict[str, Any], events: Sequence[Dict[str, Any]]) -> int:
        """A run in no context, with its events and the new artifacts of one event each."""
        once = [ev for ev in events if not self.artifact_ids[ev["at"]]
                and sum(e["at"] == ev["at"] for e in events) == 1]
        self.put_alone([ev["at"] for ev in events if ev not in once])
        new = self._artifacts([ev["at"] for ev in once])
        execution_id, made, _ = self.store.backend.put_execution(
            self._write(x), artifacts=[(a, NewEvent(ev["type"], tuple(ev["path"]))) for a, ev in zip(new, once)],
            inputs=[(self.artifact_ids[ev["at"]], NewEvent(ev["type"], tuple(ev["path"])))
                    for ev in events if ev not in once])
        for ev, i in zip(once, made):
            self.artifact_ids[ev["at"]] = i
        self.counts.artifacts += len(once)
        self.counts.events += len(events)
        return execution_id

    def _write(self, x: Dict[str, Any]) -> ExecutionWrite:
        return ExecutionWrite(self.type_ids[("execution", x["type"])], x["type"], name=x["name"],
                              state=ExecutionState(x["state"]), properties=dict(x["properties"]),
                              custom=_times({**x["custom"], ORIGIN: x["origin"]}, STARTED_MS, x["created_ms"]))


def _executions(writer: _Writer, stored: "array[int]", context_ids: Mapping[int, int],
                batch_size: int) -> "array[int]":
    """The store id of each of the bundle's runs (by place), recording the missing runs (by
    their first context, `batch_size` to a transaction) with their events and new artifacts."""
    bundle, backend, counts = writer.bundle, writer.store.backend, writer.counts
    ids = array("q", stored)
    by_context: Dict[Optional[int], "array[int]"] = {}
    missing = 0
    for at in range(bundle.count(_EXECUTION)):
        if not stored[at]:
            contexts = bundle.node_contexts(_EXECUTION, at)
            by_context.setdefault(context_ids[contexts[0]] if contexts else None, array("q")).append(at)
            missing += 1
    counts.already["executions"] = bundle.count(_EXECUTION) - missing
    for context_id, group in by_context.items():
        context = None
        if context_id is not None:
            stored_context = next(c for c in backend.contexts(Query(ids=[context_id])))
            context = ContextWrite(stored_context.type_id, stored_context.type, stored_context.name, id=context_id)
        for first in range(0, len(group), batch_size):
            batch = group[first:first + batch_size]
            for at, i in zip(batch, writer.put_runs(batch, context)):
                ids[at] = i
    counts.executions = missing
    return ids
