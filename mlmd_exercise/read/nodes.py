"""Looking around the store: list artifacts, executions and experiments, show one node.

Filters reach the store as a structured `Query` of numbers, enum names and
values, never as query text: a name such as `'; DROP TABLE Artifact; --` is only
ever data.
"""

from __future__ import annotations

import dataclasses
import re
import time
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Callable, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

from mlmd_exercise import schema
from mlmd_exercise.content import FINGERPRINT, is_ours
from mlmd_exercise.errors import MlmdExerciseError
from mlmd_exercise.read.contexts import context_names, contexts_of
from mlmd_exercise.read.counts import context_sizes
from mlmd_exercise.read.lineage import (cached_among, get_artifact, get_execution, node_edges,
                                        reused_outputs)
from mlmd_exercise.records import (CREATED_MS, RUN_NAME, STARTED_MS, TAG_PREFIX, ArtifactRecord, ExecutionRecord,
                                   ExecutionState, Kind, LineageEdge)
from mlmd_exercise.store import Store
from mlmd_exercise.store.backend import PropertyTest, Query

if TYPE_CHECKING:
    from mlmd_exercise.where import Expr

__all__ = [
    "ExperimentRecord",
    "NodeDetail",
    "parse_since",
    "PAGE",
    "artifacts_query",
    "executions_query",
    "list_artifacts",
    "list_executions",
    "newest_first_ids",
    "nodes_by_ids",
    "list_experiments",
    "show_artifact",
    "show_execution",
    "find_by_fingerprint",
    "oldest_twins",
    "twins_by_fingerprint",
    "twins_of",
    "original_time_filter",
]

PAGE = 1000  # nodes read at once where a listing streams

_CHUNK = 200  # fingerprints per lookup query
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


@dataclass(frozen=True)
class ExperimentRecord:
    """A context (an Experiment, a TFX pipeline run, a Kubeflow run, ...) and how much it holds."""

    id: int
    name: str
    created_ms: int
    executions: int
    artifacts: int
    properties: dict
    type: str = schema.EXPERIMENT.name  # the context's type


@dataclass(frozen=True)
class NodeDetail:
    """One artifact or execution with every event that touches it and its contexts
    (an experiment by its name, another context as `type/name`)."""

    node: Union[ArtifactRecord, ExecutionRecord]
    events: Tuple[LineageEdge, ...]
    experiments: Tuple[str, ...]
    same_content: Tuple[int, ...] = ()  # other artifacts with this artifact's bytes
    # A CACHED execution's re-published outputs: (artifact id, the execution that made it);
    # for an artifact, the CACHED executions among those that output it.
    reused: Tuple[Tuple[int, int], ...] = ()
    cached: Tuple[int, ...] = ()


def parse_since(text: str, now: Optional[float] = None) -> int:
    """A time as milliseconds since the epoch, from "2026-11-26", "2026-11-26T14:00" or "2h".

    Relative times count back from `now`: s, m, h, d and w units ("90m", "7d").

    Raises:
        MlmdExerciseError: the text is neither.
    """
    match = re.fullmatch(r"\s*(\d+)\s*([smhdw])\s*", text)
    if match:
        seconds = int(match.group(1)) * _UNITS[match.group(2)]
        return int(((time.time() if now is None else now) - seconds) * 1000)
    try:
        return int(datetime.fromisoformat(text.strip()).timestamp() * 1000)
    except ValueError:
        raise MlmdExerciseError(
            f"cannot read time '{text}': use a date like 2026-11-26, "
            "a date and time like 2026-11-26T14:00, or an age like 90m, 2h, 7d"
        ) from None


def _check_limit(limit: Optional[int]) -> None:
    if limit is not None and limit <= 0:
        raise MlmdExerciseError(f"limit must be positive, not {limit}")


def _type_id(store: Store, kind: Kind, name: Optional[str]) -> Optional[int]:
    return None if name is None else store.catalog.require_type(kind, name)


def original_time_filter(key: str, since_ms: Optional[int] = None) -> PropertyTest:
    """The test for nodes imported with an original time (`key`, stored as a double), at or
    after `since_ms` if given."""
    return PropertyTest(key, ">=", (float(since_ms) if since_ms is not None else -float(2 ** 62),))


