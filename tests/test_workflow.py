"""workflow.py: the demo job end to end on a real store, real files, real scikit-learn."""

from __future__ import annotations

import json

import joblib
import pandas as pd
import pytest

import mlmd_exercise as mx
from conftest import store_matrix
from mlmd_exercise import workflow
from raw_mlmd import pb, raw_mlmd


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
    artifacts = raw_mlmd(store).get_artifacts()
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
    assert 0 <= model.custom_properties["train_accuracy"].double_value <= 1
    [execution] = raw_mlmd(store).get_executions()
    assert execution.type == "Trainer" and execution.last_known_state == pb.Execution.COMPLETE
    assert execution.custom_properties["C"].double_value == 1.0
    events = {(e.artifact_id, e.execution_id, e.type)
              for e in raw_mlmd(store).get_events_by_execution_ids([execution.id])}
    assert events == {(data.id, execution.id, pb.Event.INPUT), (model.id, execution.id, pb.Event.OUTPUT)}
    context = raw_mlmd(store).get_context_by_type_and_name("Experiment", "default")
    assert [e.id for e in raw_mlmd(store).get_executions_by_context(context.id)] == [execution.id]


def test_running_again_on_unchanged_data_reuses_the_dataset(store, tmp_path):
    first = workflow.run_demo(store, tmp_path)
    second = workflow.run_demo(store, tmp_path, experiment="again")
    assert second.trainer.id != first.trainer.id
    assert second.datasets == first.datasets  # the same artifact: same URI, same content
    assert second.counts == {"COMPLETE": 2}
    consumers = raw_mlmd(store).get_events_by_artifact_ids([first.datasets[0].id])
    assert sorted(e.execution_id for e in consumers) == [first.trainer.id, second.trainer.id]
    assert sorted(t.name for t in raw_mlmd(store).get_artifact_types()) == ["DataSet", "Metrics", "SavedModel"]
    assert sorted(t.name for t in raw_mlmd(store).get_execution_types()) == ["Evaluator", "Trainer"]
    assert [t.name for t in raw_mlmd(store).get_context_types()] == ["Experiment", "MetricHistory"]
    assert sorted(c.name for c in raw_mlmd(store).get_contexts_by_type("Experiment")) == ["again", "default"]
    [trainer] = second.runs
    assert [(r, a.id) for r, a in trainer.inputs] == [("examples", first.datasets[0].id)]
    assert [(r, a.id) for r, a in trainer.outputs] == [("model", second.model.id)]


def test_changed_data_is_the_next_version(store, tmp_path, monkeypatch):
    first = workflow.run_demo(store, tmp_path)
    original = workflow.make_dataset
    monkeypatch.setattr(workflow, "make_dataset", lambda: original().assign(feature2=lambda f: f.feature1 * 3))
    second = workflow.run_demo(store, tmp_path)
    assert second.datasets[0].id != first.datasets[0].id
    assert second.datasets[0].uri == first.datasets[0].uri
    assert (first.datasets[0].version, second.datasets[0].version) == (1, 2)


def _cancer(address, workdir):
    """The demo on breast_cancer: (its folder, the store, the demo's result)."""
    store = mx.open_store(address, create=True)
    return workdir, store, workflow.run_demo(store, workdir, dataset="breast_cancer")


cancer = store_matrix(_cancer)


def test_a_bundled_dataset_is_split_trained_and_evaluated(cancer):
    workdir, store, result = cancer
    train, test = result.datasets
    assert (train.properties["split"], test.properties["split"]) == ("train", "test")
    train_rows = pd.read_csv(workdir / "data" / "breast_cancer_train.csv")
    test_rows = pd.read_csv(workdir / "data" / "breast_cancer_test.csv")
    assert (len(train_rows), len(test_rows)) == (426, 143)  # 569 rows, a quarter held out
    saved = json.loads((workdir / "metrics" / "breast_cancer_metrics.json").read_text())
    assert saved["n_examples"] == 143 and 0.9 < saved["accuracy"] <= 1
    metrics = result.metrics
    assert metrics.type == "Metrics"
    assert metrics.properties["accuracy"] == pytest.approx(saved["accuracy"], abs=1e-5)
    assert [r.execution.type for r in result.runs] == ["Trainer", "Evaluator"]
    evaluator = result.runs[1]
    assert {(r, a.id) for r, a in evaluator.inputs} == {("model", result.model.id), ("examples", test.id)}
    assert [(r, a.id) for r, a in evaluator.outputs] == [("metrics", metrics.id)]


def test_the_metrics_lineage_reaches_both_splits(cancer):
    _, store, result = cancer
    graph = mx.walk(store, artifact_id=result.metrics.id, direction="upstream")
    splits = sorted(a.properties["split"] for a in graph.artifacts.values() if a.type == "DataSet")
    assert splits == ["test", "train"]
    assert sorted(e.type for e in graph.executions.values()) == ["Evaluator", "Trainer"]


def test_the_split_is_the_same_on_every_run(cancer, tmp_path):
    workdir, _, _ = cancer
    again = workflow.run_demo(mx.open_store(tmp_path / "m.db", create=True), tmp_path,
                              dataset="breast_cancer")
    assert (tmp_path / "data" / "breast_cancer_test.csv").read_bytes() == (
        workdir / "data" / "breast_cancer_test.csv").read_bytes()
    assert again.datasets[1].properties["fingerprint"] == cancer[2].datasets[1].properties["fingerprint"]


def test_an_unknown_dataset_is_named_before_anything_is_written(store, tmp_path):
    with pytest.raises(mx.MlmdExerciseError, match="^unknown dataset 'mnist': use one of iris, wine, breast_cancer, digits$"):
        workflow.run_demo(store, tmp_path, dataset="mnist")
    assert not (tmp_path / "data").exists() and raw_mlmd(store).get_artifacts() == []


@pytest.mark.parametrize("error, state", [
    (ValueError("bad data"), "FAILED"), (KeyboardInterrupt(), "CANCELED"),
])
def test_a_training_failure_is_recorded_and_raised(store, tmp_path, monkeypatch, error, state):
    def broken(frame, path, scaled):
        raise error

    monkeypatch.setattr(workflow, "_train", broken)
    with pytest.raises(type(error)):
        workflow.run_demo(store, tmp_path)
    [execution] = raw_mlmd(store).get_executions()
    assert pb.Execution.State.Name(execution.last_known_state) == state
    assert execution.custom_properties["error_type"].string_value == type(error).__name__
    assert [a.type for a in raw_mlmd(store).get_artifacts()] == ["DataSet"]  # no model without a run


def test_the_cli_offers_exactly_the_bundled_datasets(run_cli):
    from mlmd_exercise.records import BUNDLED_DATASETS

    result = run_cli("run", "--dataset", "nope")
    assert result.code == 2 and all(f"'{name}'" in result.err for name in BUNDLED_DATASETS)
