"""compare.py and `ls executions`: params and metrics as columns, sorted by any of them."""

from __future__ import annotations

import json

import pytest

import mlmd_exercise as mx
from conftest import write
from mlmd_exercise.read import compare

RECORD_KEYS = {"id", "type", "state", "properties", "created_ms", "name"}  # an execution's


@pytest.fixture
def runs(tracker, tmp_path):
    """Three Trainer runs with C and accuracy, then one that failed with neither metric."""
    data = tracker.dataset(write(tmp_path / "train.csv", "x,y\n1,0\n"))
    for i, (c, accuracy) in enumerate([(0.1, 0.7), (1.0, 0.9), (10.0, 0.8)]):
        with tracker.execution("Trainer", inputs={"examples": data}, params={"C": c}) as run:
            run.log_metrics({"accuracy": accuracy})
            run.log_model(write(tmp_path / f"m{i}.joblib", f"model {i}"), name="LR")
    with pytest.raises(RuntimeError):
        with tracker.execution("Trainer", inputs={"examples": data}, params={"C": 5.0}):
            raise RuntimeError("out of memory")
    return tracker


def ids(result) -> list:
    assert result.code == 0, result.err
    return [int(line.split()[0]) for line in result.out.splitlines()[1:]]


def test_a_summary_sorts_params_metrics_environment_and_status(runs):
    [failed, third, *_] = compare.summarize_runs(runs.store, mx.list_executions(runs.store))
    assert third.params == {"C": 10.0} and third.metrics == {"accuracy": 0.8}
    assert {"host", "pid", "env.python"} <= set(third.environment)
    assert not set(third.environment) & set(third.params)
    assert [role for role, _ in third.outputs] == ["model"]
    assert failed.params == {"C": 5.0} and failed.metrics == {}
    assert failed.status["error_type"] == "RuntimeError" and failed.status["state"] == "FAILED"
    assert compare.columns([failed, third]) == ["accuracy", "C"]  # metrics, then params


def test_metrics_on_a_metrics_output_are_the_runs(tracker, tmp_path):
    model = tracker.log_artifact(write(tmp_path / "m.joblib", "m"), type="SavedModel")
    with tracker.execution("Evaluator", inputs={"model": model}) as run:
        run.log_output("metrics", write(tmp_path / "metrics.json", "{}"), type="Metrics",
                       properties={"accuracy": 0.75, "n_examples": 40})
    [summary] = compare.summarize_runs(tracker.store, [run.execution()])
    assert summary.metrics == {"accuracy": 0.75, "n_examples": 40} and summary.params == {}


def test_metrics_of_a_run_with_no_model_or_metrics_output_are_still_metrics(tracker, run_cli, db):
    """An Evaluator that logs metrics and writes no file: its execution names them."""
    for accuracy in (0.7, 0.9):
        with tracker.execution("Evaluator", params={"threshold": 0.5}) as run:
            run.log_metrics({"accuracy": accuracy, "n": 10})
    [summary] = compare.summarize_runs(tracker.store, [run.execution()])
    assert summary.metrics == {"accuracy": 0.9, "n": 10} and summary.params == {"threshold": 0.5}
    assert summary.status["metric_names"] == "accuracy,n"
    assert run.execution().properties["metric_names"] == "accuracy,n"
    diff = run_cli("diff", "1", "2", "--db", db).out.splitlines()
    # The same params and inputs, another metric: said in one line, as for other outputs.
    assert diff[2] == "same inputs and params, different outputs: not deterministic (same code and environment too)"
    assert diff[4].split() == ["params", "same"] and diff[5].split() == ["metrics"]
    assert diff[6].split() == ["accuracy", "0.7", "0.9"]


def test_ls_executions_shows_params_and_metrics_as_columns(run_cli, runs, db):
    result = run_cli("ls", "executions", "--db", db)
    lines = result.out.splitlines()
    assert lines[0].split() == ["ID", "TYPE", "STATE", "CREATED", "accuracy", "C"]  # metrics first; no env.*, host
    assert lines[1].split()[-2:] == ["-", "5.0"] and lines[2].split()[-2:] == ["0.8", "10.0"]


def test_ls_executions_sorted_by_a_metric(run_cli, runs, db):
    assert ids(run_cli("ls", "executions", "--sort", "-accuracy", "--db", db)) == [2, 3, 1, 4]
    assert ids(run_cli("ls", "executions", "--sort=-accuracy", "--db", db)) == [2, 3, 1, 4]
    assert ids(run_cli("ls", "executions", "--sort", "accuracy", "--db", db)) == [1, 3, 2, 4]
    assert ids(run_cli("ls", "executions", "--sort", "C", "--db", db)) == [1, 2, 4, 3]
    assert ids(run_cli("ls", "executions", "--sort", "id", "--db", db)) == [1, 2, 3, 4]
    assert ids(run_cli("ls", "executions", "--sort", "-created", "--db", db)) == [4, 3, 2, 1]
    # The limit applies after sorting: the two best, not the best of the newest two.
    assert ids(run_cli("ls", "executions", "--sort", "-accuracy", "--limit", "2", "--db", db)) == [2, 3]
    data = json.loads(run_cli("ls", "executions", "--sort", "-accuracy", "--json", "--db", db).out)
    assert [r["id"] for r in data] == [2, 3, 1, 4] and all(set(r) == RECORD_KEYS for r in data)
    data = json.loads(run_cli("ls", "executions", "--sort", "-id", "--limit", "3", "--json", "--db", db).out)
    assert [r["id"] for r in data] == [4, 3, 2] and all(set(r) == RECORD_KEYS for r in data)


