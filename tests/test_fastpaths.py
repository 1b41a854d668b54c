"""Fast paths give what the plain MLMD calls give on the same store: counts, bulk imports."""

from __future__ import annotations

import functools
import gc
import io
import json
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

import mlmd_exercise as mx
from conftest import write
from mlmd_exercise.read import lineage, check as recovery
from mlmd_exercise import process, store as store_module
from mlmd_exercise.store.address import parse_location
from mlmd_exercise.write.bulk import ArtifactSpec, RunSpec, record_runs
from mlmd_exercise.records import EVENT_TYPES, OUTPUT_EVENTS
from mlmd_exercise.store import tables
from mlmd_exercise.read.check import check_store, stale_runs
from mlmd_exercise.records import ExecutionState
from raw_mlmd import pb, raw_mlmd


def _api_counts(mlmd, context_id=None):
    executions = mlmd.get_executions() if context_id is None else mlmd.get_executions_by_context(context_id)
    counts = {}
    for e in executions:
        name = pb.Execution.State.Name(e.last_known_state)
        counts[name] = counts.get(name, 0) + 1
    return counts


def _mixed_store(db: str, tmp_path) -> dict:
    """Runs in every state across two experiments; returns the API's counts."""
    tracker = mx.Tracker(db)
    plan = [("a", "COMPLETE")] * 5 + [("a", "FAILED")] * 2 + [("b", "COMPLETE")] * 3 + [
        ("b", "RUNNING"), ("a", "CANCELED"), ("b", "FAILED")]
    for i, (experiment, state) in enumerate(plan):
        run = tracker.execution(inputs={"examples": tracker.dataset(write(tmp_path / f"{i}.csv", str(i)))},
                                experiment=experiment)
        if state != "RUNNING":
            run.finish(ExecutionState(state))
    mlmd = raw_mlmd(tracker.store)
    expected = {None: _api_counts(mlmd)}
    for name in ("a", "b"):
        expected[name] = _api_counts(mlmd, mlmd.get_context_by_type_and_name("Experiment", name).id)
    return expected


def test_counts_by_sql_equal_mlmds(db, tmp_path):
    expected = _mixed_store(db, tmp_path)
    gc.collect()  # the tracker's MLMD store is gone: plain SQL on an SQLite file is safe again
    loc = parse_location(db)
    if loc.is_sqlite:
        assert store_module.read_sqlite(loc, lambda con: 1) == 1  # the SQL path is the one taken
    for experiment in (None, "a", "b"):
        by_address = mx.count_by_state(db, experiment)
        by_store = mx.count_by_state(mx.open_store(db), experiment)
        assert by_address == by_store == {k: v for k, v in expected[experiment].items()}
        # ...in MLMD's order of states.
        assert list(by_address) == [s.value for s in ExecutionState if s.value in by_address]
    assert expected[None] == {"COMPLETE": 8, "FAILED": 3, "RUNNING": 1, "CANCELED": 1}
    with pytest.raises(mx.NotFoundError, match="^no experiment named 'x' OR '1'='1' in"):
        mx.count_by_state(db, "x' OR '1'='1")


def test_sql_is_not_used_while_this_process_has_mlmd_on_the_file(db_path, tmp_path):
    _mixed_store(str(db_path), tmp_path)
    gc.collect()
    held = mx.open_store(db_path)
    assert store_module.read_sqlite(parse_location(str(db_path)), lambda con: 1) is None
    assert mx.count_by_state(str(db_path)) == _api_counts(raw_mlmd(held))
    del held
    gc.collect()
    assert store_module.read_sqlite(parse_location(str(db_path)), lambda con: 1) == 1


def test_an_unchecked_schema_version_falls_back_to_the_api(db, tmp_path, monkeypatch):
    expected = _mixed_store(db, tmp_path)
    gc.collect()
    monkeypatch.setattr(tables, "known_schema", lambda run: False)  # a schema our SQL was not checked on
    assert store_module.read_sqlite(parse_location(db), lambda con: 1) is None
    assert mx.count_by_state(db) == mx.count_by_state(mx.open_store(db)) == expected[None]


