"""Stores other programs wrote: MLMD's guide, TFX-like, Kubeflow-like, a big fan-out, odd values.

Each store is built with the raw ml-metadata API in a subprocess (foreign_stores.py),
which also reads back, with raw ml-metadata, what the CLI's answers are checked against.
Every query command must then answer correctly, exit 0 or 2 (1 only for verify and
check finding problems, never with an exception's name), and leave the store file
byte-identical with no file created beside it. The reading tests run on SQLite files and
on MySQL databases too (Kubeflow Pipelines keeps its store in MySQL); the writing ones and
the fan-out's drawing speed on SQLite only.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import shutil
import sqlite3
import subprocess
import time
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import foreign_stores as fs
from conftest import digest, mlmd_python, server_admin, server_base, tracked
from mlmd_exercise.records import Kind
from mlmd_exercise.store.backend import Query
from mlmd_exercise.store import mysql
from mlmd_exercise.cli import main as cli
from raw_mlmd import raw_mlmd

HERE = Path(__file__).parent
SAMPLE = 30  # nodes per kind checked one by one (all of them, but in the fan-out)


def build(kind: str, path: Path) -> dict:
    # ml-metadata writes these stores: in this Python, or in the other virtualenv's where this
    # one has none (Python 3.12+: the native backend then reads what ml-metadata wrote).
    proc = subprocess.run([mlmd_python(), str(HERE / "foreign_stores.py"), kind, str(path)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout)


_BUILT: dict = {}  # kind -> the store built for this module


def _built(kind: str, tmp_path_factory, backend: str = "sqlite") -> dict:
    """A store of this kind (in a directory of its own, or a database of its own on the MySQL
    test server) and what raw MLMD reads from it."""
    if (kind, backend) not in _BUILT:
        if backend == "sqlite":
            db = tmp_path_factory.mktemp(kind) / "metadata.db"
        else:
            db = tracked(f"{server_base(backend)}{kind}_{uuid.uuid4().hex[:12]}")
        _BUILT[(kind, backend)] = {"kind": kind, "db": db, "facts": build(kind, db),
                                   "out": tmp_path_factory.mktemp("pictures")}
    return _BUILT[(kind, backend)]


# Kubeflow Pipelines keeps its store in MySQL: every reading test also runs on MySQL stores
# that ml-metadata built there, and must give the same answers.
# (The fan-out, 2,000 executions, is about drawing speed: it would add 20 s on MySQL for no
# other reading than the smaller stores do.)
@pytest.fixture(scope="module", params=[(kind, "sqlite") for kind in fs.KINDS]
                + [(kind, "mysql") for kind in fs.KINDS if kind != "fanout"],
                ids=lambda p: p[0] if p[1] == "sqlite" else f"{p[0]}-{p[1]}")
def built(request, tmp_path_factory):
    return _built(*request.param[:1], tmp_path_factory, request.param[1])


@pytest.fixture(scope="module")
def guide(tmp_path_factory):
    return _built("guide", tmp_path_factory)


@pytest.fixture(scope="module")
def tfx(tmp_path_factory):
    return _built("tfx", tmp_path_factory)


@pytest.fixture(scope="module")
def fanout(tmp_path_factory):
    return _built("fanout", tmp_path_factory)


def run(*args) -> tuple:
    """The CLI in this process: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli.main([str(a) for a in args])
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 1
    return code, out.getvalue(), err.getvalue()


def ok_json(*args):
    code, out, err = run(*args, "--json")
    assert code == 0, err
    return json.loads(out)


def _sample(ids):
    return sorted(ids, key=int)[:SAMPLE]


def test_states_and_unknown_executions(built):
    facts, db = built["facts"], built["db"]
    assert ok_json("states", "--db", db) == facts["states"]
    listed = {e["id"]: e["state"] for e in ok_json("ls", "executions", "--db", db)}
    assert listed == {int(i): e["state"] for i, e in facts["executions"].items()}
    unknown = [e["id"] for e in ok_json("ls", "executions", "--state", "UNKNOWN", "--db", db)]
    assert sorted(unknown) == sorted(int(i) for i, e in facts["executions"].items() if e["state"] == "UNKNOWN")


