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

from mlmd_exercise import masking, schema
from mlmd_exercise.write import environment
from mlmd_exercise.content import FINGERPRINT, fingerprint
from mlmd_exercise.errors import ConflictError, MlmdExerciseError, NotFoundError, UnclearWriteError
from mlmd_exercise.records import DEFAULT_EXPERIMENT, METRIC_NAMES, ArtifactRecord, ExecutionRecord, PropertyValue
from mlmd_exercise.schema import ExecutionState, Kind, TypeSpec
from mlmd_exercise.store import Store, open_store
from mlmd_exercise.store.backend import Backend, ExecutionWrite, NewArtifact, NewEvent, Query

__all__ = ["DEFAULT_EXPERIMENT", "Pending", "Tracker", "Run", "file_uri"]

log = logging.getLogger(__name__)
PathLike = Union[str, os.PathLike]
Properties = Mapping[str, PropertyValue]
T = TypeVar("T")
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


def _event(kind: str, role: str) -> NewEvent:
    return NewEvent(kind, (role,))


def _retrying(write: Callable[[], T], recorded: Callable[[], Optional[T]], what: str) -> T:
    """Runs `write`; after an unclear failure, returns what `recorded` finds, or tries again."""
    for attempt in range(1, _ATTEMPTS + 1):
        try:
            return write()
        except UnclearWriteError as e:
            found = recorded()
            if found is not None:
                log.info("%s was recorded although the store answered: %s", what, e)
                return found
            if attempt == _ATTEMPTS:
                raise
            log.info("%s failed (%s); trying again", what, e)
    raise AssertionError("unreachable")