def _chain_runs(n, prefix="file:///bulk", experiment=None):
    """n Trainer runs in chains of 5: each run's model is the next run's input."""
    data = ArtifactSpec(f"{prefix}/d0.csv", properties={"split": "train"})
    previous = data
    for i in range(n):
        model = ArtifactSpec(f"{prefix}/m{i}.joblib", type="SavedModel", properties={"name": "M"})
        yield RunSpec(inputs={"examples": previous}, outputs={"model": model},
                      params={"i": i, "lr": 0.1}, experiment=experiment, name=f"import-{i}")
        previous = model if (i + 1) % 5 else ArtifactSpec(f"{prefix}/d{i + 1}.csv")


def test_bulk_import_is_what_the_api_would_record(db, tmp_path):
    tracker = mx.Tracker(db, experiment="backfill")
    seen = []
    assert record_runs(tracker, _chain_runs(23), batch_size=4, progress=seen.append).recorded == 23
    assert seen == [4, 8, 12, 16, 20, 23]
    mlmd = raw_mlmd(tracker.store)
    executions = sorted(mlmd.get_executions(), key=lambda e: e.id)
    assert len(executions) == 23 and all(e.last_known_state == pb.Execution.COMPLETE for e in executions)
    assert executions[3].custom_properties["i"].int_value == 3
    assert executions[3].properties["state"].string_value == "COMPLETE"
    assert len(mlmd.get_artifacts_by_type("SavedModel")) == 23
    assert len(mlmd.get_artifacts_by_type("DataSet")) == 5  # one per chain of 5
    # A chain crosses batch boundaries: run 6's model leads back to chain 2's dataset.
    newest = mlmd.get_artifacts_by_uri("file:///bulk/m9.joblib")[0]
    up = mx.walk(tracker.store, artifact_id=newest.id, direction="upstream")
    assert sorted(a.uri for a in up.artifacts.values()) == sorted(
        ["file:///bulk/d5.csv"] + [f"file:///bulk/m{i}.joblib" for i in range(5, 10)])
    assert len(up.executions) == 5
    # The same answer as MLMD's own lineage query.
    options = pb.LineageSubgraphQueryOptions(max_num_hops=100, direction=pb.LineageSubgraphQueryOptions.UPSTREAM)
    options.starting_artifacts.filter_query = f"id = {newest.id}"
    expected = mlmd.get_lineage_subgraph(options, ["artifacts", "executions"])
    assert set(up.artifacts) == {a.id for a in expected.artifacts}
    assert set(up.executions) == {e.id for e in expected.executions}
    context = mlmd.get_context_by_type_and_name("Experiment", "backfill")
    assert len(mlmd.get_executions_by_context(context.id)) == 23
    assert check_store(tracker.store) == []


def test_bulk_versions_continue_the_store_and_fingerprints_dedupe(tracker, tmp_path):
    first = tracker.log_dataset(write(tmp_path / "d.csv", "v1"))
    uri, digest = first.uri, first.properties["fingerprint"]
    same = ArtifactSpec(uri, fingerprint=digest)
    changed = ArtifactSpec(uri, fingerprint="sha256:" + "0" * 64)
    unknown = ArtifactSpec(uri)  # no fingerprint: the newest artifact at that URI
    runs = [RunSpec(inputs={"examples": spec}) for spec in (same, changed, unknown)]
    record_runs(tracker, runs, batch_size=2)
    datasets = sorted(raw_mlmd(tracker.store).get_artifacts_by_uri(uri), key=lambda a: a.id)
    assert [a.properties["version"].int_value for a in datasets] == [1, 2]
    first_consumers = raw_mlmd(tracker.store).get_events_by_artifact_ids([first.id])
    assert len(first_consumers) == 1  # the run that gave the same fingerprint reused it
    second_consumers = raw_mlmd(tracker.store).get_events_by_artifact_ids([datasets[1].id])
    assert len(second_consumers) == 2  # the changed content, and the input that named only its URI


