"""tracking.py: datasets, executions and models recorded with the events that join them."""

from __future__ import annotations

from pathlib import Path

import pytest
from ml_metadata.proto import metadata_store_pb2 as pb

import mlmd_exercise as mx


@pytest.fixture
def dataset(store, tmp_path: Path) -> mx.ArtifactRecord:
    return mx.log_dataset(store, tmp_path / "train.csv", split="train")


def test_a_dataset_is_a_live_dataset_artifact_with_an_absolute_file_uri(store, tmp_path, dataset):
    assert dataset.type == "DataSet"
    assert dataset.uri == (tmp_path / "train.csv").resolve().as_uri()
    assert dataset.uri.startswith("file:///")
    assert dataset.state == "LIVE"
    assert dataset.properties == {"split": "train", "version": 1}
    [stored] = store.mlmd.get_artifacts_by_id([dataset.id])
    assert stored.state == pb.Artifact.LIVE
    assert stored.properties["version"].int_value == 1


def test_the_same_uri_gets_the_next_free_version(store, tmp_path, dataset):
    again = mx.log_dataset(store, tmp_path / "train.csv", split="train", day=3)
    other = mx.log_dataset(store, tmp_path / "test.csv", split="test")
    assert (dataset.version, again.version, other.version) == (1, 2, 1)
    assert again.properties["day"] == 3


def test_start_records_running_with_its_input_event_and_experiment(store, dataset):
    run = mx.start_execution(store, {"examples": dataset}, experiment="baseline")
    assert (run.type, run.state, run.properties["state"]) == ("Trainer", "RUNNING", "RUNNING")
    [event] = store.mlmd.get_events_by_execution_ids([run.id])
    assert (event.artifact_id, event.type, event.path.steps[0].key) == (
        dataset.id, pb.Event.INPUT, "examples")
    context = store.mlmd.get_context_by_type_and_name("Experiment", "baseline")
    assert [e.id for e in store.mlmd.get_executions_by_context(context.id)] == [run.id]
    assert [a.id for a in store.mlmd.get_artifacts_by_context(context.id)] == [dataset.id]


def test_finish_writes_model_event_and_state_together(store, tmp_path, dataset):
    run = mx.start_execution(store, {"examples": dataset}, experiment="baseline")
    [model] = mx.finish_execution(
        store, run.id, {"model": mx.new_model(tmp_path / "m.joblib", name="LR")},
        experiment="baseline")
    assert (model.type, model.properties["name"], model.version) == ("SavedModel", "LR", 1)
    [execution] = store.mlmd.get_executions_by_id([run.id])
    assert execution.last_known_state == pb.Execution.COMPLETE
    assert execution.properties["state"].string_value == "COMPLETE"
    events = {(e.artifact_id, e.type, e.path.steps[0].key)
              for e in store.mlmd.get_events_by_execution_ids([run.id])}
    assert events == {(dataset.id, pb.Event.INPUT, "examples"), (model.id, pb.Event.OUTPUT, "model")}
    context = store.mlmd.get_context_by_type_and_name("Experiment", "baseline")
    assert {a.id for a in store.mlmd.get_artifacts_by_context(context.id)} == {dataset.id, model.id}
    # One experiment, however many runs it has.
    assert len(store.mlmd.get_contexts_by_type("Experiment")) == 1


def test_finish_keeps_the_stored_execution_properties(store, dataset):
    run = mx.start_execution(store, {"examples": dataset})
    [before] = store.mlmd.get_executions_by_id([run.id])
    mx.finish_execution(store, run.id, {}, state=mx.ExecutionState.FAILED)
    [after] = store.mlmd.get_executions_by_id([run.id])
    assert after.last_known_state == pb.Execution.FAILED
    assert after.properties["state"].string_value == "FAILED"
    assert after.type_id == before.type_id
    assert after.create_time_since_epoch == before.create_time_since_epoch


def test_every_model_has_the_output_event_that_made_it(store, tmp_path, dataset):
    for i in range(3):
        run = mx.start_execution(store, {"examples": dataset})
        mx.finish_execution(store, run.id, {"model": mx.new_model(tmp_path / "m.joblib", name="LR")})
    models = store.mlmd.get_artifacts_by_type("SavedModel")
    assert [m.properties["version"].int_value for m in models] == [1, 2, 3]
    outputs = store.mlmd.get_events_by_artifact_ids([m.id for m in models])
    assert sorted(e.artifact_id for e in outputs if e.type == pb.Event.OUTPUT) == [m.id for m in models]


def test_unknown_ids_are_named(store, db_path, dataset):
    with pytest.raises(mx.NotFoundError, match=f"^no execution with id 42 in {db_path}$"):
        mx.finish_execution(store, 42, {})
    ghost = mx.ArtifactRecord(id=99, type="DataSet", uri="file:///x", state="LIVE")
    with pytest.raises(mx.NotFoundError, match=f"^no artifact with id 99 in {db_path}$"):
        mx.start_execution(store, {"examples": ghost})
    assert store.mlmd.get_executions() == []
