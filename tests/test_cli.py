"""cli.py: every command as a user runs it, and every bad input as one line with exit 2."""

from __future__ import annotations

import os
import shutil
import sqlite3
from pathlib import Path

import pytest

import mlmd_exercise as mx
from conftest import digest, run_module
from mlmd_exercise.cli import main as cli
from mlmd_exercise.store.address import parse_location

@pytest.fixture
def demo_copy(demo_dir, tmp_path) -> Path:
    """A private copy of the demo store, so a test may compare its bytes."""
    path = tmp_path / "metadata.db"
    shutil.copy(demo_dir / "metadata.db", path)
    return path


def test_every_command_has_help(run_cli):
    # The commands are listed once, in cli/main.COMMANDS (the README's table is checked against
    # it by test_readme.py): each one is in --help and has its own.
    top = run_cli("--help")
    assert top.code == 0
    assert len(cli.COMMANDS) >= 19
    for name in (c.name for c in cli.COMMANDS):
        assert f"\n    {name} " in top.out or f"\n    {name}\n" in top.out, name
        result = run_cli(name, "--help")
        assert result.code == 0, name
        assert f"usage: mlmd-exercise {name}" in result.out
        assert "--db" in result.out
    assert all(c.description and c.help for c in cli.COMMANDS)


def test_every_outcome_of_a_command_has_its_exit_code():
    from mlmd_exercise.cli.command import Outcome

    assert cli.EXIT_CODES == {Outcome.OK: 0, Outcome.CHECK_FAILED: 1, Outcome.INTERRUPTED: 130}
    assert set(cli.EXIT_CODES) == set(Outcome)


