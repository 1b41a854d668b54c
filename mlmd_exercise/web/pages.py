"""What each page of the explorer shows, gathered from a store: one function per page.

Plain data in, plain data out: no web framework and no HTML here, so that the
server, the report and the tests share them, and so that a page's gathering can
be replaced in one place (`compare` by `diff`, `environment` by the recorded
environment block). Everything here only reads the store.

The runs page, the biggest, is in `runs`. Query parameters reach MLMD only as
numbers, enum names and exact-match lookups.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union
from urllib.parse import unquote, urlparse


from mlmd_exercise import schema, text
from mlmd_exercise.read.nodes import twins_of
from mlmd_exercise.content import FINGERPRINT, fingerprint, readable_content
from mlmd_exercise.errors import MlmdExerciseError, NotFoundError
from mlmd_exercise.read.lineage import get_artifact, get_execution, node_edges, reused_outputs, walk
from mlmd_exercise.records import DIRECTIONS, ArtifactRecord, ExecutionRecord, Kind, LineageGraph
from mlmd_exercise.store import Store
from mlmd_exercise.history import Point
from mlmd_exercise.read.history import history_type
from mlmd_exercise.store.backend import Query

if TYPE_CHECKING:
    from mlmd_exercise.read.diff import Diff

__all__ = [
    "BadParameter", "NodePage", "node_page", "LineagePage", "lineage_page", "Comparison", "compare", "comparison",
    "StatesPage", "states_page", "parse_id", "parse_kind", "split_properties", "file_check",
    "contexts_of_node",
]

DEFAULT_HOPS, MAX_HOPS = 3, 50
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


def contexts_of_node(store: Store, kind: str, node_id: int) -> List[Tuple[str, str, int]]:
    """(context type, name, id) of every context of a node; none for a node that has none."""
    return sorted((c.type, c.name, c.id) for c in store.backend.contexts_of(Kind(kind), node_id))


# -- What a run did ---------------------------------------------------------------------------


def split_properties(execution: ExecutionRecord, outputs: Sequence[Tuple[str, ArtifactRecord]]
                     ) -> Tuple[Dict[str, Any], Dict[str, Any], Dict[str, Any]]:
    """A run's params, metrics and environment, as `ls` and `diff` sort them out."""
    from mlmd_exercise.read.compare import summarize_run

    summary = summarize_run(execution, outputs)
    return dict(summary.params), dict(summary.metrics), dict(summary.environment)


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
    curves: Mapping[str, Tuple[Point, ...]] = field(default_factory=dict)  # a run's metrics, downsampled
    reused: Tuple[Tuple[int, int], ...] = ()  # a CACHED run's outputs: (artifact, the execution that made it)


def file_check(artifact: ArtifactRecord) -> str:
    """Whether a file:// artifact's file still holds the content it was recorded with."""
    if not artifact.uri.startswith("file://"):
        return ""
    path = Path(unquote(urlparse(artifact.uri).path))
    recorded = artifact.properties.get(FINGERPRINT)
    if not path.exists():
        return "missing: the file is gone"
    if not readable_content(path):
        return "not checked: not a regular file or a directory"
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
        edges = node_edges(store, kind, node_id)
        others = {e.execution_id for e in edges}
        nodes: Dict[int, Node] = {e.id: e for e in (store.backend.executions(Query(ids=sorted(others)))
                                                    if others else [])}
        events = tuple((e.kind, e.role, nodes[e.execution_id])
                       for e in sorted(edges, key=lambda e: (e.kind, e.execution_id)) if e.execution_id in nodes)
        return NodePage(kind, node, events, tuple(contexts_of_node(store, kind, node_id)),
                        twins_of(store, node), file_check=file_check(node))
    execution = get_execution(store, node_id)
    edges = node_edges(store, kind, node_id)
    others = {e.artifact_id for e in edges}
    artifacts = {a.id: a for a in (store.backend.artifacts(Query(ids=sorted(others))) if others else [])}
    events = tuple((e.kind, e.role, artifacts[e.artifact_id])
                   for e in sorted(edges, key=lambda e: (e.kind, e.artifact_id)) if e.artifact_id in artifacts)
    params, metrics, environment = split_properties(
        execution, [(role, a) for k, role, a in events if k == "OUTPUT" and isinstance(a, ArtifactRecord)])
    return NodePage(kind, execution, events, tuple(contexts_of_node(store, kind, node_id)), (),
                    params, metrics, environment, curves=run_curves(store, node_id),
                    reused=reused_outputs(store, execution, edges))


