"""No value reaches a database as SQL text (issue 19).

ml-metadata 1.17 writes its SQL as text and quotes each string with the database's own
function, wrongly for some characters (store/mlmd/guard.py has the list; the `raw_` tests
below run each finding against the real servers). Issue 19's strings go through every
command that takes a string and through the API, on every database with both backends, and
each test asserts that (a) no canary table appeared, (b) no statement the server ran has
the injected SQL outside a string literal (the server's own log of statements: see
tests/server_logs.py), and (c) the value reads back exactly, or, where ml-metadata would
mis-quote it (a backslash on PostgreSQL), was refused at the call with one line, before
anything was written (the store's nodes, types and events are unchanged).
"""

from __future__ import annotations

import contextlib
import gc
import json
import shlex
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional

import pytest

import mlmd_exercise as mx
from mlmd_exercise.errors import MlmdExerciseError
from mlmd_exercise.masking import mask_argv
from mlmd_exercise.read.nodes import runs_named
from mlmd_exercise.records import Kind
from mlmd_exercise.store.address import parse_location
from mlmd_exercise.store.backend import Query, TextSearch
from mlmd_exercise.write.bulk import ArtifactSpec, RunSpec, record_runs

from conftest import new_location, server_admin, server_base, write
from raw_mlmd import pb, raw_mlmd
from server_logs import statements_logged

# The strings: the first ends ml-metadata's literal on PostgreSQL and runs the rest
# (a lookup by that name made the table); the second does the same inside a VALUES list (a
# write); the third breaks every write there. All three hold a backslash.
INJECTIONS = {
    "ends-a-literal": "' ; CREATE TABLE pwned (x int); --\\",
    "ends-a-values-list": "') ; CREATE TABLE pwned (x int); --\\",
    "quotes-and-backslashes": "a\\'b\\\\c",
}
REFUSED = "refusing to give ml-metadata "


# -- what the store holds, and what ran -----------------------------------------------------------


def canaries(address: str) -> List[str]:
    """Tables whose name starts with "pwned" in the store's database."""
    loc = parse_location(address)
    if loc.is_sqlite:  # in a process of its own: ml-metadata may hold the file here
        code = ("import sqlite3, sys; print('\\n'.join(r[0] for r in sqlite3.connect(sys.argv[1]).execute("
                "\"SELECT name FROM sqlite_master WHERE lower(name) LIKE 'pwned%'\")))")
        done = subprocess.run([sys.executable, "-c", code, str(loc.path)], capture_output=True, text=True, check=True)
        return done.stdout.split()
    admin = server_admin(address)
    try:
        where = "table_schema = DATABASE()" if loc.scheme == "mysql" else "table_schema = current_schema()"
        return [r[0] for r in admin.run(f"SELECT table_name FROM information_schema.tables WHERE {where} "
                                        "AND lower(table_name) LIKE 'pwned%'")]
    finally:
        admin.close()


def snapshot(address: str) -> Dict[str, Any]:
    """Every type, node and event of the store, as records: what a refused write must leave."""
    store = mx.open_store(address)
    backend = store.backend
    executions = backend.executions(Query(order="id", ascending=True))
    found = {
        "types": [backend.types(kind) for kind in Kind],
        "artifacts": backend.artifacts(Query(order="id", ascending=True)),
        "executions": executions,
        "contexts": backend.contexts(Query(order="id", ascending=True)),
        "events": sorted(backend.events_by_executions([e.id for e in executions]),
                         key=lambda e: (e.execution_id, e.artifact_id, e.type)),
    }
    del store, backend
    gc.collect()
    return found


@contextlib.contextmanager
def watched(address: str) -> Iterator[Optional[Any]]:
    """For a server store, its database made with every statement logged (tests/server_logs.py)."""
    if parse_location(address).is_sqlite:
        yield None
    else:
        with statements_logged(address) as log:
            yield log


def nothing_ran(address: str, log) -> None:
    """(a) no canary table, (b) nothing injected ran: no statement has it outside a literal."""
    assert canaries(address) == []
    if log is not None:
        statements = log.outside_literals()
        assert statements, "the server logged no statement of this store"
        ran = [s for s in statements if "pwned" in s.lower()]
        assert ran == [], f"injected SQL ran: {ran[:3]}"


