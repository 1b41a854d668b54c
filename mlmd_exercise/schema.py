"""The type system, declared once as data, and the values MLMD can store.

Types follow the MLMD getting-started guide: ArtifactTypes `DataSet` and
`SavedModel`, ExecutionType `Trainer`, and a context type `Experiment` that
groups runs. `register_types` puts them in a store idempotently.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Iterable, Mapping, Optional, Tuple

from mlmd_exercise import values
from mlmd_exercise.errors import MlmdExerciseError, SchemaError
from mlmd_exercise.records import ArtifactRecord, ExecutionState, Kind, PropertyType, PropertyValue, TypeRecord

__all__ = [
    "TypeSpec",
    "DATASET",
    "SAVED_MODEL",
    "TRAINER",
    "EXPERIMENT",
    "EVALUATOR",
    "METRICS",
    "ALL_TYPES",
    "METRIC_HISTORY",
    "spec_for",
    "is_ours",
    "storable",
    "split_values",
    "declared_value",
    "version_of",
    "newest",
    "state_mirror",
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
# A run's metric history (history.py), registered when a run first logs a metric.
METRIC_HISTORY = TypeSpec(Kind.CONTEXT, "MetricHistory", {"execution_id": I, "key": S, "chunk": I})
del S, I, D


def spec_for(kind: Kind, name: str) -> TypeSpec:
    """The declared type of this kind and name, or a new type with no properties.

    Users may record steps and files of their own types ("Preprocessor", "Plot").
    An artifact type of their own declares `version`, as ours do, since every
    artifact is versioned by content.
    """
    for spec in ALL_TYPES + (METRIC_HISTORY,):
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


def storable(key: str, value: PropertyValue) -> PropertyValue:
    """`value` as every MLMD database can hold it: see `values.normalize` (the package's one
    table of value rules).

    Raises:
        MlmdExerciseError: a value no MLMD store can hold, naming its key.
    """
    return values.storable(key, value)


def split_values(spec: TypeSpec, given: Mapping[str, PropertyValue]
                 ) -> Tuple[Dict[str, PropertyValue], Dict[str, PropertyValue]]:
    """(declared, custom): a property the type declares goes where every MLMD client looks
    for it, under `properties`; any other under `custom_properties`."""
    declared: Dict[str, PropertyValue] = {}
    custom: Dict[str, PropertyValue] = {}
    for key, original in given.items():
        value = values.storable(key, original)
        declared_as = spec.properties.get(key)
        if declared_as is None:
            custom[key] = value
        elif declared_as is PropertyType.DOUBLE and isinstance(value, float) and not values.exact_double(value):
            custom[key] = value  # NaN or an infinity is a proto value, which MLMD refuses for a DOUBLE
        elif type(value) is _EXACT.get(declared_as):  # what `declared_value` keeps as it is, at once
            declared[key] = value
        else:
            declared[key] = declared_value(spec, key, value, original)
    return declared, custom


_EXACT = {PropertyType.INT: int, PropertyType.DOUBLE: float, PropertyType.STRING: str, PropertyType.BOOLEAN: bool,
          PropertyType.STRUCT: dict}
_KINDS = {PropertyType.INT: (int,), PropertyType.DOUBLE: (float,), PropertyType.STRING: (str,),
          PropertyType.BOOLEAN: (bool,), PropertyType.STRUCT: (dict,)}


def declared_value(spec: TypeSpec, key: str, value: PropertyValue, original: object = None) -> PropertyValue:
    """A stored-form value of a property `spec` declares, as MLMD takes it for that type
    (a whole number for a DOUBLE becomes a float).

    Raises:
        MlmdExerciseError: the value is of another kind than the type declares.
    """
    declared = spec.properties[key]
    if declared is PropertyType.DOUBLE and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    kinds = _KINDS.get(declared, ())
    if isinstance(value, kinds) and (declared is PropertyType.BOOLEAN or not isinstance(value, bool)):
        return value
    raise MlmdExerciseError(f"property '{key}' = {values.shown(value if original is None else original)}: type '{spec.name}' declares it "
                            f"{declared.value}, not {_kind_name(value)}")


def _kind_name(value: PropertyValue) -> str:
    for declared, kinds in _KINDS.items():
        if isinstance(value, kinds) and (declared is PropertyType.BOOLEAN) == isinstance(value, bool):
            return declared.value
    return type(value).__name__


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


def state_mirror(declared: Iterable[str], state: ExecutionState) -> Dict[str, PropertyValue]:
    """The guide's `Trainer.state` property, which mirrors MLMD's `last_known_state`, where
    the type declares it (`declared`: the names of its declared properties)."""
    return {"state": ExecutionState(state).value} if "state" in declared else {}
