"""A run's metrics as they are logged: each value checked at the call and written at once,
with its step and time, into the run's metric history (history.py), and the run's summary
value (the last one) onto its execution, so that a run killed with SIGKILL keeps every value
logged before.

`flush_every` > 1 keeps that many points in memory and writes them in one transaction (a
training loop that logs every step pays one write per `flush_every` steps): a kill then loses
at most the last `flush_every - 1` points logged; the run's end writes the rest.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from mlmd_exercise import history, schema, values
from mlmd_exercise.errors import MlmdExerciseError
from mlmd_exercise.history import METRIC_HISTORY, Point
from mlmd_exercise.records import METRIC_NAMES, Kind, PropertyValue
from mlmd_exercise.store import Store
from mlmd_exercise.store.backend import ContextWrite, ExecutionWrite

__all__ = ["MetricLog", "check_flush_every", "chunk_contexts", "record_history", "record_histories"]


def check_flush_every(flush_every: object) -> None:
    """Raises MlmdExerciseError unless `flush_every` is a whole number of points, 1 or more."""
    if not isinstance(flush_every, int) or isinstance(flush_every, bool) or flush_every < 1:
        raise MlmdExerciseError(f"flush_every must be a whole number of points, 1 or more, not "
                                f"{values.shown(flush_every)}")


def chunk_contexts(spec: schema.TypeSpec, type_id: int, execution_id: int, key: str,
                   points: Sequence[Tuple[int, Point]]) -> List[ContextWrite]:
    """The history contexts that hold these points ((n, point): the key's n-th point), one per
    chunk, each with its points (history.py's layout)."""
    chunks: Dict[int, ContextWrite] = {}
    for n, point in points:
        chunk = n // history.CHUNK
        context = chunks.get(chunk)
        if context is None:
            declared, extra = schema.split_values(spec, {"execution_id": execution_id, "key": key, "chunk": chunk})
            context = chunks[chunk] = ContextWrite(type_id, spec.name, history.chunk_name(execution_id, chunk, key),
                                                   properties=declared, custom=extra)
        context.custom[history.point_key(n)] = history.point_text(point)
    return [chunks[c] for c in sorted(chunks)]


def record_history(store: Store, execution_id: int, key: str, points: Sequence[Point]) -> int:
    """Writes a whole history of one key for a stored run (an import), a chunk per call;
    call it under the store's lock. How many contexts it wrote."""
    spec, type_id = store.catalog.writable_type(Kind.CONTEXT, METRIC_HISTORY.name)
    contexts = chunk_contexts(spec, type_id, execution_id, key, list(enumerate(points)))
    for context in contexts:
        store.backend.put_context(context)
    return len(contexts)


def record_histories(store: Store, histories: Sequence[Tuple[int, str, Sequence[Point]]],
                     change: ExecutionWrite) -> int:
    """Writes whole histories ((execution id, key, points)) of stored runs, an import's batch of
    them at once: one transaction on the native backend (`append_properties`, which takes new
    contexts with an execution's change: `change`, an empty one to the batch's first run, say);
    call it under the store's lock. How many points it wrote."""
    spec, type_id = store.catalog.writable_type(Kind.CONTEXT, METRIC_HISTORY.name)
    contexts = [c for execution_id, key, points in histories
                for c in chunk_contexts(spec, type_id, execution_id, key, list(enumerate(points)))]
    if contexts:
        store.backend.append_properties(change, contexts)
    return sum(len(points) for _, _, points in histories)


@dataclass
class _Series:
    """What the run knows of one key's history: its points so far, the last step, the chunk
    being filled (its context id once stored)."""

    count: int = 0
    last_step: int = -1
    chunk: int = -1  # the stored chunk being filled
    chunk_id: int = 0


class MetricLog:
    """The metrics of one RUNNING execution (see the module's docstring).

    Args:
        tracker: the run's Tracker (its store, catalog and types).
        execution_id, type_name: the run's execution.
        taken: names the run holds already (its params): a metric may not reuse one.
        flush_every: points kept in memory before they are written (1: each at once).
    """

    def __init__(self, tracker: Any, execution_id: int, type_name: str, taken: Mapping[str, Any],
                 flush_every: int = 1) -> None:
        check_flush_every(flush_every)
        self.tracker = tracker
        self.execution_id = execution_id
        self.type_name = type_name
        self.taken = frozenset(taken)
        self.flush_every = flush_every
        self.last: Dict[str, PropertyValue] = {}  # key -> its last value: the run's summary
        self._series: Dict[str, _Series] = {}
        self._pending: List[Tuple[str, Point]] = []
        self._written_names = ""  # METRIC_NAMES as last written

    def check(self, key: Any, value: Any, step: Any) -> Tuple[str, PropertyValue, Optional[int]]:
        """A metric checked: its name, its value as stored, its step.

        Raises:
            MlmdExerciseError: one line naming the bad name, value or step.
        """
        key = values.check_name(key, values.Role.METRIC)
        if key in self.taken:
            raise MlmdExerciseError(f"run {self.execution_id} has a param '{key}' already: "
                                    "give the metric another name")
        value = values.normalize(key, value, values.Role.METRIC)
        if step is not None:
            plain = values.normalize(f"{key}'s step", step, values.Role.PARAM)
            if not isinstance(plain, int) or isinstance(plain, bool):
                raise MlmdExerciseError(f"metric '{key}': its step must be a whole number (32 bits), "
                                        f"not {values.shown(step)}")
            step = plain
        return key, value, step

    def log(self, metrics: Mapping[str, Any], step: Any = None) -> None:
        """Checks every value, then records them (written now, or at the next flush)."""
        if not isinstance(metrics, Mapping):
            raise MlmdExerciseError(f"metrics must be a dict of name -> number, not {values.shown(metrics)}")
        checked = [self.check(k, v, step) for k, v in metrics.items()]
        # A name the backend cannot be given (ml-metadata: store/mlmd/guard.py) is refused here too.
        self.tracker.store.backend.check_texts("metric", {k: v for k, v, _ in checked})
        ms = int(time.time() * 1000)
        for key, value, given in checked:
            series = self._series.setdefault(key, _Series())
            at = series.last_step + 1 if given is None else given
            series.last_step = at
            self._pending.append((key, Point(at, ms, value)))  # type: ignore[arg-type]
            self.last[key] = value
        if len(self._pending) >= self.flush_every:
            self.flush()

    def flush(self) -> None:
        """Writes the points kept in memory, and the summaries, in one transaction."""
        if not self._pending:
            return
        tracker = self.tracker
        catalog = tracker.store.catalog
        spec, type_id = catalog.writable_type(Kind.CONTEXT, METRIC_HISTORY.name)
        new: List[ContextWrite] = []
        new_keys: List[Tuple[str, int]] = []  # (key, chunk number) of each new chunk
        added: Dict[int, Dict[str, PropertyValue]] = {}
        counts = {k: s.count for k, s in self._series.items()}
        fresh: Dict[str, List[Tuple[int, Point]]] = {}  # points that begin new chunks, by key
        for key, point in self._pending:
            n = counts[key]
            counts[key] = n + 1
            series = self._series[key]
            if n // history.CHUNK == series.chunk:  # one row added to the stored chunk
                added.setdefault(series.chunk_id, {})[history.point_key(n)] = history.point_text(point)
            else:
                fresh.setdefault(key, []).append((n, point))
        for key, points in fresh.items():
            new += chunk_contexts(spec, type_id, self.execution_id, key, points)
            new_keys += [(key, chunk) for chunk in sorted({n // history.CHUNK for n, _ in points})]
        names = ",".join(sorted(self.last))
        custom: Dict[str, PropertyValue] = {k: self.last[k] for k in dict.fromkeys(k for k, _ in self._pending)}
        if names != self._written_names:
            custom[METRIC_NAMES] = names
        change = ExecutionWrite(catalog.writable_type(Kind.EXECUTION, self.type_name)[1], self.type_name,
                                id=self.execution_id, custom=custom)
        with tracker.store.writing():
            ids = tracker.store.backend.append_properties(change, new, [(i, type_id, v) for i, v in added.items()])
        for (key, chunk), context_id in zip(new_keys, ids):
            series = self._series[key]
            if chunk > series.chunk:  # the newest chunk of that key
                series.chunk, series.chunk_id = chunk, context_id
        for key, n in counts.items():
            self._series[key].count = n
        self._written_names = names
        self._pending = []
