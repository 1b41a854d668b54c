"""Writing: artifacts, executions, their INPUT/OUTPUT events and experiments.

    tracker = Tracker("metadata.db")
    train = tracker.dataset("data/train.csv", split="train")
    with tracker.execution("Trainer", inputs={"examples": train}, params={"C": 1.0}) as run:
        ...
        run.log_metrics({"train_accuracy": 0.93})
        run.log_model("models/m.joblib", name="LogisticRegressionModel")

Rules this module keeps:
- No artifact without the event that says who made or used it: a run's new
  inputs go in with the execution and their INPUT events in one `put_execution`
  call (one transaction); its outputs, their OUTPUT events and its final state
  in another.
- An output is made by exactly one run: a run's outputs are always new
  artifacts (identical bytes are still told by their fingerprint), so a later
  run never changes what an earlier one recorded.
- Inputs are versioned by content: the same bytes at the same URI are the
  stored artifact; new bytes at that URI are the next version.
- One writer at a time per store (the store's lock), so that versions,
  experiments and types are never created twice by concurrent processes.
- Each run has a name; a write whose outcome is unclear (the connection broke
  after the server committed) is checked by that name before it is retried.
"""

from __future__ import annotations

import logging
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Callable, Dict, List, Mapping, Optional, Tuple, Type, TypeVar, Union

from ml_metadata import errors as mlmd_errors
from ml_metadata.proto import metadata_store_pb2 as pb

from mlmd_exercise.write import environment
from mlmd_exercise import schema
from mlmd_exercise.content import FINGERPRINT, fingerprint
from mlmd_exercise.errors import MlmdExerciseError, NotFoundError
from mlmd_exercise.records import METRIC_NAMES, ArtifactRecord, ExecutionRecord, PropertyValue
from mlmd_exercise.schema import ExecutionState, Kind, TypeSpec
from mlmd_exercise.store import Store, open_store

__all__ = ["DEFAULT_EXPERIMENT", "Pending", "Tracker", "Run", "file_uri"]

log = logging.getLogger(__name__)
DEFAULT_EXPERIMENT = "default"
PathLike = Union[str, os.PathLike]
Properties = Mapping[str, PropertyValue]
T = TypeVar("T")
# Errors after which a write may or may not have been committed.
_UNCLEAR = (mlmd_errors.AbortedError, mlmd_errors.UnavailableError,
            mlmd_errors.DeadlineExceededError, mlmd_errors.InternalError)
_ATTEMPTS = 3
# Output types that carry a copy of their run's metrics.
_METRIC_CARRIERS = (schema.SAVED_MODEL.name, schema.METRICS.name)
# Properties of a run or its outputs that a metric of the same name would overwrite.
_RESERVED = frozenset({"version", FINGERPRINT, "name", "state", METRIC_NAMES})


def file_uri(path: PathLike) -> str:
    """The absolute `file://` URI of a local path."""
    return Path(path).resolve().as_uri()


@dataclass(frozen=True)
class Pending:
    """A file or directory described and fingerprinted, not yet in the store.

    Pass it as a run's input and it is recorded together with the run, in one
    transaction: a crash can never leave it stored without its INPUT event.
    """

    type: TypeSpec
    uri: str
    fingerprint: str
    properties: Mapping[str, PropertyValue] = field(default_factory=dict)


def _event(kind: int, role: str, artifact_id: int = 0, execution_id: int = 0) -> pb.Event:
    event = pb.Event(type=kind)
    if artifact_id:
        event.artifact_id = artifact_id
    if execution_id:
        event.execution_id = execution_id
    event.path.steps.add().key = role
    return event


def _retrying(write: Callable[[], T], recorded: Callable[[], Optional[T]], what: str) -> T:
    """Runs `write`; after an unclear failure, returns what `recorded` finds, or tries again."""
    for attempt in range(1, _ATTEMPTS + 1):
        try:
            return write()
        except _UNCLEAR as e:
            found = recorded()
            if found is not None:
                log.info("%s was recorded although the store answered %s", what, type(e).__name__)
                return found
            if attempt == _ATTEMPTS:
                raise
            log.info("%s failed (%s); trying again", what, type(e).__name__)
    raise AssertionError("unreachable")


