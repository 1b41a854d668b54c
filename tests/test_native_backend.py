"""The native backend against ml-metadata itself: what it writes, raw ml-metadata reads node by
node (and goes on writing); what ml-metadata writes, it reads as ml-metadata does."""

from __future__ import annotations

import base64
import gc
import os
import sqlite3
import subprocess
import sys

import pytest

from mlmd_exercise.errors import ConflictError, NotFoundError, StoreError
from mlmd_exercise.records import (EVENT_TYPES, ArtifactState, ExecutionState, Kind, PropertyType)
from mlmd_exercise.store.backend import (ContextWrite, ExecutionWrite, NewArtifact, NewEvent, PropertyTest, Query,
                                         TextSearch)
from mlmd_exercise.store.address import parse_location
import mlmd_exercise as mx
from conftest import digest, new_location
from native_compare import native_backend, raw_backend, records, snapshot, write_everything
from raw_mlmd import pb, raw_mlmd

# The native backend's databases.
@pytest.fixture(params=["sqlite", "postgresql", "mysql"])
def db(request, tmp_path):
    """A new store's address, once per database the native backend speaks."""
    return new_location(request.param, tmp_path)



def test_native_writes_what_raw_ml_metadata_reads(db):
    native = native_backend(db, create=True)
    made = write_everything(native)
    ours = snapshot(native)
    native.close()
    raw = raw_backend(db)
    assert snapshot(raw) == ours
    # A few things straight from MLMD's protos, beside the records.
    mlmd = raw_mlmd(db)
    [executed] = mlmd.get_executions_by_id([made["made"][0][0]])
    assert executed.last_known_state == pb.Execution.COMPLETE and executed.properties["s"].string_value == "done"
    assert executed.custom_properties["host"].int_value == 5
    events = mlmd.get_events_by_execution_ids([made["made"][1][0]])
    assert sorted(pb.Event.Type.Name(e.type) for e in events) == sorted(EVENT_TYPES[1:])
    out = [e for e in events if e.type == pb.Event.DECLARED_OUTPUT][0]
    assert [s.WhichOneof("value") for s in out.path.steps] == ["key", "index", "key", "key"]
    artifact = mlmd.get_artifact_by_type_and_name("DataSet", "a-LIVE")
    assert artifact.properties["st"].struct_value["c"]["d"] is True
    assert artifact.properties["b"].bool_value and artifact.custom_properties["s"].string_value == "custom, hidden"
    assert {c.name for c in mlmd.get_contexts_by_execution(made["made"][1][0])} == {"exp"}
    assert len(mlmd.get_artifacts_by_context(made["lineage"][2])) == 3

    # ml-metadata goes on writing to it; the native backend reads all of it as MLMD does.
    at, et, ct = made["types"]
    parent = pb.ArtifactType(name="Model", base_type=pb.ArtifactType.MODEL)
    parent.properties["p"] = pb.PROTO
    model_type = mlmd.put_artifact_type(parent)
    model = pb.Artifact(type_id=model_type, uri="/model", external_id="ext-1", state=pb.Artifact.PENDING)
    model.properties["p"].proto_value.Pack(pb.Artifact(uri="inner"))
    model.custom_properties["st"].struct_value.update({"k": [1, "two"]})
    [model_id] = mlmd.put_artifacts([model])
    run = pb.Execution(type_id=et, name="by-mlmd", external_id="ext-run")
    event = pb.Event(type=pb.Event.OUTPUT)
    event.path.steps.add().index = 4
    event.path.steps.add().key = "deep"
    mlmd.put_execution(run, [(mlmd.get_artifacts_by_id([model_id])[0], event)],
                       [pb.Context(type_id=ct, name="by-mlmd", external_id="ext-ctx")])
    del mlmd
    gc.collect()
    native = native_backend(db, create=True)
    assert snapshot(native) == snapshot(raw)
    [record] = native.artifacts(Query(ids=[model_id]))
    assert record.external_id == "ext-1" and record.state == "PENDING"
    packed = pb.Artifact(uri="inner").SerializeToString()
    assert record.properties["p"] == {"type_url": "type.googleapis.com/ml_metadata.Artifact",
                                      "value": base64.b64encode(packed).decode()}
    assert record.custom["st"] == {"k": [1.0, "two"]}
    assert [t.base_type for t in native.types(Kind.ARTIFACT)] == [None, "MODEL"]
    # And the native backend writes on after ml-metadata: ids go on from MLMD's.
    [after] = native.put_artifacts([NewArtifact(at, "DataSet", "/after")])
    assert after == model_id + 1
    native.close()
    assert snapshot(raw_backend(db)) == snapshot(native_backend(db))


