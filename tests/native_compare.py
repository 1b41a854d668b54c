"""What the native backend's tests compare: a whole store as records, read by any backend."""

from __future__ import annotations

import dataclasses
from typing import Any, Dict

from mlmd_exercise.records import EVENT_TYPES, ArtifactState, ExecutionState, Kind, PropertyType
from mlmd_exercise.store.backend import Backend, ContextWrite, ExecutionWrite, NewArtifact, NewEvent, Query
from mlmd_exercise.store import Store, open_store
from mlmd_exercise.store.native.backend import NativeBackend
from raw_mlmd import raw_mlmd

EVERY_TYPE = {"i": PropertyType.INT, "d": PropertyType.DOUBLE, "s": PropertyType.STRING,
              "st": PropertyType.STRUCT, "pr": PropertyType.PROTO, "b": PropertyType.BOOLEAN}
# A value of every kind a record holds (a proto value is only written by others: see below).
VALUES = {"i": 7, "d": 2.5, "s": "text", "st": {"a": 1.0, "b": ["x", 2.0], "c": {"d": True}}, "b": True}
# Every row of the value table (docs/python.md) that is stored, as the package stores it (values.py):
# written as custom properties of one more execution.
TABLE = {"int": 7, "int40": float(2 ** 40), "int65": str(2 ** 64 + 1), "float": 0.25, "nan": float("nan"),
         "inf": float("inf"), "ninf": float("-inf"), "negzero": -0.0, "bool": True,
         "text": "\u200fمرحبا e\u0301 \U0001F600 \u4e2d" + "x" * 100_000, "numpy": 0.5, "dict": {"a": 1.0, "b": ["x"]}}
_TIMES = {"created_ms": 0, "updated_ms": 0, "ms": 0}


def raw_backend(location: str) -> Backend:
    """Raw ml-metadata on the store, behind the interface (reads only what MLMD reads);
    the test is skipped where ml-metadata is not installed."""
    raw = raw_mlmd(location)
    from mlmd_exercise.store.mlmd.backend import MlmdBackend

    return MlmdBackend(raw, location)


class OpenedBackend:
    """The native backend of a store opened as users open stores (`open_store`), held with its
    store: the store stays open while a test holds this, and closing this closes the store."""

    def __init__(self, store: Store) -> None:
        assert isinstance(store.backend, NativeBackend)
        self.store = store

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store.backend, name)

    def close(self) -> None:
        self.store.close()


def native_backend(location: str, create: bool = False) -> Any:
    """The native backend on the store at `location` (see `OpenedBackend`)."""
    return OpenedBackend(open_store(location, create=create, backend="native"))


def comparable(value: Any) -> Any:
    """A value that == compares as the store holds it: NaN equal to NaN, -0.0 apart from 0.0."""
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))
                                     or (value == 0.0 and str(value).startswith("-"))):
        return f"float:{value!r}"
    return value


def records(record: Any) -> Any:
    """A record whose values == compares as stored (see `comparable`)."""
    return _plain(record, True)


def _plain(record: Any, times: bool) -> Any:
    if hasattr(record, "custom"):
        record = dataclasses.replace(record, properties={k: comparable(v) for k, v in record.properties.items()},
                                     custom={k: comparable(v) for k, v in record.custom.items()})
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


def write_everything(b: Backend) -> dict:
    """Types, nodes in every state, values of every kind, events of every type with paths."""
    at = b.put_type(Kind.ARTIFACT, "DataSet", EVERY_TYPE)
    assert b.put_type(Kind.ARTIFACT, "DataSet", {"extra": PropertyType.STRING}) == at  # adds, keeps
    et = b.put_type(Kind.EXECUTION, "Trainer", {"i": PropertyType.INT, "s": PropertyType.STRING})
    ct = b.put_type(Kind.CONTEXT, "Experiment", {"s": PropertyType.STRING})
    artifacts = [NewArtifact(at, "DataSet", f"/data/{state.value}", properties={k: v for k, v in VALUES.items()},
                             custom={f"c_{k}": v for k, v in VALUES.items()} | {"s": "custom, hidden"},
                             state=state.value, name=f"a-{state.value}")
                 for state in ArtifactState]
    stored = b.put_artifacts(artifacts)
    context = ContextWrite(ct, "Experiment", "exp", properties={"s": "declared"}, custom={"n": 3})
    made = []
    for n, state in enumerate(list(ExecutionState) + [None]):
        events = [(NewArtifact(at, "DataSet", f"/out/{n}/{t}", custom={"t": t}),
                   NewEvent(t, ("out", n, "k", t))) for t in EVENT_TYPES[1:] if "OUTPUT" in t]
        inputs = [(stored[(n + k) % len(stored)], NewEvent(t, (t.lower(), k)))
                  for k, t in enumerate(EVENT_TYPES[1:]) if "OUTPUT" not in t]
        made.append(b.put_execution(ExecutionWrite(et, "Trainer", name=f"run-{n}", state=state,
                                                   properties={"i": n}, custom={"host": "h"}),
                                    events, inputs, context if n % 2 else None))
    execution_id = made[0][0]
    b.update_executions([ExecutionWrite(et, "Trainer", id=execution_id, state=ExecutionState.COMPLETE,
                                        properties={"s": "done"}, custom={"host": 5})])
    lineage = b.put_lineage([ExecutionWrite(et, "Trainer", name=f"bulk-{i}", state=ExecutionState.COMPLETE)
                             for i in range(3)],
                            [NewArtifact(at, "DataSet", f"/bulk/{i}") for i in range(3)],
                            [NewEvent("OUTPUT", ("model",), artifact_index=i, execution_index=i) for i in range(3)]
                            + [NewEvent("INPUT", ("examples", 0), artifact_id=stored[0], execution_index=2)],
                            ContextWrite(ct, "Experiment", "bulk"))
    assert b.put_context(ContextWrite(ct, "Experiment", "exp")) == made[1][2]
    values = b.put_execution(ExecutionWrite(et, "Trainer", name="values", state=ExecutionState.COMPLETE,
                                            custom=dict(TABLE)))
    made.append(values)
    return {"types": (at, et, ct), "stored": stored, "made": made, "lineage": lineage}
