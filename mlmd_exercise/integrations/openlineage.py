"""Recorded runs as OpenLineage events, and the transports that send them: the one module that
imports openlineage-python (its models, `Serde` and transports), and only inside the functions
that build or send an event, so that `import --from-openlineage` (openlineage_import.py, which
reads its names and rules from here) needs no client.

A run becomes (docs/openlineage.md says the same to users):

    START                at its start time (`started_ms` where imported with one, else MLMD's
                         create time), with its inputs
    COMPLETE/FAIL/ABORT  for COMPLETE (and CACHED) / FAILED / CANCELED, at its end (`ended_ms`,
                         else MLMD's last update time), with its inputs and outputs; a RUNNING,
                         NEW or UNKNOWN run has its START alone
    run id               the OpenLineage run id it was imported with (`openlineage:<id>` as its
                         origin), else uuid5(RUN_NAMESPACE, "<store identity>/<type>/<name>")
                         (MLMD's execution name, or `#<id>` for a run without one): replaying
                         a store gives the same ids
    job                  namespace $OPENLINEAGE_NAMESPACE, else `mlmd-exercise`; name
                         `<experiment>.<type>` (the type alone for a run in no experiment);
                         an imported run keeps the job it came with
    datasets             namespace and name from the URI (`dataset_name`, OpenLineage's naming)
    custom facets        mlmdExercise_run, _params, _environment (run facets; _metrics on the
                         end event), mlmdExercise_artifact (each dataset): FACETS, documented
                         with their fields in docs/openlineage.md, where each facet's _schemaURL
                         points; a FAIL has OpenLineage's errorMessage facet too

Events go to a JSON-lines file (one event a line, appended and closed per event) and/or an
HTTP endpoint (POST URL/api/v1/lineage, $OPENLINEAGE_API_KEY as a bearer token), through the
client's FileTransport and HttpTransport. A transport that fails never fails the run: the
`Emitter` logs one warning naming where, sends nothing more there, and `openlineage export`
sends the store's runs again later.
"""

from __future__ import annotations

import logging
import math
import os
import uuid
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union
from urllib.parse import quote, unquote, urljoin, urlsplit

from mlmd_exercise import environment, schema
from mlmd_exercise.content import FINGERPRINT
from mlmd_exercise.errors import MlmdExerciseError
from mlmd_exercise.records import (CREATED_MS, OPENLINEAGE_PREFIX, ORIGIN, RUN_NAME, ArtifactRecord, ExecutionRecord,
                                   ExecutionState, Kind, PropertyValue)
from mlmd_exercise.version import __version__

if TYPE_CHECKING:
    from mlmd_exercise.store import Store

__all__ = [
    "PRODUCER", "DOCS", "PREFIX", "FACETS", "RUN_FACET", "PARAMS_FACET", "METRICS_FACET", "ENVIRONMENT_FACET",
    "ARTIFACT_FACET", "ERROR_FACET", "DEFAULT_NAMESPACE", "ENV_URL", "ENV_FILE", "ENV_API_KEY", "ENV_NAMESPACE",
    "ENV_ENDPOINT",    "JOB_NAMESPACE", "JOB_NAME", "DATASET_NAMESPACE", "DATASET_NAME", "ORIGIN_PREFIX",
    "Emitter", "OpenLineageEmitter", "emitter_from_environment", "run_events", "run_id", "dataset_name", "dataset_uri", "to_json",
    "number_out", "number_in", "available",
]

log = logging.getLogger(__name__)

# Where the package says who it is and where its facets are documented (a facet's _schemaURL).
HOME = "https://github.com/mlmd-exercise/mlmd_exercise"
PRODUCER = f"{HOME}/tree/v{__version__}"
DOCS = f"{HOME}/blob/main/docs/openlineage.md"
PREFIX = "mlmdExercise_"  # of the custom facets' names, as OpenLineage asks of custom facets
RUN_FACET, PARAMS_FACET, METRICS_FACET, ENVIRONMENT_FACET = (PREFIX + n for n in ("run", "params", "metrics",
                                                                                     "environment"))
