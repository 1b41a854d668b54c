"""schema.py: types registered once and idempotently, property values round-trip."""

from __future__ import annotations

import pytest
from ml_metadata.proto import metadata_store_pb2 as pb

import mlmd_exercise as mx
from mlmd_exercise import schema


def _stored(store, kind, name):
    getter = {"artifact": store.mlmd.get_artifact_type, "execution": store.mlmd.get_execution_type,
              "context": store.mlmd.get_context_type}[kind]
    t = getter(name)
    return {k: pb.PropertyType.Name(v) for k, v in t.properties.items()}


def test_types_follow_the_guide(store):
    schema.register_types(store.mlmd)
    assert _stored(store, "artifact", "DataSet") == {"split": "STRING", "version": "INT", "day": "INT"}
    assert _stored(store, "artifact", "SavedModel") == {"name": "STRING", "version": "INT"}
    assert _stored(store, "artifact", "Metrics") == {"accuracy": "DOUBLE", "version": "INT"}
    assert _stored(store, "execution", "Trainer") == {"state": "STRING"}
    assert _stored(store, "execution", "Evaluator") == {"state": "STRING"}
    assert _stored(store, "context", "Experiment") == {"note": "STRING"}


def test_registering_again_returns_the_same_ids_and_adds_no_type(store):
    first = schema.register_types(store.mlmd)
    second = schema.register_types(store.mlmd)
    assert first == second
    assert set(first) == {"DataSet", "SavedModel", "Metrics", "Trainer", "Evaluator", "Experiment"}
    names = [t.name for t in store.mlmd.get_artifact_types()]
    assert sorted(names) == ["DataSet", "Metrics", "SavedModel"]


def test_another_programs_type_of_the_same_name_is_never_changed(store):
    other = pb.ArtifactType(name="DataSet")
    other.properties["split"] = pb.INT  # another tool's idea of DataSet
    type_id = store.mlmd.put_artifact_type(other)
    [(found_id, spec)] = schema.register(store.mlmd, [schema.DATASET]).values()
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
    type_id = store.mlmd.put_artifact_type(older)
    ids = schema.register_types(store.mlmd, [schema.DATASET])
    assert ids == {"DataSet": type_id}
    expected = {"split": "STRING", "version": "INT", "day": "INT"} if ours else {
        k: pb.PropertyType.Name(v) for k, v in declared.items()}
    assert _stored(store, "artifact", "DataSet") == expected


@pytest.mark.parametrize("value, field", [
    (True, "bool_value"), (False, "bool_value"), (7, "int_value"), (-3, "int_value"),
    (0.5, "double_value"), ("train", "string_value"), ("", "string_value"),
])
def test_values_keep_their_mlmd_type(value, field):
    props = pb.Artifact().custom_properties
    schema.set_value(props, "k", value)
    assert props["k"].WhichOneof("value") == field
    back = schema.get_value(props["k"])
    assert back == value and type(back) is type(value)


def test_an_unsupported_value_type_is_refused_by_name():
    with pytest.raises(mx.MlmdExerciseError, match=r"^property 'k' has a value of a type MLMD cannot "
                       r"store: \[1\] \(use a string"):
        schema.set_value(pb.Artifact().custom_properties, "k", [1])


def test_types_of_the_users_own_are_declared_on_the_fly():
    own = schema.spec_for(schema.Kind.ARTIFACT, "Plot")
    assert (own.name, dict(own.properties)) == ("Plot", {"version": schema.PropertyType.INT})
    assert schema.spec_for(schema.Kind.EXECUTION, "Cleaner").properties == {}
    assert schema.spec_for(schema.Kind.EXECUTION, "Trainer") is schema.TRAINER
    with pytest.raises(mx.SchemaError, match="^a type name must not be empty, not ' '$"):
        schema.spec_for(schema.Kind.EXECUTION, " ")


def test_constants_kept_outside_the_protos_match_them():
    # records and store avoid importing ml_metadata (start-up time); they must agree with it.
    from mlmd_exercise import store as store_module

    assert [s.value for s in schema.ExecutionState] == [
        pb.Execution.State.Name(n) for n in sorted(pb.Execution.State.values())]
    assert [s.value for s in schema.ArtifactState] == [
        pb.Artifact.State.Name(n) for n in sorted(pb.Artifact.State.values())]
    modes = pb.SqliteMetadataSourceConfig
    assert (store_module._READONLY, store_module._READWRITE, store_module._OPENCREATE) == (
        modes.READONLY, modes.READWRITE, modes.READWRITE_OPENCREATE)


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
    [stored] = mx.open_store(db).mlmd.get_executions()
    props = stored.custom_properties
    assert props["small"].int_value == 2 ** 31 - 1
    assert (props["ms"].double_value, props["negative"].double_value) == (1614592800000, -(2 ** 40))
    assert props["huge"].string_value == str(2 ** 60)  # a double would not be exact
