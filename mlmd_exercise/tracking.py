"""Writing: artifacts, executions, their INPUT/OUTPUT events and experiments.

    tracker = Tracker("metadata.db")
    train = tracker.log_dataset("data/train.csv", split="train")
    with tracker.execution("Trainer", inputs={"examples": train}, params={"C": 1.0}) as run:
        ...
        run.log_metrics({"train_accuracy": 0.93})
        run.log_model("models/m.joblib", name="LogisticRegressionModel")

Two rules shape this module. No output artifact is ever stored without the
OUTPUT event that says which execution made it: a run's outputs, their events
and its final state go in one `put_execution` call, one transaction. And an
artifact is versioned by content: logging the same bytes at the same URI again
returns the stored artifact; new bytes at that URI are the next version.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import TracebackType
from typing import Dict, Mapping, Optional, Tuple, Type, Union

from ml_metadata.proto import metadata_store_pb2 as pb

from . import schema
from .content import FINGERPRINT, fingerprint
from .errors import MlmdExerciseError, NotFoundError
from .records import ArtifactRecord, ExecutionRecord, PropertyValue
from .schema import ExecutionState, Kind, TypeSpec
from .store import DEFAULT_STORE, Store, open_store

__all__ = ["DEFAULT_EXPERIMENT", "Tracker", "Run", "file_uri"]

DEFAULT_EXPERIMENT = "default"
PathLike = Union[str, os.PathLike]
Properties = Mapping[str, PropertyValue]


def file_uri(path: PathLike) -> str:
    """The absolute `file://` URI of a local path."""
    return Path(path).resolve().as_uri()


def _event(kind: int, role: str, artifact_id: int = 0, execution_id: int = 0) -> pb.Event:
    event = pb.Event(type=kind)
    if artifact_id:
        event.artifact_id = artifact_id
    if execution_id:
        event.execution_id = execution_id
    event.path.steps.add().key = role
    return event


def _set_state(execution: pb.Execution, state: ExecutionState) -> None:
    execution.last_known_state = pb.Execution.State.Value(state.value)
    # The guide's `Trainer.state` property mirrors MLMD's `last_known_state`.
    if "state" in schema.spec_for(Kind.EXECUTION, execution.type).properties:
        execution.properties["state"].string_value = state.value


class Tracker:
    """Records a workflow in an MLMD store.

    Args:
        store: an open `Store`, or the location of one (created if missing).
        experiment: the experiment that runs and artifacts belong to unless a
            call names another.
    """

    def __init__(
        self,
        store: Union[Store, PathLike] = DEFAULT_STORE,
        *,
        experiment: str = DEFAULT_EXPERIMENT,
    ) -> None:
        self.store = store if isinstance(store, Store) else open_store(store, create=True)
        self.experiment = experiment
        self._type_ids: Dict[Tuple[Kind, str], int] = {}
        self._register(schema.ALL_TYPES)

    def __repr__(self) -> str:
        return f"Tracker({self.store.location!r}, experiment={self.experiment!r})"

    # -- types and contexts ------------------------------------------------------

    def _register(self, specs) -> None:
        todo = [s for s in specs if (s.kind, s.name) not in self._type_ids]
        if todo:
            ids = schema.register_types(self.store.mlmd, todo)
            self._type_ids.update(((s.kind, s.name), ids[s.name]) for s in todo)

    def _type_id(self, spec: TypeSpec) -> int:
        self._register([spec])
        return self._type_ids[(spec.kind, spec.name)]

    def _context(self, name: str) -> pb.Context:
        if not name.strip():
            raise MlmdExerciseError(f"an experiment name must not be empty, not '{name}'")
        stored = self.store.mlmd.get_context_by_type_and_name(schema.EXPERIMENT.name, name)
        if stored is not None:
            return stored
        return pb.Context(type_id=self._type_id(schema.EXPERIMENT), name=name)

    # -- artifacts ---------------------------------------------------------------

    def _versioned(
        self, spec: TypeSpec, path: PathLike, properties: Optional[Properties]
    ) -> Tuple[pb.Artifact, bool]:
        """The artifact for `path`'s current content, and whether it is already stored."""
        uri, digest = file_uri(path), fingerprint(path)
        type_id = self._type_id(spec)
        same_uri = [a for a in self.store.mlmd.get_artifacts_by_uri(uri) if a.type_id == type_id]
        latest = max(same_uri, key=lambda a: (a.properties["version"].int_value, a.id), default=None)
        if latest is not None and latest.custom_properties[FINGERPRINT].string_value == digest:
            return latest, True
        artifact = pb.Artifact(type_id=type_id, uri=uri, state=pb.Artifact.LIVE, type=spec.name)
        values = dict(properties or {})
        values["version"] = 1 + (latest.properties["version"].int_value if latest else 0)
        values[FINGERPRINT] = digest
        for key, value in values.items():
            # Declared properties go where every MLMD client looks for them.
            target = artifact.properties if key in spec.properties else artifact.custom_properties
            schema.set_value(target, key, value)
        return artifact, False

    def log_artifact(
        self, path: PathLike, *, type: str = schema.DATASET.name, properties: Optional[Properties] = None
    ) -> ArtifactRecord:
        """Records a file or directory as a LIVE artifact, versioned by its content.

        The same content at the same URI returns the stored artifact; new content
        at a URI is stored as the next `version`. The sha256 fingerprint is the
        custom property `fingerprint`.

        Args:
            path: the file or directory; recorded by its absolute `file://` URI.
            type: the artifact type: "DataSet", "SavedModel", "Metrics", or a type
                of your own (registered on first use, with no declared properties).
            properties: property values (declared ones and custom ones).

        Returns:
            The stored artifact.

        Raises:
            NotFoundError: nothing exists at `path`.
        """
        artifact, stored = self._versioned(schema.spec_for(Kind.ARTIFACT, type), path, properties)
        if not stored:
            # Read back for the times MLMD sets.
            [artifact] = self.store.mlmd.get_artifacts_by_id(self.store.mlmd.put_artifacts([artifact]))
        return schema.artifact_record(artifact)

    def log_dataset(
        self, path: PathLike, *, split: str = "train", day: Optional[int] = None,
        properties: Optional[Properties] = None,
    ) -> ArtifactRecord:
        """Records a dataset file or directory as a `DataSet` artifact (see `log_artifact`)."""
        values = dict(properties or {}, split=split)
        if day is not None:
            values["day"] = day
        return self.log_artifact(path, type=schema.DATASET.name, properties=values)

    # -- executions --------------------------------------------------------------

    def execution(
        self,
        type: str = schema.TRAINER.name,
        *,
        inputs: Optional[Mapping[str, ArtifactRecord]] = None,
        params: Optional[Properties] = None,
        experiment: Optional[str] = None,
    ) -> "Run":
        """Records a new RUNNING execution with its inputs; use it as a context manager.

        Leaving the `with` block normally records the run's outputs and COMPLETE; an
        exception records FAILED with `error_type` and `error_message`, and a
        KeyboardInterrupt CANCELED; the exception is re-raised unchanged.

        Args:
            type: the execution type: "Trainer", "Evaluator", or one of your own.
            inputs: stored artifacts by role, e.g. {"examples": dataset}; each
                becomes an INPUT event whose path step key is the role.
            params: hyper-parameters, stored as custom properties of the execution.
            experiment: the experiment's name (default: the tracker's).

        Raises:
            NotFoundError: an input artifact is not in the store.
        """
        inputs = dict(inputs or {})
        context = self._context(experiment or self.experiment)
        wanted = sorted({a.id for a in inputs.values()})
        found = {a.id for a in self.store.mlmd.get_artifacts_by_id(wanted)} if wanted else set()
        for artifact_id in wanted:
            if artifact_id not in found:
                raise NotFoundError(f"no artifact with id {artifact_id} in {self.store}")

        spec = schema.spec_for(Kind.EXECUTION, type)
        execution = pb.Execution(type_id=self._type_id(spec), type=spec.name)
        _set_state(execution, ExecutionState.RUNNING)
        for key, value in (params or {}).items():
            schema.set_value(execution.custom_properties, key, value)
        execution.id, _, [context.id] = self.store.mlmd.put_execution(
            execution, [], [context], reuse_context_if_already_exist=True
        )
        if inputs:
            self.store.mlmd.put_events(
                [_event(pb.Event.INPUT, role, a.id, execution.id) for role, a in inputs.items()]
            )
            self.store.mlmd.put_attributions_and_associations(
                [pb.Attribution(artifact_id=i, context_id=context.id) for i in wanted], []
            )
        return Run(self, execution.id, context.name)


