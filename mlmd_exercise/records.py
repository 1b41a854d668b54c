"""Plain values that the public API returns instead of MLMD protos.

`tracking` and `lineage` build these from the store; `render` and the CLI only
ever see these. They are frozen so that a record can be shared safely.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

__all__ = [
    "ExecutionState",
    "ArtifactState",
    "PropertyValue",
    "STARTED_MS",
    "ENDED_MS",
    "CREATED_MS",
    "METRIC_NAMES",
    "DIRECTIONS",
    "INPUT_EVENTS",
    "OUTPUT_EVENTS",
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


def _ms(properties: Mapping[str, PropertyValue], key: str) -> Optional[int]:
    """An original time in ms, if the node holds one (a double: ms since the epoch do not
    fit MLMD's 32-bit int properties)."""
    value = properties.get(key)
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _original(properties: Mapping[str, PropertyValue], key: str, recorded: int) -> int:
    found = _ms(properties, key)
    return recorded if found is None else found


DIRECTIONS = ("upstream", "downstream", "both")  # of a lineage walk
# MLMD's event types that lead into an execution and out of it, as get_lineage_subgraph reads them.
INPUT_EVENTS = ("INPUT", "DECLARED_INPUT", "INTERNAL_INPUT")
OUTPUT_EVENTS = ("OUTPUT", "DECLARED_OUTPUT", "INTERNAL_OUTPUT", "PENDING_OUTPUT")


class ExecutionState(str, enum.Enum):
    """MLMD's `Execution.last_known_state`, which every MLMD tool reads, in the proto's
    order: a state's position is its number in MLMD's tables."""

    UNKNOWN = "UNKNOWN"
    NEW = "NEW"
    RUNNING = "RUNNING"
    COMPLETE = "COMPLETE"
    FAILED = "FAILED"
    CACHED = "CACHED"
    CANCELED = "CANCELED"


class ArtifactState(str, enum.Enum):
    UNKNOWN = "UNKNOWN"
    PENDING = "PENDING"
    LIVE = "LIVE"
    MARKED_FOR_DELETION = "MARKED_FOR_DELETION"
    DELETED = "DELETED"
    ABANDONED = "ABANDONED"
    REFERENCE = "REFERENCE"



@dataclass(frozen=True)
class ArtifactRecord:
    """One artifact: a dataset, a model, any file a workflow consumed or produced."""

    id: int
    type: str
    uri: str
    state: str
    properties: Mapping[str, PropertyValue] = field(default_factory=dict)
    created_ms: int = 0  # MLMD's create_time_since_epoch, in milliseconds

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
        return self.type if self.version is None else f"{self.type} v{self.version}"

    @property
    def label(self) -> str:
        """A short human name: a name property (`display_name`, `name`), else the URI's end."""
        from .labels import artifact_name

        return artifact_name(self.properties, self.uri)


@dataclass(frozen=True)
class ExecutionRecord:
    """One run of a step (a Trainer, say), with its MLMD `last_known_state`."""

    id: int
    type: str
    state: str
    properties: Mapping[str, PropertyValue] = field(default_factory=dict)
    created_ms: int = 0
    name: str = ""  # MLMD's execution name: the run's name (a UUID unless one was given)

    @property
    def when_ms(self) -> int:
        """When it started: its original time if it was imported with one, else `created_ms`."""
        return _original(self.properties, STARTED_MS, self.created_ms)

    @property
    def ended_ms(self) -> Optional[int]:
        """When it ended, where it was imported with that time (MLMD keeps no end time)."""
        return _ms(self.properties, ENDED_MS)


@dataclass(frozen=True)
class LineageEdge:
    """One MLMD event: `artifact_id` was an input to, or an output of, `execution_id`."""

    artifact_id: int
    execution_id: int
    kind: str  # "INPUT" or "OUTPUT": which way the event leads
    role: str = ""  # the event's path step key: "examples", "model", ...
    event: str = ""  # MLMD's event type where it is not plain `kind`: "DECLARED_INPUT", ...


@dataclass(frozen=True)
class ExecutionLineage:
    """One hop of lineage: an execution with the artifacts it read and wrote."""

    execution: ExecutionRecord
    inputs: Tuple[Tuple[str, ArtifactRecord], ...]  # (role, artifact)
    outputs: Tuple[Tuple[str, ArtifactRecord], ...]
    events: Tuple["LineageEdge", ...] = ()  # the events themselves, with their MLMD types


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
