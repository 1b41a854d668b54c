"""What a notebook shows for records, lineage, a Diff and a metric history (`_repr_html_`), and
`mx.show_lineage`, without a kernel: every stored string escaped, no script, nothing from
outside the output. tests/test_notebook.py shows the same in a real notebook."""

from __future__ import annotations

import re
import pytest

import mlmd_exercise as mx
from mlmd_exercise import notebook
from mlmd_exercise.records import ArtifactRecord, ExecutionRecord, LineageEdge, LineageGraph

HOSTILE = "<script>alert(1)</script> & co"
CSV = "iris&<i>.csv"  # a file name that is HTML, with an ampersand
NAMESPACES = {"http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"}


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """A store with a dataset, two runs of it (one named HOSTILE, with a hostile param and
    tag) each making a model, and a loss history of 20 steps."""
    folder = tmp_path_factory.mktemp("notebook-html")
    (folder / CSV).write_text("a,b\n1,2\n")
    (folder / "m1.bin").write_bytes(b"one")
    (folder / "m2.bin").write_bytes(b"two")
    tracker = mx.Tracker(folder / "metadata.db", experiment="<b>exp</b>")
    data = tracker.log_dataset(folder / CSV)
    runs = []
    for n, C in enumerate((0.5, 2.0), start=1):
        with tracker.execution("Trainer", name=HOSTILE if n == 1 else None, inputs={"examples": data},
                               params={"C": C, "<img src=x>": "<b>bold</b>"}, tags={"team": "<v>&"}) as run:
            for step in range(20):
                run.log_metric("loss", 1.0 / (step + n), step=step)
            run.log_model(folder / f"m{n}.bin", name=f"model{n}")
        runs.append(run)
    return folder, tracker.store, data, runs


def _clean(html: str) -> None:
    """No script, and nothing fetched from elsewhere: every address an XML namespace."""
    assert "<script" not in html.lower()
    assert not re.search(r"<[a-zA-Z][^<>]*\s(src|href)=", html)  # no image, no frame, no link to follow
    assert "<link" not in html and "@import" not in html
    assert "url(" not in html.replace("url(#", "")
    assert set(re.findall(r'https?://[^"\s)<]+', html)) <= NAMESPACES


def test_an_artifact_shows_its_facts_and_properties_escaped(recorded):
    folder, store, data, runs = recorded
    model = runs[0].outputs["model"]
    html = model._repr_html_()
    _clean(html)
    assert html.startswith('<div class="mlmdx"><style>')
    assert f"SavedModel #{model.id}" in html and "model1" in html and "fingerprint" in html
    assert "SavedModel v1" in html  # type and version
    csv = mx.get_artifact(store, data.id)._repr_html_()
    assert "iris&amp;&lt;i&gt;.csv" in csv and CSV not in csv
    _clean(csv)


def test_an_execution_shows_its_state_name_params_and_metrics_escaped(recorded):
    folder, store, data, runs = recorded
    html = mx.get_execution(store, runs[0].id)._repr_html_()
    _clean(html)
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in html  # its name, as text
    assert "&lt;img src=x&gt;" in html and "&lt;b&gt;bold&lt;/b&gt;" in html  # a param's key and value
    assert "team=&lt;v&gt;&amp;" in html  # its tag
    assert 'class="state"' in html and "COMPLETE" in html
    assert "<h2>Params</h2>" in html and "<code>C</code></td><td>0.5</td>" in html
    assert "<code>loss</code></td><td>0.05</td>" in html  # the last value logged: 1 / 20
    assert "<details><summary>Environment" in html  # folded: every package is in it
    assert "run.name" not in html and "metric_names" not in html  # shown as the name, or the package's own


def test_a_walk_is_drawn_as_svg_with_the_data_and_the_model(recorded):
    folder, store, data, runs = recorded
    model = runs[0].outputs["model"]
    html = mx.walk(store, artifact_id=model.id, direction="upstream")._repr_html_()
    _clean(html)
    assert "<svg" in html and 'class="node"' in html
    assert "iris&amp;&lt;i&gt;.csv" in html  # the CSV, escaped by graphviz
    assert "model1" in html and "SavedModel #" in html
    assert "2 artifacts, 1 execution" in html
    assert 'class="legend"' in html


def test_one_hop_shows_the_execution_and_its_inputs_and_outputs(recorded):
    folder, store, data, runs = recorded
    html = mx.execution_lineage(store, runs[1].id)._repr_html_()
    _clean(html)
    assert "Inputs and outputs" in html
    assert re.search(r"<td>INPUT</td><td>examples</td><td>DataSet #\d+ <span class=\"muted\">iris&amp;&lt;i&gt;.csv", html)
    assert re.search(r"<td>OUTPUT</td><td>model</td><td>SavedModel #\d+", html)


def test_a_diff_shows_what_differs(recorded):
    folder, store, data, runs = recorded
    d = mx.diff_runs(store, runs[0].id, runs[1].id)
    html = d._repr_html_()
    _clean(html)
    assert f"Compare Trainer #{runs[0].id} and Trainer #{runs[1].id}" in html
    assert re.search(r"<td>params</td><td><code>C</code></td><td>0.5</td><td>2.0</td>", html)
    assert "loss" in html  # the metrics differ too
    assert "<a " not in html  # no server behind a notebook: no links


