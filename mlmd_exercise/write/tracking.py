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
  in another (write/run.py).
- Inputs are versioned by content, and an output is made by exactly one run
  (write/artifacts.py).
- One writer at a time per store (the store's lock), so that versions,
  experiments and types are never created twice by concurrent processes.
- Each run has a name; a write whose outcome is unclear (the connection broke
  after the server committed) is checked by that name before it is retried.
"""

from __future__ import annotations

import logging
import os
import uuid
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from mlmd_exercise import environment, masking, schema, values
from mlmd_exercise.content import fingerprint, is_ours
from mlmd_exercise.errors import MlmdExerciseError, NotFoundError
from mlmd_exercise.records import (DEFAULT_EXPERIMENT, RUN_NAME, TAG_PREFIX, ArtifactRecord, ExecutionState, Kind,
                                   PropertyValue)
from mlmd_exercise.store import Store, open_store
from mlmd_exercise.store.backend import Backend, ExecutionWrite, NewArtifact, Query
from mlmd_exercise.write import capture
from mlmd_exercise.write.artifacts import Pending, file_uri, input_artifact
from mlmd_exercise.write.metrics import check_flush_every
from mlmd_exercise.write.run import Run, RunListener, event, retrying, tag_values

__all__ = ["Tracker", "OpenLineage"]

log = logging.getLogger(__name__)
PathLike = Union[str, os.PathLike]
Properties = Mapping[str, PropertyValue]
# Tracker(openlineage=...): an emitter, an http(s):// URL, a JSON-lines file, False for none,
# None for what the environment asks ($OPENLINEAGE_URL, $MLMD_OPENLINEAGE_FILE).
OpenLineage = Union[RunListener, str, os.PathLike, bool, None]


def _listener(given: OpenLineage) -> Optional[RunListener]:
    """The OpenLineage emitter a Tracker tells of its runs (integrations/openlineage.py, imported
    only where emission is on: it imports openlineage-python)."""
    if given is False:
        return None
    if given is None or given is True:
        if not (os.environ.get("OPENLINEAGE_URL") or os.environ.get("MLMD_OPENLINEAGE_FILE")):
            if given is True:
                raise MlmdExerciseError("openlineage=True needs $OPENLINEAGE_URL or $MLMD_OPENLINEAGE_FILE: "
                                        "or give a URL or a file")
            return None
        from mlmd_exercise.integrations.openlineage import emitter_from_environment

        try:
            return emitter_from_environment()
        except MlmdExerciseError as e:  # asked for by the environment: the run goes on without
            if given is True:
                raise
            log.warning("OpenLineage events are not sent: %s", e)
            return None
    if isinstance(given, (str, os.PathLike)):
        from mlmd_exercise.integrations.openlineage import Emitter

        text = os.fspath(given)
        return Emitter(url=text) if text.startswith(("http://", "https://")) else Emitter(file=text)
    if not all(callable(getattr(given, m, None)) for m in ("started", "finished", "recorded")):
        raise MlmdExerciseError("openlineage must be an emitter (mx.OpenLineageEmitter), an http(s):// URL, "
                                f"a file path, True or False, not {values.shown(given)}")
    return given


def _param_name(key: object) -> str:
    """A param's name, checked (values.check_name), and none of the keys the run's environment
    is recorded under (`host`, `pid`, `env.*`), which would overwrite it."""
    name = values.check_name(key, values.Role.PARAM)
    if environment.is_environment_key(name):
        raise MlmdExerciseError(f"'{name}' names what this package records about where the run ran "
                                f"(host, pid, pid_start, env.*): give the param another name")
    if name == RUN_NAME or name.startswith(TAG_PREFIX):
        raise MlmdExerciseError(f"'{name}' names where a run's name or tags are kept ({RUN_NAME}, "
                                f"{TAG_PREFIX}*): give the param another name, or use name= or tags=")
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
    for role, given in values.check_mapping("inputs", inputs).items():
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


def _one_role_each(inputs: Sequence[Tuple[str, ArtifactRecord]]) -> None:
    """Refuses a stored artifact given as two of a run's inputs: MLMD keeps one event per
    artifact, execution and kind (its Event table's UNIQUE key), so the second would be refused
    by the store, after the run's name was taken.

    Raises:
        MlmdExerciseError: naming the artifact and both roles.
    """
    roles: Dict[int, str] = {}
    for role, artifact in inputs:
        if artifact.id in roles:
            raise MlmdExerciseError(
                f"artifact {artifact.id} ({values.shown(artifact.uri)}) is given as input '{roles[artifact.id]}' and "
                f"as input '{role}': a run has one input event per artifact in an MLMD store; give it under one role")
        roles[artifact.id] = role


def _check_run(backend: Backend, type: str, experiment: str, name: Optional[str], params: Properties,
               inputs: Mapping[str, object]) -> None:
    """Refuses at the call, before anything is written, a string the backend cannot store."""
    for where, text in (("the execution type name", type), ("the experiment name", experiment),
                        ("the run name", name)):
        backend.check_text(where, text)
        values.check_node_name(where, text)
    for role in inputs:
        values.check_node_name("the input role", role)
    backend.check_texts("param", params)
    backend.check_texts("input", {role: None for role in inputs})


class Tracker:
    """Records a workflow in an MLMD store.

    Args:
        store: an open `Store`, or the address of one (created if missing):
            a file path, `sqlite:///path`, `postgresql://user:pw@host:port/db`
            or `mysql://user:pw@host:port/db`.
        experiment: the experiment that runs belong to unless a call names another.
        openlineage: where each run is also sent as OpenLineage events (START when it starts,
            COMPLETE, FAIL or ABORT when it ends; docs/openlineage.md): an http(s):// URL
            (POSTed to URL/api/v1/lineage), a JSON-lines file, an `mx.OpenLineageEmitter`, or
            False for nowhere. Default: $OPENLINEAGE_URL and/or $MLMD_OPENLINEAGE_FILE where set,
            else nowhere. A failure to send is a logged warning, never the run's.
    """

    def __init__(self, store: Union[Store, PathLike, None] = None, *,
                 experiment: str = DEFAULT_EXPERIMENT, openlineage: OpenLineage = None) -> None:
        self.openlineage = _listener(openlineage)  # refused before a store is opened or made
        self.store = store if isinstance(store, Store) else open_store(store, create=True)
        self.store.backend.check_text("the experiment name", experiment)  # refused before anything is written
        values.check_node_name("the experiment name", experiment)
        self.experiment = experiment
        self.catalog = self.store.catalog
        self.catalog.register(schema.ALL_TYPES)

    def __repr__(self) -> str:
        return f"Tracker({str(self.store)!r}, experiment={self.experiment!r})"

    # -- artifacts ---------------------------------------------------------------

    def artifact(self, path: PathLike, *, type: str = schema.DATASET.name,
                 properties: Optional[Properties] = None) -> Pending:
        """Describes and fingerprints a file or directory, to record as a run's input.

        Raises:
            NotFoundError: nothing exists at `path`.
        """
        if not isinstance(path, (str, os.PathLike)):
            raise MlmdExerciseError(f"path must be a file or directory path, not {values.shown(path)}")
        return self._pending(file_uri(path), lambda: fingerprint(path), type, properties)

    def described(self, uri: str, fingerprint: str, *, type: str = schema.DATASET.name,
                  properties: Optional[Properties] = None) -> Pending:
        """An artifact described by its URI and its fingerprint, to record as a run's input:
        content that is no file here (data in a process's memory), or a file fingerprinted
        earlier than now (when a program read it). Versioned by content as `artifact` is.

        Args:
            uri: where the content is, or was (`file://...` for a file `verify` can check).
            fingerprint: "sha256:<64 hex digits>", as `mx.fingerprint` gives for a file.

        Raises:
            MlmdExerciseError: the URI is not a non-empty string, or the fingerprint not one
                this package writes.
        """
        if not isinstance(uri, str) or not uri:
            raise MlmdExerciseError(f"uri must be a non-empty string, not {values.shown(uri)}")
        if not is_ours(fingerprint):
            raise MlmdExerciseError(f"fingerprint must be 'sha256:' and 64 hex digits, not {values.shown(fingerprint)}")
        self.store.backend.check_text("the URI", uri)
        return self._pending(uri, lambda: fingerprint, type, properties)

    def _pending(self, uri: str, digest: Callable[[], str], type: str,
                 properties: Optional[Properties]) -> Pending:
        given = values.check_mapping("properties", properties)
        self.store.backend.check_text("the type name", type)  # refused at the call, if the backend must
        self.store.backend.check_texts("property", given)
        spec = self.catalog.spec(Kind.ARTIFACT, type)
        declared, custom = schema.split_values(spec, masking.mask_values(given))  # checked now
        return Pending(spec, uri, digest(), {**custom, **declared})

    def dataset(self, path: PathLike, *, split: str = "train", day: Optional[int] = None,
                properties: Optional[Properties] = None) -> Pending:
        """A `DataSet` to record as a run's input (see `artifact`)."""
        values = dict(properties or {}, split=split)
        if day is not None:
            values["day"] = day
        return self.artifact(path, type=schema.DATASET.name, properties=values)

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
            artifact = input_artifact(self.store, pending)
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
        tags: Optional[Mapping[str, str]] = None,
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
            name: the run's name, a label for people: running a script again with the
                same name records a new run (`show execution NAME` shows the newest).
                MLMD's execution name is a new UUID either way, by which a retry finds a
                run whose recording was committed but not acknowledged.
            tags: text by key, e.g. {"team": "vision"}: `ls --tag team=vision` finds them.
            flush_every: metrics logged are written at once (1), or this many points at a
                time, in one transaction: a kill then loses at most `flush_every - 1` of them.

        Raises:
            NotFoundError: a stored input artifact is not in the store.
            MlmdExerciseError: a param, input or value is refused (values.py), naming it.
        """
        given = {_param_name(k): values.normalize(k, v, values.Role.PARAM)
                 for k, v in values.check_mapping("params", params).items()}
        checked_inputs = _inputs_given(inputs)
        tagged = tag_values(self.store.backend, tags)
        check_flush_every(flush_every)  # all checked before anything is written
        _check_run(self.store.backend, type, experiment or self.experiment, name, given, checked_inputs)
        spec = self.catalog.spec(Kind.EXECUTION, type)
        key = uuid.uuid4().hex  # MLMD's name for it: unique, whatever name people call it by
        # How to reproduce it: host, pid, code, command, packages (see `environment`).
        # Secrets in params are stored masked (see `masking`); the environment masks its own.
        given = masking.mask_values(given)
        custom = {k: schema.storable(k, v) for k, v in {**given, **capture.capture()}.items()}
        custom[environment.INPUTS] = len(checked_inputs)  # what `check` holds the run's input events to
        custom.update(tagged)
        if name:
            custom[RUN_NAME] = name
        execution = ExecutionWrite(self.catalog.spec_id(spec), spec.name, name=key, state=ExecutionState.RUNNING,
                                   properties=schema.state_mirror(spec.properties, ExecutionState.RUNNING), custom=custom)
        experiment = experiment or self.experiment
        backend = self.store.backend
        with self.store.writing():
            context = self.catalog.experiment(experiment)
            new, stored = self._inputs(checked_inputs)

            def write() -> int:
                execution_id, _, context_id = backend.put_execution(
                    execution, [(a, event("INPUT", role)) for role, a in new],
                    [(a.id, event("INPUT", role)) for role, a in stored], context)
                self.catalog.remember_experiment(experiment, context_id)
                return execution_id

            def recorded() -> Optional[int]:
                found = backend.execution_by_name(spec.name, key)
                return found.id if found is not None else None

            execution_id = retrying(write, recorded, f"starting run {name or key}")
        if self.openlineage is not None:  # after the write, outside the writers' lock
            self.openlineage.started(self.store, execution_id)
        return Run(self, execution_id, spec.name, name or key, experiment, given, flush_every)

    def _inputs(self, inputs: Mapping[str, Union[ArtifactRecord, Pending]]
                ) -> Tuple[List[Tuple[str, NewArtifact]], List[Tuple[str, ArtifactRecord]]]:
        """Splits inputs by role into new artifacts (recorded with the run) and stored ones."""
        new: List[Tuple[str, NewArtifact]] = []
        stored: List[Tuple[str, ArtifactRecord]] = []
        ids = sorted({a.id for a in inputs.values() if isinstance(a, ArtifactRecord)})
        found = {a.id: a for a in self.store.backend.artifacts(Query(ids=ids))} if ids else {}
        for role, given in inputs.items():
            if isinstance(given, Pending):
                artifact = input_artifact(self.store, given)
                if isinstance(artifact, NewArtifact):
                    new.append((role, artifact))
                else:
                    stored.append((role, artifact))
            elif given.id in found:
                stored.append((role, found[given.id]))
            else:
                raise NotFoundError(f"no artifact with id {given.id} in {self.store}")
        _one_role_each(stored)
        return new, stored