def test_artifacts_with_every_value_as_json(built):
    facts, db = built["facts"], built["db"]
    listed = {a["id"]: a for a in ok_json("ls", "artifacts", "--db", db)}
    assert set(listed) == {int(i) for i in facts["artifacts"]}
    for i, expected in facts["artifacts"].items():
        got = listed[int(i)]
        assert (got["type"], got["uri"], got["state"]) == (expected["type"], expected["uri"], expected["state"])
        assert got["properties"] == expected["properties"]


def test_every_context_is_listed_with_its_type(built):
    facts, db = built["facts"], built["db"]
    listed = ok_json("ls", "experiments", "--db", db)
    assert sorted((c["name"], c["type"], c["executions"], c["artifacts"]) for c in listed) == sorted(
        (c["name"], c["type"], len(c["executions"]), len(c["artifacts"])) for c in facts["contexts"])
    assert ok_json("ls", "contexts", "--db", db) == listed
    for context in facts["contexts"][:SAMPLE]:
        by_name = ["--experiment", context["name"], "--context-type", context["type"], "--db", db]
        assert sorted(e["id"] for e in ok_json("ls", "executions", *by_name)) == context["executions"]
        assert sorted(a["id"] for a in ok_json("ls", "artifacts", *by_name)) == context["artifacts"]
        counts = ok_json("states", *by_name)
        assert sum(counts.values()) == len(context["executions"])


def test_show_gives_every_event_and_context(built):
    facts, db = built["facts"], built["db"]
    for kind, nodes, side in (("execution", facts["executions"], 1), ("artifact", facts["artifacts"], 0)):
        for node_id in _sample(nodes):
            shown = ok_json("show", kind, node_id, "--db", db)
            assert shown["node"]["properties"] == nodes[node_id]["properties"]
            expected = sorted(e for e in facts["events"] if e[side] == int(node_id))
            assert sorted([e["artifact_id"], e["execution_id"], e["event"], e["role"]]
                          for e in shown["events"]) == expected
            member = [c for c in facts["contexts"] if int(node_id) in c[kind + "s"]]
            assert len(shown["experiments"]) == len(member)
            code, text, err = run("show", kind, node_id, "--db", db)
            assert code == 0 and err == "" and "vNone" not in text


def test_one_executions_inputs_and_outputs_follow_every_kind_of_event(built):
    facts, db = built["facts"], built["db"]
    for node_id in _sample(facts["executions"]):
        one = ok_json("lineage", node_id, "--db", db)
        events = [e for e in facts["events"] if e[1] == int(node_id)]
        assert sorted([i["artifact"]["id"], i["event"], i["role"]] for i in one["inputs"]) == sorted(
            [e[0], e[2], e[3]] for e in events if e[2].endswith("INPUT"))
        assert sorted([o["artifact"]["id"], o["event"], o["role"]] for o in one["outputs"]) == sorted(
            [e[0], e[2], e[3]] for e in events if e[2].endswith("OUTPUT"))


def _reused(facts: dict) -> dict:
    """From what raw ml-metadata reads: each CACHED execution's outputs and the executions
    (not CACHED) that output the same artifacts: {cached id: [(artifact id, maker id)]}."""
    state = {int(i): e["state"] for i, e in facts["executions"].items()}
    outputs = [(a, x) for a, x, kind, _ in facts["events"] if kind.endswith("OUTPUT")]
    return {x: sorted((a, m) for a, m in outputs if m != x and state[m] != "CACHED" and (a, x) in outputs)
            for x in sorted(i for i, st in state.items() if st == "CACHED")}


