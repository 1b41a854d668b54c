"""Metrics written as they are logged, with their step history: what a killed run keeps, what
`metrics` prints, what prune removes, and what `check` finds in a store (rows ml-metadata
cannot read, planted by raw SQL; histories whose run is gone)."""

from __future__ import annotations

import gc
import json
import math
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import mlmd_exercise as mx
from conftest import NATIVE_TOO, server_admin, write
from mlmd_exercise import history
from mlmd_exercise.read.check import check_store
from mlmd_exercise.read.history import downsample, history_chunks, metric_history
from mlmd_exercise.store import choice
from mlmd_exercise.store.address import parse_location
from mlmd_exercise.store.backend import ContextWrite, Query
from raw_mlmd import raw_mlmd

# The "done when" of issue 20: NaN, inf, numpy scalars and 1,000 steps of a loss, then SIGKILL.
TRAINING = textwrap.dedent("""
    import sys
    import numpy as np
    import mlmd_exercise as mx

    tracker = mx.Tracker(sys.argv[1])
    run = tracker.execution("Trainer", params={"lr": np.float32(0.5), "seed": np.int64(7)})
    run.log_metrics({"val_loss": float("nan"), "grad": float("inf"), "neg": -float("inf"),
                     "acc": np.float64(0.75), "n": np.int64(3), "zero": -0.0})
    print("run", run.id, flush=True)
    for step in range(1000):
        run.log_metric("loss", 1.0 / (step + 1), step=step * 10)
        print("step", step, flush=True)
    print("done", flush=True)
    input()  # never reached in the test: it is killed mid-loop
""")


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float) and (math.isnan(a) or math.isnan(b)):
        return math.isnan(a) and math.isnan(b)
    return a == b and type(a) is type(b) and (not isinstance(a, float) or math.copysign(1, a) == math.copysign(1, b))


def _kill_after(db: str, tmp_path: Path, steps: int) -> int:
    """Runs the training script and kills it with SIGKILL once it has reported `steps` steps
    (read from its output: no sleep); the run's id."""
    script = tmp_path / "train.py"
    script.write_text(TRAINING)
    proc = subprocess.Popen([sys.executable, str(script), db], stdout=subprocess.PIPE, text=True,
                            stderr=subprocess.PIPE, cwd=tmp_path)
    run_id = None
    assert proc.stdout is not None
    deadline = time.monotonic() + 300
    for line in proc.stdout:
        if line.startswith("run "):
            run_id = int(line.split()[1])
        if line.strip() == f"step {steps - 1}":
            os.kill(proc.pid, signal.SIGKILL)
            break
        assert time.monotonic() < deadline, "the training script made no progress"
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read() if proc.stderr else ""
    assert run_id is not None
    return run_id


def _expected_summary():
    return {"val_loss": float("nan"), "grad": float("inf"), "neg": -float("inf"), "acc": 0.75, "n": 3,
            "zero": -0.0, "lr": 0.5, "seed": 7}


def test_a_run_killed_mid_loop_keeps_every_value_logged_before(db, tmp_path):
    run_id = _kill_after(db, tmp_path, 300)
    readers = [None] + (["native" if choice.choose().name == "mlmd" else "mlmd"] if NATIVE_TOO else [])
    for backend in readers:  # this package on both backends
        gc.collect()
        store = mx.open_store(db, backend=backend)
        [run] = store.backend.executions(Query(ids=[run_id]))
        assert run.state == "RUNNING"
        for key, value in _expected_summary().items():
            assert _same(run.properties[key], value), (backend, key, run.properties[key])
        loss = metric_history(store, run_id, "loss")
        # Every step reported before the kill is there, and those the script logged after it
        # reported step 299 and before the kill landed (more on a loaded machine), each whole.
        assert len(loss) >= 300
        assert [(p.step, p.value) for p in loss] == [(s * 10, 1.0 / (s + 1)) for s in range(len(loss))]
        # The summary is the last value (ml-metadata writes it to 6 decimals); on ml-metadata the
        # history is written first, so a kill between the two leaves the summary one point behind.
        assert any(abs(run.properties["loss"] - p.value) <= 1e-6 for p in loss[-2:])
        assert math.isnan(metric_history(store, run_id, "val_loss")[0].value)
        assert check_store(store) == []
        del store, run
    if choice.mlmd_missing() is None:  # raw ml-metadata 1.17, as any MLMD client reads the store
        gc.collect()
        raw = raw_mlmd(db)
        [execution] = raw.get_executions_by_id([run_id])
        assert execution.custom_properties["grad"].HasField("proto_value")
        assert execution.custom_properties["acc"].double_value == 0.75
        chunks = raw.get_contexts_by_type("MetricHistory")
        texts = sorted(v.string_value for c in chunks if c.properties["key"].string_value == "loss"
                       for k, v in c.custom_properties.items())
        assert len(texts) >= 300 and all(len(t.split(" ")) == 3 for t in texts)