def test_native_reads_what_ml_metadata_writes(db):
    import mlmd_exercise as mx
    from mlmd_exercise.store import choice

    if choice.mlmd_missing():
        pytest.skip(f"ml-metadata {choice.mlmd_missing()}: it writes here, in this process")

    store = mx.open_store(db, create=True, backend="mlmd")  # as the package opens it
    mlmd_side = store.backend
    write_everything(mlmd_side)
    mlmd = raw_mlmd(db)
    t = pb.ExecutionType(name="Deployer", base_type=pb.ExecutionType.DEPLOY, version="v1", description="d")
    t.properties["x"] = pb.STRING
    mlmd.put_execution_type(t)
    any_proto = pb.Artifact(type_id=mlmd.get_artifact_type("DataSet").id, uri="/p")
    any_proto.custom_properties["pr"].proto_value.Pack(pb.Execution(name="packed"))
    mlmd.put_artifacts([any_proto])
    del mlmd
    expected = snapshot(mlmd_side)
    del store, mlmd_side  # one process never holds a file with both backends (store/sqlite.py)
    gc.collect()
    native = native_backend(db)
    assert snapshot(native) == expected
    deployer = [t for t in native.types(Kind.EXECUTION) if t.name == "Deployer"][0]
    assert (deployer.version, deployer.description, deployer.base_type) == ("v1", "d", "DEPLOY")
    native.close()


_TEXTS = ["é", "€ \x80 \x81 Á", "日本", "😀", "a\\b'c"]  # MySQL's latin1 oddities among them


def test_text_of_every_alphabet_reads_back_the_same_through_either_backend(db):
    native = native_backend(db, create=True)
    at = native.put_type(Kind.ARTIFACT, "Daten-Sätze", {"s": PropertyType.STRING})
    et = native.put_type(Kind.EXECUTION, "Entraîneur", {})
    ct = native.put_type(Kind.CONTEXT, "実験", {})
    for i, text in enumerate(_TEXTS):
        native.put_execution(ExecutionWrite(et, "Entraîneur", name=f"{text}-{i}", custom={"t": text}),
                             [(NewArtifact(at, "Daten-Sätze", f"/{text}/{i}", properties={"s": text}, name=text),
                               NewEvent("OUTPUT", (text, i)))],
                             context=ContextWrite(ct, "実験", text))
    ours = snapshot(native)
    assert [a.properties["s"] for a in ours["artifacts"]] == _TEXTS
    assert [a.name for a in native.artifacts(Query(text=TextSearch("本")))] == ["日本"]
    native.close()
    gc.collect()
    raw = raw_backend(db)
    assert snapshot(raw) == ours  # stored as ml-metadata stores text, on every database
    # and what ml-metadata writes reads back the same here
    mlmd = raw_mlmd(db)
    made = pb.Artifact(type_id=at, uri="/ü", name="ü-by-mlmd")
    made.custom_properties["t"].string_value = "ü€日本😀"
    [made_id] = mlmd.put_artifacts([made])
    del mlmd
    gc.collect()
    native = native_backend(db)
    [record] = native.artifacts(Query(ids=[made_id]))
    assert (record.uri, record.name, record.custom["t"]) == ("/ü", "ü-by-mlmd", "ü€日本😀")
    assert snapshot(native) == snapshot(raw)
    native.close()
    raw.close()