def test_ls_columns_chosen_by_name(run_cli, runs, db):
    lines = run_cli("ls", "executions", "--columns", "accuracy,host", "--db", db).out.splitlines()
    assert lines[0].split() == ["ID", "TYPE", "STATE", "CREATED", "accuracy", "host"]


def test_ls_of_artifacts_sorted_by_id(run_cli, runs, db):
    assert ids(run_cli("ls", "artifacts", "--sort", "id", "--db", db)) == [1, 2, 3, 4]
    assert ids(run_cli("ls", "artifacts", "--sort", "-id", "--limit", "2", "--db", db)) == [4, 3]


def test_a_wide_table_shows_eight_columns_and_names_the_rest(run_cli, tracker, db):
    params = {f"p{i:02}": i for i in range(10)}
    with tracker.execution("Trainer", params={**params, "note": "x" * 60}):
        pass
    lines = run_cli("ls", "executions", "--db", db).out.splitlines()
    assert lines[0].split()[4:] == ["note", "p00", "p01", "p02", "p03", "p04", "p05", "p06"]
    assert lines[1].split()[5] == "x" * 23 + "…"  # long text is cut (CREATED is two words)
    assert lines[2] == "(3 more columns: p07, p08, p09; choose with --columns)"


@pytest.mark.parametrize("args, message", [
    (["--columns", "C,bogus"], "no param or metric 'bogus' in the listed executions "
                               "(they have: accuracy, C)"),
    (["--columns", ","], "--columns needs names separated by commas, not ','"),
    (["--sort", "-bogus"], "cannot sort by 'bogus': no execution listed has it; sort by id, "
                           "created or one of: accuracy, C"),
])
def test_bad_columns_and_sorts_are_named(run_cli, runs, db, args, message):
    result = run_cli("ls", "executions", *args, "--db", db)
    assert (result.code, result.out) == (2, "")
    assert result.err == f"mlmd-exercise: error: {message}\n"


@pytest.mark.parametrize("args, message", [
    (["artifacts", "--columns", "C"], "--columns chooses the params and metrics of executions, not artifacts"),
    (["experiments", "--sort", "-accuracy"], "experiments sort by id or created, not '-accuracy'"),
])
def test_columns_and_property_sorts_are_for_executions(run_cli, runs, db, args, message):
    result = run_cli("ls", *args, "--db", db)
    assert (result.code, result.err) == (2, f"mlmd-exercise: error: {message}\n")


def test_no_executions_with_columns_is_not_an_error(run_cli, store, db):
    result = run_cli("ls", "executions", "--columns", "accuracy", "--sort", "-accuracy", "--db", db)
    assert (result.code, result.out) == (0, "no executions\n")


def test_nan_sorts_last_either_way_as_a_missing_value_does(tracker):
    from mlmd_exercise.read.compare import sort_runs, summarize_runs
    from mlmd_exercise.web import runs

    ids = {}
    for name, loss in (("nan", float("nan")), ("low", 0.1), ("inf", float("inf")), ("high", 0.9)):
        with tracker.execution(name=name) as run:
            run.log_metric("loss", loss)
        ids[run.id] = name
    listed = summarize_runs(tracker.store, tracker.store.backend.executions())
    assert [ids[r.execution.id] for r in sort_runs(listed, "loss")] == ["low", "high", "inf", "nan"]
    assert [ids[r.execution.id] for r in sort_runs(listed, "-loss")] == ["inf", "high", "low", "nan"]
    for sort, expected in (("metric:loss", ["low", "high", "inf", "nan"]), ("-metric:loss", ["inf", "high", "low", "nan"])):
        page = runs.runs_page(tracker.store, runs.RunsQuery.parse({"sort": sort}))
        assert [ids[r.execution.id] for r in page.rows] == expected


def test_ls_shows_the_column_it_sorts_by_first(run_cli, tracker, db):
    """Sorting by a key that would be past the eighth column still shows it, first."""
    for i in range(3):
        with tracker.execution("Trainer", params={f"p{k}": k for k in range(9)}) as run:
            run.log_metrics({"zz_loss": 1.0 / (i + 1)})
    lines = run_cli("ls", "executions", "--sort", "p8", "--db", db).out.splitlines()
    assert lines[0].split()[4:6] == ["p8", "zz_loss"]
    lines = run_cli("ls", "executions", "--sort", "-zz_loss", "--db", db).out.splitlines()
    assert lines[0].split()[4] == "zz_loss" and [line.split()[0] for line in lines[1:4]] == ["1", "2", "3"]


def test_an_imported_twin_compares_equal_and_its_origin_is_no_column(run_cli, tracker, tmp_path, db):
    """After export and import, the bookkeeping an import adds (its origin, the original times)
    is neither a param nor a metric: two runs of the same data and code still compare equal."""
    data = tracker.dataset(write(tmp_path / "train.csv", "x,y\n1,0\n"))
    for _ in range(2):
        with tracker.execution("Trainer", inputs={"examples": data}, params={"C": 1.0}) as run:
            run.log_metrics({"accuracy": 0.9})
            run.log_model(write(tmp_path / "m.joblib", "the same model"), name="LR")
    assert run_cli("export", "-o", tmp_path / "b.bundle", "--db", db).code == 0
    target = tmp_path / "target.db"
    assert run_cli("import", tmp_path / "b.bundle", "--db", target).code == 0
    header = run_cli("ls", "executions", "--db", target).out.splitlines()[0].split()
    assert header[4:] == ["accuracy", "C"]
    diff = run_cli("diff", "1", "2", "--db", target)
    assert diff.out.splitlines()[-1].startswith("no differences"), diff.out
    diff = run_cli("diff", "--artifact", "2", "3", "--db", target)
    assert "mlmd_exercise_origin" not in diff.out and "not deterministic" not in diff.out, diff.out
