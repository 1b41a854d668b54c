"""Bundles: export, import into another store, round trip node by node, idempotence,
overlapping bundles, lineage joined across imports, refusals."""

from __future__ import annotations

import json

import pytest

import mlmd_exercise as mx
from bundles import sample, snapshot
from conftest import new_location
from mlmd_exercise.read.lineage import walk
from mlmd_exercise.store.backend import Query
from mlmd_exercise.bundle import FORMAT_VERSION, MAGIC, BundleError, read_bundle
from mlmd_exercise.read.export import export_bundle, select_executions
from mlmd_exercise.write.bundle_import import import_bundle


def _all(store) -> list:
    return [e.id for e in store.backend.executions(Query())]


def _other(db: str, tmp_path) -> str:
    """Another new store on the same database server as `db` (or another file)."""
    scheme = db.split(":", 1)[0] if "://" in db else "sqlite"
    return new_location({"postgresql": "postgresql", "mysql": "mysql"}.get(scheme, "sqlite"), tmp_path)


def test_round_trip_equals_node_by_node_and_in_every_walk(db, tmp_path):
    source = mx.open_store(db, create=True)
    sample(source)
    path = tmp_path / "all.bundle"
    counts = export_bundle(source, path, _all(source))
    assert (counts.executions, counts.artifacts) == (10, 10)
    target = mx.open_store(_other(db, tmp_path), create=True)
    got = import_bundle(target, read_bundle(path))
    assert (got.executions, got.artifacts, got.events) == (10, 10, counts.events)
    identity = source.location.identity
    before = snapshot(source, key=lambda kind, n: f"{identity}/{kind}/{n.id}")
    after = snapshot(target)
    assert after == before
    # Ids are the target's own, and each node says where it came from.
    assert all(a.custom["mlmd_exercise_origin"].startswith(identity + "/artifact/")
               for a in target.backend.artifacts())


def test_same_bundle_twice_and_overlapping_bundles_record_each_node_once(db, tmp_path):
    source = mx.open_store(db, create=True)
    sample(source)

    first, second = tmp_path / "e1.bundle", tmp_path / "all.bundle"
    export_bundle(source, first, select_executions(source, context_id=source.catalog.context_id("e1")))
    export_bundle(source, second, _all(source))
    target = mx.open_store(_other(db, tmp_path), create=True)
    import_bundle(target, read_bundle(first))
    again = import_bundle(target, read_bundle(first))
    assert (again.executions, again.artifacts, again.events) == (0, 0, 0)
    rest = import_bundle(target, read_bundle(second))
    assert rest.executions == 10 - len(read_bundle(first).executions)
    assert rest.already["executions"] == len(read_bundle(first).executions)
    identity = source.location.identity
    assert snapshot(target) == snapshot(source, key=lambda kind, n: f"{identity}/{kind}/{n.id}")


def test_lineage_joins_across_imports(tmp_path):
    """A later bundle's run reads an artifact an earlier bundle brought: one artifact, and
    the walk from the new run's output reaches the earlier run."""
    source = mx.open_store(tmp_path / "s.db", create=True)
    sample(source)
    model2 = next(a for a in source.backend.artifacts() if a.uri.endswith("m2.joblib"))
    trainer = [e.id for e in source.backend.executions() if e.type == "Trainer"]
    evaluator = [e.id for e in source.backend.executions() if e.type == "Evaluator"]
    export_bundle(source, tmp_path / "a.bundle", trainer)
    export_bundle(source, tmp_path / "b.bundle", evaluator)
    target = mx.open_store(tmp_path / "t.db", create=True)
    import_bundle(target, read_bundle(tmp_path / "b.bundle"))  # the reader first: order does not matter
    import_bundle(target, read_bundle(tmp_path / "a.bundle"))
    assert len([a for a in target.backend.artifacts() if a.uri == model2.uri]) == 1
    metrics = next(a for a in target.backend.artifacts() if a.type == "Metrics")
    graph = walk(target, artifact_id=metrics.id, direction="upstream")
    assert {a.uri for a in graph.artifacts.values()} >= {model2.uri, "file:///nowhere/data.csv"}
    assert {e.type for e in graph.executions.values()} == {"Trainer", "Evaluator"}


