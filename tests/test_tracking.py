"""tracking.py: the Tracker API, its run context manager, and versioning by content."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import mlmd_exercise as mx
from conftest import write
from mlmd_exercise.content import fingerprint
from raw_mlmd import pb, raw_mlmd


@pytest.fixture
def train(tracker, tmp_path: Path) -> mx.ArtifactRecord:
    return tracker.log_dataset(write(tmp_path / "train.csv", "x,y\n1,0\n"), split="train")


def test_a_dataset_is_a_live_dataset_artifact_with_an_absolute_file_uri(store, tmp_path, train):
    assert train.type == "DataSet"
    assert train.uri == (tmp_path / "train.csv").resolve().as_uri()
    assert train.uri.startswith("file:///")
    assert train.state == "LIVE"
    assert train.properties == {"split": "train", "version": 1,
                                "fingerprint": fingerprint(tmp_path / "train.csv")}
    [stored] = raw_mlmd(store).get_artifacts_by_id([train.id])
    assert stored.state == pb.Artifact.LIVE
    assert stored.properties["version"].int_value == 1
    assert stored.custom_properties["fingerprint"].string_value.startswith("sha256:")
    assert train.created_ms == stored.create_time_since_epoch > 0


def test_same_uri_same_content_is_the_same_artifact(tracker, tmp_path, train):
    again = tracker.log_dataset(tmp_path / "train.csv", split="train")
    assert again == train
    assert len(raw_mlmd(tracker.store).get_artifacts()) == 1


def test_same_uri_new_content_is_the_next_version(tracker, tmp_path, train):
    write(tmp_path / "train.csv", "x,y\n1,0\n2,1\n")
    second = tracker.log_dataset(tmp_path / "train.csv", split="train")
    write(tmp_path / "train.csv", "x,y\n1,0\n")  # back to the first bytes: a new version still
    third = tracker.log_dataset(tmp_path / "train.csv", split="train")
    assert (train.version, second.version, third.version) == (1, 2, 3)
    assert second.properties["fingerprint"] != train.properties["fingerprint"]
    assert third.properties["fingerprint"] == train.properties["fingerprint"]


def test_same_content_at_a_new_uri_is_a_new_artifact_found_by_fingerprint(tracker, tmp_path, train):
    moved = tracker.log_dataset(write(tmp_path / "moved" / "train.csv", "x,y\n1,0\n"), split="train")
    assert moved.id != train.id and moved.version == 1
    digest = train.properties["fingerprint"]
    assert [a.id for a in mx.find_by_fingerprint(tracker.store, digest)] == [train.id, moved.id]


def test_a_directory_is_fingerprinted_by_its_paths_and_contents(tracker, tmp_path):
    folder = tmp_path / "images"
    write(folder / "a.txt", "A")
    write(folder / "sub" / "b.txt", "B")
    first = tracker.log_artifact(folder, type="ImageFolder")
    assert first.type == "ImageFolder" and first.version == 1
    assert tracker.log_artifact(folder, type="ImageFolder").id == first.id
    (folder / "sub" / "b.txt").rename(folder / "sub" / "c.txt")  # same bytes, another name
    renamed = tracker.log_artifact(folder, type="ImageFolder")
    write(folder / "a.txt", "changed")
    edited = tracker.log_artifact(folder, type="ImageFolder")
    assert [first.version, renamed.version, edited.version] == [1, 2, 3]


def test_logging_a_missing_path_names_it(tracker, tmp_path):
    with pytest.raises(mx.NotFoundError, match=f"^'{tmp_path}/nope.csv' does not exist$"):
        tracker.log_dataset(tmp_path / "nope.csv")
    assert raw_mlmd(tracker.store).get_artifacts() == []


def test_a_completed_run_records_inputs_params_outputs_and_metrics(tracker, tmp_path, train, db):
    model_file = write(tmp_path / "m.joblib", "model bytes")
    params = {"C": 0.5, "max_iter": 100, "fit_intercept": True, "solver": "lbfgs"}
    with tracker.execution("Trainer", inputs={"examples": train}, params=params,
                           experiment="baseline") as run:
        assert run.execution().state == "RUNNING"
        run.log_metrics({"train_accuracy": 0.93, "epochs": 3})
        run.log_model(model_file, name="LR")
    model = run.outputs["model"]
    assert (model.type, model.properties["name"], model.version) == ("SavedModel", "LR", 1)

    # Read everything back through a fresh MetadataStore: types survive the round trip.
    fresh = raw_mlmd(mx.open_store(db))
    [execution] = fresh.get_executions_by_id([run.id])
    assert execution.last_known_state == pb.Execution.COMPLETE
    assert execution.properties["state"].string_value == "COMPLETE"
    props = execution.custom_properties
    assert (props["C"].double_value, props["max_iter"].int_value) == (0.5, 100)
    assert (props["fit_intercept"].bool_value, props["solver"].string_value) == (True, "lbfgs")
    [stored_model] = fresh.get_artifacts_by_id([model.id])
    assert stored_model.custom_properties["train_accuracy"].double_value == 0.93
    assert stored_model.custom_properties["epochs"].int_value == 3
    assert props["train_accuracy"].double_value == 0.93  # the run's own, and a copy on its model
    events = {(e.artifact_id, e.type, e.path.steps[0].key)
              for e in fresh.get_events_by_execution_ids([run.id])}
    assert events == {(train.id, pb.Event.INPUT, "examples"), (model.id, pb.Event.OUTPUT, "model")}
    context = fresh.get_context_by_type_and_name("Experiment", "baseline")
    assert [e.id for e in fresh.get_executions_by_context(context.id)] == [run.id]
    assert {a.id for a in fresh.get_artifacts_by_context(context.id)} == {train.id, model.id}


def test_metrics_go_on_the_execution_when_there_is_no_model(tracker, train):
    with tracker.execution("Evaluator", inputs={"examples": train}) as run:
        run.log_metrics({"accuracy": 0.5})
    assert run.execution().properties["accuracy"] == 0.5


@pytest.mark.parametrize("error, state", [
    (ValueError("bad 'data'"), "FAILED"),
    (KeyboardInterrupt(), "CANCELED"),
])
def test_an_exception_records_the_run_and_is_re_raised_unchanged(tracker, tmp_path, train, error, state):
    with pytest.raises(type(error)) as raised:
        with tracker.execution("Trainer", inputs={"examples": train}) as run:
            run.log_model(write(tmp_path / "m.joblib", "half-written"), name="LR")
            raise error
    assert raised.value is error
    execution = run.execution()
    assert (execution.state, execution.properties["state"]) == (state, state)
    assert execution.properties["error_type"] == type(error).__name__
    assert execution.properties["error_message"] == str(error)
    assert [a.type for a in raw_mlmd(tracker.store).get_artifacts()] == ["DataSet"]  # no model


def test_every_model_has_the_output_event_that_made_it(tracker, tmp_path, train):
    for i in range(3):
        with tracker.execution(inputs={"examples": train}) as run:
            run.log_model(write(tmp_path / "m.joblib", f"model {i}"), name="LR")
    models = sorted(raw_mlmd(tracker.store).get_artifacts_by_type("SavedModel"), key=lambda m: m.id)
    assert [m.properties["version"].int_value for m in models] == [1, 2, 3]
    outputs = raw_mlmd(tracker.store).get_events_by_artifact_ids([m.id for m in models])
    assert sorted(e.artifact_id for e in outputs if e.type == pb.Event.OUTPUT) == [m.id for m in models]
    assert len(raw_mlmd(tracker.store).get_contexts_by_type("Experiment")) == 1


def test_an_unchanged_output_is_a_new_artifact_made_by_its_own_run(tracker, tmp_path, train):
    model_file = write(tmp_path / "m.joblib", "same bytes")
    runs = []
    for _ in range(2):
        with tracker.execution(inputs={"examples": train}) as run:
            run.log_model(model_file, name="LR")
        runs.append(run)
    first, second = (r.outputs["model"] for r in runs)
    assert first.id != second.id and (first.version, second.version) == (1, 2)
    assert first.properties["fingerprint"] == second.properties["fingerprint"]
    events = raw_mlmd(tracker.store).get_events_by_artifact_ids([first.id, second.id])
    producers = sorted((e.artifact_id, e.execution_id) for e in events if e.type == pb.Event.OUTPUT)
    assert producers == [(first.id, runs[0].id), (second.id, runs[1].id)]  # one run each
    assert [a.id for a in mx.find_by_fingerprint(tracker.store, first.properties["fingerprint"])] \
        == [first.id, second.id]


def test_two_runs_with_identical_models_keep_their_own_metrics(db, tmp_path):
    """The issue's two-runs script: `train.py 0.80` then `train.py 0.95`, same model bytes."""
    data = write(tmp_path / "train.csv", "x,y\n1,0\n")
    model_file = write(tmp_path / "m.joblib", "identical model bytes")
    for accuracy in (0.80, 0.95):  # each run a new Tracker, as two processes would be
        tracker = mx.Tracker(mx.open_store(db, create=True))
        with tracker.execution(inputs={"examples": tracker.dataset(data)}) as run:
            run.log_metrics({"val_accuracy": accuracy})
            run.log_model(model_file, name="LR")

    fresh = raw_mlmd(mx.open_store(db))
    executions = sorted(fresh.get_executions(), key=lambda e: e.id)
    assert [e.custom_properties["val_accuracy"].double_value for e in executions] == [0.80, 0.95]
    models = sorted(fresh.get_artifacts_by_type("SavedModel"), key=lambda a: a.id)
    assert [m.custom_properties["val_accuracy"].double_value for m in models] == [0.80, 0.95]
    made_by = {e.artifact_id: e.execution_id for e in fresh.get_events_by_artifact_ids(
        [m.id for m in models]) if e.type == pb.Event.OUTPUT}
    assert [made_by[m.id] for m in models] == [e.id for e in executions]
    assert len(fresh.get_artifacts_by_type("DataSet")) == 1  # the input is still one artifact


