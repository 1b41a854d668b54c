"""What each page of the explorer shows, gathered from a store: one function per page.

Plain data in, plain data out: no web framework and no HTML here, so that the
server, the report and the tests share them, and so that a page's gathering can
be replaced in one place (`compare` by `diff`, `environment` by the recorded
environment block). Everything here only reads the store.

Query parameters reach MLMD only as numbers, enum names and exact-match
lookups, except the free-text search, which goes into a LIKE pattern escaped
for MLMD's filter language.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union
from urllib.parse import unquote, urlparse

from ml_metadata import errors as mlmd_errors
from ml_metadata.metadata_store.metadata_store import ListOptions, OrderByField

from .. import schema
from ..browse import find_by_fingerprint, parse_since
from ..content import FINGERPRINT, fingerprint
from ..errors import MlmdExerciseError, NotFoundError
from ..lineage import edges_of, get_artifact, get_execution, walk
from ..records import DIRECTIONS, ENDED_MS, STARTED_MS, ArtifactRecord, ExecutionRecord, LineageGraph
from ..schema import ExecutionState
from ..store import Store

__all__ = [
    "BadParameter", "RunsQuery", "RunRow", "RunsPage", "runs_page", "NodePage", "node_page",
    "LineagePage", "lineage_page", "Comparison", "compare", "StatesPage", "states_page",
    "parse_id", "parse_kind", "SORT_LIMIT", "count_apart", "split_properties", "file_check",
]

log = logging.getLogger(__name__)
PER_PAGE, MAX_PER_PAGE = 50, 500
SORT_LIMIT = 10_000  # runs loaded to sort by a column MLMD cannot order by
DEFAULT_HOPS, MAX_HOPS = 3, 50
# Execution properties that say where a run happened rather than what it did.
ENVIRONMENT_KEYS = ("host", "pid", "pid_start")
_NOT_PARAMS = {*ENVIRONMENT_KEYS, "state", "error_type", "error_message", "abandoned", STARTED_MS, ENDED_MS}
# Properties of a model or metrics artifact that are its own, not the run's metrics.
_NOT_METRICS = {"name", "version", FINGERPRINT, "split", "day", "created_ms"}
_METRIC_CARRIERS = (schema.SAVED_MODEL.name, schema.METRICS.name)
_FINISHED = {"COMPLETE", "FAILED", "CANCELED", "CACHED"}
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")  # a property name safe in a filter query
Node = Union[ArtifactRecord, ExecutionRecord]


class BadParameter(MlmdExerciseError):
    """A query parameter the explorer cannot use: answered with 400 naming it."""


def parse_id(text: str, what: str = "id") -> int:
    if not re.fullmatch(r"[0-9]{1,18}", text or "") or int(text) <= 0:
        raise BadParameter(f"{what} must be a positive whole number, not '{text}'")
    return int(text)


def parse_kind(text: str) -> str:
    if text not in ("artifact", "execution"):
        raise BadParameter(f"unknown kind '{text}': use artifact or execution")
    return text


def _contexts(store: Store, kind: str, node_id: int) -> List[Tuple[str, str, int]]:
    """(context type, name, id) of every context of a node; none for a node that has none
    (MLMD raises NotFoundError for those)."""
    get = store.mlmd.get_contexts_by_artifact if kind == "artifact" else store.mlmd.get_contexts_by_execution
    try:
        found = get(node_id)
    except mlmd_errors.NotFoundError:
        return []
    return sorted((c.type, c.name, c.id) for c in found)


# -- Runs -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunsQuery:
    """The runs page's filters, sort and page, as the URL gives them."""

    context: Optional[int] = None
    type: str = ""
    state: str = ""
    since: str = ""
    until: str = ""
    q: str = ""
    sort: str = "-start"  # a column name, "-" first for descending
    page: int = 1
    per: int = PER_PAGE

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> "RunsQuery":
        """From query parameters; an unknown one or a bad value is a BadParameter naming it."""
        known = {"context", "type", "state", "since", "until", "q", "sort", "page", "per"}
        for key in params:
            if key not in known:
                raise BadParameter(f"unknown query parameter '{key}': use {', '.join(sorted(known))}")
        state = params.get("state", "").upper()
        if state and state not in {s.value for s in ExecutionState}:
            raise BadParameter(f"unknown state '{params['state']}': use one of "
                               + ", ".join(s.value for s in ExecutionState))
        per = parse_id(params["per"], "per") if params.get("per") else PER_PAGE
        if per > MAX_PER_PAGE:
            raise BadParameter(f"per must be at most {MAX_PER_PAGE}, not '{per}'")
        q = params.get("q", "").strip()
        if len(q) > 200 or any(ord(c) < 32 for c in q):
            raise BadParameter(f"search text '{q[:40]}' is too long or holds control characters")
        sort = params.get("sort", "") or "-start"
        if not re.fullmatch(r"-?(id|start|type|state|experiment|duration|(param|metric):[^\x00-\x1f]{1,100})", sort):
            raise BadParameter(f"cannot sort by '{sort}': use id, start, type, state, experiment, "
                               "duration, param:NAME or metric:NAME, with - for descending")
        query = cls(
            context=parse_id(params["context"], "context") if params.get("context") else None,
            type=params.get("type", ""), state=state, since=params.get("since", "").strip(),
            until=params.get("until", "").strip(), q=q, sort=sort,
            page=parse_id(params["page"], "page") if params.get("page") else 1, per=per)
        for text in (query.since, query.until):
            if text:
                _time(text)
        return query

    def params(self, **changes: Any) -> Dict[str, str]:
        """The query parameters of this query with some changed: for links."""
        values = {"context": self.context or "", "type": self.type, "state": self.state,
                  "since": self.since, "until": self.until, "q": self.q, "sort": self.sort,
                  "page": self.page, "per": self.per, **changes}
        defaults = {"sort": "-start", "page": 1, "per": PER_PAGE}
        return {k: str(v) for k, v in values.items() if v not in ("", None) and defaults.get(k) != v}


