"""collapse.py: alike executions drawn as one node, and only those."""

from __future__ import annotations

from mlmd_exercise.collapse import collapse
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
