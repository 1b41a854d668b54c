"""Recording many finished runs at once: imports and backfills.

    runs = [RunSpec(inputs={"examples": ArtifactSpec("file:///d/1.csv")},
                    outputs={"model": ArtifactSpec("file:///m/1.joblib", type="SavedModel")})
            for ...]
    record_runs(tracker, runs)

Each batch is one `put_lineage_subgraph` call (one transaction) holding its
runs, their new artifacts, the events between them and their experiment. An
ArtifactSpec object used as one run's output and another's input is one
artifact. Each output is a new artifact, made by its run alone; versions
continue those already in the store at each URI, and an input spec with a
fingerprint equal to the newest stored version's is that artifact.
Nothing is read from disk: the files of a backfill may be long gone.
A run may bring its metrics' whole histories (`RunSpec.metrics`): each key's points go into
its metric history (history.py) just after its batch, and the last one is the run's summary.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Hashable, Iterable, Iterator, List, Mapping, Optional, Sequence, Set, Tuple, Union

from mlmd_exercise import masking, schema, values
from mlmd_exercise.content import FINGERPRINT
from mlmd_exercise.errors import MlmdExerciseError
from mlmd_exercise.history import Point
from mlmd_exercise.records import (CREATED_MS, ENDED_MS, METRIC_NAMES, STARTED_MS, ArtifactRecord, ExecutionState, Kind,
                                   PropertyValue)
from mlmd_exercise.store.backend import ExecutionWrite, NewArtifact, NewEvent, Query
from mlmd_exercise.write.artifacts import new_artifact
from mlmd_exercise.write.metrics import record_histories
from mlmd_exercise.write.tracking import Tracker

__all__ = ["ArtifactSpec", "RunSpec", "BulkResult", "record_runs", "read_runs", "checked_ms", "check_run"]



def _masked(values: Mapping[str, PropertyValue]) -> Mapping[str, PropertyValue]:
    return masking.mask_values(values) if isinstance(values, Mapping) else values  # else refused later


@dataclass(frozen=True, eq=False)
class ArtifactSpec:
    """An artifact of an imported run, by URI (no file is read)."""

    uri: str
    type: str = schema.DATASET.name
    properties: Mapping[str, PropertyValue] = field(default_factory=dict)
    fingerprint: str = ""  # "sha256:..." if known: then the same content is not stored twice
    created_ms: Optional[int] = None  # when it was made, if known (ms since the epoch)

    def __post_init__(self) -> None:  # secrets are recorded masked (see `masking`)
        object.__setattr__(self, "uri", masking.mask(self.uri, whole=True))
        object.__setattr__(self, "properties", _masked(self.properties))


@dataclass(frozen=True, eq=False)
class RunSpec:
    """A finished run to import: its artifacts by role, state, params and experiment."""

    type: str = schema.TRAINER.name
    inputs: Mapping[str, Union[ArtifactSpec, ArtifactRecord]] = field(default_factory=dict)
    outputs: Mapping[str, ArtifactSpec] = field(default_factory=dict)
    state: str = ExecutionState.COMPLETE.value
    params: Mapping[str, PropertyValue] = field(default_factory=dict)
    experiment: Optional[str] = None
    name: Optional[str] = None  # unique per type; a UUID by default
    started_ms: Optional[int] = None  # when it ran, if known (ms since the epoch)
    ended_ms: Optional[int] = None
    # Other custom properties, kept under their own names: what is not a param (a run's
    # name and tags, RUN_NAME and "tag.<key>", its origin, its environment's env.*).
    custom: Mapping[str, PropertyValue] = field(default_factory=dict)
    # Each metric's whole history, in order: the last point is the run's summary value.
    metrics: Mapping[str, Sequence[Point]] = field(default_factory=dict)

    def __post_init__(self) -> None:  # secrets are recorded masked (see `masking`)
        object.__setattr__(self, "params", _masked(self.params))
        object.__setattr__(self, "custom", _masked(self.custom))
        for key in ("experiment", "name"):
            if getattr(self, key):
                object.__setattr__(self, key, masking.mask(getattr(self, key)))


def _fingerprint(artifact: ArtifactRecord) -> str:
    """The fingerprint this package wrote on an artifact ("sha256:..."), else ""."""
    value = artifact.custom.get(FINGERPRINT)
    return value if isinstance(value, str) and value.startswith("sha256:") else ""


def _batches(runs: Iterable[RunSpec], size: int) -> Iterator[List[RunSpec]]:
    batch: List[RunSpec] = []
    for run in runs:
        batch.append(run)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


class _Importer:
    def __init__(self, tracker: Tracker) -> None:
        self.tracker = tracker
        self.backend = tracker.store.backend
        self.catalog = tracker.store.catalog
        self.stored: Dict[Hashable, int] = {}  # artifact key -> id, across batches
        self.newest: Dict[Tuple[int, str], Tuple[int, str]] = {}  # (type id, uri) -> (version, fp)
        self.produced: Set[ArtifactSpec] = set()  # specs a run outputs (kept alive here)
        # uri -> the key and fingerprint of the newest artifact there, of any type: what an
        # input naming that URI links to, unless its fingerprint says the content differs.
        self.at_uri: Dict[str, Tuple[Hashable, str]] = {}
        self.recorded = self.skipped = self.points = 0
        self.new_ids: List[int] = []  # of the runs the batch being written recorded
        # The catalog's answers, asked once per type rather than once per artifact and run.
        self.types: Dict[Tuple[Kind, str], Tuple[schema.TypeSpec, int]] = {}
        self.specs_by_id: Dict[int, Optional[schema.TypeSpec]] = {}

    def _type(self, kind: Kind, name: str) -> Tuple[schema.TypeSpec, int]:
        """The catalog's `writable_type`, remembered for this import."""
        found = self.types.get((kind, name))
        if found is None:
            found = self.types[(kind, name)] = self.catalog.writable_type(kind, name)
        return found

    @staticmethod
    def _key(spec: ArtifactSpec, type_id: int) -> Hashable:
        # Without a fingerprint, the spec object itself (compared by identity): the
        # dicts keep it alive, so its identity is never reused by another object.
        return (type_id, spec.uri, spec.fingerprint) if spec.fingerprint else spec

    def _remember(self, type_id: int, uri: str, stored: List[ArtifactRecord]) -> None:
        if not stored:  # a URI new to the store: most of an import's
            self.newest[(type_id, uri)] = (0, "")
            return
        if uri not in self.at_uri:
            last = max(stored, key=lambda a: a.id)
            self.stored.setdefault(("at", last.id), last.id)
            self.at_uri[uri] = (("at", last.id), _fingerprint(last))
        if type_id not in self.specs_by_id:
            self.specs_by_id[type_id] = self.catalog.spec_by_id(type_id)
        spec = self.specs_by_id[type_id]
        latest = schema.newest((a for a in stored if a.type_id == type_id), spec)
        if latest is None:
            self.newest[(type_id, uri)] = (0, "")
            return
        digest = str(latest.custom.get(FINGERPRINT, ""))
        self.newest[(type_id, uri)] = (schema.version_of(latest, spec), digest)
        if digest:
            self.stored.setdefault((type_id, uri, digest), latest.id)

    def prefetch(self, pairs: Iterable[Tuple[int, str]]) -> None:
        """Looks up the newest stored version of many URIs in a few queries."""
        todo = sorted({p for p in pairs if p not in self.newest})
        found: Dict[str, List[ArtifactRecord]] = {}
        if todo:
            for artifact in self.backend.artifacts(Query(uris=sorted({uri for _, uri in todo}))):
                found.setdefault(artifact.uri, []).append(artifact)
        for type_id, uri in todo:
            self._remember(type_id, uri, found.get(uri, []))

    def _newest(self, type_id: int, uri: str) -> Tuple[int, str]:
        if (type_id, uri) not in self.newest:
            self.prefetch([(type_id, uri)])
        return self.newest[(type_id, uri)]

    def _input_key(self, spec: ArtifactSpec) -> Hashable:
        """The key of the artifact an input names. An input at a URI the store (or this
        import) already has is the newest artifact there, unless both have fingerprints and
        they differ; else a new artifact, keyed by its fingerprint or the spec itself."""
        _, type_id = self._type(Kind.ARTIFACT, spec.type)
        key = self._key(spec, type_id)
        self._newest(type_id, spec.uri)  # looks the URI up
        if key in self.stored or spec.uri not in self.at_uri:
            return key
        there, digest = self.at_uri[spec.uri]
        return key if spec.fingerprint and digest and digest != spec.fingerprint else there

    def _new(self, spec: ArtifactSpec, key: Hashable) -> NewArtifact:
        """A new artifact at the next version of its URI, known by `key` from now on."""
        type_spec, type_id = self._type(Kind.ARTIFACT, spec.type)
        version, _ = self._newest(type_id, spec.uri)
        values = dict(spec.properties, version=version + 1)
        if spec.fingerprint:
            values[FINGERPRINT] = spec.fingerprint
        if spec.created_ms is not None:
            values[CREATED_MS] = checked_ms(spec.created_ms, f"created_ms of artifact '{spec.uri}'")
        self.newest[(type_id, spec.uri)] = (version + 1, spec.fingerprint)
        self.at_uri[spec.uri] = (key, spec.fingerprint)
        return new_artifact(type_spec, type_id, spec.uri, values)

    def _produce(self, spec: ArtifactSpec) -> None:
        """Notes that a run outputs `spec`: an artifact is made by one run only."""
        if spec in self.produced:
            raise MlmdExerciseError(
                f"artifact '{spec.uri}' is given as the output of two runs: each output is made "
                "by one run (give each run's output its own \"ref\")")
        self.produced.add(spec)

    @staticmethod
    def _strings(run: RunSpec, experiment: str, names: List[str], texts: List[object]) -> None:
        """Adds the names of `run` (types, experiment, roles, its own name) and its other texts."""
        names += (run.type, run.experiment or experiment, *run.inputs, *run.outputs)
        if run.name is not None:
            names.append(run.name)
        for side in (run.inputs, run.outputs):
            for given in side.values():
                if isinstance(given, ArtifactSpec):
                    names.append(given.type)
                    texts.append(given.uri)
                    if given.properties:
                        texts += given.properties
                        texts += [v for v in given.properties.values() if isinstance(v, str)]
        for mapping in (run.params, run.custom, run.metrics):
            if mapping:
                texts += mapping
                texts += [v for v in mapping.values() if isinstance(v, str)]

    def _plain(self, runs: Sequence[RunSpec], experiment: str) -> bool:
        """Whether every string of `runs` is one that no check refuses (short ASCII names, no
        NUL, no backslash), told at once, so that `_check` names each string only where one
        may be refused: most of a bulk import's runs (a whole batch's in one test)."""
        names: List[str] = []
        texts: List[object] = []
        for run in runs:
            self._strings(run, experiment, names, texts)
        return (self.backend.plain_texts(names) and max(map(len, names), default=0) <= values.MAX_NAME
                and self.backend.plain_texts(texts))

    def _check(self, run: RunSpec, experiment: str, plain: bool = False) -> None:
        """Refuses a bad string or metric name of `run` (`plain`: its strings are known plain)."""
        if not (plain or self._plain([run], experiment)):
            self._check_each(run, experiment)
        for key in run.metrics:
            values.check_name(key, values.Role.METRIC)
            if key in run.params or key in run.custom:
                raise MlmdExerciseError(f"run '{run.name}' has a metric '{key}' and a param or property of that "
                                        "name: give the metric another name")

    def _check_each(self, run: RunSpec, experiment: str) -> None:
        """Every string of `run` checked by the backend and the name rules, naming the first refused."""
        texts = {"execution type name": run.type, "experiment name": run.experiment or experiment, "run name": run.name}
        for role, given in (*run.inputs.items(), *run.outputs.items()):
            texts[f"role '{role}'"] = role
            if isinstance(given, ArtifactSpec):
                texts.update({f"URI of artifact '{role}'": given.uri, f"type name of artifact '{role}'": given.type})
                self.backend.check_texts(f"property of artifact '{role}'", given.properties)
        for where, text in texts.items():
            self.backend.check_text(f"the {where}", text)
            if not where.startswith("URI"):
                values.check_node_name(f"the {where}", text)
        self.backend.check_texts("param", run.params)
        self.backend.check_texts("custom property", run.custom)
        self.backend.check_texts("metric", run.metrics)

    def batch(self, runs: List[RunSpec], experiment: str) -> None:
        executions: List[ExecutionWrite] = []
        artifacts: List[NewArtifact] = []
        index: Dict[Hashable, int] = {}  # artifact key -> index in `artifacts`
        edges: List[NewEvent] = []

        linked: Dict[Tuple[int, str, Hashable], str] = {}  # (run, kind, artifact) -> its role

        def link(position: int, role: str, given, kind: str) -> None:
            at: Optional[int] = None  # the index of a new artifact of this batch, else
            artifact_id = 0  # a stored one's id
            if isinstance(given, ArtifactRecord):
                artifact_id = given.id
            else:
                if kind == "OUTPUT":  # always a new artifact: the spec itself is its key
                    self._produce(given)
                    key: Hashable = given
                else:
                    key = self._input_key(given)
                at = index.get(key)  # made or read earlier in this batch
                if at is None:
                    artifact_id = self.stored.get(key, 0)
                    if not artifact_id:
                        at = index[key] = len(artifacts)
                        artifacts.append(self._new(given, key))
            # MLMD keeps one event per artifact, execution and kind (the Event table's UNIQUE
            # key): the same artifact under two of a run's roles is refused before the batch
            # writes, naming both, where the store would refuse the whole batch unclearly.
            first = linked.setdefault((position, kind, ("id", artifact_id) if at is None else ("index", at)), role)
            if first != role:
                raise MlmdExerciseError(
                    f"{_run_named(runs[position].name)} is given {values.shown(given.uri)} as {kind.lower()} "
                    f"'{first}' and as {kind.lower()} '{role}': a run has one {kind.lower()} event per artifact "
                    "in an MLMD store; give it under one role")
            edges.append(NewEvent(kind, (role,), artifact_id=artifact_id, artifact_index=at, execution_index=position))

        plain = self._plain(runs, experiment)  # most batches: no run's strings need naming one by one
        for run in runs:  # a string the backend cannot store: refused before this batch writes anything
            self._check(run, experiment, plain)
        runs = self._skip_recorded(runs)
        self.prefetch(
            (self._type(Kind.ARTIFACT, a.type)[1], a.uri)
            for run in runs for a in (*run.inputs.values(), *run.outputs.values())
            if isinstance(a, ArtifactSpec))
        states = {s.value: s for s in ExecutionState}
        mirrors: Dict[Tuple[int, ExecutionState], Dict[str, PropertyValue]] = {}  # a type's state property
        storable = schema.storable
        for run in runs:
            spec, type_id = self._type(Kind.EXECUTION, run.type)
            run_name = run.name or uuid.uuid4().hex
            state = states.get(run.state) if isinstance(run.state, str) else None
            if state is None:
                try:
                    state = ExecutionState(run.state)
                except ValueError:
                    raise MlmdExerciseError(f"unknown state '{run.state}' of run '{run_name}'") from None
            merged = {**run.custom, **run.params} if run.custom else run.params
            custom = {key: storable(key, value) for key, value in merged.items()}
            if run.metrics:
                last = {key: points[-1].value for key, points in run.metrics.items() if points}
                custom.update({key: storable(key, value) for key, value in last.items()})
                if last:
                    custom[METRIC_NAMES] = ",".join(sorted(last))
            for time_key, ms in ((STARTED_MS, run.started_ms), (ENDED_MS, run.ended_ms)):
                if ms is not None:
                    custom[time_key] = schema.storable(time_key, checked_ms(ms, f"{time_key} of run '{run_name}'"))
            mirror = mirrors.get((type_id, state))
            if mirror is None:
                mirror = mirrors[(type_id, state)] = schema.state_mirror(spec.properties, state)
            position = len(executions)
            executions.append(ExecutionWrite(type_id, spec.name, name=run_name, state=state,
                                             properties=dict(mirror),
                                             custom=custom))
            for role, given in run.inputs.items():
                link(position, role, given, "INPUT")
            for role, given in run.outputs.items():
                link(position, role, given, "OUTPUT")

        context = self.catalog.experiment(experiment)
        if not executions:
            return
        execution_ids, artifact_ids, context_id = self.backend.put_lineage(executions, artifacts, edges, context)
        self.catalog.remember_experiment(experiment, context_id)
        for key, position in index.items():
            self.stored[key] = artifact_ids[position]
        self.recorded += len(executions)
        self.new_ids.extend(execution_ids)
        # The batch's histories just after its runs, in one more transaction: a kill between
        # leaves runs with their summaries and no history yet, never a history without its run.
        histories = [(execution_id, key, points) for run, execution_id in zip(runs, execution_ids)
                     for key, points in run.metrics.items() if points]
        if histories:
            first = executions[0]
            self.points += record_histories(self.tracker.store, histories,
                                            ExecutionWrite(first.type_id, first.type, id=execution_ids[0]))

    def _skip_recorded(self, runs: List[RunSpec]) -> List[RunSpec]:
        """The runs not in the store yet. A named run already recorded (an import run
        again after it broke off) is skipped; its artifacts stand for its specs."""
        by_type: Dict[int, List[RunSpec]] = {}
        for run in runs:
            if run.name:
                by_type.setdefault(self._type(Kind.EXECUTION, run.type)[1],
                                   []).append(run)
        recorded: Dict[int, RunSpec] = {}  # execution id -> its spec
        for type_id, named in by_type.items():
            found = {e.name: e.id for e in self.backend.executions(
                Query(type_id=type_id, names=[r.name for r in named if r.name]))}
            for run in named:
                if run.name in found:
                    recorded[found[run.name]] = run
        if not recorded:
            return runs
        for event in self.backend.events_by_executions(sorted(recorded)):
            run = recorded[event.execution_id]
            side = run.inputs if event.type == "INPUT" else run.outputs
            spec = side.get(event.role)
            if isinstance(spec, ArtifactSpec):
                type_id = self._type(Kind.ARTIFACT, spec.type)[1]
                output = event.type == "OUTPUT"
                if output:
                    self._produce(spec)
                self.stored[spec if output else self._key(spec, type_id)] = event.artifact_id
        self.skipped += len(recorded)
        skipped = {id(r) for r in recorded.values()}
        return [r for r in runs if id(r) not in skipped]


