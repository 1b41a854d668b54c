"""Bundle import under faults: a bad bundle is refused whole, before anything is written
(exit 2, one line naming the record's line, the store as it was), and a killed import
leaves whole runs, never an artifact without its run; importing again finishes the job."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import mlmd_exercise as mx
from bundles import sample, snapshot
from conftest import new_location
from mlmd_exercise.bundle import read_bundle
from mlmd_exercise.read.export import export_bundle
from mlmd_exercise.store.backend import Query
from mlmd_exercise.write.bulk import ArtifactSpec, RunSpec, record_runs


def _lines(path: Path) -> list:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> Path:
    """A bundle of the sample store's ten runs, written once."""
    folder = tmp_path_factory.mktemp("good")
    source = mx.open_store(folder / "s.db", create=True)
    sample(source)
    path = folder / "all.bundle"
    export_bundle(source, path, [e.id for e in source.backend.executions(Query())])
    return path


def _first(records: list, kind: str, **where) -> int:
    """The index of the first record of `kind` matching `where` (its line is index + 1)."""
    return next(i for i, r in enumerate(records) if r.get("kind") == kind
                and all(r.get(k) == v for k, v in where.items()))


def _deep(levels: int) -> dict:
    value: object = 1
    for _ in range(levels):
        value = {"a": value}
    return value  # type: ignore[return-value]


def _bad(records: list, case: str) -> tuple:
    """`records` spoilt as `case` says; the index of the record to blame and what the
    message says of it."""
    records = [dict(r) for r in records]
    if case == "unknown event type":
        i = _first(records, "event")
        records[i]["type"] = "EATEN"
        return records, i, "an event of type 'EATEN', which MLMD does not know"
    if case == "unknown state":
        i = _first(records, "execution")
        records[i]["state"] = "SNOOZING"
        return records, i, f"execution {records[i]['id']} in state 'SNOOZING', which MLMD does not know"
    if case == "event naming a missing artifact":
        i = _first(records, "event")
        records[i]["artifact"] = 4242
        return records, i, "an event naming artifact 4242, which is not in the bundle"
    if case == "event naming a missing execution":
        i = _first(records, "event")
        records[i]["execution"] = 4242
        return records, i, "an event naming execution 4242, which is not in the bundle"
    if case == "duplicate id":
        first = _first(records, "artifact")
        i = _first(records, "artifact") + 1
        records[i]["id"] = records[first]["id"]
        return records, i, f"artifact {records[first]['id']} a second time \\(a duplicate id\\)"
    if case == "context not in the bundle":
        i = _first(records, "execution")
        records[i]["contexts"] = [777]
        return records, i, f"execution {records[i]['id']} in context 777, which is not in the bundle"
    if case == "undeclared type":
        i = _first(records, "artifact")
        records[i]["type"] = "Pudding"
        return records, i, f"artifact {records[i]['id']} of type 'Pudding', which the bundle does not declare"
    if case == "900-deep struct":
        i = _first(records, "execution")
        records[i]["custom"] = {**records[i]["custom"], "deep": _deep(900)}
        return records, i, f"execution {records[i]['id']} whose property 'deep' is nested more than 32 levels deep"
    if case == "missing field":
        i = _first(records, "artifact")
        del records[i]["uri"]
        return records, i, "an artifact without 'uri'"
    if case == "history of a missing run":
        i = _first(records, "end")
        records.insert(i, {"kind": "history", "execution": 4242, "key": "loss", "points": [[0, 1, 0.5]]})
        records[i + 1] = {**records[i + 1], "histories": records[i + 1].get("histories", 0) + 1}
        return records, i, "a history of execution 4242, which is not in the bundle"
    raise AssertionError(case)


CASES = ["unknown event type", "unknown state", "event naming a missing artifact", "event naming a missing execution",
         "duplicate id", "context not in the bundle", "undeclared type", "900-deep struct", "missing field",
         "history of a missing run"]