# Event paths of every shape: none, a key, an index (negative, zero), keys that look like the
# "#<index>" and ":<key>" forms MySQL's read sends a step in, keys with the commas that read
# splits its row at, text of other alphabets, longer paths.
_PATHS = [(), ("examples",), (3,), (-2,), (0,), ("",), ("é中😀",), ("#1",), (":x",), (",",), ("a,b,,c",),
          ("1,2,3,4,5", 6), (",#1",), ("model", 0), (2, "k"), ("a", "b", 1)]


def test_every_shape_of_event_path_reads_back_as_written_through_either_backend(db):
    native = native_backend(db, create=True)
    at = native.put_type(Kind.ARTIFACT, "DataSet", {})
    et = native.put_type(Kind.EXECUTION, "Trainer", {})
    ct = native.put_type(Kind.CONTEXT, "Experiment", {})
    execution_ids, artifact_ids, _ = native.put_lineage(
        [ExecutionWrite(et, "Trainer", name=f"r{i}") for i in range(len(_PATHS))],
        [NewArtifact(at, "DataSet", f"/paths/{i}") for i in range(len(_PATHS))],
        [NewEvent("OUTPUT", path, artifact_index=i, execution_index=i) for i, path in enumerate(_PATHS)],
        ContextWrite(ct, "Experiment", "paths"))
    written = dict(zip(execution_ids, _PATHS))
    for read in (native.events_by_executions(execution_ids), native.events_by_artifacts(artifact_ids)):
        assert {e.execution_id: e.path for e in read} == written and len(read) == len(_PATHS)
    # A walk's edge takes the path's first step as its role (store/native/walk.py reads it its own way).
    roles = {x: "" if not path else str(path[0]) for x, path in written.items()}
    crossed = [edge for _, _, _, edges in native.walk_leg([], execution_ids, "downstream", 1) for edge in edges]
    assert {e.execution_id: e.role for e in crossed} == roles and len(crossed) == len(_PATHS)
    crossed = [edge for _, _, _, edges in native.walk_leg(artifact_ids, [], "upstream", 1) for edge in edges]
    assert {e.execution_id: e.role for e in crossed} == roles and len(crossed) == len(_PATHS)
    native.close()
    gc.collect()
    raw = raw_backend(db)
    assert {e.execution_id: e.path for e in raw.events_by_executions(execution_ids)} == written
    raw.close()


_QUERIES = [
    Query(), Query(order="id"), Query(order="id", ascending=True), Query(ascending=True), Query(limit=3),
    Query(limit=0), Query(ids=[]), Query(ids=[1, 3, 99]), Query(id_above=4, order="id", ascending=True, limit=2),
    Query(type_id=10), Query(states=["LIVE", "DELETED"]), Query(states=["RUNNING"]), Query(states=["UNKNOWN"]),
    Query(states=["COMPLETE", "UNKNOWN"]), Query(names=["a-LIVE", "run-3", "exp", "nothing"]),
    Query(uris=["/data/LIVE", "/bulk/1", "/none"]), Query(context_id=1), Query(context_id=2, limit=1),
    Query(created_from=0), Query(created_before=0),
    Query(custom=(PropertyTest("c_s", "in", ("text", "other")),)), Query(custom=(PropertyTest("host", "in", ("h",)),)),
    Query(custom=(PropertyTest("c_d", ">=", (2.0,)),)), Query(custom=(PropertyTest("c_d", ">=", (3.0,)),)),
    Query(text=TextSearch("run-1")), Query(text=TextSearch("Train")), Query(text=TextSearch("a-P")),
    Query(text=TextSearch("2")), Query(text=TextSearch("hidden", keys=("s",))), Query(text=TextSearch("train")),
    Query(text=TextSearch("a-_I")), Query(text=TextSearch("%")),
]
# A type within a context: on SQLite the context's members lead (the type is a row test),
# the explorer's filtered runs page; every type id the store may hold, both orders, a limit.
_TYPE_IN_CONTEXT = [Query(type_id=t, context_id=c, order=order, limit=limit)
                    for t in range(1, 20) for c in (1, 2) for order in ("id", "created") for limit in (None, 1)]