def test_import_back_into_its_own_store_records_nothing(tmp_path):
    source = mx.open_store(tmp_path / "s.db", create=True)
    sample(source)
    export_bundle(source, tmp_path / "a.bundle", _all(source))
    got = import_bundle(source, read_bundle(tmp_path / "a.bundle"))
    assert (got.executions, got.artifacts) == (0, 0)
    assert len(_all(source)) == 10


def test_cli_export_and_import(run_cli, tmp_path):
    src, dst, bundle = tmp_path / "s.db", tmp_path / "t.db", tmp_path / "e2.bundle"
    sample(mx.open_store(src, create=True))
    r = run_cli("--db", src, "export", "-o", bundle, "--experiment", "e2")
    assert r.code == 0, r.err
    assert "exported 4 runs" in r.out
    r = run_cli("--db", dst, "import", bundle)
    assert r.code == 0, r.err
    assert "imported 4 runs" in r.out
    r = run_cli("--db", dst, "import", bundle)
    assert r.code == 0 and "4 runs were already there" in r.out
    # --artifact: the runs upstream of one artifact
    store = mx.open_store(src)
    new = next(a for a in store.backend.artifacts() if a.uri.endswith("new.joblib"))
    r = run_cli("--db", src, "export", "-o", tmp_path / "up.bundle", "--artifact", new.id)
    assert r.code == 0 and "exported 3 runs" in r.out, r.out + r.err
    r = run_cli("--db", src, "export", "-o", tmp_path / "x.bundle", "--since", "yesterday")
    assert r.code == 2 and "--since 'yesterday'" in r.err and "Traceback" not in r.err


def test_a_bundle_of_a_newer_format_is_refused_with_one_line(run_cli, tmp_path):
    path = tmp_path / "new.bundle"
    path.write_text(json.dumps({MAGIC: FORMAT_VERSION + 1, "source": "x"}) + "\n")
    r = run_cli("--db", tmp_path / "t.db", "import", path)
    assert r.code == 2
    assert len(r.err.strip().splitlines()) == 1
    assert f"format version {FORMAT_VERSION + 1}" in r.err
    assert not (tmp_path / "t.db").exists()  # refused before any store is made


def test_a_bundle_cut_short_is_refused(tmp_path):
    source = mx.open_store(tmp_path / "s.db", create=True)
    sample(source)
    path = tmp_path / "a.bundle"
    export_bundle(source, path, _all(source))
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:-3]))
    with pytest.raises(BundleError, match="cut short"):
        read_bundle(path)


@pytest.mark.parametrize("lines, message", [
    ([], "is empty, not a bundle"),
    (['{"source": "x"}'], f"is not a bundle \\(its first line has no '{MAGIC}'\\)"),
    ([json.dumps({MAGIC: FORMAT_VERSION}), "{oops"], "line 2 is not JSON: not a bundle, or damaged"),
    ([json.dumps({MAGIC: FORMAT_VERSION}), '{"kind": "cake"}'], "line 2 holds an unknown record kind 'cake'"),
    ([json.dumps({MAGIC: FORMAT_VERSION}),
      '{"kind": "end", "executions": 0, "artifacts": 0, "events": 0, "contexts": 0}', '{"kind": "type"}'],
     "line 3 follows the end line: damaged"),
])
def test_a_file_that_is_not_a_whole_bundle_is_named_with_what_is_wrong(tmp_path, lines, message):
    path = tmp_path / "b.bundle"
    path.write_text("".join(line + "\n" for line in lines))
    with pytest.raises(BundleError, match=f"^'{path}' {message}"):
        read_bundle(path)


def test_export_and_prune_name_a_bad_value_in_one_line(run_cli, tmp_path):
    path = tmp_path / "s.db"
    sample(mx.open_store(path, create=True))
    cases = [(["export", "-o", tmp_path / "x.bundle", "--since", "last tuesday"],
              "--since 'last tuesday' is neither a date"),
             (["prune", "--older-than", "9d", "--dry-run", "--yes"], "give --dry-run or --yes, not both"),
             # the path given, not the temporary file written beside it
             (["export", "-o", tmp_path / "no" / "dir" / "x.bundle"],
              f"error: '{tmp_path / 'no' / 'dir' / 'x.bundle'}': No such file or directory"),
             (["prune", "--older-than", "9d", "--yes", "--archive", tmp_path / "no" / "old.bundle"],
              f"error: '{tmp_path / 'no' / 'old.bundle'}': No such file or directory")]
    for args, message in cases:
        r = run_cli("--db", path, *args)
        assert r.code == 2 and message in r.err and len(r.err.strip().splitlines()) == 1, (args, r.err)
    gone = tmp_path / "gone.db"
    r = run_cli("--db", gone, "prune", "--older-than", "9d", "--yes")
    assert r.code == 2 and f"no store at '{gone}'" in r.err and not gone.exists()