def test_a_metric_may_not_take_a_params_name(tracker, train):
    with pytest.raises(mx.MlmdExerciseError, match="^run 1 has a param 'C' already: give the metric"):
        with tracker.execution(inputs={"examples": train}, params={"C": 1.0}) as run:
            run.log_metrics({"C": 0.5})
    assert run.execution().properties["C"] == 1.0  # the param stands; the run is FAILED
    with pytest.raises(mx.MlmdExerciseError, match="^'version' names what this package records itself"):
        with tracker.execution(inputs={"examples": train}) as run:
            run.log_metrics({"version": 2})


def test_a_metrics_output_holds_its_runs_metrics_where_its_type_declares_them(tracker, tmp_path, train, db):
    with tracker.execution("Evaluator", inputs={"examples": train}) as run:
        run.log_metrics({"accuracy": 0.9, "f1": 0.8})
        run.log_output("metrics", write(tmp_path / "m.json", "{}"), type="Metrics")
    [stored] = raw_mlmd(mx.open_store(db)).get_artifacts_by_id([run.outputs["metrics"].id])
    assert stored.properties["accuracy"].double_value == 0.9  # declared by Metrics
    assert stored.custom_properties["f1"].double_value == 0.8
    assert run.execution().properties["accuracy"] == 0.9