def test_run_as_a_module_then_read_the_store_with_sqlite3(tmp_path):
    proc = run_module(["run"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    data_uri = (tmp_path / "data" / "train_dataset.csv").resolve().as_uri()
    model_uri = (tmp_path / "models" / "trained_model.joblib").resolve().as_uri()
    assert "recorded in metadata.db (experiment 'default'):" in out
    assert "executions by state: COMPLETE 1" in out
    assert "lineage of execution 1 (Trainer, COMPLETE)" in out
    assert f"INPUT   examples  artifact 1  DataSet v1     {data_uri}" in out
    assert f"OUTPUT  model     artifact 2  SavedModel v1  {model_uri}" in out
    assert "chart of executions by state: execution_states.png" in out
    for name in ["metadata.db", "data/train_dataset.csv", "models/trained_model.joblib",
                 "execution_states.png"]:
        assert (tmp_path / name).is_file(), name

    # No MLMD store is open on the file in this process: plain SQL is safe here.
    con = sqlite3.connect(tmp_path / "metadata.db")
    try:
        rows = con.execute(
            "SELECT e.type, a.uri, t.name FROM Event e JOIN Artifact a ON a.id = e.artifact_id "
            "JOIN Execution x ON x.id = e.execution_id JOIN Type t ON t.id = x.type_id "
            "ORDER BY e.type").fetchall()
        states = con.execute("SELECT last_known_state FROM Execution").fetchall()
    finally:
        con.close()
    assert rows == [(3, data_uri, "Trainer"), (4, model_uri, "Trainer")]  # 3 INPUT, 4 OUTPUT
    assert states == [(3,)]  # COMPLETE


def test_run_in_a_workdir_with_an_experiment_twice(run_cli, tmp_path):
    assert run_cli("run", "--workdir", tmp_path, "--experiment", "exp1").code == 0
    second = run_cli("run", "--workdir", tmp_path, "--experiment", "exp1")
    assert second.code == 0
    assert "(experiment 'exp1')" in second.out
    assert "executions by state: COMPLETE 2" in second.out
    # Unchanged data is the stored artifact; the identical model is the second run's own.
    assert "train split  artifact 1   DataSet v1" in second.out
    model_uri = (tmp_path / "models" / "trained_model.joblib").resolve().as_uri()
    assert f"model        artifact 3   SavedModel v2  {model_uri}  (same content as artifact 2)" in second.out
    assert "trainer      execution 2  Trainer" in second.out
    assert f"chart of executions by state: {tmp_path / 'execution_states.png'}" in second.out
    states = run_cli("states", "--db", tmp_path / "metadata.db")
    assert (states.code, states.out) == (0, "COMPLETE  2\n")


def test_run_makes_its_workdir_and_prints_each_step_as_it_happens(run_cli, tmp_path):
    workdir = tmp_path / "w1" / "deeper"
    result = run_cli("run", "--workdir", workdir)
    assert result.code == 0, result.err
    data, model = workdir / "data" / "train_dataset.csv", workdir / "models" / "trained_model.joblib"
    steps = result.out.splitlines()[:5]
    assert steps[0] == f"created working directory {workdir}"
    assert steps[1] == f"wrote {data} (10 rows)"
    assert steps[2] == "execution 1 (Trainer) started: RUNNING, reading examples = artifact 1 (DataSet v1)"
    assert steps[3].startswith("trained LogisticRegression (train accuracy ")
    assert steps[3].endswith(f"), saved {model}")
    assert steps[4] == "execution 1 (Trainer) now COMPLETE, wrote model = artifact 2 (SavedModel v1)"
    assert data.is_file() and model.is_file()
    again = run_cli("run", "--workdir", workdir)
    assert "created working directory" not in again.out


def test_show_without_a_display_saves_the_chart(run_cli, tmp_path, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    result = run_cli("run", "--workdir", tmp_path, "--show", "--chart", tmp_path / "c.svg")
    assert result.code == 0
    assert "no display ($DISPLAY is not set); saving the chart instead" in result.err
    assert (tmp_path / "c.svg").read_text().count("Executions by state") == 1


def test_lineage_prints_inputs_and_outputs(run_cli, demo_dir):
    result = run_cli("lineage", "1", "--db", demo_dir / "metadata.db")
    assert result.code == 0
    lines = result.out.splitlines()
    assert lines[0] == "execution 1 (Trainer, COMPLETE)"
    assert lines[1].split()[:5] == ["INPUT", "examples", "artifact", "1", "DataSet"]
    assert lines[2].split()[:5] == ["OUTPUT", "model", "artifact", "2", "SavedModel"]
    assert lines[2].endswith("/models/trained_model.joblib")
    # --db works before the command too.
    assert run_cli("--db", demo_dir / "metadata.db", "lineage", "1").out == result.out


def test_states_prints_counts_and_saves_a_chart(run_cli, demo_dir, tmp_path):
    result = run_cli("states", "--db", demo_dir / "metadata.db", "--chart", tmp_path / "s.png")
    assert result.code == 0
    assert result.out.splitlines()[0] == "COMPLETE  1"
    assert (tmp_path / "s.png").read_bytes().startswith(b"\x89PNG")


def test_graph_svg_names_dataset_execution_and_model(run_cli, demo_dir, tmp_path):
    out = tmp_path / "lineage.svg"
    result = run_cli("graph", "--db", demo_dir / "metadata.db", "--output", out)
    assert result.code == 0
    assert result.out == f"lineage graph of 2 artifacts and 1 execution: {out}\n"
    svg = out.read_text()
    for text in ["train_dataset.csv", "Trainer #1", "LogisticRegressionModel"]:
        assert text in svg
    one = run_cli("graph", "--db", demo_dir / "metadata.db", "--execution", "1", "-o", tmp_path / "g.png")
    assert one.code == 0 and (tmp_path / "g.png").read_bytes().startswith(b"\x89PNG")


def test_graph_refuses_more_nodes_than_graphviz_draws_in_time(run_cli, tmp_path):
    from mlmd_exercise.write.bulk import ArtifactSpec, RunSpec, record_runs

    db = tmp_path / "m.db"
    # Runs with inputs of their own (nothing collapses): 3 nodes a run.
    record_runs(mx.Tracker(db), (RunSpec(inputs={"examples": ArtifactSpec(f"file:///d/{i}.csv")},
                                         outputs={"model": ArtifactSpec(f"file:///m/{i}", type="SavedModel")})
                                 for i in range(40)))
    before = digest(db)
    refused = run_cli("graph", "-o", tmp_path / "g.svg", "--max-nodes", "100", "--db", db)
    assert refused.code == 2 and refused.err.count("\n") == 1
    assert ("the graph has 120 nodes after alike runs are drawn as one: more than graphviz draws in reasonable "
            "time (--max-nodes 100)") in refused.err and not (tmp_path / "g.svg").exists()
    assert run_cli("graph", "-o", tmp_path / "g.dot", "--max-nodes", "100", "--db", db).code == 0  # no graphviz
    assert run_cli("graph", "-o", tmp_path / "g.svg", "--max-nodes", "120", "--db", db).code == 0
    assert run_cli("graph", "-o", tmp_path / "g2.svg", "--max-nodes", "0", "--db", db).code == 2
    assert digest(db) == before


def _text_file(tmp_path: Path) -> Path:
    p = tmp_path / "notes.txt"
    p.write_text("not a database")
    return p


@pytest.mark.parametrize("args, message", [
    (["states", "--db", "{notes}"], "'{notes}' is not an SQLite database"),
    (["run", "--workdir", "{tmp}", "--db", "{notes}"], "'{notes}' is not an SQLite database"),
    (["lineage", "1", "--db", "{tmp}/nodir/m.db"], "directory '{tmp}/nodir' for store '{tmp}/nodir/m.db' does not exist"),
    (["run", "--workdir", "{tmp}", "--db", "{tmp}/nodir/m.db"], "directory '{tmp}/nodir' for store '{tmp}/nodir/m.db' does not exist"),
    (["states", "--db", "{tmp}/absent.db"], "no MLMD store at '{tmp}/absent.db'"),
    (["lineage", "42", "--db", "{db}"], "no execution with id 42 in {db}"),
    (["graph", "--execution", "42", "--db", "{db}", "-o", "{tmp}/g.svg"], "no execution with id 42 in {db}"),
    (["lineage", "0", "--db", "{db}"], "execution id must be positive, not '0'"),
    (["lineage", "x1", "--db", "{db}"], "execution id must be a whole number, not 'x1'"),
    (["graph", "--db", "{db}", "-o", "{tmp}/g.gif"], "unknown output format '.gif' of '{tmp}/g.gif'"),
    (["states", "--db", "{db}", "--chart", "{tmp}/s.bmp"], "unknown output format '.bmp' of '{tmp}/s.bmp'"),
    (["run", "--workdir", "{tmp}", "--db", "{db}", "--chart", "{tmp}/s.txt"], "unknown output format '.txt' of '{tmp}/s.txt'"),
    (["run", "--workdir", "{notes}"], "working directory '{notes}' is not a folder"),
    (["run", "--workdir", "{tmp}/new", "--db", "{notes}"], "'{notes}' is not an SQLite database"),
    (["graph", "--db", "{db}", "-o", "{tmp}/no/such/dir/x.svg"],
     "cannot write '{tmp}/no/such/dir/x.svg': folder '{tmp}/no/such/dir' does not exist"),
    (["graph", "--db", "{db}", "-o", "{tmp}"], "output path '{tmp}' is a folder: give a file name"),
    (["states", "--db", "{db}", "--chart", "{tmp}/no/s.png"],
     "cannot write '{tmp}/no/s.png': folder '{tmp}/no' does not exist"),
    (["run", "--workdir", "{tmp}", "--db", "{db}", "--chart", "{tmp}/no/s.png"],
     "cannot write '{tmp}/no/s.png': folder '{tmp}/no' does not exist"),
    (["graph", "--db", "{db}", "-o", "{tmp}/g.svg"], "graphviz's 'dot' program is not on the PATH"),
])
def test_bad_input_is_one_line_exit_2_and_the_store_is_unchanged(
        run_cli, demo_copy, tmp_path, monkeypatch, args, message):
    names = {"tmp": tmp_path, "db": demo_copy, "notes": _text_file(tmp_path)}
    if "'dot'" in message:
        monkeypatch.setenv("PATH", str(tmp_path))  # a PATH with no dot on it
    before = {p: digest(p) for p in [demo_copy, names["notes"]]}
    result = run_cli(*[a.format(**names) for a in args])
    assert result.code == 2
    assert result.out == ""
    assert len(result.err.splitlines()) == 1, result.err
    assert message.format(**names) in result.err
    assert {p: digest(p) for p in before} == before
    assert not (tmp_path / "data").exists() and not (tmp_path / "g.svg").exists()
    assert not (tmp_path / "new").exists()  # a run that did not start leaves no folder


def test_errors_are_one_line_without_traceback_in_a_real_process(tmp_path):
    proc = run_module(["lineage", "7", "--db", tmp_path / "absent.db"], cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr == (f"mlmd-exercise: error: no MLMD store at '{tmp_path / 'absent.db'}': record a "
                           "run first ('mlmd-exercise run', or mlmd_exercise.Tracker in Python)\n")
    assert not (tmp_path / "absent.db").exists()


def test_mlmd_store_is_the_default_store_and_nothing_else_reaches_stderr(db, tmp_path):
    env = {**os.environ, "MLMD_STORE": db}
    run = run_module(["run", "--workdir", tmp_path], cwd=tmp_path, env=env)
    assert run.returncode == 0 and run.stderr == ""  # no MLMD connection log lines
    shown = str(parse_location(db))
    assert f"recorded in {shown} (experiment 'default'):" in run.stdout
    assert not (tmp_path / "metadata.db").exists()  # $MLMD_STORE wins over --workdir
    states = run_module(["states"], cwd=tmp_path, env=env)
    assert (states.returncode, states.stdout, states.stderr) == (0, "COMPLETE  1\n", "")
    # Even the debug log masks the password (MLMD's own logs print the whole config).
    verbose = run_module(["-v", "states"], cwd=tmp_path, env=env)
    password = parse_location(db).password
    assert verbose.returncode == 0
    assert not password or password not in verbose.stderr + verbose.stdout


def test_the_escaping_stdout_is_collected_quietly_after_the_stream_it_wrapped_is_closed():
    """The CLI's stdout wrapper (cli.main._Printable) flushed, as it is collected at exit, a stream
    already closed (pytest's capture): 'Exception ignored ... I/O operation on closed file'."""
    import io

    from mlmd_exercise.cli.main import _Printable

    stream = io.StringIO()
    wrapper = _Printable(stream)
    wrapper.write("a \x1b[31m name\n")
    assert stream.getvalue() == "a \\x1b[31m name\n"
    stream.close()
    wrapper.flush()
    wrapper.close()  # what collecting it does: no ValueError