def test_queries_answer_as_ml_metadata_does(db):
    native = native_backend(db, create=True)
    write_everything(native)
    native.close()
    raw, native = raw_backend(db), native_backend(db)
    found = 0
    for query in _TYPE_IN_CONTEXT:
        for list_nodes in ("artifacts", "executions"):
            nodes = getattr(native, list_nodes)(query)
            assert [records(n) for n in nodes] == [records(n) for n in getattr(raw, list_nodes)(query)], \
                (list_nodes, query)
            found += len(nodes)
    assert found  # some type in some context: the comparison saw nodes
    for query in _QUERIES:
        for list_nodes in ("artifacts", "executions", "contexts"):
            if query.uris is not None and list_nodes != "artifacts":
                continue
            if list_nodes == "contexts" and (query.context_id is not None or query.states):
                continue
            known = [s.value for s in (ArtifactState if list_nodes == "artifacts" else ExecutionState)]
            if any(s not in known for s in query.states or ()):  # another kind's state: MLMD refuses it
                continue
            assert [records(n) for n in getattr(native, list_nodes)(query)] == \
                [records(n) for n in getattr(raw, list_nodes)(query)], (list_nodes, query)
    for kind in (Kind.ARTIFACT, Kind.EXECUTION):
        for i in range(1, 6):
            assert native.contexts_of(kind, i) == raw.contexts_of(kind, i)
    assert native.execution_by_name("Trainer", "run-2") == raw.execution_by_name("Trainer", "run-2")
    assert records(native.execution_by_name("Trainer", "values")) == records(raw.execution_by_name("Trainer", "values"))
    assert native.execution_by_name("Trainer", "nope") is None and native.execution_by_name("Nope", "x") is None
    assert native.context_by_name("Experiment", "bulk") == raw.context_by_name("Experiment", "bulk")
    ids = [e.id for e in native.executions()]
    assert native.contexts_of_executions(ids) == raw.contexts_of_executions(ids)
    assert native.running_processes("h") == raw.running_processes("h")
    assert native.artifacts_without_events() == raw.artifacts_without_events()
    assert native.shared_outputs() == raw.shared_outputs()
    native.close()


def test_a_numeric_at_least_test_reads_int_and_double_values(db):
    native = native_backend(db, create=True)
    at = native.put_type(Kind.ARTIFACT, "DataSet", {})
    small, big_int, big_double = native.put_artifacts([NewArtifact(at, "DataSet", u, custom={"n": v})
                                                       for u, v in (("/a", 1), ("/b", 5), ("/c", 5.5))])
    found = native.artifacts(Query(custom=(PropertyTest("n", ">=", (2,)),), order="id", ascending=True))
    assert [a.id for a in found] == [big_int, big_double]
    # Values are data: a quote or a wildcard is matched as itself.
    # Any text is a value, a backslash too (ml-metadata 1.17 on PostgreSQL refuses one).
    [slash] = native.put_artifacts([NewArtifact(at, "DataSet", "/s", custom={"s": "a\\b'c"})])
    assert native.artifacts(Query(ids=[slash]))[0].custom == {"s": "a\\b'c"}
    native.put_artifacts([NewArtifact(at, "DataSet", "/q", name="it's 100%_done")])
    assert [a.name for a in native.artifacts(Query(names=["it's 100%_done"]))] == ["it's 100%_done"]
    assert [a.name for a in native.artifacts(Query(text=TextSearch("'s 100%_")))] == ["it's 100%_done"]
    # As in ml-metadata's filter queries (and docs/explorer.md): LIKE's % and _ are wildcards.
    assert len(native.artifacts(Query(text=TextSearch("%")))) == 5
    assert [a.name for a in native.artifacts(Query(text=TextSearch("s_1")))] == ["it's 100%_done"]
    native.close()