def _time(text: str) -> int:
    try:
        return parse_since(text)
    except MlmdExerciseError as e:
        raise BadParameter(str(e)) from None


@dataclass(frozen=True)
class RunRow:
    execution: ExecutionRecord
    contexts: Tuple[Tuple[str, str, int], ...]
    started_ms: int
    duration_ms: Optional[int]
    params: Mapping[str, Any]
    metrics: Mapping[str, Any]
    outputs: Tuple[Tuple[str, ArtifactRecord], ...]


@dataclass(frozen=True)
class RunsPage:
    query: RunsQuery
    rows: Tuple[RunRow, ...]
    param_columns: Tuple[str, ...]
    metric_columns: Tuple[str, ...]
    has_next: bool
    total: Optional[int]  # known when the runs were sorted in memory
    notice: str
    contexts: Tuple[Tuple[int, str, str], ...]  # (id, type, name), for the filter
    types: Tuple[str, ...]


def _escape_like(text: str) -> str:
    """Text inside a single-quoted string of MLMD's filter language."""
    return text.replace("\\", "\\\\").replace("'", "\\'")


def _filters(store: Store, query: RunsQuery, keys: Sequence[str]) -> List[str]:
    filters = []
    if query.type:
        try:
            type_id = store.mlmd.get_execution_type(query.type).id
        except mlmd_errors.NotFoundError:
            raise NotFoundError(f"no execution type named '{query.type}' in {store}") from None
        filters.append(f"type_id = {int(type_id)}")
    if query.state:
        filters.append(f"last_known_state = {ExecutionState(query.state).value}")
    if query.since:
        filters.append(f"create_time_since_epoch >= {_time(query.since)}")
    if query.until:
        filters.append(f"create_time_since_epoch < {_time(query.until)}")
    if query.q:
        like = f"'%{_escape_like(query.q)}%'"
        terms = [f"type LIKE {like}", f"name LIKE {like}"]
        terms += [f"custom_properties.{k}.string_value LIKE {like}" for k in keys if _KEY.fullmatch(k)]
        if query.q.isdigit() and len(query.q) < 18:
            terms.append(f"id = {int(query.q)}")
        filters.append("(" + " OR ".join(terms) + ")")
    return filters


def _fetch(store: Store, query: RunsQuery, filters: List[str], limit: int, native: bool):
    """Executions by id, newest first (or oldest, for an ascending native sort). Ids grow as
    runs are recorded, so this is recording order; MLMD orders by id several times faster
    than by create time once a filter is added (0.02 against 0.26 s at 200k runs)."""
    if query.context is not None:
        if not store.mlmd.get_contexts_by_id([query.context]):
            raise NotFoundError(f"no context with id {query.context} in {store}")
        # A filter, not get_executions_by_context: three times faster at 200k runs.
        filters = filters + [f"contexts_a.id = {int(query.context)}"]
    options = ListOptions(limit=limit, order_by=OrderByField.ID,
                          is_asc=not query.sort.startswith("-") if native else False,
                          filter_query=" AND ".join(filters))
    return store.mlmd.get_executions(list_options=options)


