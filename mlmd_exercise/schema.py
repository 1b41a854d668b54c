"""The type system, declared once as data, and the proto <-> plain value mapping.

Types follow the MLMD getting-started guide: ArtifactTypes `DataSet` and
`SavedModel`, ExecutionType `Trainer`, and a context type `Experiment` that
groups runs. `register_types` puts them in a store idempotently.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Dict, Iterable, Mapping, MutableMapping, Optional, Tuple

from ml_metadata.proto import metadata_store_pb2 as pb

from .errors import MlmdExerciseError, SchemaError
from .records import ArtifactRecord, ArtifactState, ExecutionRecord, ExecutionState, PropertyValue

__all__ = [
    "Kind",
    "PropertyType",
    "ExecutionState",
    "ArtifactState",
    "TypeSpec",
    "DATASET",
    "SAVED_MODEL",
    "TRAINER",
    "EXPERIMENT",
    "EVALUATOR",
    "METRICS",
    "ALL_TYPES",
    "spec_for",
    "register_types",
]


class Kind(enum.Enum):
    ARTIFACT = "artifact"
    EXECUTION = "execution"
    CONTEXT = "context"


class PropertyType(enum.Enum):
    STRING = pb.STRING
    INT = pb.INT
    DOUBLE = pb.DOUBLE




@dataclass(frozen=True)
class TypeSpec:
    """One MLMD type: its kind, name and declared (typed) properties."""

    kind: Kind
    name: str
    properties: Mapping[str, PropertyType]


S, I, D = PropertyType.STRING, PropertyType.INT, PropertyType.DOUBLE
DATASET = TypeSpec(Kind.ARTIFACT, "DataSet", {"split": S, "version": I, "day": I})
SAVED_MODEL = TypeSpec(Kind.ARTIFACT, "SavedModel", {"name": S, "version": I})
METRICS = TypeSpec(Kind.ARTIFACT, "Metrics", {"accuracy": D, "version": I})
TRAINER = TypeSpec(Kind.EXECUTION, "Trainer", {"state": S})
EVALUATOR = TypeSpec(Kind.EXECUTION, "Evaluator", {"state": S})
EXPERIMENT = TypeSpec(Kind.CONTEXT, "Experiment", {"note": S})
ALL_TYPES: Tuple[TypeSpec, ...] = (DATASET, SAVED_MODEL, METRICS, TRAINER, EVALUATOR, EXPERIMENT)
del S, I, D


def spec_for(kind: Kind, name: str) -> TypeSpec:
    """The declared type of this kind and name, or a new type with no properties.

    Users may record steps and files of their own types ("Preprocessor", "Plot").
    An artifact type of their own declares `version`, as ours do, since every
    artifact is versioned by content.
    """
    for spec in ALL_TYPES:
        if spec.kind is kind and spec.name == name:
            return spec
    if not name.strip():
        raise SchemaError(f"a type name must not be empty, not '{name}'")
    return TypeSpec(kind, name, {"version": PropertyType.INT} if kind is Kind.ARTIFACT else {})

_PROTO_CLASS = {
    Kind.ARTIFACT: pb.ArtifactType,
    Kind.EXECUTION: pb.ExecutionType,
    Kind.CONTEXT: pb.ContextType,
}
_TYPE_NAMES = {v: k for k, v in pb.PropertyType.items()}


def _stored_types(store, kind: Kind) -> Dict[str, object]:
    getter = {
        Kind.ARTIFACT: store.get_artifact_types,
        Kind.EXECUTION: store.get_execution_types,
        Kind.CONTEXT: store.get_context_types,
    }[kind]
    by_name: Dict[str, object] = {}
    for t in getter():
        if t.name in by_name:
            # MLMD has no unique constraint on type names; concurrent registration
            # by other tools can leave two rows, and queries by name then miss runs.
            raise SchemaError(
                f"{kind.value} type '{t.name}' is registered twice in the store "
                f"(type ids {by_name[t.name].id} and {t.id}): queries by type name would miss nodes"
            )
        by_name[t.name] = t
    return by_name


def _put_type(store, spec: TypeSpec) -> int:
    proto = _PROTO_CLASS[spec.kind](name=spec.name)
    for key, ptype in spec.properties.items():
        proto.properties[key] = ptype.value
    put = {
        Kind.ARTIFACT: store.put_artifact_type,
        Kind.EXECUTION: store.put_execution_type,
        Kind.CONTEXT: store.put_context_type,
    }[spec.kind]
    # Adding our fields to a type another tool registered, or keeping fields it
    # added to ours, is compatible; a property whose type differs was refused above.
    return put(proto, can_add_fields=True, can_omit_fields=True)


def register_types(store, specs: Iterable[TypeSpec] = ALL_TYPES) -> Dict[str, int]:
    """Registers types idempotently and returns their ids by name.

    A type already stored with the same properties is not written again, so
    registering on an up-to-date store is read-only.

    Args:
        store: an open `ml_metadata` MetadataStore.
        specs: the types to register.

    Returns:
        The type id of each spec, by type name.

    Raises:
        SchemaError: a stored type has a property of another type than declared.
    """
    specs = list(specs)
    stored_by_kind = {kind: _stored_types(store, kind) for kind in {s.kind for s in specs}}
    todo = []
    ids: Dict[str, int] = {}
    # Every conflict is found before anything is written: a refused store is unchanged.
    for spec in specs:
        stored = stored_by_kind[spec.kind].get(spec.name)
        if stored is None:
            todo.append(spec)
            continue
        for key, ptype in spec.properties.items():
            have = stored.properties.get(key)
            if have is not None and have != ptype.value:
                raise SchemaError(
                    f"type '{spec.name}' in the store has property '{key}' of type "
                    f"{_TYPE_NAMES.get(have, have)}, but mlmd_exercise declares it "
                    f"{ptype.name}"
                )
        if all(key in stored.properties for key in spec.properties):
            ids[spec.name] = stored.id
        else:
            todo.append(spec)
    for spec in todo:
        ids[spec.name] = _put_type(store, spec)
    return ids


# -- proto <-> plain values ----------------------------------------------------


def get_value(value: pb.Value) -> PropertyValue:
    """The Python value held by an MLMD `Value`."""
    which = value.WhichOneof("value")
    if which == "int_value":
        return value.int_value
    if which == "double_value":
        return value.double_value
    if which == "bool_value":
        return value.bool_value
    if which == "string_value":
        return value.string_value
    return str(getattr(value, which)) if which else ""


# MLMD's PostgreSQL and MySQL tables keep integer properties in 32 bits (SQLite's in 64):
# a larger whole number is stored as a double, exact up to 2**53, so that it fits everywhere.
_INT32 = range(-2 ** 31, 2 ** 31)
_EXACT_DOUBLE = 2 ** 53


def set_value(target: MutableMapping[str, pb.Value], key: str, value: PropertyValue) -> None:
    """Stores `value` under `key`, keeping its MLMD type (bool before int: bool is an int).

    A whole number outside 32 bits (a time in ms, say) is stored as a double, as every MLMD
    database can hold it; beyond 2**53, where a double is no longer exact, as a string.
    """
    if isinstance(value, bool):
        target[key].bool_value = value
    elif isinstance(value, int):
        if value in _INT32:
            target[key].int_value = value
        elif abs(value) <= _EXACT_DOUBLE:
            target[key].double_value = float(value)
        else:
            target[key].string_value = str(value)
    elif isinstance(value, float):
        target[key].double_value = value
    elif isinstance(value, str):
        target[key].string_value = value
    else:
        raise MlmdExerciseError(f"property '{key}' has a value of a type MLMD cannot store: {value!r} "
                                "(use a string, a whole number, a decimal number or true/false)")


def set_execution_state(execution: pb.Execution, state: ExecutionState) -> None:
    """Sets MLMD's `last_known_state` and, as the guide's `Trainer.state` does, its mirror."""
    execution.last_known_state = pb.Execution.State.Value(state.value)
    if "state" in spec_for(Kind.EXECUTION, execution.type).properties:
        execution.properties["state"].string_value = state.value


def set_property(node, spec: TypeSpec, key: str, value: PropertyValue) -> None:
    """Sets a value where every MLMD client looks for it: a property the type declares
    under `properties`, any other under `custom_properties`."""
    set_value(node.properties if key in spec.properties else node.custom_properties, key, value)


def new_artifact(spec: TypeSpec, type_id: int, uri: str,
                 values: Mapping[str, PropertyValue]) -> pb.Artifact:
    """A LIVE artifact proto, not stored yet; declared properties go where every MLMD
    client looks for them, the others into custom properties."""
    artifact = pb.Artifact(type_id=type_id, uri=uri, state=pb.Artifact.LIVE, type=spec.name)
    for key, value in values.items():
        set_property(artifact, spec, key, value)
    return artifact


def newest(artifacts: Iterable[pb.Artifact]) -> Optional[pb.Artifact]:
    """The highest `version` among artifacts (of one URI and type); the newest id breaks ties."""
    return max(artifacts, key=lambda a: (a.properties["version"].int_value, a.id), default=None)


def _properties(node) -> Dict[str, PropertyValue]:
    props = {k: get_value(v) for k, v in node.custom_properties.items()}
    props.update((k, get_value(v)) for k, v in node.properties.items())
    return props


def artifact_record(artifact: pb.Artifact) -> ArtifactRecord:
    return ArtifactRecord(
        id=artifact.id,
        type=artifact.type,
        uri=artifact.uri,
        state=pb.Artifact.State.Name(artifact.state),
        properties=_properties(artifact),
        created_ms=artifact.create_time_since_epoch,
    )


def execution_record(execution: pb.Execution) -> ExecutionRecord:
    return ExecutionRecord(
        id=execution.id,
        type=execution.type,
        state=pb.Execution.State.Name(execution.last_known_state),
        properties=_properties(execution),
        created_ms=execution.create_time_since_epoch,
    )
