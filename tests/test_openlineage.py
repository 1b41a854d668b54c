"""OpenLineage out and in: the demo job's events made by the real CLI, checked by rebuilding each
with openlineage-python's own model classes (their validators: run ids as UUIDs, times as ISO
8601, producers and schema URLs as URIs) and comparing what they serialize to with the line (the
OpenLineage JSON Schema file is in no package this machine installs from, and is not copied
here); sent to a real HTTP receiver on 127.0.0.1, and to endpoints that are down; read back into
empty stores as the same lineage; and other producers' events (Airflow's, Spark's) imported.
"""

from __future__ import annotations

import contextlib
import http.server
import importlib.util
import io
import json
import os
import re
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import List

import pytest

import mlmd_exercise as mx
from conftest import STORES, backend_of, new_location, run_module
from mlmd_exercise.cli import main as cli

HAS_CLIENT = importlib.util.find_spec("openlineage") is not None
needs_client = pytest.mark.skipif(not HAS_CLIENT, reason="openlineage-python is not installed here (Python 3.10+; "
                                  "the test-openlineage extra: pip install -e '.[test-openlineage]')")
ROOT = Path(__file__).parent.parent
DOCS = ROOT / "docs" / "openlineage.md"
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def env(**more) -> dict:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("OPENLINEAGE_", "MLMD_OPENLINEAGE"))}
    return {**base, **more}


def mlmd(*args, cwd: Path, **variables) -> subprocess.CompletedProcess:
    return run_module([str(a) for a in args], cwd, env=env(**variables))