def _contexts_of(store: Store, ids: Sequence[int]) -> Dict[int, List[Tuple[str, str, int]]]:
    """The contexts of each of these executions. MLMD looks up one execution's contexts by
    scanning its Association table (5 ms each at 200k runs), so a page asks once which
    contexts hold any of them and then, for a few contexts, which of them each holds."""
    found: Dict[int, List[Tuple[str, str, int]]] = {i: [] for i in ids}
    if not ids:
        return found
    listed = ", ".join(str(int(i)) for i in ids)
    contexts = store.mlmd.get_contexts(list_options=ListOptions(filter_query=f"executions_a.id IN ({listed})"))
    if len(contexts) > 5:
        return {i: _contexts(store, "execution", i) for i in ids}
    for c in contexts:
        # MLMD pages results 100 at a time, re-running the query for each page: for many
        # runs, reading the context's members whole is faster than an IN list.
        member_filter = f"contexts_a.id = {int(c.id)}"
        if len(ids) <= 100:
            member_filter = f"id IN ({listed}) AND " + member_filter
        for e in store.mlmd.get_executions(list_options=ListOptions(filter_query=member_filter)):
            if e.id in found:
                found[e.id].append((c.type, c.name, c.id))
    return {i: sorted(v) for i, v in found.items()}


def _outputs(store: Store, ids: Sequence[int]) -> Dict[int, List[Tuple[str, ArtifactRecord]]]:
    if not ids:
        return {}
    edges = [e for e in edges_of(store.mlmd.get_events_by_execution_ids(list(ids))) if e.kind == "OUTPUT"]
    wanted = sorted({e.artifact_id for e in edges})
    artifacts = {a.id: schema.artifact_record(a)
                 for a in (store.mlmd.get_artifacts_by_id(wanted) if wanted else [])}
    found: Dict[int, List[Tuple[str, ArtifactRecord]]] = {}
    for e in sorted(edges, key=lambda e: e.artifact_id):
        if e.artifact_id in artifacts:
            found.setdefault(e.execution_id, []).append((e.role, artifacts[e.artifact_id]))
    return found


def split_properties(execution: ExecutionRecord, outputs: Sequence[Tuple[str, ArtifactRecord]]
                     ) -> Tuple[Dict[str, Any], Dict[str, Any], Dict[str, Any]]:
    """A run's params, metrics and environment: metrics are what it recorded on its model or
    metrics outputs; the environment is where it ran; params are the rest of its properties."""
    metrics: Dict[str, Any] = {}
    for _, artifact in outputs:
        if artifact.type in _METRIC_CARRIERS:
            metrics.update((k, v) for k, v in artifact.properties.items() if k not in _NOT_METRICS)
    environment = {k: execution.properties[k] for k in ENVIRONMENT_KEYS if k in execution.properties}
    params = {k: v for k, v in execution.properties.items() if k not in _NOT_PARAMS and k not in metrics}
    return params, metrics, environment


def _duration(e: ExecutionRecord, last_update_ms: int) -> Optional[int]:
    ended = e.properties.get(ENDED_MS)
    if isinstance(ended, int) and not isinstance(ended, bool):
        return max(0, ended - e.when_ms)
    return max(0, last_update_ms - e.created_ms) if e.state in _FINISHED else None


def _rows(store: Store, executions: Sequence, outputs: bool = True, contexts: bool = True) -> List[RunRow]:
    """Rows for these executions; without `outputs` or `contexts` (cheaper, for sorting
    many runs by something else) their metrics or contexts are left empty."""
    ids = [e.id for e in executions]
    made_by = _outputs(store, ids) if outputs else {}
    held_by = _contexts_of(store, ids) if contexts else {}
    rows = []
    for e in executions:
        record = schema.execution_record(e)
        made = made_by.get(e.id, [])
        params, metrics, _ = split_properties(record, made)
        rows.append(RunRow(record, tuple(held_by.get(e.id, ())), record.when_ms,
                           _duration(record, e.last_update_time_since_epoch), params, metrics, tuple(made)))
    return rows


