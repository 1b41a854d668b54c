"""A run's start is one transaction on every backend (the execution, its INPUT events to
artifacts already stored, its experiment), and `check` finds a run with fewer input events
than its start recorded (`env.inputs`)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import mlmd_exercise as mx
from mlmd_exercise.environment import INPUTS
from mlmd_exercise.read.check import check_store
from mlmd_exercise.store.backend import Backend, ExecutionWrite, NewEvent, Query


def _inputs(store, tmp_path: Path, n: int) -> list:
    tracker = mx.Tracker(store)
    files = []
    for i in range(n):
        path = tmp_path / f"d{i}.csv"
        path.write_text(f"x{i}")
        files.append(tracker.log_dataset(path))
    return files


def test_a_run_records_how_many_inputs_its_start_wrote_and_check_holds_it_to_that(db, tmp_path):
    store = mx.open_store(db, create=True)
    a, b = _inputs(store, tmp_path, 2)
    with mx.Tracker(store).execution("Trainer", inputs={"examples": a, "eval": b}) as run:
        pass
    with mx.Tracker(store).execution("Trainer") as alone:
        pass
    runs = {x.id: x for x in store.backend.executions(Query())}
    assert (runs[run.id].custom[INPUTS], runs[alone.id].custom[INPUTS]) == (2, 0)
    assert check_store(db) == [] and check_store(store) == []
    # What a start cut short between its writes left (the mlmd backend's before it was one
    # call): a run whose start recorded two inputs, with one input event.
    spec = store.catalog.spec(mx.records.Kind.EXECUTION, "Trainer")
    cut, _, _ = store.backend.put_execution(
        ExecutionWrite(store.catalog.spec_id(spec), "Trainer", name="cut", state=mx.records.ExecutionState.RUNNING,
                       custom={INPUTS: 2}), inputs=[(a.id, NewEvent("INPUT", ("examples",)))])
    said = (f"execution {cut} (Trainer) has 1 input event where its start recorded 2 inputs ({INPUTS} = 2): "
            "its start was cut short, and what it used is not recorded")
    assert said in check_store(db)
    assert said in check_store(store)
    # the reads' way, where no SQL is at hand, finds the same
    assert Backend.runs_missing_inputs(store.backend) == store.backend.runs_missing_inputs() == [(cut, "Trainer", 2, 1)]


def test_check_says_so_with_exit_1(run_cli, tmp_path):
    store = mx.open_store(tmp_path / "s.db", create=True)
    [a] = _inputs(store, tmp_path, 1)
    spec = store.catalog.spec(mx.records.Kind.EXECUTION, "Trainer")
    store.backend.put_execution(ExecutionWrite(store.catalog.spec_id(spec), "Trainer", name="cut", custom={INPUTS: 1}))
    del store
    r = run_cli("--db", tmp_path / "s.db", "check")
    assert r.code == 1 and "has 0 input events where its start recorded 1 input" in r.out + r.err


_CHILD = textwrap.dedent("""
    import sys
    import mlmd_exercise as mx

    store = mx.open_store(sys.argv[1], create=True)
    tracker = mx.Tracker(store, experiment="e")
    data = tracker.log_dataset(sys.argv[2])
    with tracker.execution("Trainer", inputs={"examples": data}):  # types and experiment made
        pass

    def stop():
        print("committed", flush=True)  # the parent kills us now
        sys.stdin.read()  # and we wait for it, doing nothing more

    if store.backend.name == "mlmd":  # after ml-metadata's first write call of the start
        from ml_metadata.metadata_store import metadata_store

        real = metadata_store.MetadataStore._call
        def call(self, method, request, response):
            real(self, method, request, response)
            if method.startswith("Put"):
                stop()
        metadata_store.MetadataStore._call = call
    else:  # the native backend: a transaction per call
        real = store.backend.put_execution
        def put(*args, **kw):
            got = real(*args, **kw)
            stop()
            return got
        store.backend.put_execution = put
    tracker.execution("Trainer", inputs={"examples": data}).__enter__()
""")


def test_a_start_killed_after_its_first_commit_has_every_input_it_recorded(db, tmp_path):
    data = tmp_path / "d.csv"
    data.write_text("x")
    child = subprocess.Popen([sys.executable, "-c", _CHILD, db, str(data)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env={**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)})
    try:
        said = child.stdout.readline()  # waits as long as the machine needs: no timing
        assert said == "committed\n", said + child.stderr.read()
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    store = mx.open_store(db)
    runs = store.backend.executions(Query())
    assert len(runs) == 2  # the second run's start was committed, whole
    for x in runs:
        assert [e.type for e in store.backend.events_by_executions([x.id])].count("INPUT") == 1
        assert [c.name for c in store.backend.contexts_of(mx.records.Kind.EXECUTION, x.id)] == ["e"]
    assert check_store(db) == []
