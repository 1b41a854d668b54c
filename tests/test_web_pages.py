"""What the explorer's pages gather (mlmd_exercise.web.pages), without a server or a browser."""

from __future__ import annotations

import pytest

import mlmd_exercise as mx
from mlmd_exercise.web import pages, runs

from conftest import write
from raw_mlmd import pb, raw_mlmd


@pytest.mark.parametrize("params, message", [
    ({"state": "done"}, "unknown state 'done'"),
    ({"page": "0"}, "page must be a positive whole number, not '0'"),
    ({"page": "two"}, "page must be a positive whole number, not 'two'"),
    ({"per": "501"}, "per must be at most 500, not '501'"),
    ({"sort": "-col\x01our"}, "cannot sort by '-col\x01our'"),
    ({"since": "soon"}, "cannot read time 'soon'"),
    ({"until": "2026-13-40"}, "cannot read time '2026-13-40'"),
    ({"q": "a\nb"}, "holds control characters"),
    ({"context": "-3"}, "context must be a positive whole number, not '-3'"),
    ({"colour": "red"}, "unknown query parameter 'colour'"),
])
def test_bad_runs_parameters_are_named(params, message):
    with pytest.raises(pages.BadParameter, match=message.replace("(", r"\(").replace(")", r"\)")):
        runs.RunsQuery.parse(params)


def test_a_query_gives_back_only_what_differs_from_the_defaults():
    query = runs.RunsQuery.parse({"state": "complete", "sort": "-start", "page": "1", "q": " x "})
    assert query.state == "COMPLETE" and query.q == "x"
    assert query.params() == {"state": "COMPLETE", "q": "x"}
    assert query.params(page=2, sort="id") == {"state": "COMPLETE", "q": "x", "page": "2", "sort": "id"}


def test_params_metrics_and_environment_are_apart(tracker, tmp_path):
    data = tracker.dataset(write(tmp_path / "d.csv", "a\n1\n"))
    with tracker.execution("Trainer", inputs={"examples": data}, params={"C": 0.5, "solver": "lbfgs"}) as run:
        run.log_metrics({"accuracy": 0.9})
        run.log_model(write(tmp_path / "m.bin", "m"), name="M")
    page = pages.node_page(tracker.store, "execution", run.id)
    assert page.params == {"C": 0.5, "solver": "lbfgs"}
    assert page.metrics == {"accuracy": 0.9}
    assert {"host", "pid", "pid_start", "env.python", "env.command"} <= set(page.environment)
    assert [(k, role, n.type) for k, role, n in page.events] == [
        ("INPUT", "examples", "DataSet"), ("OUTPUT", "model", "SavedModel")]
    assert [c[:2] for c in page.contexts] == [("Experiment", "default")]


def test_a_file_is_checked_against_its_fingerprint(tracker, tmp_path):
    path = write(tmp_path / "d.csv", "a\n1\n")
    data = tracker.log_dataset(path)
    assert pages.node_page(tracker.store, "artifact", data.id).file_check == "matches its fingerprint"
    path.write_text("a\n2\n")
    assert pages.node_page(tracker.store, "artifact", data.id).file_check == "modified since it was recorded"
    path.unlink()
    assert pages.node_page(tracker.store, "artifact", data.id).file_check == "missing: the file is gone"


def test_a_node_in_no_context_has_a_page(db):
    store = mx.open_store(db, create=True)
    """Other programs write nodes without contexts; MLMD raises NotFoundError for their contexts."""
    type_id = raw_mlmd(store).put_artifact_type(pb.ArtifactType(name="Foreign"))
    [artifact_id] = raw_mlmd(store).put_artifacts([pb.Artifact(type_id=type_id, uri="s3://b/x")])
    page = pages.node_page(store, "artifact", artifact_id)
    assert page.contexts == () and page.events == () and page.file_check == ""


def test_two_runs_compared(tracker, tmp_path):
    ids = []
    for c, text in ((1.0, "a\n1\n"), (2.0, "a\n2\n")):
        data = tracker.dataset(write(tmp_path / "d.csv", text))
        with tracker.execution("Trainer", inputs={"examples": data}, params={"C": c}) as run:
            run.log_metrics({"acc": 0.5})
        ids.append(run.id)
    comparison = pages.compare(tracker.store, "execution", *ids)
    differs = {(section, key) for section, key, a, b in comparison.rows}
    assert differs == {("params", "C"), ("inputs", "examples")}  # only what differs, as diff says
    assert comparison.differences == 2 and comparison.verdict == "2 differences"


def test_runs_sorted_in_memory_put_missing_values_last(tracker, tmp_path):
    for c in (None, 3, 1):
        with tracker.execution("Trainer", params={} if c is None else {"C": c}):
            pass
    for sort, expected in (("param:C", [3, 2, 1]), ("-param:C", [2, 3, 1])):
        page = runs.runs_page(tracker.store, runs.RunsQuery(sort=sort))
        assert [r.execution.id for r in page.rows] == expected, sort
    assert page.total == 3 and page.param_columns == ("C",)


