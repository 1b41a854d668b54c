"""OpenLineage events from any producer read as runs to import (`import --from-openlineage
FILE`): a JSON-lines file, an event a line, in any order, repeated or not. Plain JSON is read
(no client needed); names and rules come from openlineage.py, which writes what this reads.

What each thing becomes (docs/openlineage.md, "Reading events in", says the same to users):

    a run id             one execution: its events joined (START, RUNNING, COMPLETE, ...),
                         named and with the origin `openlineage:<run id>` (importing again
                         skips it); started_ms the START's time (else the first event's),
                         ended_ms the end's
    the end event        COMPLETE -> COMPLETE, FAIL -> FAILED, ABORT -> CANCELED; none (a
                         START alone) -> RUNNING; the latest end counts
    job                  `openlineage.job_namespace`, `openlineage.job_name`; the run's name
                         (run.name) the job's name, unless our run facet names it
    type, experiment     our run facet's (mlmdExercise_run), else Trainer and the job's namespace
    inputs, outputs      artifacts at the dataset's URI (our artifact facet's, else
                         openlineage.dataset_uri of its namespace and name, both kept as
                         `openlineage.namespace`, `openlineage.name`); inputs DataSet, outputs
                         DataSet unless our facet says SavedModel or Metrics; with our facet's
                         fingerprint, role, version's predecessors and properties
    facets of ours       params, metrics (last values: a one-point history each),
                         environment (env.*), errorMessage's message (error_message)

Other producers' facets are left out (counted, by name); so are values MLMD cannot hold.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from mlmd_exercise import environment, schema, values
from mlmd_exercise.errors import MlmdExerciseError
from mlmd_exercise.history import Point
from mlmd_exercise.integrations.openlineage import (ARTIFACT_FACET, DATASET_NAME, DATASET_NAMESPACE,
                                                    ENVIRONMENT_FACET, ERROR_FACET, FACETS, JOB_NAME, JOB_NAMESPACE,
                                                    METRICS_FACET, ORIGIN_PREFIX, PARAMS_FACET, RUN_FACET,
                                                    dataset_uri, number_in)
from mlmd_exercise.records import (OPENLINEAGE_PREFIX, ORIGIN, RUN_NAME, TAG_PREFIX, ExecutionState, Kind,
                                   PropertyValue)
from mlmd_exercise.store.backend import PropertyTest, Query
from mlmd_exercise.write.bulk import ArtifactSpec, BulkResult, RunSpec, check_run, record_runs
from mlmd_exercise.write.tracking import Tracker

__all__ = ["OpenLineageEvents", "OpenLineageResult", "read_events", "import_openlineage", "PRODUCER_KEY"]

PRODUCER_KEY = OPENLINEAGE_PREFIX + "producer"  # an imported run's: who sent its events
_ENDS = {"COMPLETE": ExecutionState.COMPLETE, "FAIL": ExecutionState.FAILED, "ABORT": ExecutionState.CANCELED}
_OURS = set(FACETS) | {ERROR_FACET}
_ARTIFACT_TYPES = {t.name for t in schema.ALL_TYPES if t.kind is Kind.ARTIFACT}


@dataclass
class OpenLineageEvents:
    """A file's events, read and checked, grouped by run id (in the order first seen)."""

    path: str
    runs: Dict[str, List[Dict[str, Any]]] = field(default_factory=dict)
    events: int = 0
    bad: int = 0  # lines that are not events
    first_bad: str = ""  # "line 3 is not JSON"


@dataclass
class OpenLineageResult:
    """What an import did: the runs written and skipped, what they held, what was left out."""

    bulk: BulkResult
    mapped: Counter = field(default_factory=Counter)  # "dataset", "param", ... -> how many
    left_out: Counter = field(default_factory=Counter)  # (what, why) -> how many


_FRACTION = re.compile(r"(T\d\d:\d\d:\d\d)(?:[.,](\d+))?", re.I)


