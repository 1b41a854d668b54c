"""Runs side by side: each execution's params, metrics and environment, as columns.

An execution's custom properties hold its params, the environment it ran in
(see `environment`), how it ended (`error_type`, `error_message`, `abandoned`)
and, for a run without a model, its metrics. Metrics are read from the run's
own properties and from its SavedModel and Metrics outputs: a key that one of
those outputs carries is a metric, and every other property of the run that is
neither environment nor how it ended is a param.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Set, Tuple, TypeVar


from mlmd_exercise import environment
from mlmd_exercise import schema
from mlmd_exercise.content import FINGERPRINT
from mlmd_exercise.errors import MlmdExerciseError
from mlmd_exercise.records import (CREATED_MS, IMPORTED_PREFIXES, METRIC_NAMES, ORIGIN, STATUS_KEYS, TAG_PREFIX,
                                   ArtifactRecord, ExecutionRecord, PropertyValue)
from mlmd_exercise.store import Store
from mlmd_exercise.store.backend import Query

__all__ = [
    "METRIC_TYPES", "RunSummary", "artifact_metrics", "summarize_run", "summarize_runs",
    "columns", "choose_columns", "sort_runs", "sort_by_value", "RunKeys", "BUILTIN_SORTS",
]

T = TypeVar("T")
# Output types whose properties are the run's metrics (beside their bookkeeping).
METRIC_TYPES = (schema.SAVED_MODEL.name, schema.METRICS.name)
# Properties of an artifact that describe the file, not how good it is.
_ARTIFACT_KEYS = frozenset({"version", FINGERPRINT, "name", CREATED_MS, ORIGIN})
BUILTIN_SORTS = ("id", "created")
_OUTPUT_KINDS = ("OUTPUT", "DECLARED_OUTPUT", "INTERNAL_OUTPUT")


@dataclass(frozen=True)
class RunSummary:
    """One execution with its properties sorted out."""

    execution: ExecutionRecord
    params: Mapping[str, PropertyValue] = field(default_factory=dict)
    metrics: Mapping[str, PropertyValue] = field(default_factory=dict)
    environment: Mapping[str, PropertyValue] = field(default_factory=dict)
    status: Mapping[str, PropertyValue] = field(default_factory=dict)
    outputs: Tuple[Tuple[str, ArtifactRecord], ...] = ()  # (role, artifact), by artifact id

    def value(self, key: str) -> Optional[PropertyValue]:
        """A param, metric or environment value by its key; None where the run has none."""
        for values in (self.metrics, self.params, self.environment):
            if key in values:
                return values[key]
        return None


def artifact_metrics(artifact: ArtifactRecord) -> Dict[str, PropertyValue]:
    """The metrics an artifact carries: none unless it is a SavedModel or Metrics."""
    if artifact.type not in METRIC_TYPES:
        return {}
    return {k: v for k, v in artifact.properties.items()
            if k not in _ARTIFACT_KEYS and not k.startswith(IMPORTED_PREFIXES)}


def summarize_run(execution: ExecutionRecord, outputs: Sequence[Tuple[str, ArtifactRecord]]
                  ) -> RunSummary:
    """One execution's properties sorted into params, metrics (its own, and those on its
    SavedModel and Metrics outputs), environment and status."""
    metrics: Dict[str, PropertyValue] = {}
    for _, artifact in sorted(outputs, key=lambda pair: pair[1].id):
        for key, value in artifact_metrics(artifact).items():
            metrics.setdefault(key, value)
    named = execution.properties.get(METRIC_NAMES)  # what the run logged as metrics, if it says
    logged = set(named.split(",")) if isinstance(named, str) else set()
    params: Dict[str, PropertyValue] = {}
    env: Dict[str, PropertyValue] = {}
    status: Dict[str, PropertyValue] = {}
    for key, value in sorted(execution.properties.items()):
        if key.startswith(TAG_PREFIX):
            continue  # the run's tags (ExecutionRecord.tags): neither params nor metrics
        if environment.is_environment_key(key):
            env[key] = value
        elif key in STATUS_KEYS or key.startswith(IMPORTED_PREFIXES):
            status[key] = value
        elif key in metrics or key in logged:
            metrics[key] = value  # the run's own value (its outputs hold a copy)
        else:
            params[key] = value
    return RunSummary(execution, params, dict(sorted(metrics.items())), env, status, tuple(outputs))


def summarize_runs(store: Store, executions: Iterable[ExecutionRecord]) -> List[RunSummary]:
    """Each execution with its params, metrics, environment and outputs, in the order given.

    Two reads whatever the number of executions: their events, then their outputs.
    """
    executions = list(executions)
    ids = [e.id for e in executions]
    if not ids:
        return []
    made: Dict[int, List[Tuple[str, int]]] = {}
    for event in store.backend.events_by_executions(ids):
        if event.type in _OUTPUT_KINDS:
            made.setdefault(event.execution_id, []).append((event.role, event.artifact_id))
    wanted = sorted({a for pairs in made.values() for _, a in pairs})
    artifacts = {a.id: a for a in store.backend.artifacts(Query(ids=wanted))} if wanted else {}
    return [
        summarize_run(e, sorted(((role, artifacts[a]) for role, a in made.get(e.id, []) if a in artifacts),
                           key=lambda pair: pair[1].id))
        for e in executions
    ]


class RunKeys:
    """The params, metrics and environment keys of runs, gathered a run (or a page of runs) at
    a time: what the columns of a listing are chosen from, where the runs are not all held."""

    def __init__(self, runs: Iterable[RunSummary] = ()) -> None:
        self.params: Set[str] = set()
        self.metrics: Set[str] = set()
        self.environment: Set[str] = set()
        self.runs = 0
        for run in runs:
            self.add(run)

    def add(self, run: RunSummary) -> None:
        self.params.update(run.params)
        self.metrics.update(run.metrics)
        self.environment.update(run.environment)
        self.runs += 1

    def known(self) -> List[str]:
        return sorted(self.params | self.metrics | self.environment)

    def columns(self, first: Optional[str] = None) -> List[str]:
        """The metrics, then the params, each sorted by name; `first` (the key the runs are
        sorted by) leads where the runs hold it."""
        every = sorted(self.metrics - self.params) + sorted(self.params)
        if first is not None and first in self.known():
            every = [first] + [k for k in every if k != first]
        return every

    def choose(self, wanted: Sequence[str]) -> List[str]:
        """The columns a user named, checked against what the runs hold.

        Params, metrics and environment keys (`env.git_commit`, `host`) may be named.

        Raises:
            MlmdExerciseError: a name that none of the runs has (when there are runs).
        """
        known = set(self.known())
        for name in wanted:
            if self.runs and name not in known:
                raise MlmdExerciseError(f"no param or metric '{name}' in the listed executions"
                                        f" (they have: {', '.join(self.columns()) or 'none'})")
        return list(dict.fromkeys(wanted))

    def check_sort(self, key: str) -> None:
        """Raises MlmdExerciseError where `key` (a param or metric, "-" first for descending)
        is none the runs hold (when there are runs)."""
        name = key[1:] if key.startswith("-") else key
        if self.runs and name not in BUILTIN_SORTS and name not in self.known():
            raise MlmdExerciseError(
                f"cannot sort by '{name}': no execution listed has it; sort by id, created "
                f"or one of: {', '.join(self.columns()) or 'none'}")


def columns(runs: Sequence[RunSummary], first: Optional[str] = None) -> List[str]:
    """The metrics, then the params, present in any of these runs, each sorted by name; `first`
    (the key the runs are sorted by) leads where the runs hold it."""
    return RunKeys(runs).columns(first)


def choose_columns(runs: Sequence[RunSummary], wanted: Sequence[str]) -> List[str]:
    """The columns a user named, checked against what these runs hold (see RunKeys.choose)."""
    return RunKeys(runs).choose(wanted)


def _order(value: Optional[PropertyValue]) -> Tuple[int, float, str]:
    """Numbers (bools as 0 and 1) before text."""
    if isinstance(value, (int, float)):
        return (0, float(value), "")
    return (1, 0.0, str(value))


def _no_order(value: Optional[PropertyValue]) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def sort_runs(runs: Sequence[RunSummary], key: str) -> List[RunSummary]:
    """Runs sorted by `id`, `created` or a param or metric; "-name" for descending.

    Runs without the value come last either way, and so do those whose value is NaN (which no
    number is above or below); ties keep the newest first.

    Raises:
        MlmdExerciseError: the key is none of those (when there are runs).
    """
    descending = key.startswith("-")
    name = key[1:] if descending else key
    if name in BUILTIN_SORTS:
        attribute = "id" if name == "id" else "when_ms"
        return sorted(runs, key=lambda r: (getattr(r.execution, attribute), r.execution.id),
                      reverse=descending)
    RunKeys(runs).check_sort(key)
    return sort_by_value(runs, [r.value(name) for r in runs], descending)


def sort_by_value(items: Sequence[T], values: Sequence[Optional[PropertyValue]], descending: bool) -> List[T]:
    """`items` in the order of their `values` (numbers before text; those without a value, or
    NaN, last either way); ties keep the order given."""
    have = [(v, x) for v, x in zip(values, items) if not _no_order(v)]
    have.sort(key=lambda pair: _order(pair[0]), reverse=descending)
    return [x for _, x in have] + [x for v, x in zip(values, items) if _no_order(v)]