def _sort_key(row: RunRow, column: str):
    name = column.lstrip("-")
    if name.startswith(("param:", "metric:")):
        kind, key = name.split(":", 1)
        value = (row.params if kind == "param" else row.metrics).get(key)
        # Numbers before text, each in its own order; None (no value) is put last by the caller.
        return None if value is None else (isinstance(value, str), value if isinstance(value, str) else float(value))
    return {"id": row.execution.id, "start": row.started_ms, "type": row.execution.type,
            "state": row.execution.state, "duration": row.duration_ms if row.duration_ms is not None else -1,
            "experiment": [c[1] for c in row.contexts]}[name]


def runs_page(store: Store, query: RunsQuery) -> RunsPage:
    """One page of executions: filtered, sorted and paged by the store where MLMD can
    (by start time or id), else by loading up to SORT_LIMIT matching runs.

    Raises:
        NotFoundError: the type or context is not in the store.
        BadParameter: a filter value that cannot be read.
    """
    types = tuple(sorted(t.name for t in store.mlmd.get_execution_types()))
    context_options = ListOptions(limit=500, order_by=OrderByField.CREATE_TIME, is_asc=False)
    contexts = tuple(sorted((c.id, c.type, c.name) for c in store.mlmd.get_contexts(list_options=context_options)))
    keys: List[str] = []
    if query.q:  # search the string properties of the newest matching runs' kinds
        sample = _fetch(store, query, _filters(store, dataclasses.replace(query, q=""), []), 100, False)
        keys = sorted({k for e in sample for k, v in e.custom_properties.items()
                       if v.WhichOneof("value") == "string_value"})
    filters = _filters(store, query, keys)
    native = query.sort.lstrip("-") in ("id", "start")
    notice, total = "", None
    first = (query.page - 1) * query.per
    if native:
        found = _fetch(store, query, filters, first + query.per + 1, True)
        page, has_next = found[first:first + query.per], len(found) > first + query.per
        rows = _rows(store, page)
    else:
        found = _fetch(store, query, filters, SORT_LIMIT + 1, False)
        if len(found) > SORT_LIMIT:
            notice = (f"sorting by '{query.sort.lstrip('-')}' needs a filter that leaves at most "
                      f"{SORT_LIMIT:,} runs; this one leaves more, so they are shown newest first")
            return dataclasses.replace(runs_page(store, dataclasses.replace(query, sort="-start")),
                                       notice=notice)
        # Only what the sort needs for every run; the page's rows are then read in full.
        column = query.sort.lstrip("-")
        every = _rows(store, found, outputs=column.startswith("metric:"), contexts=column == "experiment")
        present = [r for r in every if _sort_key(r, query.sort) is not None]
        present.sort(key=lambda r: (_sort_key(r, query.sort), r.execution.id), reverse=query.sort.startswith("-"))
        every = present + [r for r in every if _sort_key(r, query.sort) is None]  # no value: last
        total = len(every)
        by_id = {e.id: e for e in found}
        rows = _rows(store, [by_id[r.execution.id] for r in every[first:first + query.per]])
        has_next = total > first + query.per
    params = tuple(sorted({k for r in rows for k in r.params}))
    metrics = tuple(sorted({k for r in rows for k in r.metrics}))
    return RunsPage(query, tuple(rows), params, metrics, has_next, total, notice, contexts, types)


# -- A node -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class NodePage:
    kind: str
    node: Node
    events: Tuple[Tuple[str, str, Node], ...]  # (kind, role, the node at the other end)
    contexts: Tuple[Tuple[str, str, int], ...]
    same_content: Tuple[int, ...]
    params: Mapping[str, Any] = field(default_factory=dict)
    metrics: Mapping[str, Any] = field(default_factory=dict)
    environment: Mapping[str, Any] = field(default_factory=dict)
    file_check: str = ""  # for file:// artifacts: matches, modified, missing, no fingerprint


def file_check(artifact: ArtifactRecord) -> str:
    """Whether a file:// artifact's file still holds the content it was recorded with."""
    if not artifact.uri.startswith("file://"):
        return ""
    path = Path(unquote(urlparse(artifact.uri).path))
    recorded = artifact.properties.get(FINGERPRINT)
    if not path.exists():
        return "missing: the file is gone"
    if not isinstance(recorded, str) or not recorded.startswith("sha256:"):
        return "not checked: no fingerprint of this package's was recorded"
    try:
        now = fingerprint(path)
    except OSError as e:
        return f"not checked: {e.strerror or e}"
    return "matches its fingerprint" if now == recorded else "modified since it was recorded"


