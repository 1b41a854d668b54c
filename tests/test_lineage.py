"""lineage.py: one hop of lineage, whole-store graphs and counts by state, on known graphs."""

from __future__ import annotations

from pathlib import Path

import pytest

import mlmd_exercise as mx
from mlmd_exercise.schema import ExecutionState


def _run(store, tmp_path: Path, inputs, state=ExecutionState.COMPLETE, model="m.joblib"):
    run = mx.start_execution(store, inputs)
    outputs = {"model": mx.new_model(tmp_path / model, name="LR")} if state == "COMPLETE" else {}
    produced = mx.finish_execution(store, run.id, outputs, state=state) if state != "RUNNING" else []
    return run, produced


def test_one_hop_lists_inputs_and_outputs_with_roles(store, tmp_path):
    train = mx.log_dataset(store, tmp_path / "train.csv", split="train")
    extra = mx.log_dataset(store, tmp_path / "extra.csv", split="train")
    run, [model] = _run(store, tmp_path, {"examples": train, "more": extra})
    one = mx.execution_lineage(store, run.id)
    assert one.execution.id == run.id and one.execution.state == "COMPLETE"
    assert [(role, a.id, a.type) for role, a in one.inputs] == [
        ("examples", train.id, "DataSet"), ("more", extra.id, "DataSet")]
    assert [(role, a.id, a.uri) for role, a in one.outputs] == [("model", model.id, model.uri)]


def test_one_hop_of_a_run_with_no_events(store, tmp_path):
    run, _ = _run(store, tmp_path, {}, state=ExecutionState.RUNNING)
    one = mx.execution_lineage(store, run.id)
    assert (one.inputs, one.outputs) == ((), ())


@pytest.mark.parametrize("bad_id", [42, 0, -1])
def test_unknown_execution_ids_are_named(store, db_path, bad_id):
    with pytest.raises(mx.NotFoundError) as e:
        mx.execution_lineage(store, bad_id)
    assert str(e.value) == f"no execution with id {bad_id} in {db_path}"


def test_counts_by_state_in_mlmd_order_only_states_present(store, tmp_path):
    assert mx.count_by_state(store) == {}
    data = mx.log_dataset(store, tmp_path / "d.csv", split="train")
    for state in ["COMPLETE", "FAILED", "COMPLETE", "RUNNING", "CANCELED", "COMPLETE"]:
        _run(store, tmp_path, {"examples": data}, state=ExecutionState(state))
    counts = mx.count_by_state(store)
    assert counts == {"RUNNING": 1, "COMPLETE": 3, "FAILED": 1, "CANCELED": 1}
    assert list(counts) == ["RUNNING", "COMPLETE", "FAILED", "CANCELED"]


def test_whole_store_graph_and_one_execution_graph(store, tmp_path):
    data = mx.log_dataset(store, tmp_path / "d.csv", split="train")
    first, [m1] = _run(store, tmp_path, {"examples": data})
    second, [m2] = _run(store, tmp_path, {"examples": data})
    graph = mx.lineage_graph(store)
    assert set(graph.artifacts) == {data.id, m1.id, m2.id}
    assert set(graph.executions) == {first.id, second.id}
    assert {(e.artifact_id, e.execution_id, e.kind, e.role) for e in graph.edges} == {
        (data.id, first.id, "INPUT", "examples"), (m1.id, first.id, "OUTPUT", "model"),
        (data.id, second.id, "INPUT", "examples"), (m2.id, second.id, "OUTPUT", "model")}
    one = mx.lineage_graph(store, second.id)
    assert set(one.artifacts) == {data.id, m2.id} and set(one.executions) == {second.id}
    assert {(e.artifact_id, e.kind) for e in one.edges} == {(data.id, "INPUT"), (m2.id, "OUTPUT")}


def test_graph_of_an_empty_store_is_empty(store):
    graph = mx.lineage_graph(store)
    assert (graph.artifacts, graph.executions, graph.edges) == ({}, {}, ())