def _ms(text: Any) -> Optional[int]:
    """An event's ISO 8601 time in ms since the epoch (None for none): any fraction of a second
    (Java producers write nanoseconds), Z or an offset; without one, UTC."""
    if not isinstance(text, str) or "t" not in text.lower():
        return None
    text = text.strip()
    text = text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text
    text = _FRACTION.sub(lambda m: m.group(1) + "." + ((m.group(2) or "") + "000000")[:6], text, count=1)
    try:
        when = datetime.fromisoformat(text)
        if when.tzinfo is None:  # OpenLineage asks for an offset
            when = when.replace(tzinfo=timezone.utc)
        return int(when.timestamp() * 1000)
    except (ValueError, OverflowError, OSError):
        return None


def _why_not(data: Any) -> str:
    """Why a line's JSON is no run event, or "" for one."""
    if not isinstance(data, dict):
        return "is JSON but no object"
    run, job = data.get("run"), data.get("job")
    if not isinstance(run, dict) or not isinstance(run.get("runId"), str) or not run["runId"]:
        return "is no OpenLineage run event (no run.runId)"
    if not isinstance(job, dict) or not all(isinstance(job.get(k), str) and job[k] for k in ("namespace", "name")):
        return "is no OpenLineage run event (no job.namespace and job.name)"
    if _ms(data.get("eventTime")) is None:
        return f"has no ISO 8601 eventTime ({str(data.get('eventTime'))[:40]!r})"
    return ""


def read_events(path: str) -> OpenLineageEvents:
    """The events of a JSON-lines file, grouped by run id; lines that are no run event are
    counted (the first named by its number), and the file refused if none is one.

    Raises:
        MlmdExerciseError: the file is missing, a folder, empty, or holds no run event.
    """
    file = Path(path)
    if not file.exists():
        raise MlmdExerciseError(f"'{path}' does not exist")
    if not file.is_file():
        raise MlmdExerciseError(f"'{path}' is not a file")
    found = OpenLineageEvents(path)
    with file.open("rb") as lines:
        for number, raw in enumerate(lines, 1):
            if not raw.strip():
                continue
            why = ""
            try:
                data = json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError:
                why = "is not UTF-8 text"
            except RecursionError:
                why = "is nested too deeply to read"
            except ValueError:
                why = "is not JSON"
            else:
                why = _why_not(data)
            if why:
                found.bad += 1
                found.first_bad = found.first_bad or f"line {number} {why}"
                continue
            found.events += 1
            found.runs.setdefault(data["run"]["runId"], []).append(data)
    if not found.events:
        if not found.bad:
            raise MlmdExerciseError(f"'{path}' holds no OpenLineage events: it is empty")
        raise MlmdExerciseError(f"'{path}' is not OpenLineage JSON lines: {found.first_bad}, "
                                f"and no line is a run event")
    return found


# -- one run --------------------------------------------------------------------------------------


def _add(side: Dict[str, ArtifactSpec], role: str, spec: ArtifactSpec) -> None:
    name, n = role, 1
    while name in side:
        n += 1
        name = f"{role}-{n}"
    side[name] = spec


def _facet(facets: Any, name: str) -> Dict[str, Any]:
    found = facets.get(name) if isinstance(facets, dict) else None
    return found if isinstance(found, dict) else {}


def _plain(value: Any) -> bool:
    return isinstance(value, (str, int, float, bool))