def test_runs_page_beyond_the_sort_limit_says_so(tracker, monkeypatch):
    monkeypatch.setattr(runs, "SORT_LIMIT", 2)
    for _ in range(3):
        with tracker.execution("Trainer", params={"C": 1}):
            pass
    page = runs.runs_page(tracker.store, runs.RunsQuery(sort="type"))
    assert "at most 2 runs" in page.notice and page.query.sort == "-start"
    assert [r.execution.id for r in page.rows] == [3, 2, 1]


def test_runs_sort_by_a_metric_or_param_named_as_ls_takes_it(tracker):
    for c, accuracy in ((0.1, 0.7), (1.0, 0.9), (10.0, 0.8)):
        with tracker.execution("Trainer", params={"C": c}) as run:
            run.log_metrics({"accuracy": accuracy})
    for sort, expected in (("-accuracy", [2, 3, 1]), ("accuracy", [1, 3, 2]), ("-C", [3, 2, 1]),
                           ("-metric:accuracy", [2, 3, 1])):
        page = runs.runs_page(tracker.store, runs.RunsQuery.parse({"sort": sort}))
        assert [r.execution.id for r in page.rows] == expected, sort
    with pytest.raises(pages.BadParameter, match="cannot sort by 'colour': no run listed has a param or metric"):
        runs.runs_page(tracker.store, runs.RunsQuery.parse({"sort": "-colour"}))


def test_runs_beyond_the_sort_limit_with_original_times_are_answered(tracker, monkeypatch):
    """The default sort, by start, is itself sorted in memory once a run has an original start
    time; past the limit it must fall back to a sort the store does (it recursed for 450 s)."""
    from mlmd_exercise.write.bulk import RunSpec, record_runs

    monkeypatch.setattr(runs, "SORT_LIMIT", 2)
    record_runs(tracker, [RunSpec(name=f"old-{i}", started_ms=1614592800000 + i) for i in range(3)])
    page = runs.runs_page(tracker.store, runs.RunsQuery())
    assert page.query.sort == "-id" and "shown newest recorded first" in page.notice
    assert [r.execution.id for r in page.rows] == [3, 2, 1]


def test_unknown_filters_are_named(tracker):
    with pytest.raises(mx.NotFoundError, match="no execution type named 'Nope'"):
        runs.runs_page(tracker.store, runs.RunsQuery(type="Nope"))
    with pytest.raises(mx.NotFoundError, match="no context with id 9"):
        runs.runs_page(tracker.store, runs.RunsQuery(context=9))
    with pytest.raises(pages.BadParameter, match="unknown direction 'up'"):
        pages.lineage_page(tracker.store, "artifact", 1, "up")


def test_a_lineage_too_big_to_draw_says_so(tracker, tmp_path, monkeypatch):
    from mlmd_exercise.web import server

    data = tracker.dataset(write(tmp_path / "d.csv", "a\n1\n"))
    for _ in range(3):
        with tracker.execution("Trainer", inputs={"examples": data}):
            pass
    monkeypatch.setattr(server, "MAX_DRAWN", 3)
    import io

    app = server.make_app(tracker.store)
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/lineage/artifact/1", "QUERY_STRING": "",
               "SERVER_NAME": "t", "SERVER_PORT": "0", "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO()}
    body = b"".join(app(environ, lambda *a: None)).decode()
    assert "4 nodes are too many to draw (at most 3)" in body and "<svg" not in body