def _write(path: Path, records: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


@pytest.mark.parametrize("case", CASES)
def test_a_bad_bundle_is_refused_whole_naming_its_line_and_the_store_is_unchanged(run_cli, good, tmp_path, case):
    target = tmp_path / "t.db"
    store = mx.open_store(target, create=True)
    record_runs(mx.Tracker(store, experiment="mine"), [RunSpec(
        inputs={"examples": ArtifactSpec("file:///d.csv")}, outputs={"model": ArtifactSpec("file:///m.joblib")})])
    before = snapshot(store)
    records, blamed, says = _bad(_lines(good), case)
    path = _write(tmp_path / "bad.bundle", records)
    r = run_cli("--db", target, "import", path)
    assert r.code == 2, r.err
    assert len(r.err.strip().splitlines()) == 1, r.err
    assert "Traceback" not in r.err and not re.search(r"\b[A-Z]\w*(Error|Exception)\b", r.err)  # no class name
    # the file, the line, what is wrong with the record; then that nothing was imported
    assert re.search(f"'{re.escape(str(path))}' line {blamed + 1} is {says}.*: refused, nothing imported$",
                     r.err.strip()), r.err
    assert snapshot(mx.open_store(target)) == before
    assert "imported" not in r.out


def test_a_refused_bundle_leaves_a_server_store_as_it_was(db, run_cli, good, tmp_path):
    store = mx.open_store(db, create=True)
    record_runs(mx.Tracker(store, experiment="mine"), [RunSpec(outputs={"model": ArtifactSpec("file:///m.joblib")})])
    before = snapshot(store)
    records, blamed, _ = _bad(_lines(good), "event naming a missing execution")
    r = run_cli("--db", db, "import", _write(tmp_path / "bad.bundle", records))
    assert r.code == 2 and f"line {blamed + 1} is an event naming execution 4242" in r.err
    assert snapshot(mx.open_store(db)) == before


def test_a_struct_too_deep_for_mlmd_is_refused_when_logged(store):
    with pytest.raises(mx.MlmdExerciseError, match="'p' = .*: a dict nested more than 32 levels deep"):
        record_runs(mx.Tracker(store), [RunSpec(params={"p": _deep(33)})])
    assert store.backend.executions(Query()) == []
    record_runs(mx.Tracker(store), [RunSpec(params={"p": _deep(32)})])  # the deepest MLMD reads back
    [run] = store.backend.executions(Query())
    assert run.properties["p"] == _deep(32) or run.custom["p"] == _deep(32)


def test_a_bundle_that_is_not_utf8_or_too_deep_to_parse_names_its_line(run_cli, good, tmp_path):
    text = good.read_bytes().splitlines(keepends=True)
    bad = tmp_path / "binary.bundle"
    bad.write_bytes(b"".join(text[:3]) + b'{"kind": "artifact", "uri": "\xff\xfe"}\n' + b"".join(text[3:]))
    r = run_cli("--db", tmp_path / "t.db", "import", bad)
    assert r.code == 2 and "line 4 is not UTF-8 (byte 30 of the line)" in r.err and len(r.err.strip().splitlines()) == 1
    deep = tmp_path / "deep.bundle"
    deep.write_bytes(text[0] + b"[" * 100_000 + b"]" * 100_000 + b"\n")
    r = run_cli("--db", tmp_path / "t.db", "import", deep)
    assert r.code == 2 and "line 2 is nested too deeply to read" in r.err
    assert not (tmp_path / "t.db").exists()


# -- a kill mid-import --------------------------------------------------------------------

_CHILD = textwrap.dedent("""
    import sys
    import mlmd_exercise as mx
    from mlmd_exercise.bundle import read_bundle
    from mlmd_exercise.write.bundle_import import import_bundle

    store = mx.open_store(sys.argv[1], create=True)
    backend = store.backend
    real = {name: getattr(backend, name) for name in ("put_lineage", "put_execution", "put_artifacts")}

    def reporting(name):
        def call(*args, **kw):
            got = real[name](*args, **kw)
            print("committed", name, flush=True)  # the parent kills us now
            sys.stdin.read()  # and we wait for it, doing nothing more
            return got
        return call

    for name in real:
        setattr(backend, name, reporting(name))
    import_bundle(store, read_bundle(sys.argv[2]), batch_size=int(sys.argv[3]))
""")


def _chain_bundle(folder: Path, runs: int) -> Path:
    """A bundle of `runs` runs in two experiments, each reading the model the one before made."""
    source = mx.open_store(folder / "chain.db", create=True)
    specs, model = [], ArtifactSpec("file:///data.csv")
    for i in range(runs):
        made = ArtifactSpec(f"file:///m{i}.joblib", type="SavedModel")
        specs.append(RunSpec(inputs={"model": model}, outputs={"model": made}, params={"i": i},
                             experiment="a" if i % 2 else "b"))
        model = made
    record_runs(mx.Tracker(source, experiment="a"), specs)
    path = folder / "chain.bundle"
    export_bundle(source, path, [e.id for e in source.backend.executions(Query())])
    return path


def test_an_import_killed_after_its_first_commit_leaves_whole_runs_and_importing_again_finishes(db, tmp_path):
    bundle = _chain_bundle(tmp_path, 12)
    child = subprocess.Popen([sys.executable, "-c", _CHILD, db, str(bundle), "3"], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env={**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)})
    try:
        said = child.stdout.readline()  # waits as long as the machine needs: no timing
        assert said.startswith("committed put_lineage"), said + child.stderr.read()
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    store = mx.open_store(db, create=True)  # writable: importing again below
    runs = store.backend.executions(Query())
    arts = store.backend.artifacts(Query())
    assert len(runs) == 3  # one batch, whole
    with_events = {e.artifact_id for e in store.backend.events_by_artifacts([a.id for a in arts])}
    assert {a.id for a in arts} == with_events  # no artifact without its run
    assert {len(store.backend.events_by_executions([x.id])) for x in runs} == {2}  # each run whole
    from mlmd_exercise.write.bundle_import import import_bundle

    again = import_bundle(store, read_bundle(bundle))
    assert again.executions == 9 and again.already["executions"] == 3
    engine = db.split(":", 1)[0] if "://" in db else "sqlite"
    whole = mx.open_store(new_location({"postgresql": "postgresql", "mysql": "mysql"}.get(engine, "sqlite"),
                                       tmp_path), create=True)
    import_bundle(whole, read_bundle(bundle))
    assert snapshot(store) == snapshot(whole)


