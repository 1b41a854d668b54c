"""stale.py and `mlmd-exercise stale`: what was made from files that changed or vanished."""

from __future__ import annotations

import json

import pytest

from conftest import write
from mlmd_exercise.read.stale import find_stale

STALE_KEYS = {"checked", "changed", "stale"}
CHANGED_KEYS = {"problem", "artifact", "downstream", "runs"}


@pytest.fixture
def made(tracker, tmp_path):
    """train.csv -> Trainer -> model -> Evaluator -> metrics, and an unused notes file."""
    train = write(tmp_path / "data" / "train.csv", "x,y\n1,0\n")
    with tracker.execution("Trainer", inputs={"examples": tracker.dataset(train)}) as trainer:
        trainer.log_model(write(tmp_path / "model.joblib", "weights"), name="LR")
    with tracker.execution("Evaluator", inputs={"model": trainer.outputs["model"]}) as evaluator:
        evaluator.log_output("metrics", write(tmp_path / "metrics.json", "{}"), type="Metrics",
                             properties={"accuracy": 0.9})
    return {"tracker": tracker, "train": train,
            "model": trainer.outputs["model"], "metrics": evaluator.outputs["metrics"],
            "runs": [trainer.id, evaluator.id]}


def test_nothing_changed_nothing_is_stale(run_cli, made, db):
    report = find_stale(made["tracker"].store)
    assert report.ok and report.checked == 3 and report.changed == () and report.stale == ()
    result = run_cli("stale", "--db", db)
    assert (result.code, result.out) == (0, "no stale artifacts: 0 changed or missing files "
                                            "among 3 checked files\n")


@pytest.mark.parametrize("change, problem", [
    (lambda p: p.write_text("x,y\n1,1\n"), "modified"),
    (lambda p: p.unlink(), "missing"),
])
def test_what_was_made_from_a_changed_dataset_is_stale(run_cli, made, db, change, problem):
    change(made["train"])
    report = find_stale(made["tracker"].store)
    [changed] = report.changed
    assert changed.problem.kind == problem and changed.problem.artifact.uri == made["train"].as_uri()
    assert [a.id for a in report.stale] == [made["model"].id, made["metrics"].id]
    assert [e.id for e in changed.runs] == made["runs"]

    result = run_cli("stale", "--db", db)
    assert result.code == 1
    lines = result.out.splitlines()
    assert lines[0].startswith(f"{problem}  artifact 1 (DataSet v1)  file://")
    assert [line.split()[:3] for line in lines[2:4]] == [
        ["artifact", str(made["model"].id), "SavedModel"], ["artifact", str(made["metrics"].id), "Metrics"]]
    assert lines[-1] == "2 stale artifacts made from 1 changed or missing file: make them again"

    data = json.loads(run_cli("stale", "--json", "--db", db).out)
    assert set(data) == STALE_KEYS and [set(c) for c in data["changed"]] == [CHANGED_KEYS]
    assert data["changed"][0]["problem"] == problem
    assert [a["id"] for a in data["stale"]] == [made["model"].id, made["metrics"].id]


def test_a_changed_model_makes_only_its_metrics_stale(made):
    (made["train"].parent.parent / "model.joblib").write_text("other weights")
    report = find_stale(made["tracker"].store)
    assert [a.id for a in report.stale] == [made["metrics"].id]


def test_a_changed_file_nothing_was_made_from(run_cli, tracker, tmp_path, db):
    notes = write(tmp_path / "notes.csv", "a\n")
    with pytest.raises(RuntimeError):  # the only run that read it failed: no outputs
        with tracker.execution("Trainer", inputs={"examples": tracker.dataset(notes)}):
            raise RuntimeError("stopped")
    notes.unlink()
    report = find_stale(tracker.store)
    assert report.ok and len(report.changed) == 1 and report.changed[0].downstream == ()
    result = run_cli("stale", "--db", db)
    assert result.code == 0
    assert result.out.splitlines()[1:] == [
        "  nothing was made from it",
        "no stale artifacts: 1 changed or missing file among 1 checked file"]


def test_stale_on_a_missing_store_is_named(run_cli, tmp_path):
    missing = tmp_path / "nope.db"
    result = run_cli("stale", "--db", missing)
    assert result.code == 2 and str(missing) in result.err and not missing.exists()
