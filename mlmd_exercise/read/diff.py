"""What differs between two runs, or between two artifacts and everything upstream of them.

Each side is walked upstream (`lineage.walk`) and its nodes are named by their
path from the start, so that the two sides line up: the inputs of the compared
run by their role ("examples", "model"), the inputs of the run that made
"model" as "model/examples", and so on all the way back. A run upstream is
named by the path of the artifact it made ("model"); the compared runs
themselves by "" (for two artifacts: the runs that made them).

    d = diff_runs(store, 1, 3)
    d.params      # (Change(step="", key="C", a=1.0, b=0.5),)
    d.nondeterministic  # same inputs and params, yet different outputs
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Set, Tuple, Union

from mlmd_exercise import environment as env
from mlmd_exercise.read.compare import RunSummary, artifact_metrics, summarize_runs
from mlmd_exercise.content import FINGERPRINT
from mlmd_exercise.read.lineage import get_artifact, get_execution, walk
from mlmd_exercise.records import ArtifactRecord, ExecutionRecord, LineageGraph, PropertyValue
from mlmd_exercise.store import Store

__all__ = ["Change", "ArtifactChange", "Diff", "diff_runs", "diff_artifacts", "same_content"]

# Per process, not per environment: they differ between any two runs.
_IGNORED = frozenset({env.PID, env.PID_START, env.INPUTS})  # inputs are compared as inputs


@dataclass(frozen=True)
class Change:
    """One value that differs: `a` on the first side, `b` on the second (None: absent)."""

    step: str  # "" for the compared runs, else the path of the artifact its run made
    # (a run upstream is compared where both sides have one at that path)
    key: str
    a: Optional[PropertyValue]
    b: Optional[PropertyValue]


@dataclass(frozen=True)
class ArtifactChange:
    """An artifact at the same path on both sides that differs in content or URI,
    or that only one side has (None on the other)."""

    path: str  # "examples", "model/examples"; for outputs, the role
    a: Optional[ArtifactRecord]
    b: Optional[ArtifactRecord]

    @property
    def same_content(self) -> bool:
        return self.a is not None and self.b is not None and hold_same_bytes(self.a, self.b)


@dataclass(frozen=True)
class Diff:
    """Two runs (or two artifacts) compared: only what differs is listed."""

    kind: str  # "execution" or "artifact"
    a: Union[ExecutionRecord, ArtifactRecord]  # the node on each side, both of `kind`
    b: Union[ExecutionRecord, ArtifactRecord]
    runs: Tuple[Optional[int], Optional[int]]  # the compared runs' ids; for artifacts, their makers
    params: Tuple[Change, ...]
    metrics: Tuple[Change, ...]
    code: Tuple[Change, ...]  # env.git_commit, env.git_dirty, env.command
    environment: Tuple[Change, ...]  # the rest of `environment`'s keys, but pid and pid_start
    packages: Tuple[Change, ...]  # from env.packages, by distribution name
    inputs: Tuple[ArtifactChange, ...]  # all the way back
    inputs_compared: int  # paths on either side
    outputs: Tuple[ArtifactChange, ...]  # by role; for artifacts, the two artifacts
    outputs_compared: int

    @property
    def same_inputs(self) -> bool:
        """Every input, all the way back, has the same content on both sides (URIs aside)."""
        return all(change.same_content for change in self.inputs)

    @property
    def same_params(self) -> bool:
        return not self.params

    @property
    def same_outputs(self) -> bool:
        """Same output content and the same metrics."""
        return not self.metrics and all(change.same_content for change in self.outputs)

    @property
    def nondeterministic(self) -> bool:
        """Same inputs and params, yet the outputs differ."""
        return self.same_inputs and self.same_params and not self.same_outputs

    @property
    def same(self) -> bool:
        return not any((self.params, self.metrics, self.code, self.environment, self.packages,
                        self.inputs, self.outputs))

    def _repr_html_(self) -> str:  # Jupyter's display hook (notebook.py draws it)
        from mlmd_exercise import notebook

        return notebook.html(self)


def hold_same_bytes(a: ArtifactRecord, b: ArtifactRecord) -> bool:
    """One artifact, or the same fingerprint; without fingerprints, one URI and version."""
    if a.id == b.id:
        return True
    fa, fb = a.properties.get(FINGERPRINT), b.properties.get(FINGERPRINT)
    if fa or fb:
        return fa == fb
    return a.uri == b.uri and a.version == b.version


@dataclass(frozen=True)
class _Side:
    """One side walked upstream: artifacts and runs by their path."""

    artifacts: Dict[str, ArtifactRecord]
    runs: Dict[str, RunSummary]


def _path(parent: str, role: str) -> str:
    return f"{parent}/{role}" if parent else role


def _side(store: Store, graph: LineageGraph, start_run: Optional[int]) -> _Side:
    inputs_of: Dict[int, List[Tuple[str, int]]] = {}
    makers: Dict[int, List[int]] = {}
    for edge in graph.edges:
        if edge.kind == "INPUT":
            inputs_of.setdefault(edge.execution_id, []).append((edge.role, edge.artifact_id))
        else:
            makers.setdefault(edge.artifact_id, []).append(edge.execution_id)
    summaries = {s.execution.id: s for s in summarize_runs(
        store, [graph.executions[i] for i in sorted(graph.executions)])}
    artifacts: Dict[str, ArtifactRecord] = {}
    runs: Dict[str, RunSummary] = {}
    if start_run is None or start_run not in summaries:
        return _Side(artifacts, runs)
    runs[""] = summaries[start_run]
    expanded: Set[int] = set()
    queue = deque([("", start_run)])
    while queue:  # breadth first, roles in order: both sides name alike nodes alike
        step, run = queue.popleft()
        for role, artifact_id in sorted(inputs_of.get(run, [])):
            if artifact_id not in graph.artifacts:
                continue
            path, n = _path(step, role or "input"), 2
            while path in artifacts:  # two inputs in one role
                path, n = f"{_path(step, role or 'input')}[{n}]", n + 1
            artifacts[path] = graph.artifacts[artifact_id]
            maker = min(makers.get(artifact_id, []), default=None)  # one, in a sound store
            if maker is not None and artifact_id not in expanded and maker in summaries:
                expanded.add(artifact_id)
                runs[path] = summaries[maker]
                queue.append((path, maker))
    return _Side(artifacts, runs)


def _changes(step: str, a: Mapping[str, PropertyValue], b: Mapping[str, PropertyValue]
             ) -> List[Change]:
    return [Change(step, key, a.get(key), b.get(key))
            for key in sorted(set(a) | set(b)) if a.get(key) != b.get(key)]


def _split_environment(values: Mapping[str, PropertyValue]):
    code = {k: v for k, v in values.items() if k in env.CODE_KEYS}
    packages = env.parse_packages(values.get(env.PACKAGES))
    rest = {k: v for k, v in values.items()
            if k not in env.CODE_KEYS and k not in _IGNORED and k != env.PACKAGES}
    return code, rest, packages


def _artifact_changes(a: Mapping[str, ArtifactRecord], b: Mapping[str, ArtifactRecord]
                      ) -> List[ArtifactChange]:
    changes = []
    for path in sorted(set(a) | set(b), key=lambda p: (p.count("/"), p)):
        x, y = a.get(path), b.get(path)
        if x is None or y is None or not hold_same_bytes(x, y) or x.uri != y.uri:
            changes.append(ArtifactChange(path, x, y))
    return changes


def _compare(kind: str, a: Union[ExecutionRecord, ArtifactRecord], b: Union[ExecutionRecord, ArtifactRecord],
             side_a: _Side, side_b: _Side,
             outputs_a: Mapping[str, ArtifactRecord], outputs_b: Mapping[str, ArtifactRecord],
             metrics: Tuple[Mapping[str, PropertyValue], Mapping[str, PropertyValue]]) -> Diff:
    sections: Dict[str, List[Change]] = {k: [] for k in ("params", "metrics", "code", "env", "pkg")}
    # Runs upstream on one side only show as inputs that differ: their values are not listed.
    steps = sorted(set(side_a.runs) & set(side_b.runs), key=lambda p: (p.count("/"), p))
    for step in steps:
        ra, rb = side_a.runs[step], side_b.runs[step]
        sections["params"] += _changes(step, ra.params, rb.params)
        if step:  # the compared runs' metrics come with their outputs
            sections["metrics"] += _changes(step, ra.metrics, rb.metrics)
        code_a, env_a, pkg_a = _split_environment(ra.environment)
        code_b, env_b, pkg_b = _split_environment(rb.environment)
        sections["code"] += _changes(step, code_a, code_b)
        sections["env"] += _changes(step, env_a, env_b)
        sections["pkg"] += _changes(step, pkg_a, pkg_b)
    sections["metrics"] = _changes("", *metrics) + sections["metrics"]
    ids = (side_a.runs[""].execution.id if "" in side_a.runs else None,
           side_b.runs[""].execution.id if "" in side_b.runs else None)
    return Diff(
        kind=kind, a=a, b=b, runs=ids,
        params=tuple(sections["params"]), metrics=tuple(sections["metrics"]),
        code=tuple(sections["code"]), environment=tuple(sections["env"]),
        packages=tuple(sections["pkg"]),
        inputs=tuple(_artifact_changes(side_a.artifacts, side_b.artifacts)),
        inputs_compared=len(set(side_a.artifacts) | set(side_b.artifacts)),
        outputs=tuple(_artifact_changes(outputs_a, outputs_b)),
        outputs_compared=len(set(outputs_a) | set(outputs_b)),
    )


def _outputs(summary: Optional[RunSummary]) -> Dict[str, ArtifactRecord]:
    found: Dict[str, ArtifactRecord] = {}
    for role, artifact in summary.outputs if summary else ():
        path, n = role or "output", 2
        while path in found:
            path, n = f"{role or 'output'}[{n}]", n + 1
        found[path] = artifact
    return found


def diff_runs(store: Store, a: int, b: int) -> Diff:
    """What differs between executions `a` and `b`: their params, metrics (their own and
    their outputs'), outputs by role, the inputs all the way back (content and URI), the
    params of the runs upstream, and the code and environment of each run.

    Raises:
        NotFoundError: either id is not an execution in the store.
    """
    records = [get_execution(store, i) for i in (a, b)]
    sides = [_side(store, walk(store, execution_id=i, direction="upstream"), i) for i in (a, b)]
    summaries = [side.runs[""] for side in sides]
    return _compare("execution", records[0], records[1], sides[0], sides[1],
                    _outputs(summaries[0]), _outputs(summaries[1]),
                    (summaries[0].metrics, summaries[1].metrics))


def _maker(graph: LineageGraph, artifact_id: int) -> Optional[int]:
    made_by = [e.execution_id for e in graph.edges if e.kind == "OUTPUT" and e.artifact_id == artifact_id]
    return min(made_by, default=None)


def diff_artifacts(store: Store, a: int, b: int) -> Diff:
    """What differs between artifacts `a` and `b` (two models, say) and everything upstream:
    their content, URI and metrics, the runs that made them (params, code, environment)
    and those runs' inputs all the way back.

    Raises:
        NotFoundError: either id is not an artifact in the store.
    """
    records = [get_artifact(store, i) for i in (a, b)]
    graphs = [walk(store, artifact_id=i, direction="upstream") for i in (a, b)]
    sides = [_side(store, g, _maker(g, i)) for g, i in zip(graphs, (a, b))]
    metrics = []
    for record, side in zip(records, sides):
        # The artifact's own metrics; its run's for those it does not carry.
        run = side.runs.get("")
        metrics.append({**(run.metrics if run else {}), **artifact_metrics(record)})
    return _compare("artifact", records[0], records[1], sides[0], sides[1],
                    {"": records[0]}, {"": records[1]}, (metrics[0], metrics[1]))