def test_a_bundle_at_odds_with_the_store_is_refused_before_anything_is_written(db, run_cli, good, tmp_path):
    """What only the target store can tell (here a type it declares otherwise) is looked up
    before the first write too."""
    from mlmd_exercise.records import Kind, PropertyType

    store = mx.open_store(db, create=True)
    records = _lines(good)
    t = _first(records, "type", of="artifact", name="DataSet")
    key = next(iter(records[t]["properties"]))
    store.backend.put_type(Kind.ARTIFACT, "DataSet", {key: PropertyType.INT if records[t]["properties"][key] != "INT"
                                                      else PropertyType.STRING})
    before = snapshot(store), [store.backend.types(k) for k in Kind]
    r = run_cli("--db", db, "import", good)
    assert r.code == 2 and len(r.err.strip().splitlines()) == 1, r.err
    assert f"line {t + 1} of the bundle declares property '{key}' of artifact type 'DataSet' as" in r.err
    after = mx.open_store(db)
    assert (snapshot(after), [after.backend.types(k) for k in Kind]) == before  # not even a type made


def test_an_artifact_named_as_one_the_store_has_is_refused_before_anything_is_written(db, run_cli, good, tmp_path):
    from mlmd_exercise.store.backend import NewArtifact

    records = _lines(good)
    other = mx.open_store(db, create=True)
    record_runs(mx.Tracker(other), [RunSpec(outputs={"model": ArtifactSpec("file:///x", type="SavedModel")})])
    [taken] = other.backend.artifacts(Query())
    a = _first(records, "artifact", type="SavedModel")
    records[a]["name"] = "best"
    other.backend.put_artifacts([NewArtifact(taken.type_id, "SavedModel", "file:///y", name="best")])
    before = snapshot(other)
    r = run_cli("--db", db, "import", _write(tmp_path / "named.bundle", records))
    assert r.code == 2 and f"line {a + 1} of the bundle is artifact {records[a]['id']} named 'best'" in r.err, r.err
    assert snapshot(mx.open_store(db)) == before