def _newest_first(fetch: Callable[[Query], Sequence], base: Query, original: str, since_ms: Optional[int],
                  limit: Optional[int]) -> list:
    """Nodes newest first by when they were made: their original time where they were
    imported with one (the custom property `original`), else MLMD's create time.

    The store orders by its own create time only, so nodes with an original time are read
    by a query of their own; the newest `limit` others need at most `limit` more rows
    than that query found.
    """
    _check_limit(limit)  # a bad limit is refused before any query
    imported = fetch(dataclasses.replace(base, custom=base.custom + (original_time_filter(original, since_ms),)))
    enough = None if limit is None else limit + len(imported)
    plain = fetch(dataclasses.replace(base, created_from=since_ms, limit=enough))
    records = list(imported) + [n for n in plain if original not in n.custom]
    records.sort(key=lambda r: (r.when_ms, r.id), reverse=True)
    return records[:limit]


def artifacts_query(store: Store, *, type: Optional[str] = None, experiment: Optional[str] = None,
                    context_type: Optional[str] = None, where: Optional[str] = None) -> Query:
    """The store query for artifacts of a type name, of an experiment (or any context, of
    `context_type` where the name is ambiguous), that a filter query in MLMD's language
    selects (`where.py`).

    Raises:
        NotFoundError: the type or experiment is not in the store.
        UsageError: `where` is no filter query (one line saying where it fails).
    """
    return Query(type_id=_type_id(store, Kind.ARTIFACT, type), where=parsed(where, Kind.ARTIFACT),
                 context_id=None if experiment is None else store.catalog.context_id(experiment, context_type))


def list_artifacts(
    store: Store, *, type: Optional[str] = None, experiment: Optional[str] = None,
    since_ms: Optional[int] = None, limit: Optional[int] = None, context_type: Optional[str] = None,
    where: Optional[str] = None,
) -> List[ArtifactRecord]:
    """Artifacts, newest first, filtered as `artifacts_query` filters them and by when they
    were made (their original time where imported with one).

    Raises:
        NotFoundError: the type or experiment is not in the store.
        UsageError: `where` is no filter query (one line saying where it fails).
    """
    base = artifacts_query(store, type=type, experiment=experiment, context_type=context_type, where=where)
    return _newest_first(store.backend.artifacts, base, CREATED_MS, since_ms, limit)


def executions_query(store: Store, *, type: Optional[str] = None, experiment: Optional[str] = None,
                     state: Optional[str] = None, context_type: Optional[str] = None,
                     tags: Optional[Mapping[str, str]] = None, where: Optional[str] = None) -> Query:
    """The store query for executions of a type, of an experiment (or any context), in a
    state, with every tag given (with that value), that a filter query selects (`where.py`).
    An execution with no state (the guide's code sets none) is UNKNOWN.

    Raises:
        NotFoundError: the type or experiment is not in the store.
        MlmdExerciseError: an unknown state.
        UsageError: `where` is no filter query (one line saying where it fails).
    """
    states = None
    if state is not None:
        names = [s.value for s in ExecutionState]
        if state.upper() not in names:
            raise MlmdExerciseError(f"unknown state '{state}': use one of {', '.join(names)}")
        states = [state.upper()]
    return Query(type_id=_type_id(store, Kind.EXECUTION, type), states=states, custom=tag_tests(tags),
                 where=parsed(where, Kind.EXECUTION), context_id=None if experiment is None else store.catalog.context_id(experiment, context_type))


def list_executions(
    store: Store, *, type: Optional[str] = None, experiment: Optional[str] = None,
    state: Optional[str] = None, since_ms: Optional[int] = None, limit: Optional[int] = None,
    context_type: Optional[str] = None, tags: Optional[Mapping[str, str]] = None,
    where: Optional[str] = None,
) -> List[ExecutionRecord]:
    """Executions, newest first, filtered as `executions_query` filters them and by when they
    started (their original time where imported with one).

    Raises:
        NotFoundError: the type or experiment is not in the store.
        MlmdExerciseError: an unknown state.
        UsageError: `where` is no filter query.
    """
    base = executions_query(store, type=type, experiment=experiment, state=state, context_type=context_type,
                            tags=tags, where=where)
    return _newest_first(store.backend.executions, base, STARTED_MS, since_ms, limit)


