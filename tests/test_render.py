"""render.py: real graphviz and matplotlib output from plain records, no store needed."""

from __future__ import annotations


import pytest

from mlmd_exercise import render
from mlmd_exercise.errors import RenderError
from mlmd_exercise.records import ArtifactRecord, ExecutionRecord, LineageEdge, LineageGraph

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def graph() -> LineageGraph:
    data = ArtifactRecord(1, "DataSet", "file:///w/data/train_dataset.csv", "LIVE",
                          {"split": "train", "version": 1})
    model = ArtifactRecord(2, "SavedModel", "file:///w/models/trained_model.joblib", "LIVE",
                           {"name": "LogisticRegressionModel", "version": 3})
    done = ExecutionRecord(7, "Trainer", "COMPLETE")
    failed = ExecutionRecord(8, "Trainer", "FAILED")
    return LineageGraph(
        {1: data, 2: model}, {7: done, 8: failed},
        (LineageEdge(1, 7, "INPUT", "examples"), LineageEdge(2, 7, "OUTPUT", "model"),
         LineageEdge(1, 8, "INPUT", "examples")),
    )


def test_dot_source_shapes_labels_fills_and_edge_directions(graph):
    src = render.lineage_source(graph)
    assert 'a1 [label="DataSet #1\ntrain_dataset.csv\nv1" shape=note' in src
    assert 'a2 [label="SavedModel #2\nLogisticRegressionModel\nv3" shape=note' in src
    assert f'e7 [label="Trainer #7\nCOMPLETE" fillcolor="{render.STATE_COLORS["COMPLETE"]}" shape=box' in src
    assert f'fillcolor="{render.STATE_COLORS["FAILED"]}"' in src
    assert "a1 -> e7 [label=examples]" in src  # input: artifact -> execution
    assert "e7 -> a2 [label=model]" in src  # output: execution -> artifact
    assert "a1 -> e8" in src


def test_labels_with_quotes_stay_inside_their_string():
    odd = ArtifactRecord(1, "DataSet", 'file:///w/a"b\\c.csv', "LIVE", {})
    src = render.lineage_source(LineageGraph({1: odd}, {}, ()))
    assert 'label="DataSet #1\na\\"b\\\\c.csv"' in src


@pytest.mark.parametrize("name, magic", [
    ("g.svg", b"<?xml"), ("g.png", PNG_MAGIC), ("g.pdf", b"%PDF"), ("g.dot", b"digraph lineage"),
])
def test_render_writes_the_format_of_the_extension(graph, tmp_path, name, magic):
    out = render.render_lineage(graph, tmp_path / name)
    assert out.read_bytes().startswith(magic)


def test_svg_names_dataset_execution_and_model(graph, tmp_path):
    svg = render.render_lineage(graph, tmp_path / "g.svg").read_text()
    for text in ["train_dataset.csv", "Trainer #7", "COMPLETE", "LogisticRegressionModel"]:
        assert text in svg


@pytest.mark.parametrize("name, message", [
    ("g.gif", "unknown output format '.gif' of '{dir}/g.gif': use one of .svg, .png, .pdf, .dot"),
    ("g.SVGZ", "unknown output format '.svgz' of '{dir}/g.SVGZ': use one of .svg, .png, .pdf, .dot"),
    ("graph", "output path '{dir}/graph' has no extension: use one of .svg, .png, .pdf, .dot"),
])
def test_unknown_graph_formats_are_named(graph, tmp_path, name, message):
    with pytest.raises(RenderError) as e:
        render.render_lineage(graph, tmp_path / name)
    assert str(e.value) == message.format(dir=tmp_path)
    assert not (tmp_path / name).exists()