ARTIFACT_FACET = PREFIX + "artifact"
ERROR_FACET = "errorMessage"  # OpenLineage's own facet of a failed run
FACETS = (RUN_FACET, PARAMS_FACET, METRICS_FACET, ENVIRONMENT_FACET, ARTIFACT_FACET)
# The run ids' uuid5 namespace: fixed, so that a store replayed gives the same ids.
RUN_NAMESPACE = uuid.UUID("6f1f8f5e-3b51-5d55-9a52-4b6b0e0a6d01")
DEFAULT_NAMESPACE = "mlmd-exercise"
ENV_URL, ENV_API_KEY, ENV_ENDPOINT = "OPENLINEAGE_URL", "OPENLINEAGE_API_KEY", "OPENLINEAGE_ENDPOINT"
ENV_NAMESPACE = "OPENLINEAGE_NAMESPACE"
ENV_FILE = "MLMD_OPENLINEAGE_FILE"  # emission to this JSON-lines file
ENDPOINT = "api/v1/lineage"
TIMEOUT = 5.0  # seconds an endpoint is given to answer
# Where an imported node keeps what OpenLineage called it (openlineage_import.py writes them).
ORIGIN_PREFIX = "openlineage:"
JOB_NAMESPACE, JOB_NAME = OPENLINEAGE_PREFIX + "job_namespace", OPENLINEAGE_PREFIX + "job_name"
DATASET_NAMESPACE, DATASET_NAME = OPENLINEAGE_PREFIX + "namespace", OPENLINEAGE_PREFIX + "name"
# MLMD's state -> the event that ends the run (others end with no event: a START alone).
_ENDS = {ExecutionState.COMPLETE.value: "COMPLETE", ExecutionState.CACHED.value: "COMPLETE",
         ExecutionState.FAILED.value: "FAIL", ExecutionState.CANCELED.value: "ABORT"}
# What an artifact's facet leaves out of its properties (said by its own fields, or bookkeeping).
_ARTIFACT_OWN = frozenset({"version", FINGERPRINT, ORIGIN, CREATED_MS, DATASET_NAMESPACE, DATASET_NAME})
# Process keys: which process recorded the run (host is kept; pid means nothing elsewhere).
_LEFT_OUT_ENV = frozenset({environment.INPUTS, "pid", "pid_start"})


def available() -> bool:
    """Whether openlineage-python can be imported here."""
    import importlib.util

    return importlib.util.find_spec("openlineage") is not None


def _client_missing() -> MlmdExerciseError:
    return MlmdExerciseError("sending OpenLineage events needs openlineage-python (Python 3.10 or later): "
                             "pip install 'mlmd_exercise[openlineage]'")


# -- names -----------------------------------------------------------------------------------


def dataset_name(uri: str) -> Tuple[str, str]:
    """A URI's OpenLineage dataset (namespace, name), by OpenLineage's naming conventions: a
    local file is `file` and its absolute path; `scheme://host/path` is `scheme://host` and the
    path (`s3://bucket` and `key/of/it`; `postgres://host:5432` and `db.schema.table`); a URI
    with no host (`models:/clf/2`, `python:train.py#X`) is its scheme and the rest."""
    parts = urlsplit(uri)
    if parts.scheme == "file" or not parts.scheme:
        host = parts.netloc if parts.netloc not in ("", "localhost") else ""
        return (f"file://{host}" if host else "file"), unquote(parts.path if parts.scheme else uri)
    if parts.netloc:
        rest = uri.split("://", 1)[1][len(parts.netloc):]
        return f"{parts.scheme}://{parts.netloc}", rest[1:] if rest.startswith("/") else rest
    return parts.scheme, uri[len(parts.scheme) + 1:]


def dataset_uri(namespace: str, name: str) -> str:
    """The URI a dataset of another producer is recorded at: `dataset_name` read backwards."""
    if namespace == "file":
        return "file://" + quote(name if name.startswith("/") else "/" + name)
    if "://" in namespace:
        return namespace.rstrip("/") + "/" + name.lstrip("/")
    return f"{namespace}:{name}"


def run_id(store: "Store", execution: ExecutionRecord) -> str:
    """The run's OpenLineage run id (see the module's docstring): stable for a store."""
    origin = execution.custom.get(ORIGIN)
    if isinstance(origin, str) and origin.startswith(ORIGIN_PREFIX):
        try:
            return str(uuid.UUID(origin[len(ORIGIN_PREFIX):]))
        except ValueError:
            pass
    key = execution.name or f"#{execution.id}"
    return str(uuid.uuid5(RUN_NAMESPACE, f"{store.location.identity}/{execution.type}/{key}"))


def _time(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).isoformat(timespec="milliseconds")


