"""Many writers at once, writers killed mid-run, unclear outcomes: nothing lost, nothing twice.

The full-size runs (8 writers x 200 runs, 50 kills) are `scripts/stress.py`; these
are the same checks at a size that suits `make test`.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import mlmd_exercise as mx
from conftest import server_admin, write
from mlmd_exercise.read.check import check_store, stale_runs
from mlmd_exercise.write.abandon import abandon
from raw_mlmd import pb, mlmd_errors, raw_mlmd

STRESS = Path(__file__).parent.parent / "scripts" / "stress.py"
KILLS = {"sqlite": 50, "postgresql": 25, "mysql": 25}


def _stress(*args: str) -> dict:
    proc = subprocess.run([sys.executable, str(STRESS), *args], capture_output=True, text=True,
                          timeout=600)
    assert proc.stdout, proc.stderr
    report = json.loads(proc.stdout.splitlines()[-1])
    assert proc.returncode == (0 if report["ok"] else 1)
    return report


def test_writers_at_once_on_a_brand_new_store_lose_nothing(db):
    report = _stress("writers", "--store", db, "--writers", "4", "--runs", "50")
    assert report["errors"] == [] and report["problems"] == []
    assert report["recorded"] == report["complete"] == report["complete_with_input_and_output"] == 200
    store = mx.open_store(db)
    assert mx.count_by_state(store) == {"COMPLETE": 200}
    names = sorted(t.name for t in raw_mlmd(store).get_artifact_types())
    assert names == ["DataSet", "Metrics", "SavedModel"]  # each type once
    assert len(raw_mlmd(store).get_contexts_by_type("Experiment")) == 1


def test_writers_killed_at_random_moments_leave_a_consistent_store(db):
    backend = "sqlite" if "://" not in db else db.split("://")[0]
    report = _stress("kill", "--store", db, "--kills", str(KILLS[backend]), "--seed", "7")
    assert report["problems"] == [] and report["ok"]
    # The writers did record between kills: every run a writer said it committed before its kill
    # is there (a bound that holds however slow the machine; the kills' moments follow progress).
    assert report["runs"] >= report["committed_before_kills"] > 0
    store = mx.open_store(db, create=True)
    running = mx.list_executions(store, state="RUNNING")
    # Every interrupted run is recognised as such, and only when asked is it closed.
    assert {r.id for r in stale_runs(store)} == {r.id for r in running}
    closed = abandon(store, stale_runs(store), reason="killed in a test")
    assert {r.id for r in closed} == {r.id for r in running}
    assert "RUNNING" not in mx.count_by_state(store)
    assert all(r.properties["abandoned"] == "killed in a test" for r in closed)
    assert check_store(store) == []


def test_a_live_run_is_not_stale_until_it_is_old(tracker):
    run = tracker.execution()
    assert stale_runs(tracker.store) == []
    assert [r.id for r in stale_runs(tracker.store, older_than_s=0, now=10**10)] == [run.id]
    run.finish()
    assert stale_runs(tracker.store, older_than_s=0, now=10**10) == []


def _fail_put_execution(backend, monkeypatch, fails, after_commit: bool) -> None:
    """Makes the backend's put_execution break off once, where `fails(state)` says (the
    execution's state being written), as a lost connection would: after its transaction
    committed (`after_commit`), or before anything was written. On ml-metadata the fault
    is MLMD's own error from its put_execution; on the native backend an OSError from its
    connection, which the backend translates as it would a real one."""
    failures = []
    if backend.name == "mlmd":
        real = backend._mlmd.put_execution  # ml-metadata's own, under the backend

        def mlmd_put(*args, **kwargs):
            state = pb.Execution.State.Name(args[0].last_known_state)
            if failures or not fails(state):
                return real(*args, **kwargs)
            failures.append(state)
            if not after_commit:
                raise mlmd_errors.AbortedError("database is locked")
            real(*args, **kwargs)
            raise mlmd_errors.UnavailableError("connection lost after commit")

        monkeypatch.setattr(backend._mlmd, "put_execution", mlmd_put)
        return failures
    armed = []
    real_put, real_commit, real_begin = backend.put_execution, backend.db.commit, backend.db.begin

    def native_put(execution, *args, **kwargs):
        state = execution.state.name if execution.state is not None else "UNKNOWN"
        if not failures and fails(state):
            armed.append(state)
        return real_put(execution, *args, **kwargs)

    def begin():
        if armed and not after_commit:
            failures.append(armed.pop())
            raise OSError("connection lost")
        real_begin()

    def commit():
        real_commit()
        if armed and after_commit:
            failures.append(armed.pop())
            raise OSError("connection lost after commit")

    monkeypatch.setattr(backend, "put_execution", native_put)
    monkeypatch.setattr(backend.db, "begin", begin)
    monkeypatch.setattr(backend.db, "commit", commit)
    return failures


@pytest.mark.parametrize("call", ["start", "finish"])
def test_a_write_committed_but_not_acknowledged_is_not_recorded_twice(tracker, tmp_path, monkeypatch, call):
    data = tracker.dataset(write(tmp_path / "d.csv", "d"))
    failures = _fail_put_execution(tracker.store.backend, monkeypatch,
                                   lambda state: (call == "start") == (state == "RUNNING"), after_commit=True)
    with tracker.execution(inputs={"examples": data}) as run:
        run.log_model(write(tmp_path / "m.bin", "m"), name="M")
    assert failures == ["RUNNING" if call == "start" else "COMPLETE"]
    monkeypatch.undo()
    assert [e.id for e in mx.list_executions(tracker.store)] == [run.id]
    assert sorted(a.type for a in mx.list_artifacts(tracker.store)) == ["DataSet", "SavedModel"]
    events = tracker.store.backend.events_by_executions([run.id])
    assert sorted(e.type for e in events) == ["INPUT", "OUTPUT"]
    assert run.outputs["model"].type == "SavedModel"


def test_a_write_that_did_not_commit_is_tried_again(tracker, tmp_path, monkeypatch):
    failures = _fail_put_execution(tracker.store.backend, monkeypatch, lambda state: True, after_commit=False)
    run = tracker.execution(inputs={"examples": tracker.dataset(write(tmp_path / "d.csv", "d"))})
    assert failures == ["RUNNING"] and run.execution().state == "RUNNING"
    monkeypatch.undo()
    assert len(mx.list_executions(tracker.store)) == 1


def _duplicate_dataset_type(db: str) -> None:
    """Adds a second `DataSet` type row, as concurrent raw MLMD clients can."""
    sql = 'INSERT INTO "Type" (name, type_kind) VALUES (\'DataSet\', 1)'
    if "://" not in db:  # plain SQL in a process with no MLMD store open on the file
        code = f"import sqlite3; c = sqlite3.connect({db!r}); c.execute({sql!r}); c.commit()"
        subprocess.run([sys.executable, "-c", code], check=True)
        return
    admin = server_admin(db)
    admin.run(sql.replace('"Type"', "type"))  # lower case on PostgreSQL; mysql.Admin maps it to `Type`
    admin.close()


def test_a_type_registered_twice_is_refused_by_name(db):
    mx.Tracker(db)  # creates the store and its types
    _duplicate_dataset_type(db)
    with pytest.raises(mx.SchemaError, match="^artifact type 'DataSet' is registered twice in the store"):
        mx.Tracker(db)
    assert check_store(mx.open_store(db)) == ["artifact type 'DataSet' is registered 2 times"]


def test_check_and_abandon_from_the_command_line(run_cli, db, tmp_path):
    tracker = mx.Tracker(db)
    with tracker.execution(inputs={"examples": tracker.dataset(write(tmp_path / "d.csv", "d"))}):
        pass
    ok = run_cli("check", "--db", db)
    assert (ok.code, ok.out) == (0, "store is consistent\n")
    # A run whose process is gone: recorded by a child process that then exits.
    code = ("import sys, mlmd_exercise as mx; t = mx.Tracker(sys.argv[1]); "
            "t.execution(inputs={'examples': t.dataset(sys.argv[2])})")
    subprocess.run([sys.executable, "-c", code, db, str(tmp_path / "d.csv")], check=True)
    states = run_cli("states", "--db", db)
    assert states.out.splitlines() == [
        "RUNNING   1", "COMPLETE  1",
        "1 of the RUNNING were interrupted: their process is gone (mark them with 'mlmd-exercise abandon')"]
    dry = run_cli("abandon", "--dry-run", "--db", db)
    assert dry.code == 0 and dry.out.startswith("would mark execution 2 (Trainer, started ")
    assert mx.count_by_state(mx.open_store(db)) == {"RUNNING": 1, "COMPLETE": 1}
    done = run_cli("abandon", "--state", "CANCELED", "--db", db)
    assert done.out.splitlines()[-1] == "1 stale RUNNING execution (process gone)"
    assert mx.count_by_state(mx.open_store(db)) == {"COMPLETE": 1, "CANCELED": 1}
    assert run_cli("abandon", "--db", db).out == "0 stale RUNNING executions (process gone)\n"


def test_check_reports_an_artifact_no_run_used(run_cli, db, tmp_path):
    mx.Tracker(db).log_dataset(write(tmp_path / "lonely.csv", "x"))
    bad = run_cli("check", "--db", db)
    assert bad.code == 1
    assert bad.out.splitlines()[0].startswith("artifact 1 (DataSet, file://")
    assert bad.out.splitlines()[-1] == "1 problem"


def test_a_cached_step_republishing_outputs_is_no_second_maker(run_cli, db, tmp_path):
    """TFX and Kubeflow record a cached step as a CACHED execution with OUTPUT events to the
    artifacts an earlier execution made: a healthy store, not an ambiguous one."""
    tracker = mx.Tracker(db)
    data = tracker.dataset(write(tmp_path / "d.csv", "x"))
    with tracker.execution(inputs={"examples": data}) as first:
        first.log_model(write(tmp_path / "m.joblib", "m"), name="LR")
    model = first.outputs["model"]
    raw = raw_mlmd(tracker.store)
    [trainer] = raw.get_execution_types_by_id([raw.get_executions_by_id([first.id])[0].type_id])
    outputs = [(raw.get_artifacts_by_id([model.id])[0], pb.Event(type=pb.Event.OUTPUT))]
    cached, _, _ = raw.put_execution(pb.Execution(type_id=trainer.id, last_known_state=pb.Execution.CACHED),
                                     outputs, [])
    assert run_cli("check", "--db", db).code == 0
    again, _, _ = raw.put_execution(pb.Execution(type_id=trainer.id, last_known_state=pb.Execution.COMPLETE),
                                    [(raw.get_artifacts_by_id([model.id])[0], pb.Event(type=pb.Event.OUTPUT))], [])
    bad = run_cli("check", "--db", db)
    assert bad.code == 1 and f"is the output of 2 executions ({first.id}, {again})" in bad.out, bad.out


def test_check_reports_an_artifact_that_two_runs_output(run_cli, db, tmp_path):
    """What older versions of this package wrote for a second run with identical model bytes."""
    tracker = mx.Tracker(db)
    data = tracker.dataset(write(tmp_path / "d.csv", "x"))
    with tracker.execution(inputs={"examples": data}) as first:
        first.log_model(write(tmp_path / "m.joblib", "m"), name="LR")
    model = first.outputs["model"]
    second = tracker.execution(inputs={"examples": model})
    second.finish()
    event = pb.Event(type=pb.Event.DECLARED_OUTPUT, artifact_id=model.id, execution_id=second.id)
    raw_mlmd(tracker.store).put_events([event])
    bad = run_cli("check", "--db", db)
    assert bad.code == 1
    assert bad.out.splitlines() == [
        f"artifact {model.id} (SavedModel, {model.uri}) is the output of 2 executions "
        f"({first.id}, {second.id}): which run made it is ambiguous",
        "1 problem"]
    assert json.loads(run_cli("check", "--json", "--db", db).out)["problems"] == bad.out.splitlines()[:1]
