"""lineage.py: one hop, multi-hop walks with known answers, whole-store graphs, counts."""

from __future__ import annotations

import gc
import re
import weakref
from pathlib import Path
from types import SimpleNamespace

import pytest

import mlmd_exercise as mx
from conftest import deep_chain, store_matrix, write
from mlmd_exercise.read.lineage import graph_of, walk_hops
from mlmd_exercise.version import MLMD_WITHOUT_FILTERS, major_minor
from mlmd_exercise.records import ExecutionState
from mlmd_exercise.store.backend import Query
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
    ml_metadata = pytest.importorskip("ml_metadata", reason="ml-metadata is not installed: a check against it")
    if major_minor(ml_metadata.__version__) >= MLMD_WITHOUT_FILTERS:
        pytest.skip("ml-metadata 1.21 has no get_lineage_subgraph (its filter language is gone): "
                    "the reference is 1.17's, checked on Python 3.11")
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


def _deep(address, workdir):
    """A chain of 1,500 runs, each also reading the first dataset (see `deep_chain`)."""
    store = mx.open_store(address, create=True)
    deep_chain(store, 1500, shared=True)
    return store


deep = store_matrix(_deep)


def _newest_model(store) -> int:
    return store.backend.artifacts(Query(order="id", limit=1))[0].id


@pytest.mark.parametrize("start, direction, hops", [
    ("newest", "upstream", None), ("data", "downstream", None), ("data", "both", None),
    ("middle", "both", None), ("middle", "both", 300), ("newest", "upstream", 1001),
    ("middle-run", "downstream", None), ("middle-run", "both", 7),
])
def test_a_deep_walk_hop_by_hop_gives_what_walk_gives(deep, start, direction, hops):
    newest = _newest_model(deep)
    kind, node = {"newest": ("artifact_id", newest), "data": ("artifact_id", 1),
                  "middle": ("artifact_id", newest // 2), "middle-run": ("execution_id", 750)}[start]
    graph = mx.walk(deep, **{kind: node}, direction=direction, hops=hops)
    walked = list(walk_hops(deep, **{kind: node}, direction=direction, hops=hops, page=100))
    assert graph_of(walked) == graph
    assert list(graph_of(walked).artifacts) == list(graph.artifacts)  # the same order too
    # Each node once, at the first hop that reaches it; hops in order, upstream first.
    ids = [(type(n), n.id) for hop in walked for n in hop.artifacts + hop.executions]
    assert len(ids) == len(set(ids)) == len(graph.artifacts) + len(graph.executions)
    order = [(hop.direction != walked[0].direction, hop.number) for hop in walked]
    assert order == sorted(order) and walked[0].number == 0 and walked[-1].page_end
    assert all(hop.number <= (hops if hops is not None else 10 ** 9) for hop in walked)
    # Records come a page at a time: a page holds at most 100 nodes beyond its last hop's.
    page = 0
    for hop in walked:
        last = len(hop.artifacts) + len(hop.executions)
        assert page < 100 or hop.page_end, "a page went on past 100 nodes"
        page = 0 if hop.page_end else page + last
    if (start, direction, hops) == ("newest", "upstream", None):
        assert len(walked) == 2 * 1500 + 1  # hop 0 and one hop per event of the chain
        assert len(graph.artifacts) == 1501 and len(graph.executions) == 1500


def test_a_walk_hop_by_hop_keeps_no_record_it_has_yielded(deep):
    """What was yielded is the caller's: the walk keeps ids only, so memory does not grow
    with the records already shown."""
    seen = []
    for hop in walk_hops(deep, artifact_id=_newest_model(deep), direction="upstream", page=50):
        if hop.number == 10:
            seen = [weakref.ref(r) for r in hop.artifacts + hop.executions]
        if hop.number == 400:  # 8 pages on: hop 10's records are gone
            gc.collect()
            assert seen and all(ref() is None for ref in seen)
            break
    else:
        pytest.fail("the walk ended before hop 400")


def test_walk_hops_checks_its_start_at_once(store, chain):
    with pytest.raises(mx.NotFoundError, match="^no artifact with id 999 in "):
        walk_hops(store, artifact_id=999)  # not only once the first hop is asked for
    with pytest.raises(ValueError, match="unknown direction 'sideways'"):
        walk_hops(store, artifact_id=chain.m1.id, direction="sideways")


def test_a_walk_both_ways_through_a_cycle_gives_each_node_and_event_once(store, chain):
    """Another tool may record a run that reads what it writes (an in-place update): walked
    both ways, the cycle is in both legs, and is shown once."""
    event = pb.Event(artifact_id=chain.m1.id, execution_id=chain.t1.id, type=pb.Event.INPUT)
    event.path.steps.add().key = "warm_start"
    raw_mlmd(store).put_events([event])
    walked = list(walk_hops(store, artifact_id=chain.m1.id, direction="both"))
    ids = [(type(n), n.id) for hop in walked for n in hop.artifacts + hop.executions]
    edges = [(e.artifact_id, e.execution_id, e.kind) for hop in walked for e in hop.edges]
    assert len(ids) == len(set(ids)) and len(edges) == len(set(edges))
    graph = mx.walk(store, artifact_id=chain.m1.id, direction="both")
    assert graph_of(walked) == graph
    assert {(e.artifact_id, e.execution_id, e.kind, e.role) for e in graph.edges} >= {
        (chain.m1.id, chain.t1.id, "INPUT", "warm_start"), (chain.m1.id, chain.t1.id, "OUTPUT", "model")}