def test_json_lines_of_runs_still_import(run_cli, tmp_path):
    runs = tmp_path / "runs.jsonl"
    runs.write_text(json.dumps({"inputs": {"examples": {"uri": "file:///d.csv"}},
                                "outputs": {"model": {"uri": "file:///m.joblib", "type": "SavedModel"}}}) + "\n")
    r = run_cli("--db", tmp_path / "t.db", "import", runs)
    assert r.code == 0 and "imported 1 run " in r.out, r.out + r.err


def test_round_trip_in_a_store_of_many_contexts(tmp_path, monkeypatch):
    """Where a store has many contexts (a TFX store: one per pipeline run), memberships are
    read run by run's contexts instead of context by context: the same bundle."""
    from mlmd_exercise.read import export

    source = mx.open_store(tmp_path / "s.db", create=True)
    sample(source)
    export_bundle(source, tmp_path / "few.bundle", _all(source))
    monkeypatch.setattr(export, "FEW_CONTEXTS", 1)
    export_bundle(source, tmp_path / "many.bundle", _all(source))
    few, many = read_bundle(tmp_path / "few.bundle"), read_bundle(tmp_path / "many.bundle")
    assert (few.contexts, few.artifacts, few.executions, few.events) == \
        (many.contexts, many.artifacts, many.executions, many.events)


def test_a_laptops_runs_into_a_server_store(db, tmp_path):
    """Export from an SQLite file, import into each database: the same nodes and lineage."""
    source = mx.open_store(tmp_path / "laptop.db", create=True)
    sample(source)
    export_bundle(source, tmp_path / "a.bundle", _all(source))
    target = mx.open_store(db, create=True)
    import_bundle(target, read_bundle(tmp_path / "a.bundle"))
    identity = source.location.identity
    assert snapshot(target) == snapshot(source, key=lambda kind, n: f"{identity}/{kind}/{n.id}")


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_round_trip_on_the_native_backend(engine, tmp_path):
    source = mx.open_store(new_location(engine, tmp_path), create=True, backend="native")
    sample(source)
    export_bundle(source, tmp_path / "a.bundle", _all(source))
    target = mx.open_store(new_location(engine, tmp_path), create=True, backend="native")
    import_bundle(target, read_bundle(tmp_path / "a.bundle"))
    assert import_bundle(target, read_bundle(tmp_path / "a.bundle")).executions == 0
    identity = source.location.identity
    assert snapshot(target) == snapshot(source, key=lambda kind, n: f"{identity}/{kind}/{n.id}")


def _exported_and_copied(tmp_path):
    """The sample store exported whole to a.bundle, and a copy of the store's file, opened."""
    import shutil

    source = mx.open_store(tmp_path / "s.db", create=True)
    sample(source)
    export_bundle(source, tmp_path / "a.bundle", _all(source))
    source.backend.close()
    shutil.copyfile(tmp_path / "s.db", tmp_path / "copy.db")
    return mx.open_store(tmp_path / "copy.db", create=True)


def test_import_into_a_copy_of_the_source_records_nothing_twice(tmp_path):
    """Runs found by type and name (a copy of the store has other origins) bring their
    artifacts: none is recorded again, and `check` finds no artifact without events."""
    from mlmd_exercise.read.check import check_store

    copy = _exported_and_copied(tmp_path)
    got = import_bundle(copy, read_bundle(tmp_path / "a.bundle"))
    assert (got.executions, got.artifacts, got.events) == (0, 0, 0)
    assert got.already["artifacts"] == 10
    assert len(copy.backend.artifacts()) == 10
    assert check_store(copy) == []


