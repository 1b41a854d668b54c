"""Run names as labels and tags: a name a person gives a run is not a key (running the script
again records a new run), and tags find runs, on every backend and database."""

from __future__ import annotations

import io
import json
import sys

import pytest

import mlmd_exercise as mx
from conftest import check
from mlmd_exercise.read.nodes import runs_named
from mlmd_exercise.store.backend import Query
from raw_mlmd import raw_mlmd


def _sweep(db):
    """Two runs named wine-sweep-0 (the script run twice), one other, tagged two ways."""
    tracker = mx.Tracker(mx.open_store(db, create=True))
    runs = []
    for c in (0.1, 0.2):
        with tracker.execution(name="wine-sweep-0", params={"C": c}, tags={"team": "vision"}) as run:
            run.log_metrics({"accuracy": c * 4})
        runs.append(run)
    with tracker.execution(params={"C": 3.0}) as other:
        pass
    other.tag("reviewed", "yes")
    return tracker, runs, other


def test_the_same_name_again_records_a_new_run_and_keeps_the_first(db):
    tracker, (first, second), other = _sweep(db)
    assert first.id != second.id and first.name == second.name == "wine-sweep-0"
    executions = {e.id: e for e in tracker.store.backend.executions()}
    assert executions[first.id].properties["C"] == 0.1  # the first run's record is untouched
    assert executions[second.id].properties["C"] == 0.2
    assert executions[first.id].label == executions[second.id].label == "wine-sweep-0"
    assert executions[other.id].label is None  # no name of its own: MLMD's UUID is not shown
    stored = [e.name for e in executions.values()]
    assert len(set(stored)) == 3 and "wine-sweep-0" not in stored  # MLMD's names stay unique keys
    assert [e.id for e in runs_named(tracker.store, "wine-sweep-0")] == [second.id, first.id]


def test_tags_are_set_at_the_start_and_later_and_found_by_every_backend(db):
    tracker, (first, second), other = _sweep(db)
    executions = {e.id: e for e in tracker.store.backend.executions()}
    assert executions[first.id].tags == {"team": "vision"}
    assert executions[other.id].tags == {"reviewed": "yes"}
    other.tag("reviewed", "no")  # set again: the new value, nothing else changed
    [now] = tracker.store.backend.executions(Query(ids=[other.id]))
    assert now.tags == {"reviewed": "no"} and now.state == "COMPLETE" and now.properties["C"] == 3.0
    from mlmd_exercise.read.nodes import list_executions

    assert [e.id for e in list_executions(tracker.store, tags={"team": "vision"})] == [second.id, first.id]
    assert [e.id for e in list_executions(tracker.store, tags={"team": "vision", "reviewed": "no"})] == []
    assert [e.id for e in list_executions(tracker.store, tags={"reviewed": "no"})] == [other.id]


def test_ls_and_show_give_the_name_and_find_runs_by_it_and_by_tag(db, run_cli):
    tracker, (first, second), other = _sweep(db)
    listing = run_cli("ls", "executions", "--db", db)
    assert listing.code == 0, listing.err
    header, *rows = listing.out.splitlines()
    assert header.split()[:2] == ["ID", "NAME"]
    assert [r.split()[:2] for r in rows] == [[str(other.id), "-"], [str(second.id), "wine-sweep-0"],
                                             [str(first.id), "wine-sweep-0"]]
    tagged = run_cli("ls", "executions", "--tag", "team=vision", "--db", db)
    assert [r.split()[0] for r in tagged.out.splitlines()[1:]] == [str(second.id), str(first.id)]
    both = run_cli("ls", "executions", "--tag", "team=vision", "--tag", "reviewed=yes", "--db", db)
    assert both.code == 0 and both.out.strip() == "no executions"
    shown = run_cli("show", "execution", "wine-sweep-0", "--db", db)
    assert shown.code == 0, shown.err
    assert shown.out.splitlines()[0] == f"execution {second.id} (Trainer, COMPLETE)"
    assert "  name         wine-sweep-0" in shown.out and "  tags         team=vision" in shown.out
    assert "tag.team" not in shown.out and "run.name" not in shown.out  # said once, above
    every = run_cli("show", "execution", "wine-sweep-0", "--all", "--json", "--db", db)
    assert [r["id"] for r in json.loads(every.out)] == [second.id, first.id]
    by_id = run_cli("show", "execution", str(first.id), "--json", "--db", db)
    assert json.loads(by_id.out)["node"]["properties"]["C"] == 0.1