def needs_mlmd() -> None:
    """Skips a test of the ml-metadata backend where ml-metadata is not installed."""
    from mlmd_exercise.store import choice

    if choice.mlmd_missing():
        pytest.skip(f"ml-metadata {choice.mlmd_missing()}: a test of its backend")


def refuses(address: str) -> bool:
    """Whether this store's backend refuses the injection strings: ml-metadata on PostgreSQL."""
    store = mx.open_store(address)
    answer = store.backend.name == "mlmd" and store.location.scheme == "postgresql"
    del store
    gc.collect()
    return answer


def seed(address: str, tmp_path: Path) -> None:
    """One ordinary run, so that the types and an experiment are there before the strings come."""
    tracker = mx.Tracker(mx.open_store(address, create=True))
    with tracker.execution(inputs={"examples": tracker.dataset(write(tmp_path / "seed.csv", "a\n1\n"))}) as run:
        run.log_model(write(tmp_path / "seed.bin", "m"), name="M")


# -- the writes: each through the API or a command --------------------------------------------------


def writes(address: str, value: str, tmp_path: Path, run_cli) -> Dict[str, Callable[[], None]]:
    """Each way of writing `value`, by name: a call that records it or raises the refusal (a
    run that logs it as a metric is started here, before the caller takes its snapshot)."""
    data = write(tmp_path / "d.csv", "a\n2\n")

    def cli(*args: str) -> None:
        result = run_cli(*args, "--db", address)
        if result.code == 2 and result.err.startswith(f"mlmd-exercise: error: {REFUSED}"):
            assert len(result.err.splitlines()) == 1, result.err
            raise MlmdExerciseError(result.err)
        assert result.code == 0, result.err

    def tracker() -> mx.Tracker:
        return mx.Tracker(mx.open_store(address, create=True))

    def experiment() -> None:
        t = mx.Tracker(mx.open_store(address, create=True), experiment=value)
        with t.execution(inputs={"examples": t.dataset(data)}, name=f"{uuid.uuid4().hex}-experiment"):
            pass

    def param() -> None:
        with tracker().execution(params={"p": value, value: 1}, name=f"{uuid.uuid4().hex}-param"):
            pass

    def run_name() -> None:
        with tracker().execution(name=value):
            pass

    def artifact_property() -> None:
        t = tracker()
        noted = write(tmp_path / "noted.csv", "a\n3\n")  # new content: a new artifact, with its property
        with t.execution(inputs={"examples": t.artifact(noted, properties={"note": value})}):
            pass

    started = tracker().execution(name=f"{uuid.uuid4().hex}-metric")  # before the store is looked at

    def metric_and_role() -> None:
        started.log_metrics({"m" + value: 0.5})  # a metric is a number: the string as its name
        started.log_output(value, data, type="Metrics")
        started.finish()

    def bulk() -> None:
        record_runs(tracker(), [RunSpec(
            params={"p": value}, name=value + "-bulk", experiment=value + "-bulk",
            inputs={"examples": ArtifactSpec("s3://bucket/" + value, properties={"note": value})},
            outputs={value: ArtifactSpec("s3://bucket/out/" + value)})])

    def runs_file() -> None:
        path = tmp_path / "runs.jsonl"
        path.write_text(json.dumps({
            "name": value + "-file", "experiment": value + "-file", "params": {"p": value, value: 2},
            "inputs": {"examples": {"uri": "s3://file/" + value, "properties": {"note": value}}},
            "outputs": {value: {"uri": "s3://file/out/" + value, "type": "SavedModel"}}}) + "\n")
        cli("import", str(path))

    def bundle() -> None:
        source = tmp_path / "source.db"  # a native SQLite store holding the strings
        st = mx.open_store(source, create=True, backend="native")
        record_runs(mx.Tracker(st), [RunSpec(
            params={"p": value}, name=value + "-bundle", experiment=value + "-bundle",
            inputs={"examples": ArtifactSpec("s3://bundle/" + value, properties={"note": value})})])
        del st
        gc.collect()
        path = tmp_path / "runs.bundle"
        assert run_cli("export", "-o", str(path), "--db", str(source), "--backend", "native").code == 0
        cli("import", str(path))

    def demo() -> None:
        cli("run", "--experiment", value + "-demo", "--workdir", str(tmp_path / "demo"))

    return {"experiment": experiment, "param": param, "run name": run_name, "artifact property":
            artifact_property, "metric and output role": metric_and_role, "record_runs": bulk,
            "import of a runs file": runs_file, "import of a bundle": bundle, "run --experiment": demo}


