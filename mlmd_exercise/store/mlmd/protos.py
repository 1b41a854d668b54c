"""ml-metadata's protos <-> the package's records and drafts: the only place they meet.

Part of the ml-metadata backend (store/mlmd.py).
"""

from __future__ import annotations

from typing import Dict, Tuple

from ml_metadata.proto import metadata_store_pb2 as pb

from mlmd_exercise.errors import MlmdExerciseError
from mlmd_exercise.masking import mask, mask_values
from mlmd_exercise.records import (ArtifactRecord, ArtifactState, ContextRecord, EventRecord, ExecutionRecord,
                                   ExecutionState, Kind, PropertyType, PropertyValue, TypeRecord)
from mlmd_exercise.store.backend import ContextWrite, ExecutionWrite, NewArtifact, NewEvent
from mlmd_exercise.values import exact_double

__all__ = ["artifact_record", "execution_record", "context_record", "event_record", "type_record",
           "BASE_TYPES", "new_artifact", "apply", "event", "context", "set_value"]


def get_value(value: pb.Value) -> PropertyValue:
    which = value.WhichOneof("value")
    if which == "int_value":
        return value.int_value
    if which == "double_value":
        return value.double_value
    if which == "bool_value":
        return value.bool_value
    if which == "string_value":
        return value.string_value
    if which == "struct_value":  # Kubeflow's metrics and parameters: a JSON object
        from google.protobuf import json_format

        return json_format.MessageToDict(value.struct_value)
    if which == "proto_value":
        from mlmd_exercise.store.any_json import any_json, double_of

        number = double_of(value.proto_value)  # NaN, an infinity or -0.0 (values.exact_double)
        return any_json(value.proto_value) if number is None else number
    return ""


def set_value(target, key: str, value: PropertyValue) -> None:
    """Stores a value (already made storable by `schema.storable`) under its MLMD kind."""
    if isinstance(value, bool):
        target[key].bool_value = value
    elif isinstance(value, int):
        target[key].int_value = value
    elif isinstance(value, float):
        if exact_double(value):
            target[key].double_value = value
        else:  # NaN, an infinity, -0.0: no database keeps them as a double (values.py)
            from mlmd_exercise.store.any_json import double_any

            target[key].proto_value.ParseFromString(double_any(value))
    elif isinstance(value, str):
        target[key].string_value = value
    elif isinstance(value, dict):
        from google.protobuf import json_format

        json_format.ParseDict(value, target[key].struct_value)
    else:
        raise MlmdExerciseError(f"property '{key}' has a value MLMD cannot store: {value!r}")


def _values(node) -> Tuple[Dict[str, PropertyValue], Dict[str, PropertyValue]]:
    """(declared and custom, declared winning; custom alone), secrets masked (a store that an
    older version or another program wrote may hold them: see `masking`)."""
    custom = mask_values({k: get_value(v) for k, v in node.custom_properties.items()})
    merged = dict(custom)
    merged.update(mask_values({k: get_value(v) for k, v in node.properties.items()}))
    return merged, custom


def artifact_record(a: pb.Artifact) -> ArtifactRecord:
    merged, custom = _values(a)
    return ArtifactRecord(
        id=a.id, type=a.type, uri=mask(a.uri, whole=True), state=ArtifactState(pb.Artifact.State.Name(a.state)).value,
        properties=merged, created_ms=a.create_time_since_epoch, type_id=a.type_id, custom=custom,
        name=mask(a.name), external_id=a.external_id if a.HasField("external_id") else None,
        updated_ms=a.last_update_time_since_epoch)


def execution_record(e: pb.Execution) -> ExecutionRecord:
    merged, custom = _values(e)
    return ExecutionRecord(
        id=e.id, type=e.type, state=ExecutionState(pb.Execution.State.Name(e.last_known_state)).value,
        properties=merged, created_ms=e.create_time_since_epoch, name=mask(e.name), type_id=e.type_id,
        custom=custom, external_id=e.external_id if e.HasField("external_id") else None,
        updated_ms=e.last_update_time_since_epoch)


def context_record(c: pb.Context) -> ContextRecord:
    merged, custom = _values(c)
    return ContextRecord(
        id=c.id, type=c.type, name=mask(c.name), properties=merged, created_ms=c.create_time_since_epoch,
        type_id=c.type_id, custom=custom, external_id=c.external_id if c.HasField("external_id") else None,
        updated_ms=c.last_update_time_since_epoch)


def event_record(e: pb.Event) -> EventRecord:
    steps = tuple(s.key if s.WhichOneof("value") == "key" else s.index for s in e.path.steps)
    return EventRecord(e.artifact_id, e.execution_id, pb.Event.Type.Name(e.type), steps,
                       e.milliseconds_since_epoch)


BASE_TYPES = {Kind.ARTIFACT: pb.ArtifactType, Kind.EXECUTION: pb.ExecutionType, Kind.CONTEXT: pb.ContextType}


def type_record(kind: Kind, t) -> TypeRecord:
    base = BASE_TYPES[kind].SystemDefinedBaseType.Name(t.base_type) if t.HasField("base_type") else None
    return TypeRecord(
        id=t.id, kind=kind, name=t.name,
        properties={k: PropertyType(pb.PropertyType.Name(v)) for k, v in t.properties.items()},
        version=t.version if t.HasField("version") else None,
        description=t.description if t.HasField("description") else None,
        external_id=t.external_id if t.HasField("external_id") else None, base_type=base)


def new_artifact(a: NewArtifact) -> pb.Artifact:
    proto = pb.Artifact(type_id=a.type_id, type=a.type, uri=a.uri, state=pb.Artifact.State.Value(a.state))
    if a.name:
        proto.name = a.name
    for key, value in a.properties.items():
        set_value(proto.properties, key, value)
    for key, value in a.custom.items():
        set_value(proto.custom_properties, key, value)
    return proto


def apply(execution: pb.Execution, change: ExecutionWrite) -> pb.Execution:
    if change.name is not None and not execution.id:
        execution.name = change.name
    if change.state is not None:
        execution.last_known_state = pb.Execution.State.Value(ExecutionState(change.state).value)
    for key, value in change.properties.items():
        set_value(execution.properties, key, value)
    for key, value in change.custom.items():
        set_value(execution.custom_properties, key, value)
    return execution


def event(e: NewEvent, artifact_id: int = 0, execution_id: int = 0) -> pb.Event:
    event = pb.Event(type=pb.Event.Type.Value(e.type))
    if artifact_id or e.artifact_id:
        event.artifact_id = artifact_id or e.artifact_id
    if execution_id or e.execution_id:
        event.execution_id = execution_id or e.execution_id
    for step in e.path:
        if isinstance(step, int):
            event.path.steps.add().index = step
        else:
            event.path.steps.add().key = step
    return event


def context(c: ContextWrite) -> pb.Context:
    proto = pb.Context(type_id=c.type_id, type=c.type, name=c.name)
    for key, value in c.properties.items():
        set_value(proto.properties, key, value)
    for key, value in c.custom.items():
        set_value(proto.custom_properties, key, value)
    return proto