def test_a_metric_history_is_a_list_and_shows_its_curve(recorded):
    folder, store, data, runs = recorded
    history = mx.metric_history(store, runs[0].id, "loss")
    assert isinstance(history, list) and history == list(history) and len(history) == 20
    assert history[0] == mx.Point(0, history[0].ms, 1.0) and (history.execution_id, history.key) == (runs[0].id, "loss")
    html = history._repr_html_()
    _clean(html)
    assert f"loss of execution {runs[0].id}" in html
    assert "20 points, steps 0 to 19, last 0.05, min 0.05, max 1" in html
    assert '<svg class="curve"' in html and "<polyline" in html


def test_show_lineage_draws_a_node_given_as_a_record_a_run_or_an_id(recorded):
    folder, store, data, runs = recorded
    model = runs[0].outputs["model"]
    for view in (mx.show_lineage(model, store), mx.show_lineage(model.id, folder / "metadata.db", kind="artifact")):
        assert isinstance(view, mx.LineageView) and view.start == ("artifact", model.id)
        svg = view._repr_svg_()
        assert svg is not None and svg.startswith("<svg") and "model1" in svg and "iris&amp;&lt;i&gt;.csv" in svg
        html = view._repr_html_()
        _clean(html)
        assert svg in html and "Lineage of SavedModel" in html and "(both, all hops)" in html
        assert 'stroke-width="3"' in svg  # the start, outlined
    # Both runs read the dataset: downstream of it are both, and both their models.
    downstream = mx.show_lineage(data, store, direction="downstream")
    assert set(downstream.graph.executions) == {r.id for r in runs} and len(downstream.graph.artifacts) == 3
    upstream = mx.show_lineage(runs[0], store, direction="upstream", hops=1)
    assert set(upstream.graph.executions) == {runs[0].id} and set(upstream.graph.artifacts) == {data.id}
    assert upstream.start == ("execution", runs[0].id) and "(upstream, 1 hop)" in upstream._repr_html_()


@pytest.mark.parametrize("call, message", [
    (lambda m, s: mx.show_lineage("model", s), "show_lineage: node must be an ArtifactRecord, an ExecutionRecord, a Run or an id, not 'model'"),
    (lambda m, s: mx.show_lineage(0, s, kind="artifact"), "show_lineage: node must be a positive id, not 0"),
    (lambda m, s: mx.show_lineage(True, s, kind="artifact"), "show_lineage: node must be an ArtifactRecord"),
    (lambda m, s: mx.show_lineage(3, s), "show_lineage: kind must say what the id 3 is: kind='artifact' or kind='execution'"),
    (lambda m, s: mx.show_lineage(3, s, kind="model"), "show_lineage: kind must be 'artifact' or 'execution', not 'model'"),
    (lambda m, s: mx.show_lineage(m, s, kind="execution"), "show_lineage: kind is 'execution', but node is an artifact"),
    (lambda m, s: mx.show_lineage(m, s, direction="up"), "show_lineage: direction must be one of upstream, downstream, both, not 'up'"),
    (lambda m, s: mx.show_lineage(m, s, hops=-1), "show_lineage: hops must be a whole number 0 or more, or None for all, not -1"),
    (lambda m, s: mx.show_lineage(m, s, hops=True), "show_lineage: hops must be a whole number 0 or more"),
    (lambda m, s: mx.show_lineage(m, s, expand="yes"), "show_lineage: expand must be True or False, not 'yes'"),
    (lambda m, s: mx.show_lineage(m, 3), "show_lineage: store must be a store's address or an open Store, not 3"),
])
def test_show_lineage_refuses_a_bad_argument_naming_it(recorded, call, message):
    folder, store, data, runs = recorded
    with pytest.raises(mx.UsageError) as raised:
        call(runs[0].outputs["model"], store)
    assert str(raised.value).startswith(message) and "\n" not in str(raised.value)


def test_show_lineage_refuses_a_record_of_another_store(recorded, tmp_path):
    folder, store, data, runs = recorded
    other = mx.Tracker(tmp_path / "other.db")
    with other.execution("Evaluator") as run:
        pass
    stranger = mx.get_execution(other.store, run.id)  # execution 1 there; the store holds another one
    with pytest.raises(mx.UsageError, match=r"^show_lineage: execution 1 in .* is not the Evaluator given "
                                            r"\(a record of another store\?\): pass that store, store=\.\.\.$"):
        mx.show_lineage(stranger, store)
    with pytest.raises(mx.NotFoundError):
        mx.show_lineage(999, store, kind="artifact")