def check_run(tracker: Tracker, run: RunSpec) -> None:
    """Refuses a run whose names or values `record_runs` would refuse, as it would, before
    anything is written: an import that leaves such a run out (and counts it) asks first.

    Raises:
        MlmdExerciseError: naming the bad name or value.
    """
    _Importer(tracker)._check(run, run.experiment or tracker.experiment)
    for key, ms in (("started", run.started_ms), ("ended", run.ended_ms)):
        if ms is not None:
            checked_ms(ms, f"the {key} time of run '{run.name}'")


@dataclass(frozen=True)
class BulkResult:
    recorded: int  # runs written
    skipped: int  # named runs that were already in the store
    points: int = 0  # metric history points written


def record_runs(
    tracker: Tracker,
    runs: Iterable[RunSpec],
    *,
    batch_size: int = 1000,
    progress: Optional[Callable[[int], None]] = None,
) -> BulkResult:
    """Records many finished runs, `batch_size` runs to a transaction.

    Running the same import again records nothing twice: a run whose name is
    already in the store (for its type) is skipped, and stands for its artifacts.

    Args:
        tracker: where to record; runs without an experiment go to the tracker's.
        runs: the runs; an iterable, so that a large import need not fit in memory.
        batch_size: runs per transaction.
        progress: called with the number of runs handled so far after each batch.

    Returns:
        How many runs were recorded, and how many were already there.
    """
    if batch_size <= 0:
        raise MlmdExerciseError(f"batch size must be positive, not {batch_size}")
    importer = _Importer(tracker)
    done = 0
    for batch in _batches(runs, batch_size):
        by_experiment: Dict[str, List[RunSpec]] = {}
        for run in batch:
            by_experiment.setdefault(run.experiment or tracker.experiment, []).append(run)
        importer.new_ids = []
        with tracker.store.writing():
            for experiment, group in by_experiment.items():
                importer.batch(group, experiment)
        if tracker.openlineage is not None and importer.new_ids:  # after the batch, outside the lock
            tracker.openlineage.recorded(tracker.store, importer.new_ids)
        done += len(batch)
        if progress is not None:
            progress(done)
    return BulkResult(importer.recorded, importer.skipped, importer.points)