def test_bulk_outputs_are_new_artifacts_whatever_their_content(tracker, tmp_path):
    digest = "sha256:" + "1" * 64
    stored = tracker.log_artifact(write(tmp_path / "m.bin", "m"), type="SavedModel")
    runs = [RunSpec(outputs={"model": ArtifactSpec(stored.uri, type="SavedModel", fingerprint=digest)})
            for _ in range(2)]
    reader = RunSpec(type="Evaluator",  # reads the newest artifact of that content at that URI
                     inputs={"model": ArtifactSpec(stored.uri, type="SavedModel", fingerprint=digest)})
    record_runs(tracker, runs + [reader])
    mlmd = raw_mlmd(tracker.store)
    models = sorted(mlmd.get_artifacts_by_uri(stored.uri), key=lambda a: a.id)
    assert [m.properties["version"].int_value for m in models] == [1, 2, 3]
    events = mlmd.get_events_by_artifact_ids([m.id for m in models])
    producers = sorted((e.artifact_id, e.execution_id) for e in events if e.type == pb.Event.OUTPUT)
    assert [a for a, _ in producers] == [models[1].id, models[2].id]  # one producer each
    assert len({e for _, e in producers}) == 2
    [read] = [e.artifact_id for e in events if e.type == pb.Event.INPUT]
    assert read == models[2].id


def test_bulk_refuses_one_output_made_by_two_runs(run_cli, db, tmp_path):
    model = {"uri": "s3://b/m", "type": "SavedModel", "ref": "m"}
    path = _jsonl(tmp_path / "runs.jsonl", [{"outputs": {"model": model}}] * 2)
    result = run_cli("import", path, "--db", db)
    assert (result.code, result.err) == (2, "mlmd-exercise: error: artifact 's3://b/m' is given as the "
                                         "output of two runs: each output is made by one run (give each "
                                         "run's output its own \"ref\")\n")
    assert mx.count_by_state(mx.open_store(db)) == {}


def test_bulk_refuses_bad_input(tracker):
    with pytest.raises(mx.MlmdExerciseError, match="^batch size must be positive, not 0$"):
        record_runs(tracker, [], batch_size=0)
    with pytest.raises(mx.MlmdExerciseError, match="^unknown state 'DONE' of run 'r1'$"):
        record_runs(tracker, [RunSpec(state="DONE", name="r1")])
    assert raw_mlmd(tracker.store).get_executions() == []


def test_an_experiments_own_properties_survive_its_runs(tracker, tmp_path):
    tracker.execution(experiment="noted").finish()
    context = raw_mlmd(tracker.store).get_context_by_type_and_name("Experiment", "noted")
    context.properties["note"].string_value = "baseline for the paper"
    raw_mlmd(tracker.store).put_contexts([context])
    with tracker.execution(experiment="noted",
                           inputs={"examples": tracker.dataset(write(tmp_path / "d.csv", "d"))}):
        pass
    record_runs(tracker, [RunSpec(experiment="noted")])
    context = raw_mlmd(tracker.store).get_context_by_type_and_name("Experiment", "noted")
    assert context.properties["note"].string_value == "baseline for the paper"


def _jsonl(path, runs):
    path.write_text("".join(json.dumps(r) + "\n" for r in runs))
    return path


def test_import_command_reads_json_lines_with_refs(run_cli, db, tmp_path):
    runs = [{"name": f"r{i}", "experiment": "old" if i < 3 else None, "params": {"C": 0.5, "deep": True},
             "inputs": {"examples": {"uri": "s3://bucket/train.csv", "ref": "train"}},
             "outputs": {"model": {"uri": f"s3://bucket/m{i}", "type": "SavedModel", "ref": f"m{i}",
                                   "properties": {"name": "LR"}}}}
            for i in range(7)]
    runs = [{k: v for k, v in r.items() if v is not None} for r in runs]
    result = run_cli("import", _jsonl(tmp_path / "runs.jsonl", runs), "--batch-size", "2",
                     "--experiment", "imported", "--db", db)
    assert result.code == 0 and result.out.startswith("imported 7 runs into ")
    store = mx.open_store(db)
    [train] = raw_mlmd(store).get_artifacts_by_uri("s3://bucket/train.csv")  # one artifact, by ref
    assert len(raw_mlmd(store).get_events_by_artifact_ids([train.id])) == 7
    assert mx.count_by_state(store, "old") == {"COMPLETE": 3}
    assert mx.count_by_state(store, "imported") == {"COMPLETE": 4}
    [r5] = [e for e in raw_mlmd(store).get_executions() if e.name == "r5"]
    assert r5.custom_properties["deep"].bool_value is True