def newest_first_ids(store: Store, kind: Kind, base: Query, since_ms: Optional[int] = None,
                     seen: Optional[Callable[[list], None]] = None) -> List[int]:
    """The ids of the artifacts or executions `base` selects (see `artifacts_query` and
    `executions_query`), newest first as `list_artifacts` and `list_executions` order them,
    read a page at a time by id: only an id and a time per node are held, so a listing of
    200,000 runs can stream (`nodes_by_ids`) in bounded memory. `seen`, where given, is
    shown each page of the nodes kept, in the order of their ids, as it is read."""
    fetch = store.backend.artifacts if kind == Kind.ARTIFACT else store.backend.executions
    keys: List[Tuple[int, int]] = []
    last = 0
    while True:
        page = fetch(dataclasses.replace(base, id_above=last, order="id", ascending=True, limit=PAGE))
        kept = [n for n in page if since_ms is None or n.when_ms >= since_ms]
        keys += [(n.when_ms, n.id) for n in kept]
        if seen is not None and kept:
            seen(kept)
        if len(page) < PAGE:
            break
        last = page[-1].id
    keys.sort(reverse=True)
    return [i for _, i in keys]


def nodes_by_ids(store: Store, kind: Kind, ids: Sequence[int]) -> Iterator[list]:
    """These artifacts or executions in the order given, a page at a time (one gone
    meanwhile is left out)."""
    fetch = store.backend.artifacts if kind == Kind.ARTIFACT else store.backend.executions
    for start in range(0, len(ids), PAGE):
        chunk = ids[start:start + PAGE]
        found = {n.id: n for n in fetch(Query(ids=list(chunk)))}
        yield [found[i] for i in chunk if i in found]


def parsed(where: Optional[str], kind: Kind, label: str = "--where") -> Optional["Expr"]:
    """A filter query's tree for nodes of `kind`, or None for none (see `where.parse`)."""
    if where is None:
        return None
    from mlmd_exercise.where import parse

    return parse(where, kind, label)


def tag_pair(text: str) -> Optional[Tuple[str, str]]:
    """A tag filter, `key=value`, as (key, value); None where it is not one (no `=`, no key)."""
    key, equals, value = text.partition("=")
    return (key, value) if equals and key.strip() else None


def tag_tests(tags: Optional[Mapping[str, str]]) -> Tuple[PropertyTest, ...]:
    """The tests for runs that have every one of these tags, with its value."""
    return tuple(PropertyTest(TAG_PREFIX + key, "in", (value,)) for key, value in sorted((tags or {}).items()))


def runs_named(store: Store, name: str) -> List[ExecutionRecord]:
    """The runs called `name`, newest first: those given it (`execution(name=...)`), and one
    whose MLMD name it is (`import`'s names, a store another program wrote)."""
    given = store.backend.executions(Query(custom=(PropertyTest(RUN_NAME, "in", (name,)),)))
    keyed = [e for e in store.backend.executions(Query(names=[name])) if RUN_NAME not in e.properties]
    found = {e.id: e for e in list(given) + keyed}
    return sorted(found.values(), key=lambda e: (e.when_ms, e.id), reverse=True)


def list_experiments(
    store: Store, *, since_ms: Optional[int] = None, limit: Optional[int] = None,
    type: Optional[str] = None, where: Optional[str] = None,
) -> List[ExperimentRecord]:
    """Experiments and every other context (TFX's pipelines and runs, Kubeflow's), newest
    first, with their types and numbers of executions and artifacts.

    Raises:
        NotFoundError: `type` is not a context type in the store.
    """
    _check_limit(limit)
    from mlmd_exercise.read.history import history_type

    type_id = None if type is None else store.catalog.require_context_type(type)
    contexts = store.backend.contexts(Query(type_id=type_id, not_type_id=None if type_id else history_type(store),
                                            created_from=since_ms, limit=limit, where=parsed(where, Kind.CONTEXT)))
    sizes = context_sizes(store, [c.id for c in contexts])
    return [
        ExperimentRecord(
            id=c.id,
            name=c.name,
            created_ms=c.created_ms,
            executions=sizes[c.id][0],
            artifacts=sizes[c.id][1],
            properties={k: v for k, v in c.properties.items() if k not in c.custom},  # declared ones
            type=c.type,
        )
        for c in contexts
    ]



