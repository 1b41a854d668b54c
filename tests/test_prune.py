"""Prune: what goes and what stays, lineage of every kept artifact unchanged, one
transaction (a kill leaves before or after), a normal MLMD store after, archives."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

import mlmd_exercise as mx
from bundles import DAY, sample, snapshot
from conftest import digest, new_location
from mlmd_exercise.read.check import check_store
from mlmd_exercise.store.backend import Query
from mlmd_exercise.bundle import read_bundle
from mlmd_exercise.write.bulk import ArtifactSpec, RunSpec, record_runs
from mlmd_exercise.write.bundle_import import import_bundle
from mlmd_exercise.write.prune import KILL_POINT, plan_prune, prune

CUTOFF_AGE = 90 * DAY
REMOVING = ["sqlite", "postgresql", "mysql"]  # the databases the native backend writes


@pytest.fixture(params=REMOVING)
def native_db(request, tmp_path) -> str:
    return new_location(request.param, tmp_path)


def _cutoff() -> int:
    return int(time.time() * 1000) - CUTOFF_AGE


def _uris(store, ids) -> set:
    return {a.uri.rsplit("/", 1)[1] for a in store.backend.artifacts(Query(ids=list(ids)))} if ids else set()


def test_plan_removes_old_runs_and_keeps_whatever_kept_artifacts_need(native_db):
    store = mx.open_store(native_db, create=True, backend="native")
    sample(store)
    plan = plan_prune(store, _cutoff())
    assert plan.candidates == 8
    # m2 is read by a new Evaluator; m6 by a new Trainer, so m6's maker and m5's maker stay.
    assert {a.uri.rsplit("/", 1)[1] for a in plan.artifacts} == {"m0.joblib", "m1.joblib", "m3.joblib",
                                                                  "m4.joblib"}
    assert len(plan.executions) == 5 and len(plan.kept_runs) == 3
    assert plan.by_type_and_state() == {("Trainer", "COMPLETE"): 2, ("Trainer", "FAILED"): 2,
                                        ("Trainer", "CANCELED"): 1}


def test_prune_leaves_every_kept_artifacts_lineage_as_it_was(native_db):
    store = mx.open_store(native_db, create=True, backend="native")
    sample(store)
    before = snapshot(store)
    plan = plan_prune(store, _cutoff())
    removed = prune(store, plan)
    assert (removed["Execution"], removed["Artifact"]) == (5, 4)
    after = snapshot(store)
    assert set(after["artifacts"]) == set(before["artifacts"]) - {f"artifact/{a.id}" for a in plan.artifacts}
    for artifact, lineage in after["walks"].items():
        assert lineage == before["walks"][artifact], artifact
    assert after["executions"] == {k: v for k, v in before["executions"].items()
                                   if k not in {f"execution/{e.id}" for e in plan.executions}}
    assert check_store(store) == []
    assert prune(store, plan_prune(store, _cutoff())) ["Execution"] == 0  # nothing more to go


def test_keep_and_states_narrow_what_goes(tmp_path):
    store = mx.open_store(tmp_path / "s.db", create=True, backend="native")
    sample(store)
    m0 = next(a for a in store.backend.artifacts() if a.uri.endswith("m0.joblib"))
    plan = plan_prune(store, _cutoff(), keep=[m0.id])
    assert "m0.joblib" not in _uris(store, [a.id for a in plan.artifacts])
    assert m0.id in plan.protected and len(plan.executions) == 4
    failed = plan_prune(store, _cutoff(), states=["FAILED"])
    assert {e.state for e in failed.executions} == {"FAILED"} and len(failed.executions) == 2
    with pytest.raises(mx.NotFoundError, match="999"):
        plan_prune(store, _cutoff(), keep=[999])


def test_dry_run_is_the_default_and_changes_nothing(run_cli, tmp_path):
    path = tmp_path / "s.db"
    sample(mx.open_store(path, create=True))
    was = digest(path)
    r = run_cli("--db", path, "prune", "--older-than", "90d")
    assert r.code == 0, r.err
    assert "would remove 5 runs and 4 artifacts" in r.out
    assert "Trainer CANCELED: 1" in r.out and "a dry run" in r.out
    assert "m2.joblib; used or made by run" in r.out  # which kept model's lineage a kept run protects
    assert digest(path) == was


def test_prune_yes_leaves_a_store_ml_metadata_reads_whole(run_cli, tmp_path):
    from raw_mlmd import raw_mlmd

    path = tmp_path / "s.db"
    sample(mx.open_store(path, create=True))
    r = run_cli("--db", path, "prune", "--older-than", "90d", "--yes")
    assert r.code == 0, r.err
    assert "removed 5 runs, 4 artifacts" in r.out
    left = mx.open_store(path, backend="native")
    ids = ({a.id for a in left.backend.artifacts()}, {e.id for e in left.backend.executions()})
    events = {(e.artifact_id, e.execution_id, e.type) for e in left.backend.events_by_executions(list(ids[1]))}
    left.backend.close()
    raw = raw_mlmd(path)
    assert {a.id for a in raw.get_artifacts()} == ids[0]
    assert {e.id for e in raw.get_executions()} == ids[1]
    got = raw.get_events_by_execution_ids(list(ids[1]))
    assert {(e.artifact_id, e.execution_id) for e in got} == {(a, x) for a, x, _ in events}
    assert len(raw.get_contexts()) == 2
    r = run_cli("--db", path, "check")
    assert r.code == 0, r.out + r.err


def _state(db: str) -> tuple:
    store = mx.open_store(db, backend="native")
    try:
        return (sorted(a.id for a in store.backend.artifacts()), sorted(e.id for e in store.backend.executions()),
                len(store.backend.events_by_executions([e.id for e in store.backend.executions()])))
    finally:
        store.backend.close()


@pytest.mark.parametrize("table", ["Event", "Artifact"])
def test_a_kill_mid_prune_leaves_the_store_as_before_or_after(native_db, tmp_path, table):
    store = mx.open_store(native_db, create=True, backend="native")
    sample(store)
    store.backend.close()
    before = _state(native_db)
    env = {**os.environ, KILL_POINT: table}
    done = subprocess.run([sys.executable, "-m", "mlmd_exercise", "--db", native_db, "prune", "--older-than", "90d",
                           "--yes"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == -9, done.stderr  # killed inside the transaction
    killed = _state(native_db)
    store = mx.open_store(native_db, create=True, backend="native")
    prune(store, plan_prune(store, _cutoff()))
    store.backend.close()
    after = _state(native_db)
    assert killed in (before, after)
    assert killed == before  # the kill came before the commit


def test_archive_then_import_equals_the_pruned_part(run_cli, tmp_path):
    path, archive = tmp_path / "s.db", tmp_path / "old.bundle"
    source = mx.open_store(path, create=True, backend="native")
    sample(source)
    plan = plan_prune(source, _cutoff())
    identity = source.location.identity
    whole = snapshot(source, key=lambda kind, n: f"{identity}/{kind}/{n.id}")
    source.backend.close()
    r = run_cli("--db", path, "prune", "--older-than", "90d", "--yes", "--archive", archive)
    assert r.code == 0, r.err
    target = mx.open_store(tmp_path / "t.db", create=True)
    import_bundle(target, read_bundle(archive))
    got = snapshot(target)
    gone = {f"{identity}/execution/{e.id}" for e in plan.executions}
    assert got["executions"] == {k: v for k, v in whole["executions"].items() if k in gone}
    assert got["events"] == {e for e in whole["events"] if e[1] in gone}
    assert set(got["artifacts"]) == {f"{identity}/artifact/{i}" for i in plan.touched}


def test_an_archive_that_cannot_be_written_removes_nothing(run_cli, tmp_path):
    path = tmp_path / "s.db"
    sample(mx.open_store(path, create=True))
    was = _state(str(path))
    r = run_cli("--db", path, "prune", "--older-than", "90d", "--yes", "--archive", tmp_path / "no" / "such" / "a.bundle")
    assert r.code == 2
    assert "no/such" in r.err and len(r.err.strip().splitlines()) == 1
    assert _state(str(path)) == was


@pytest.mark.parametrize("damage", ["cut short", "a run left out"])
def test_an_archive_that_does_not_read_back_whole_removes_nothing(damage, tmp_path, monkeypatch):
    from mlmd_exercise.bundle import BundleError
    from mlmd_exercise.read import export

    path, archive = tmp_path / "s.db", tmp_path / "old.bundle"
    sample(mx.open_store(path, create=True, backend="native"))
    was = _state(str(path))
    store = mx.open_store(path, backend="native")
    written = export.export_bundle

    def damaged(store, path, execution_ids, *args, **kwargs):
        if damage == "a run left out":  # a whole bundle, one pruned run short
            return written(store, path, execution_ids[:-1], *args, **kwargs)
        counts = written(store, path, execution_ids, *args, **kwargs)
        lines = path.read_text().splitlines(keepends=True)
        path.write_text("".join(line for line in lines if '"kind":"event"' not in line))
        return counts

    monkeypatch.setattr(export, "export_bundle", damaged)
    plan = plan_prune(store, _cutoff())
    assert plan.executions
    with pytest.raises(BundleError, match="cut short" if damage == "cut short" else "every pruned node"):
        prune(store, plan, archive=archive)
    store.close()
    assert _state(str(path)) == was


def test_list_files_prints_only_files_no_remaining_artifact_refers_to(run_cli, tmp_path):
    files = tmp_path / "files"
    files.mkdir()
    path = tmp_path / "s.db"
    sample(mx.open_store(path, create=True), files=files)
    r = run_cli("--db", path, "prune", "--older-than", "90d", "--list-files")
    assert r.code == 0, r.err
    listed = {line for line in r.out.splitlines() if line.startswith(str(files))}
    assert listed == {str(files / f"m{i}.joblib") for i in (0, 1, 3, 4)}
    assert all((files / f"m{i}.joblib").exists() for i in range(7))


def test_bad_input_is_one_line_and_exit_2(run_cli, tmp_path):
    path = tmp_path / "s.db"
    sample(mx.open_store(path, create=True))
    for args, named in ((["--older-than", "90 days"], "'90 days'"), (["--older-than", "9d", "--state", "DONE"], "'DONE'"),
                        (["--older-than", "9d", "--keep", "999"], "999"),
                        (["--older-than", "9d", "--experiment", "nope"], "nope")):
        r = run_cli("--db", path, "prune", *args)
        assert r.code == 2, (args, r.err)
        assert named in r.err and len(r.err.strip().splitlines()) == 1 and "Traceback" not in r.err


def test_a_store_ml_metadata_wrote_on_mysql_is_pruned_by_the_native_backend(run_cli, tmp_path):
    db = new_location("mysql", tmp_path)
    sample(mx.open_store(db, create=True))  # the default backend: ml-metadata where installed
    r = run_cli("--db", db, "prune", "--older-than", "90d")
    assert r.code == 0 and "would remove 5 runs" in r.out, r.err  # the dry run reads any store
    r = run_cli("--db", db, "prune", "--older-than", "90d", "--yes")
    assert r.code == 0, r.err
    store = mx.open_store(db)
    assert check_store(store) == []
    assert "would remove 0 runs and 0 artifacts" in run_cli("--db", db, "prune", "--older-than", "90d").out


def test_the_ml_metadata_backend_refuses_to_remove(tmp_path):
    pytest.importorskip("ml_metadata")
    store = mx.open_store(tmp_path / "s.db", create=True, backend="mlmd")
    sample(store)
    plan = plan_prune(store, _cutoff())  # planning reads any backend
    assert len(plan.executions) == 5
    with pytest.raises(mx.StoreError, match="native backend"):
        prune(store, plan)
    assert len(store.backend.executions()) == 10


_KILLED_RUN = """
import sys, mlmd_exercise as mx
t = mx.Tracker(sys.argv[1], experiment="killed")
t.execution("Trainer", inputs={"examples": t.dataset(sys.argv[2])})
print("started", flush=True)
sys.stdin.read()
"""


def _a_run_whose_process_is_gone(db: str, data) -> int:
    """A RUNNING run whose writer was killed (SIGKILL: it never finished it): its id."""
    proc = subprocess.Popen([sys.executable, "-c", _KILLED_RUN, db, str(data)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline() == "started\n"
    proc.kill()
    proc.wait()
    store = mx.open_store(db)
    [run] = [e for e in mx.list_executions(store, state="RUNNING") if e.properties.get("pid") == proc.pid]
    return run.id


def test_a_run_still_going_is_never_pruned_and_keeps_what_it_uses(db, tmp_path):
    """A training that started before the cut-off and is still RUNNING (its process alive: this
    one) is spared with its input; one whose process is gone is pruned like any other."""
    data, gone_data = tmp_path / "live.csv", tmp_path / "gone.csv"
    data.write_text("a,b\n1,2\n")
    gone_data.write_text("a,b\n3,4\n")
    tracker = mx.Tracker(db, experiment="long")
    live = tracker.execution("Trainer", inputs={"examples": tracker.dataset(data)})
    gone = _a_run_whose_process_is_gone(db, gone_data)
    store = mx.open_store(db)
    plan = plan_prune(store, int(time.time() * 1000) + 60_000)  # every run started before the cut-off
    assert plan.spared_running == [live.id]
    assert [e.id for e in plan.executions] == [gone]
    assert data.as_uri() not in {a.uri for a in plan.artifacts}
    assert gone_data.as_uri() in {a.uri for a in plan.artifacts}
    live.finish()  # the spared run ends as if nothing happened
    assert mx.count_by_state(mx.open_store(db)) == {"COMPLETE": 1, "RUNNING": 1}


def test_prune_yes_says_which_running_runs_it_spared(run_cli, tmp_path):
    path, data = tmp_path / "s.db", tmp_path / "d.csv"
    data.write_text("x\n")
    tracker = mx.Tracker(mx.open_store(path, create=True, backend="native"), experiment="long")  # prune's backend
    live = tracker.execution("Trainer", inputs={"examples": tracker.dataset(data)})
    time.sleep(1.1)  # so that the run started more than --older-than 1s ago
    r = run_cli("--db", path, "prune", "--older-than", "1s", "--yes")
    assert r.code == 0, r.err
    assert "0 runs started before" in r.out and "removing 0 runs and 0 artifacts" in r.out
    assert (f"spared: 1 run still RUNNING, whose process may be alive (runs {live.id}; `abandon` closes those "
            "whose process is gone)") in r.out
    with live:
        pass
    assert mx.count_by_state(mx.open_store(path, backend="native")) == {"COMPLETE": 1}


def test_a_run_removed_while_it_ran_says_so_in_one_line_at_its_end(tmp_path):
    """Another program (an older prune, a hand-made DELETE) removed a run while it ran: its end
    says which run is gone and that its outputs were not recorded, not an unpacking error."""
    store = mx.open_store(tmp_path / "s.db", create=True, backend="native")
    tracker = mx.Tracker(store, experiment="gone")
    model = tmp_path / "m.joblib"
    model.write_text("m")
    with pytest.raises(mx.MlmdExerciseError) as caught:
        with tracker.execution("Trainer") as run:
            run.log_metric("loss", 0.5)
            store.backend.delete_nodes([run.id], [])
            run.log_model(model)
    assert str(caught.value) == (f"run {run.id} is no longer in {store}: it was removed while it ran (a prune, "
                                 "or another program); its outputs were not recorded")
    assert mx.list_executions(store) == [] and mx.list_artifacts(store) == []


def test_the_plan_says_why_it_keeps_each_artifact_as_a_reason_not_text(tmp_path):
    from mlmd_exercise.write.prune import KeepReason, Kept

    store = mx.open_store(tmp_path / "s.db", create=True, backend="native")
    sample(store)
    by_uri = {a.uri.rsplit("/", 1)[1]: a for a in store.backend.artifacts()}
    evaluator = next(e for e in store.backend.executions() if e.type == "Evaluator")
    plan = plan_prune(store, _cutoff(), keep=[by_uri["m0.joblib"].id])
    why = {artifact.uri.rsplit("/", 1)[1]: kept for artifact, kept in plan.protected.values()}
    assert why["m2.joblib"] == Kept(KeepReason.USED, evaluator.id)  # the new Evaluator reads it
    assert str(why["m2.joblib"]) == f"used or made by run {evaluator.id}, which stays"
    assert why["m0.joblib"] == Kept(KeepReason.KEEP) and str(why["m0.joblib"]) == "kept by --keep"
    # an old run's output newer than the cut-off keeps the run
    old = int(time.time() * 1000) - 200 * 86400 * 1000
    record_runs(mx.Tracker(store, experiment="e3"), [RunSpec(
        inputs={"examples": ArtifactSpec("file:///late-input.csv", created_ms=old)},
        outputs={"model": ArtifactSpec("file:///late.joblib", type="SavedModel")}, started_ms=old)])
    plan = plan_prune(store, _cutoff())
    why = {artifact.uri.rsplit("/", 1)[1]: kept for artifact, kept in plan.protected.values()}
    assert why["late.joblib"] == Kept(KeepReason.NEWER) and str(why["late.joblib"]) == "newer than the cut-off"
    assert "late-input.csv" not in _uris(store, [a.id for a in plan.artifacts])  # upstream of it: kept


def test_a_prune_a_few_ids_to_a_statement_removes_the_same(native_db, tmp_path):
    """delete_nodes binds a chunk of ids to each statement (the dialect's ids_per_query), inside
    its one transaction: two to a statement remove the same rows as all at once, histories too."""
    from mlmd_exercise.history import Point

    engine = native_db.split(":", 1)[0] if "://" in native_db else "sqlite"
    old = int(time.time() * 1000) - 200 * DAY
    results = []
    for location, per_statement in ((native_db, None), (new_location(engine, tmp_path), 2)):
        store = mx.open_store(location, create=True, backend="native")
        sample(store)
        record_runs(mx.Tracker(store), [RunSpec(outputs={"model": ArtifactSpec(f"file:///h/{i}.joblib",
                                                                                type="SavedModel", created_ms=old)},
                                                started_ms=old, metrics={"loss": [Point(0, old, 1.0 / (i + 1))]})
                                        for i in range(5)])
        plan = plan_prune(store, _cutoff())
        store.backend.ids_per_query = per_statement or store.backend.ids_per_query
        removed = prune(store, plan)
        b = store.backend
        results.append((removed, sorted(a.uri for a in b.artifacts()), len(b.executions()), len(b.contexts()),
                        len(b.events_by_executions([e.id for e in b.executions()])), check_store(store)))
    assert results[0][0]["Execution"] == 10 and results[0][0]["Context"] == 5, results[0]
    assert results[1] == results[0]