def read_back(address: str, value: str) -> None:
    """(c) every value written by `writes` is stored exactly."""
    store = mx.open_store(address)
    backend = store.backend
    executions = backend.executions()
    artifacts = backend.artifacts()
    names = {e.name for e in executions}  # MLMD's: import's names (a run's own name is a label)
    assert {value + "-bulk", value + "-file", value + "-bundle"} <= names
    assert value in {e.label for e in executions} and value not in names
    for experiment in ("", "-bulk", "-file", "-bundle", "-demo"):
        assert store.catalog.context(value + experiment).name == value + experiment
    assert sum(e.custom.get("p") == value for e in executions) == 4  # param, bulk, runs file, bundle
    assert sum(e.custom.get(value) is not None for e in executions) == 2  # param, runs file
    assert any(e.custom.get("m" + value) == 0.5 for e in executions)
    assert {"s3://bucket/" + value, "s3://bucket/out/" + value, "s3://file/" + value, "s3://file/out/" + value,
            "s3://bundle/" + value} <= {a.uri for a in artifacts}
    assert sum(a.custom.get("note") == value for a in artifacts) == 4
    events = backend.events_by_executions([e.id for e in executions])
    assert sum(e.path == (value,) for e in events) == 3  # an output role: metric_and_role, bulk, runs file
    # Looked up by each string, exactly:
    assert [a.uri for a in backend.artifacts(Query(uris=["s3://bucket/" + value]))] == ["s3://bucket/" + value]
    assert [e.label for e in runs_named(store, value)] == [value]
    assert [e.name for e in backend.executions(Query(names=[value + "-bulk"]))] == [value + "-bulk"]
    del store, backend
    gc.collect()


def reads(address: str, value: str, run_cli, tmp_path: Path, stored: bool) -> None:
    """Every command and call that reads by a string: exact answers where it is stored, "no
    experiment named" where it is not (and nothing run either way)."""
    from mlmd_exercise.web import pages, runs

    for args in (["ls", "executions", "--experiment", value, "--json"], ["states", "--experiment", value, "--json"],
                 ["export", "--experiment", value, "-o", str(tmp_path / f"x{uuid.uuid4().hex}.bundle")],
                 ["report", "--experiment", value, "-o", str(tmp_path / "r.html")]):
        result = run_cli(*args, "--db", address)
        if stored:
            assert result.code == 0, (args, result.err)
        else:
            assert result.code == 2 and result.err in (
                f"mlmd-exercise: error: no {what} named '{value}' in {parse_location(address)}\n"
                for what in ("experiment", "Experiment context")), (args, result.err)
    store = mx.open_store(address)
    page = runs.runs_page(store, runs.RunsQuery.parse({"q": value}))  # the explorer's search
    found = store.backend.executions(Query(text=TextSearch(value)))
    if stored:  # the run named so, by its label (a property ml-metadata's backend tests itself)
        assert value in {r.execution.label for r in page.rows}
    if stored:  # (MLMD's filter language cannot hold a quote or a backslash: ml-metadata's backend tests it)
        assert value + "-bulk" in {e.name for e in found}
    if stored:
        [one] = runs_named(store, value)
        shown = json.loads(run_cli("show", "execution", str(one.id), "--json", "--db", address).out)
        assert shown["node"]["properties"]["run.name"] == value
        by_name = run_cli("show", "execution", value, "--json", "--db", address)
        assert by_name.code == 0 and json.loads(by_name.out)["node"]["id"] == one.id, by_name.err
        lineage = run_cli("lineage", str(one.id), "--json", "--db", address)
        assert lineage.code == 0, lineage.err
        assert pages.node_page(store, "execution", one.id).node.label == value
    else:
        assert value not in {r.execution.label for r in page.rows}
        assert store.backend.artifacts(Query(uris=["s3://bucket/" + value])) == []
        assert runs_named(store, value) == []
    del store
    gc.collect()