def number_out(value: PropertyValue) -> PropertyValue:
    """A value as JSON holds it: NaN and the infinities as "NaN", "Infinity", "-Infinity"."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if value != value else ("Infinity" if value > 0 else "-Infinity")
    return value


def number_in(value: Any) -> Any:
    """`number_out` read backwards."""
    return {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}.get(value, value) \
        if isinstance(value, str) else value


# -- the client's models ------------------------------------------------------------------------


@lru_cache(maxsize=None)
def _facet_classes() -> Dict[str, Any]:
    """Our custom facets as subclasses of the client's facet classes (attrs), each with its
    _schemaURL in docs/openlineage.md. Made on first use: the client is imported only here."""
    try:
        import attr
        from openlineage.client.generated.base import DatasetFacet, RunFacet
    except ImportError:
        raise _client_missing() from None

    def schema_of(anchor: str) -> Any:
        return staticmethod(lambda: f"{DOCS}#{anchor}")

    @attr.define
    class RunFacetOfOurs(RunFacet):
        experiment: Optional[str] = attr.field(default=None)
        type: str = attr.field(default="")
        name: Optional[str] = attr.field(default=None)
        tags: Optional[Dict[str, str]] = attr.field(default=None)
        _get_schema = schema_of("mlmdexercise_run")

    @attr.define
    class ParamsFacet(RunFacet):
        params: Dict[str, Any] = attr.field(factory=dict)
        _get_schema = schema_of("mlmdexercise_params")

    @attr.define
    class MetricsFacet(RunFacet):
        metrics: Dict[str, Any] = attr.field(factory=dict)
        _get_schema = schema_of("mlmdexercise_metrics")

    @attr.define
    class EnvironmentFacet(RunFacet):
        environment: Dict[str, Any] = attr.field(factory=dict)
        _get_schema = schema_of("mlmdexercise_environment")

    @attr.define
    class ArtifactFacet(DatasetFacet):
        uri: str = attr.field(default="")
        type: str = attr.field(default="")
        role: str = attr.field(default="")
        fingerprint: Optional[str] = attr.field(default=None)
        version: Optional[int] = attr.field(default=None)
        properties: Optional[Dict[str, Any]] = attr.field(default=None)
        _get_schema = schema_of("mlmdexercise_artifact")

    return {RUN_FACET: RunFacetOfOurs, PARAMS_FACET: ParamsFacet, METRICS_FACET: MetricsFacet,
            ENVIRONMENT_FACET: EnvironmentFacet, ARTIFACT_FACET: ArtifactFacet}


def _dataset(role: str, artifact: ArtifactRecord, output: bool) -> Any:
    from openlineage.client.event_v2 import InputDataset, OutputDataset

    namespace, name = artifact.properties.get(DATASET_NAMESPACE), artifact.properties.get(DATASET_NAME)
    if not (isinstance(namespace, str) and isinstance(name, str)):  # kept by an import, else by the rule
        namespace, name = dataset_name(artifact.uri)
    digest = artifact.properties.get(FINGERPRINT)
    others = {k: number_out(v) for k, v in sorted(artifact.properties.items()) if k not in _ARTIFACT_OWN}
    facet = _facet_classes()[ARTIFACT_FACET](
        uri=artifact.uri, type=artifact.type, role=role, fingerprint=digest if isinstance(digest, str) else None,
        version=artifact.version, properties=others or None, producer=PRODUCER)
    kind = OutputDataset if output else InputDataset
    return kind(namespace=namespace, name=name, facets={ARTIFACT_FACET: facet})


def _experiment(store: "Store", execution: ExecutionRecord) -> Optional[str]:
    found = [c.name for c in store.backend.contexts_of(Kind.EXECUTION, execution.id)
             if c.type == schema.EXPERIMENT.name]
    return min(found) if found else None


def run_events(store: "Store", execution_id: int, namespace: Optional[str] = None) -> List[Any]:
    """The run's events, as the client's `RunEvent`s: its START, and its end where it ended.

    Args:
        namespace: the job's namespace (default: $OPENLINEAGE_NAMESPACE, else `mlmd-exercise`).

    Raises:
        NotFoundError: no execution has this id.
        MlmdExerciseError: openlineage-python is not installed.
    """
    from mlmd_exercise.read.compare import summarize_run
    from mlmd_exercise.read.lineage import execution_lineage

    classes = _facet_classes()
    from openlineage.client.event_v2 import Job, Run, RunEvent, RunState

    one = execution_lineage(store, execution_id)
    execution = one.execution
    summary = summarize_run(execution, one.outputs)
    experiment = _experiment(store, execution)
    job_namespace, job_name = execution.properties.get(JOB_NAMESPACE), execution.properties.get(JOB_NAME)
    if not (isinstance(job_namespace, str) and isinstance(job_name, str)):
        job_namespace = namespace or os.environ.get(ENV_NAMESPACE) or DEFAULT_NAMESPACE
        job_name = f"{experiment}.{execution.type}" if experiment else execution.type
    label = execution.properties.get(RUN_NAME)
    facets: Dict[str, Any] = {RUN_FACET: classes[RUN_FACET](
        experiment=experiment, type=execution.type, producer=PRODUCER,
        name=label if isinstance(label, str) else None, tags=execution.tags or None)}
    if summary.params:
        facets[PARAMS_FACET] = classes[PARAMS_FACET](
            params={k: number_out(v) for k, v in summary.params.items()}, producer=PRODUCER)
    env = {k[len(environment.PREFIX):] if k.startswith(environment.PREFIX) else k: v
           for k, v in sorted(summary.environment.items()) if k not in _LEFT_OUT_ENV}
    if env:
        facets[ENVIRONMENT_FACET] = classes[ENVIRONMENT_FACET](environment=env, producer=PRODUCER)
    run = Run(runId=run_id(store, execution), facets=facets)
    job = Job(namespace=job_namespace, name=job_name)
    inputs = [_dataset(role, a, False) for role, a in one.inputs]
    events = [RunEvent(eventType=RunState.START, eventTime=_time(execution.when_ms), run=run, job=job,
                       inputs=inputs, outputs=[], producer=PRODUCER)]
    end = _ENDS.get(execution.state)
    if end is not None:
        ended = execution.ended_ms or execution.updated_ms or execution.when_ms
        ending = dict(facets)  # the START's, with the metrics the run logged and why it failed
        if summary.metrics:
            ending[METRICS_FACET] = classes[METRICS_FACET](
                metrics={k: number_out(v) for k, v in summary.metrics.items()}, producer=PRODUCER)
        message = execution.properties.get("error_message")
        if end == "FAIL" and isinstance(message, str) and message:
            from openlineage.client.generated.error_message_run import ErrorMessageRunFacet

            ending[ERROR_FACET] = ErrorMessageRunFacet(message=message, programmingLanguage="python",
                                                       producer=PRODUCER)
        run = Run(runId=run.runId, facets=ending)
        events.append(RunEvent(eventType=RunState(end), eventTime=_time(ended), run=run, job=job, inputs=inputs,
                               outputs=[_dataset(role, a, True) for role, a in one.outputs], producer=PRODUCER))
    return events


def to_json(event: Any) -> str:
    """An event as one JSON line, as the client's transports write it (`Serde.to_json`)."""
    from openlineage.client.serde import Serde

    return Serde.to_json(event)


