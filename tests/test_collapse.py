"""collapse.py: alike executions drawn as one node, and only those."""

from __future__ import annotations

import dataclasses

from mlmd_exercise.collapse import collapse, differing_params
from mlmd_exercise.records import ArtifactRecord, ExecutionRecord, LineageEdge, LineageGraph


def _fan(n: int, read_one: bool = False) -> LineageGraph:
    artifacts = {1: ArtifactRecord(1, "DataSet", "s3://d", "LIVE")}
    executions, edges = {}, []
    for i in range(n):
        e, m = 100 + i, 1000 + i
        executions[e] = ExecutionRecord(e, "Trainer", "COMPLETE")
        artifacts[m] = ArtifactRecord(m, "SavedModel", f"s3://m{i}", "LIVE")
        edges += [LineageEdge(1, e, "INPUT", "examples"), LineageEdge(m, e, "OUTPUT", "model")]
    if read_one:  # an Evaluator reads the first model: that trainer has a story of its own
        executions[99] = ExecutionRecord(99, "Evaluator", "COMPLETE")
        edges.append(LineageEdge(1000, 99, "INPUT", "model"))
    return LineageGraph(artifacts, executions, tuple(edges))


def test_alike_executions_and_their_outputs_become_one_node():
    drawn, groups = collapse(_fan(50))
    assert [(g.type, g.state, len(g.ids), g.outputs) for g in groups] == [("Trainer", "COMPLETE", 50, 50)]
    assert sorted(drawn.executions) == [100] and sorted(drawn.artifacts) == [1, 1000]
    assert drawn.collapsed == {100: tuple(range(100, 150))}
    assert drawn.collapsed_artifacts == {1000: tuple(range(1000, 1050))}
    assert sorted((e.artifact_id, e.execution_id) for e in drawn.edges) == [(1, 100), (1000, 100)]


def test_a_run_whose_output_is_read_stays_apart_and_few_are_not_collapsed():
    drawn, groups = collapse(_fan(50, read_one=True))
    assert len(groups) == 1 and 100 not in groups[0].ids and len(groups[0].ids) == 49
    assert 100 in drawn.executions and 1000 in drawn.artifacts
    graph = _fan(4)
    assert collapse(graph) == (graph, [])


def _runs(*properties: dict) -> list:
    return [ExecutionRecord(100 + i, "Trainer", "COMPLETE", p) for i, p in enumerate(properties)]


def test_a_collapsed_sweep_says_which_params_differ_and_over_what_range():
    runs = _runs(*({"C": c, "solver": s, "penalty": "l2", "accuracy": 0.5 + c / 1000, "metric_names": "accuracy",
                    "tag.owner": f"u{i}", "env.python": f"3.{i}", "started_ms": 1000 + i, "run.name": f"r{i}"}
                   for i, (c, s) in enumerate([(0.01, "lbfgs"), (1, "saga"), (100, "lbfgs")])))
    # Metrics (named by metric_names, or held by an output), tags, the environment and how the run
    # ended differ from run to run in any sweep: only its params are named.
    assert differing_params(runs) == ("C 0.01–100", "solver lbfgs, saga")
    assert differing_params(runs, {"C"}) == ("solver lbfgs, saga",)  # C held by an output: a metric
    many = _runs(*({"tol": 10 ** -i, "name": f"a-rather-long-text-value-{i}", "k": i % 2 == 0} for i in range(6)))
    assert differing_params(many) == ("k False, True", "name 6 values", "tol 1e-05–1")
    wide = _runs({"a": 1, "b": 1, "c": 1, "d": 1, "e": 1}, {"a": 2, "b": 2, "c": 2, "d": 2})
    assert differing_params(wide) == ("a 1–2", "b 1–2", "c 1–2", "2 more")  # e: some unset
    assert differing_params(_runs({"a": 1}, {"a": 1, "b": "x"})) == ("b (some unset)",)
    assert differing_params(_runs({"a": 1}, {"a": 1})) == ()


def test_the_collapsed_node_and_its_group_carry_the_range():
    graph = _fan(6)
    executions = {i: dataclasses.replace(e, properties={"C": 10 ** (i - 103)}) for i, e in graph.executions.items()}
    drawn, groups = collapse(dataclasses.replace(graph, executions=executions))
    assert groups[0].differ == ("C 0.001–100",) and drawn.collapsed_differ == {100: ("C 0.001–100",)}
    assert collapse(_fan(6))[0].collapsed_differ == {}  # nothing differs: nothing said


def test_a_whole_stores_shape_counts_the_nodes_its_collapsed_picture_has(tmp_path):
    """`graph` refuses a store too big to draw from its shape alone (read/lineage.store_parts),
    before any record is read: the count must be the one the picture drawn from records has."""
    import mlmd_exercise as mx
    from mlmd_exercise.collapse import Shape, shape_of
    from mlmd_exercise.read.lineage import lineage_graph, store_parts
    from mlmd_exercise.write.bulk import ArtifactSpec, RunSpec, record_runs

    store = mx.open_store(tmp_path / "s.db", create=True, backend="native")
    runs = [RunSpec(inputs={"examples": ArtifactSpec(f"file:///d/{i % 3}.csv")},
                    outputs={"model": ArtifactSpec(f"file:///m/{i}.joblib", type="SavedModel")},
                    state="FAILED" if i % 7 == 0 else "COMPLETE") for i in range(40)]
    runs += [RunSpec("Evaluator", inputs={"model": ArtifactSpec("file:///m/1.joblib", type="SavedModel")})]
    record_runs(mx.Tracker(store), runs)
    graph = lineage_graph(store)
    drawn, groups = collapse(graph)
    shape = Shape.of(*store_parts(store))
    assert groups and shape.drawn_nodes() == len(drawn.artifacts) + len(drawn.executions) < 40 + 40 + 3 + 1
    assert shape_of(graph).drawn_nodes() == shape.drawn_nodes()
    assert (len(shape.executions), len(shape.artifact_types)) == (len(graph.executions), len(graph.artifacts))


def test_a_chains_shape_holds_its_one_input_and_output_a_run_without_a_list_each():
    """`graph` refuses a 200,000-run walk or store from its shape: one list a run for its one input
    and another for its one output took 35 MB of the 212 MB that came to (bound: 200 MB). 100,000
    runs of a chain: 43 MB traced with the lists, 27 MB without (Python 3.11 and 3.13 alike)."""
    import tracemalloc

    from mlmd_exercise.collapse import Shape

    n = 100_000
    runs = {i: ("Trainer", "COMPLETE") for i in range(1, n + 1)}
    artifacts = {i: "SavedModel" for i in range(1, n + 2)}
    edges = [e for i in range(1, n + 1)
             for e in (LineageEdge(i, i, "INPUT", "model"), LineageEdge(i + 1, i, "OUTPUT", "model"))]
    tracemalloc.start()
    try:
        shape = Shape.of(runs, artifacts, iter(edges))
        peak = tracemalloc.get_traced_memory()[1] / 2 ** 20
    finally:
        tracemalloc.stop()
    assert peak < 35, f"{peak:.1f} MB"
    assert shape.drawn_nodes() == 2 * n + 1  # each run's output is the next one's input: none alike
    assert shape.groups() == []