@pytest.mark.parametrize("name", list(INJECTIONS))
def test_the_injection_strings_run_nothing_and_are_stored_exactly_or_refused(db, name, run_cli, tmp_path):
    value = INJECTIONS[name]
    with watched(db) as log:
        seed(db, tmp_path)
        refused = refuses(db)
        calls = writes(db, value, tmp_path, run_cli)
        before = snapshot(db)
        for what, call in calls.items():
            if refused:
                with pytest.raises(MlmdExerciseError, match=REFUSED) as e:
                    call()
                assert "nothing was sent to store" in str(e.value) and "native backend" in str(e.value), what
                assert snapshot(db) == before, f"{what} wrote before it was refused"
            else:
                call()
        if not refused:
            read_back(db, value)
        reads(db, value, run_cli, tmp_path, stored=not refused)
        nothing_ran(db, log)


ARGV_SCRIPT = """
import sys
import mlmd_exercise as mx
tracker = mx.Tracker(sys.argv[1])
with tracker.execution(params={"sep": sys.argv[3]}) as run:
    pass
print(run.id)
"""


def test_a_command_line_with_a_backslash_is_recorded_exactly_or_refused(db, tmp_path):
    """Every run records its command line: `python train.py --sep '\\t'` holds a backslash."""
    script = write(tmp_path / "train.py", textwrap.dedent(ARGV_SCRIPT))
    with watched(db) as log:
        seed(db, tmp_path)
        refused, before = refuses(db), snapshot(db)
        done = subprocess.run([sys.executable, str(script), db, "--sep", "\\t"], capture_output=True, text=True,
                              timeout=120)
        if refused:
            assert done.returncode == 1 and f"MlmdExerciseError: {REFUSED}" in done.stderr
            assert "the param 'sep'" in done.stderr or "env.command" in done.stderr
            assert snapshot(db) == before
        else:
            assert done.returncode == 0, done.stderr
            store = mx.open_store(db)
            [run] = store.backend.executions(Query(ids=[int(done.stdout)]))
            assert run.custom["env.command"] == shlex.join(mask_argv([str(script), db, "--sep", "\\t"]))
            assert run.custom["env.command"].endswith(" --sep '\\t'")
            assert run.custom["sep"] == "\\t"
            del store
        nothing_ran(db, log)


# -- the guard itself -------------------------------------------------------------------------------


class _Recorder:
    """Stands in for ml-metadata's MetadataStore: records what would have been sent."""

    def __init__(self) -> None:
        self.sent: List[str] = []

    def put_execution(self, execution, artifact_and_events, contexts, reuse_context_if_already_exist=False,
                      force_reuse_context=False):
        self.sent.append("put_execution")

    def put_artifact_type(self, artifact_type, can_add_fields=False, can_omit_fields=False):
        self.sent.append("put_artifact_type")

    def get_context_by_type_and_name(self, type_name, context_name, type_version=None):
        self.sent.append("get_context_by_type_and_name")

    def get_executions(self, list_options=None):
        self.sent.append("get_executions")


@pytest.mark.parametrize("place, where", [
    ("execution name", "the name of a Trainer execution"),
    ("execution custom value", "the custom property 'env.command' of a Trainer execution"),
    ("execution custom key", "the name of custom property 'a\\b' of a Trainer execution"),
    ("artifact uri", "the URI of a DataSet artifact"),
    ("artifact property", "the property 'split' of a DataSet artifact"),
    ("artifact external id", "the external id of a DataSet artifact"),
    ("event path", "the path step key of an INPUT event"),
    ("context name", "the name of an Experiment context"),
])
def test_the_guard_finds_a_misquoted_string_anywhere_in_a_call(place, where):
    """Every string of every proto a call carries is looked at, and the refusal names where it
    is; struct values (stored base64-encoded by ml-metadata) are not text to it."""
    pytest.importorskip("ml_metadata", reason="the guard wraps ml-metadata's store")
    from mlmd_exercise.store.mlmd.guard import Guarded

    bad = "a\\b"
    execution = pb.Execution(type_id=1, type="Trainer", name=bad if place == "execution name" else "run")
    execution.custom_properties["env.command"].string_value = bad if place == "execution custom value" else "x"
    execution.custom_properties["kubeflow"].struct_value.update({"path": "C:\\data"})  # base64: fine
    if place == "execution custom key":
        execution.custom_properties[bad].int_value = 1
    artifact = pb.Artifact(type_id=2, type="DataSet", uri=bad if place == "artifact uri" else "file:///d")
    artifact.properties["split"].string_value = bad if place == "artifact property" else "train"
    if place == "artifact external id":
        artifact.external_id = bad
    event = pb.Event(type=pb.Event.INPUT)
    event.path.steps.add().key = bad if place == "event path" else "examples"
    context = pb.Context(type_id=3, type="Experiment", name=bad if place == "context name" else "default")
    recorder = _Recorder()
    guarded = Guarded(recorder, "postgresql", "postgresql://u:***@h/db")
    with pytest.raises(MlmdExerciseError) as e:
        guarded.put_execution(execution, [(artifact, event)], [context], reuse_context_if_already_exist=True)
    assert str(e.value).startswith(f"{REFUSED}{where} 'a\\\\b': it holds a backslash, which ml-metadata 1.17 "
                                   "quotes wrongly in its SQL on PostgreSQL")
    assert recorder.sent == []
    for database in ("sqlite", "mysql"):  # a backslash is quoted right there
        Guarded(recorder, database, "x").put_execution(execution, [(artifact, event)], [context])
    assert recorder.sent == ["put_execution", "put_execution"]


