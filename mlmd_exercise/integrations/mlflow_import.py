"""An MLflow tracking store read as runs to import (`import --from-mlflow URI`), through
MLflow's own client, so that its database stores (SQLite, PostgreSQL, MySQL) and its
`mlruns/` file store are read the same way. The one module that imports mlflow, and only
when an import from MLflow runs.

What each MLflow thing becomes (docs/cli.md, "From MLflow", says the same to users):

    run                  a Trainer execution named `mlflow:<run id>` (its ORIGIN too: importing
                         again skips it), with its start and end times (started_ms, ended_ms)
                         and its artifact URI (`mlflow.artifact_uri`)
    status               FINISHED -> COMPLETE, FAILED -> FAILED, KILLED -> CANCELED,
                         RUNNING -> RUNNING, SCHEDULED -> NEW
    experiment           the Experiment context of that name
    params               params (text that reads back as the same number is stored as it)
    tags                 tags (`tag.<key>`); of MLflow's own: mlflow.runName -> the run's name,
                         mlflow.user -> env.user, mlflow.source.name -> env.command,
                         mlflow.source.git.commit -> env.git_commit, mlflow.parentRunId ->
                         `mlflow.parent_run` (the parent's execution name, `mlflow:<run id>`)
    metrics              each key's whole step history, and its last value as the summary
    log_input datasets   DataSet inputs (role: the dataset's context, "training" ...) with their
                         name, digest, source URI, schema and profile; one artifact per dataset
    logged models        SavedModel outputs of the run that logged them (role "model"), at
                         their artifact folder, with name, mlflow.model_id, mlflow.model_uri;
                         an input of a run that used them (role
                         "base_model": a fine-tune, a warm start), which links the two runs
    registered versions  SavedModel outputs of their run (role "registered"), at
                         models:/<name>/<version>, with name, mlflow.version and mlflow.aliases
                         (comma-separated), the same fingerprint as the logged model they are

Properties named mlflow.* are MLflow's bookkeeping, neither params nor metrics (records.py).

Local files and folders (a dataset's source, a model's folder) are fingerprinted. Deleted
runs and experiments, model versions without a run, and values MLMD cannot hold are left
out and counted, by reason. The MLflow store is only read (mlflow_store.py opens it).
"""

from __future__ import annotations

import json
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

from mlmd_exercise import content, environment, schema, values
from mlmd_exercise.errors import MlmdExerciseError
from mlmd_exercise.history import Point
from mlmd_exercise.records import MLFLOW_PREFIX, ORIGIN, RUN_NAME, TAG_PREFIX, ExecutionState, Kind, PropertyValue
from mlmd_exercise.store.backend import PropertyTest, Query
from mlmd_exercise.integrations.mlflow_store import local_path, mlflow_client
from mlmd_exercise.write.bulk import ArtifactSpec, BulkResult, RunSpec, record_runs
from mlmd_exercise.write.tracking import Tracker

__all__ = ["MlflowSource", "MlflowResult", "open_mlflow", "import_mlflow", "PARENT", "MODEL_ID", "VERSION", "ALIASES"]

PREFIX = "mlflow:"  # of an imported run's name and origin
PARENT = MLFLOW_PREFIX + "parent_run"  # a nested run's custom property: its parent's execution name
_M = MLFLOW_PREFIX  # MLflow's bookkeeping kept on a node: neither a param nor a metric (records.py)
MODEL_ID, VERSION, ALIASES = _M + "model_id", _M + "version", _M + "aliases"  # of a SavedModel
_STATES = {"FINISHED": ExecutionState.COMPLETE, "FAILED": ExecutionState.FAILED, "KILLED": ExecutionState.CANCELED,
           "RUNNING": ExecutionState.RUNNING, "SCHEDULED": ExecutionState.NEW}
_SYSTEM = {"mlflow.user": environment.USER, "mlflow.source.name": environment.COMMAND,
           "mlflow.source.git.commit": environment.GIT_COMMIT}
_PAGE = 1000
_AHEAD = 200  # runs whose histories are read at once
_MOST_POINTS = 200000  # points asked for in one read ahead


@dataclass
class MlflowResult:
    """What an import did: the runs written and skipped, what they held, what was left out."""

    bulk: BulkResult
    mapped: Counter = field(default_factory=Counter)  # "experiment", "dataset", ... -> how many
    left_out: Counter = field(default_factory=Counter)  # (what, why) -> how many


@contextmanager
def open_mlflow(uri: str) -> Iterator["MlflowSource"]:
    """MLflow's store at `uri` through MLflow's client, read-only (mlflow_store.py), its lists
    read (experiments, runs, models) before this yields.

    Raises:
        MlmdExerciseError: not an MLflow store, or one MLflow refuses or fails to read, naming the URI.
    """
    with mlflow_client(uri) as client:
        source = MlflowSource(uri, client)
        source.read_lists()
        yield source