def node_page(store: Store, kind: str, node_id: int) -> NodePage:
    """An artifact or execution: its properties, events (with the node at the other end),
    contexts, and for a file whether it still matches its fingerprint.

    Raises:
        NotFoundError: no such node.
    """
    # Not browse.show_*: those ask MLMD for experiments, which raises for a node in no context.
    kind = parse_kind(kind)
    if kind == "artifact":
        node = get_artifact(store, node_id)
        edges = edges_of(store.mlmd.get_events_by_artifact_ids([node_id]))
        others = {e.execution_id for e in edges}
        nodes: Dict[int, Node] = {e.id: schema.execution_record(e)
                                  for e in (store.mlmd.get_executions_by_id(sorted(others)) if others else [])}
        events = tuple((e.kind, e.role, nodes[e.execution_id])
                       for e in sorted(edges, key=lambda e: (e.kind, e.execution_id)) if e.execution_id in nodes)
        digest = node.properties.get(FINGERPRINT)
        twins = (find_by_fingerprint(store, digest)
                 if isinstance(digest, str) and re.fullmatch(r"sha256:[0-9a-f]{64}", digest) else [])
        return NodePage(kind, node, events, tuple(_contexts(store, kind, node_id)),
                        tuple(a.id for a in twins if a.id != node_id), file_check=file_check(node))
    execution = get_execution(store, node_id)
    edges = edges_of(store.mlmd.get_events_by_execution_ids([node_id]))
    others = {e.artifact_id for e in edges}
    artifacts = {a.id: schema.artifact_record(a)
                 for a in (store.mlmd.get_artifacts_by_id(sorted(others)) if others else [])}
    events = tuple((e.kind, e.role, artifacts[e.artifact_id])
                   for e in sorted(edges, key=lambda e: (e.kind, e.artifact_id)) if e.artifact_id in artifacts)
    params, metrics, environment = split_properties(
        execution, [(role, a) for k, role, a in events if k == "OUTPUT" and isinstance(a, ArtifactRecord)])
    return NodePage(kind, execution, events, tuple(_contexts(store, kind, node_id)), (),
                    params, metrics, environment)


# -- Lineage ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class LineagePage:
    kind: str
    node: Node
    direction: str
    hops: Optional[int]
    graph: LineageGraph


def lineage_page(store: Store, kind: str, node_id: int, direction: str = "both",
                 hops: Optional[int] = DEFAULT_HOPS) -> LineagePage:
    """The graph around a node, `hops` events away at most, upstream, downstream or both.

    Raises:
        NotFoundError: no such node.
        BadParameter: an unknown direction or a hop count out of range.
    """
    kind = parse_kind(kind)
    if direction not in DIRECTIONS:
        raise BadParameter(f"unknown direction '{direction}': use one of {', '.join(DIRECTIONS)}")
    if hops is not None and not 0 <= hops <= MAX_HOPS:
        raise BadParameter(f"hops must be 0 to {MAX_HOPS}, not '{hops}'")
    node: Node = get_artifact(store, node_id) if kind == "artifact" else get_execution(store, node_id)
    graph = walk(store, direction=direction, hops=hops,
                 **({"artifact_id": node_id} if kind == "artifact" else {"execution_id": node_id}))
    return LineagePage(kind, node, direction, hops, graph)


# -- Compare ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Comparison:
    """Two nodes side by side: rows of (section, key, value in a, value in b)."""

    kind: str
    a: Node
    b: Node
    rows: Tuple[Tuple[str, str, str, str], ...]

    @property
    def differences(self) -> int:
        return sum(1 for _, _, x, y in self.rows if x != y)


def _shown(value: Any) -> str:
    return "" if value is None else str(value)


def _side(store: Store, execution_id: int, side: str) -> Dict[str, str]:
    """An execution's inputs or outputs by role: URI and fingerprint."""
    page = node_page(store, "execution", execution_id)
    found: Dict[str, str] = {}
    for kind, role, a in page.events:
        if kind == side and isinstance(a, ArtifactRecord):
            digest = a.properties.get(FINGERPRINT, "")
            found[role or "-"] = f"{a.uri}  {digest}".strip()
    return found


def _producer(store: Store, artifact_id: int) -> Optional[int]:
    events = edges_of(store.mlmd.get_events_by_artifact_ids([artifact_id]))
    made = sorted(e.execution_id for e in events if e.kind == "OUTPUT")
    return made[0] if made else None


