"""cli.py's query commands on one store: multi-hop lineage, ls, show, states, verify."""

from __future__ import annotations

import json
import sys
import time

import pytest

import mlmd_exercise as mx
from conftest import store_matrix, write
from mlmd_exercise import workflow

RECORD_KEYS = {"id", "type", "uri", "state", "properties", "created_ms"}
EXECUTION_KEYS = {"id", "type", "state", "properties", "created_ms", "name"}
EDGE_KEYS = {"artifact_id", "execution_id", "kind", "role", "event"}
ODD = "'; DROP TABLE Artifact; --"


def _world(address, workdir):
    """The exercise in 'default', breast_cancer in 'cancer', a failed run in an odd experiment."""
    store = mx.open_store(address, create=True)
    exercise = workflow.run_demo(store, workdir)
    cancer = workflow.run_demo(store, workdir, experiment="cancer", dataset="breast_cancer")
    tracker = mx.Tracker(store, experiment=ODD)
    with pytest.raises(RuntimeError):
        with tracker.execution("Trainer", inputs={"examples": exercise.datasets[0]}):
            raise RuntimeError("out of memory")
    # "db" is what a user passes to --db; "shown" is how messages name it (password masked).
    return {"db": address, "shown": str(store), "exercise": exercise, "cancer": cancer}


world = store_matrix(_world)


def _json(result):
    assert result.code == 0, result.err
    return json.loads(result.out)


def test_lineage_upstream_from_metrics_reaches_both_splits(run_cli, world):
    metrics = world["cancer"].metrics
    result = run_cli("lineage", "--artifact", metrics.id, "--direction", "upstream", "--db", world["db"])
    assert result.code == 0
    lines = result.out.splitlines()
    assert lines[0] == f"upstream lineage of artifact {metrics.id}, all hops: 4 artifacts, 2 executions"
    assert sum("DataSet v1" in line for line in lines) == 2
    assert any("--metrics-->" in line and f"Metrics #{metrics.id}" in line for line in lines)


def test_lineage_json_keys_are_stable(run_cli, world):
    metrics = world["cancer"].metrics
    data = _json(run_cli("lineage", "--artifact", metrics.id, "--direction", "upstream",
                         "--hops", "2", "--json", "--db", world["db"]))
    assert set(data) == {"start", "direction", "hops", "artifacts", "executions", "events", "same_content"}
    assert (data["start"], data["direction"], data["hops"]) == (
        {"kind": "artifact", "id": metrics.id}, "upstream", 2)
    assert all(set(a) == RECORD_KEYS for a in data["artifacts"])
    assert all(set(e) == EXECUTION_KEYS for e in data["executions"])
    assert all(set(e) == EDGE_KEYS for e in data["events"])
    assert sorted(a["type"] for a in data["artifacts"]) == ["DataSet", "Metrics", "SavedModel"]
    one = _json(run_cli("lineage", world["cancer"].trainer.id, "--json", "--db", world["db"]))
    assert set(one) == {"execution", "inputs", "outputs", "same_content"}
    assert [(i["role"], set(i["artifact"])) for i in one["inputs"]] == [("examples", RECORD_KEYS)]


def test_lineage_downstream_from_an_execution(run_cli, world):
    trainer = world["cancer"].trainer
    data = _json(run_cli("lineage", "--execution", trainer.id, "--direction", "downstream",
                         "--json", "--db", world["db"]))
    assert sorted(a["type"] for a in data["artifacts"]) == ["Metrics", "SavedModel"]
    assert sorted(e["type"] for e in data["executions"]) == ["Evaluator", "Trainer"]


def test_graph_of_a_selection_with_experiment_clusters(run_cli, world, tmp_path):
    out = tmp_path / "g.svg"
    result = run_cli("graph", "--artifact", world["cancer"].metrics.id, "--direction", "upstream",
                     "--clusters", "-o", out, "--db", world["db"])
    assert result.code == 0
    assert result.out == f"lineage graph of 4 artifacts and 2 executions: {out}\n"
    svg = out.read_text()
    for text in ["experiment cancer", "Evaluator #", "Metrics #", "breast_cancer_test.csv"]:
        assert text in svg
    assert "train_dataset.csv" not in svg  # the exercise is not in this lineage