class _Runs:
    """Events of one run id at a time into a RunSpec, counting what is mapped and left out."""

    def __init__(self, tracker: Tracker) -> None:
        self.tracker = tracker
        self.mapped: Counter = Counter()
        self.left_out: Counter = Counter()
        self.datasets: set = set()
        self.experiments: set = set()

    def _others(self, facets: Any, where: str) -> None:
        for name in facets if isinstance(facets, dict) else ():
            if name not in _OURS:
                self.left_out[(f"{where} facet", "defined by other producers (kept in their events only)")] += 1

    def _artifact(self, data: Dict[str, Any], output: bool) -> Optional[Tuple[str, ArtifactSpec]]:
        namespace, name = data.get("namespace"), data.get("name")
        if not (isinstance(namespace, str) and namespace and isinstance(name, str) and name):
            self.left_out[("dataset", "without a namespace and a name")] += 1
            return None
        facets = data.get("facets")
        self._others(facets, "dataset")
        ours = _facet(facets, ARTIFACT_FACET)
        given_uri, given_type = ours.get("uri"), ours.get("type")
        uri = given_uri if isinstance(given_uri, str) and given_uri else dataset_uri(namespace, name)
        kind = given_type if isinstance(given_type, str) and given_type in _ARTIFACT_TYPES else schema.DATASET.name
        properties: Dict[str, PropertyValue] = {}
        given = ours.get("properties")
        for key, value in (given.items() if isinstance(given, dict) else ()):
            value = number_in(value)
            if _plain(value) and isinstance(key, str) and key and len(key) <= values.MAX_NAME:
                properties[key] = value
            else:
                self.left_out[("artifact value", "that is not text, a number or true/false")] += 1
        if not ours:  # another producer's dataset: its names, for an export to give back as they were
            properties.update({DATASET_NAMESPACE: namespace, DATASET_NAME: name})
        digest = ours.get("fingerprint")
        given_role = ours.get("role")
        role = given_role if isinstance(given_role, str) and given_role else ("output" if output else "input")
        self.datasets.add(uri)
        ours_digest = digest if isinstance(digest, str) and digest.startswith("sha256:") else ""
        return role, ArtifactSpec(uri, type=kind, properties=properties, fingerprint=ours_digest)

    def spec(self, run_id: str, events: Sequence[Dict[str, Any]]) -> Optional[RunSpec]:
        events = sorted(events, key=lambda e: _ms(e["eventTime"]) or 0)
        kinds = [str(e.get("eventType") or "OTHER").upper() for e in events]
        start = next((e for e, k in zip(events, kinds) if k == "START"), events[0])
        end = next((e for e, k in reversed(list(zip(events, kinds))) if k in _ENDS), None)
        state = _ENDS[str(end["eventType"]).upper()] if end is not None else ExecutionState.RUNNING
        job = (end or events[-1])["job"]
        facets: Dict[str, Any] = {}
        for e in events:  # later events' facets over earlier ones', as OpenLineage's consumers merge them
            given = e["run"].get("facets")
            facets.update(given if isinstance(given, dict) else {})
            self._others(e["job"].get("facets"), "job")
        self._others(facets, "run")
        ours = _facet(facets, RUN_FACET)
        custom: Dict[str, PropertyValue] = {ORIGIN: ORIGIN_PREFIX + run_id, JOB_NAMESPACE: job["namespace"],
                                            JOB_NAME: job["name"]}
        producer = (end or start).get("producer")
        if isinstance(producer, str) and producer:
            custom[PRODUCER_KEY] = producer
        label = ours.get("name") if ours else job["name"]
        if isinstance(label, str) and label:
            custom[RUN_NAME] = label
        for key, value in (ours.get("tags") or {}).items() if isinstance(ours.get("tags"), dict) else ():
            if isinstance(value, str):
                custom[TAG_PREFIX + str(key)] = value
        env = _facet(facets, ENVIRONMENT_FACET).get("environment")
        for key, value in (env.items() if isinstance(env, dict) else ()):
            name = environment.PREFIX + str(key)
            # Not host (a process key `check` reads) nor env.inputs (what `check` holds input events to).
            if name not in (environment.PREFIX + "host", environment.INPUTS) and _plain(value):
                custom[name] = value
        message = _facet(facets, ERROR_FACET).get("message")
        if state is ExecutionState.FAILED and isinstance(message, str) and message:
            custom["error_message"] = message[:10000]
        params: Dict[str, PropertyValue] = {}
        given = _facet(facets, PARAMS_FACET).get("params")
        for key, value in (given.items() if isinstance(given, dict) else ()):
            value = number_in(value)
            if not _plain(value):
                self.left_out[("param", "that is not text, a number or true/false")] += 1
            elif self._named("param", key, values.Role.PARAM, custom):
                params[key] = value
        started, ended = _ms(start["eventTime"]), _ms(end["eventTime"]) if end is not None else None
        metrics: Dict[str, Sequence[Point]] = {}
        given = _facet(facets, METRICS_FACET).get("metrics")
        for key, value in (given.items() if isinstance(given, dict) else ()):
            value = number_in(value)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                self.left_out[("metric", "that is not a number")] += 1
            elif self._named("metric", key, values.Role.METRIC, {**custom, **params}):
                metrics[key] = [Point(0, ended or started or 0, value)]
        inputs: Dict[str, ArtifactSpec] = {}
        outputs: Dict[str, ArtifactSpec] = {}
        seen: set = set()
        for side, key, output in ((inputs, "inputs", False), (outputs, "outputs", True)):
            for e in reversed(events):  # each dataset once, as its latest event has it
                listed = e.get(key)
                for data in listed if isinstance(listed, list) else []:
                    if not isinstance(data, dict) or (key, data.get("namespace"), data.get("name")) in seen:
                        continue
                    seen.add((key, data.get("namespace"), data.get("name")))
                    made = self._artifact(data, output)
                    if made is not None:
                        _add(side, *made)
        kind = ours.get("type") if ours else None
        experiment = ours.get("experiment") if ours else job["namespace"]
        run = RunSpec(type=kind if isinstance(kind, str) and kind else schema.TRAINER.name, inputs=inputs,
                      outputs=outputs, state=state.value, params=params,
                      experiment=experiment if isinstance(experiment, str) and experiment else None,
                      name=ORIGIN_PREFIX + run_id, started_ms=started, ended_ms=ended, custom=custom, metrics=metrics)
        try:
            check_run(self.tracker, run)
        except MlmdExerciseError:
            self.left_out[("run", "with names or values MLMD cannot hold")] += 1
            return None
        self.mapped["param"] += len(params)
        self.mapped["metric"] += len(metrics)
        self.mapped["event"] += len(events)
        if run.experiment:
            self.experiments.add(run.experiment)
        return run

    def _named(self, what: str, name: Any, role: values.Role, taken: Mapping[str, Any]) -> bool:
        try:
            values.check_name(name, role)
        except MlmdExerciseError:
            self.left_out[(what, "whose name MLMD cannot hold")] += 1
            return False
        if name in taken or str(name).startswith(TAG_PREFIX) or environment.is_environment_key(str(name)):
            self.left_out[(what, "named as a property of its run")] += 1
            return False
        return True