@pytest.mark.parametrize("text, message", [
    ("{not json}\n", "line 1 of '{file}' is not JSON"),
    ("\n[1, 2]\n", "line 2 of '{file}' is not a JSON object"),
    ('{"inputs": {"x": {"path": "a"}}}\n', "line 1 of '{file}': an artifact needs a \"uri\" string"),
    ('{"inputs": {"x": {"uri": "a", "color": 1}}}\n', "line 1 of '{file}': unknown artifact key 'color'"),
    ('{"outputs": []}\n', "line 1 of '{file}': \"outputs\" must map roles to artifacts"),
    ('{"when": 1}\n', "line 1 of '{file}': unknown key 'when'"),
    ('{"state": "DONE", "name": "r"}\n', "unknown state 'DONE' of run 'r'"),
    ('{"params": {"C": [1, 2]}}\n', "line 1 of '{file}': param 'C' is [1, 2]: use a string, a number or true/false"),
    ('{"params": [1]}\n', "line 1 of '{file}': \"params\" must be a JSON object, not [1]"),
    ('{"inputs": {"x": {"uri": "a", "properties": {"n": null}}}}\n',
     "line 1 of '{file}': property 'n' is null: use a string, a number or true/false"),
])
def test_import_names_the_bad_line(run_cli, db, tmp_path, text, message):
    path = tmp_path / "runs.jsonl"
    path.write_text(text)
    result = run_cli("import", path, "--db", db)
    assert result.code == 2 and len(result.err.splitlines()) == 1
    assert message.format(file=path) in result.err
    try:  # refused before anything is written: no store is made, or the one there stays empty
        store = mx.open_store(db)
    except mx.StoreError:
        return
    assert mx.count_by_state(store) == {}


def test_import_of_a_missing_file_is_named(run_cli, db, tmp_path):
    result = run_cli("import", tmp_path / "nope.jsonl", "--db", db)
    assert (result.code, result.err.strip()) == (2, f"mlmd-exercise: error: '{tmp_path / 'nope.jsonl'}' does not exist")


def test_progress_shows_on_a_terminal_after_a_moment(monkeypatch):
    from mlmd_exercise.cli.record import Progress

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    screen = Terminal()
    monkeypatch.setattr(sys, "stderr", screen)
    progress = Progress("importing", delay=0.0)
    progress(1000)
    progress(2000)
    progress.close()
    assert screen.getvalue().startswith("\rimporting: 1,000 runs (")
    assert "\rimporting: 2,000 runs (" in screen.getvalue() and screen.getvalue().endswith("\n")
    quiet = Progress("importing", delay=3600)  # too soon to bother anyone
    quiet(10)
    quiet.close()
    assert screen.getvalue().count("importing") == 2
    with pytest.raises(KeyboardInterrupt):  # an import broken off ends its line too
        with Progress("importing", delay=0.0) as broken:
            broken(5)
            raise KeyboardInterrupt
    assert screen.getvalue().rsplit("\r", 1)[1].startswith("importing: 5 runs (") and screen.getvalue().endswith("/s)\n")
    assert screen.getvalue().count("importing") == 3


def test_an_import_run_again_records_nothing_twice(tracker):
    first = record_runs(tracker, list(_chain_runs(6))[:3])  # broke off after 3 runs
    assert (first.recorded, first.skipped) == (3, 0)
    again = record_runs(tracker, _chain_runs(6), batch_size=2)  # the whole import, again
    assert (again.recorded, again.skipped) == (3, 3)
    mlmd = raw_mlmd(tracker.store)
    assert len(mlmd.get_executions()) == 6
    # Run 3 read the model that the skipped run 2 wrote: the stored one, not a copy.
    [m2] = mlmd.get_artifacts_by_uri("file:///bulk/m2.joblib")
    readers = [e for e in mlmd.get_events_by_artifact_ids([m2.id]) if e.type == pb.Event.INPUT]
    assert [mlmd.get_executions_by_id([e.execution_id])[0].name for e in readers] == ["import-3"]
    assert check_store(tracker.store) == []
    # Names that cannot go into a filter query are looked up one by one.
    odd = RunSpec(name="it's odd", outputs={"m": ArtifactSpec("s3://x/it's", type="SavedModel")})
    assert record_runs(tracker, [odd]).recorded == 1
    assert record_runs(tracker, [odd]).skipped == 1


