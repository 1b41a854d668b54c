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

from mlmd_exercise import masking, schema, values
from mlmd_exercise import environment
from mlmd_exercise.write import capture
from mlmd_exercise.content import FINGERPRINT, fingerprint
from mlmd_exercise.errors import ConflictError, MlmdExerciseError, NotFoundError, UnclearWriteError
from mlmd_exercise.records import DEFAULT_EXPERIMENT, METRIC_NAMES, ArtifactRecord, ExecutionRecord, PropertyValue
from mlmd_exercise.schema import ExecutionState, Kind, TypeSpec
from mlmd_exercise.store import Store, open_store
from mlmd_exercise.store.backend import Backend, ExecutionWrite, NewArtifact, NewEvent, Query
from mlmd_exercise.write.metrics import check_flush_every

__all__ = ["DEFAULT_EXPERIMENT", "Pending", "Tracker", "Run", "file_uri"]

log = logging.getLogger(__name__)
PathLike = Union[str, os.PathLike]
Properties = Mapping[str, PropertyValue]
T = TypeVar("T")
_ATTEMPTS = 3
# Output types that carry a copy of their run's metrics.
_METRIC_CARRIERS = (schema.SAVED_MODEL.name, schema.METRICS.name)


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


def _mapping(what: str, given: Optional[Mapping]) -> Mapping:
    """`given` where it is a dict (None: an empty one).

    Raises:
        MlmdExerciseError: it is something else, naming `what`.
    """
    if given is None:
        return {}
    if not isinstance(given, Mapping):
        raise MlmdExerciseError(f"{what} must be a dict of name -> value, not {values.shown(given)}")
    return given


def _param_name(key: object) -> str:
    """A param's name, checked (values.check_name), and none of the keys the run's environment
    is recorded under (`host`, `pid`, `env.*`), which would overwrite it."""
    name = values.check_name(key, values.Role.PARAM)
    if environment.is_environment_key(name):
        raise MlmdExerciseError(f"'{name}' names what this package records about where the run ran "
                                f"(host, pid, pid_start, env.*): give the param another name")
    return name


