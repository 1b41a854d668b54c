"""Odd values a store may hold, and odd files an import may be given: every command still
reads the store, prints what is there as text, and refuses bad input in one line naming it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import mlmd_exercise as mx
from mlmd_exercise import render, text
from mlmd_exercise.write.bulk import ArtifactSpec, RunSpec, record_runs

ESCAPES = "\x1b]0;pwned\x07\x1b[31mred\u202eexe.txt\u0085"  # an OSC title, BEL, a colour, RTL override, C1


def test_a_time_no_calendar_holds_is_shown_as_its_number():
    assert text.when(-62135596800000 - 86400000) == "-62135683200000 ms since 1970 (not a date)"
    assert text.when(1e30).endswith("ms since 1970 (not a date)")
    assert text.when(0) == "-" and text.when(None) == "-"


def test_a_run_imported_at_the_first_day_of_the_calendar_leaves_the_store_readable(run_cli, db, tmp_path):
    lines = tmp_path / "runs.jsonl"
    lines.write_text(json.dumps({"name": "old", "started": "0001-01-01T00:00:00Z"}) + "\n"
                     + json.dumps({"name": "new"}) + "\n")
    assert run_cli("import", lines, "--db", db).code == 0
    for args in (["ls", "executions"], ["show", "execution", "1"], ["report", "-o", tmp_path / "r.html"]):
        result = run_cli(*args, "--db", db)
        assert result.code == 0, (args, result.err)
    assert [line.split()[0] for line in run_cli("ls", "executions", "--db", db).out.splitlines()[1:]] == ["2", "1"]


@pytest.mark.parametrize("started", [10**30, -10**20, "9999999-01-01"])
def test_a_time_no_calendar_holds_is_refused_at_import_naming_the_line(run_cli, db, tmp_path, started):
    lines = tmp_path / "runs.jsonl"
    lines.write_text(json.dumps({"name": "fine"}) + "\n" + json.dumps({"name": "odd", "started": started}) + "\n")
    result = run_cli("import", lines, "--db", db)
    assert result.code == 2 and result.err.count("\n") == 1, result.err
    assert f"line 2 of '{lines}': \"started\"" in result.err and str(started)[:20] in result.err


def test_record_runs_refuses_a_time_no_calendar_holds(tracker):
    with pytest.raises(mx.MlmdExerciseError, match="started_ms of run 'x' is '1000000000000000000000"):
        record_runs(tracker, [RunSpec(name="x", started_ms=10**30)])
    assert mx.count_by_state(tracker.store) == {}


@pytest.mark.parametrize("content, says", [
    (b'{"name": "a\xff"}\n', "line 1 of '{}' is not UTF-8 text (byte 12)"),
    (b"\x00\x01\x02binary\n", "line 1 of '{}' is not JSON"),
    (b'{"name": "d", "params": ' + b'[' * 100_000 + b']' * 100_000 + b'}\n', "line 1 of '{}' is nested too deeply"),
    (b'{"name": "deep", "params": {"a": ' + b'{"a": ' * 900 + b'1' + b'}' * 901 + b'}\n', "line 1 of '{}': param 'a' is"),
])
def test_a_malformed_json_lines_file_is_one_line_naming_the_line(run_cli, tmp_path, content, says):
    lines = tmp_path / "runs.jsonl"
    lines.write_bytes(content)
    result = run_cli("import", lines, "--db", tmp_path / "t.db")
    assert result.code == 2, result.err
    assert result.err.count("\n") == 1 and len(result.err) < 400, result.err
    assert says.format(lines) in result.err
    assert not (tmp_path / "t.db").exists()  # refused before the store is opened: none is made


def test_a_bad_line_anywhere_refuses_the_import_before_any_run_is_recorded(run_cli, db, tmp_path):
    lines = tmp_path / "runs.jsonl"
    lines.write_text("".join(json.dumps({"name": f"run-{i}"}) + "\n" for i in range(2500)) + "{not json\n")
    result = run_cli("import", lines, "--batch-size", "1000", "--db", db)
    assert result.code == 2 and "line 2501 of" in result.err, result.err
    try:
        store = mx.open_store(db)
    except mx.StoreError:  # not even made
        return
    assert mx.count_by_state(store) == {}


@pytest.mark.parametrize("where", ["name", "experiment", "type"])
def test_a_lone_surrogate_is_refused_at_the_call_on_every_backend(tracker, where):
    with pytest.raises(mx.MlmdExerciseError, match=r"lone surrogate \(U\+D800\), which is not UTF-8 text"):
        if where == "experiment":
            mx.Tracker(tracker.store, experiment="e\ud800")
        else:
            tracker.execution(**{where: "x\ud800"})
    assert mx.count_by_state(tracker.store) == {}


def test_terminal_escapes_print_as_text_and_json_keeps_them(run_cli, tracker, db):
    with tracker.execution("Trainer", name=ESCAPES, params={"note": ESCAPES}):
        pass
    for args in (["ls", "executions", "--columns", "note"], ["show", "execution", "1"]):
        out = run_cli(*args, "--db", db).out
        assert not any(c in out for c in "\x1b\x07\u202e\u0085"), (args, out)
        assert "\\x1b]0;pwned\\x07" in out, (args, out)  # shown as what it is
    [record] = json.loads(run_cli("ls", "executions", "--json", "--db", db).out)
    assert record["properties"]["run.name"] == ESCAPES and record["properties"]["note"] == ESCAPES


def test_names_longer_than_dot_takes_are_drawn(run_cli, tracker, db, tmp_path):
    long = "s3://bucket/" + "x" * 20_000  # a URI, whole in the tooltip: dot takes 16,384 characters
    record_runs(tracker, [RunSpec(name="r", outputs={"model": ArtifactSpec(long, type="SavedModel")})])
    graph, report = tmp_path / "g.svg", tmp_path / "r.html"
    assert run_cli("graph", "-o", graph, "--db", db).code == 0
    assert run_cli("report", "-o", report, "--db", db).code == 0
    longest = max(len(run) for run in re.findall("x+", graph.read_text()))
    assert 1000 < longest < render.DOT_TEXT  # the URI is in the tooltip, cut to what dot takes
    assert "x" * 20_000 not in report.read_text()


def test_a_graph_dot_refuses_is_one_line_not_a_closed_stdout(run_cli, tracker, db, tmp_path, monkeypatch):
    monkeypatch.setattr(render, "DOT_TEXT", 10**6)  # as before: every character of a string to dot
    record_runs(tracker, [RunSpec(name="r", outputs={"model": ArtifactSpec("s3://b/" + "x" * 20_000,
                                                                           type="SavedModel")})])
    result = run_cli("graph", "-o", tmp_path / "g.svg", "--db", db)
    assert result.code == 2 and "graphviz failed to draw" in result.err, result.err
    assert not (tmp_path / "g.svg").exists()


@pytest.mark.parametrize("where", ["name", "experiment", "type", "role"])
def test_a_name_longer_than_every_database_holds_is_refused_at_the_call(tracker, where):
    """MLMD's name columns are VARCHAR(255) on the servers: one rule for every database."""
    long = "n" * 201
    with pytest.raises(mx.MlmdExerciseError, match="is 201 characters long: a name may have at most 200"):
        if where == "experiment":
            mx.Tracker(tracker.store, experiment=long)
        elif where == "role":
            tracker.execution(inputs={long: tracker.log_dataset(__file__)})
        else:
            tracker.execution(**{where: long})
    assert mx.count_by_state(tracker.store) == {}