def test_metrics_prints_the_history_as_text_and_json(db, tracker, run_cli):
    with tracker.execution() as run:
        for step in range(3):
            run.log_metrics({"loss": 1.0 / (step + 1), "bad": float("nan")})
    text = run_cli("metrics", run.id, "loss", "--db", db)
    assert text.code == 0
    lines = text.out.splitlines()
    assert lines[0] == "loss: 3 values" and [line.split()[1] for line in lines[1:]] == ["0", "1", "2"]
    assert [line.split()[-1] for line in lines[1:]] == ["1.0", "0.5", "0.3333333333333333"]
    data = json.loads(run_cli("metrics", run.id, "--db", db, "--json").out)
    assert [p["value"] for p in data["metrics"]["bad"]] == ["NaN"] * 3
    assert [p["step"] for p in data["metrics"]["loss"]] == [0, 1, 2]
    missing = run_cli("metrics", run.id, "nope", "--db", db)
    assert missing.code == 2 and missing.err.strip().endswith("execution 1 logged no metric 'nope' "
                                                               "(its metrics: bad, loss)")


def test_a_long_history_fills_chunks_and_reads_back_in_order(tracker):
    n = history.CHUNK * 2 + 5
    with tracker.execution(flush_every=250) as run:
        for step in range(n):
            run.log_metric("loss", float(step))
    points = metric_history(tracker.store, run.id, "loss")
    assert [p.value for p in points] == [float(s) for s in range(n)]
    assert len(history_chunks(tracker.store, run.id, "loss")) == 3
    assert run.execution().properties["loss"] == float(n - 1)
    # Lists of contexts never read a history.
    assert [e.type for e in mx.list_experiments(tracker.store)] == ["Experiment"]