def test_write_errors_are_the_packages(db):
    native = native_backend(db, create=True)
    et = native.put_type(Kind.EXECUTION, "Trainer", {"i": PropertyType.INT})
    at = native.put_type(Kind.ARTIFACT, "DataSet", {})
    with pytest.raises(StoreError, match="event needs a type"):  # as MLMD refuses it
        native.put_execution(ExecutionWrite(et, "Trainer"), [(NewArtifact(at, "DataSet", "/x"), NewEvent("UNKNOWN"))])
    native.put_execution(ExecutionWrite(et, "Trainer", name="taken"))
    with pytest.raises(ConflictError, match="already holds"):
        native.put_execution(ExecutionWrite(et, "Trainer", name="taken"))
    with pytest.raises(ConflictError, match="'i'"):
        native.put_type(Kind.EXECUTION, "Trainer", {"i": PropertyType.STRING})
    # What MLMD refuses of declared properties (custom ones are free).
    with pytest.raises(StoreError, match="type 'Trainer' declares no property 'x'"):
        native.put_execution(ExecutionWrite(et, "Trainer", properties={"x": 1}))
    with pytest.raises(StoreError, match="property 'i' of type 'Trainer' holds INT values, not STRING"):
        native.put_execution(ExecutionWrite(et, "Trainer", properties={"i": "one"}))
    with pytest.raises(NotFoundError, match="no type with id 999"):
        native.put_artifacts([NewArtifact(999, "Nope", "/x")])
    with pytest.raises(NotFoundError, match="no execution with id 99"):
        native.update_executions([ExecutionWrite(et, "Trainer", id=99, state=ExecutionState.FAILED)])
    # A refused write leaves nothing behind: one transaction each.
    with pytest.raises(ConflictError):
        native.put_lineage([ExecutionWrite(et, "Trainer", name="fresh"), ExecutionWrite(et, "Trainer", name="taken")],
                           [], [], ContextWrite(native.put_type(Kind.CONTEXT, "Experiment", {}), "Experiment", "e"))
    assert [e.name for e in native.executions()] == ["taken"] and native.contexts() == []
    native.close()
    reader = native_backend(db)
    with pytest.raises(StoreError, match="opened read-only"):
        reader.put_context(ContextWrite(et, "Experiment", "x"))
    reader.close()


def test_a_connection_lost_mid_write_is_an_unclear_write(tmp_path):
    from conftest import new_location
    from mlmd_exercise.errors import UnclearWriteError
    from mlmd_exercise.store import postgres
    from mlmd_exercise.store.address import parse_location

    location = new_location("postgresql", tmp_path)
    native = native_backend(location, create=True)
    et = native.put_type(Kind.EXECUTION, "Trainer", {})
    [(pid,)] = native.db.run("SELECT pg_backend_pid()")
    loc = parse_location(location)
    admin = postgres.Admin(loc, loc.dbname)
    admin.run("SELECT pg_terminate_backend(:pid)", pid=pid)
    admin.close()
    with pytest.raises(UnclearWriteError, match="may or may not be recorded"):
        native.put_execution(ExecutionWrite(et, "Trainer", name="lost"))
    with pytest.raises(StoreError) as error:
        native.executions()
    assert loc.password not in str(error.value) and "***" in str(error.value)