def _inputs_given(inputs: Optional[Mapping]) -> Dict[str, Union[ArtifactRecord, Pending]]:
    """A run's inputs by role, checked: each a stored artifact or a `Pending` one.

    Raises:
        MlmdExerciseError: naming the role and what was given instead.
    """
    if isinstance(inputs, (ArtifactRecord, Pending)):
        raise MlmdExerciseError(f"inputs must be a dict of role -> artifact, e.g. inputs={{'examples': ...}}, "
                                f"not one artifact ({inputs.uri})")
    checked: Dict[str, Union[ArtifactRecord, Pending]] = {}
    for role, given in _mapping("inputs", inputs).items():
        if not isinstance(role, str) or not role:
            raise MlmdExerciseError(f"an input's role must be a non-empty string, not {values.shown(role)}")
        if isinstance(given, (str, os.PathLike)):
            raise MlmdExerciseError(f"input '{role}' is the path {values.shown(str(given))}, not an artifact: "
                                    f"pass tracker.dataset({str(given)!r}) (or tracker.artifact(path, type=...))")
        if not isinstance(given, (ArtifactRecord, Pending)):
            raise MlmdExerciseError(f"input '{role}' must be an artifact (tracker.dataset(path), "
                                    f"tracker.artifact(path), a stored ArtifactRecord), not {values.shown(given)}")
        checked[role] = given
    return checked


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
        given = _mapping("properties", properties)
        self.store.backend.check_text("the type name", type)  # refused at the call, if the backend must
        self.store.backend.check_texts("property", given)
        spec = self._spec(Kind.ARTIFACT, type)
        if not isinstance(path, (str, os.PathLike)):
            raise MlmdExerciseError(f"path must be a file or directory path, not {values.shown(path)}")
        declared, custom = schema.split_values(spec, masking.mask_values(given))  # checked now
        return Pending(spec, file_uri(path), fingerprint(path), {**custom, **declared})

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
        flush_every: int = 1,
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
            flush_every: metrics logged are written at once (1), or this many points at a
                time, in one transaction: a kill then loses at most `flush_every - 1` of them.

        Raises:
            NotFoundError: a stored input artifact is not in the store.
            MlmdExerciseError: a param, input or value is refused (values.py), naming it.
        """
        given = {_param_name(k): values.normalize(k, v, values.Role.PARAM)
                 for k, v in _mapping("params", params).items()}
        checked_inputs = _inputs_given(inputs)
        check_flush_every(flush_every)  # all checked before anything is written
        _check_run(self.store.backend, type, experiment or self.experiment, name, given, checked_inputs)
        spec = self._spec(Kind.EXECUTION, type)
        run_name = name or uuid.uuid4().hex
        # How to reproduce it: host, pid, code, command, packages (see `environment`).
        # Secrets in params are stored masked (see `masking`); the environment masks its own.
        given = masking.mask_values(given)
        custom = {k: schema.storable(k, v) for k, v in {**given, **capture.capture()}.items()}
        execution = ExecutionWrite(self._type_id(spec), spec.name, name=run_name, state=ExecutionState.RUNNING,
                                   properties=schema.state_mirror(spec.properties, ExecutionState.RUNNING), custom=custom)
        experiment = experiment or self.experiment
        backend = self.store.backend
        with self.store.writing():
            context = self.catalog.experiment(experiment)
            new, stored = self._inputs(checked_inputs)

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
        return Run(self, execution_id, spec.name, run_name, experiment, given, flush_every)

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
    """A RUNNING execution: its metrics are written as they are logged, its outputs when it
    finishes."""

    def __init__(self, tracker: Tracker, execution_id: int, type: str, name: str,
                 experiment: str, params: Optional[Properties] = None, flush_every: int = 1) -> None:
        from mlmd_exercise.write.metrics import MetricLog

        self.tracker = tracker
        self.id = execution_id
        self.type = type
        self.name = name
        self.experiment = experiment
        self.outputs: Dict[str, ArtifactRecord] = {}  # filled when the run finishes
        self._pending: Dict[str, Pending] = {}
        self._params: Properties = dict(params or {})
        self._log = MetricLog(tracker, execution_id, type, self._params, flush_every)
        self._finished = False

    def __repr__(self) -> str:
        return f"Run(id={self.id}, type={self.type!r}, experiment={self.experiment!r})"

    def log_output(self, role: str, path: PathLike, *, type: str,
                   properties: Optional[Properties] = None) -> None:
        """Declares a file or directory this run produced; it is recorded, with its
        OUTPUT event, when the run finishes. Its content is fingerprinted now, and its
        properties are checked now (a value of the wrong type for the type's property is
        refused here, not at the end of the run)."""
        self._check_open()
        if not isinstance(role, str) or not role:
            raise MlmdExerciseError(f"an output's role must be a non-empty string, not {values.shown(role)}")
        self.tracker.store.backend.check_text("the output role", role)
        if role in self._pending:
            raise MlmdExerciseError(f"run {self.id} already has an output '{role}'")
        self._pending[role] = self.tracker.artifact(path, type=type, properties=properties)

    def log_model(self, path: PathLike, *, name: str, role: str = "model",
                  properties: Optional[Properties] = None) -> None:
        """Declares a saved model this run produced (a `SavedModel` output)."""
        values = dict(_mapping("properties", properties), name=name)
        self.log_output(role, path, type=schema.SAVED_MODEL.name, properties=values)

    def log_metric(self, key: str, value: object, step: Optional[int] = None) -> None:
        """Logs one value of a metric: written to the store before this returns (see
        `log_metrics`)."""
        self.log_metrics({key: value}, step=step)

    def log_metrics(self, metrics: Mapping[str, object], step: Optional[int] = None) -> None:
        """Logs metrics of this run, each a number (numpy's and pandas' numbers too; NaN and
        the infinities are kept). Each value is written, with its step (default: the key's
        previous step + 1, from 0) and the time, into the run's metric history, and as the
        run's value of the metric (the last one logged) onto its execution, in one short
        transaction before this returns (with `flush_every` > 1: that many points at a time).
        When the run finishes, its SavedModel and Metrics outputs get a copy of the values.

        Raises:
            MlmdExerciseError: a name or value is refused (values.py), or is one of the run's
                params; nothing of this call is recorded then.
        """
        self._check_open()
        self._log.log(metrics, step)

    @property
    def metrics(self) -> Dict[str, PropertyValue]:
        """The run's metrics so far: each key's last value."""
        return dict(self._log.last)

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

        A failed or canceled run records no outputs: its files are not trusted. A finish
        that fails (an output the store refuses, say) records the run FAILED with that
        error instead, keeping what was logged, and raises it.

        Returns:
            The stored outputs by role.
        """
        self._check_open()
        try:
            self._log.flush()
            return self._finish(state, error)
        except Exception as failure:
            if state is ExecutionState.COMPLETE or error is None:
                self._record_failure(failure)
            raise

    def _record_failure(self, failure: BaseException) -> None:
        """After a finish that failed: the run FAILED, with that error, no outputs."""
        try:
            self._finish(ExecutionState.FAILED, failure)
        except Exception as again:  # the store itself is gone: the first error says why
            log.warning("could not record run %s as FAILED after its finish failed: %s", self.id, again)
            return
        log.info("run %s is FAILED: its finish failed (%s)", self.id, failure)

    def _finish(self, state: ExecutionState, error: Optional[BaseException]) -> Dict[str, ArtifactRecord]:
        tracker = self.tracker
        backend = tracker.store.backend
        spec = tracker._spec(Kind.EXECUTION, self.type)
        metrics = self._log.last
        with tracker.store.writing():
            [stored] = backend.executions(Query(ids=[self.id]))
            custom: Dict[str, PropertyValue] = {}
            if environment.PACKAGES in stored.custom:  # and those imported since
                custom[environment.PACKAGES] = capture.packages_now(str(stored.custom[environment.PACKAGES]))
            if error is not None:
                custom["error_type"] = type(error).__name__
                # Of the package's own accord: never a refusal that would leave the run RUNNING.
                # What no database stores (a NUL, a lone surrogate) becomes U+FFFD, as what
                # the backend cannot be given does.
                text = "".join("\ufffd" if c == "\x00" or "\ud800" <= c <= "\udfff" else c for c in str(error))
                custom["error_message"] = backend.storable_text(masking.mask(text))
            pending = list(self._pending.items()) if state is ExecutionState.COMPLETE else []
            outputs = [(role, tracker._output(p)) for role, p in pending]
            if metrics:  # which of its properties are metrics, for readers
                custom[METRIC_NAMES] = ",".join(sorted(metrics))
            custom.update(metrics)
            for (_, artifact), (_, p) in zip(outputs, pending):
                if artifact.type in _METRIC_CARRIERS:  # Metrics declares "accuracy"
                    declared, extra = schema.split_values(p.type, metrics)
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