def test_a_cached_step_says_whose_outputs_it_reused(built):
    """TFX and Kubeflow record a step they did not run again as a CACHED execution whose OUTPUT
    events re-publish what an earlier one made: lineage, show, JSON and the picture say so."""
    facts, db = built["facts"], built["db"]
    reused = _reused(facts)
    if built["kind"] in ("tfx", "kubeflow"):
        assert reused and all(reused.values())  # the stores built as TFX and Kubeflow write them have one
    for cached, pairs in reused.items():
        assert [(r["artifact"], r["made_by"]) for r in ok_json("lineage", cached, "--db", db)["reused"]] == pairs
        assert [(r["artifact"], r["made_by"]) for r in ok_json("show", "execution", cached, "--db", db)["reused"]] \
            == pairs
        code, text, err = run("lineage", cached, "--db", db)
        for artifact_id, maker in pairs:
            assert f"  cached: not run again; reused artifact {artifact_id} that execution {maker} made" in text
            code, shown, err = run("show", "artifact", artifact_id, "--db", db)
            assert re.search(rf"OUTPUT +\S+ +execution {cached} +\(cached: re-published\)$", shown, re.M), shown
            assert not re.search(rf"execution {maker} +\(cached", shown)
            code, walked, err = run("lineage", "--artifact", artifact_id, "--direction", "upstream", "--db", db)
            assert re.search(rf"#{cached} +--\S+--> +.* \(cached: re-published\)$", walked, re.M), walked
        code, dot, err = run("graph", "-o", built["out"] / f"cached{cached}.dot", "--expand", "--db", db)
        source = (built["out"] / f"cached{cached}.dot").read_text()
        dashed = re.findall(rf"^\te{cached} -> a(\d+) \[[^\]]*style=dashed", source, re.M)
        assert sorted(int(a) for a in dashed) == sorted(a for a, _ in pairs)
    for execution_id in map(int, _sample(i for i, e in facts["executions"].items() if e["state"] != "CACHED")):
        assert "reused" not in ok_json("lineage", execution_id, "--db", db)  # its keys as they were
    from mlmd_exercise.store import open_store
    from mlmd_exercise.web import pages, views

    store = open_store(db)  # the explorer's run page says it too
    try:
        for cached, pairs in reused.items():
            page = pages.node_page(store, "execution", cached)
            assert page.reused == tuple(pairs)
            html = views.node_view(page)
            for artifact_id, maker in pairs:
                assert re.search(rf'>artifact #{artifact_id}</a> that <a href="[^"]*/execution/{maker}">', html)
    finally:
        store.close()


def test_every_state_mlmd_defines_is_counted_and_listed(built):
    facts, db = built["facts"], built["db"]
    for state in ("UNKNOWN", "NEW", "RUNNING", "COMPLETE", "FAILED", "CACHED", "CANCELED"):
        listed = sorted(e["id"] for e in ok_json("ls", "executions", "--state", state, "--db", db))
        assert listed == sorted(int(i) for i, e in facts["executions"].items() if e["state"] == state), state
        assert ok_json("states", "--db", db).get(state, 0) == len(listed)


def test_walks_find_what_get_lineage_subgraph_finds(built):
    db = built["db"]
    for key, expected in built["facts"]["walks"].items():
        kind, node_id, direction = key.split()
        found = ok_json("lineage", f"--{kind}", node_id, "--direction", direction, "--db", db)
        assert sorted(a["id"] for a in found["artifacts"]) == expected["artifacts"], key
        assert sorted(e["id"] for e in found["executions"]) == expected["executions"], key


def _queries(built):
    db, facts, out = built["db"], built["facts"], built["out"]
    first_a = _sample(facts["artifacts"])[:1] or ["1"]
    first_e = _sample(facts["executions"])[:1] or ["1"]
    context = facts["contexts"][0]["name"] if facts["contexts"] else "none"
    for json_flag in ([], ["--json"]):
        yield ["states", *json_flag]
        yield ["states", "--experiment", context, *json_flag]
        for what in ("artifacts", "executions", "experiments", "contexts"):
            yield ["ls", what, *json_flag]
        yield ["ls", "executions", "--state", "UNKNOWN", *json_flag]
        yield ["ls", "artifacts", "--experiment", context, *json_flag]
        yield ["show", "artifact", first_a[0], *json_flag]
        yield ["show", "execution", first_e[0], *json_flag]
        yield ["lineage", first_e[0], *json_flag]
        yield ["lineage", "--artifact", first_a[0], *json_flag]
        yield ["verify", *json_flag]
        yield ["check", *json_flag]
    for name in ("g.svg", "g.dot", "g.png"):
        yield ["graph", "-o", out / name]
    yield ["graph", "--clusters", "-o", out / "clusters.svg"]
    yield ["graph", "--artifact", first_a[0], "--clusters", "-o", out / "one.svg"]
    yield ["states", "--db", db, "--chart", out / "states.png"]
    yield ["lineage", "999999"]
    yield ["show", "artifact", "999999"]
    yield ["ls", "executions", "--experiment", "no such context"]