# -- sending ------------------------------------------------------------------------------------


def _reason(error: BaseException) -> str:
    """Why a send failed, in a few words (requests' messages run to several lines of repr)."""
    cause = error.__cause__ or error
    response = getattr(cause, "response", None)
    if response is not None and getattr(response, "status_code", None):
        return f"it answered HTTP {response.status_code}"
    name = type(cause).__name__
    if "Timeout" in name:
        return f"no answer within {TIMEOUT:g} s"
    if "ConnectionError" in name:
        return "no connection could be made"
    first = (str(cause).strip().splitlines() or [name])[0]
    return first if len(first) <= 200 else first[:199] + "…"


class Emitter:
    """Sends runs' events to a JSON-lines file and/or an HTTP endpoint; never raises.

    Args:
        url: the endpoint's base URL: events are POSTed to URL/api/v1/lineage
            ($OPENLINEAGE_ENDPOINT names another path), $OPENLINEAGE_API_KEY as a bearer token.
        file: a JSON-lines file the events are appended to, one a line.
        namespace: the jobs' namespace (default: $OPENLINEAGE_NAMESPACE, else `mlmd-exercise`).

    A target that fails is said once, as a warning, and sent nothing more: the runs stay
    recorded, and `mlmd-exercise openlineage export` sends them again.

    Raises:
        MlmdExerciseError: neither url nor file is given, the URL is not http(s)://host, or
            openlineage-python is not installed.
    """

    def __init__(self, url: Optional[str] = None, file: Union[str, os.PathLike, None] = None, *,
                 namespace: Optional[str] = None, timeout: float = TIMEOUT, warn: bool = True) -> None:
        if not url and file is None:
            raise MlmdExerciseError("an OpenLineage emitter needs a URL or a file to send events to")
        if url:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise MlmdExerciseError(f"OpenLineage URL '{url}' is not http://host[:port] or https://...")
        if not available():
            raise _client_missing()
        self.url, self.file, self.namespace, self.timeout = url or None, file, namespace, timeout
        self.warn = warn  # a failure logged as a warning (else the caller says it: `failed`)
        self.failed: Dict[str, str] = {}  # target -> why, once it failed
        self.sent: Dict[str, int] = {}  # target -> events it took
        self._transports: Optional[List[Tuple[str, Any]]] = None

    def __repr__(self) -> str:
        return f"Emitter(url={self.url!r}, file={self.file!r})"

    @property
    def targets(self) -> List[str]:
        """Where events go, as said in messages."""
        # Where the client's HttpTransport POSTs: urljoin(url, endpoint), as it reads them.
        return ([urljoin(self.url, self._endpoint())] if self.url else []) + \
            ([os.fspath(self.file)] if self.file is not None else [])

    def _endpoint(self) -> str:
        return os.environ.get(ENV_ENDPOINT) or ENDPOINT

    def _made(self) -> List[Tuple[str, Any]]:
        if self._transports is None:  # each transport's module imported only where it is used
            made: List[Tuple[str, Any]] = []
            targets = iter(self.targets)
            if self.url:
                from openlineage.client.transport.http import (ApiKeyTokenProvider, HttpConfig, HttpTransport,
                                                               TokenProvider)

                key = os.environ.get(ENV_API_KEY)
                # No retries: a down endpoint costs one attempt, and urllib3 logs each retry.
                config = HttpConfig(url=self.url, endpoint=self._endpoint(), timeout=self.timeout,
                                    auth=ApiKeyTokenProvider({"apiKey": key}) if key else TokenProvider({}),
                                    retry={"total": 0, "read": 0, "connect": 0, "status": 0,
                                           "raise_on_status": False, "allowed_methods": ["POST"]})
                made.append((next(targets), HttpTransport(config)))
            if self.file is not None:
                from openlineage.client.transport.file import FileConfig, FileTransport

                path = Path(self.file).absolute()
                made.append((next(targets), FileTransport(FileConfig(log_file_path=str(path), append=True))))
            self._transports = made
        return self._transports

    def emit(self, events: Iterable[Any]) -> int:
        """Sends events to every target that has not failed; returns how many reached them all."""
        whole = 0
        for event in events:
            reached = True
            for target, transport in self._made():
                if target in self.failed:
                    reached = False
                    continue
                try:
                    transport.emit(event)
                except Exception as e:  # whatever the transport raises: the run goes on
                    self.failed[target] = _reason(e)
                    reached = False
                    if self.warn:
                        log.warning("could not send OpenLineage events to %s: %s; the runs are recorded, and "
                                    "'mlmd-exercise openlineage export' sends them again", target,
                                    self.failed[target])
                    log.debug("sending to %s", target, exc_info=True)
                else:
                    self.sent[target] = self.sent.get(target, 0) + 1
            whole += reached
        return whole

    def _send(self, store: "Store", execution_id: int, which: slice) -> None:
        try:
            events = run_events(store, execution_id, self.namespace)[which]
        except Exception as e:  # the run is recorded: its events are not worth failing it
            log.warning("could not make the OpenLineage events of run %s: %s", execution_id, e)
            log.debug("events of run %s", execution_id, exc_info=True)
            return
        self.emit(events)

    def started(self, store: "Store", execution_id: int) -> None:
        """Sends the START of a run just recorded RUNNING."""
        self._send(store, execution_id, slice(0, 1))

    def finished(self, store: "Store", execution_id: int) -> None:
        """Sends the end (COMPLETE, FAIL, ABORT) of a run just finished."""
        self._send(store, execution_id, slice(1, None))

    def recorded(self, store: "Store", execution_ids: Sequence[int]) -> None:
        """Sends the whole of runs recorded at once (an import): START and end."""
        for execution_id in execution_ids:
            self._send(store, execution_id, slice(None))

    def close(self) -> None:
        for _, transport in self._transports or []:
            try:
                transport.close()
            except Exception:  # noqa: BLE001 - closing what may never have opened
                pass


OpenLineageEmitter = Emitter  # its public name: mx.OpenLineageEmitter(url=..., file=...)


def emitter_from_environment() -> Optional[Emitter]:
    """An Emitter to $OPENLINEAGE_URL and/or $MLMD_OPENLINEAGE_FILE where either is set,
    else None (emission is off unless asked for)."""
    url, file = os.environ.get(ENV_URL) or None, os.environ.get(ENV_FILE) or None
    if url is None and file is None:
        return None
    return Emitter(url, file)