def test_misuse_is_named(tracker, tmp_path, train):
    ghost = mx.ArtifactRecord(id=99, type="DataSet", uri="file:///x", state="LIVE")
    with pytest.raises(mx.NotFoundError, match=f"^no artifact with id 99 in {re.escape(str(tracker.store))}$"):
        tracker.execution(inputs={"examples": ghost})
    with pytest.raises(mx.MlmdExerciseError, match="^an experiment name must not be empty, not ' '$"):
        tracker.execution(experiment=" ")
    with pytest.raises(mx.SchemaError, match="^a type name must not be empty, not ''$"):
        tracker.execution("")
    assert raw_mlmd(tracker.store).get_executions() == []
    run = tracker.execution(inputs={"examples": train})
    run.log_output("model", write(tmp_path / "m", "m"), type="SavedModel")
    with pytest.raises(mx.MlmdExerciseError, match=f"^run {run.id} already has an output 'model'$"):
        run.log_output("model", tmp_path / "m", type="SavedModel")
    run.finish()
    with pytest.raises(mx.MlmdExerciseError, match=f"^run {run.id} is already finished$"):
        run.log_metrics({"a": 1})


def test_a_tracker_opens_a_store_by_path(tmp_path):
    tracker = mx.Tracker(tmp_path / "new.db", experiment="e1")
    assert (tmp_path / "new.db").is_file()
    assert tracker.experiment == "e1"
    assert "new.db" in repr(tracker)


