"""Writing: artifacts, executions, their INPUT/OUTPUT events and experiments.

The rule that shapes this module: no output artifact is ever stored without the
OUTPUT event that says which execution made it. `finish_execution` therefore
writes the outputs, their events and the execution's new state in a single
`put_execution` call, which MLMD runs as one transaction.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, List, Mapping, Optional, Union

from ml_metadata.proto import metadata_store_pb2 as pb

from . import schema
from .errors import NotFoundError
from .records import ArtifactRecord, ExecutionRecord, PropertyValue
from .schema import ExecutionState, TypeSpec
from .store import Store

__all__ = [
    "DEFAULT_EXPERIMENT",
    "NewArtifact",
    "file_uri",
    "log_dataset",
    "new_model",
    "start_execution",
    "finish_execution",
]

DEFAULT_EXPERIMENT = "default"
PathLike = Union[str, os.PathLike]


@dataclass(frozen=True)
class NewArtifact:
    """An artifact to be recorded as an execution's output, not yet in the store.

    Its `version` property is filled in when it is recorded: the next free
    version among the artifacts already stored at the same URI.
    """

    type: TypeSpec
    uri: str
    properties: Mapping[str, PropertyValue] = field(default_factory=dict)


def file_uri(path: PathLike) -> str:
    """The absolute `file://` URI of a local path."""
    return Path(path).resolve().as_uri()


def _next_version(store: Store, uri: str) -> int:
    versions = [
        a.properties["version"].int_value
        for a in store.mlmd.get_artifacts_by_uri(uri)
        if "version" in a.properties
    ]
    return max(versions, default=0) + 1


def _artifact_proto(store: Store, new: NewArtifact, type_ids: Mapping[str, int]) -> pb.Artifact:
    artifact = pb.Artifact(
        type_id=type_ids[new.type.name], uri=new.uri, state=pb.Artifact.LIVE
    )
    properties = dict(new.properties)
    if "version" in new.type.properties:
        properties["version"] = _next_version(store, new.uri)
    for key, value in properties.items():
        # Declared properties go where every MLMD client looks for them.
        target = artifact.properties if key in new.type.properties else artifact.custom_properties
        schema.set_value(target, key, value)
    return artifact


def _event(kind: int, role: str, artifact_id: int = 0, execution_id: int = 0) -> pb.Event:
    event = pb.Event(type=kind)
    if artifact_id:
        event.artifact_id = artifact_id
    if execution_id:
        event.execution_id = execution_id
    event.path.steps.add().key = role
    return event


def _experiment(store: Store, name: str, type_ids: Mapping[str, int]) -> pb.Context:
    stored = store.mlmd.get_context_by_type_and_name(schema.EXPERIMENT.name, name)
    return stored if stored is not None else pb.Context(
        type_id=type_ids[schema.EXPERIMENT.name], name=name
    )


def log_dataset(
    store: Store, path: PathLike, *, split: str, day: Optional[int] = None
) -> ArtifactRecord:
    """Records a dataset file as a LIVE `DataSet` artifact at the next free version.

    Args:
        store: a store opened for writing.
        path: the dataset file; recorded by its absolute `file://` URI.
        split: which split this is: "train", "test", ...
        day: an optional day number, as in the MLMD guide.

    Returns:
        The stored artifact.
    """
    type_ids = schema.register_types(store.mlmd, [schema.DATASET])
    properties: dict = {"split": split}
    if day is not None:
        properties["day"] = day
    artifact = _artifact_proto(store, NewArtifact(schema.DATASET, file_uri(path), properties), type_ids)
    [artifact.id] = store.mlmd.put_artifacts([artifact])
    artifact.type = schema.DATASET.name
    return schema.artifact_record(artifact)


def new_model(path: PathLike, *, name: str) -> NewArtifact:
    """Describes a saved model file, to be recorded by `finish_execution`."""
    return NewArtifact(schema.SAVED_MODEL, file_uri(path), {"name": name})


def start_execution(
    store: Store,
    inputs: Mapping[str, ArtifactRecord],
    *,
    type: TypeSpec = schema.TRAINER,
    experiment: str = DEFAULT_EXPERIMENT,
) -> ExecutionRecord:
    """Records a new RUNNING execution and links its inputs to it.

    The execution is created in the experiment's context (the context is created
    if it is new); each input becomes an INPUT event, written with `put_events`,
    whose path step key is its role. Inputs are attributed to the experiment.

    Args:
        store: a store opened for writing.
        inputs: stored artifacts by role, e.g. {"examples": dataset}.
        type: the execution type.
        experiment: the experiment's name.

    Returns:
        The stored execution, RUNNING.

    Raises:
        NotFoundError: an input artifact is not in the store.
    """
    type_ids = schema.register_types(store.mlmd, [type, schema.EXPERIMENT])
    missing = _missing_artifacts(store, (a.id for a in inputs.values()))
    if missing:
        raise NotFoundError(f"no artifact with id {missing[0]} in {store}")
    execution = pb.Execution(type_id=type_ids[type.name])
    _set_state(execution, ExecutionState.RUNNING, mirror="state" in type.properties)
    context = _experiment(store, experiment, type_ids)
    execution.id, _, [context.id] = store.mlmd.put_execution(
        execution, [], [context], reuse_context_if_already_exist=True
    )
    if inputs:
        store.mlmd.put_events(
            [_event(pb.Event.INPUT, role, a.id, execution.id) for role, a in inputs.items()]
        )
        store.mlmd.put_attributions_and_associations(
            [pb.Attribution(artifact_id=a.id, context_id=context.id) for a in inputs.values()], []
        )
    execution.type = type.name
    return schema.execution_record(execution)


def finish_execution(
    store: Store,
    execution_id: int,
    outputs: Mapping[str, NewArtifact],
    *,
    state: ExecutionState = ExecutionState.COMPLETE,
    experiment: str = DEFAULT_EXPERIMENT,
) -> List[ArtifactRecord]:
    """Records an execution's outputs and its final state in one transaction.

    Args:
        store: a store opened for writing.
        execution_id: a stored execution.
        outputs: new artifacts by role, e.g. {"model": new_model(...)}.
        state: the final state: COMPLETE, FAILED, CANCELED.
        experiment: the experiment the outputs are attributed to.

    Returns:
        The stored output artifacts, in the order of `outputs`.

    Raises:
        NotFoundError: no execution with that id.
    """
    specs = {spec.type.name: spec.type for spec in outputs.values()}
    type_ids = schema.register_types(store.mlmd, [*specs.values(), schema.EXPERIMENT])
    found = store.mlmd.get_executions_by_id([execution_id])
    if not found:
        raise NotFoundError(f"no execution with id {execution_id} in {store}")
    # Update the stored execution itself: a proto with only the id set would
    # overwrite the execution's properties (an MLMD pitfall).
    execution = found[0]
    _set_state(execution, state, mirror="state" in execution.properties)
    artifacts = [_artifact_proto(store, new, type_ids) for new in outputs.values()]
    pairs = [(a, _event(pb.Event.OUTPUT, role)) for a, role in zip(artifacts, outputs)]
    context = _experiment(store, experiment, type_ids)
    _, artifact_ids, _ = store.mlmd.put_execution(
        execution, pairs, [context], reuse_context_if_already_exist=True
    )
    records = []
    for artifact, artifact_id, new in zip(artifacts, artifact_ids, outputs.values()):
        artifact.id, artifact.type = artifact_id, new.type.name
        records.append(schema.artifact_record(artifact))
    return records


def _set_state(execution: pb.Execution, state: ExecutionState, *, mirror: bool) -> None:
    execution.last_known_state = pb.Execution.State.Value(state.value)
    if mirror:
        # The guide's `Trainer.state` property mirrors MLMD's `last_known_state`.
        execution.properties["state"].string_value = state.value


def _missing_artifacts(store: Store, ids: Iterable[int]) -> List[int]:
    wanted = list(dict.fromkeys(ids))
    if not wanted:
        return []
    found = {a.id for a in store.mlmd.get_artifacts_by_id(wanted)}
    return [i for i in wanted if i not in found]