def test_verify_checks_only_our_fingerprints_and_says_why_not(built):
    facts, db = built["facts"], built["db"]
    code, out, err = run("verify", "--json", "--db", db)
    report = json.loads(out)
    assert code == 0 and report["checked"] == 0 and report["problems"] == []
    reasons = {u["artifact"]["id"]: u["reason"] for u in report["unchecked"]}
    assert sorted(reasons) == sorted(int(i) for i in facts["artifacts"])
    for i, artifact in facts["artifacts"].items():
        fingerprint = artifact["properties"].get("fingerprint")
        expected = ("not a local file" if not artifact["uri"].startswith("file://")
                    else "no fingerprint recorded" if fingerprint is None
                    else "fingerprint not written by mlmd_exercise")
        assert reasons[int(i)] == expected
    code, text, err = run("verify", "--db", db)
    assert "vNone" not in text and text.endswith("checked 0 artifacts: all match\n")


def _state(db) -> tuple:
    """What a reading command must leave as it was: the file and its folder, or on MySQL
    the checksum of every table's rows."""
    if isinstance(db, Path):
        return digest(db), sorted(p.name for p in db.parent.iterdir())
    admin = server_admin(db)
    try:
        return tuple(admin.execute(f"CHECKSUM TABLE {mysql.quote(t)} EXTENDED")[0][1] for t in mysql.TABLES)
    finally:
        admin.close()


def test_query_commands_exit_0_or_2_and_leave_the_store_as_it_was(built):
    db = built["db"]
    before = _state(db)
    for args in _queries(built):
        code, out, err = run(*args, "--db", db)
        allowed = {0, 2} | ({1} if args[0] in ("verify", "check") else set())
        assert code in allowed, (args, err)
        assert "failed:" not in err and "Error:" not in err and "Traceback" not in err, (args, err)
        if code == 2:
            assert len(err.splitlines()) == 1, (args, err)
    assert _state(db) == before


def test_the_dot_file_is_valid_and_every_name_reaches_the_picture_as_stored(built):
    db, out, facts = built["db"], built["out"], built["facts"]
    assert run("graph", "-o", out / "all.dot", "--expand", "--db", db)[0] == 0
    subprocess.run(["dot", "-Tsvg", "-o", str(out / "from_dot.svg"), str(out / "all.dot")], check=True)
    source = (out / "all.dot").read_text()
    # Every node and every event of the store, each once.
    drawn = source[:source.find("subgraph cluster_legend")]  # the legend's samples aside
    assert drawn.count("shape=note") == len(facts["artifacts"])
    assert drawn.count("shape=box") == len(facts["executions"])
    assert len(re.findall(r"^\t[ae]\d+ -> [ae]\d+ ", source, re.M)) == len(facts["events"])
    code, text, err = run("graph", "-o", out / "all.svg", "--expand", "--max-nodes", "10000", "--db", db)
    assert code == 0, err
    lines = [t.text or "" for t in ET.parse(out / "all.svg").iter("{http://www.w3.org/2000/svg}text")]
    titles = [t.text or "" for t in ET.parse(out / "all.svg").iter("{http://www.w3.org/2000/svg}title")]
    if built["kind"] == "odd":
        for name in fs.ODD_STRINGS:
            if "\n" in name or "\t" in name:
                continue
            assert any(line == name or line.startswith(name + " #") for line in lines), name
        assert "<class 'pandas.DataFrame'> #3" in lines  # a type that looks like HTML, as text
        assert any(line == "<stdin>" for line in lines)  # a role that looks like HTML, as text
    if built["kind"] == "kubeflow":
        assert "train-small #3" in lines and "ingest-données 📥 #1" in lines  # display and task names
        long = [line for line in lines if line.startswith("a-very-long-step-name")]
        assert long and all(len(line) <= 45 for line in long)  # cut in the picture...
    if built["kind"] == "tfx":
        assert "Trainer #4" in lines and "CsvExampleGen #1" in lines  # the last part of the class path
        assert "examples/1" in lines  # an unnamed artifact: the end of its URI, not just "1"
    assert titles  # nodes are there


