"""One artifact under two of a run's roles. MLMD keeps one event per artifact, execution and
kind (its Event table's UNIQUE key), so the store would refuse the second event: the run is
refused at the call, naming the artifact and both roles, with nothing written, on every backend
and database (before, the store's refusal read "already holds a node of that type and name")."""

from __future__ import annotations

import json

import pytest

import mlmd_exercise as mx
from conftest import check
from mlmd_exercise.write.bulk import ArtifactSpec, RunSpec, record_runs


def _everything(store):
    return (sorted((e.id, e.state) for e in store.backend.executions()), sorted(a.id for a in store.backend.artifacts()),
            [c.name for c in store.backend.contexts()])


def test_a_stored_artifact_under_two_roles_is_refused_at_the_call(db, tmp_path):
    tracker = mx.Tracker(mx.open_store(db, create=True))
    data = tmp_path / "d.csv"
    data.write_text("x")
    with tracker.execution(inputs={"train": tracker.dataset(data)}):
        pass
    before = _everything(tracker.store)
    for inputs in ({"train": tracker.store.backend.artifacts()[0], "eval": tracker.store.backend.artifacts()[0]},
                   {"train": tracker.dataset(data), "eval": tracker.dataset(data)}):  # the same file, stored
        with pytest.raises(mx.MlmdExerciseError) as refused:
            tracker.execution(name="twice", inputs=inputs)
        assert str(refused.value).endswith("is given as input 'train' and as input 'eval': a run has one input "
                                           "event per artifact in an MLMD store; give it under one role")
        stored = tracker.store.backend.artifacts()[0]
        assert str(refused.value).startswith(f"artifact {stored.id} ('file:///") and "\n" not in str(refused.value)
        assert _everything(tracker.store) == before
    with tracker.execution(name="once", inputs={"train": tracker.dataset(data)}):  # the store is fine after
        pass


@pytest.mark.parametrize("fingerprints", [("", ""), ("sha256:aa", "sha256:aa"), ("sha256:aa", "")])
def test_record_runs_refuses_one_artifact_under_two_roles_before_the_batch_writes(db, fingerprints):
    tracker = mx.Tracker(mx.open_store(db, create=True))
    runs = [RunSpec(name="fine", inputs={"x": ArtifactSpec("file:///other.csv")}),
            RunSpec(name="twice", inputs={"train": ArtifactSpec("file:///d.csv", fingerprint=fingerprints[0]),
                                          "eval": ArtifactSpec("file:///d.csv", fingerprint=fingerprints[1])})]
    with pytest.raises(mx.MlmdExerciseError, match=r"^run 'twice' is given 'file:///d.csv' as input 'train' and "
                                                   r"as input 'eval': a run has one input event per artifact"):
        record_runs(tracker, runs)
    assert tracker.store.backend.executions() == []
    # Two versions of one URI (fingerprints that differ) are two artifacts: recorded.
    record_runs(tracker, [RunSpec(name="versions", inputs={"old": ArtifactSpec("file:///d.csv", fingerprint="sha256:aa"),
                                                           "new": ArtifactSpec("file:///d.csv", fingerprint="sha256:bb")})])
    assert len(tracker.store.backend.artifacts()) == 2


def test_an_import_names_the_line_and_writes_nothing(db, tmp_path, run_cli):
    lines = [{"name": f"r{i}", "inputs": {"x": {"uri": f"file:///{i}.csv"}}} for i in range(3)]
    lines.append({"name": "twice", "inputs": {"train": {"uri": "file:///d.csv"}, "eval": {"uri": "file:///d.csv"}}})
    runs = tmp_path / "runs.jsonl"
    runs.write_text("".join(json.dumps(line) + "\n" for line in lines))
    mx.open_store(db, create=True).close()

    def now():
        store = mx.open_store(db)
        try:
            return _everything(store)
        finally:
            store.close()

    before = now()
    check(run_cli("--db", db, "import", runs, "--batch-size", "2"),
          f"line 4 of '{runs}': inputs 'train' and 'eval' are one artifact ('file:///d.csv'): a run has one input "
          "event per artifact in an MLMD store; give it under one role", before, now)