def find_by_fingerprint(store: Store, digest: str) -> List[ArtifactRecord]:
    """Every artifact whose content has this fingerprint ("sha256:<64 hex digits>"), oldest first.

    Raises:
        MlmdExerciseError: `digest` is not a sha256 fingerprint.
    """
    # Checked to be hex before it goes into the filter query.
    if not is_ours(digest):
        raise MlmdExerciseError(f"'{digest}' is not a fingerprint: expected sha256:<64 hex digits>")
    return store.backend.artifacts(Query(custom=(PropertyTest(FINGERPRINT, "in", (digest,)),), order="id",
                                         ascending=True))


def twins_of(store: Store, artifact: ArtifactRecord) -> Tuple[int, ...]:
    """The ids of the other artifacts with this one's bytes, oldest first."""
    digest = artifact.properties.get(FINGERPRINT)
    if not is_ours(digest):
        return ()
    return tuple(a.id for a in find_by_fingerprint(store, str(digest)) if a.id != artifact.id)


def oldest_twins(store: Store, artifacts: Iterable[ArtifactRecord]) -> Dict[int, int]:
    """Which of these artifacts hold the same bytes as another artifact in the store.

    Returns:
        For each such artifact's id, the id of the oldest other artifact whose
        fingerprint is the same (a model that a second run made from the same
        inputs, say, or the same file recorded at another URI).
    """
    return twins_by_fingerprint(store, ((a.id, a.properties.get(FINGERPRINT)) for a in artifacts))


def twins_by_fingerprint(store: Store, fingerprints: Iterable[Tuple[int, object]]) -> Dict[int, int]:
    """`oldest_twins` of artifacts given as (id, the value of their fingerprint property)."""
    by_digest: Dict[str, List[int]] = {}
    for artifact_id, digest in fingerprints:
        if isinstance(digest, str) and is_ours(digest):  # hex: safe in a filter query
            by_digest.setdefault(digest, []).append(artifact_id)
    holders: Dict[str, List[int]] = {}
    digests = sorted(by_digest)
    for first in range(0, len(digests), _CHUNK):
        test = PropertyTest(FINGERPRINT, "in", tuple(digests[first:first + _CHUNK]))
        for stored in store.backend.artifacts(Query(custom=(test,))):
            holders.setdefault(str(stored.custom[FINGERPRINT]), []).append(stored.id)
    found: Dict[int, int] = {}
    for digest, ids in by_digest.items():
        for artifact_id in ids:
            others = [i for i in holders.get(digest, ()) if i != artifact_id]
            if others:
                found[artifact_id] = min(others)
    return found


def show_artifact(store: Store, artifact_id: int) -> NodeDetail:
    """An artifact, every event that touches it and the experiments it belongs to.

    Raises:
        NotFoundError: no artifact has this id.
    """
    artifact = get_artifact(store, artifact_id)
    edges = node_edges(store, "artifact", artifact_id)
    makers = {e.execution_id for e in edges if e.kind == "OUTPUT"}
    return NodeDetail(artifact, tuple(edges), context_names(contexts_of(store, "artifact", artifact_id)),
                      twins_of(store, artifact),
                      cached=tuple(sorted(cached_among(store, makers))) if len(makers) > 1 else ())


def show_execution(store: Store, execution_id: int) -> NodeDetail:
    """An execution, every event that touches it and the experiments it belongs to.

    Raises:
        NotFoundError: no execution has this id.
    """
    execution = get_execution(store, execution_id)
    edges = node_edges(store, "execution", execution_id)
    return NodeDetail(execution, tuple(edges), context_names(contexts_of(store, "execution", execution_id)),
                      reused=reused_outputs(store, execution, edges))
