"""Bulk recording checks a run's strings at once and names each one only where one may be
refused (write/bulk.py's `_plain`): that quick test must never let through what the full check
refuses. Every odd text in every place of a run, on every backend and database: refused with
the same message as the full check gives, or recorded exactly."""

from __future__ import annotations

import pytest

import mlmd_exercise as mx
from mlmd_exercise.errors import MlmdExerciseError
from mlmd_exercise.store.backend import Query
from mlmd_exercise.write.bulk import ArtifactSpec, RunSpec, _Importer, record_runs
from test_run_names import ODD_TEXTS

ODD = {**ODD_TEXTS, "backslash alone": "a\\b", "plain": "plain-text_1"}


def _runs(text: str):
    """(place, RunSpec) with `text` in that place and plain text everywhere else."""
    model = ArtifactSpec("file:///m.joblib", type="SavedModel")
    data = ArtifactSpec("file:///d.csv")
    yield "run name", RunSpec(name=text, outputs={"model": model})
    yield "type", RunSpec(type=text or "Trainer", outputs={"model": model})
    yield "experiment", RunSpec(experiment=text or None, outputs={"model": model})
    yield "role", RunSpec(inputs={text: data}, outputs={"model": model})
    yield "artifact type", RunSpec(inputs={"examples": ArtifactSpec("file:///d.csv", type=text or "DataSet")})
    yield "URI", RunSpec(inputs={"examples": ArtifactSpec(f"file:///{text}")})
    yield "artifact property", RunSpec(inputs={"examples": ArtifactSpec("file:///d.csv", properties={"note": text})})
    yield "artifact property name", RunSpec(inputs={"examples": ArtifactSpec("file:///d.csv",
                                                                            properties={f"k{text}": 1})})
    yield "param", RunSpec(params={"p": text}, outputs={"model": model})
    yield "param name", RunSpec(params={f"p{text}": 1}, outputs={"model": model})
    yield "custom property", RunSpec(custom={"c": text}, outputs={"model": model})


def _outcome(check, run: RunSpec):
    try:
        check(run, "Default")
    except MlmdExerciseError as e:
        return str(e)
    return None


def test_the_quick_check_refuses_exactly_what_the_full_check_refuses(db):
    tracker = mx.Tracker(mx.open_store(db, create=True))
    importer = _Importer(tracker)

    def full(run: RunSpec, experiment: str) -> None:
        importer._check_each(run, experiment)
        importer._check(run, experiment)  # the metric names, after the strings

    refused = 0
    for name, text in ODD.items():
        try:
            places = list(_runs(text))
        except MlmdExerciseError:  # a RunSpec that refuses its own value (masking, names): nothing to compare
            continue
        for place, run in places:
            quick, whole = _outcome(importer._check, run), _outcome(full, run)
            assert quick == whole, (name, place, quick, whole)
            refused += whole is not None
    assert refused > 0  # the table holds refusals on every backend (a lone surrogate, a 201-character name)


@pytest.mark.parametrize("odd", ["lone surrogate", "too long", "nul", "quote and backslash", "plain"])
def test_an_odd_run_name_refuses_the_whole_import_with_nothing_written(db, odd):
    """The rules test_run_names.py holds the API to, through record_runs: no database takes a
    lone surrogate or a 201-character name; ml-metadata and PostgreSQL no NUL; ml-metadata on
    PostgreSQL no backslash."""
    tracker = mx.Tracker(mx.open_store(db, create=True))
    runs = [RunSpec(name=f"fine-{i}", outputs={"model": ArtifactSpec(f"file:///m{i}")}) for i in range(3)]
    runs.append(RunSpec(name=ODD[odd], outputs={"model": ArtifactSpec("file:///odd")}))
    backend = tracker.store.backend
    mlmd, postgres = backend.name == "mlmd", tracker.store.location.scheme == "postgresql"
    refused = {"lone surrogate", "too long"} | ({"nul"} if mlmd or postgres else set())
    refused |= {"quote and backslash"} if mlmd and postgres else set()
    if odd in refused:
        with pytest.raises(MlmdExerciseError) as e:
            record_runs(tracker, runs)
        assert len(str(e.value).splitlines()) == 1 and "run name" in str(e.value)
        assert backend.executions() == [] and backend.artifacts() == []
        return
    record_runs(tracker, runs)
    assert sorted(e.label for e in backend.executions()) == sorted(r.name for r in runs)


def test_runs_without_a_name_are_named_by_distinct_random_uuids(db):
    """A bulk-recorded run without a name gets a random (version 4) UUID in hex, each its own."""
    import uuid

    tracker = mx.Tracker(mx.open_store(db, create=True), experiment="e")
    record_runs(tracker, [RunSpec(outputs={"model": ArtifactSpec(f"file:///m/{i}", type="SavedModel")})
                          for i in range(300)] + [RunSpec(name="given")], batch_size=70)
    names = [e.name for e in tracker.store.backend.executions(Query())]
    assert len(names) == 301 and "given" in names and len(set(names)) == 301
    for name in names:
        if name != "given":
            found = uuid.UUID(hex=name)
            assert (found.hex, found.version, found.variant) == (name, 4, uuid.RFC_4122)
