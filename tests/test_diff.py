"""diff.py and `mlmd-exercise diff`: two runs, or two artifacts and all upstream of them."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import mlmd_exercise as mx
from conftest import write
from mlmd_exercise import environment as env
from mlmd_exercise.read.diff import Change, diff_artifacts, diff_runs

DIFF_KEYS = {"kind", "a", "b", "runs", "params", "metrics", "code", "environment", "packages",
             "inputs", "inputs_compared", "outputs", "outputs_compared", "same", "nondeterministic"}
CHANGE_KEYS = {"step", "key", "a", "b"}
ARTIFACT_CHANGE_KEYS = {"path", "a", "b", "same_content"}


def train(tracker, data: Path, model: Path, params, metrics=None):
    """A Trainer run reading `data` and writing `model` (a file already written)."""
    with tracker.execution("Trainer", inputs={"examples": tracker.dataset(data)}, params=params) as run:
        if metrics:
            run.log_metrics(metrics)
        run.log_model(model, name="LR")
    return run


def pipeline(tracker, tmp_path: Path, train_text: str, c: float, tag: str):
    """train.csv -> Trainer(C) -> model -> Evaluator <- test.csv; Evaluator -> Metrics."""
    data = write(tmp_path / "train.csv", train_text)
    trainer = train(tracker, data, write(tmp_path / f"model-{tag}.joblib", f"{train_text} {c}"),
                    {"C": c})
    test = tracker.dataset(write(tmp_path / "test.csv", "x,y\n9,1\n"), split="test")
    inputs = {"model": trainer.outputs["model"], "examples": test}
    with tracker.execution("Evaluator", inputs=inputs) as evaluator:
        accuracy = 0.5 + len(train_text) / 100 + c / 10
        evaluator.log_output("metrics", write(tmp_path / f"metrics-{tag}.json", str(accuracy)),
                             type="Metrics", properties={"accuracy": accuracy})
    return trainer, evaluator


def test_two_runs_differ_by_exactly_their_params_and_metrics(tracker, tmp_path):
    data = write(tmp_path / "train.csv", "x,y\n1,0\n")
    a = train(tracker, data, write(tmp_path / "a.joblib", "model a"), {"C": 1.0, "max_iter": 100},
              {"accuracy": 0.9, "loss": 0.3})
    b = train(tracker, data, write(tmp_path / "b.joblib", "model b"), {"C": 0.5, "max_iter": 100},
              {"accuracy": 0.8, "loss": 0.3})
    d = diff_runs(tracker.store, a.id, b.id)
    assert d.params == (Change("", "C", 1.0, 0.5),)
    assert d.metrics == (Change("", "accuracy", 0.9, 0.8),)
    assert (d.code, d.environment, d.packages, d.inputs) == ((), (), (), ())
    assert d.inputs_compared == 1 and d.same_inputs and not d.nondeterministic
    [model] = d.outputs
    assert (model.path, model.a.id, model.b.id, model.same_content) == (
        "model", a.outputs["model"].id, b.outputs["model"].id, False)


def test_same_inputs_and_params_but_other_outputs_is_said_in_one_line(tracker, tmp_path, run_cli, db):
    data = write(tmp_path / "train.csv", "x,y\n1,0\n")
    model = tmp_path / "model.joblib"
    runs = [train(tracker, data, write(model, f"weights {seed}"), {"C": 1.0}) for seed in (1, 2)]
    d = diff_runs(tracker.store, runs[0].id, runs[1].id)
    assert d.same_inputs and d.same_params and not d.same_outputs and d.nondeterministic
    assert [c.path for c in d.outputs] == ["model"] and not d.outputs[0].same_content
    out = run_cli("diff", runs[0].id, runs[1].id, "--db", db).out.splitlines()
    assert out[2] == ("same inputs and params, different outputs: "
                      "not deterministic (same code and environment too)")
    fingerprints = [r.outputs["model"].properties["fingerprint"][:19] for r in runs]
    assert [line.split()[:5] for line in out if re.match(r"    [AB] ", line)] == [
        ["A", "artifact", str(runs[0].outputs["model"].id), "SavedModel", "v1"],
        ["B", "artifact", str(runs[1].outputs["model"].id), "SavedModel", "v2"]]
    assert all(f in "\n".join(out) for f in fingerprints)


def test_the_same_run_twice_has_no_differences(run_cli, tracker, tmp_path, db):
    data = write(tmp_path / "train.csv", "x,y\n1,0\n")
    run = train(tracker, data, write(tmp_path / "m.joblib", "m"), {"C": 1.0}, {"accuracy": 0.9})
    d = diff_runs(tracker.store, run.id, run.id)
    assert d.same and not d.nondeterministic
    assert run_cli("diff", run.id, run.id, "--db", db).out.splitlines()[2] == (
        "no differences: same params, metrics, code, environment, 1 input and 1 output")


def test_inputs_are_compared_all_the_way_back(tracker, tmp_path):
    _, first = pipeline(tracker, tmp_path, "x,y\n1,0\n", 1.0, "a")
    _, second = pipeline(tracker, tmp_path, "x,y\n1,0\n2,1\n", 1.0, "b")  # train.csv v2
    d = diff_runs(tracker.store, first.id, second.id)
    assert [c.path for c in d.inputs] == ["model", "model/examples"]  # the test split is the same
    examples = d.inputs[1]
    assert (examples.a.version, examples.b.version) == (1, 2) and examples.a.uri == examples.b.uri
    assert d.inputs_compared == 3 and not d.same_inputs and not d.nondeterministic
    assert d.params == () and [c.key for c in d.metrics] == ["accuracy"]
    # The two Metrics artifacts, each walked upstream, say the same.
    m = diff_artifacts(tracker.store, first.outputs["metrics"].id, second.outputs["metrics"].id)
    assert m.kind == "artifact" and m.runs == (first.id, second.id)
    assert [c.path for c in m.inputs] == ["model", "model/examples"]
    assert [c.key for c in m.metrics] == ["accuracy"]
    assert [c.path for c in m.outputs] == [""]


def test_params_of_the_runs_upstream_are_compared(tracker, tmp_path):
    _, first = pipeline(tracker, tmp_path, "x,y\n1,0\n", 1.0, "a")
    _, second = pipeline(tracker, tmp_path, "x,y\n1,0\n", 0.5, "b")
    d = diff_runs(tracker.store, first.id, second.id)
    assert d.params == (Change("model", "C", 1.0, 0.5),)  # of the Trainer that made "model"
    assert [c.path for c in d.inputs] == ["model"]


def test_two_models_compared_with_their_runs(tracker, tmp_path, run_cli, db):
    data = write(tmp_path / "train.csv", "x,y\n1,0\n")
    a = train(tracker, data, write(tmp_path / "a.joblib", "model a"), {"C": 1.0}, {"accuracy": 0.9})
    b = train(tracker, data, write(tmp_path / "b.joblib", "model b"), {"C": 2.0}, {"accuracy": 0.7})
    ma, mb = a.outputs["model"], b.outputs["model"]
    d = diff_artifacts(tracker.store, ma.id, mb.id)
    assert d.runs == (a.id, b.id) and d.params == (Change("", "C", 1.0, 2.0),)
    assert d.metrics == (Change("", "accuracy", 0.9, 0.7),)
    result = run_cli("diff", "--artifact", ma.id, mb.id, "--db", db)
    assert result.code == 0
    lines = result.out.splitlines()
    made = [re.sub(r" of \d{4}-\d\d-\d\d \d\d:\d\d:\d\d,", ",", line) for line in lines[:2]]
    assert made == [f"A  artifact {ma.id} (SavedModel v1), made by execution {a.id}",
                    f"B  artifact {mb.id} (SavedModel v1), made by execution {b.id}"]
    assert ["C", "1.0", "2.0"] in [line.split() for line in lines]
    assert ["accuracy", "0.9", "0.7"] in [line.split() for line in lines]
    assert "inputs, all the way back: same (1)" in lines
    data = json.loads(run_cli("diff", "--artifact", ma.id, mb.id, "--json", "--db", db).out)
    assert set(data) == DIFF_KEYS and data["kind"] == "artifact" and data["runs"] == [a.id, b.id]
    assert data["params"] == [{"step": "", "key": "C", "a": 1.0, "b": 2.0}]
    assert [set(o) for o in data["outputs"]] == [ARTIFACT_CHANGE_KEYS]
    assert data["outputs"][0]["a"]["id"] == ma.id and data["outputs"][0]["same_content"] is False


def test_diff_json_keys(tracker, tmp_path, run_cli, db):
    _, first = pipeline(tracker, tmp_path, "x,y\n1,0\n", 1.0, "a")
    _, second = pipeline(tracker, tmp_path, "x,y\n2,0\n", 0.5, "b")
    result = run_cli("diff", first.id, second.id, "--json", "--db", db)
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert set(data) == DIFF_KEYS and data["kind"] == "execution"
    assert data["a"]["id"] == first.id and data["runs"] == [first.id, second.id]
    assert all(set(c) == CHANGE_KEYS for key in ("params", "metrics") for c in data[key])
    assert data["params"] == [{"step": "model", "key": "C", "a": 1.0, "b": 0.5}]
    assert [i["path"] for i in data["inputs"]] == ["model", "model/examples"]
    assert all(set(i) == ARTIFACT_CHANGE_KEYS for i in data["inputs"])
    assert data["same"] == {"inputs": False, "params": False, "outputs": False, "code": True,
                            "environment": True}
    assert data["nondeterministic"] is False and data["inputs_compared"] == 3


# A user's script run twice with another argument: `python train.py STORE 0.80`, then 0.95.
TRAIN = textwrap.dedent("""
    import sys
    from pathlib import Path
    import mlmd_exercise as mx

    tracker = mx.Tracker(sys.argv[1])
    data = tracker.dataset("train.csv")
    with tracker.execution("Trainer", inputs={"examples": data}) as run:
        Path("model.joblib").write_text("weights for " + sys.argv[2])
        run.log_metrics({"val_accuracy": float(sys.argv[2])})
        run.log_model("model.joblib", name="LR")
    print(run.id)
