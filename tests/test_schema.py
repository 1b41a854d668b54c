"""schema.py: types registered once and idempotently, property values round-trip."""

from __future__ import annotations

import pytest

import mlmd_exercise as mx
from mlmd_exercise import records, schema
from mlmd_exercise.store.backend import NewArtifact, Query
from raw_mlmd import pb, raw_mlmd


def _register(store, specs=schema.ALL_TYPES):
    """Registers through a fresh catalog (the store opened again, as a new process would); ids
    and specs by name."""
    fresh = mx.open_store(store.location, create=True)
    catalog = fresh.catalog
    catalog.register(specs)
    return {s.name: (catalog.spec_id(s), catalog.spec(s.kind, s.name)) for s in specs}


def _ids(store, specs=schema.ALL_TYPES):
    return {name: type_id for name, (type_id, _) in _register(store, specs).items()}


def _stored(store, kind, name):
    getter = {"artifact": raw_mlmd(store).get_artifact_type, "execution": raw_mlmd(store).get_execution_type,
              "context": raw_mlmd(store).get_context_type}[kind]
    t = getter(name)
    return {k: pb.PropertyType.Name(v) for k, v in t.properties.items()}


def test_types_follow_the_guide(store):
    _ids(store)
    assert _stored(store, "artifact", "DataSet") == {"split": "STRING", "version": "INT", "day": "INT"}
    assert _stored(store, "artifact", "SavedModel") == {"name": "STRING", "version": "INT"}
    assert _stored(store, "artifact", "Metrics") == {"accuracy": "DOUBLE", "version": "INT"}
    assert _stored(store, "execution", "Trainer") == {"state": "STRING"}
    assert _stored(store, "execution", "Evaluator") == {"state": "STRING"}
    assert _stored(store, "context", "Experiment") == {"note": "STRING"}


def test_registering_again_returns_the_same_ids_and_adds_no_type(store):
    first = _ids(store)
    second = _ids(store)
    assert first == second
    assert set(first) == {"DataSet", "SavedModel", "Metrics", "Trainer", "Evaluator", "Experiment"}
    names = [t.name for t in raw_mlmd(store).get_artifact_types()]
    assert sorted(names) == ["DataSet", "Metrics", "SavedModel"]


def test_another_programs_type_of_the_same_name_is_never_changed(store):
    other = pb.ArtifactType(name="DataSet")
    other.properties["split"] = pb.INT  # another tool's idea of DataSet
    type_id = raw_mlmd(store).put_artifact_type(other)
    [(found_id, spec)] = _register(store, [schema.DATASET]).values()
    assert (found_id, spec.foreign, dict(spec.properties)) == (type_id, True, {})
    assert _stored(store, "artifact", "DataSet") == {"split": "INT"}


@pytest.mark.parametrize("declared, ours", [
    ({"split": pb.STRING, "version": pb.INT}, True),  # ours, from a version before `day`
    ({"name": pb.STRING, "version": pb.INT}, False),  # not a DataSet of ours: `name`
    ({"split": pb.STRING, "day": pb.INT}, False),  # the guide's DataSet: no `version` counter
    ({"split": pb.STRING, "owner": pb.STRING}, False),  # another tool's field
])
def test_only_a_type_of_ours_is_extended(store, declared, ours):
    older = pb.ArtifactType(name="DataSet")
    for key, ptype in declared.items():
        older.properties[key] = ptype
    type_id = raw_mlmd(store).put_artifact_type(older)
    ids = _ids(store, [schema.DATASET])
    assert ids == {"DataSet": type_id}
    expected = {"split": "STRING", "version": "INT", "day": "INT"} if ours else {
        k: pb.PropertyType.Name(v) for k, v in declared.items()}
    assert _stored(store, "artifact", "DataSet") == expected


@pytest.mark.parametrize("value, field", [
    (True, "bool_value"), (False, "bool_value"), (7, "int_value"), (-3, "int_value"),
    (0.5, "double_value"), ("train", "string_value"), ("", "string_value"),
    (2 ** 40, "double_value"), (2 ** 60, "string_value"),  # beyond 32 bits, beyond a double's exactness
])
def test_values_keep_their_mlmd_type(store, value, field):
    [type_id] = _ids(store, [schema.DATASET]).values()
    [artifact_id] = store.backend.put_artifacts(
        [NewArtifact(type_id, "DataSet", "file:///v", custom={"k": schema.storable("k", value)})])
    [stored] = raw_mlmd(store).get_artifacts_by_id([artifact_id])
    assert stored.custom_properties["k"].WhichOneof("value") == field
    [back] = store.backend.artifacts(Query(ids=[artifact_id]))
    expected = value if field != "double_value" or isinstance(value, float) else float(value)
    expected = str(value) if field == "string_value" and not isinstance(value, str) else expected
    assert back.custom["k"] == expected and type(back.custom["k"]) is type(expected)


def test_an_unsupported_value_type_is_refused_by_name():
    with pytest.raises(mx.MlmdExerciseError, match=r"^property 'k' = \[1\]: a list cannot be stored: "
                       r"log each item under a key of its own"):
        schema.storable("k", [1])


def test_types_of_the_users_own_are_declared_on_the_fly():
    own = schema.spec_for(records.Kind.ARTIFACT, "Plot")
    assert (own.name, dict(own.properties)) == ("Plot", {"version": records.PropertyType.INT})
    assert schema.spec_for(records.Kind.EXECUTION, "Cleaner").properties == {}
    assert schema.spec_for(records.Kind.EXECUTION, "Trainer") is schema.TRAINER
    with pytest.raises(mx.SchemaError, match="^a type name must not be empty, not ' '$"):
        schema.spec_for(records.Kind.EXECUTION, " ")


def test_constants_kept_outside_the_protos_match_them():
    # records avoid importing ml_metadata (start-up time); they must agree with it.
    assert [s.value for s in records.ExecutionState] == [
        pb.Execution.State.Name(n) for n in sorted(pb.Execution.State.values())]
    assert [s.value for s in records.ArtifactState] == [
        pb.Artifact.State.Name(n) for n in sorted(pb.Artifact.State.values())]
    assert [p.value for p in records.PropertyType] == [
        pb.PropertyType.Name(n) for n in sorted(pb.PropertyType.values())]


def test_a_states_count_by_address_does_not_import_ml_metadata(tmp_path):
    import subprocess
    import sys

    mx.Tracker(tmp_path / "m.db").execution().finish()
    code = ("import sys, mlmd_exercise.cli.main as c; code = c.main(['states', '--db', sys.argv[1]]); "
            "print(sorted(m for m in sys.modules if m.startswith('ml_metadata'))); sys.exit(code)")
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / "m.db")],
                          capture_output=True, text=True, check=True)
    assert proc.stdout.splitlines() == ["COMPLETE  1", "[]"]


def test_whole_numbers_beyond_32_bits_fit_every_database(tracker, db):
    """MLMD's PostgreSQL tables keep integer properties in 32 bits: 2**31 failed there."""
    params = {"small": 2 ** 31 - 1, "ms": 1614592800000, "negative": -(2 ** 40), "huge": 2 ** 60}
    tracker.execution(params=params).finish()
    [stored] = raw_mlmd(mx.open_store(db)).get_executions()
    props = stored.custom_properties
    assert props["small"].int_value == 2 ** 31 - 1
    assert (props["ms"].double_value, props["negative"].double_value) == (1614592800000, -(2 ** 40))
    assert props["huge"].string_value == str(2 ** 60)  # a double would not be exact