def test_pages_made_at_once_each_get_a_store_and_every_store_opened_is_closed(tmp_path):
    import io
    import threading

    from mlmd_exercise.store.backend import Query
    from mlmd_exercise.web import workers

    path = tmp_path / "m.db"
    mx.Tracker(path).execution("Trainer").finish()
    first, opened, used = mx.open_store(path), [], []
    together = threading.Barrier(3)  # three pages at once: each must hold a store of its own

    def opener():
        opened.append(mx.open_store(path))
        return opened[-1]

    def make_app(store):
        def app(environ, start_response):
            used.append(store)
            together.wait(timeout=30)
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [str(len(store.backend.executions(Query()))).encode()]
        return app

    pool = workers.Workers(first, make_app, opener, size=3, bound=60)
    answers: list = []
    threads = [threading.Thread(target=lambda: answers.append(pool.answer({"wsgi.input": io.BytesIO()})))
               for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == [("200 OK", [("Content-Type", "text/plain")], b"1")] * 3
    assert len(opened) == 2 and len({id(s) for s in used}) == 3  # the first store, and two opened
    pool.close()
    assert not any(s._closer.alive for s in opened) and first._closer.alive  # the caller's stays open


def test_a_request_gets_busy_past_its_bound_queued_or_being_made(tracker):
    import threading

    from mlmd_exercise.web import workers

    held = threading.Event()

    def make_app(store):
        def app(environ, start_response):
            held.wait(30)
            start_response("200 OK", [])
            return [b""]
        return app

    one = workers.Workers(tracker.store, make_app, None, bound=1)  # no opener: one store, one page at a time
    try:
        with pytest.raises(workers.Busy, match=r"^this page took longer than 1 s to make: ask for less"):
            one.answer({})
        with pytest.raises(workers.Busy, match=r"^the explorer is busy: this request waited 1 s for a free store"):
            one.answer({})  # the first page still holds the one store
    finally:
        held.set()
        one.close()

    from mlmd_exercise.write.bulk import ArtifactSpec, RunSpec, record_runs

    tracker.execution("Trainer", name="today").finish()
    record_runs(tracker, [RunSpec(name="2021", started_ms=1614592800000, ended_ms=1614592805000,
                                  outputs={"model": ArtifactSpec("s3://b/m", "SavedModel", created_ms=1614592806000)}),
                          RunSpec(name="2023", started_ms=1682942400000)])
    page = runs.runs_page(tracker.store, runs.RunsQuery())
    assert [r.execution.label for r in page.rows] == ["today", "2023", "2021"]
    assert page.rows[2].duration_ms == 5000  # from its original start and end (stored as doubles)
    oldest = runs.runs_page(tracker.store, runs.RunsQuery(sort="start"))
    assert [r.execution.label for r in oldest.rows] == ["2021", "2023", "today"]
    # An imported run's page shows its original start and end as times, not as doubles below.
    from mlmd_exercise.text import when
    from mlmd_exercise.web import views

    html = views.node_view(pages.node_page(tracker.store, "execution", page.rows[2].execution.id))
    assert f"<td><b>started</b></td><td>{when(1614592800000)}</td>" in html
    assert f"<td><b>ended</b></td><td>{when(1614592805000)}</td>" in html
    assert "started_ms" not in html and "ended_ms" not in html and "e+12" not in html
    [model] = [a for a in tracker.store.backend.artifacts() if a.uri == "s3://b/m"]
    html = views.node_view(pages.node_page(tracker.store, "artifact", model.id))
    assert f"<td><b>made</b></td><td>{when(1614592806000)}</td>" in html and "created_ms" not in html


def test_a_run_page_draws_each_metric_logged_more_than_once_and_compare_overlays_them(tracker):
    import math
    import xml.etree.ElementTree as ET

    from mlmd_exercise.web import views
    from mlmd_exercise.web.curves import POINTS

    markup = "<script>alert(1)</script>"
    ids = []
    for scale in (1.0, 2.0):
        with tracker.execution(params={"scale": scale}, flush_every=500) as run:
            for step in range(5000):
                run.log_metrics({"loss": scale / (step + 1), markup: float(step)}, step=step)
            run.log_metric("once", 1.0)
            run.log_metric("nan", float("nan"))
            run.log_metric("nan", 0.5)
        ids.append(run.id)
    page = pages.node_page(tracker.store, "execution", ids[0])
    assert sorted(page.curves) == sorted(["loss", markup, "nan"])  # "once" has no curve
    assert len(page.curves["loss"]) <= POINTS + 2  # downsampled on the server
    assert page.curves["loss"][0].step == 0 and page.curves["loss"][-1].step == 4999
    html = views.node_view(page)
    assert markup not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    for svg in html.split('<svg class="curve"')[1:]:
        ET.fromstring('<svg class="curve"' + svg.split("</svg>")[0] + "</svg>")  # well-formed: escaped
    assert math.isnan(page.curves["nan"][0].value) and "step 0 is NaN" in html
    compared = pages.compare(tracker.store, "execution", *ids)
    a, b = compared.curves["loss"]
    assert a[-1].value == 1.0 / 5000 and b[-1].value == 2.0 / 5000
    html = views.compare_view(compared)
    chart = html.split('aria-label="loss"')[1].split("</svg>")[0]
    assert chart.count("<polyline") == 2 and "Trainer #1" in chart and "Trainer #2" in chart


def test_a_failed_run_page_says_why_first(tracker):
    from mlmd_exercise.web import views

    with pytest.raises(ValueError):
        with tracker.execution(params={"lr": 0.1}) as run:
            raise ValueError("loss went <b>NaN</b> at step 7")
    html = views.node_view(pages.node_page(tracker.store, "execution", run.id))
    body = html.split("<body", 1)[1]
    error = body.index('id="error"')
    assert error < body.index("<h2>")  # above every section of the page
    assert "<b>ValueError:</b> <code>loss went &lt;b&gt;NaN&lt;/b&gt; at step 7</code>" in body
    assert body.count("loss went") == 1  # not again among the other properties