# -- reading ---------------------------------------------------------------------------


def _paged(call: Any, **kw: Any) -> Iterator[Any]:
    token = None
    while True:
        page = call(max_results=_PAGE, page_token=token, **kw)
        yield from page
        token = page.token
        if not token:
            return


def _file_uri(location: str) -> str:
    """A local path as a file:// URI; any other URI as it is."""
    return Path(location).as_uri() if location.startswith("/") else location


def _fingerprint(uri: str) -> str:
    path = local_path(uri)
    if path is None or not path.exists():
        return ""
    try:
        return content.fingerprint(path)
    except (MlmdExerciseError, OSError):
        return ""


def _param(text: str) -> PropertyValue:
    """A param as MLflow keeps it (text), or the number it reads as where it reads back
    the same ("0.5", "10"): a sweep's params then sort and chart as numbers."""
    for kind in (int, float):
        try:
            number = kind(text)
        except ValueError:
            continue
        if kind is int and abs(number) >= 2 ** 31:  # MLMD's int properties are 32 bits on its servers
            return text
        if (repr(number) if kind is float else str(number)) == text and number == number:  # NaN stays text
            return number
    return text


class MlflowSource:
    """What an import reads from MLflow: lists first (`read_lists`), then each run's
    metric histories only for runs the MLMD store does not hold yet."""

    def __init__(self, uri: str, client: Any) -> None:
        self.uri, self.client = uri, client
        self.experiments: Dict[str, str] = {}  # id -> name, of live experiments
        self.runs: List[Any] = []
        self.models: Dict[str, ArtifactSpec] = {}  # logged model id -> its spec
        self.outputs: Dict[str, List[Tuple[str, ArtifactSpec]]] = {}  # run id -> (role, spec)
        self.datasets: Dict[Tuple[str, str, str], ArtifactSpec] = {}
        self.left_out: Counter = Counter()
        self.mapped: Counter = Counter()
        self.histories: Dict[Tuple[str, str], List[Any]] = {}  # (run id, key) -> points read ahead

    def read_ahead(self, runs: Sequence[Any]) -> None:
        """The metric histories of these runs, a query per key where the store can (MLflow's SQL
        store: get_metric_history_bulk, the call its UI's charts use). Run by run, its
        get_metric_history took 14 ms a call on a 10,000-run SQLite store (SQLite searches the
        metrics by key, then by run): 10,000 runs' histories took over 2 minutes."""
        bulk = getattr(getattr(getattr(self.client, "_tracking_client", None), "store", None),
                       "get_metric_history_bulk", None)
        if bulk is None:
            return
        for key in sorted({k for r in runs for k in r.data.metrics}):
            ids = [r.info.run_id for r in runs if key in r.data.metrics]
            found = bulk(ids, key, max_results=_MOST_POINTS)
            if len(found) >= _MOST_POINTS:  # perhaps cut short: those runs are read one by one
                continue
            for run_id in ids:
                self.histories[(run_id, key)] = []
            for point in found:
                self.histories[(point.run_id, key)].append(point)

    def read_lists(self) -> None:
        from mlflow.entities import ViewType

        for e in self.client.search_experiments(view_type=ViewType.ALL, max_results=50000):
            if e.lifecycle_stage == "active":
                self.experiments[e.experiment_id] = e.name
            else:
                self.left_out[("experiment", "deleted in MLflow")] += 1
        ids = sorted(self.experiments)
        if ids:
            self.runs = list(_paged(self.client.search_runs, experiment_ids=ids, run_view_type=ViewType.ACTIVE_ONLY,
                                    order_by=["attributes.start_time ASC"]))
            deleted = sum(1 for _ in _paged(self.client.search_runs, experiment_ids=ids,
                                            run_view_type=ViewType.DELETED_ONLY))
            if deleted:
                self.left_out[("run", "deleted in MLflow")] += deleted
        known = {r.info.run_id for r in self.runs}
        if hasattr(self.client, "search_logged_models") and ids:  # MLflow 3
            for m in _paged(self.client.search_logged_models, experiment_ids=ids):
                uri = _file_uri(m.artifact_location)
                spec = ArtifactSpec(uri, type=schema.SAVED_MODEL.name, fingerprint=_fingerprint(uri),
                                    created_ms=m.creation_timestamp or None,
                                    properties={"name": m.name, MODEL_ID: m.model_id, _M + "model_uri": m.model_uri,
                                                _M + "status": str(getattr(m.status, "value", m.status)),
                                                ORIGIN: f"{PREFIX}model/{m.model_id}"})
                self.models[m.model_id] = spec
                if m.source_run_id in known:
                    self.outputs.setdefault(m.source_run_id, []).append(("model", spec))
                else:
                    self.left_out[("logged model", "without an imported run")] += 1
        self._registered(known)

    def _registered(self, known: set) -> None:
        aliases: Dict[Tuple[str, str], List[str]] = {}
        for rm in _paged(self.client.search_registered_models):
            for alias, version in (rm.aliases or {}).items():
                aliases.setdefault((rm.name, str(version)), []).append(alias)
        for mv in _paged(self.client.search_model_versions):
            if mv.run_id not in known:
                self.left_out[("registered model version", "without an imported run")] += 1
                continue
            model_id = mv.model_id or (mv.source[len("models:/"):] if (mv.source or "").startswith("models:/m-")
                                       else None)
            logged = self.models.get(model_id or "")
            properties: Dict[str, PropertyValue] = {
                "name": mv.name, VERSION: int(mv.version), _M + "source": mv.source or "",
                ALIASES: ",".join(sorted(aliases.get((mv.name, str(mv.version)), []))),
                ORIGIN: f"{PREFIX}registered/{mv.name}/{mv.version}"}
            if mv.current_stage and mv.current_stage != "None":
                properties[_M + "stage"] = mv.current_stage
            if model_id:
                properties[MODEL_ID] = model_id
            spec = ArtifactSpec(f"models:/{mv.name}/{mv.version}", type=schema.SAVED_MODEL.name,
                                properties=properties, created_ms=mv.creation_timestamp or None,
                                fingerprint=logged.fingerprint if logged else _fingerprint(mv.source or ""))
            self.outputs.setdefault(mv.run_id, []).append(("registered", spec))

    # -- one run ---------------------------------------------------------------------

    def _dataset(self, d: Any) -> ArtifactSpec:
        key = (d.name, d.digest, d.source)
        if key not in self.datasets:
            try:
                source = json.loads(d.source) if d.source else {}
            except ValueError:
                source = {}
            found = next((source[k] for k in ("uri", "url", "path", "table_name") if isinstance(source, dict)
                          and isinstance(source.get(k), str) and source[k]), None)
            uri = _file_uri(found) if found else f"mlflow-dataset:{d.name}@{d.digest}"
            properties: Dict[str, PropertyValue] = {"name": d.name, "digest": d.digest,
                                                    "source_type": d.source_type or "",
                                                    ORIGIN: f"{PREFIX}dataset/{d.name}@{d.digest}"}
            for k in ("schema", "profile"):
                if getattr(d, k, None):
                    properties[k] = getattr(d, k)
            self.datasets[key] = ArtifactSpec(uri, type=schema.DATASET.name, properties=properties,
                                              fingerprint=_fingerprint(uri))
            self.mapped["dataset"] += 1
        return self.datasets[key]

    def _named(self, what: str, name: str, role: values.Role, taken: Mapping[str, Any]) -> bool:
        """Whether a param's, tag's or metric's name can be stored as it is (else counted)."""
        try:
            values.check_name(name, role)
        except MlmdExerciseError:
            self.left_out[(what, "whose name MLMD cannot hold")] += 1
            return False
        if name in taken or name.startswith(TAG_PREFIX) and what != "tag":
            self.left_out[(what, "named as a param or property of its run")] += 1
            return False
        return True

    def spec(self, run: Any) -> RunSpec:
        """The run as an import writes it, with its metric histories (read now)."""
        info, data = run.info, run.data
        custom: Dict[str, PropertyValue] = {ORIGIN: PREFIX + info.run_id}
        name = info.run_name or data.tags.get("mlflow.runName")
        if name:
            custom[RUN_NAME] = name
        if info.artifact_uri:
            custom[_M + "artifact_uri"] = _file_uri(info.artifact_uri)
        for key, value in data.tags.items():
            if key in _SYSTEM:
                custom[_SYSTEM[key]] = value
            elif key == "mlflow.parentRunId":
                custom[PARENT] = PREFIX + value
            elif key.startswith("mlflow."):
                continue  # MLflow's bookkeeping (source type, logged-model history, notes): said in docs
            elif len(value) > values.MAX_NAME:
                self.left_out[("tag", f"longer than {values.MAX_NAME} characters")] += 1
            elif self._named("tag", TAG_PREFIX + key, values.Role.PROPERTY, custom):
                custom[TAG_PREFIX + key] = value
        params: Dict[str, PropertyValue] = {key: _param(text) for key, text in data.params.items()
                                            if self._named("param", key, values.Role.PARAM, custom)}
        metrics: Dict[str, Sequence[Point]] = {}
        for key in data.metrics:
            if not self._named("metric", key, values.Role.METRIC, {**custom, **params}):
                continue
            found = self.histories.pop((info.run_id, key), None)
            if found is None:
                found = self.client.get_metric_history(info.run_id, key)
            # The same point twice is one (the file store writes a run's metrics again to a model
            # logged in it; the database stores keep one row).
            points = sorted({(int(m.step), int(m.timestamp), float(m.value)) for m in found}, key=lambda p: p[:2])
            metrics[key] = [Point(*p) for p in points]
            self.mapped["metric point"] += len(points)
        inputs: Dict[str, ArtifactSpec] = {}
        for di in (run.inputs.dataset_inputs if run.inputs else []) or []:
            role = next((t.value for t in di.tags or [] if t.key == "mlflow.data.context" and t.value), "dataset")
            _add(inputs, role, self._dataset(di.dataset))
        models = (run.inputs.model_inputs if run.inputs else None) or []
        if not models and self.models:  # MLflow's SQL store searches runs without their model inputs
            full = self.client.get_run(info.run_id)
            models = (full.inputs.model_inputs if full.inputs else None) or []
        for mi in models:
            if mi.model_id in self.models:
                _add(inputs, "base_model", self.models[mi.model_id])
            else:
                self.left_out[("model input", "that is no logged model of the store")] += 1
        outputs: Dict[str, ArtifactSpec] = {}
        for role, spec in self.outputs.get(info.run_id, []):
            _add(outputs, role, spec)
            self.mapped["logged model" if role == "model" else "registered model version"] += 1
        return RunSpec(type=schema.TRAINER.name, inputs=inputs, outputs=outputs,
                       state=_STATES.get(info.status, ExecutionState.UNKNOWN).value, params=params,
                       experiment=self.experiments[info.experiment_id], name=PREFIX + info.run_id,
                       started_ms=info.start_time or None, ended_ms=info.end_time or None,
                       custom=custom, metrics=metrics)