def test_metric_histories_and_nan_travel_in_a_bundle_between_databases(db, tmp_path):
    """Format 2: a history line per run and metric; NaN and the infinities as {"double": ...}."""
    import math

    from mlmd_exercise.read.history import metric_history

    source = mx.Tracker(tmp_path / "source.db")
    with source.execution(params={"lr": float("nan")}) as run:
        for step in range(5):
            run.log_metrics({"loss": 1.0 / (step + 1), "odd": float("inf") if step % 2 else float("nan")})
    path = tmp_path / "b.jsonl"
    counts = export_bundle(source.store, path, [run.id])
    assert counts.histories == 2
    text = path.read_text()
    assert "NaN" not in text.replace('"NaN"', "")  # only as a string: the file is strict JSON
    [json.loads(line) for line in text.splitlines()]
    target = mx.open_store(db, create=True)
    assert import_bundle(target, read_bundle(path)).histories == 2
    [x] = target.backend.executions()
    assert [p.value for p in metric_history(target, x.id, "loss")] == [1.0 / (s + 1) for s in range(5)]
    odd = [p.value for p in metric_history(target, x.id, "odd")]
    assert math.isnan(odd[0]) and odd[1] == float("inf") and math.isnan(x.properties["lr"])
    assert import_bundle(target, read_bundle(path)).histories == 0  # the run is there: nothing twice


def test_a_bundle_of_format_1_still_imports(store, tmp_path):
    path = tmp_path / "v1.jsonl"
    lines = [{MAGIC: 1, "source": "sqlite://old/x.db", "written_ms": 1, "selection": {}},
             {"kind": "type", "of": "execution", "id": 1, "name": "Trainer", "properties": {"state": "STRING"}},
             {"kind": "execution", "id": 1, "type": "Trainer", "state": "COMPLETE", "name": "old-run",
              "properties": {"state": "COMPLETE"}, "custom": {"acc": 0.5, "metric_names": "acc"}, "created_ms": 5,
              "updated_ms": 5, "external_id": None, "origin": "sqlite://old/x.db/execution/1", "contexts": []},
             {"kind": "end", "executions": 1, "artifacts": 0, "events": 0, "contexts": 0}]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    assert import_bundle(store, read_bundle(path)).executions == 1
    from mlmd_exercise.read.history import metric_history

    [x] = store.backend.executions()
    assert [(p.step, p.value) for p in metric_history(store, x.id, "acc")] == [(0, 0.5)]  # its one value


def test_an_import_a_few_ids_to_a_query_records_the_same(db, tmp_path):
    """The import asks the store a query's worth of origins, names and runs' events at a time
    (the backend's ids_per_query) and reads the bundle's records again a batch at a time: two to a
    query and two runs to a batch record the same as all at once, into a new store and onto part
    of the bundle there already."""
    source = mx.open_store(db, create=True)
    sample(source)
    first, second = tmp_path / "e1.bundle", tmp_path / "all.bundle"
    export_bundle(source, first, select_executions(source, context_id=source.catalog.context_id("e1")))
    export_bundle(source, second, _all(source))
    got = []
    for few in (False, True):
        target = mx.open_store(_other(db, tmp_path), create=True)
        if few:
            target.backend.ids_per_query = 2
        counts = [import_bundle(target, read_bundle(path), batch_size=2 if few else 500) for path in (first, second)]
        got.append((counts, snapshot(target)))
    assert got[0][0][1].executions == 10 - len(read_bundle(first).executions)
    assert got[1] == got[0]


def test_an_import_into_a_copy_a_few_ids_to_a_query_records_nothing_twice(tmp_path):
    """Runs found by type and name, and their artifacts through their events, two to a query."""
    copy = _exported_and_copied(tmp_path)
    copy.backend.ids_per_query = 2
    got = import_bundle(copy, read_bundle(tmp_path / "a.bundle"), batch_size=2)
    assert (got.executions, got.artifacts, got.events, got.already) == \
        (0, 0, 0, {"artifacts": 10, "contexts": 2, "executions": 10})


def test_a_bundle_changed_after_it_was_checked_is_refused_where_it_is_read_again(tmp_path):
    """The import reads the records again from the file: one no longer where the check saw it
    stops the import in one line (here before anything is written: the strings' check reads first)."""
    source = mx.open_store(tmp_path / "s.db", create=True)
    sample(source)
    path = tmp_path / "a.bundle"
    export_bundle(source, path, _all(source))
    bundle = read_bundle(path)
    header, rest = path.read_text().split("\n", 1)
    path.write_text(header + "\n\n" + rest)  # every record a line further on
    target = mx.open_store(tmp_path / "t.db", create=True)
    with pytest.raises(BundleError) as e:
        import_bundle(target, bundle)
    assert str(e.value) == f"'{path}' changed since it was checked: nothing more imported from it"
    assert target.backend.executions() == [] and target.backend.artifacts() == []