def test_the_guard_refuses_a_nul_on_every_database_and_a_lookup_names_its_argument():
    pytest.importorskip("ml_metadata", reason="the guard wraps ml-metadata's store")
    from ml_metadata.metadata_store.metadata_store import ListOptions

    from mlmd_exercise.store.mlmd.guard import Guarded

    for database, name in (("sqlite", "SQLite"), ("postgresql", "PostgreSQL"), ("mysql", "MySQL")):
        recorder = _Recorder()
        with pytest.raises(MlmdExerciseError, match=f"^{REFUSED}the context name that get_context_by_type_and_name "
                                                    f"looks up 'a\\\\x00b': it holds a NUL character, at which "
                                                    f"ml-metadata 1.17 cuts the value off on {name}; nothing was "
                                                    "sent to store 's': open it with the native backend"):
            Guarded(recorder, database, "s").get_context_by_type_and_name("Experiment", "a\x00b")
        with pytest.raises(MlmdExerciseError, match="the name of an artifact type 'T\\\\x00'"):
            Guarded(recorder, database, "s").put_artifact_type(pb.ArtifactType(name="T\x00"))
        with pytest.raises(MlmdExerciseError, match="the filter query that get_executions looks up"):
            Guarded(recorder, database, "s").get_executions(list_options=ListOptions(filter_query="name = 'a\x00'"))
        assert recorder.sent == []
    Guarded(recorder, "postgresql", "s").get_executions(list_options=ListOptions(filter_query="name IN ('a b')"))
    assert recorder.sent == ["get_executions"]


@pytest.mark.parametrize("backend", ["sqlite", "mysql"])
def test_ml_metadata_is_never_given_a_nul_there_either(backend, tmp_path):
    needs_mlmd()
    if backend == "mysql":
        server_base("mysql")
    store = mx.open_store(new_location(backend, tmp_path), create=True, backend="mlmd")
    tracker = mx.Tracker(store)
    # Refused on every backend, before any backend is asked (values.py: the value table (docs/python.md)).
    with pytest.raises(MlmdExerciseError, match=r"^param 'p' = 'a\\x00b': text with a NUL character"):
        tracker.execution(params={"p": "a\x00b"})
    assert store.backend.executions() == []


def test_a_failed_runs_message_is_kept_with_its_backslashes_replaced(tmp_path):
    """An error's message is recorded of the package's own accord: on ml-metadata on
    PostgreSQL a backslash in it is replaced (U+FFFD), never a refusal that would leave the
    run RUNNING."""
    needs_mlmd()
    store = mx.open_store(new_location("postgresql", tmp_path), create=True, backend="mlmd")
    tracker = mx.Tracker(store)
    with pytest.raises(ValueError):
        with tracker.execution():
            raise ValueError("invalid literal for int(): 'a\\tb'")
    [run] = store.backend.executions()
    assert (run.state, run.custom["error_message"]) == ("FAILED", "invalid literal for int(): 'a\ufffdtb'")