def test_ls_artifacts_newest_first_and_each_filter(run_cli, world):
    db = world["db"]
    everything = _json(run_cli("ls", "artifacts", "--json", "--db", db))
    ids = [a["id"] for a in everything]
    assert len(ids) == 6 and ids == sorted(ids, reverse=True)
    assert all(set(a) == RECORD_KEYS for a in everything)
    datasets = _json(run_cli("ls", "artifacts", "--type", "DataSet", "--json", "--db", db))
    assert [a["id"] for a in datasets] == [a["id"] for a in everything if a["type"] == "DataSet"]
    cancer = _json(run_cli("ls", "artifacts", "--experiment", "cancer", "--json", "--db", db))
    assert sorted(a["id"] for a in cancer) == sorted(
        [a.id for a in world["cancer"].datasets] + [world["cancer"].model.id, world["cancer"].metrics.id])
    assert [a["id"] for a in _json(run_cli("ls", "artifacts", "--limit", "2", "--json", "--db", db))] == ids[:2]
    assert _json(run_cli("ls", "artifacts", "--since", "2h", "--json", "--db", db)) == everything
    tomorrow = time.strftime("%Y-%m-%d", time.localtime(time.time() + 86400))
    assert run_cli("ls", "artifacts", "--since", tomorrow, "--db", db).out == "no artifacts\n"
    text = run_cli("ls", "artifacts", "--db", db).out.splitlines()
    assert text[0].split() == ["ID", "TYPE", "VERSION", "CREATED", "URI"]
    assert text[1].split()[0] == str(ids[0])


def test_ls_executions_and_experiments(run_cli, world):
    db = world["db"]
    failed = _json(run_cli("ls", "executions", "--state", "failed", "--json", "--db", db))
    assert [(e["type"], e["state"], e["properties"]["error_message"]) for e in failed] == [
        ("Trainer", "FAILED", "out of memory")]
    evaluators = _json(run_cli("ls", "executions", "--type", "Evaluator", "--json", "--db", db))
    assert [e["id"] for e in evaluators] == [world["cancer"].runs[1].execution.id]
    odd = _json(run_cli("ls", "executions", "--experiment", ODD, "--json", "--db", db))
    assert [e["id"] for e in odd] == [e["id"] for e in failed]
    experiments = _json(run_cli("ls", "experiments", "--json", "--db", db))
    assert [(x["name"], x["executions"], x["artifacts"]) for x in experiments] == [
        (ODD, 1, 1), ("cancer", 2, 4), ("default", 1, 2)]
    assert "ID  NAME" in run_cli("ls", "experiments", "--db", db).out


def test_names_that_look_like_sql_are_data(run_cli, world, tmp_path):
    db = world["db"]
    assert run_cli("states", "--experiment", ODD, "--db", db).out == "FAILED  1\n"
    shown = world["shown"]
    missing = run_cli("ls", "artifacts", "--experiment", ODD + "x", "--db", db)
    assert (missing.code, missing.err.strip()) == (2, f"mlmd-exercise: error: no experiment named '{ODD}x' in {shown}")
    bad_type = run_cli("ls", "artifacts", "--type", "x' OR '1'='1", "--db", db)
    assert bad_type.err.strip() == f"mlmd-exercise: error: no artifact type named 'x' OR '1'='1' in {shown}"
    assert len(_json(run_cli("ls", "artifacts", "--json", "--db", db))) == 6  # Artifact still there


def test_show_artifact_and_execution(run_cli, world):
    db, model = world["db"], world["cancer"].model
    text = run_cli("show", "artifact", model.id, "--db", db).out.splitlines()
    assert text[0] == f"artifact {model.id} (SavedModel v1, LIVE)"
    assert any(line.split() == ["experiments", "cancer"] for line in text)
    assert any(line.split()[:2] == ["name", "'LogisticRegressionModel'"] for line in text)
    data = _json(run_cli("show", "artifact", model.id, "--json", "--db", db))
    assert set(data) == {"kind", "node", "events", "experiments", "same_content", "environment"}
    assert data["environment"] == {}  # an artifact ran in none
    assert sorted(e["kind"] for e in data["events"]) == ["INPUT", "OUTPUT"]
    trainer = world["cancer"].trainer
    data = _json(run_cli("show", "execution", trainer.id, "--json", "--db", db))
    assert data["node"]["properties"]["max_iter"] == 1000 and data["experiments"] == ["cancer"]
    assert data["environment"]["host"] == data["node"]["properties"]["host"]
    assert "max_iter" not in data["environment"]


def test_states_of_one_experiment_as_json(run_cli, world):
    assert _json(run_cli("states", "--experiment", "cancer", "--json", "--db", world["db"])) == {"COMPLETE": 2}
    assert _json(run_cli("states", "--json", "--db", world["db"])) == {"COMPLETE": 3, "FAILED": 1}