@pytest.mark.parametrize("error, code, message", [
    (RuntimeError("first line\nsecond line\nthird line"), 1, "run failed: first line (-v shows why)"),
    (KeyError("x"), 1, "run failed: 'x' (-v shows why)"),
    (ValueError(), 1, "run failed: an unexpected error (-v shows why)"),
    (PermissionError(13, "Permission denied", "/data/x.csv"), 2, "'/data/x.csv': Permission denied"),
    (OSError(28, "No space left on device"), 1, "run failed: [Errno 28] No space left on device (-v shows why)"),
])
def test_an_unexpected_failure_is_one_line_with_no_exception_name(run_cli, tmp_path, monkeypatch,
                                                                  error, code, message):
    from mlmd_exercise import workflow

    def broken(*args, **kwargs):
        raise error

    monkeypatch.setattr(workflow, "run_demo", broken)
    result = run_cli("run", "--workdir", tmp_path, "--db", tmp_path / "m.db")
    assert (result.code, result.err) == (code, f"mlmd-exercise: error: {message}\n")
    assert type(error).__name__ not in result.err
    verbose = run_cli("run", "--workdir", tmp_path, "--db", tmp_path / "m.db", "-v")  # -v after it
    assert verbose.code == code and "-v shows why" not in verbose.err  # the traceback is logged


def test_import_keeps_each_runs_original_times(run_cli, db, tmp_path):
    runs = [
        {"name": "old", "started": "2021-03-01T10:00:00Z", "ended": "2021-03-01T11:30:00Z",
         "inputs": {"examples": {"uri": "s3://b/d.csv", "created": "2021-02-01T00:00:00Z"}}},
        {"name": "older", "started": 1577836800000,  # 2020-01-01, in ms
         "outputs": {"model": {"uri": "s3://b/m", "type": "SavedModel", "created": 1577840400000}}},
    ]
    assert run_cli("import", _jsonl(tmp_path / "runs.jsonl", runs), "--db", db).code == 0
    store = mx.open_store(db, create=True)
    mx.Tracker(store).execution(name="today").finish()
    names = [e.properties.get("started_ms") for e in mx.list_executions(store)]
    assert names == [None, 1614592800000, 1577836800000]  # newest first by when they ran
    assert [e.when_ms for e in mx.list_executions(store, limit=2)][1] == 1614592800000
    since = mx.list_executions(store, since_ms=1600000000000)  # 2020-09-13
    assert len(since) == 2 and 1577836800000 not in [e.when_ms for e in since]
    assert [a.uri for a in mx.list_artifacts(store, since_ms=1600000000000)] == ["s3://b/d.csv"]
    [old] = [e for e in mx.list_executions(store) if e.properties.get("ended_ms")]
    assert old.properties["ended_ms"] == 1614598200000
    shown = run_cli("show", "execution", old.id, "--db", db).out.splitlines()
    assert shown[1].split()[0] == "started" and shown[1].split()[1] == time.strftime(
        "%Y-%m-%d", time.localtime(1614592800))
    assert [line.split()[0] for line in shown[1:4]] == ["started", "ended", "recorded"]
    listed = run_cli("ls", "executions", "--db", db).out.splitlines()
    assert listed[-1].split()[-2] == time.strftime("%Y-%m-%d", time.localtime(1577836800))