def _stored(tracker: Tracker, origins: Sequence[str]) -> Dict[str, str]:
    """origin -> state of the runs already imported from these run ids."""
    backend = tracker.store.backend
    found: Dict[str, str] = {}
    for chunk in backend.chunks(sorted(set(origins))):
        for e in backend.executions(Query(custom=(PropertyTest(ORIGIN, "in", tuple(chunk)),))):
            found[str(e.custom.get(ORIGIN))] = e.state
    return found


def import_openlineage(tracker: Tracker, events: OpenLineageEvents, *, batch_size: int = 1000,
                       progress: Optional[Any] = None) -> OpenLineageResult:
    """Records the runs of `events` the store does not hold yet (by origin, `openlineage:<run
    id>`), in start order (a run that read a dataset after another wrote it links to it)."""
    there = _stored(tracker, [ORIGIN_PREFIX + r for r in events.runs])
    runs = _Runs(tracker)
    specs: List[RunSpec] = []
    for run_id, given in events.runs.items():
        stored = there.get(ORIGIN_PREFIX + run_id)
        if stored is not None:
            if stored == ExecutionState.RUNNING.value and any(
                    str(e.get("eventType") or "").upper() in _ENDS for e in given):
                runs.left_out[("run", "imported RUNNING before, whose end came later (a run is never "
                               "changed once recorded)")] += 1
            continue
        spec = runs.spec(run_id, given)
        if spec is not None:
            specs.append(spec)
    specs.sort(key=lambda s: (s.started_ms or 0, s.ended_ms or 0))
    bulk = record_runs(tracker, specs, batch_size=batch_size, progress=progress)
    runs.mapped["dataset"] = len(runs.datasets)
    runs.mapped["experiment"] = len(runs.experiments)
    return OpenLineageResult(BulkResult(bulk.recorded, bulk.skipped + len(there), bulk.points), runs.mapped,
                             runs.left_out)
