"""What the native backend's tests compare: a whole store as records, read by any backend."""

from __future__ import annotations

import dataclasses
from typing import Any, Dict

from mlmd_exercise.records import Kind
from mlmd_exercise.store.address import parse_location
from mlmd_exercise.store.backend import Backend, Query
from mlmd_exercise.store.native import NativeBackend, open_native
from raw_mlmd import raw_mlmd

_TIMES = {"created_ms": 0, "updated_ms": 0, "ms": 0}


def raw_backend(location: str) -> Backend:
    """Raw ml-metadata on the store, behind the interface (reads only what MLMD reads);
    the test is skipped where ml-metadata is not installed."""
    raw = raw_mlmd(location)
    from mlmd_exercise.store.mlmd import MlmdBackend

    return MlmdBackend(raw, location)


def native_backend(location: str, create: bool = False) -> NativeBackend:
    return open_native(parse_location(location), create=create, upgrade=False)


def _plain(record: Any, times: bool) -> Any:
    if times:
        return record
    return dataclasses.replace(record, **{k: v for k, v in _TIMES.items() if hasattr(record, k)})


def snapshot(backend: Backend, times: bool = True) -> Dict[str, Any]:
    """Every type, node, event, context membership and count of the store, in id order."""
    by_id = Query(order="id", ascending=True)
    artifacts = backend.artifacts(by_id)
    executions = backend.executions(by_id)
    contexts = backend.contexts(by_id)
    events = backend.events_by_executions([e.id for e in executions])
    return {
        "types": {k.value: backend.types(k) for k in Kind},
        "artifacts": [_plain(a, times) for a in artifacts],
        "executions": [_plain(e, times) for e in executions],
        "contexts": [_plain(c, times) for c in contexts],
        "events": sorted((_plain(e, times) for e in events),
                         key=lambda e: (e.execution_id, e.artifact_id, e.type)),
        "events_by_artifact": sorted((_plain(e, times) for e in backend.events_by_artifacts([a.id for a in artifacts])),
                                     key=lambda e: (e.execution_id, e.artifact_id, e.type)),
        "artifact_contexts": {a.id: sorted(c.id for c in backend.contexts_of(Kind.ARTIFACT, a.id))
                              for a in artifacts},
        "execution_contexts": {e.id: sorted(c.id for c in backend.contexts_of(Kind.EXECUTION, e.id))
                               for e in executions},
        "sizes": backend.context_sizes([c.id for c in contexts]),
        "states": backend.count_by_state(),
    }