def test_without_names_ls_has_no_name_column(tmp_path, run_cli):
    db = str(tmp_path / "metadata.db")
    tracker = mx.Tracker(db)
    tracker.execution().finish()
    assert run_cli("ls", "executions", "--db", db).out.split()[:2] == ["ID", "TYPE"]


def test_a_run_named_by_its_mlmd_name_is_found_by_it(tmp_path, run_cli):
    """A store written before names were labels, or by another MLMD client: the name is MLMD's."""
    db = tmp_path / "metadata.db"
    store = mx.open_store(db, create=True)
    from mlmd_exercise.write.bulk import RunSpec, record_runs

    record_runs(mx.Tracker(store), [RunSpec(name="nightly-2026-11-26", params={"C": 1.0})])
    store.close()
    shown = run_cli("show", "execution", "nightly-2026-11-26", "--db", str(db))
    assert shown.code == 0, shown.err
    assert "  name         nightly-2026-11-26" in shown.out


def test_ml_metadata_reads_the_name_and_tags_as_custom_properties(tmp_path):
    db = tmp_path / "metadata.db"
    tracker = mx.Tracker(mx.open_store(db, create=True, backend="mlmd") if _has_mlmd() else db)
    with tracker.execution(name="wine-sweep-0", tags={"team": "vision"}):
        pass
    tracker.store.close()
    [execution] = raw_mlmd(str(db)).get_executions()
    assert execution.custom_properties["run.name"].string_value == "wine-sweep-0"
    assert execution.custom_properties["tag.team"].string_value == "vision"


def _has_mlmd() -> bool:
    try:
        import ml_metadata  # noqa: F401
    except ImportError:
        return False
    return True


def test_export_takes_the_runs_with_a_tag(db, run_cli, tmp_path):
    tracker, (first, second), other = _sweep(db)
    bundle = tmp_path / "vision.bundle"
    result = run_cli("export", "-o", str(bundle), "--tag", "team=vision", "--db", db)
    assert result.code == 0, result.err
    assert result.out.startswith("exported 2 runs")
    lines = [json.loads(line) for line in bundle.read_text().splitlines()]
    assert lines[0]["selection"] == {"tags": {"team": "vision"}}
    runs = [r for r in lines if r.get("kind") == "execution"]
    assert sorted(r["custom"]["tag.team"] for r in runs) == ["vision", "vision"]
    assert sorted(r["custom"]["run.name"] for r in runs) == ["wine-sweep-0", "wine-sweep-0"]


def _page(store, path: str, query: str = "") -> tuple:
    from mlmd_exercise.web.server import make_app

    status = {}
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": path, "QUERY_STRING": query, "wsgi.input": io.BytesIO(),
               "wsgi.errors": sys.stderr, "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "80", "wsgi.url_scheme": "http"}
    body = b"".join(make_app(store)(environ, lambda s, h, e=None: status.setdefault("s", s)))
    return status["s"], body.decode()


def test_the_explorer_shows_names_and_filters_runs_by_tag(db):
    tracker, (first, second), other = _sweep(db)
    status, page = _page(tracker.store, "/runs", "tag=team%3Dvision")
    assert status.startswith("200"), page
    assert f'#{second.id}</a> <span class="run-name">wine-sweep-0</span>' in page
    assert f">#{other.id}</a>" not in page
    status, page = _page(tracker.store, f"/execution/{other.id}")
    assert status.startswith("200") and 'reviewed=yes</a>' in page and "tag=reviewed%3Dyes" in page
    status, page = _page(tracker.store, "/runs", "q=sweep")  # the text search finds runs by name
    assert status.startswith("200") and f">#{first.id}</a>" in page and f">#{other.id}</a>" not in page
    status, page = _page(tracker.store, "/runs", "tag=team")
    assert status.startswith("400") and "a tag filter is key=value, not &#x27;team&#x27;" in page


@pytest.mark.parametrize("args, message", [
    (["ls", "executions", "--tag", "team"], "argument --tag: a tag filter is KEY=VALUE, not 'team'"),
    (["ls", "executions", "--tag", "=x"], "a tag filter is KEY=VALUE, not '=x'"),
    (["ls", "artifacts", "--tag", "a=b"], "--tag filters executions, not artifacts"),
    (["show", "artifact", "wine-sweep-0"], "an artifact is shown by its id, a whole number, not 'wine-sweep-0'"),
    (["show", "execution", "1", "--all"], "--all lists every run of a name: give a run name, not an id"),
    (["show", "execution", "0"], "id must be positive, not '0'"),
    (["show", "execution", "no-such-run"], "no run named 'no-such-run' in "),
])
def test_bad_names_and_tags_are_one_line_and_change_nothing(tmp_path, run_cli, args, message):
    db = str(tmp_path / "metadata.db")
    _sweep(db)

    def now():
        store = mx.open_store(db)
        try:
            return sorted((e.id, e.state, dict(e.properties)) for e in store.backend.executions())
        finally:
            store.close()
    before = now()
    check(run_cli(*args, "--db", db), message, before, now)


