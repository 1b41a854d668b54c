"""How fast the native backend records runs, beside the ml-metadata backend (not part of make test).

    .venv/bin/python bench/native_speed.py [STORE_DIR_OR_SERVER_BASE_URL]

(a server's base URL: `postgresql://user:pw@host:port/` or `mysql://user:pw@host:port/`, as
scripts/with-servers sets $MLMD_TEST_POSTGRES and $MLMD_TEST_MYSQL).

Prints, for each backend: one run recorded as the Tracker does (put_execution of a RUNNING
execution with one new input artifact, then put_execution with its output and COMPLETE), in ms
per run; put_lineage of 1000 finished runs in one call, in runs per second; and reading the
events of 1000 executions by id.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
import uuid

from mlmd_exercise.records import ExecutionState, Kind, PropertyType
from mlmd_exercise.store.backend import ContextWrite, ExecutionWrite, NewArtifact, NewEvent


def _open(kind: str, location: str):
    import mlmd_exercise as mx

    store = mx.open_store(location, create=True, backend=kind if kind == "native" else None)
    return store.backend, store


def measure(kind: str, location: str, runs: int = 300) -> dict:
    backend, keep = _open(kind, location)
    at = backend.put_type(Kind.ARTIFACT, "DataSet", {"version": PropertyType.INT})
    et = backend.put_type(Kind.EXECUTION, "Trainer", {"host": PropertyType.STRING})
    ct = backend.put_type(Kind.CONTEXT, "Experiment", {})
    context = ContextWrite(ct, "Experiment", "bench")
    context = ContextWrite(ct, "Experiment", "bench", id=backend.put_context(context))
    times = []
    for i in range(runs):
        start = time.perf_counter()
        run_id, _, _ = backend.put_execution(
            ExecutionWrite(et, "Trainer", name=f"r{i}", state=ExecutionState.RUNNING, properties={"host": "h"},
                           custom={"pid": 1, "lr": 0.1}),
            [(NewArtifact(at, "DataSet", f"/data/{i}", {"version": 1}), NewEvent("INPUT", ("examples",)))], (),
            context)
        backend.put_execution(ExecutionWrite(et, "Trainer", id=run_id, state=ExecutionState.COMPLETE,
                                             custom={"accuracy": 0.9}),
                              [(NewArtifact(at, "DataSet", f"/model/{i}"), NewEvent("OUTPUT", ("model",)))], (),
                              context)
        times.append(time.perf_counter() - start)
    n = 1000
    start = time.perf_counter()
    execution_ids, _, _ = backend.put_lineage(
        [ExecutionWrite(et, "Trainer", name=f"bulk{i}", state=ExecutionState.COMPLETE, custom={"lr": 0.1})
         for i in range(n)],
        [NewArtifact(at, "DataSet", f"/bulk/{i}", {"version": 1}) for i in range(n)],
        [NewEvent("OUTPUT", ("model",), artifact_index=i, execution_index=i) for i in range(n)], context)
    lineage = time.perf_counter() - start
    start = time.perf_counter()
    events = backend.events_by_executions(execution_ids)
    read = time.perf_counter() - start
    assert len(events) == n
    backend.close()
    del keep
    return {"record one run (ms, median)": round(statistics.median(times) * 1000, 3),
            "record one run (ms, mean)": round(statistics.mean(times) * 1000, 3),
            "put_lineage 1000 runs (runs/s)": round(n / lineage),
            "events of 1000 executions (ms)": round(read * 1000, 2)}


def main() -> None:
    base = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="native-speed-")
    for kind in ("native", "mlmd"):
        name = f"{kind}_{uuid.uuid4().hex[:8]}"
        location = base + name if "://" in base else f"{base}/{name}.db"
        print(kind, measure(kind, location))


if __name__ == "__main__":
    main()