class Tracker:
    """Records a workflow in an MLMD store.

    Args:
        store: an open `Store`, or the address of one (created if missing):
            a file path, `sqlite:///path`, `postgresql://user:pw@host:port/db`
            or `mysql://user:pw@host:port/db`.
        experiment: the experiment that runs belong to unless a call names another.
    """

    def __init__(self, store: Union[Store, PathLike, None] = None, *,
                 experiment: str = DEFAULT_EXPERIMENT) -> None:
        self.store = store if isinstance(store, Store) else open_store(store, create=True)
        self.experiment = experiment
        self._type_ids: Dict[Tuple[Kind, str], int] = {}
        # Each type as registered: ours, or another program's of the same name (`foreign`).
        self._specs: Dict[Tuple[Kind, str], TypeSpec] = {}
        self._context_ids: Dict[str, int] = {}  # experiment name -> context id, once stored
        self._register(schema.ALL_TYPES)

    def __repr__(self) -> str:
        return f"Tracker({str(self.store)!r}, experiment={self.experiment!r})"

    # -- types and contexts ------------------------------------------------------

    def _register(self, specs) -> None:
        todo = [s for s in specs if (s.kind, s.name) not in self._type_ids]
        if todo:
            with self.store.writing():
                found = schema.register(self.store.mlmd, todo)
            for s in todo:
                self._type_ids[(s.kind, s.name)], self._specs[(s.kind, s.name)] = found[s.name]

    def _type_id(self, spec: TypeSpec) -> int:
        self._register([spec])
        return self._type_ids[(spec.kind, spec.name)]

    def _spec_by_id(self, type_id: int) -> Optional[TypeSpec]:
        """The registered type with this id, if this tracker registered it."""
        for key, found in self._type_ids.items():
            if found == type_id:
                return self._specs[key]
        return None

    def _spec(self, kind: Kind, name: str) -> TypeSpec:
        """The type to write by: ours, or a foreign one of that name (values all custom)."""
        spec = schema.spec_for(kind, name)
        self._register([spec])
        return self._specs[(kind, name)]

    def _context(self, name: str) -> pb.Context:
        """The experiment to pass to put_execution with force_reuse_context: by id once it is
        stored (MLMD then leaves the stored context as it is), else a new one."""
        if not name.strip():
            raise MlmdExerciseError(f"an experiment name must not be empty, not '{name}'")
        type_id = self._type_id(schema.EXPERIMENT)
        if name not in self._context_ids:
            stored = self.store.mlmd.get_context_by_type_and_name(schema.EXPERIMENT.name, name)
            if stored is None:
                return pb.Context(type_id=type_id, name=name)
            self._context_ids[name] = stored.id
        return pb.Context(id=self._context_ids[name], type_id=type_id, name=name)

    # -- artifacts ---------------------------------------------------------------

    def artifact(self, path: PathLike, *, type: str = schema.DATASET.name,
                 properties: Optional[Properties] = None) -> Pending:
        """Describes and fingerprints a file or directory, to record as a run's input.

        Raises:
            NotFoundError: nothing exists at `path`.
        """
        spec = self._spec(Kind.ARTIFACT, type)
        return Pending(spec, file_uri(path), fingerprint(path), dict(properties or {}))

    def dataset(self, path: PathLike, *, split: str = "train", day: Optional[int] = None,
                properties: Optional[Properties] = None) -> Pending:
        """A `DataSet` to record as a run's input (see `artifact`)."""
        values = dict(properties or {}, split=split)
        if day is not None:
            values["day"] = day
        return self.artifact(path, type=schema.DATASET.name, properties=values)

    def _newest(self, pending: Pending) -> Tuple[int, Optional[pb.Artifact]]:
        """The type id and the newest stored artifact of that type at the pending URI."""
        type_id = self._type_id(pending.type)
        return type_id, schema.newest(
            (a for a in self.store.mlmd.get_artifacts_by_uri(pending.uri) if a.type_id == type_id),
            pending.type)

    def _new_version(self, pending: Pending, type_id: int, latest: Optional[pb.Artifact]
                     ) -> pb.Artifact:
        version = 1 + (schema.version_of(latest, pending.type) if latest else 0)
        return schema.new_artifact(pending.type, type_id, pending.uri, {
            **pending.properties, "version": version, FINGERPRINT: pending.fingerprint})

    def _resolve(self, pending: Pending) -> pb.Artifact:
        """An input: the stored artifact with this content at this URI, or a new one (id 0)
        at the next version. Call it under the store's lock."""
        type_id, latest = self._newest(pending)
        if latest is not None and latest.custom_properties[FINGERPRINT].string_value == pending.fingerprint:
            return latest
        return self._new_version(pending, type_id, latest)

    def _output(self, pending: Pending) -> pb.Artifact:
        """An output: always a new artifact (id 0), at the next version of its URI, whatever
        its content. Call it under the store's lock."""
        return self._new_version(pending, *self._newest(pending))

    def log_artifact(self, path: PathLike, *, type: str = schema.DATASET.name,
                     properties: Optional[Properties] = None) -> ArtifactRecord:
        """Records a file or directory now, as a LIVE artifact versioned by its content.

        The same content at the same URI returns the stored artifact; new content
        at a URI is stored as the next `version`. Its sha256 fingerprint is the
        custom property `fingerprint`. (To record an input together with the run
        that reads it, pass `artifact(...)` or `dataset(...)` to `execution`.)

        Args:
            path: the file or directory; recorded by its absolute `file://` URI.
            type: "DataSet", "SavedModel", "Metrics", or a type of your own.
            properties: property values (declared ones and custom ones).

        Raises:
            NotFoundError: nothing exists at `path`.
        """
        return self._record(self.artifact(path, type=type, properties=properties))

    def log_dataset(self, path: PathLike, *, split: str = "train", day: Optional[int] = None,
                    properties: Optional[Properties] = None) -> ArtifactRecord:
        """Records a `DataSet` now (see `log_artifact`)."""
        return self._record(self.dataset(path, split=split, day=day, properties=properties))

    def _record(self, pending: Pending) -> ArtifactRecord:
        with self.store.writing():
            artifact = self._resolve(pending)
            if not artifact.id:
                [artifact] = self.store.mlmd.get_artifacts_by_id(self.store.mlmd.put_artifacts([artifact]))
        return schema.artifact_record(artifact)

    # -- executions --------------------------------------------------------------

    def execution(
        self,
        type: str = schema.TRAINER.name,
        *,
        inputs: Optional[Mapping[str, Union[ArtifactRecord, Pending]]] = None,
        params: Optional[Properties] = None,
        experiment: Optional[str] = None,
        name: Optional[str] = None,
    ) -> "Run":
        """Records a new RUNNING execution with its inputs; use it as a context manager.

        Leaving the `with` block normally records the run's outputs and COMPLETE; an
        exception records FAILED with `error_type` and `error_message`, and a
        KeyboardInterrupt CANCELED; the exception is re-raised unchanged.

        Args:
            type: the execution type: "Trainer", "Evaluator", or one of your own.
            inputs: by role, e.g. {"examples": dataset}: stored artifacts, or
                `Pending` ones that are recorded with the run; each becomes an
                INPUT event whose path step key is the role.
            params: hyper-parameters, stored as custom properties of the execution.
            experiment: the experiment's name (default: the tracker's).
            name: the run's unique name (default: a new UUID); retries use it to
                find a run whose recording was committed but not acknowledged.

        Raises:
            NotFoundError: a stored input artifact is not in the store.
        """
        spec = self._spec(Kind.EXECUTION, type)
        execution = pb.Execution(type_id=self._type_id(spec), type=spec.name, name=name or uuid.uuid4().hex)
        schema.set_execution_state(execution, ExecutionState.RUNNING, spec)
        # How to reproduce it: host, pid, code, command, packages (see `environment`).
        for key, value in {**(params or {}), **environment.capture()}.items():
            schema.set_value(execution.custom_properties, key, value)
        experiment = experiment or self.experiment
        with self.store.writing():
            context = self._context(experiment)
            new, stored = self._inputs(dict(inputs or {}))
            pairs = [(a, _event(pb.Event.INPUT, role)) for role, a in new]

            def write() -> int:
                try:
                    execution_id, _, [self._context_ids[experiment]] = self.store.mlmd.put_execution(
                        execution, pairs, [context], reuse_context_if_already_exist=True,
                        force_reuse_context=True)
                except mlmd_errors.AlreadyExistsError:
                    if recorded() is None:
                        raise
                    raise MlmdExerciseError(
                        f"a {spec.name} run named '{execution.name}' is already in {self.store}") from None
                return execution_id

            def recorded() -> Optional[int]:
                found = self.store.mlmd.get_execution_by_type_and_name(spec.name, execution.name)
                return found.id if found is not None else None

            execution.id = _retrying(write, recorded, f"starting run {execution.name}")
            if stored:
                # Linking artifacts that already exist: their events, then their experiment.
                self.store.mlmd.put_events(
                    [_event(pb.Event.INPUT, role, a.id, execution.id) for role, a in stored])
                context = self._context(experiment)
                self.store.mlmd.put_attributions_and_associations(
                    [pb.Attribution(artifact_id=a.id, context_id=context.id) for _, a in stored], [])
        return Run(self, execution.id, spec.name, execution.name, experiment, params or {})

    def _inputs(self, inputs: Mapping[str, Union[ArtifactRecord, Pending]]
                ) -> Tuple[List[Tuple[str, pb.Artifact]], List[Tuple[str, pb.Artifact]]]:
        """Splits inputs by role into new protos (recorded with the run) and stored artifacts."""
        new: List[Tuple[str, pb.Artifact]] = []
        stored: List[Tuple[str, pb.Artifact]] = []
        ids = sorted({a.id for a in inputs.values() if isinstance(a, ArtifactRecord)})
        found = {a.id: a for a in self.store.mlmd.get_artifacts_by_id(ids)} if ids else {}
        for role, given in inputs.items():
            if isinstance(given, Pending):
                artifact = self._resolve(given)
                (stored if artifact.id else new).append((role, artifact))
            elif given.id in found:
                stored.append((role, found[given.id]))
            else:
                raise NotFoundError(f"no artifact with id {given.id} in {self.store}")
        return new, stored