def _run_named(name: Optional[str]) -> str:
    return f"run {values.shown(name)}" if name else "a run"


_RUN_KEYS = {"type", "inputs", "outputs", "state", "params", "experiment", "name", "started", "ended"}
_ARTIFACT_KEYS = {"uri", "type", "properties", "fingerprint", "ref", "created"}


def _values(data: Mapping, key: str, where: str) -> Dict[str, PropertyValue]:
    """Params or properties from an import line: a JSON object of plain values."""
    given = data.get(key) or {}
    if not isinstance(given, dict):
        raise MlmdExerciseError(f"{where}: \"{key}\" must be a JSON object, not {_json_text(given)}")
    for name, value in given.items():
        if not isinstance(value, (str, int, float, bool)):
            raise MlmdExerciseError(f"{where}: {key[:-1] if key == 'params' else 'property'} '{name}' is "
                                    f"{_json_text(value)}: use a string, a number or true/false")
    return given


def _json_text(value: object, most: int = 80) -> str:
    """The value as JSON, cut to `most` characters: a message names it, it does not repeat it."""
    import json

    try:
        text = json.dumps(value)
    except (RecursionError, ValueError):
        text = repr(value)
    return text if len(text) <= most else text[:most - 1] + "…"


# The times a calendar holds: 0001-01-01 to 9999-12-31 UTC, in ms since the epoch.
_FIRST_MS, _LAST_MS = -62135596800000, 253402300799999


