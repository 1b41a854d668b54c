"""A run as it happens: a RUNNING execution whose metrics are written as they are logged
(write/metrics.py) and whose outputs, OUTPUT events and final state are written in one
transaction when it finishes (`Tracker.execution` starts it, with its inputs).

A write whose outcome is unclear (the connection broke after the server committed) is checked
by the run's name before it is tried again (`retrying`).
"""

from __future__ import annotations

import logging
import os
from types import TracebackType
from typing import Callable, Dict, List, Mapping, Optional, Protocol, Sequence, Type, TypeVar, Union

from mlmd_exercise import environment, masking, schema, values
from mlmd_exercise.errors import MlmdExerciseError, NotFoundError, UnclearWriteError
from mlmd_exercise.records import (METRIC_NAMES, TAG_PREFIX, ArtifactRecord, ExecutionRecord, ExecutionState, Kind,
                                   PropertyValue)
from mlmd_exercise.store import Store
from mlmd_exercise.store.backend import Backend, ExecutionWrite, NewEvent, Query
from mlmd_exercise.store.catalog import Catalog
from mlmd_exercise.write import capture
from mlmd_exercise.write.artifacts import Pending, output_artifact

__all__ = ["Run", "RunListener", "event", "retrying", "tag_values"]

log = logging.getLogger(__name__)
PathLike = Union[str, os.PathLike]
Properties = Mapping[str, PropertyValue]
T = TypeVar("T")
_ATTEMPTS = 3
# Output types that carry a copy of their run's metrics.
_METRIC_CARRIERS = (schema.SAVED_MODEL.name, schema.METRICS.name)


def event(kind: str, role: str) -> NewEvent:
    """An event of `kind` ("INPUT", "OUTPUT") whose path is the role."""
    return NewEvent(kind, (role,))


def retrying(write: Callable[[], T], recorded: Callable[[], Optional[T]], what: str) -> T:
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


def tag_values(backend: Backend, tags: Optional[Mapping]) -> Dict[str, str]:
    """A run's tags as stored (`tag.<key>` -> text), checked: each key a name as a param's is,
    each value text; masked as params are (`tag.api_key` is stored as ***).

    Raises:
        MlmdExerciseError: naming the bad key or value.
    """
    stored: Dict[str, str] = {}
    for key, value in values.check_mapping("tags", tags).items():
        if not isinstance(key, str) or not key.strip():
            raise MlmdExerciseError(f"a tag's name must be text, not {values.shown(key)}")
        name = values.check_name(key, values.Role.PROPERTY, reserved=False)
        if not isinstance(value, str):
            raise MlmdExerciseError(f"tag '{name}' must be text, not {values.shown(value)}")
        values.check_node_name(f"tag '{name}'", value)
        backend.check_text(f"tag '{name}'", value)
        stored[TAG_PREFIX + name] = value
    return masking.mask_values(stored)


class RunListener(Protocol):
    """Told of runs as they are recorded, after each write (the OpenLineage emitter,
    integrations/openlineage.py): it must never raise into the run."""

    def started(self, store: Store, execution_id: int) -> None:
        ...

    def finished(self, store: Store, execution_id: int) -> None:
        ...

    def recorded(self, store: Store, execution_ids: Sequence[int]) -> None:
        ...


class Recorder(Protocol):
    """What a run needs of the Tracker that started it (tracking.py), named here so that a
    run's module never imports the Tracker's: its store, its catalog, files described, and
    who is told when the run ends."""

    store: Store
    catalog: Catalog
    openlineage: Optional[RunListener]

    def artifact(self, path: PathLike, *, type: str = ..., properties: Optional[Properties] = None) -> Pending:
        ...


class Run:
    """A RUNNING execution: its metrics are written as they are logged, its outputs when it
    finishes."""

    def __init__(self, tracker: Recorder, execution_id: int, type: str, name: str,
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
        values.check_node_name("the output role", role)
        if role in self._pending:
            raise MlmdExerciseError(f"run {self.id} already has an output '{role}'")
        self._pending[role] = self.tracker.artifact(path, type=type, properties=properties)

    def log_model(self, path: PathLike, *, name: str, role: str = "model",
                  properties: Optional[Properties] = None) -> None:
        """Declares a saved model this run produced (a `SavedModel` output)."""
        given = dict(values.check_mapping("properties", properties), name=name)
        self.log_output(role, path, type=schema.SAVED_MODEL.name, properties=given)

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

    def add_metrics(self, metrics: Mapping[str, object], step: Optional[int] = None) -> None:
        """Logs metrics as `log_metrics` does, also once the run has finished: metrics computed
        later on what it made (a model's score on other data, as autolog records them). Each
        is written before this returns, into the run's history and onto its execution; the
        outputs keep the copies they got when it finished.

        Raises:
            MlmdExerciseError: as `log_metrics`.
        """
        self._log.log(metrics, step)
        self._log.flush()

    @property
    def metrics(self) -> Dict[str, PropertyValue]:
        """The run's metrics so far: each key's last value."""
        return dict(self._log.last)

    @property
    def inputs(self) -> Dict[str, ArtifactRecord]:
        """The run's inputs by role, as stored (read from the store when asked)."""
        from mlmd_exercise.read.lineage import execution_lineage

        return dict(execution_lineage(self.tracker.store, self.id).inputs)

    def tag(self, key: str, value: str) -> None:
        """Sets the tag `key` to `value` (text) on the run, at once: while it runs or after
        it finished (a model reviewed later, say); a tag set again takes the new value.

        Raises:
            MlmdExerciseError: a bad key or value, naming it; nothing is written then.
        """
        tagged = tag_values(self.tracker.store.backend, {key: value})
        found = self.tracker.store.backend.executions(Query(ids=[self.id]))
        if not found:
            raise NotFoundError(f"run {self.id} is no longer in {self.tracker.store}: it was removed (a prune?)")
        [execution] = found
        change = ExecutionWrite(execution.type_id, self.type, id=self.id, custom=dict(tagged))
        with self.tracker.store.writing():
            self.tracker.store.backend.update_executions([change])

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
        spec = tracker.catalog.spec(Kind.EXECUTION, self.type)
        metrics = self._log.last
        with tracker.store.writing():
            now = backend.executions(Query(ids=[self.id]))
            if not now:  # pruned or removed while it ran: nothing to finish, nothing to attach outputs to
                raise NotFoundError(f"run {self.id} is no longer in {tracker.store}: it was removed while it ran "
                                    "(a prune, or another program); its outputs were not recorded")
            [stored] = now
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
            outputs = [(role, output_artifact(tracker.store, p)) for role, p in pending]
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
                _, ids, _ = backend.put_execution(change, [(a, event("OUTPUT", role)) for role, a in outputs],
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

            ids = retrying(write, recorded, f"finishing run {self.name}")
            found = {a.id: a for a in backend.artifacts(Query(ids=ids))} if ids else {}
        self.outputs = {role: found[i] for (role, _), i in zip(outputs, ids)}
        self._finished = True
        if tracker.openlineage is not None:  # after the write: a listener never holds the run up
            tracker.openlineage.finished(tracker.store, self.id)
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