class Run:
    """A RUNNING execution: collects outputs and metrics until it is finished."""

    def __init__(self, tracker: Tracker, execution_id: int, experiment: str) -> None:
        self.tracker = tracker
        self.id = execution_id
        self.experiment = experiment
        self.outputs: Dict[str, ArtifactRecord] = {}  # filled when the run finishes
        self._pending: Dict[str, Tuple[pb.Artifact, bool]] = {}
        self._metrics: Dict[str, PropertyValue] = {}
        self._finished = False

    def __repr__(self) -> str:
        return f"Run(id={self.id}, experiment={self.experiment!r})"

    def log_output(
        self, role: str, path: PathLike, *, type: str, properties: Optional[Properties] = None
    ) -> None:
        """Declares a file or directory this run produced; it is recorded, with its
        OUTPUT event, when the run finishes. Its content is fingerprinted now."""
        self._check_open()
        if role in self._pending:
            raise MlmdExerciseError(f"run {self.id} already has an output '{role}'")
        spec = schema.spec_for(Kind.ARTIFACT, type)
        self._pending[role] = self.tracker._versioned(spec, path, properties)

    def log_model(self, path: PathLike, *, name: str, role: str = "model",
                  properties: Optional[Properties] = None) -> None:
        """Declares a saved model this run produced (a `SavedModel` output)."""
        values = dict(properties or {}, name=name)
        self.log_output(role, path, type=schema.SAVED_MODEL.name, properties=values)

    def log_metrics(self, metrics: Properties) -> None:
        """Metrics, stored on the run's SavedModel output (on the run itself if it has none)."""
        self._check_open()
        self._metrics.update(metrics)

    def execution(self) -> ExecutionRecord:
        """The execution as stored now."""
        [execution] = self.tracker.store.mlmd.get_executions_by_id([self.id])
        return schema.execution_record(execution)

    def finish(
        self, state: ExecutionState = ExecutionState.COMPLETE, error: Optional[BaseException] = None
    ) -> Dict[str, ArtifactRecord]:
        """Records the outputs, their OUTPUT events, metrics and `state` in one transaction.

        Returns:
            The stored outputs by role.
        """
        self._check_open()
        mlmd = self.tracker.store.mlmd
        # Update the stored execution itself: a proto with only the id set would
        # overwrite the execution's properties (an MLMD pitfall).
        [execution] = mlmd.get_executions_by_id([self.id])
        _set_state(execution, state)
        if error is not None:
            schema.set_value(execution.custom_properties, "error_type", type(error).__name__)
            schema.set_value(execution.custom_properties, "error_message", str(error))
        outputs = list(self._pending.items())
        if state is not ExecutionState.COMPLETE:
            outputs = []  # a failed run's files are not trusted outputs
        models = [a for _, (a, _) in outputs if a.type == schema.SAVED_MODEL.name]
        for key, value in self._metrics.items():
            target = models[0] if models else execution
            schema.set_value(target.custom_properties, key, value)
        pairs = [(a, _event(pb.Event.OUTPUT, role)) for role, (a, _) in outputs]
        context = self.tracker._context(self.experiment)
        _, ids, _ = mlmd.put_execution(execution, pairs, [context], reuse_context_if_already_exist=True)
        stored = {a.id: a for a in mlmd.get_artifacts_by_id(ids)} if ids else {}
        for (role, _), artifact_id in zip(outputs, ids):
            self.outputs[role] = schema.artifact_record(stored[artifact_id])
        self._finished = True
        return dict(self.outputs)

    def _check_open(self) -> None:
        if self._finished:
            raise MlmdExerciseError(f"run {self.id} is already finished")

    def __enter__(self) -> "Run":
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        if self._finished:
            return
        if exc is None:
            self.finish()
        elif isinstance(exc, KeyboardInterrupt):
            self.finish(ExecutionState.CANCELED, exc)
        else:
            self.finish(ExecutionState.FAILED, exc)
        # Returning None re-raises the exception unchanged.