def _check_run(backend: Backend, type: str, experiment: str, name: Optional[str], params: Properties,
               inputs: Mapping[str, object]) -> None:
    """Refuses at the call, before anything is written, a string the backend cannot store."""
    for where, text in (("the execution type name", type), ("the experiment name", experiment),
                        ("the run name", name)):
        backend.check_text(where, text)
    backend.check_texts("param", params)
    backend.check_texts("input", {role: None for role in inputs})


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
        self.store.backend.check_text("the experiment name", experiment)  # refused before anything is written
        self.experiment = experiment
        self.catalog = self.store.catalog
        self._register(schema.ALL_TYPES)

    def __repr__(self) -> str:
        return f"Tracker({str(self.store)!r}, experiment={self.experiment!r})"

    # -- types ---------------------------------------------------------------------

    def _register(self, specs) -> None:
        todo = [s for s in specs if not self.catalog.registered(s)]
        if todo:
            with self.store.writing():
                self.catalog.register(todo)

    def _spec(self, kind: Kind, name: str) -> TypeSpec:
        """The type to write by: ours, or a foreign one of that name (values all custom)."""
        self._register([schema.spec_for(kind, name)])
        return self.catalog.spec(kind, name)

    def _type_id(self, spec: TypeSpec) -> int:
        self._register([spec])
        return self.catalog.spec_id(spec)

    # -- artifacts ---------------------------------------------------------------

    def artifact(self, path: PathLike, *, type: str = schema.DATASET.name,
                 properties: Optional[Properties] = None) -> Pending:
        """Describes and fingerprints a file or directory, to record as a run's input.

        Raises:
            NotFoundError: nothing exists at `path`.
        """
        self.store.backend.check_text("the type name", type)  # refused at the call, if the backend must
        self.store.backend.check_texts("property", properties or {})
        spec = self._spec(Kind.ARTIFACT, type)
        return Pending(spec, file_uri(path), fingerprint(path), masking.mask_values(properties or {}))

    def dataset(self, path: PathLike, *, split: str = "train", day: Optional[int] = None,
                properties: Optional[Properties] = None) -> Pending:
        """A `DataSet` to record as a run's input (see `artifact`)."""
        values = dict(properties or {}, split=split)
        if day is not None:
            values["day"] = day
        return self.artifact(path, type=schema.DATASET.name, properties=values)

    def _newest(self, pending: Pending) -> Tuple[int, Optional[ArtifactRecord]]:
        """The type id and the newest stored artifact of that type at the pending URI."""
        type_id = self._type_id(pending.type)
        stored = self.store.backend.artifacts(Query(uris=[pending.uri], type_id=type_id))
        return type_id, schema.newest(stored, pending.type)

    def _new_version(self, pending: Pending, type_id: int, latest: Optional[ArtifactRecord]
                     ) -> NewArtifact:
        version = 1 + (schema.version_of(latest, pending.type) if latest else 0)
        return schema.new_artifact(pending.type, type_id, pending.uri, {
            **pending.properties, "version": version, FINGERPRINT: pending.fingerprint})

    def _resolve(self, pending: Pending) -> Union[ArtifactRecord, NewArtifact]:
        """An input: the stored artifact with this content at this URI, or a new one at the
        next version. Call it under the store's lock."""
        type_id, latest = self._newest(pending)
        if latest is not None and latest.custom.get(FINGERPRINT) == pending.fingerprint:
            return latest
        return self._new_version(pending, type_id, latest)

    def _output(self, pending: Pending) -> NewArtifact:
        """An output: always a new artifact, at the next version of its URI, whatever its
        content. Call it under the store's lock."""
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
            if isinstance(artifact, NewArtifact):
                [new_id] = self.store.backend.put_artifacts([artifact])
                [artifact] = self.store.backend.artifacts(Query(ids=[new_id]))
        return artifact

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
        _check_run(self.store.backend, type, experiment or self.experiment, name, params or {}, inputs or {})
        spec = self._spec(Kind.EXECUTION, type)
        run_name = name or uuid.uuid4().hex
        # How to reproduce it: host, pid, code, command, packages (see `environment`).
        # Secrets in params are stored masked (see `masking`); the environment masks its own.
        params = masking.mask_values(params or {})
        custom = {k: schema.storable(k, v) for k, v in {**params, **environment.capture()}.items()}
        execution = ExecutionWrite(self._type_id(spec), spec.name, name=run_name, state=ExecutionState.RUNNING,
                                   properties=schema.state_mirror(spec.properties, ExecutionState.RUNNING), custom=custom)
        experiment = experiment or self.experiment
        backend = self.store.backend
        with self.store.writing():
            context = self.catalog.experiment(experiment)
            new, stored = self._inputs(dict(inputs or {}))

            def write() -> int:
                try:
                    execution_id, _, context_id = backend.put_execution(
                        execution, [(a, _event("INPUT", role)) for role, a in new],
                        [(a.id, _event("INPUT", role)) for role, a in stored], context)
                except ConflictError:
                    if recorded() is None:
                        raise
                    raise ConflictError(f"a {spec.name} run named '{run_name}' is already in {self.store}") from None
                self.catalog.remember_experiment(experiment, context_id)
                return execution_id

            def recorded() -> Optional[int]:
                found = backend.execution_by_name(spec.name, run_name)
                return found.id if found is not None else None

            execution_id = _retrying(write, recorded, f"starting run {run_name}")
        return Run(self, execution_id, spec.name, run_name, experiment, params or {})

    def _inputs(self, inputs: Mapping[str, Union[ArtifactRecord, Pending]]
                ) -> Tuple[List[Tuple[str, NewArtifact]], List[Tuple[str, ArtifactRecord]]]:
        """Splits inputs by role into new artifacts (recorded with the run) and stored ones."""
        new: List[Tuple[str, NewArtifact]] = []
        stored: List[Tuple[str, ArtifactRecord]] = []
        ids = sorted({a.id for a in inputs.values() if isinstance(a, ArtifactRecord)})
        found = {a.id: a for a in self.store.backend.artifacts(Query(ids=ids))} if ids else {}
        for role, given in inputs.items():
            if isinstance(given, Pending):
                artifact = self._resolve(given)
                if isinstance(artifact, NewArtifact):
                    new.append((role, artifact))
                else:
                    stored.append((role, artifact))
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
        self.tracker.store.backend.check_text("the output role", role)
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
        self.tracker.store.backend.check_texts("metric", metrics)
        self._metrics.update(masking.mask_values(metrics))

    @property
    def inputs(self) -> Dict[str, ArtifactRecord]:
        """The run's inputs by role, as stored (read from the store when asked)."""
        from mlmd_exercise.read.lineage import execution_lineage

        return dict(execution_lineage(self.tracker.store, self.id).inputs)

    def execution(self) -> ExecutionRecord:
        """The execution as stored now."""
        [execution] = self.tracker.store.backend.executions(Query(ids=[self.id]))
        return execution

    def finish(self, state: ExecutionState = ExecutionState.COMPLETE,
               error: Optional[BaseException] = None) -> Dict[str, ArtifactRecord]:
        """Records the outputs, their OUTPUT events, metrics and `state` in one transaction.

        A failed or canceled run records no outputs: its files are not trusted.

        Returns:
            The stored outputs by role.
        """
        self._check_open()
        tracker = self.tracker
        backend = tracker.store.backend
        spec = tracker._spec(Kind.EXECUTION, self.type)
        with tracker.store.writing():
            [stored] = backend.executions(Query(ids=[self.id]))
            custom: Dict[str, PropertyValue] = {}
            if environment.PACKAGES in stored.custom:  # and those imported since
                custom[environment.PACKAGES] = environment.packages_now(str(stored.custom[environment.PACKAGES]))
            if error is not None:
                custom["error_type"] = type(error).__name__
                # Of the package's own accord: never a refusal that would leave the run RUNNING.
                custom["error_message"] = backend.storable_text(masking.mask(str(error)))
            pending = list(self._pending.items()) if state is ExecutionState.COMPLETE else []
            outputs = [(role, tracker._output(p)) for role, p in pending]
            if self._metrics:  # which of its properties are metrics, for readers
                custom[METRIC_NAMES] = ",".join(sorted(self._metrics))
            custom.update(self._metrics)
            for (_, artifact), (_, p) in zip(outputs, pending):
                if artifact.type in _METRIC_CARRIERS:  # Metrics declares "accuracy"
                    declared, extra = schema.split_values(p.type, self._metrics)
                    artifact.properties.update(declared)
                    artifact.custom.update(extra)
            change = ExecutionWrite(stored.type_id, self.type, id=self.id, state=state,
                                    properties=schema.state_mirror(spec.properties, state),
                                    custom={k: schema.storable(k, v) for k, v in custom.items()})
            context = tracker.catalog.experiment(self.experiment)

            def write() -> List[int]:
                _, ids, _ = backend.put_execution(change, [(a, _event("OUTPUT", role)) for role, a in outputs],
                                                  (), context)
                return ids

            def recorded() -> Optional[List[int]]:
                [now] = backend.executions(Query(ids=[self.id]))
                if now.state != state.value:
                    return None
                events = backend.events_by_executions([self.id])
                made = {e.role: e.artifact_id for e in events if e.type == "OUTPUT"}
                if any(role not in made for role, _ in outputs):
                    return None
                return [made[role] for role, _ in outputs]

            ids = _retrying(write, recorded, f"finishing run {self.name}")
            found = {a.id: a for a in backend.artifacts(Query(ids=ids))} if ids else {}
        self.outputs = {role: found[i] for (role, _), i in zip(outputs, ids)}
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