def test_a_fan_out_is_drawn_as_one_node_quickly(fanout):
    db, out = fanout["db"], fanout["out"]
    started = time.monotonic()
    code, text, err = run("graph", "-o", out / "fan.svg", "--db", db)
    assert code == 0, err
    assert time.monotonic() - started < 120  # not 4,000 nodes through dot (minutes): holds when loaded
    assert text.splitlines()[0] == f"lineage graph of 1,991 artifacts and 2,000 executions: {out / 'fan.svg'}"
    assert "drawn as one: 1,990 COMPLETE Trainer executions with the same inputs and their 1,990 outputs" in text
    assert "drawn as one: 10 FAILED Trainer executions" in text
    svg = (out / "fan.svg").read_text()
    assert "Trainer x1,990" in svg and "SavedModel x1,990" in svg and "Trainer x10" in svg
    code, text, err = run("graph", "-o", out / "all.dot", "--expand", "--db", db)
    assert code == 0 and "drawn as one" not in text
    source = (out / "all.dot").read_text()
    assert source[:source.find("subgraph cluster_legend")].count("shape=box") == 2000


# -- writing into stores other programs made ------------------------------------------


def _copy(built, tmp_path) -> Path:
    path = tmp_path / "copy.db"
    shutil.copy(built["db"], path)
    return path


def _types(path: Path) -> dict:
    """Artifact types as raw MLMD sees them, read in a subprocess (never with sqlite3 here)."""
    code = ("import json, sys, foreign_stores as fs; s = fs.open_raw(sys.argv[1]); "
            "print(json.dumps(fs.facts(s, walks=0)['artifact_types']))")
    proc = subprocess.run([mlmd_python(), "-c", code, str(path)], capture_output=True, text=True,
                          cwd=HERE, check=True)
    return json.loads(proc.stdout)


def test_run_into_the_guides_store_changes_none_of_its_types(guide, tmp_path):
    built = guide
    db = _copy(built, tmp_path)
    code, out, err = run("run", "--workdir", tmp_path, "--db", db)
    assert code == 0, err
    types = _types(db)
    for name, declared in built["facts"]["artifact_types"].items():
        assert types[name] == declared, name  # DataSet keeps day and split, and gets no version
    import mlmd_exercise as mx

    # Read through the package (on either backend), as the types above were by raw MLMD.
    store = mx.open_store(db)
    [ours] = [a for a in store.backend.artifacts(Query(type_id=store.catalog.type_id(Kind.ARTIFACT, "DataSet")))
              if a.id != 1]
    assert ours.custom["version"] == 1 and ours.custom["split"] == "train"  # custom: the type has neither


