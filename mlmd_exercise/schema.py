"""The type system, declared once as data, and the values MLMD can store.

Types follow the MLMD getting-started guide: ArtifactTypes `DataSet` and
`SavedModel`, ExecutionType `Trainer`, and a context type `Experiment` that
groups runs. `register_types` puts them in a store idempotently.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Iterable, Mapping, Optional, Tuple

from mlmd_exercise.errors import MlmdExerciseError, SchemaError
from mlmd_exercise.records import ArtifactRecord, ArtifactState, ExecutionState, Kind, PropertyType, PropertyValue, TypeRecord
from mlmd_exercise.store.backend import NewArtifact

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
    "is_ours",
    "storable",
    "version_of",
]


@dataclass(frozen=True)
class TypeSpec:
    """One MLMD type: its kind, name and declared (typed) properties.

    `foreign` marks a type of that name that another program registered with other
    properties: it is left as it is, and every value goes into custom properties.
    """

    kind: Kind
    name: str
    properties: Mapping[str, PropertyType]
    foreign: bool = False


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

def is_ours(stored: TypeRecord, spec: TypeSpec) -> bool:
    """Whether a stored type can be the one `spec` declares (perhaps by an older version of
    this package, with fewer fields): its properties are some of ours, of our types, and it
    has our `version` counter if we declare one. The guide's `SavedModel` and `Trainer` are;
    its `DataSet` (no `version`), TFX's `Examples` and Kubeflow's `system.Model` are not."""
    for key, have in stored.properties.items():
        if spec.properties.get(key) != have:
            return False
    return "version" not in spec.properties or "version" in stored.properties


# MLMD's PostgreSQL and MySQL tables keep integer properties in 32 bits (SQLite's in 64):
# a larger whole number is stored as a double, exact up to 2**53, so that it fits everywhere.
_INT32 = range(-2 ** 31, 2 ** 31)
_EXACT_DOUBLE = 2 ** 53


def storable(key: str, value: PropertyValue) -> PropertyValue:
    """`value` as every MLMD database can hold it, keeping its kind (bool before int: a bool
    is an int). A whole number outside 32 bits (a time in ms, say) becomes a double; beyond
    2**53, where a double is no longer exact, a string.

    Raises:
        MlmdExerciseError: a value of a type MLMD cannot store, naming its key.
    """
    if isinstance(value, bool) or isinstance(value, (float, str)):
        return value
    if isinstance(value, int):
        if value in _INT32:
            return value
        return float(value) if abs(value) <= _EXACT_DOUBLE else str(value)
    raise MlmdExerciseError(f"property '{key}' has a value of a type MLMD cannot store: {value!r} "
                            "(use a string, a whole number, a decimal number or true/false)")


def split_values(spec: TypeSpec, values: Mapping[str, PropertyValue]
                 ) -> Tuple[Dict[str, PropertyValue], Dict[str, PropertyValue]]:
    """(declared, custom): a property the type declares goes where every MLMD client looks
    for it, under `properties`; any other under `custom_properties`."""
    declared: Dict[str, PropertyValue] = {}
    custom: Dict[str, PropertyValue] = {}
    for key, value in values.items():
        (declared if key in spec.properties else custom)[key] = storable(key, value)
    return declared, custom


def version_of(artifact: ArtifactRecord, spec: Optional[TypeSpec] = None) -> int:
    """Our version counter of an artifact: the declared `version` of a type of ours, else
    the custom one (never another program's declared `version`, such as TFX's data version)."""
    if spec is None or "version" in spec.properties:
        value = artifact.properties.get("version")
    else:
        value = artifact.custom.get("version")
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def newest(artifacts: Iterable[ArtifactRecord], spec: Optional[TypeSpec] = None) -> Optional[ArtifactRecord]:
    """The highest `version` among artifacts (of one URI and type); the newest id breaks ties."""
    return max(artifacts, key=lambda a: (version_of(a, spec), a.id), default=None)


def new_artifact(spec: TypeSpec, type_id: int, uri: str, values: Mapping[str, PropertyValue]) -> NewArtifact:
    """A LIVE artifact to store; declared properties go where every MLMD client looks for
    them, the others into custom properties."""
    declared, custom = split_values(spec, values)
    return NewArtifact(type_id, spec.name, uri, declared, custom)


def state_mirror(declared: Iterable[str], state: ExecutionState) -> Dict[str, PropertyValue]:
    """The guide's `Trainer.state` property, which mirrors MLMD's `last_known_state`, where
    the type declares it (`declared`: the names of its declared properties)."""
    return {"state": ExecutionState(state).value} if "state" in declared else {}