@pytest.mark.parametrize("tags, message", [
    ({"": "x"}, "a tag's name must be text, not ''"),
    ({3: "x"}, "a tag's name must be text, not 3"),
    ({"team": 3}, "tag 'team' must be text, not 3"),
    ("team=vision", "tags must be a dict of name -> value, not 'team=vision'"),
])
def test_bad_tags_are_refused_at_the_call_before_anything_is_written(tracker, tags, message):
    with pytest.raises(mx.MlmdExerciseError, match="^" + message):
        tracker.execution(tags=tags)
    run = tracker.execution()
    if isinstance(tags, dict):  # Run.tag checks its key and value the same way
        with pytest.raises(mx.MlmdExerciseError, match="^" + message):
            run.tag(*next(iter(tags.items())))
    run.finish()
    assert [e.tags for e in tracker.store.backend.executions()] == [{}]


def test_a_tag_whose_key_names_a_secret_is_stored_masked(tracker):
    with tracker.execution(tags={"api_key": "sk-live-1234"}) as run:
        pass
    run.tag("hf_token", "hf_abcdef")
    [stored] = tracker.store.backend.executions()
    assert stored.tags == {"api_key": "***", "hf_token": "***"}


def test_a_param_may_not_take_the_name_or_a_tag_s_place(tracker):
    for key in ("run.name", "tag.team"):
        with pytest.raises(mx.MlmdExerciseError, match=f"^'{key}' names where a run's name or tags are kept"):
            tracker.execution(params={key: "x"})
    assert tracker.store.backend.executions() == []


ODD_TEXTS = {
    "nul": "a\x00b", "lone surrogate": "a\ud800b", "long": "x" * 200, "too long": "x" * 201,
    "emoji and right-to-left": "\U0001f9ea \u05e9\u05dc\u05d5\u05dd \u202e", "quote and backslash": "a'b\\c",
    "terminal escape": "\x1b]0;t\x07", "empty": "", "newline": "a\nb",
}


@pytest.mark.parametrize("where", ["name", "tag value", "tag key", "later tag"])
@pytest.mark.parametrize("odd", list(ODD_TEXTS))
def test_an_odd_name_or_tag_is_kept_exactly_or_refused_at_the_call(db, where, odd):
    """Every backend and database: read back exactly as given, or one MlmdExerciseError at the
    call with nothing written (ml-metadata's backend refuses a NUL; no database takes a lone
    surrogate; a name or tag value has at most 200 characters, as every name)."""
    text = ODD_TEXTS[odd]
    tracker = mx.Tracker(mx.open_store(db, create=True))
    run = tracker.execution() if where == "later tag" else None
    before = sorted((e.id, dict(e.properties)) for e in tracker.store.backend.executions())

    def record() -> None:
        if where == "name":
            tracker.execution(name=text).finish()
        elif where == "tag value":
            tracker.execution(tags={"k": text}).finish()
        elif where == "tag key":
            tracker.execution(tags={text: "v"}).finish()
        else:
            run.tag("k", text)

    mlmd, postgres = tracker.store.backend.name == "mlmd", tracker.store.location.scheme == "postgresql"
    refused = {"lone surrogate", "too long"} | ({"empty", "nul"} if where == "tag key" else set())
    refused |= {"nul"} if mlmd or postgres else set()  # ml-metadata cuts text there, PostgreSQL refuses it
    refused |= {"quote and backslash"} if mlmd and postgres else set()  # ml-metadata would store it wrongly
    if odd in refused:
        with pytest.raises(mx.MlmdExerciseError) as e:
            record()
        message = str(e.value)
        # One line that names the bad value: escaped as its repr is (never a raw NUL), or its length.
        named = "201 characters" if odd == "too long" else repr(("tag." if where == "tag key" and odd == "quote and backslash" else "")
                                                                 + text)[:12]
        assert len(message.splitlines()) == 1 and named in message and "\x00" not in message, message
        assert sorted((e.id, dict(e.properties)) for e in tracker.store.backend.executions()) == before
        return
    record()
    [stored] = [e for e in tracker.store.backend.executions() if e.id not in {b[0] for b in before}] or \
        tracker.store.backend.executions()
    if where == "name":
        assert stored.label == (text or None)
    elif where == "tag key":
        assert stored.tags == {text: "v"}
    else:
        assert stored.tags == {"k": text}