def test_import_into_a_tfx_store_links_known_uris_and_changes_no_type(tfx, tmp_path):
    built = tfx
    db = _copy(built, tmp_path)
    examples_uri = built["facts"]["artifacts"]["1"]["uri"]
    runs = [
        {"name": "mine-1", "type": "Trainer",
         "inputs": {"examples": {"uri": examples_uri}},
         "outputs": {"model": {"uri": "s3://mine/model/1", "type": "Model"}}},
        {"name": "mine-2", "type": "Trainer",
         "inputs": {"examples": {"uri": "s3://mine/new-examples", "type": "Examples",
                                 "fingerprint": "sha256:" + "1" * 64}},
         "outputs": {"model": {"uri": "s3://mine/model/2", "type": "Model"}}},
    ]
    lines = tmp_path / "runs.jsonl"
    lines.write_text("".join(json.dumps(r) + "\n" for r in runs))
    code, out, err = run("import", lines, "--db", db)
    assert code == 0, err
    types = _types(db)
    for name, declared in built["facts"]["artifact_types"].items():
        assert types[name] == declared, name  # Examples, Model: as TFX made them
    import mlmd_exercise as mx

    store = mx.open_store(db)
    assert len(store.backend.artifacts(Query(uris=[examples_uri]))) == 1  # linked, not recorded again
    run1 = store.backend.execution_by_name("Trainer", "mine-1")
    assert run1 is not None
    inputs = [e.artifact_id for e in store.backend.events_by_executions([run1.id]) if e.type == "INPUT"]
    assert inputs == [1]
    [new] = store.backend.artifacts(Query(uris=["s3://mine/new-examples"]))
    # Our counter is ours: 1, not TFX's data version 7 + 1, and TFX's own property is not set
    # (the types, as raw MLMD reads them, are unchanged above).
    assert new.custom["version"] == 1


# -- the exercise's own database ------------------------------------------------------

EXERCISE_TABLES = """
CREATE TABLE artifacts (id INTEGER NOT NULL, type VARCHAR, uri VARCHAR, version INTEGER,
                        name VARCHAR, split VARCHAR, PRIMARY KEY (id));
CREATE TABLE executions (id INTEGER NOT NULL, type VARCHAR, state VARCHAR, PRIMARY KEY (id));
CREATE TABLE events (id INTEGER NOT NULL, artifact_id INTEGER, execution_id INTEGER, type VARCHAR,
                     PRIMARY KEY (id), FOREIGN KEY(artifact_id) REFERENCES artifacts (id),
                     FOREIGN KEY(execution_id) REFERENCES executions (id));
"""


def exercise_db(path: Path, runs: int = 2) -> Path:
    """A database as the exercise's script leaves it after `runs` runs (it registers a new
    dataset row each run), plus a run that was killed while RUNNING and a dataset no run used."""
    con = sqlite3.connect(path)
    con.executescript(EXERCISE_TABLES)
    data, model = "file:///home/me/ex/data/train_dataset.csv", "file:///home/me/ex/models/trained_model.joblib"
    for _ in range(runs):
        a = con.execute("INSERT INTO artifacts (type, uri, version, split) VALUES ('DataSet', ?, 1, 'train')",
                        (data,)).lastrowid
        e = con.execute("INSERT INTO executions (type, state) VALUES ('Trainer', 'RUNNING')").lastrowid
        con.execute("INSERT INTO events (artifact_id, execution_id, type) VALUES (?, ?, 'INPUT')", (a, e))
        m = con.execute("INSERT INTO artifacts (type, uri, version, name) VALUES "
                        "('SavedModel', ?, 1, 'LogisticRegressionModel')", (model,)).lastrowid
        con.execute("INSERT INTO events (artifact_id, execution_id, type) VALUES (?, ?, 'OUTPUT')", (m, e))
        con.execute("UPDATE executions SET state = 'COMPLETED' WHERE id = ?", (e,))
    con.execute("INSERT INTO executions (type, state) VALUES ('Trainer', 'RUNNING')")
    con.execute("INSERT INTO artifacts (type, uri, version, split) VALUES ('DataSet', 'file:///lost.csv', 1, 'test')")
    con.commit()
    con.close()
    return path


