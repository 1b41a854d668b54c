"""Plain values that the public API returns instead of MLMD protos.

`tracking` and `lineage` build these from the store; `render` and the CLI only
ever see these. They are frozen so that a record can be shared safely.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

__all__ = [
    "Kind",
    "PropertyType",
    "ExecutionState",
    "ArtifactState",
    "EVENT_TYPES",
    "type_version",
    "TypeRecord",
    "ContextRecord",
    "EventRecord",
    "PropertyValue",
    "STARTED_MS",
    "ENDED_MS",
    "CREATED_MS",
    "METRIC_NAMES",
    "RUN_NAME",
    "TAG_PREFIX",
    "MLFLOW_PREFIX",
    "OPENLINEAGE_PREFIX",
    "IMPORTED_PREFIXES",
    "DIRECTIONS",
    "DEFAULT_EXPERIMENT",
    "INPUT_EVENTS",
    "OUTPUT_EVENTS",
    "LEADS_ON",
    "edge_of",
    "ArtifactRecord",
    "ExecutionRecord",
    "LineageEdge",
    "ExecutionLineage",
    "LineageGraph",
]

# A struct property reads as a JSON object, a proto one as its JSON form (see schema.get_value).
PropertyValue = Union[str, int, float, bool, Dict[str, Any], List[Any]]
# Custom properties that hold a node's original times, in ms since the epoch, where it was
# imported from elsewhere (MLMD sets its own create time when a node is written).
STARTED_MS, ENDED_MS, CREATED_MS = "started_ms", "ended_ms", "created_ms"
# The custom property naming the metrics a run logged (comma-separated), so that readers tell
# its metrics from its params even when it outputs no model or Metrics artifact.
METRIC_NAMES = "metric_names"
# A run's own name, the label a person gave it (`execution(name=...)`): MLMD's execution name
# stays a unique key, so that running a script again with the same name records a new run.
RUN_NAME = "run.name"
# A run's tags (`tags={...}`, `Run.tag`): custom properties "tag.<key>", text values.
TAG_PREFIX = "tag."
ORIGIN = "mlmd_exercise_origin"  # custom property: where an imported node came from (see bundle.py)
# Custom properties that an import from MLflow keeps of MLflow's own bookkeeping (a model's id,
# URI, registered version and aliases; a run's artifact URI and parent): neither params nor
# metrics, as STATUS_KEYS are not.
MLFLOW_PREFIX = "mlflow."
# The same for what an import of OpenLineage events keeps (a run's job, a dataset's name there).
OPENLINEAGE_PREFIX = "openlineage."
IMPORTED_PREFIXES = (MLFLOW_PREFIX, OPENLINEAGE_PREFIX)  # another tool's bookkeeping, by its keys' prefix
# How a run ended and where its record came from (an import's origin), not what it was given:
# neither params nor metrics, so that a run and its imported twin compare equal.
STATUS_KEYS = ("state", "error_type", "error_message", "abandoned", STARTED_MS, ENDED_MS, METRIC_NAMES, ORIGIN,
               RUN_NAME)


def _ms(properties: Mapping[str, PropertyValue], key: str) -> Optional[int]:
    """An original time in ms, if the node holds one (a double: ms since the epoch do not
    fit MLMD's 32-bit int properties)."""
    value = properties.get(key)
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _original(properties: Mapping[str, PropertyValue], key: str, recorded: int) -> int:
    found = _ms(properties, key)
    return recorded if found is None else found


DIRECTIONS = ("upstream", "downstream", "both")  # of a lineage walk
# The experiment (context) a run belongs to when it names none: the Tracker's, `run`'s and
# `import`'s default, here so that the CLI's help reads it without importing the Tracker.
DEFAULT_EXPERIMENT = "default"
# The datasets the demo job can train on besides the exercise's own ten rows (scikit-learn's
# bundled ones): here, so that the CLI offers them without loading the demo job.
BUNDLED_DATASETS = ("iris", "wine", "breast_cancer", "digits")
# MLMD's event types that lead into an execution and out of it, as get_lineage_subgraph reads them.
INPUT_EVENTS = ("INPUT", "DECLARED_INPUT", "INTERNAL_INPUT")
OUTPUT_EVENTS = ("OUTPUT", "DECLARED_OUTPUT", "INTERNAL_OUTPUT", "PENDING_OUTPUT")
# Which events lead on from a node in one direction of a walk, (from an artifact, from an
# execution): walking upstream, an artifact leads to the execution that output it, and an
# execution to its inputs.
LEADS_ON = {"upstream": (OUTPUT_EVENTS, INPUT_EVENTS), "downstream": (INPUT_EVENTS, OUTPUT_EVENTS)}


class Kind(enum.Enum):
    """The three kinds of MLMD node (and of type)."""

    ARTIFACT = "artifact"
    EXECUTION = "execution"
    CONTEXT = "context"


class PropertyType(enum.Enum):
    """The type of a property a type declares, by MLMD's name for it."""

    UNKNOWN = "UNKNOWN"
    INT = "INT"
    DOUBLE = "DOUBLE"
    STRING = "STRING"
    STRUCT = "STRUCT"
    PROTO = "PROTO"
    BOOLEAN = "BOOLEAN"


class _Named(str, enum.Enum):
    def __str__(self) -> str:  # "COMPLETE", in messages and f-strings, on every Python
        return self.value


class ExecutionState(_Named):
    """MLMD's `Execution.last_known_state`, which every MLMD tool reads, in the proto's
    order: a state's position is its number in MLMD's tables."""

    UNKNOWN = "UNKNOWN"
    NEW = "NEW"
    RUNNING = "RUNNING"
    COMPLETE = "COMPLETE"
    FAILED = "FAILED"
    CACHED = "CACHED"
    CANCELED = "CANCELED"


class ArtifactState(_Named):
    """MLMD's `Artifact.state`, in the proto's order."""

    UNKNOWN = "UNKNOWN"
    PENDING = "PENDING"
    LIVE = "LIVE"
    MARKED_FOR_DELETION = "MARKED_FOR_DELETION"
    DELETED = "DELETED"
    ABANDONED = "ABANDONED"
    REFERENCE = "REFERENCE"


# MLMD's Event.Type names, in the proto's order: a name's position is its number in MLMD's tables.
EVENT_TYPES = ("UNKNOWN", "DECLARED_OUTPUT", "DECLARED_INPUT", "INPUT", "OUTPUT", "INTERNAL_INPUT",
               "INTERNAL_OUTPUT", "PENDING_OUTPUT")


@dataclass(frozen=True)
class TypeRecord:
    """One type as stored: its id, kind, name and declared properties."""

    id: int
    kind: Kind
    name: str
    properties: Mapping[str, PropertyType] = field(default_factory=dict)
    version: Optional[str] = None
    description: Optional[str] = None
    external_id: Optional[str] = None
    base_type: Optional[str] = None  # MLMD's SystemDefinedBaseType name, e.g. "DATASET"


@dataclass(frozen=True)
class ContextRecord:
    """One context: an experiment of ours, a TFX pipeline run, a Kubeflow run, ..."""

    id: int
    type: str
    name: str
    properties: Mapping[str, PropertyValue] = field(default_factory=dict)  # declared and custom
    created_ms: int = 0
    type_id: int = 0
    custom: Mapping[str, PropertyValue] = field(default_factory=dict, repr=False)  # the custom ones alone
    external_id: Optional[str] = None
    updated_ms: int = 0


@dataclass(frozen=True)
class EventRecord:
    """One MLMD event as stored, with its whole path."""

    artifact_id: int
    execution_id: int
    type: str  # one of EVENT_TYPES
    path: Tuple[Union[str, int], ...] = ()  # steps: a key (str) or an index (int)
    ms: int = 0  # milliseconds_since_epoch

    @property
    def role(self) -> str:
        """The event's role: its path's first step (a key, or an index as text)."""
        return str(self.path[0]) if self.path else ""


def type_version(type_name: str, version: Optional[int]) -> str:
    """"SavedModel v2": a type, and the version where there is one (`ArtifactRecord.type_version`)."""
    return type_name if version is None else f"{type_name} v{version}"


@dataclass(frozen=True)
class ArtifactRecord:
    """One artifact: a dataset, a model, any file a workflow consumed or produced."""

    id: int
    type: str
    uri: str
    state: str  # an ArtifactState
    properties: Mapping[str, PropertyValue] = field(default_factory=dict)  # declared and custom
    created_ms: int = 0  # MLMD's create_time_since_epoch, in milliseconds
    type_id: int = 0
    custom: Mapping[str, PropertyValue] = field(default_factory=dict, repr=False)  # the custom ones alone
    name: str = ""
    external_id: Optional[str] = None
    updated_ms: int = 0  # MLMD's last_update_time_since_epoch

    @property
    def when_ms(self) -> int:
        """When it was made: its original time if it was imported with one, else `created_ms`."""
        return _original(self.properties, CREATED_MS, self.created_ms)

    @property
    def version(self) -> int | None:
        value = self.properties.get("version")
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    @property
    def type_version(self) -> str:
        """"SavedModel v2": the type, and the version where the artifact has one."""
        return type_version(self.type, self.version)

    @property
    def label(self) -> str:
        """A short human name: a name property (`display_name`, `name`), else the URI's end."""
        from mlmd_exercise.labels import artifact_name

        return artifact_name(self.properties, self.uri)

    def _repr_html_(self) -> str:  # Jupyter's display hook (notebook.py draws it)
        from mlmd_exercise import notebook

        return notebook.html(self)


@dataclass(frozen=True)
class ExecutionRecord:
    """One run of a step (a Trainer, say), with its MLMD `last_known_state`."""

    id: int
    type: str
    state: str  # an ExecutionState
    properties: Mapping[str, PropertyValue] = field(default_factory=dict)  # declared and custom
    created_ms: int = 0
    name: str = ""  # MLMD's execution name: the run's name (a UUID unless one was given)
    type_id: int = 0
    custom: Mapping[str, PropertyValue] = field(default_factory=dict, repr=False)  # the custom ones alone
    external_id: Optional[str] = None
    updated_ms: int = 0  # MLMD's last_update_time_since_epoch

    @property
    def when_ms(self) -> int:
        """When it started: its original time if it was imported with one, else `created_ms`."""
        return _original(self.properties, STARTED_MS, self.created_ms)

    @property
    def label(self) -> Optional[str]:
        """The run's own name: the one it was given (`execution(name=...)`), else MLMD's name
        unless that is the UUID a run gets when it is given none (`import`'s names, a store
        another program wrote); None for a run with no name of its own."""
        from mlmd_exercise.labels import run_name

        given = self.properties.get(RUN_NAME)
        return given if isinstance(given, str) and given else run_name(self.name)

    @property
    def tags(self) -> Dict[str, str]:
        """The run's tags, by key."""
        return {k[len(TAG_PREFIX):]: str(v) for k, v in sorted(self.properties.items())
                if k.startswith(TAG_PREFIX) and v is not None}

    @property
    def ended_ms(self) -> Optional[int]:
        """When it ended, where it was imported with that time (MLMD keeps no end time)."""
        return _ms(self.properties, ENDED_MS)

    def _repr_html_(self) -> str:  # Jupyter's display hook (notebook.py draws it)
        from mlmd_exercise import notebook

        return notebook.html(self)


@dataclass(frozen=True)
class LineageEdge:
    """One MLMD event: `artifact_id` was an input to, or an output of, `execution_id`."""

    artifact_id: int
    execution_id: int
    kind: str  # "INPUT" or "OUTPUT": which way the event leads
    role: str = ""  # the event's path step key: "examples", "model", ...
    event: str = ""  # MLMD's event type where it is not plain `kind`: "DECLARED_INPUT", ...


def edge_of(event: EventRecord) -> LineageEdge:
    """An event that leads into or out of an execution (one of INPUT_EVENTS or OUTPUT_EVENTS)
    as an edge."""
    kind = "INPUT" if event.type in INPUT_EVENTS else "OUTPUT"
    return LineageEdge(artifact_id=event.artifact_id, execution_id=event.execution_id, kind=kind,
                       role=event.role, event="" if event.type == kind else event.type)


@dataclass(frozen=True)
class ExecutionLineage:
    """One hop of lineage: an execution with the artifacts it read and wrote."""

    execution: ExecutionRecord
    inputs: Tuple[Tuple[str, ArtifactRecord], ...]  # (role, artifact)
    outputs: Tuple[Tuple[str, ArtifactRecord], ...]
    events: Tuple["LineageEdge", ...] = ()  # the events themselves, with their MLMD types
    # A CACHED execution (a step TFX or Kubeflow did not run again): (artifact id, the
    # execution that made it) for each output it re-published.
    reused: Tuple[Tuple[int, int], ...] = ()

    def _repr_html_(self) -> str:  # Jupyter's display hook (notebook.py draws it)
        from mlmd_exercise import notebook

        return notebook.html(self)


@dataclass(frozen=True)
class LineageGraph:
    """Artifacts and executions joined by their events; what `render` draws."""

    artifacts: Dict[int, ArtifactRecord]
    executions: Dict[int, ExecutionRecord]
    edges: Tuple[LineageEdge, ...]
    # Context name -> ids of its executions in this graph; filled on request.
    experiments: Mapping[str, Tuple[int, ...]] = field(default_factory=dict)
    grouping: str = "experiment"  # the type of those contexts, as the boxes are labelled
    # A drawn execution that stands for several alike (see `collapse`) -> the ids it stands for;
    # the same for the artifacts those executions made.
    collapsed: Mapping[int, Tuple[int, ...]] = field(default_factory=dict)
    collapsed_artifacts: Mapping[int, Tuple[int, ...]] = field(default_factory=dict)
    # A drawn execution that stands for several -> the params that differ among them, with ranges.
    collapsed_differ: Mapping[int, Tuple[str, ...]] = field(default_factory=dict)

    def _repr_html_(self) -> str:  # Jupyter's display hook (notebook.py draws it)
        from mlmd_exercise import notebook

        return notebook.html(self)