def test_a_run_name_is_a_label_and_every_run_of_it_is_kept(tracker):
    """(tests/test_run_names.py has the rest.) MLMD's names stay unique: a new UUID per run."""
    tracker.execution(name="nightly-2026-11-26").finish()
    tracker.execution(name="nightly-2026-11-26").finish()  # the script run again: a new run
    tracker.execution("Evaluator", name="nightly-2026-11-26").finish()
    stored = raw_mlmd(tracker.store).get_executions()
    assert len(stored) == 3 and len({e.name for e in stored}) == 3
    assert {e.custom_properties["run.name"].string_value for e in stored} == {"nightly-2026-11-26"}


def test_an_input_described_by_its_uri_and_fingerprint_is_versioned_by_content(tracker, tmp_path):
    """What autolog records data in memory and files read earlier with (Tracker.described)."""
    digest = "sha256:" + "ab" * 32
    with tracker.execution(inputs={"X": tracker.described("python:/p/train.py#X", digest)}) as first:
        pass
    with tracker.execution(inputs={"X": tracker.described("python:/p/train.py#X", digest)}) as second:
        pass
    with tracker.execution(inputs={"X": tracker.described("python:/p/train.py#X", "sha256:" + "cd" * 32,
                                                          properties={"rows": 3})}) as third:
        pass
    same, again, changed = (r.inputs["X"] for r in (first, second, third))
    assert same.id == again.id and same.custom["fingerprint"] == digest
    assert (changed.properties["version"], changed.custom["rows"]) == (2, 3)
    with pytest.raises(mx.MlmdExerciseError, match="^uri must be a non-empty string, not ''$"):
        tracker.described("", digest)
    with pytest.raises(mx.MlmdExerciseError, match="^fingerprint must be 'sha256:' and 64 hex digits, not 'md5:1'$"):
        tracker.described("python:x", "md5:1")


def test_metrics_added_after_a_run_finished_join_its_metrics_and_history(tracker, tmp_path, train):
    with tracker.execution(inputs={"examples": train}) as run:
        run.log_metric("loss", 0.5)
        run.log_model(write(tmp_path / "m.joblib", "m"), name="M")
    run.add_metrics({"score_X_test": 0.75})
    run.add_metrics({"score_X_test": 0.8})
    stored = run.execution()
    assert stored.state == "COMPLETE"
    assert (stored.custom["loss"], stored.custom["score_X_test"]) == (0.5, 0.8)
    assert stored.custom["metric_names"] == "loss,score_X_test"
    assert [p.value for p in mx.metric_history(tracker.store, run.id, "score_X_test")] == [0.75, 0.8]
    assert "score_X_test" not in mx.get_artifact(tracker.store, run.outputs["model"].id).custom  # copied at the end only
    with pytest.raises(mx.MlmdExerciseError, match="^metric 'x' .*"):
        run.add_metrics({"x": "text"})
