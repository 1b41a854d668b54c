"""A run's metric history: every value logged for a key, with its step and time (history.py
says how it is stored). Only these functions read it: lineage walks, `ls` and `show` never do.
"""

from __future__ import annotations

import math
from typing import List, Optional, Sequence

from mlmd_exercise import history
from mlmd_exercise.errors import NotFoundError
from mlmd_exercise.history import MetricHistory, Point
from mlmd_exercise.read.lineage import get_execution
from mlmd_exercise.records import METRIC_NAMES, ContextRecord, Kind
from mlmd_exercise.schema import METRIC_HISTORY
from mlmd_exercise.store import Store
from mlmd_exercise.store.backend import Query

__all__ = ["Point", "MetricHistory", "metric_history", "metric_keys", "history_chunks", "history_type", "curve", "downsample"]

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


def metric_history(store: Store, execution_id: int, key: str) -> MetricHistory:
    """Every value a run logged for `key`, in the order logged: `Point(step, ms, value)`.

    A run recorded before metrics had a history (or imported without one) has none: its
    one value, the run's summary, is returned as a point of step 0 at the run's time.

    Raises:
        NotFoundError: no execution has this id, or it logged no metric `key`.
    """
    execution = get_execution(store, execution_id)
    points = history.series(a.custom for a in history_chunks(store, execution_id, key))
    if points:
        return MetricHistory(points, execution_id=execution_id, key=key)
    value = execution.properties.get(key)
    if key in metric_keys(store, execution_id) and isinstance(value, (int, float)) \
            and not isinstance(value, bool):
        return MetricHistory([Point(0, execution.when_ms, value)], execution_id=execution_id, key=key)
    raise NotFoundError(f"execution {execution_id} logged no metric '{key}'"
                        + (f" (its metrics: {', '.join(metric_keys(store, execution_id))})"
                           if metric_keys(store, execution_id) else ""))


def curve(store: Store, execution_id: int, key: str, size: int) -> List[Point]:
    """A run's history of `key` downsampled to about `size` points (see `downsample`), for a
    page: the 100,000 points' text is read as numbers by numpy, and only the points kept
    become Points.

    Raises:
        NotFoundError: as `metric_history`.
    """
    import numpy as np

    texts = [text for chunk in history_chunks(store, execution_id, key) for _, text in history.chunk_texts(chunk.custom)]
    if len(texts) <= size:
        return metric_history(store, execution_id, key)
    try:
        values = np.array(" ".join(texts).split(" "), dtype=np.float64).reshape(-1, 3)[:, 2]
    except ValueError:  # a point that is not one: metric_history names it
        return downsample(metric_history(store, execution_id, key), size)
    return [history.parse_point(texts[i]) for i in _kept(values.tolist(), size)]


def _kept(values: List[float], size: int) -> List[int]:
    """The indexes `downsample` keeps of a series of these values."""
    buckets = max(1, size // 2)
    width = len(values) / buckets
    kept = {0, len(values) - 1}
    for b in range(buckets):
        lo, hi = int(b * width), min(len(values), int((b + 1) * width))
        if lo >= hi:
            continue
        bucket = values[lo:hi]
        if all(map(math.isfinite, bucket)):
            kept.add(lo + bucket.index(min(bucket)))
            kept.add(lo + bucket.index(max(bucket)))
            continue
        odd = [lo + i for i, v in enumerate(bucket) if not math.isfinite(v)]
        finite = [lo + i for i, v in enumerate(bucket) if math.isfinite(v)]
        kept.update(odd[:2])
        if finite:
            kept.add(min(finite, key=values.__getitem__))
            kept.add(max(finite, key=values.__getitem__))
    return sorted(kept)


def downsample(points: Sequence[Point], size: int) -> List[Point]:
    """At most about `size` points that draw the same curve: the first and last, and in each
    of `size // 2` buckets its lowest and highest value (NaN and the infinities kept, where
    they are, since a curve that diverged must show it)."""
    if len(points) <= size:
        return list(points)
    return [points[i] for i in _kept([float(p.value) for p in points], size)]

