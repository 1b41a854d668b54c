"""A run's metric history: every value logged for a key, with its step and time (history.py
says how it is stored). Only these functions read it: lineage walks, `ls` and `show` never do.
"""

from __future__ import annotations

import math
from typing import Dict, List, Optional, Sequence

from mlmd_exercise import history
from mlmd_exercise.errors import NotFoundError
from mlmd_exercise.history import Point
from mlmd_exercise.read.lineage import get_execution
from mlmd_exercise.records import METRIC_NAMES, ContextRecord, Kind
from mlmd_exercise.schema import METRIC_HISTORY
from mlmd_exercise.store import Store
from mlmd_exercise.store.backend import Query

__all__ = ["Point", "metric_history", "metric_keys", "history_chunks", "history_type", "downsample"]

_BATCH = 64  # chunk names asked for at once


def history_type(store: Store) -> Optional[int]:
    """The id of the store's MetricHistory context type, if it has one: what lists of
    contexts leave out (`Query(not_type_id=...)`), so that they never read a history."""
    found = store.catalog.types(Kind.CONTEXT).get(METRIC_HISTORY.name)
    return found.id if found is not None else None


def metric_keys(store: Store, execution_id: int) -> List[str]:
    """The names of the metrics a run logged, sorted.

    Raises:
        NotFoundError: no execution has this id.
    """
    names = get_execution(store, execution_id).properties.get(METRIC_NAMES)
    return sorted(k for k in names.split(",") if k) if isinstance(names, str) else []


def history_chunks(store: Store, execution_id: int, key: str) -> List[ContextRecord]:
    """The contexts that hold a run's history of one key, in chunk order."""
    type_id = store.catalog.type_id(Kind.CONTEXT, METRIC_HISTORY.name)
    if type_id is None:
        return []
    found: List[ContextRecord] = []
    first = 0
    while True:
        names = [history.chunk_name(execution_id, n, key) for n in range(first, first + _BATCH)]
        batch = {c.name: c for c in store.backend.contexts(Query(type_id=type_id, names=names))}
        found += [batch[n] for n in names if n in batch]
        if len(batch) < len(names):
            return found
        first += _BATCH


def metric_history(store: Store, execution_id: int, key: str) -> List[Point]:
    """Every value a run logged for `key`, in the order logged: `Point(step, ms, value)`.

    A run recorded before metrics had a history (or imported without one) has none: its
    one value, the run's summary, is returned as a point of step 0 at the run's time.

    Raises:
        NotFoundError: no execution has this id, or it logged no metric `key`.
    """
    execution = get_execution(store, execution_id)
    points = history.series(a.custom for a in history_chunks(store, execution_id, key))
    if points:
        return points
    value = execution.properties.get(key)
    if key in metric_keys(store, execution_id) and isinstance(value, (int, float)) \
            and not isinstance(value, bool):
        return [Point(0, execution.when_ms, value)]
    raise NotFoundError(f"execution {execution_id} logged no metric '{key}'"
                        + (f" (its metrics: {', '.join(metric_keys(store, execution_id))})"
                           if metric_keys(store, execution_id) else ""))


def downsample(points: Sequence[Point], size: int) -> List[Point]:
    """At most about `size` points that draw the same curve: the first and last, and in each
    of `size // 2` buckets its lowest and highest value (NaN and the infinities kept, where
    they are, since a curve that diverged must show it)."""
    if len(points) <= size:
        return list(points)
    buckets = max(1, size // 2)
    width = len(points) / buckets
    kept: Dict[int, Point] = {0: points[0], len(points) - 1: points[-1]}
    for b in range(buckets):
        lo, hi = int(b * width), min(len(points), int((b + 1) * width))
        chunk = range(lo, hi)
        if not chunk:
            continue
        odd = [i for i in chunk if not math.isfinite(points[i].value)]
        finite = [i for i in chunk if math.isfinite(points[i].value)]
        for i in odd[:2]:
            kept[i] = points[i]
        if finite:
            for i in (min(finite, key=lambda i: points[i].value), max(finite, key=lambda i: points[i].value)):
                kept[i] = points[i]
    return [kept[i] for i in sorted(kept)]