def test_verify_and_stale_skip_what_is_not_a_file_and_name_it(tmp_path):
    """/dev/zero never ends and a FIFO blocks: neither is read, both are named as not checked."""
    import os
    import subprocess
    import sys

    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    db = tmp_path / "m.db"
    tracker = mx.Tracker(db)
    digest = "sha256:" + "0" * 64
    record_runs(tracker, [RunSpec(name="r", inputs={"a": ArtifactSpec("file:///dev/zero", fingerprint=digest)},
                                  outputs={"m": ArtifactSpec(fifo.as_uri(), type="SavedModel", fingerprint=digest)})])
    del tracker
    for command in ("verify", "stale"):
        proc = subprocess.run([sys.executable, "-m", "mlmd_exercise", command, "--db", str(db)],
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
    proc = subprocess.run([sys.executable, "-m", "mlmd_exercise", "verify", "--db", str(db)],
                          capture_output=True, text=True, timeout=120)
    assert "not checked: 2 artifacts (not a regular file or a directory" in proc.stdout


def test_a_file_is_fingerprinted_once_until_it_changes(tmp_path, monkeypatch):
    import os

    from mlmd_exercise import content

    reads = []
    real = content._feed_file
    monkeypatch.setattr(content, "_feed_file", lambda digest, path: (reads.append(path), real(digest, path)))
    path = tmp_path / "model.bin"
    path.write_bytes(b"a" * 1000)
    os.utime(path, ns=(1_600_000_000_000_000_000,) * 2)  # settled long ago
    first = content.fingerprint(path)
    assert content.fingerprint(path) == first and len(reads) == 1  # the second view reads nothing
    path.write_bytes(b"b" * 1000)  # the same size, changed now: never trusted to its mtime
    changed = content.fingerprint(path)
    assert changed != first and content.fingerprint(path) == changed and len(reads) == 3