def checked_ms(ms: Any, what: str) -> int:
    """An original time, checked: whole ms since the epoch within the years 1 to 9999.

    Raises:
        MlmdExerciseError: anything else (10**30 is no time a run ran at, and hid runs from `ls`).
    """
    if isinstance(ms, bool) or not isinstance(ms, int) or not _FIRST_MS <= ms <= _LAST_MS:
        raise MlmdExerciseError(f"{what} is {str(ms)[:40]!r}: a time must be whole milliseconds since "
                                "1970-01-01 UTC, within the years 1 to 9999")
    return ms


def _time(data: Mapping, key: str, where: str) -> Optional[int]:
    """An original time from an import line: ISO 8601 text ("2023-05-01T12:00:00Z"; local
    time without an offset) or milliseconds since the epoch."""
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return checked_ms(value, f'{where}: "{key}"')
    if isinstance(value, str):
        from datetime import datetime

        text = value.strip()
        try:
            return checked_ms(int(datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
                                  .timestamp() * 1000), f'{where}: "{key}"')
        except (ValueError, OverflowError, OSError):
            pass
    raise MlmdExerciseError(f"{where}: \"{key}\" must be an ISO 8601 time like "
                            f"2023-05-01T12:00:00Z or milliseconds since the epoch, not {str(value)[:40]!r}")