def test_mysql_a_closed_connection_is_opened_again_and_a_write_the_server_refused_is_run_again(tmp_path):
    from conftest import server_admin

    location = new_location("mysql", tmp_path)
    native = native_backend(location, create=True)
    et = native.put_type(Kind.EXECUTION, "Trainer", {})
    root = server_admin(location)
    for _ in range(2):  # as the server does after wait_timeout (8 h idle), or a restart
        [(connection,)] = native.db.run("SELECT CONNECTION_ID()")
        root.execute(f"KILL CONNECTION {connection}")
        # Nothing of the write had reached the server: it is run on a new connection.
        native.put_execution(ExecutionWrite(et, "Trainer", name=f"after-kill-{connection}"))
    assert len(native.executions()) == 2
    [(connection,)] = native.db.run("SELECT CONNECTION_ID()")
    root.execute(f"KILL CONNECTION {connection}")
    assert len(native.executions()) == 2  # a read, too
    # Another session holds every row of Execution: InnoDB breaks off the write after its lock
    # wait (1205) and rolls it back; it is run again a few times, then refused in one line.
    native.db.run("SET SESSION innodb_lock_wait_timeout = 1")
    root.execute("BEGIN")
    root.execute("SELECT * FROM Execution FOR UPDATE")
    with pytest.raises(StoreError, match=r"^store 'mysql://.*\*\*\*.*' is busy: the write was not recorded "
                                         r"\(Lock wait timeout exceeded.*\); try again$"):
        native.put_execution(ExecutionWrite(et, "Trainer", name="waited"))
    root.execute("ROLLBACK")
    native.put_execution(ExecutionWrite(et, "Trainer", name="waited"))
    assert sorted(e.name for e in native.executions())[-1] == "waited" and len(native.executions()) == 3
    root.close()
    native.close()


# -- refusals: each names the store, and leaves it as it was --------------------------------


def _text(p):
    p.write_text("hello, not a database\n")
    return p


def _other_app(p):
    con = sqlite3.connect(p)
    con.execute("CREATE TABLE notes (body TEXT)")
    con.commit()
    con.close()
    return p


def _damaged(p):
    native = native_backend(str(p), create=True)
    at = native.put_type(Kind.ARTIFACT, "DataSet", {})
    native.put_artifacts([NewArtifact(at, "DataSet", f"/{i}" * 200) for i in range(300)])
    native.close()
    sqlite3.connect(p).execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    os.truncate(p, 20000)  # cut short, as a full disk or a bad copy leaves it
    return p


def _version(version):
    def make(p):
        native_backend(str(p), create=True).close()
        con = sqlite3.connect(p)
        con.execute("UPDATE MLMDEnv SET schema_version = ?", (version,))
        con.commit()
        con.close()
        return p
    return make


@pytest.mark.parametrize("make, create, message", [
    (lambda p: p.parent, True, "'{parent}' is a directory, not a store file"),
    (lambda p: p, False, "no MLMD store at '{path}': record a run first"),
    (_text, True, "'{path}' is not an SQLite database"),
    (_other_app, True, "'{path}' is an SQLite database of another application (it has table 'notes'): "
                       "refusing to add MLMD's tables to it"),
    (_other_app, False, "'{path}' is an SQLite database of another application"),
    (_damaged, True, "store '{path}' is damaged (database disk image is malformed): it was not changed"),
    (_version(9), True, "store '{path}' has MLMD schema version 9, older than this MLMD's 10: it was not changed; "
                        "upgrade it with --upgrade-schema"),
    (_version(11), True, "store '{path}' has MLMD schema version 11, newer than this package's 10: "
                         "it was not changed"),
], ids=["dir", "missing", "text", "other-app-create", "other-app", "damaged", "older", "newer"])
def test_sqlite_refusals_name_the_store_and_leave_it(tmp_path, make, create, message):
    path = make(tmp_path / "m.db")
    existed, before = path.exists(), digest(path)
    for upgrade in (False, True):  # never migrated here, even when asked: ml-metadata does that
        with pytest.raises(StoreError) as e:
            mx.open_store(parse_location(str(path)), create=create, upgrade=upgrade, backend="native")
        assert str(e.value).startswith(message.format(path=path, parent=tmp_path))
    assert digest(path) == before and path.exists() == existed