@pytest.mark.parametrize("args, message", [
    (["lineage"], "give an EXECUTION_ID, --artifact ID or --execution ID"),
    (["lineage", "1", "--artifact", "1"], "give an EXECUTION_ID or --artifact/--execution, not both"),
    (["lineage", "--artifact", "1", "--execution", "1"], "give --artifact or --execution, not both"),
    (["lineage", "--artifact", "999"], "no artifact with id 999 in {db}"),
    (["lineage", "--artifact", "1", "--hops", "-2"], "hops must be 0 or more, not '-2'"),
    (["lineage", "--artifact", "1", "--direction", "sideways"], "argument --direction: invalid choice: 'sideways'"),
    (["show", "artifact", "999"], "no artifact with id 999 in {db}"),
    (["show", "execution", "0"], "id must be positive, not '0'"),
    (["ls", "artifacts", "--state", "COMPLETE"], "--state filters executions, not artifacts"),
    (["ls", "executions", "--state", "DONE"], "unknown state 'DONE': use one of UNKNOWN, NEW, RUNNING"),
    (["ls", "artifacts", "--type", "Nope"], "no artifact type named 'Nope' in {db}"),
    (["ls", "executions", "--since", "yesterday"], "cannot read time 'yesterday'"),
    (["ls", "experiments", "--type", "DataSet"], "no context type named 'DataSet' in {db}"),
    (["ls", "experiments", "--experiment", "x"], "--type and --experiment filter artifacts and executions"),
    (["ls", "artifacts", "--context-type", "x"], "--context-type names the type of the --experiment context"),
    (["ls", "artifacts", "--limit", "0"], "limit must be positive, not '0'"),
    (["states", "--experiment", "nope"], "no experiment named 'nope' in {db}"),
])
def test_bad_queries_are_one_line_and_exit_2(run_cli, world, args, message):
    result = run_cli(*args, "--db", world["db"])
    assert result.code == 2 and result.out == ""
    assert len(result.err.splitlines()) == 1
    assert message.format(db=world["shown"]) in result.err


def test_verify_finds_deleted_and_modified_files(run_cli, tmp_path, db):
    tracker = mx.Tracker(db)
    data = tracker.log_dataset(write(tmp_path / "d.csv", "a,b\n"))
    with tracker.execution(inputs={"examples": data}) as run:
        run.log_model(write(tmp_path / "m.joblib", "model"), name="LR")
    tracker.log_dataset(write(tmp_path / "keep.csv", "k"))
    ok = run_cli("verify", "--db", db)
    assert (ok.code, ok.out) == (0, "checked 3 artifacts: all match\n")

    (tmp_path / "m.joblib").unlink()
    write(tmp_path / "d.csv", "a,b\n1,2\n")
    bad = run_cli("verify", "--db", db)
    assert bad.code == 1
    lines = bad.out.splitlines()
    assert lines[0].split()[:3] == ["modified", "artifact", str(data.id)]
    assert lines[1].split()[:3] == ["missing", "artifact", str(run.outputs["model"].id)]
    assert lines[-1] == "checked 3 artifacts: 2 missing or modified"
    report = _json_lenient(run_cli("verify", "--json", "--db", db))
    assert [(p["problem"], p["artifact"]["id"]) for p in report["problems"]] == [
        ("modified", data.id), ("missing", run.outputs["model"].id)]

    # Logging the new content makes it the newest version: verify is happy again.
    tracker.log_dataset(tmp_path / "d.csv")
    assert "1 missing or modified" in run_cli("verify", "--db", db).out


def _json_lenient(result):
    return json.loads(result.out)


def test_same_content_is_named_in_show_and_lineage(run_cli, db, tmp_path):
    """Two runs that made byte-identical models: two artifacts, each told of the other."""
    for _ in range(2):
        workflow.run_demo(mx.open_store(db, create=True), tmp_path)
    text = run_cli("show", "artifact", 3, "--db", db).out.splitlines()
    assert "  same content as artifact 2" in text
    assert _json(run_cli("show", "artifact", 2, "--json", "--db", db))["same_content"] == [3]
    assert _json(run_cli("show", "artifact", 1, "--json", "--db", db))["same_content"] == []
    one = run_cli("lineage", 2, "--db", db).out.splitlines()
    assert one[-1].endswith("trained_model.joblib  (same content as artifact 2)")
    assert _json(run_cli("lineage", 2, "--json", "--db", db))["same_content"] == {"3": 2}
    walk = run_cli("lineage", "--artifact", 3, "--direction", "upstream", "--hops", 1, "--db", db)
    assert walk.out.splitlines()[0] == "upstream lineage of artifact 3, 1 hop: 1 artifact, 1 execution"
    assert "(same content as artifact 2)" in walk.out
    assert walk.out.splitlines()[-1] == "  Trainer #2  --model-->  SavedModel #3"  # one maker: run 2