""")


def test_runs_of_another_command_line_differ_in_their_code(tmp_path, run_cli):
    write(tmp_path / "train.py", TRAIN)
    write(tmp_path / "train.csv", "x,y\n1,0\n")
    store = str(tmp_path / "metadata.db")
    ids = []
    for accuracy in ("0.80", "0.95"):
        done = subprocess.run([sys.executable, "train.py", store, accuracy], cwd=tmp_path,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        ids.append(int(done.stdout))
    d = diff_runs(mx.open_store(store), *ids)
    assert d.code == (Change("", env.COMMAND, f"train.py {store} 0.80", f"train.py {store} 0.95"),)
    assert d.metrics == (Change("", "val_accuracy", 0.80, 0.95),)
    assert d.environment == () and d.packages == ()  # pid and pid_start are not compared
    assert d.nondeterministic  # no params: the command line made the difference
    lines = run_cli("diff", *ids, "--db", store).out.splitlines()
    assert lines[2] == "same inputs and params, different outputs: the code or environment differ (see below)"
    at = lines.index("  env.command")  # too long to stand side by side: a line each, in full
    assert lines[at + 1:at + 3] == [f"    A  train.py {store} 0.80", f"    B  train.py {store} 0.95"]
    assert ["val_accuracy", "0.8", "0.95"] in [line.split() for line in lines]


@pytest.mark.parametrize("args, message", [
    (["diff", "1", "99"], "no execution with id 99 in {db}"),
    (["diff", "98", "1"], "no execution with id 98 in {db}"),
    (["diff", "--artifact", "1", "99"], "no artifact with id 99 in {db}"),
    (["diff", "1", "0"], "id must be positive, not '0'"),
    (["diff", "1", "x"], "id must be a whole number, not 'x'"),
])
def test_diff_bad_ids_are_named(run_cli, tracker, tmp_path, db, args, message):
    train(tracker, write(tmp_path / "d.csv", "x\n"), write(tmp_path / "m.joblib", "m"), {"C": 1})
    result = run_cli(*args, "--db", db)
    assert result.code == 2 and result.out == ""
    assert message.format(db=tracker.store) in result.err and len(result.err.splitlines()) == 1


def test_diff_of_imported_runs_gives_their_original_times(run_cli, db, tmp_path):
    runs = [{"name": "a", "started": "2023-05-01T12:00:00", "ended": "2023-05-01T12:30:05", "params": {"C": 1.0}},
            {"name": "b", "started": "2023-05-02T09:00:00", "params": {"C": 2.0}}]
    path = tmp_path / "runs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in runs))
    assert run_cli("import", path, "--db", db).code == 0
    lines = run_cli("diff", "1", "2", "--db", db).out.splitlines()
    assert lines[:2] == ["A  execution 1 (Trainer, COMPLETE), started 2023-05-01 12:00:00, took 30 min 5 s",
                         "B  execution 2 (Trainer, COMPLETE), started 2023-05-02 09:00:00"]
    assert "started_ms" not in run_cli("diff", "1", "2", "--db", db).out  # a time, not a param