def test_a_read_only_store_is_refused_for_writing(tmp_path):
    path = tmp_path / "m.db"
    native_backend(str(path), create=True).close()
    path.chmod(0o444)
    code = ("import sys; from mlmd_exercise.store import open_store; from mlmd_exercise.errors import StoreError\n"
            "try: open_store(sys.argv[1], create=True, backend='native')\n"
            "except StoreError as e: print(e)\n")
    command = [sys.executable, "-c", code, str(path)]
    if os.geteuid() == 0:  # root writes any file: drop that power, as a user has none
        drop = "-dac_override,-dac_read_search"
        command = ["setpriv", f"--inh-caps={drop}", f"--bounding-set={drop}", *command]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == f"store '{path}' is read-only: cannot record into it"


@pytest.mark.parametrize("server", ["postgresql", "mysql"])
def test_server_refusals_name_the_store(server, tmp_path):
    from conftest import new_location, server_admin
    from mlmd_exercise.store import mysql, postgres

    location = new_location(server, tmp_path)
    loc = parse_location(location)
    with pytest.raises(StoreError, match=f"no database '{loc.dbname}' on the server of store '.*\\*\\*\\*"):
        mx.open_store(loc, create=False, upgrade=False, backend="native")
    native_backend(location, create=True).close()
    admin = server_admin(location)
    admin.run("UPDATE MLMDEnv SET schema_version = 11")
    with pytest.raises(StoreError, match="schema version 11, newer than this package's 10"):
        mx.open_store(loc, create=True, upgrade=True, backend="native")
    admin.run("UPDATE MLMDEnv SET schema_version = 9")
    with pytest.raises(StoreError, match="schema version 9, older .* --upgrade-schema"):
        mx.open_store(loc, create=True, upgrade=True, backend="native")
    assert admin.run("SELECT schema_version FROM MLMDEnv") in ([[9]], [(9,)])  # never migrated
    admin.run("DROP TABLE MLMDEnv")
    with pytest.raises(StoreError, match=f"database '{loc.dbname}' of store .* belongs to another application"):
        mx.open_store(loc, create=True, upgrade=False, backend="native")
    admin.close()
    empty = parse_location(new_location(server, tmp_path))
    (mysql if server == "mysql" else postgres).ensure_database(empty, create=True)
    with pytest.raises(StoreError, match=f"database '{empty.dbname}' of store .* holds no MLMD store"):
        mx.open_store(empty, create=False, upgrade=False, backend="native")
    scheme, name = ("mysql", "MySQL") if server == "mysql" else ("postgresql", "PostgreSQL")
    unreachable = parse_location(f"{scheme}://u:secret@127.0.0.1:1/x")
    with pytest.raises(StoreError, match=f"cannot reach {name} at 127.0.0.1:1 for store '{scheme}://u:\\*\\*\\*@"):
        mx.open_store(unreachable, create=True, upgrade=False, backend="native")


def test_a_walk_inside_a_transaction_leaves_it_open_and_whole(db):
    """A walk empties its span tables after each span: on MySQL by making them anew, since
    InnoDB kept a temporary table's deleted rows (a 200,000-run chain's walk leg took 49.7 s,
    10.0 s so); TRUNCATE would have committed the caller's transaction there. A write before
    the walk, in the same transaction, is still undone by its rollback."""
    from conftest import deep_chain

    store = mx.open_store(db, create=True)
    deep_chain(store, 40)  # 80 hops: spans of 1, 2, 4, ... hops
    store.close()
    native = native_backend(db, create=True)  # open for writing
    [[newest]] = native.db.run("SELECT MAX(id) FROM Artifact")
    with pytest.raises(RuntimeError, match="rolled back"):
        with native.db.transaction():
            native.db.run("UPDATE Execution SET name = ? WHERE id = ?", "changed in the transaction", 1)
            hops = list(native.walk_leg([newest], [], "upstream", None))
            assert sum(len(a) + len(e) for _, a, e, _ in hops) == 80  # 40 runs and their 40 inputs
            raise RuntimeError("rolled back")
    assert native.db.run("SELECT name FROM Execution WHERE id = ?", 1)[0][0] != "changed in the transaction"
    native.close()