def run_curves(store: Store, execution_id: int) -> Dict[str, Tuple[Point, ...]]:
    """Each metric a run logged more than once: its history, downsampled for a page (the
    history is read here only, never for a list)."""
    from mlmd_exercise.read.history import curve, metric_keys
    from mlmd_exercise.web.curves import POINTS

    found: Dict[str, Tuple[Point, ...]] = {}
    for key in metric_keys(store, execution_id):
        try:
            points = curve(store, execution_id, key, POINTS)
        except NotFoundError:  # a metric_names entry with no value: nothing to draw
            continue
        if len(points) > 1:
            found[key] = tuple(points)
    return found


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
    """Two nodes and what differs between them: rows of (section, what, value in a, in b)."""

    kind: str
    a: Node
    b: Node
    rows: Tuple[Tuple[str, str, str, str], ...]
    verdict: str  # "no differences: ...", "same inputs and params, different outputs: ..."
    runs: Tuple[Optional[int], Optional[int]] = (None, None)  # for models: the runs that made them
    # For runs: each metric either logged more than once -> (a's curve, b's curve), downsampled.
    curves: Mapping[str, Tuple[Tuple[Point, ...], Tuple[Point, ...]]] = field(default_factory=dict)

    @property
    def differences(self) -> int:
        return len(self.rows)


def compare(store: Store, kind: str, a_id: int, b_id: int) -> Comparison:
    """What differs between two runs, or two models and everything upstream of them, as
    `mlmd-exercise diff` says it (see `diff.py`).

    Raises:
        NotFoundError: either node is missing.
    """
    from mlmd_exercise.read.diff import diff_artifacts, diff_runs

    kind = parse_kind(kind)
    d = (diff_runs if kind == "execution" else diff_artifacts)(store, a_id, b_id)
    curves = {}
    if kind == "execution":
        a, b = run_curves(store, a_id), run_curves(store, b_id)
        curves = {key: (a.get(key, ()), b.get(key, ())) for key in sorted(set(a) | set(b))}
    return comparison(d, curves)


def comparison(d: "Diff", curves: Optional[Mapping[str, Tuple[Tuple[Point, ...], Tuple[Point, ...]]]] = None
               ) -> Comparison:
    """A diff as the compare page shows it (a notebook shows a `Diff` so too)."""
    verdict = text.diff_verdict(d) or [f"{len(text.diff_rows(d))} differences"]
    return Comparison(d.kind, d.a, d.b, tuple(text.diff_rows(d)), verdict[0], d.runs, dict(curves or {}))


# -- States -----------------------------------------------------------------------------------


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
    from mlmd_exercise.read.counts import count_apart

    contexts = tuple(sorted((c.id, c.type, c.name)
                            for c in store.backend.contexts(Query(limit=500, not_type_id=history_type(store)))))
    if context_id is None:
        return StatesPage(None, count_apart(store), contexts)
    found = store.backend.contexts(Query(ids=[context_id]))
    if not found:
        raise NotFoundError(f"no context with id {context_id} in {store}")
    c = found[0]
    if c.type == schema.EXPERIMENT.name:
        counts = count_apart(store, c.name)
    else:
        counts = {s.value: n for s, n in store.backend.count_by_state(context_id).items()}
    return StatesPage((c.id, c.type, c.name), counts, contexts)