def test_missing_dot_is_said_and_nothing_is_written(graph, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # a PATH with no dot on it
    with pytest.raises(RenderError, match="graphviz's 'dot' program is not on the PATH"):
        render.render_lineage(graph, tmp_path / "g.svg")
    assert not (tmp_path / "g.svg").exists()
    # The DOT source needs no program.
    assert render.render_lineage(graph, tmp_path / "g.dot").exists()


def test_states_chart_is_a_png_with_one_bar_per_state(tmp_path):
    out = render.render_states_chart({"COMPLETE": 3, "FAILED": 1}, tmp_path / "s.png")
    data = out.read_bytes()
    assert data.startswith(PNG_MAGIC)
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (1200, 800)  # 6 x 4 inches at twice a screen's resolution


def test_states_chart_svg_has_title_axes_and_bars(tmp_path):
    svg = render.render_states_chart({"RUNNING": 2, "COMPLETE": 5}, tmp_path / "s.svg").read_text()
    for text in ["Executions by state (7 in all)", "State", "Executions", "RUNNING", "COMPLETE"]:
        assert text in svg
    assert "FAILED" not in svg
    # One bar (a filled patch in the state's colour) per state present.
    for state in ["RUNNING", "COMPLETE"]:
        assert svg.count(render.STATE_COLORS[state]) == 1


def test_states_chart_of_no_executions(tmp_path):
    svg = render.render_states_chart({}, tmp_path / "s.svg").read_text()
    assert "no executions yet" in svg


def test_states_chart_refuses_unknown_formats(tmp_path):
    with pytest.raises(RenderError, match=r"unknown output format '\.jpg' of '.*s\.jpg': use one of \.png, \.svg, \.pdf"):
        render.render_states_chart({"COMPLETE": 1}, tmp_path / "s.jpg")


def test_any_stored_string_is_text_never_html_or_dot():
    odd = "<class 'pandas.DataFrame'>"
    a = ArtifactRecord(1, odd, "file:///w/x", "LIVE", {"name": '<b>"x"</b>\\N'})
    e = ExecutionRecord(2, "<stdin>", "UNKNOWN", {"display_name": "} digraph {"})
    src = render.lineage_source(LineageGraph({1: a}, {2: e}, (LineageEdge(1, 2, "INPUT", "<stdin>", "DECLARED_INPUT"),)))
    assert f'label="{odd} #1\n<b>\\"x\\"</b>\\\\N"' in src
    assert 'label="} digraph { #2\nUNKNOWN"' in src
    assert 'label="<stdin> (DECLARED_INPUT)"' in src


def test_png_is_drawn_at_twice_the_resolution_with_a_white_margin(graph, tmp_path):
    import re
    import struct

    from PIL import Image

    png = render.render_lineage(graph, tmp_path / "g.png")
    width, height = struct.unpack(">II", png.read_bytes()[16:24])
    svg = render.render_lineage(graph, tmp_path / "g.svg").read_text()
    points = float(re.search(r'<svg width="([\d.]+)pt"', svg).group(1))  # 72 points an inch
    assert width >= 2 * points * 96 / 72  # at least twice graphviz's own 96 dpi
    pixels = Image.open(png).convert("RGB")
    margin = [pixels.getpixel((x, y)) for x in range(width) for y in range(20)]
    margin += [pixels.getpixel((x, y)) for x in range(20) for y in range(height)]
    assert set(margin) == {(255, 255, 255)}  # nothing touches the picture's edge


def test_the_legend_names_the_shapes_and_each_state_drawn(graph):
    src = render.lineage_source(graph)
    assert "subgraph cluster_legend" in src
    assert 'legend_artifact [label="artifact\n(file, model, ...)" fontsize=9 shape=note' in src
    assert f'label="execution\nCOMPLETE" fillcolor="{render.STATE_COLORS["COMPLETE"]}"' in src
    assert f'label="execution\nFAILED" fillcolor="{render.STATE_COLORS["FAILED"]}"' in src
    assert "execution\nRUNNING" not in src  # only the states drawn
    assert "cluster_legend" not in render.lineage_source(LineageGraph({}, {}, ()))


def test_metrics_show_their_headline_metric_and_runs_their_name():
    metrics = ArtifactRecord(4, "Metrics", "file:///w/metrics/iris_metrics.json", "LIVE",
                             {"accuracy": 0.973684, "f1_macro": 0.97, "version": 1})
    other = ArtifactRecord(5, "Metrics", "file:///w/metrics/m.json", "LIVE", {"rmse": 1.5})
    named = ExecutionRecord(2, "Evaluator", "COMPLETE", name="nightly-2023-05-01")
    unnamed = ExecutionRecord(3, "Trainer", "COMPLETE", name="0f" * 16)  # the default UUID
    src = render.lineage_source(LineageGraph({4: metrics, 5: other}, {2: named, 3: unnamed}, ()))
    assert 'a4 [label="Metrics #4\niris_metrics.json\naccuracy 0.9737\nv1"' in src
    assert 'a5 [label="Metrics #5\nm.json\nrmse 1.5"' in src
    assert 'e2 [label="Evaluator #2\nnightly-2023-05-01\nCOMPLETE"' in src
    assert 'e3 [label="Trainer #3\nCOMPLETE"' in src