def _one_input_each(inputs: Mapping[str, ArtifactSpec], where: str) -> None:
    """Refuses two of a line's inputs that name one artifact (one URI, fingerprints not known to
    differ: what an import links them to), before anything is written: MLMD keeps one event per
    artifact, execution and kind."""
    seen: Dict[str, Tuple[str, str]] = {}  # uri -> the first role naming it, its fingerprint
    for role, spec in inputs.items():
        if spec.uri not in seen:
            seen[spec.uri] = (role, spec.fingerprint)
            continue
        first, fingerprint = seen[spec.uri]
        if not (fingerprint and spec.fingerprint and fingerprint != spec.fingerprint):
            raise MlmdExerciseError(f"{where}: inputs '{first}' and '{role}' are one artifact "
                                    f"({values.shown(spec.uri)}): a run has one input event per artifact in an "
                                    "MLMD store; give it under one role")


def read_runs(lines: Iterable[Union[str, bytes]], source: str = "<input>") -> Iterator[RunSpec]:
    """Runs from JSON lines, one run an object:

        {"type": "Trainer", "experiment": "2023", "name": "run-17", "params": {"C": 1.0},
         "inputs": {"examples": {"uri": "s3://b/train.csv", "ref": "train"}},
         "outputs": {"model": {"uri": "s3://b/m17", "type": "SavedModel", "ref": "m17"}}}

    Artifacts with the same "ref" are one artifact (a model one run wrote and the
    next one read). Lazily, so that an import need not fit in memory.

    Raises:
        MlmdExerciseError: a line that is not such an object, naming the line.
    """
    import json

    refs: Dict[str, ArtifactSpec] = {}

    def artifact(data, where: str) -> ArtifactSpec:
        if not isinstance(data, dict) or not isinstance(data.get("uri"), str):
            raise MlmdExerciseError(f"{where}: an artifact needs a \"uri\" string")
        unknown = sorted(set(data) - _ARTIFACT_KEYS)
        if unknown:
            raise MlmdExerciseError(f"{where}: unknown artifact key '{unknown[0]}'")
        ref = data.get("ref")
        if ref is not None and ref in refs:
            return refs[ref]
        spec = ArtifactSpec(data["uri"], type=data.get("type", schema.DATASET.name),
                            properties=_values(data, "properties", where),
                            fingerprint=data.get("fingerprint", ""),
                            created_ms=_time(data, "created", where))
        if ref is not None:
            refs[ref] = spec
        return spec

    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"line {number} of '{source}'"
        if isinstance(line, bytes):  # a file read as bytes: each line decoded, and named if it is not UTF-8
            try:
                line = line.decode("utf-8")
            except UnicodeDecodeError as e:
                raise MlmdExerciseError(f"{where} is not UTF-8 text (byte {e.start + 1}): "
                                        "is it a JSON-lines file?") from None
        try:
            data = json.loads(line)
        except RecursionError:
            raise MlmdExerciseError(f"{where} is nested too deeply to read") from None
        except ValueError as e:
            raise MlmdExerciseError(f"{where} is not JSON: {e}") from None
        if not isinstance(data, dict):
            raise MlmdExerciseError(f"{where} is not a JSON object")
        unknown = sorted(set(data) - _RUN_KEYS)
        if unknown:
            raise MlmdExerciseError(f"{where}: unknown key '{unknown[0]}'")
        sides: Dict[str, Dict[str, ArtifactSpec]] = {}
        for side in ("inputs", "outputs"):
            given = data.get(side)
            given = {} if given is None else given
            if not isinstance(given, dict):
                raise MlmdExerciseError(f"{where}: \"{side}\" must map roles to artifacts")
            sides[side] = {role: artifact(a, where) for role, a in given.items()}
        _one_input_each(sides["inputs"], where)
        yield RunSpec(type=data.get("type", schema.TRAINER.name), state=data.get("state", "COMPLETE"),
                      params=_values(data, "params", where), experiment=data.get("experiment"),
                      name=data.get("name"), started_ms=_time(data, "started", where),
                      ended_ms=_time(data, "ended", where), inputs=sides["inputs"], outputs=sides["outputs"])