def test_import_refuses_a_time_it_cannot_read(run_cli, db, tmp_path):
    path = _jsonl(tmp_path / "runs.jsonl", [{"started": "last tuesday"}])
    result = run_cli("import", path, "--db", db)
    assert (result.code, result.err) == (2, f"mlmd-exercise: error: line 1 of '{path}': \"started\" must be "
                                         "an ISO 8601 time like 2023-05-01T12:00:00Z or milliseconds since "
                                         "the epoch, not 'last tuesday'\n")


# -- stale runs, check and verify: by SQL or a page at a time, the same answers ----------------


def _gone_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _running_store(db: str) -> mx.Tracker:
    """RUNNING runs of live, gone and other-host processes, and some that are not RUNNING."""
    me, gone = process.identity(), _gone_pid()
    identities = [
        me,  # alive: this process
        {**me, process.PID: gone},  # gone
        {**me, process.PID: gone},  # gone, the same pid again
        {**me, process.PID_START: me[process.PID_START] + 1},  # its pid was reused
        {**me, process.PID_START: float(me[process.PID_START])},  # alive, start stored as a double
        {**me, process.PID_START: float(me[process.PID_START] + 1)},  # reused, as a double
        {**me, process.HOST: "elsewhere", process.PID: gone},  # another host: not judged
        {process.HOST: me[process.HOST]},  # no pid: not judged
        {},  # no identity at all
    ]
    tracker = mx.Tracker(db)
    runs = [RunSpec(state="RUNNING", params=ident, name=f"run-{i}") for i, ident in enumerate(identities)]
    runs += [RunSpec(state=state, params={**me, process.PID: gone}, name=f"done-{state}")
             for state in ("COMPLETE", "FAILED")]
    record_runs(tracker, runs)
    return tracker


def test_interrupted_runs_by_sql_equal_stale_runs(db, tmp_path, monkeypatch):
    _running_store(db)
    gc.collect()
    expected = [r.id for r in stale_runs(mx.open_store(db))]
    assert len(expected) == 4  # two runs of a gone pid, two of a reused one
    gc.collect()
    assert recovery.interrupted_ids(db) == expected  # by address: SQL
    held = mx.open_store(db)
    assert recovery.interrupted_ids(held) == expected  # SQLite: the API; PostgreSQL: its SQL
    if getattr(held.backend, "_sql", None) is not None:  # the ml-metadata backend on a server
        monkeypatch.setattr(held.backend, "_sql", None)
        assert recovery.interrupted_ids(held) == expected  # PostgreSQL through the API
    assert recovery.interrupted_ids(db) == expected  # SQLite: MLMD is open on the file, so the API
    del held
    gc.collect()

    def no_api(*args, **kwargs):
        raise AssertionError("MLMD's API was used where SQL answers")

    monkeypatch.setattr(recovery, "stale_runs", no_api)
    assert recovery.interrupted_ids(db) == expected


def test_states_counts_the_interrupted_runs_by_sql(run_cli, db):
    _running_store(db)
    gc.collect()
    out = run_cli("states", "--db", db).out.splitlines()
    assert out[-1].startswith("4 of the RUNNING were interrupted: their process is gone")


def test_mlmd_numbers_in_recovery_are_mlmds():
    assert tables._RUNNING == pb.Execution.RUNNING
    assert list(EVENT_TYPES) == [pb.Event.Type.Name(i) for i in range(len(EVENT_TYPES))]
    assert [s.value for s in ExecutionState] == [pb.Execution.State.Name(i) for i in range(len(ExecutionState))]
    assert set(tables.OUTPUT_EVENT_NAMES) == set(OUTPUT_EVENTS)