def compare(store: Store, kind: str, a_id: int, b_id: int) -> Comparison:
    """What differs between two runs (params, metrics, inputs and outputs by role with URI
    and fingerprint) or two models (their properties, then the same for the runs that made them).

    Raises:
        NotFoundError: either node is missing.
    """
    kind = parse_kind(kind)
    rows: List[Tuple[str, str, str, str]] = []

    def section(name: str, x: Mapping[str, Any], y: Mapping[str, Any]) -> None:
        rows.extend((name, k, _shown(x.get(k)), _shown(y.get(k))) for k in sorted(set(x) | set(y)))

    def runs(x_id: Optional[int], y_id: Optional[int], prefix: str = "") -> None:
        pages = [node_page(store, "execution", i) if i else None for i in (x_id, y_id)]
        section(prefix + "run", *[{"type": p.node.type, "state": p.node.state} if p else {} for p in pages])
        section(prefix + "params", *[p.params if p else {} for p in pages])
        section(prefix + "metrics", *[p.metrics if p else {} for p in pages])
        for side in ("INPUT", "OUTPUT"):
            section(prefix + side.lower() + "s", *[_side(store, i, side) if i else {} for i in (x_id, y_id)])

    if kind == "execution":
        a, b = get_execution(store, a_id), get_execution(store, b_id)
        runs(a_id, b_id)
    else:
        a, b = get_artifact(store, a_id), get_artifact(store, b_id)
        section("artifact", {"type": a.type, "uri": a.uri, "state": a.state},
                {"type": b.type, "uri": b.uri, "state": b.state})
        section("properties", a.properties, b.properties)
        runs(_producer(store, a_id), _producer(store, b_id), "made by: ")
    return Comparison(kind, a, b, tuple(rows))


# -- States -----------------------------------------------------------------------------------


def count_apart(store: Store, experiment: Optional[str] = None) -> Dict[str, int]:
    """Executions by state, counted by SQL where that is fast and safe.

    This process holds an MLMD store on the file, so on SQLite the count runs in a
    process of its own (`mlmd-exercise states --json`: one SQL query, about 0.15 s
    at 200k runs against 3 s through MLMD's API here); PostgreSQL counts by SQL
    on the store's own connection.
    """
    import json
    import subprocess
    import sys

    from ..counting import count_by_state

    path = store.location.path
    if store.location.is_sqlite and path is not None:
        command = [sys.executable, "-m", "mlmd_exercise", "states", "--json", "--db", str(path.resolve())]
        proc = subprocess.run(command + (["--experiment", experiment] if experiment is not None else []),
                              capture_output=True, text=True, timeout=300)
        if proc.returncode == 0:
            counts = json.loads(proc.stdout)  # its keys sorted by name: put them in MLMD's order
            return {s.value: counts[s.value] for s in ExecutionState if counts.get(s.value)}
        log.debug("counting apart failed (%s): %s", proc.returncode, proc.stderr.strip())
    return count_by_state(store, experiment)


@dataclass(frozen=True)
class StatesPage:
    context: Optional[Tuple[int, str, str]]  # (id, type, name) of the context counted, if one
    counts: Mapping[str, int]
    contexts: Tuple[Tuple[int, str, str], ...]


def states_page(store: Store, context_id: Optional[int] = None) -> StatesPage:
    """Executions by state, for the store or one context.

    Raises:
        NotFoundError: no context has this id.
    """
    from collections import Counter

    options = ListOptions(limit=500, order_by=OrderByField.CREATE_TIME, is_asc=False)
    contexts = tuple(sorted((c.id, c.type, c.name) for c in store.mlmd.get_contexts(list_options=options)))
    if context_id is None:
        return StatesPage(None, count_apart(store), contexts)
    found = store.mlmd.get_contexts_by_id([context_id])
    if not found:
        raise NotFoundError(f"no context with id {context_id} in {store}")
    c = found[0]
    if c.type == schema.EXPERIMENT.name:
        counts = count_apart(store, c.name)
    else:
        tally = Counter(ExecutionState(schema.execution_record(e).state).value
                        for e in store.mlmd.get_executions_by_context(context_id))
        counts = {s.value: tally[s.value] for s in ExecutionState if tally[s.value]}
    return StatesPage((c.id, c.type, c.name), counts, contexts)