def test_flush_every_loses_at_most_that_many_points_on_a_kill(db, tmp_path):
    script = tmp_path / "batched.py"
    script.write_text(textwrap.dedent("""
        import sys
        import mlmd_exercise as mx
        run = mx.Tracker(sys.argv[1]).execution(flush_every=50)
        print("run", run.id, flush=True)
        for step in range(10000):
            run.log_metric("loss", float(step))
            print("step", step, flush=True)
    """))
    proc = subprocess.Popen([sys.executable, str(script), db], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    run_id = int(proc.stdout.readline().split()[1])
    last = -1
    for line in proc.stdout:
        last = int(line.split()[1])
        if last == 176:
            os.kill(proc.pid, signal.SIGKILL)
            break
    # Reported and still in the pipe (the last line may be cut short by the kill).
    last = max([last] + [int(line.split()[1]) for line in proc.stdout
                         if line.endswith("\n") and line.startswith("step ")])
    proc.wait(timeout=60)
    gc.collect()
    kept = metric_history(mx.open_store(db), run_id, "loss")
    # Logged: every step reported (and perhaps the next); written: 50 at a time, so at most
    # flush_every - 1 = 49 of them are lost.
    assert len(kept) % 50 == 0 and last + 1 - 49 <= len(kept) <= last + 2
    assert [p.value for p in kept] == [float(s) for s in range(len(kept))]


def test_flush_every_must_be_a_positive_whole_number(tracker):
    with pytest.raises(mx.MlmdExerciseError, match=r"^flush_every must be a whole number of points, 1 or more, not 0$"):
        tracker.execution(flush_every=0)
    assert tracker.store.backend.executions() == []  # refused before anything was written


def test_prune_removes_the_history_of_the_runs_it_removes(db, tmp_path):
    from mlmd_exercise.write.prune import plan_prune, prune

    tracker = mx.Tracker(db)
    with tracker.execution() as old:
        old.log_metric("loss", 0.5)
    started = old.execution().created_ms
    while int(time.time() * 1000) <= started:  # the next run starts a millisecond later at least
        pass
    with tracker.execution() as kept:
        kept.log_metric("loss", 0.25)
    old_id, kept_id = old.id, kept.id
    del tracker, old, kept
    gc.collect()
    store = mx.open_store(db, create=True, backend="native")
    plan = plan_prune(store, started + 1)
    assert [e.id for e in plan.executions] == [old_id]
    removed = prune(store, plan)
    assert removed["Context"] == 1 and removed["ContextProperty"] == 4
    assert metric_history(store, kept_id, "loss")[0].value == 0.25
    assert history_chunks(store, old_id, "loss") == []
    assert check_store(store) == []


def _plant(db: str, sql: str) -> None:
    """Runs raw SQL on the store's database (another program writing it)."""
    loc = parse_location(db)
    if loc.is_sqlite:
        import sqlite3

        con = sqlite3.connect(str(loc.path))
        con.execute(sql)
        con.commit()
        con.close()
        return
    admin = server_admin(db)
    try:
        admin.run(sql)
    finally:
        admin.close()


def test_check_finds_a_null_property_row_planted_by_raw_sql_and_repair_mends_ours(db, run_cli):
    tracker = mx.Tracker(db)
    with tracker.execution() as run:
        run.log_metric("loss", 0.5)
    run_id = run.id
    del tracker, run
    gc.collect()
    # What the native backend once wrote for NaN on SQLite: every value column NULL.
    _plant(db, f"UPDATE ExecutionProperty SET double_value = NULL WHERE execution_id = {run_id} AND name = 'loss'")
    # And one on the run's experiment, a context of ours too.
    _plant(db, "INSERT INTO ContextProperty (context_id, name, is_custom_property) "
               "SELECT id, 'theirs', TRUE FROM Context WHERE name = 'default'".replace(
                   "TRUE", "1" if "://" not in db or db.startswith("mysql") else "TRUE"))
    found = run_cli("check", "--db", db)
    assert found.code == 1
    assert found.out.splitlines() == [
        "context 1 custom property 'theirs' has no value in any column: ml-metadata refuses to read the store "
        "(check --repair mends what this package wrote)",
        f"execution {run_id} custom property 'loss' has no value in any column: ml-metadata refuses to read "
        "the store (check --repair mends what this package wrote)",
        "2 problems"]
    alone = run_cli("check", "--yes", "--db", db)
    assert alone.code == 2 and alone.err.strip() == "mlmd-exercise: error: --yes goes with --repair"
    as_json = json.loads(run_cli("check", "--repair", "--json", "--db", db).out)
    assert (as_json["dry_run"], as_json["mended"], [r["key"] for r in as_json["rows"]]) == (True, 0, ["theirs", "loss"])
    dry = run_cli("check", "--repair", "--db", db)
    assert dry.code == 1 and dry.out.splitlines()[-1] == "2 unreadable property rows: would mend 2 (--yes mends them)"
    done = run_cli("check", "--repair", "--yes", "--db", db)
    assert done.code == 0, done.out + done.err
    gc.collect()
    assert run_cli("check", "--db", db).out.strip() == "store is consistent"
    store = mx.open_store(db)
    assert math.isnan(store.backend.executions(Query(ids=[run_id]))[0].properties["loss"])


def test_check_reports_a_history_whose_run_is_gone(tracker):
    with tracker.execution() as run:
        run.log_metric("loss", 0.5)
    [chunk] = history_chunks(tracker.store, run.id, "loss")
    tracker.store.backend.put_context(ContextWrite(chunk.type_id, "MetricHistory", "99/0/x",
                                                   properties={"execution_id": 99, "key": "x", "chunk": 0}))
    assert check_store(tracker.store) == [
        "context 3 (MetricHistory) holds the metric history of execution 99, which is not in the store"]


def test_downsampling_keeps_the_ends_and_every_bucket_extremes():
    points = [history.Point(i, 0, float(i % 10)) for i in range(10_000)]
    points[5000] = history.Point(5000, 0, float("nan"))
    small = downsample(points, 200)
    assert len(small) <= 210 and small[0] == points[0] and small[-1] == points[-1]
    assert any(math.isnan(p.value) for p in small)
    assert {p.value for p in small if not math.isnan(p.value)} == {0.0, 9.0}


def test_repair_leaves_a_row_another_program_wrote_and_says_so(db, run_cli):
    from mlmd_exercise.records import Kind, PropertyType
    from mlmd_exercise.store.backend import ExecutionWrite

    store = mx.open_store(db, create=True)
    type_id = store.backend.put_type(Kind.EXECUTION, "TheirStep", {"score": PropertyType.DOUBLE})
    theirs, _, _ = store.backend.put_execution(ExecutionWrite(type_id, "TheirStep", properties={"score": 0.5}))
    del store
    gc.collect()
    _plant(db, f"UPDATE ExecutionProperty SET double_value = NULL WHERE execution_id = {theirs}")
    dry = run_cli("check", "--repair", "--yes", "--db", db)
    assert dry.code == 1
    assert dry.out.splitlines() == [
        f"left        execution {theirs} property 'score' has no value in any column: left alone: another "
        "program wrote this node", "1 unreadable property row: mended 0"]
    gc.collect()
    assert run_cli("check", "--db", db).code == 1  # still reported


def test_ordinary_reads_never_read_a_history(tracker, tmp_path, monkeypatch):
    """ls, show, lineage walks and the explorer's lists read no MetricHistory context."""
    from mlmd_exercise.web import pages, runs

    data = tracker.dataset(write(tmp_path / "d.csv", "a\n"))
    with tracker.execution(inputs={"examples": data}, flush_every=500) as run:
        for step in range(3000):
            run.log_metric("loss", 1.0 / (step + 1))
        run.log_model(write(tmp_path / "m.bin", "m"), name="m")
    backend = tracker.store.backend
    read = []
    real = backend.contexts

    def contexts(query=Query()):
        found = real(query)
        read.extend(c.type for c in found)
        return found

    monkeypatch.setattr(backend, "contexts", contexts)
    mx.list_executions(tracker.store)
    mx.list_artifacts(tracker.store)
    mx.list_experiments(tracker.store)
    mx.show_execution(tracker.store, run.id)
    mx.walk(tracker.store, artifact_id=run.outputs["model"].id, direction="upstream")
    runs.runs_page(tracker.store, runs.RunsQuery.parse({}))
    pages.lineage_page(tracker.store, "execution", run.id)
    assert "MetricHistory" not in read


def test_a_page_curve_is_the_downsampled_history(tracker):
    from mlmd_exercise.read.history import curve

    with tracker.execution(flush_every=1000) as run:
        for step in range(3000):
            run.log_metric("loss", float("nan") if step == 1234 else (step % 17) / 3 if step % 5 else step)
    def shown(found):  # NaN equal to NaN
        return [(p.step, p.ms, repr(p.value)) for p in found]

    points = metric_history(tracker.store, run.id, "loss")
    assert shown(curve(tracker.store, run.id, "loss", 200)) == shown(downsample(points, 200))
    drawn = curve(tracker.store, run.id, "loss", 200)
    assert any(isinstance(p.value, int) for p in drawn) and any(math.isnan(p.value) for p in drawn)
    assert shown(curve(tracker.store, run.id, "loss", 5000)) == shown(points)