def _check_whole_store(mlmd) -> list:
    """check_store as it was before paging: every artifact and event at once."""
    problems = []
    artifacts = sorted(mlmd.get_artifacts(), key=lambda a: a.id)
    events = mlmd.get_events_by_artifact_ids([a.id for a in artifacts]) if artifacts else []
    joined = {e.artifact_id for e in events}
    producers = {}
    cached = {x.id for x in mlmd.get_executions() if x.last_known_state == pb.Execution.CACHED}
    for e in events:
        if e.type in (pb.Event.DECLARED_OUTPUT, pb.Event.OUTPUT, pb.Event.INTERNAL_OUTPUT,
                      pb.Event.PENDING_OUTPUT) and e.execution_id not in cached:  # a cached step re-publishes
            producers.setdefault(e.artifact_id, set()).add(e.execution_id)
    for a in artifacts:
        if a.id not in joined:
            problems.append(f"artifact {a.id} ({a.type}, {a.uri}) has no event: no run made or used it")
        elif len(producers.get(a.id, ())) > 1:
            runs = ", ".join(str(i) for i in sorted(producers[a.id]))
            problems.append(f"artifact {a.id} ({a.type}, {a.uri}) is the output of "
                            f"{len(producers[a.id])} executions ({runs}): which run made it is ambiguous")
    for getter, kind in ((mlmd.get_artifact_types, "artifact"), (mlmd.get_execution_types, "execution"),
                         (mlmd.get_context_types, "context")):
        names = [t.name for t in getter()]
        problems += [f"{kind} type '{n}' is registered {names.count(n)} times"
                     for n in sorted(set(names)) if names.count(n) > 1]
    return problems


def _damaged_store(db: str, tmp_path) -> None:
    """Lonely artifacts, outputs of two runs, types registered twice, and healthy runs between."""
    tracker = mx.Tracker(db)
    record_runs(tracker, _chain_runs(12))
    for i in range(3):
        tracker.log_dataset(write(tmp_path / f"lonely{i}.csv", str(i)))
    shared = []
    for i in range(2):
        data = tracker.dataset(write(tmp_path / f"in{i}.csv", str(i)))
        with tracker.execution(inputs={"examples": data}) as run:
            run.log_model(write(tmp_path / f"m{i}.joblib", str(i)), name="LR")
        second = tracker.execution(inputs={"examples": run.outputs["model"]})
        second.finish()
        shared.append(pb.Event(type=pb.Event.PENDING_OUTPUT if i else pb.Event.OUTPUT,
                               artifact_id=run.outputs["model"].id, execution_id=second.id))
    raw_mlmd(tracker.store).put_events(shared)
    tracker.log_dataset(write(tmp_path / "last.csv", "z"))
    mlmd = raw_mlmd(tracker.store)
    # Type names twice: a second version of a type is a second row of that name.
    mlmd.put_artifact_type(pb.ArtifactType(name="DataSet", version="2"))
    mlmd.put_execution_type(pb.ExecutionType(name="Trainer", version="2"))
    mlmd.put_context_type(pb.ContextType(name="Experiment", version="2"))


def test_check_by_sql_and_by_pages_equals_the_whole_store_at_once(db, tmp_path, monkeypatch):
    _damaged_store(db, tmp_path)
    gc.collect()
    expected = _check_whole_store(raw_mlmd(db))
    assert len(expected) == 3 + 2 + 1 + 3
    assert expected[-3:] == ["artifact type 'DataSet' is registered 2 times",
                             "execution type 'Trainer' is registered 2 times",
                             "context type 'Experiment' is registered 2 times"]
    gc.collect()
    if parse_location(db).is_sqlite:
        assert store_module.read_sqlite(parse_location(db), lambda con: 1) == 1  # the SQL path is taken
    assert check_store(db) == expected  # by address: SQL
    monkeypatch.setattr(lineage, "artifact_pages", functools.partial(lineage.artifact_pages, size=2))
    held = mx.open_store(db)
    if hasattr(held.backend, "_sql"):  # ml-metadata's backend: its API, not its SQL
        monkeypatch.setattr(held.backend, "_sql", None)
    assert check_store(held) == expected  # the API, two artifacts at a time
    del held
    gc.collect()


