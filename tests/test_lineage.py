"""lineage.py: one hop, multi-hop walks with known answers, whole-store graphs, counts."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import pytest

import mlmd_exercise as mx
from conftest import write
from mlmd_exercise.schema import ExecutionState
from raw_mlmd import pb, raw_mlmd


def _train(tracker, tmp_path: Path, inputs, model_text: str, experiment=None):
    with tracker.execution("Trainer", inputs=inputs, experiment=experiment) as run:
        run.log_model(write(tmp_path / f"{model_text}.joblib", model_text), name="LR")
    return run


@pytest.fixture
def chain(tracker, tmp_path):
    """A hand-built graph with known answers:

        train -> T1 -> m1 -> E1 -> metrics      other -> T3 -> m3
                  |          ^
        train -> T2 -> m2    test
    """
    n = SimpleNamespace()
    n.train = tracker.log_dataset(write(tmp_path / "train.csv", "train"), split="train")
    n.test = tracker.log_dataset(write(tmp_path / "test.csv", "test"), split="test")
    n.other = tracker.log_dataset(write(tmp_path / "other.csv", "other"), split="train")
    n.t1 = _train(tracker, tmp_path, {"examples": n.train}, "m1", experiment="a")
    n.m1 = n.t1.outputs["model"]
    with tracker.execution("Evaluator", inputs={"model": n.m1, "examples": n.test},
                           experiment="a") as n.e1:
        n.e1.log_output("metrics", write(tmp_path / "metrics.json", "{}"), type="Metrics")
    n.metrics = n.e1.outputs["metrics"]
    n.t2 = _train(tracker, tmp_path, {"examples": n.train}, "m2", experiment="b")
    n.m2 = n.t2.outputs["model"]
    n.t3 = _train(tracker, tmp_path, {"examples": n.other}, "m3", experiment="b")
    n.m3 = n.t3.outputs["model"]
    return n


def _ids(graph):
    return set(graph.artifacts), set(graph.executions)


@pytest.mark.parametrize("start, direction, hops, artifacts, executions", [
    ("metrics", "upstream", 0, ["metrics"], []),
    ("metrics", "upstream", 1, ["metrics"], ["e1"]),
    ("metrics", "upstream", 2, ["metrics", "m1", "test"], ["e1"]),
    ("metrics", "upstream", 3, ["metrics", "m1", "test"], ["e1", "t1"]),
    ("metrics", "upstream", None, ["metrics", "m1", "test", "train"], ["e1", "t1"]),
    ("train", "downstream", 1, ["train"], ["t1", "t2"]),
    ("train", "downstream", 2, ["train", "m1", "m2"], ["t1", "t2"]),
    ("train", "downstream", None, ["train", "m1", "m2", "metrics"], ["t1", "t2", "e1"]),
    ("m1", "both", 2, ["m1", "train", "metrics"], ["t1", "e1"]),
    ("m1", "both", None, ["m1", "train", "metrics"], ["t1", "e1"]),  # not the cousin "test"
    ("t1", "upstream", None, ["train"], ["t1"]),
    ("t1", "downstream", 1, ["m1"], ["t1"]),
    ("other", "downstream", None, ["other", "m3"], ["t3"]),
])
def test_walks_have_known_answers(store, chain, start, direction, hops, artifacts, executions):
    node = getattr(chain, start)
    kind = "artifact_id" if isinstance(node, mx.ArtifactRecord) else "execution_id"
    graph = mx.walk(store, **{kind: node.id}, direction=direction, hops=hops)
    assert _ids(graph) == ({getattr(chain, a).id for a in artifacts},
                           {getattr(chain, e).id for e in executions})
    # Each edge joins two nodes of the graph.
    for edge in graph.edges:
        assert edge.artifact_id in graph.artifacts and edge.execution_id in graph.executions


@pytest.mark.parametrize("start, direction", [
    ("metrics", "upstream"), ("train", "downstream"), ("m1", "upstream"), ("test", "downstream"),
])
@pytest.mark.parametrize("hops", [1, 2, 3, 4, 20])
def test_walks_match_mlmds_get_lineage_subgraph(store, chain, start, direction, hops):
    node = getattr(chain, start)
    options = pb.LineageSubgraphQueryOptions(
        max_num_hops=hops,
        direction=getattr(pb.LineageSubgraphQueryOptions, direction.upper()),
    )
    options.starting_artifacts.filter_query = f"id = {node.id}"
    expected = raw_mlmd(store).get_lineage_subgraph(options, ["artifacts", "executions", "events"])
    graph = mx.walk(store, artifact_id=node.id, direction=direction, hops=hops)
    assert _ids(graph) == ({a.id for a in expected.artifacts}, {e.id for e in expected.executions})
    assert {(e.artifact_id, e.execution_id) for e in graph.edges} == {
        (e.artifact_id, e.execution_id) for e in expected.events}


def test_walk_refuses_bad_starts(store, chain):
    with pytest.raises(mx.NotFoundError, match=f"^no artifact with id 999 in {re.escape(str(store))}$"):
        mx.walk(store, artifact_id=999)
    with pytest.raises(mx.NotFoundError, match=f"^no execution with id 999 in {re.escape(str(store))}$"):
        mx.walk(store, execution_id=999)
    with pytest.raises(ValueError, match="exactly one"):
        mx.walk(store, artifact_id=1, execution_id=1)
    with pytest.raises(ValueError, match="unknown direction 'sideways'"):
        mx.walk(store, artifact_id=1, direction="sideways")
    with pytest.raises(ValueError, match="hops must be 0 or more, not -1"):
        mx.walk(store, artifact_id=1, hops=-1)


def test_one_hop_lists_inputs_and_outputs_with_roles(store, chain):
    one = mx.execution_lineage(store, chain.e1.id)
    assert one.execution.id == chain.e1.id and one.execution.state == "COMPLETE"
    assert [(role, a.id) for role, a in one.inputs] == [
        ("examples", chain.test.id), ("model", chain.m1.id)]
    assert [(role, a.id, a.type) for role, a in one.outputs] == [
        ("metrics", chain.metrics.id, "Metrics")]


def test_one_hop_of_a_run_with_no_events(tracker):
    run = tracker.execution()
    one = mx.execution_lineage(tracker.store, run.id)
    assert (one.execution.state, one.inputs, one.outputs) == ("RUNNING", (), ())


@pytest.mark.parametrize("bad_id", [42, 0, -1])
def test_unknown_execution_ids_are_named(store, bad_id):
    with pytest.raises(mx.NotFoundError) as e:
        mx.execution_lineage(store, bad_id)
    assert str(e.value) == f"no execution with id {bad_id} in {store}"


def test_counts_by_state_in_mlmd_order_only_states_present(tracker):
    assert mx.count_by_state(tracker.store) == {}
    for state, experiment in [("COMPLETE", "a"), ("FAILED", "a"), ("COMPLETE", "b"),
                              ("RUNNING", "b"), ("CANCELED", "a"), ("COMPLETE", "a")]:
        run = tracker.execution(experiment=experiment)
        if state != "RUNNING":
            run.finish(ExecutionState(state))
    counts = mx.count_by_state(tracker.store)
    assert counts == {"RUNNING": 1, "COMPLETE": 3, "FAILED": 1, "CANCELED": 1}
    assert list(counts) == ["RUNNING", "COMPLETE", "FAILED", "CANCELED"]
    assert mx.count_by_state(tracker.store, "a") == {"COMPLETE": 2, "FAILED": 1, "CANCELED": 1}
    with pytest.raises(mx.NotFoundError, match="^no experiment named 'zz' in "):
        mx.count_by_state(tracker.store, "zz")


def test_whole_store_graph_one_execution_graph_and_experiments(store, chain):
    graph = mx.lineage_graph(store)
    assert len(graph.artifacts) == 7 and len(graph.executions) == 4
    assert (chain.train.id, chain.t1.id, "INPUT", "examples") in {
        (e.artifact_id, e.execution_id, e.kind, e.role) for e in graph.edges}
    one = mx.lineage_graph(store, chain.t2.id)
    assert _ids(one) == ({chain.train.id, chain.m2.id}, {chain.t2.id})
    clustered = mx.with_experiments(store, graph)
    assert clustered.experiments == {"a": (chain.t1.id, chain.e1.id), "b": (chain.t2.id, chain.t3.id)}


def test_graph_of_an_empty_store_is_empty(store):
    graph = mx.lineage_graph(store)
    assert (graph.artifacts, graph.executions, graph.edges) == ({}, {}, ())