@pytest.mark.parametrize("args, first", [
    (["lineage", "--execution", "1", "--hops", "2"], "lineage of execution 1, upstream and downstream, 2 hops"),
    (["lineage", "--artifact", "1", "--direction", "downstream"], "downstream lineage of artifact 1, all hops"),
])
def test_lineage_titles_read_as_english(run_cli, demo_dir, args, first):
    result = run_cli(*args, "--db", demo_dir / "metadata.db")
    assert result.out.splitlines()[0].startswith(first + ": ")


@pytest.mark.parametrize("args", [
    ["-v", "lineage", "99"], ["lineage", "99", "-v"], ["lineage", "-v", "99"],
    ["lineage", "99", "--verbose", "--upgrade-schema"],
])
def test_global_options_go_on_either_side_of_the_command(run_cli, demo_dir, args):
    result = run_cli(*args, "--db", demo_dir / "metadata.db")
    assert result.code == 2
    assert result.err.startswith("mlmd-exercise: error: no execution with id 99 in ")


def test_verify_says_how_many_it_did_not_check_and_why(run_cli, db, tmp_path):
    for _ in range(2):  # the second run's model is the newer version at the same URI
        workflow.run_demo(mx.open_store(db, create=True), tmp_path)
    jsonl = tmp_path / "runs.jsonl"
    jsonl.write_text('{"inputs": {"examples": {"uri": "s3://bucket/train.csv"}}}\n')
    assert run_cli("import", jsonl, "--db", db).code == 0
    result = run_cli("verify", "--db", db)
    assert result.code == 0
    assert result.out.splitlines() == [
        "not checked: 1 artifact (an older version: a newer one at its URI replaced it): 2",
        "not checked: 1 artifact (not a local file): 4",
        "checked 2 artifacts: all match"]
    data = _json(run_cli("verify", "--json", "--db", db))
    assert data["checked"] == 2 and sorted(u["artifact"]["id"] for u in data["unchecked"]) == [2, 4]


def test_context_sizes_are_counted_without_loading_each_contexts_nodes(world, monkeypatch):
    """`ls experiments` counts each context's executions and artifacts by SQL: in a process of its
    own where ml-metadata holds the SQLite file here (its API loads every node of a context:
    200,000 runs of one experiment took 922 MB and 8.5 minutes), by the backend's SQL elsewhere."""
    pytest.importorskip("ml_metadata", reason="ml-metadata is not installed: its backend is not here")
    from mlmd_exercise.read.nodes import list_experiments
    from mlmd_exercise.store.mlmd import backend as mlmd_backend

    def loads_every_node(*args, **kwargs):
        raise AssertionError("a context's nodes were loaded to count them")

    monkeypatch.setattr(mlmd_backend.MlmdBackend, "context_sizes",
                        lambda self, ids: loads_every_node() if self._tables() is None else
                        mlmd_backend.tables.context_sizes(self._tables(), ids))
    store = mx.open_store(world["db"])
    try:
        assert [(x.name, x.executions, x.artifacts) for x in list_experiments(store)] == [
            (ODD, 1, 1), ("cancer", 2, 4), ("default", 1, 2)]
    finally:
        store.close()


def test_counts_made_apart_fall_back_to_the_store_where_no_child_can_run(world, monkeypatch, tmp_path):
    """The explorer's counts and `ls experiments` where ml-metadata holds the SQLite file here run
    in a child Python; where none can run (an embedded Python, no executable), the store counts."""
    pytest.importorskip("ml_metadata", reason="ml-metadata is not installed: its backend is not here")
    from mlmd_exercise.read.counts import count_apart
    from mlmd_exercise.read.nodes import list_experiments

    store = mx.open_store(world["db"], backend="mlmd")
    try:
        states, sizes = count_apart(store), [(x.name, x.executions, x.artifacts) for x in list_experiments(store)]
        assert states and sizes == [(ODD, 1, 1), ("cancer", 2, 4), ("default", 1, 2)]
        monkeypatch.setattr(sys, "executable", str(tmp_path / "no-python"))
        assert count_apart(store) == states and count_apart(store, "cancer") == {"COMPLETE": 2}
        assert [(x.name, x.executions, x.artifacts) for x in list_experiments(store)] == sizes
    finally:
        store.close()