def _add(side: Dict[str, ArtifactSpec], role: str, spec: ArtifactSpec) -> None:
    """`spec` under `role`, or role-2, role-3 ... where the run has one there already."""
    name, n = role, 1
    while name in side and side[name] is not spec:
        n += 1
        name = f"{role}-{n}"
    side[name] = spec


def _stored_names(tracker: Tracker, names: Sequence[str]) -> set:
    backend = tracker.store.backend
    type_id = tracker.store.catalog.writable_type(Kind.EXECUTION, schema.TRAINER.name)[1]
    found: set = set()
    for chunk in backend.chunks(list(names)):
        found.update(e.name for e in backend.executions(Query(type_id=type_id, names=chunk)))
    return found


def import_mlflow(tracker: Tracker, source: MlflowSource, *, batch_size: int = 1000,
                  progress: Optional[Any] = None) -> MlflowResult:
    """Records the MLflow runs the store does not hold yet (by name, `mlflow:<run id>`), with
    their histories, datasets and models, `batch_size` runs per transaction.

    Raises:
        MlmdExerciseError: MLflow failed while it was read, naming the URI.
    """
    # By start time: a run that used a model (a fine-tune) started after the run that made it.
    runs = source.runs
    there = _stored_names(tracker, [PREFIX + r.info.run_id for r in runs])
    new = [r for r in runs if PREFIX + r.info.run_id not in there]
    source.mapped["experiment"] = len({source.experiments[r.info.experiment_id] for r in new})
    # What MLflow raises while its runs are read is said by mlflow_client, around all of this.
    bulk = record_runs(tracker, _specs(source, new), batch_size=batch_size, progress=progress)
    if there:
        bulk = BulkResult(bulk.recorded, bulk.skipped + len(there), bulk.points)
        late = [str(spec.properties[ORIGIN]) for r in runs if PREFIX + r.info.run_id in there
                for _, spec in source.outputs.get(r.info.run_id, [])]
        missing = len(set(late) - _stored_origins(tracker, late))
        if missing:  # a run's outputs are written with it, never added to it later
            source.left_out[("model", "logged or registered after its run was imported")] += missing
    return MlflowResult(bulk, source.mapped, source.left_out)


def _specs(source: MlflowSource, runs: Sequence[Any]) -> Iterator[RunSpec]:
    for first in range(0, len(runs), _AHEAD):
        ahead = runs[first:first + _AHEAD]
        source.read_ahead(ahead)
        for run in ahead:
            yield source.spec(run)


def _stored_origins(tracker: Tracker, origins: Sequence[str]) -> set:
    backend = tracker.store.backend
    found: set = set()
    for chunk in backend.chunks(sorted(set(origins))):
        found.update(str(a.custom.get(ORIGIN)) for a in backend.artifacts(
            Query(custom=(PropertyTest(ORIGIN, "in", tuple(chunk)),))))
    return found