def test_without_dot_the_output_says_so_in_one_line(recorded, tmp_path, monkeypatch):
    folder, store, data, runs = recorded
    monkeypatch.setenv("PATH", str(tmp_path))  # a PATH with no graphviz on it
    view = mx.show_lineage(runs[0].outputs["model"], store)
    assert view.svg is None and view._repr_svg_() is None
    html = view._repr_html_()
    assert ('<p class="notice">graphviz&#x27;s &#x27;dot&#x27; program is not on the PATH: '
            'install it with &#x27;apt-get install graphviz&#x27;</p>') in html
    assert "<svg" not in html
    assert "<svg" not in mx.walk(store, execution_id=runs[0].id)._repr_html_()


def _fan(n: int) -> LineageGraph:
    """One dataset read by n alike runs, each making a model, nothing downstream: plain records."""
    data = ArtifactRecord(1, "DataSet", "file:///d.csv", "LIVE")
    artifacts = {1: data}
    executions = {}
    edges = []
    for i in range(1, n + 1):
        executions[i] = ExecutionRecord(i, "Trainer", "COMPLETE")
        artifacts[i + 1] = ArtifactRecord(i + 1, "SavedModel", f"file:///m{i}", "LIVE")
        edges += [LineageEdge(1, i, "INPUT", "examples"), LineageEdge(i + 1, i, "OUTPUT", "model")]
    return LineageGraph(artifacts, executions, tuple(edges))


def test_alike_runs_are_drawn_as_one_and_a_graph_too_big_is_not_drawn():
    html = _fan(6)._repr_html_()
    assert "Trainer x6" in html and "SavedModel x6" in html
    assert "7 artifacts, 6 executions" in html  # what it stands for, not what was drawn
    assert 'id="collapsed">Drawn as one node each, being alike: 6 Trainer runs (COMPLETE).' in html
    big = _fan(MANY)
    drawn = big._repr_html_()  # alike: one node, drawn
    assert "<svg" in drawn and f"Trainer x{MANY}" in drawn
    apart = notebook.html(notebook._view(big, "Lineage", expand=True))
    assert "<svg" not in apart and f"{2 * MANY + 1:,} nodes are too many to draw (at most 400)" in apart


MANY = 250


def test_the_stylesheet_styles_only_the_output():
    html = _fan(1)._repr_html_()
    css = re.search(r"<style>(.*?)</style>", html, re.S).group(1)
    selectors = [s.strip() for rule in re.findall(r"([^{}]+)\{[^{}]*\}", css) for s in rule.split(",")]
    assert selectors and all(s == ".mlmdx" or s.startswith(".mlmdx ") for s in selectors), selectors
    assert ".mlmdx td" in selectors and ".mlmdx .state" in selectors  # the explorer's, scoped


def test_html_refuses_what_it_cannot_show():
    with pytest.raises(mx.UsageError, match=r"^html: cannot show 3: give a record"):
        notebook.html(3)


def test_the_display_hooks_are_on_every_returned_kind():
    """Jupyter finds them on the class: the records the API returns, a Diff, a history."""
    for cls in (mx.ArtifactRecord, mx.ExecutionRecord, mx.LineageGraph, mx.ExecutionLineage, mx.Diff,
                mx.MetricHistory, mx.LineageView):
        assert callable(getattr(cls, "_repr_html_", None)), cls


def test_a_notebook_needs_no_import_beyond_the_package(recorded):
    """`import mlmd_exercise` alone pays nothing for notebooks: the module loads when shown."""
    import subprocess
    import sys

    code = ("import sys, mlmd_exercise as mx; from mlmd_exercise import records; "
            "print('mlmd_exercise.notebook' in sys.modules, 'mlmd_exercise.web.views' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_the_hostile_name_never_reaches_html_raw(recorded):
    folder, store, data, runs = recorded
    shown = [mx.get_execution(store, runs[0].id)._repr_html_(), mx.show_lineage(runs[0], store)._repr_html_(),
             mx.walk(store, execution_id=runs[0].id)._repr_html_(),
             mx.diff_runs(store, runs[0].id, runs[1].id)._repr_html_()]
    for html in shown:
        assert HOSTILE not in html and "<b>exp</b>" not in html and "<img" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in shown[1]  # the run's name, in the graph


def test_data_in_a_notebook_cell_is_named_by_the_notebook(monkeypatch, tmp_path):
    import sys as _sys

    from mlmd_exercise.integrations.data import data_uri
    from mlmd_exercise.labels import uri_name

    def frame_of(filename: str):
        space: dict = {"sys": _sys}
        exec(compile("frame = sys._getframe()", filename, "exec"), space)
        return space["frame"]

    cell = frame_of("/tmp/ipykernel_4242/2044103461.py")  # how ipykernel names a cell's code
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    assert data_uri(cell, "X") == "python:notebook#X" and uri_name("python:notebook#X") == "notebook#X"
    monkeypatch.setenv("JPY_SESSION_NAME", str(tmp_path / "train.ipynb"))  # as Jupyter tells its kernels
    assert data_uri(cell, "X") == f"python:{tmp_path}/train.ipynb#X"
    assert uri_name(data_uri(cell, "X")) == "train.ipynb#X"
    script = tmp_path / "train.py"
    script.write_text("")
    assert data_uri(frame_of(str(script)), "X") == f"python:{script}#X"  # a script: its own path