def test_import_from_the_exercises_database_is_rerun_safe(tmp_path):
    old = exercise_db(tmp_path / "old.db")
    before = digest(old)
    store = tmp_path / "store" / "metadata.db"
    store.parent.mkdir()
    code, out, err = run("import", "--from-exercise", old, "--db", store)
    assert code == 0, err
    assert out.splitlines()[0].startswith(f"imported 3 runs from {old} into {store}")
    assert "not imported: 1 artifact that no event joins to a run" in out
    assert ok_json("states", "--db", store) == {"RUNNING": 1, "COMPLETE": 2}
    artifacts = ok_json("ls", "artifacts", "--db", store)
    datasets = [a for a in artifacts if a["type"] == "DataSet"]
    models = sorted((a for a in artifacts if a["type"] == "SavedModel"), key=lambda a: a["id"])
    assert len(datasets) == 1 and datasets[0]["properties"]["split"] == "train"  # one file, one artifact
    assert [(m["properties"]["name"], m["properties"]["version"]) for m in models] == [
        ("LogisticRegressionModel", 1), ("LogisticRegressionModel", 2)]
    assert ok_json("lineage", "--artifact", models[1]["id"], "--direction", "upstream", "--db", store)[
        "artifacts"][0]["uri"] == "file:///home/me/ex/data/train_dataset.csv"
    code, out, err = run("import", "--from-exercise", old, "--db", store)
    assert code == 0 and "(3 were already there)" in out and out.startswith("imported 0 runs")
    assert len(ok_json("ls", "artifacts", "--db", store)) == 3
    assert digest(old) == before and sorted(p.name for p in tmp_path.iterdir()) == ["old.db", "store"]


@pytest.mark.parametrize("setup, message", [
    ("CREATE TABLE things (id INTEGER)", "'{path}' is not the exercise's database: it has no table 'artifacts'"),
    ("CREATE TABLE artifacts (id INTEGER, type TEXT); CREATE TABLE executions (id, type, state); "
     "CREATE TABLE events (id, artifact_id, execution_id, type)",
     "'{path}' is not the exercise's database: table 'artifacts' has no column 'uri'"),
    (None, "'{path}' does not exist"),
])
def test_import_from_something_else_is_one_line(tmp_path, setup, message):
    path = tmp_path / "other.db"
    if setup is not None:
        con = sqlite3.connect(path)
        con.executescript(setup)
        con.close()
    code, out, err = run("import", "--from-exercise", path, "--db", tmp_path / "s.db")
    assert code == 2 and out == "" and err == f"mlmd-exercise: error: {message.format(path=path)}\n"
    assert not (tmp_path / "s.db").exists()


def test_a_context_name_shared_by_several_types(tmp_path):
    import mlmd_exercise as mx
    from raw_mlmd import pb

    db = tmp_path / "m.db"
    tracker = mx.Tracker(db, experiment="same")
    run_id = tracker.execution().id
    tracker.execution(experiment="other").finish()
    mlmd = raw_mlmd(tracker.store)
    contexts = []
    for ctype in ("pipeline", "node"):
        type_id = mlmd.put_context_type(pb.ContextType(name=ctype))
        contexts += mlmd.put_contexts([pb.Context(type_id=type_id, name="shared"),
                                       pb.Context(type_id=type_id, name="same")])
    mlmd.put_attributions_and_associations([], [pb.Association(execution_id=run_id, context_id=contexts[0])])
    code, out, err = run("states", "--experiment", "shared", "--db", db)
    assert (code, out) == (2, "") and err == (
        f"mlmd-exercise: error: context name 'shared' is ambiguous in {db}: contexts of types "
        "'node' and 'pipeline' have it; name the type with --context-type\n")
    assert ok_json("states", "--experiment", "shared", "--context-type", "pipeline", "--db", db) == {"RUNNING": 1}
    assert ok_json("states", "--experiment", "shared", "--context-type", "node", "--db", db) == {}
    assert ok_json("states", "--experiment", "same", "--db", db) == {"RUNNING": 1}  # our Experiment wins
    code, out, err = run("ls", "executions", "--experiment", "shared", "--context-type", "nope", "--db", db)
    assert code == 2 and err == f"mlmd-exercise: error: no context type named 'nope' in {db}\n"
    code, out, err = run("graph", "--clusters", "pipeline", "-o", tmp_path / "g.dot", "--db", db)
    assert code == 0 and 'label="pipeline shared"' in (tmp_path / "g.dot").read_text()
    code, out, err = run("graph", "--clusters", "nope", "-o", tmp_path / "g.dot", "--db", db)
    assert code == 2 and err == f"mlmd-exercise: error: no context type named 'nope' in {db}\n"