def _verify_whole_store(mlmd) -> dict:
    """verify's JSON as it was before paging: every artifact at once."""
    import re

    from mlmd_exercise.cli import output as out
    from mlmd_exercise.read.verify import OLDER
    from mlmd_exercise.store.mlmd.protos import artifact_record

    def why_not(artifact) -> str:
        value = artifact.custom_properties.get("fingerprint")
        digest = value.string_value if value is not None and value.WhichOneof("value") == "string_value" else ""
        if not artifact.uri.startswith("file://"):
            return "not a local file"
        if not digest:
            return "no fingerprint recorded"
        return "" if re.fullmatch(r"sha256:[0-9a-f]{64}", digest) else "fingerprint not written by mlmd_exercise"

    versions, unchecked = {}, []
    for artifact in mlmd.get_artifacts():
        reason = why_not(artifact)
        if reason:
            unchecked.append((artifact, reason))
        else:
            versions.setdefault((artifact.type_id, artifact.uri), []).append(artifact)
    newest = [max(same, key=lambda a: (a.properties["version"].int_value, a.id)) for same in versions.values()]
    kept = {a.id for a in newest}
    unchecked += [(a, OLDER) for same in versions.values() for a in same if a.id not in kept]
    problems = []
    for artifact in sorted(newest, key=lambda a: a.id):
        path = Path(unquote(urlparse(artifact.uri).path))
        if not path.exists():
            problems.append((artifact, "missing"))
        elif mx.fingerprint(path) != artifact.custom_properties["fingerprint"].string_value:
            problems.append((artifact, "modified"))
    unchecked.sort(key=lambda u: u[0].id)
    return {"checked": len(newest),
            "problems": [{"problem": k, "artifact": out.record_json(artifact_record(a))}
                         for a, k in problems],
            "unchecked": [{"reason": r, "artifact": out.record_json(artifact_record(a))}
                          for a, r in unchecked]}


def test_verify_a_page_at_a_time_equals_the_whole_store_at_once(run_cli, db, tmp_path):
    tracker = mx.Tracker(db)
    record_runs(tracker, _chain_runs(6))  # no fingerprint recorded
    for i in range(3):
        tracker.log_dataset(write(tmp_path / "d.csv", f"version {i}"))  # older versions, then the newest
        tracker.log_dataset(write(tmp_path / f"gone{i}.csv", str(i)))
    with tracker.execution(inputs={"examples": tracker.dataset(tmp_path / "d.csv")}) as run:
        run.log_model(write(tmp_path / "m.joblib", "m"), name="LR")
    write(tmp_path / "gone1.csv", "changed")
    (tmp_path / "gone2.csv").unlink()
    tracker.log_dataset(write(tmp_path / "ok.csv", "ok"))
    del tracker
    gc.collect()
    expected = _verify_whole_store(raw_mlmd(mx.open_store(db)))
    assert expected["checked"] >= 4 and len(expected["problems"]) >= 2 and expected["unchecked"]
    from mlmd_exercise.read.verify import verify, verify_ids, verify_pages

    store = mx.open_store(db)
    report = verify(store)
    checked, problems, unchecked = verify_pages(store, page_size=2)
    assert (report.checked, report.problems, report.unchecked) == (checked, tuple(problems), tuple(unchecked))
    by_reason = {}
    for u in report.unchecked:
        by_reason.setdefault(u.reason, []).append(u.artifact.id)
    assert verify_ids(store, page_size=2) == (report.checked, list(report.problems), by_reason)
    assert len(by_reason) == 2  # no fingerprint; older versions
    assert (report.checked, [(p.kind, p.artifact.id) for p in report.problems],
            [(u.reason, u.artifact.id) for u in report.unchecked]) == (
        expected["checked"], [(p["problem"], p["artifact"]["id"]) for p in expected["problems"]],
        [(u["reason"], u["artifact"]["id"]) for u in expected["unchecked"]])
    del store
    gc.collect()
    # The command streams its JSON: the same text as printing the whole report at once.
    result = run_cli("verify", "--json", "--db", db)
    assert result.code == 1
    assert result.out == json.dumps(expected, indent=2, sort_keys=True) + "\n"


def test_verify_json_with_nothing_unchecked_is_the_same_text(run_cli, db, tmp_path):
    mx.Tracker(db).log_dataset(write(tmp_path / "ok.csv", "ok"))
    gc.collect()
    expected = _verify_whole_store(raw_mlmd(mx.open_store(db)))
    assert expected["unchecked"] == [] and expected["problems"] == []
    assert run_cli("verify", "--json", "--db", db).out == json.dumps(expected, indent=2, sort_keys=True) + "\n"