def test_a_lookup_on_postgresql_goes_through_the_packages_own_sql(tmp_path):
    """ml-metadata on PostgreSQL: a name or URI it would mis-quote is looked up with bound
    parameters on the package's connection, and found, in a store the native backend wrote."""
    needs_mlmd()
    address = new_location("postgresql", tmp_path)
    value = INJECTIONS["ends-a-literal"]
    with watched(address) as log:
        native = mx.open_store(address, create=True, backend="native")
        record_runs(mx.Tracker(native, experiment=value), [RunSpec(
            name=value, inputs={"examples": ArtifactSpec("s3://b/" + value)})])
        del native
        store = mx.open_store(address, backend="mlmd")
        assert store.backend.name == "mlmd"
        assert store.catalog.context(value).name == value
        assert [e.name for e in store.backend.executions(Query(names=[value], type_id=store.catalog.type_id(
            Kind.EXECUTION, "Trainer")))] == [value]
        assert [a.uri for a in store.backend.artifacts(Query(uris=["s3://b/" + value]))] == ["s3://b/" + value]
        nothing_ran(address, log)


# -- the findings, against raw ml-metadata: what the guard is for -----------------------------------


def test_raw_ml_metadata_on_postgresql_runs_the_rest_of_a_string_with_a_backslash(tmp_path):
    """The finding itself: raw ml-metadata 1.17 looking up the issue's string on PostgreSQL
    creates the table (its log shows 'E''' ; CREATE TABLE ...). If this ever fails, a newer
    ml-metadata quotes it right: store/mlmd/guard.py's list is then worth revisiting."""
    address = new_location("postgresql", tmp_path)
    mx.open_store(address, create=True, backend="native")
    raw = raw_mlmd(address)
    raw.put_artifact_type(pb.ArtifactType(name="T"))
    raw.get_artifacts_by_uri("' ; CREATE TABLE pwned_by_a_lookup (x int); --\\")
    artifact = pb.Artifact(type_id=raw.get_artifact_type("T").id, uri="u")
    artifact.custom_properties["c"].string_value = "') ; CREATE TABLE pwned_by_a_write (x int); --\\"
    raw.put_artifacts([artifact])
    assert sorted(canaries(address)) == ["pwned_by_a_lookup", "pwned_by_a_write"]


@pytest.mark.parametrize("backend", ["sqlite", "postgresql", "mysql"])
def test_raw_ml_metadata_cuts_a_value_at_a_nul(backend, tmp_path):
    if backend != "sqlite":
        server_base(backend)
    address = new_location(backend, tmp_path)
    mx.open_store(address, create=True, backend="native")
    gc.collect()
    raw = raw_mlmd(address)
    type_id = raw.put_artifact_type(pb.ArtifactType(name="T"))
    [artifact_id] = raw.put_artifacts([pb.Artifact(type_id=type_id, uri="nul\x00byte")])
    assert raw.get_artifacts_by_id([artifact_id])[0].uri == "nul"


def test_raw_ml_metadata_on_postgresql_breaks_on_a_quote_in_a_filter(tmp_path):
    """MLMD's filter language copies a literal into its SQL, and on PostgreSQL turns every
    double quote into a single one: store/mlmd/filters.py puts only plain ASCII there."""
    ListOptions = pytest.importorskip("ml_metadata.metadata_store.metadata_store").ListOptions

    address = new_location("postgresql", tmp_path)
    mx.open_store(address, create=True, backend="native")
    raw = raw_mlmd(address)
    type_id = raw.put_artifact_type(pb.ArtifactType(name="T"))
    raw.put_artifacts([pb.Artifact(type_id=type_id, uri="u", name="it's")])
    with pytest.raises(Exception, match="syntax error"):  # ... WHERE ((table_0.name) = ('it's'))
        raw.get_artifacts(list_options=ListOptions(filter_query="name = 'it\\'s'"))


def test_the_docs_show_the_refusal_as_it_is():
    from mlmd_exercise.store.mlmd.guard import refusal

    readme = (Path(__file__).parent.parent / "docs" / "stores.md").read_text()
    line = refusal("a\\b", "the experiment name", "postgresql", "postgresql://ann:***@db.example.org:5432/mlmd")
    assert f"\nmlmd-exercise: error: {line}\n" in readme