class Run:
    """A RUNNING execution: collects outputs and metrics until it is finished."""

    def __init__(self, tracker: Tracker, execution_id: int, type: str, name: str,
                 experiment: str, params: Optional[Properties] = None) -> None:
        self.tracker = tracker
        self.id = execution_id
        self.type = type
        self.name = name
        self.experiment = experiment
        self.outputs: Dict[str, ArtifactRecord] = {}  # filled when the run finishes
        self._pending: Dict[str, Pending] = {}
        self._metrics: Dict[str, PropertyValue] = {}
        self._params: Properties = dict(params or {})
        self._finished = False

    def __repr__(self) -> str:
        return f"Run(id={self.id}, type={self.type!r}, experiment={self.experiment!r})"

    def log_output(self, role: str, path: PathLike, *, type: str,
                   properties: Optional[Properties] = None) -> None:
        """Declares a file or directory this run produced; it is recorded, with its
        OUTPUT event, when the run finishes. Its content is fingerprinted now."""
        self._check_open()
        if role in self._pending:
            raise MlmdExerciseError(f"run {self.id} already has an output '{role}'")
        self._pending[role] = self.tracker.artifact(path, type=type, properties=properties)

    def log_model(self, path: PathLike, *, name: str, role: str = "model",
                  properties: Optional[Properties] = None) -> None:
        """Declares a saved model this run produced (a `SavedModel` output)."""
        values = dict(properties or {}, name=name)
        self.log_output(role, path, type=schema.SAVED_MODEL.name, properties=values)

    def log_metrics(self, metrics: Properties) -> None:
        """Metrics of this run: stored on the execution and, as a copy, on the SavedModel
        and Metrics artifacts the run outputs (new artifacts of its own, so a later run
        never overwrites them).

        Raises:
            MlmdExerciseError: a metric has the name of one of the run's params.
        """
        self._check_open()
        clash = sorted(set(metrics) & set(self._params))
        if clash:
            raise MlmdExerciseError(f"run {self.id} has a param '{clash[0]}' already: "
                                    "give the metric another name")
        reserved = sorted(set(metrics) & _RESERVED)
        if reserved:
            raise MlmdExerciseError(f"'{reserved[0]}' names what this package records itself "
                                    f"({', '.join(sorted(_RESERVED))}): give the metric another name")
        self._metrics.update(metrics)

    @property
    def inputs(self) -> Dict[str, ArtifactRecord]:
        """The run's inputs by role, as stored (read from the store when asked)."""
        from mlmd_exercise.read.lineage import execution_lineage

        return dict(execution_lineage(self.tracker.store, self.id).inputs)

    def execution(self) -> ExecutionRecord:
        """The execution as stored now."""
        [execution] = self.tracker.store.mlmd.get_executions_by_id([self.id])
        return schema.execution_record(execution)

    def finish(self, state: ExecutionState = ExecutionState.COMPLETE,
               error: Optional[BaseException] = None) -> Dict[str, ArtifactRecord]:
        """Records the outputs, their OUTPUT events, metrics and `state` in one transaction.

        A failed or canceled run records no outputs: its files are not trusted.

        Returns:
            The stored outputs by role.
        """
        self._check_open()
        tracker, mlmd = self.tracker, self.tracker.store.mlmd
        with tracker.store.writing():
            # Update the stored execution itself: a proto with only the id set would
            # overwrite the execution's properties (an MLMD pitfall).
            [execution] = mlmd.get_executions_by_id([self.id])
            schema.set_execution_state(execution, state, tracker._spec(Kind.EXECUTION, self.type))
            if environment.PACKAGES in execution.custom_properties:  # and those imported since
                recorded = execution.custom_properties[environment.PACKAGES].string_value
                execution.custom_properties[environment.PACKAGES].string_value = \
                    environment.packages_now(recorded)
            if error is not None:
                schema.set_value(execution.custom_properties, "error_type", type(error).__name__)
                schema.set_value(execution.custom_properties, "error_message", str(error))
            pending = list(self._pending.items()) if state is ExecutionState.COMPLETE else []
            outputs = [(role, tracker._output(p)) for role, p in pending]
            carriers = [(a, p.type) for (_, a), (_, p) in zip(outputs, pending)
                        if a.type in _METRIC_CARRIERS]
            if self._metrics:  # which of its properties are metrics, for readers
                schema.set_value(execution.custom_properties, METRIC_NAMES, ",".join(sorted(self._metrics)))
            for key, value in self._metrics.items():
                schema.set_value(execution.custom_properties, key, value)
                for artifact, artifact_spec in carriers:  # Metrics declares "accuracy"
                    schema.set_property(artifact, artifact_spec, key, value)
            pairs = [(a, _event(pb.Event.OUTPUT, role)) for role, a in outputs]
            context = tracker._context(self.experiment)

            def write() -> List[int]:
                _, ids, _ = mlmd.put_execution(execution, pairs, [context],
                                               reuse_context_if_already_exist=True,
                                               force_reuse_context=True)
                return ids

            def recorded() -> Optional[List[int]]:
                [now] = mlmd.get_executions_by_id([self.id])
                if now.last_known_state != execution.last_known_state:
                    return None
                events = mlmd.get_events_by_execution_ids([self.id])
                made = {e.path.steps[0].key: e.artifact_id for e in events if e.type == pb.Event.OUTPUT}
                if any(role not in made for role, _ in outputs):
                    return None
                return [made[role] for role, _ in outputs]

            ids = _retrying(write, recorded, f"finishing run {self.name}")
            stored = {a.id: a for a in mlmd.get_artifacts_by_id(ids)} if ids else {}
        self.outputs = {role: schema.artifact_record(stored[i]) for (role, _), i in zip(outputs, ids)}
        self._finished = True
        return dict(self.outputs)

    def _check_open(self) -> None:
        if self._finished:
            raise MlmdExerciseError(f"run {self.id} is already finished")

    def __enter__(self) -> "Run":
        return self

    def __exit__(self, exc_type: Optional[Type[BaseException]], exc: Optional[BaseException],
                 tb: Optional[TracebackType]) -> None:
        if self._finished:
            return
        if exc is None:
            self.finish()
        elif isinstance(exc, KeyboardInterrupt):
            self.finish(ExecutionState.CANCELED, exc)
        else:
            self.finish(ExecutionState.FAILED, exc)
        # Returning None re-raises the exception unchanged.
