"""workflow.py: the demo job end to end on a real store, real files, real scikit-learn."""

from __future__ import annotations

import joblib
import pandas as pd
import pytest
from ml_metadata.proto import metadata_store_pb2 as pb

import mlmd_exercise as mx
from mlmd_exercise import workflow


def test_demo_writes_the_dataset_and_a_model_that_predicts(demo_dir):
    frame = pd.read_csv(demo_dir / "data" / "train_dataset.csv")
    assert list(frame.columns) == ["feature1", "feature2", "label"]
    assert frame["feature1"].tolist() == list(range(10))
    assert frame["feature2"].tolist() == [2 * x for x in range(10)]
    assert frame["label"].tolist() == [0, 1] * 5
    model = joblib.load(demo_dir / "models" / "trained_model.joblib")
    assert type(model).__name__ == "LogisticRegression"
    assert set(model.predict(frame[["feature1", "feature2"]])) <= {0, 1}


def test_demo_records_two_artifacts_one_complete_execution_and_their_events(demo_dir):
    store = mx.open_store(demo_dir / "metadata.db")
    artifacts = store.mlmd.get_artifacts()
    assert sorted(a.type for a in artifacts) == ["DataSet", "SavedModel"]
    [data] = [a for a in artifacts if a.type == "DataSet"]
    [model] = [a for a in artifacts if a.type == "SavedModel"]
    assert data.uri == (demo_dir / "data" / "train_dataset.csv").resolve().as_uri()
    assert data.properties["split"].string_value == "train"
    assert data.properties["version"].int_value == 1
    assert data.state == pb.Artifact.LIVE
    assert model.uri == (demo_dir / "models" / "trained_model.joblib").resolve().as_uri()
    assert model.properties["name"].string_value == "LogisticRegressionModel"
    assert model.properties["version"].int_value == 1
    [execution] = store.mlmd.get_executions()
    assert execution.type == "Trainer" and execution.last_known_state == pb.Execution.COMPLETE
    events = {(e.artifact_id, e.execution_id, e.type)
              for e in store.mlmd.get_events_by_execution_ids([execution.id])}
    assert events == {(data.id, execution.id, pb.Event.INPUT), (model.id, execution.id, pb.Event.OUTPUT)}
    context = store.mlmd.get_context_by_type_and_name("Experiment", "default")
    assert [e.id for e in store.mlmd.get_executions_by_context(context.id)] == [execution.id]


def test_running_twice_adds_a_run_without_duplicating_types(tmp_path):
    store = mx.open_store(tmp_path / "metadata.db", create=True)
    first = workflow.run_demo(store, tmp_path)
    second = workflow.run_demo(store, tmp_path, experiment="again")
    assert second.execution.id != first.execution.id
    assert (first.dataset.version, second.dataset.version) == (1, 2)
    assert (first.model.version, second.model.version) == (1, 2)
    assert second.counts == {"COMPLETE": 2}
    assert sorted(t.name for t in store.mlmd.get_artifact_types()) == ["DataSet", "SavedModel"]
    assert [t.name for t in store.mlmd.get_execution_types()] == ["Trainer"]
    assert [t.name for t in store.mlmd.get_context_types()] == ["Experiment"]
    assert sorted(c.name for c in store.mlmd.get_contexts()) == ["again", "default"]
    assert [(r, a.id) for r, a in second.lineage.inputs] == [("examples", second.dataset.id)]
    assert [(r, a.id) for r, a in second.lineage.outputs] == [("model", second.model.id)]


@pytest.mark.parametrize("error, state", [
    (ValueError("bad data"), "FAILED"), (KeyboardInterrupt(), "CANCELED"),
])
def test_a_training_failure_is_recorded_and_raised(tmp_path, monkeypatch, error, state):
    def broken(frame, path):
        raise error

    monkeypatch.setattr(workflow, "_train", broken)
    store = mx.open_store(tmp_path / "metadata.db", create=True)
    with pytest.raises(type(error)):
        workflow.run_demo(store, tmp_path)
    [execution] = store.mlmd.get_executions()
    assert pb.Execution.State.Name(execution.last_known_state) == state
    assert [a.type for a in store.mlmd.get_artifacts()] == ["DataSet"]  # no model without a run