def lines_of(path: Path) -> List[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def ok_json(db, *args):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main([str(a) for a in (*args, "--db", db, "--json")])
    assert code == 0, err.getvalue()
    return json.loads(out.getvalue())


class Receiver:
    """A real OpenLineage endpoint on 127.0.0.1: collects what is POSTed, answers `status`."""

    def __init__(self, status: int = 201) -> None:
        self.status, self.posts = status, []
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.posts.append((self.path, dict(self.headers), body.decode()))
                self.send_response(receiver.status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def bodies(self) -> List[str]:
        return [body for _, _, body in self.posts]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def free_port() -> int:
    """A port nothing listens on (bound, then let go)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The demo job, run by the CLI with its events appended to a file (a bundled dataset:
    a Trainer and an Evaluator, a model passed from one to the other)."""
    if not HAS_CLIENT:
        pytest.skip("openlineage-python is not installed here")
    folder = tmp_path_factory.mktemp("oldemo")
    done = mlmd("run", "--dataset", "iris", "--openlineage-file", "events.jsonl", cwd=folder)
    assert done.returncode == 0, done.stderr
    assert "OpenLineage: 4 events sent to events.jsonl" in done.stdout
    return folder


# -- events out --------------------------------------------------------------------------------


def _anchors() -> set:
    headings = re.findall(r"^#+ (.*)$", DOCS.read_text(), re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def rebuild(line: dict):
    """The event made again from its JSON with the client's model classes (their validators run)."""
    from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
    from openlineage.client.generated.base import DatasetFacet, RunFacet

    def facets(given: dict, base):
        made = {}
        for name, data in given.items():
            fields = {k: v for k, v in data.items() if not k.startswith("_")}
            facet = base(producer=data["_producer"]).with_additional_properties(**fields)
            facet._schemaURL = data["_schemaURL"]  # attrs' on_setattr runs the URI validator
            made[name] = facet
        return made

    def datasets(kind, given: List[dict], extra: str):
        return [kind(namespace=d["namespace"], name=d["name"], facets=facets(d.get("facets", {}), DatasetFacet),
                     **{extra: {}}) for d in given]

    run = line["run"]
    return RunEvent(eventType=RunState(line["eventType"]), eventTime=line["eventTime"], producer=line["producer"],
                    run=Run(runId=run["runId"], facets=facets(run.get("facets", {}), RunFacet)),
                    job=Job(namespace=line["job"]["namespace"], name=line["job"]["name"], facets={}),
                    inputs=datasets(InputDataset, line["inputs"], "inputFacets"),
                    outputs=datasets(OutputDataset, line["outputs"], "outputFacets"))


@needs_client
def test_the_demo_jobs_events_are_valid_openlineage(demo):
    from openlineage.client.serde import Serde
    from mlmd_exercise.integrations.openlineage import DOCS as FACET_DOCS, PRODUCER

    events = lines_of(demo / "events.jsonl")
    assert [e["eventType"] for e in events] == ["START", "COMPLETE", "START", "COMPLETE"]
    anchors = _anchors()
    for line in events:
        assert Serde.to_dict(rebuild(line)) == line
        for key in ("eventType", "eventTime", "producer", "schemaURL"):
            assert line[key]
        assert UUID.match(line["run"]["runId"]) and line["job"]["namespace"] and line["job"]["name"]
        assert line["schemaURL"].startswith("https://openlineage.io/spec/") and line["producer"] == PRODUCER
        every = [*line["run"]["facets"].items()] + [f for d in line["inputs"] + line["outputs"]
                                                    for f in d["facets"].items()]
        assert every
        for name, facet in every:
            assert facet["_producer"] == PRODUCER
            url, _, anchor = facet["_schemaURL"].partition("#")
            if name.startswith("mlmdExercise_"):  # ours: documented where the URL points
                assert url == FACET_DOCS and anchor == name.lower() and anchor in anchors, name
    trainer_start, trainer_end, evaluator_start, evaluator_end = events
    assert trainer_start["job"] == {"namespace": "mlmd-exercise", "name": "default.Trainer", "facets": {}}
    assert evaluator_end["job"]["name"] == "default.Evaluator"
    assert trainer_start["run"]["runId"] == trainer_end["run"]["runId"] != evaluator_start["run"]["runId"]
    [data] = trainer_start["inputs"]
    assert data["namespace"] == "file" and data["name"] == str(demo.resolve() / "data" / "iris_train.csv")
    artifact = data["facets"]["mlmdExercise_artifact"]
    assert artifact["fingerprint"] == mx.fingerprint(demo / "data" / "iris_train.csv")
    assert artifact["role"] == "examples" and artifact["type"] == "DataSet"
    assert trainer_start["outputs"] == [] and "mlmdExercise_metrics" not in trainer_start["run"]["facets"]
    facets = trainer_end["run"]["facets"]
    assert facets["mlmdExercise_params"]["params"] == {"C": 1.0, "max_iter": 1000}
    assert set(facets["mlmdExercise_metrics"]["metrics"]) == {"train_accuracy"}
    assert facets["mlmdExercise_environment"]["environment"]["python"] == ".".join(map(str, sys.version_info[:3]))
    assert "run --dataset iris" in facets["mlmdExercise_environment"]["environment"]["command"]
    [model] = trainer_end["outputs"]
    assert model["facets"]["mlmdExercise_artifact"]["type"] == "SavedModel"
    assert {d["name"] for d in evaluator_start["inputs"]} >= {model["name"]}  # the model, passed on
    assert trainer_start["eventTime"] < trainer_end["eventTime"] <= evaluator_start["eventTime"]


@needs_client
def test_a_broken_event_does_not_rebuild(demo):
    """The check above has teeth: the client's validators refuse a bad run id and a bad time."""
    line = lines_of(demo / "events.jsonl")[0]
    for bad in ({**line, "run": {**line["run"], "runId": "run-1"}}, {**line, "eventTime": "yesterday"}):
        with pytest.raises(ValueError):
            rebuild(bad)


@needs_client
def test_export_replays_the_same_events(demo, tmp_path):
    """`openlineage export` from the store gives the live run's ends again, with the same run ids."""
    done = mlmd("openlineage", "export", "--to", tmp_path / "again.jsonl", cwd=demo)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"sent 4 events of 2 runs from metadata.db to {tmp_path / 'again.jsonl'}"
    live, again = lines_of(demo / "events.jsonl"), lines_of(tmp_path / "again.jsonl")
    assert [(e["run"]["runId"], e["eventType"], e["job"]) for e in again] == \
        [(e["run"]["runId"], e["eventType"], e["job"]) for e in live]
    assert again[1] == live[1] and again[3] == live[3]  # each end event byte for byte
    out = mlmd("openlineage", "export", "--to", "-", "--experiment", "default", "--where",
               "type = 'Evaluator'", cwd=demo)
    assert out.returncode == 0, out.stderr
    assert [json.loads(line) for line in out.stdout.splitlines()] == again[2:]
    assert out.stderr.strip() == "sent 2 events of 1 run from metadata.db to standard output"


@needs_client
@pytest.mark.parametrize("args, message", [
    (["--to", "."], "'.' is a folder"),
    (["--to", "nowhere/x.jsonl"], "its folder 'nowhere' does not exist"),
    (["--experiment", "nope"], "nope"),
    (["--where", "state = "], "--where"),
    (["--openlineage-url", "ftp://host"], "OpenLineage URL 'ftp://host'"),
])
def test_export_refuses_bad_input_in_one_line(demo, args, message):
    done = mlmd("openlineage", "export", *args, cwd=demo)
    assert done.returncode == 2, done.stderr
    assert len(done.stderr.splitlines()) == 1 and message in done.stderr and "Traceback" not in done.stderr


# -- HTTP ----------------------------------------------------------------------------------------


@needs_client
def test_a_run_sends_its_events_to_an_endpoint(tmp_path, receiver):
    done = mlmd("run", "--openlineage-url", receiver.url, "--openlineage-file", "events.jsonl", cwd=tmp_path,
                OPENLINEAGE_API_KEY="s3cret")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert [json.loads(b)["eventType"] for b in receiver.bodies()] == ["START", "COMPLETE"]
    assert receiver.bodies() == (tmp_path / "events.jsonl").read_text().splitlines()
    assert {path for path, _, _ in receiver.posts} == {"/api/v1/lineage"}
    assert all(headers["Authorization"] == "Bearer s3cret" for _, headers, _ in receiver.posts)
    assert all(headers["Content-Type"] == "application/json" for _, headers, _ in receiver.posts)


@needs_client
def test_the_environment_turns_emission_on(tmp_path, receiver):
    done = mlmd("run", cwd=tmp_path, OPENLINEAGE_URL=receiver.url, MLMD_OPENLINEAGE_FILE="e.jsonl")
    assert done.returncode == 0, done.stderr
    assert receiver.bodies() == (tmp_path / "e.jsonl").read_text().splitlines()
    assert len(receiver.bodies()) == 2
    quiet = mlmd("run", cwd=tmp_path)  # nothing set: nothing sent
    assert quiet.returncode == 0 and len(receiver.bodies()) == 2


@needs_client
@pytest.mark.parametrize("down", ["nothing listens", "answers 500"])
def test_an_endpoint_that_is_down_never_breaks_the_run(tmp_path, down):
    failing = Receiver(status=500) if down == "answers 500" else None
    url = failing.url if failing else f"http://127.0.0.1:{free_port()}"
    try:
        done = mlmd("run", "--openlineage-url", url, cwd=tmp_path)
    finally:
        if failing:
            failing.close()
    assert done.returncode == 0, done.stderr
    [warning] = done.stderr.splitlines()  # one line, for both events
    assert warning.startswith("mlmd-exercise: warning: could not send OpenLineage events to "), warning  # no module name
    assert f"{url}/api/v1/lineage" in warning and "Traceback" not in done.stderr
    assert ("HTTP 500" if failing else "no connection could be made") in warning
    assert "openlineage export" in warning
    if failing:
        assert len(failing.posts) == 1  # no retries, and nothing more sent once it failed
    assert mx.count_by_state(mx.open_store(tmp_path / "metadata.db")) == {"COMPLETE": 1}
    # Later, with the endpoint up, export sends them.
    up = Receiver()
    try:
        again = mlmd("openlineage", "export", "--openlineage-url", up.url, cwd=tmp_path)
    finally:
        up.close()
    assert again.returncode == 0, again.stderr
    assert [json.loads(b)["eventType"] for b in up.bodies()] == ["START", "COMPLETE"]
    assert again.stdout.strip() == f"sent 2 events of 1 run from metadata.db to {up.url}/api/v1/lineage"
    printed = mlmd("openlineage", "export", "--to", "-", cwd=tmp_path)
    assert up.bodies() == printed.stdout.splitlines()


@needs_client
def test_export_to_an_endpoint_that_is_down_fails_in_one_line(demo):
    url = f"http://127.0.0.1:{free_port()}"
    done = mlmd("openlineage", "export", "--openlineage-url", url, cwd=demo)
    assert done.returncode == 1
    [line] = done.stderr.splitlines()
    assert url in line and "no connection could be made" in line and "Traceback" not in line


# -- the API -------------------------------------------------------------------------------------


@needs_client
def test_the_tracker_sends_its_runs_as_they_start_and_end(tmp_path, monkeypatch):
    monkeypatch.delenv("OPENLINEAGE_URL", raising=False)
    monkeypatch.delenv("MLMD_OPENLINEAGE_FILE", raising=False)
    data = tmp_path / "d.csv"
    data.write_text("x\n1\n")
    events = tmp_path / "api.jsonl"
    tracker = mx.Tracker(tmp_path / "m.db", experiment="api", openlineage=events)
    with tracker.execution("Trainer", inputs={"examples": tracker.dataset(data)}, params={"lr": 0.1},
                           name="good", tags={"team": "ml"}) as run:
        assert [e["eventType"] for e in lines_of(events)] == ["START"]  # sent when it started
        run.log_metric("loss", float("nan"))
    with pytest.raises(ValueError):
        with tracker.execution("Trainer", inputs={"examples": tracker.dataset(data)}):
            raise ValueError("diverged")
    with pytest.raises(KeyboardInterrupt):
        with tracker.execution("Evaluator"):
            raise KeyboardInterrupt
    found = lines_of(events)
    assert [e["eventType"] for e in found] == ["START", "COMPLETE", "START", "FAIL", "START", "ABORT"]
    ok = found[1]["run"]["facets"]
    assert ok["mlmdExercise_run"]["name"] == "good" and ok["mlmdExercise_run"]["tags"] == {"team": "ml"}
    assert ok["mlmdExercise_metrics"]["metrics"] == {"loss": "NaN"} and found[1]["job"]["name"] == "api.Trainer"
    assert found[3]["run"]["facets"]["errorMessage"]["message"] == "diverged"
    assert found[3]["outputs"] == []
    # The environment's file, unless the tracker says False.
    monkeypatch.setenv("MLMD_OPENLINEAGE_FILE", str(tmp_path / "env.jsonl"))
    with mx.Tracker(tmp_path / "m.db").execution("Trainer"):
        pass
    with mx.Tracker(tmp_path / "m.db", openlineage=False).execution("Trainer"):
        pass
    assert [e["eventType"] for e in lines_of(tmp_path / "env.jsonl")] == ["START", "COMPLETE"]


def test_a_bad_openlineage_argument_is_refused_at_the_call(tmp_path):
    with pytest.raises(mx.MlmdExerciseError, match="openlineage must be"):
        mx.Tracker(tmp_path / "m.db", openlineage=42)
    assert not (tmp_path / "m.db").exists()  # refused before the store was made


# -- events in -----------------------------------------------------------------------------------


def shape(db) -> list:
    """What a store's runs are, beyond ids and when they were written: each run's type, state,
    experiment, params and metrics, and its datasets and models by role, URI and fingerprint."""
    from mlmd_exercise.read.compare import summarize_run
    from mlmd_exercise.records import Kind

    store = mx.open_store(db)
    found = []
    for execution in sorted(store.backend.executions(), key=lambda e: (e.when_ms, e.type)):
        one = mx.execution_lineage(store, execution.id)
        summary = summarize_run(execution, one.outputs)
        metrics = {k: (str(v) if v != v else v) for k, v in summary.metrics.items()}

        def side(pairs):
            return sorted((role, a.type, a.uri, a.properties.get("fingerprint"), a.version) for role, a in pairs)

        experiments = sorted(c.name for c in store.backend.contexts_of(Kind.EXECUTION, execution.id)
                             if c.type == "Experiment")
        found.append((execution.type, execution.state, experiments, dict(summary.params), metrics,
                      side(one.inputs), side(one.outputs), execution.when_ms))
    return found


@needs_client
@pytest.mark.parametrize("backend", STORES)
def test_the_demo_jobs_events_import_back_as_the_same_lineage(demo, backend, tmp_path):
    with backend_of(backend):  # $MLMD_BACKEND for the CLI's process too
        imported_back(demo, new_location(backend, tmp_path), tmp_path)


def imported_back(demo: Path, target: str, tmp_path: Path) -> None:
    done = mlmd("import", "--from-openlineage", demo / "events.jsonl", "--db", target, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0].startswith(f"imported 2 runs from 4 events in {demo / 'events.jsonl'} into ")
    assert done.stdout.splitlines()[1] == "with 4 datasets, 4 events, 1 experiment, 4 metrics, 2 params"
    assert shape(target) == shape(demo / "metadata.db")
    # The model the Trainer made is the one the Evaluator read: the metrics' lineage reaches the data.
    [metrics] = [a for a in ok_json(target, "ls", "artifacts") if a["type"] == "Metrics"]
    walk = ok_json(target, "lineage", "--artifact", metrics["id"], "--direction", "upstream")
    assert sorted(a["type"] for a in walk["artifacts"]) == ["DataSet", "DataSet", "Metrics", "SavedModel"]
    assert sorted(e["type"] for e in walk["executions"]) == ["Evaluator", "Trainer"]
    again = mlmd("import", "--from-openlineage", demo / "events.jsonl", "--db", target, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines()[0].startswith("imported 0 runs") and "(2 were already there)" in again.stdout


def event(run_id: str, kind: str, time: str, job=("airflow", "etl.load"), inputs=(), outputs=(), facets=None,
          producer="https://github.com/apache/airflow/tree/providers-openlineage/1.0"):
    def dataset(ns_name):
        return {"namespace": ns_name[0], "name": ns_name[1], "facets": {
            "schema": {"_producer": producer, "_schemaURL": "https://openlineage.io/spec/facets/1-1-1/Schema.json",
                       "fields": [{"name": "id", "type": "int"}]}}}

    return json.dumps({"eventType": kind, "eventTime": time, "producer": producer,
                       "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
                       "run": {"runId": run_id, "facets": facets or {}},
                       "job": {"namespace": job[0], "name": job[1], "facets": {}},
                       "inputs": [dataset(d) for d in inputs], "outputs": [dataset(d) for d in outputs]})


IDS = ["0190a6f0-0000-7000-8000-00000000000" + str(i) for i in range(10)]
PG = "postgres://db.example.com:5432"


def airflow_lines() -> List[str]:
    """Two Airflow tasks, the second reading the table the first wrote, and a Spark job after."""
    return [
        event(IDS[0], "START", "2024-03-01T10:00:00.000Z", inputs=[(PG, "shop.public.orders")]),
        event(IDS[0], "COMPLETE", "2024-03-01T10:05:00.000Z", inputs=[(PG, "shop.public.orders")],
              outputs=[(PG, "shop.staging.orders_clean")]),
        event(IDS[1], "START", "2024-03-01T10:06:00Z", job=("airflow", "etl.aggregate"),
              inputs=[(PG, "shop.staging.orders_clean")]),
        event(IDS[1], "COMPLETE", "2024-03-01T10:09:00Z", job=("airflow", "etl.aggregate"),
              inputs=[(PG, "shop.staging.orders_clean")], outputs=[("s3://lake", "marts/daily_orders")]),
        event(IDS[2], "START", "2024-03-01T11:00:00+00:00", job=("spark", "train_features"),
              producer="https://github.com/OpenLineage/OpenLineage/tree/1.20.0/integration/spark",
              inputs=[("s3://lake", "marts/daily_orders")]),
    ]


def write_lines(path: Path, lines: List[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def test_other_producers_events_import_with_their_lineage(db, tmp_path, run_cli):
    events = write_lines(tmp_path / "airflow.jsonl", airflow_lines())
    done = run_cli("import", "--from-openlineage", events, "--db", db)
    assert done.code == 0, done.err
    out = done.out.splitlines()
    assert out[0].startswith(f"imported 3 runs from 5 events in {events} into ")
    assert out[1] == "with 3 datasets, 5 events, 2 experiments"
    assert "left out: 5 dataset facets defined by other producers (kept in their events only)" in out
    runs = {r["name"]: r for r in ok_json(db, "ls", "executions")}
    assert {r["state"] for r in runs.values()} == {"COMPLETE", "RUNNING"}
    assert runs["openlineage:" + IDS[2]]["state"] == "RUNNING"  # a START alone
    store = mx.open_store(db)
    [spark] = [e for e in store.backend.executions() if e.name == "openlineage:" + IDS[2]]
    store.close()
    assert spark.label == "train_features" and spark.properties["openlineage.job_namespace"] == "spark"
    assert spark.properties["openlineage.producer"].endswith("integration/spark")
    assert spark.type == "Trainer"
    # Upstream from the Spark job: the mart, the aggregate task, the clean table, the load, the orders.
    walk = ok_json(db, "lineage", "--execution", spark.id, "--direction", "upstream")
    uris = {a["uri"] for a in walk["artifacts"]}
    assert uris == {f"{PG}/shop.public.orders", f"{PG}/shop.staging.orders_clean", "s3://lake/marts/daily_orders"}
    assert len(walk["executions"]) == 3
    experiments = {e["name"] for e in ok_json(db, "ls", "experiments")}
    assert experiments == {"airflow", "spark"}


def test_import_is_rerun_safe_and_takes_only_new_runs(db, tmp_path, run_cli):
    events = write_lines(tmp_path / "a.jsonl", airflow_lines()[:4])
    assert run_cli("import", "--from-openlineage", events, "--db", db).code == 0
    before = ok_json(db, "ls", "artifacts")
    again = run_cli("import", "--from-openlineage", events, "--db", db)
    assert again.code == 0 and again.out.startswith("imported 0 runs") and "(2 were already there)" in again.out
    assert ok_json(db, "ls", "artifacts") == before
    more = write_lines(tmp_path / "b.jsonl", airflow_lines() + [
        event(IDS[3], "START", "2024-03-02T10:00:00Z", inputs=[(PG, "shop.public.orders")]),
        event(IDS[3], "COMPLETE", "2024-03-02T10:05:00Z", inputs=[(PG, "shop.public.orders")],
              outputs=[(PG, "shop.staging.orders_clean")])])
    third = run_cli("import", "--from-openlineage", more, "--db", db)
    assert third.code == 0, third.err
    assert third.out.startswith("imported 2 runs") and "(2 were already there)" in third.out
    assert len(ok_json(db, "ls", "executions")) == 4
    versions = sorted(a["properties"]["version"] for a in ok_json(db, "ls", "artifacts")
                      if a["uri"] == f"{PG}/shop.staging.orders_clean")
    assert versions == [1, 2]  # the next day's output: a new version, made by its own run


def test_events_in_any_order_and_repeated_import_the_same(db, tmp_path, run_cli):
    retried = [event(IDS[8], "START", "2024-03-01T12:00:00Z"), event(IDS[8], "FAIL", "2024-03-01T12:01:00Z"),
               event(IDS[8], "COMPLETE", "2024-03-01T12:02:00Z")]  # the latest end counts
    lines = airflow_lines() + retried
    ordered = write_lines(tmp_path / "ordered.jsonl", lines)
    shuffled = write_lines(tmp_path / "shuffled.jsonl", list(reversed(lines)) + lines[1:3])
    other = new_location(db.split("://")[0] if "://" in db else "sqlite", tmp_path)
    assert run_cli("import", "--from-openlineage", ordered, "--db", db).code == 0
    done = run_cli("import", "--from-openlineage", shuffled, "--db", other)
    assert done.code == 0 and done.out.startswith("imported 4 runs from 10 events"), done.err

    def seen(where):
        store = mx.open_store(where)
        found = sorted((e.name, e.state, e.when_ms, e.ended_ms,
                       tuple(sorted((r, a.uri) for r, a in mx.execution_lineage(store, e.id).inputs)),
                       tuple(sorted((r, a.uri) for r, a in mx.execution_lineage(store, e.id).outputs)))
                       for e in store.backend.executions())
        store.close()
        return found

    assert seen(other) == seen(db)
    assert [state for name, state, *_ in seen(db) if name == "openlineage:" + IDS[8]] == ["COMPLETE"]


def test_fail_and_abort_end_runs_failed_and_canceled(db, tmp_path, run_cli):
    error = {"errorMessage": {"_producer": "https://example.com/p", "_schemaURL":
                              "https://openlineage.io/spec/facets/1-0-1/ErrorMessageRunFacet.json",
                              "message": "division by zero", "programmingLanguage": "python"}}
    events = write_lines(tmp_path / "ends.jsonl", [
        event(IDS[4], "START", "2024-01-01T00:00:00Z"), event(IDS[4], "FAIL", "2024-01-01T00:01:00Z", facets=error),
        event(IDS[5], "START", "2024-01-01T00:02:00Z"), event(IDS[5], "ABORT", "2024-01-01T00:03:00Z"),
        event(IDS[6], "RUNNING", "2024-01-01T00:04:00Z"), event(IDS[7], "COMPLETE", "2024-01-01T00:05:00Z")])
    done = run_cli("import", "--from-openlineage", events, "--db", db)
    assert done.code == 0, done.err
    store = mx.open_store(db)
    states = {e.name[len("openlineage:"):]: e for e in store.backend.executions()}
    assert {k: e.state for k, e in states.items()} == {IDS[4]: "FAILED", IDS[5]: "CANCELED", IDS[6]: "RUNNING",
                                                       IDS[7]: "COMPLETE"}
    assert states[IDS[4]].properties["error_message"] == "division by zero"
    assert states[IDS[5]].ended_ms - states[IDS[5]].when_ms == 60000
    store.close()
    # The RUNNING one's end, arriving later, is said and not written over the run.
    later = write_lines(tmp_path / "later.jsonl", [event(IDS[6], "COMPLETE", "2024-01-01T00:09:00Z")])
    again = run_cli("import", "--from-openlineage", later, "--db", db)
    assert again.code == 0 and "left out: 1 run imported RUNNING before, whose end came later" in again.out
    store = mx.open_store(db)
    assert {e.name: e.state for e in store.backend.executions()}["openlineage:" + IDS[6]] == "RUNNING"


def test_bad_lines_are_counted_and_the_first_named(tmp_path, run_cli):
    lines = airflow_lines()[:2] + ["{not json", json.dumps({"eventType": "START"}), "[1, 2]"]
    done = run_cli("import", "--from-openlineage", write_lines(tmp_path / "e.jsonl", lines),
                   "--db", tmp_path / "m.db")
    assert done.code == 0, done.err
    assert "left out: 3 lines that are no run event (the first: line 3 is not JSON)" in done.out
    assert done.out.startswith("imported 1 run from 2 events")


@pytest.mark.parametrize("given, message", [
    ("missing.jsonl", "'{}' does not exist"),
    (".", "'{}' is not a file"),
    ("empty.jsonl", "'{}' holds no OpenLineage events: it is empty"),
    ("notes.txt", "'{}' is not OpenLineage JSON lines: line 1 is not JSON, and no line is a run event"),
    ("runs.jsonl", "'{}' is not OpenLineage JSON lines: line 1 is no OpenLineage run event (no run.runId), "
                   "and no line is a run event"),
])
def test_a_file_that_is_no_events_is_refused_in_one_line(tmp_path, run_cli, given, message):
    (tmp_path / "empty.jsonl").write_text("\n")
    (tmp_path / "notes.txt").write_text("hello\nworld\n")
    (tmp_path / "runs.jsonl").write_text(json.dumps({"type": "Trainer", "inputs": {}}) + "\n")
    path = tmp_path / given if given != "." else tmp_path
    done = run_cli("import", "--from-openlineage", path, "--db", tmp_path / "m.db")
    assert done.code == 2
    assert done.err.strip() == "mlmd-exercise: error: " + message.format(path)
    assert not (tmp_path / "m.db").exists()  # refused before the store is made


def test_query_commands_and_import_never_import_openlineage(tmp_path):
    events = write_lines(tmp_path / "e.jsonl", airflow_lines())
    code = ("import sys\nfrom mlmd_exercise.cli.main import main\n"
            "for args in (['--help'], ['openlineage', '--help'], ['import', '--from-openlineage', sys.argv[2], "
            "'--db', sys.argv[1]], ['ls', '--db', sys.argv[1]], ['states', '--db', sys.argv[1]]):\n"
            "    try:\n        main(args)\n    except SystemExit:\n        pass\n"
            "print([m for m in sys.modules if m == 'openlineage' or m.startswith('openlineage.')])")
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path / "m.db"), str(events)], capture_output=True,
                          text=True, timeout=120, cwd=tmp_path, env=env())
    assert done.stdout.splitlines()[-1] == "[]", done.stderr
    assert "imported 3 runs" in done.stdout


@pytest.mark.parametrize("uri, dataset", [
    ("file:///data/train%20set.csv", ("file", "/data/train set.csv")),
    ("s3://bucket/path/to/x.parquet", ("s3://bucket", "path/to/x.parquet")),
    ("postgres://host:5432/db.schema.table", ("postgres://host:5432", "db.schema.table")),
    ("models:/clf/2", ("models", "/clf/2")),
    ("python:train.py#frame", ("python", "train.py#frame")),
])
def test_dataset_names_follow_openlineages_conventions_and_read_back(uri, dataset):
    from mlmd_exercise.integrations.openlineage import dataset_name, dataset_uri

    assert dataset_name(uri) == dataset
    assert dataset_uri(*dataset) == uri


def test_run_ids_are_stable_for_a_store(demo_dir):
    if not HAS_CLIENT:
        pytest.skip("openlineage-python is not installed here")
    from mlmd_exercise.integrations.openlineage import run_events, run_id

    store = mx.open_store(demo_dir / "metadata.db")
    [execution] = store.backend.executions()
    first = run_id(store, execution)
    assert UUID.match(first) and first == run_id(mx.open_store(demo_dir / "metadata.db"), execution)
    assert {e.run.runId for e in run_events(store, execution.id)} == {first}


@needs_client
def test_runs_an_import_records_are_sent_after_their_batch(tmp_path):
    runs = tmp_path / "runs.jsonl"
    runs.write_text("\n".join(json.dumps({"name": f"r{i}", "state": state, "params": {"i": i},
                                          "inputs": {"examples": {"uri": "s3://b/train.csv", "ref": "d"}}})
                              for i, state in enumerate(["COMPLETE", "FAILED", "RUNNING"])) + "\n")
    done = mlmd("import", runs, "--batch-size", "2", cwd=tmp_path, MLMD_OPENLINEAGE_FILE="sent.jsonl")
    assert done.returncode == 0, done.stderr
    sent = lines_of(tmp_path / "sent.jsonl")
    assert [e["eventType"] for e in sent] == ["START", "COMPLETE", "START", "FAIL", "START"]
    assert sent[0]["inputs"][0]["namespace"] == "s3://b" and sent[0]["inputs"][0]["name"] == "train.csv"
    assert sent[1]["run"]["facets"]["mlmdExercise_params"]["params"] == {"i": 0}
