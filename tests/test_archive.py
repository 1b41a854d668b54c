"""`backup` of a server store: PostgreSQL and MySQL stores (a team's, or the MLMD database a
Kubeflow Pipelines installation left behind) copied whole into a standalone SQLite file, ids
kept, that raw ml-metadata reads as it read the server; the server only read, in one snapshot."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path
from typing import Dict, List

import pytest

import foreign_stores as fs
import mlmd_exercise as mx
from conftest import STORES, backend_of, mlmd_python, run_module, server_base, tracked
from mlmd_exercise.store import open_store
from mlmd_exercise.store.address import parse_location
from mlmd_exercise.store.archive import TABLES, archive_to_sqlite

HERE = Path(__file__).parent


def raw_facts(db: str) -> dict:
    """What raw ml-metadata reads from a store (tests/foreign_stores.py), in a subprocess."""
    code = ("import json, sys; sys.path.insert(0, sys.argv[2]); from foreign_stores import open_raw, facts; "
            "print(json.dumps(facts(open_raw(sys.argv[1]))))")
    proc = subprocess.run([mlmd_python(), "-c", code, db, str(HERE)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout)


def tables(db: str) -> Dict[str, List[tuple]]:
    """Every row of MLMD's tables, as plain values (proto values as their bytes), sorted."""
    store = open_store(db, backend="native")
    try:
        raw = store.backend.db  # type: ignore[attr-defined]
        found = {}
        for table, _ in TABLES:
            columns = [c for c in _columns(table)]
            rows = raw.run(f"SELECT {', '.join(columns)} FROM {table}")
            if "proto_value" in columns:
                at = columns.index("proto_value")
                rows = [r[:at] + (None if r[at] is None else raw.proto_raw(r[at]),) + r[at + 1:] for r in rows]
            found[table] = sorted(rows, key=repr)
        return found
    finally:
        store.close()


def _columns(table: str) -> List[str]:
    import sqlite3

    from mlmd_exercise.store.native.sqlite import SQLITE_DDL

    con = sqlite3.connect(":memory:")
    for statement in SQLITE_DDL:
        con.execute(statement)
    return [r[1] for r in con.execute(f"PRAGMA table_info(`{table}`)")]


@pytest.mark.parametrize("kind", [k for k in fs.KINDS if k != "fanout"])
def test_a_kubeflow_style_mysql_store_is_archived_whole_to_an_sqlite_file(kind, tmp_path):
    source = tracked(f"{server_base('mysql')}{kind}_{uuid.uuid4().hex[:12]}")
    proc = subprocess.run([mlmd_python(), str(HERE / "foreign_stores.py"), kind, source],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    facts = json.loads(proc.stdout)
    before = tables(source)
    copy = tmp_path / "archive.db"
    done = run_module(["backup", copy, "--db", source], tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"backed up {parse_location(source)} to {copy} (") and "checked" in done.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["archive.db"]  # one file, nothing beside it
    assert tables(str(copy)) == before == tables(source)  # row for row, ids kept; the server unchanged
    assert raw_facts(str(copy)) == facts  # ml-metadata reads the file as it read the server
    checked = [run_module(["check", "--db", db], tmp_path) for db in (copy, source)]
    assert [(c.returncode, c.stdout) for c in checked] == [(checked[1].returncode, checked[1].stdout)] * 2


@pytest.mark.parametrize("store", [s for s in STORES if s.startswith("postgresql")])
def test_a_postgresql_store_is_archived_whole_with_either_backend_writing_it(store, tmp_path):
    source = tracked(f"{server_base('postgresql')}t_{uuid.uuid4().hex[:12]}")
    with backend_of(store):
        tracker = mx.Tracker(source, experiment="team")
        data = tmp_path / "train.csv"
        data.write_text("x,y\n1,2\n")
        for i in range(3):
            with tracker.execution("Trainer", inputs={"examples": tracker.dataset(data)},
                                   params={"lr": 0.1 * i, "layers": i, "label": "é ☃ ' \"", "on": i % 2 == 0,
                                           "nested": {"a": [1, 2]}}) as run:
                run.log_metrics({"accuracy": 0.5 + i / 10}, step=i)
                model = tmp_path / f"m{i}.bin"
                model.write_bytes(b"\x00model")
                run.log_model(model, name="m")
        tracker.store.close()
    before = tables(source)
    copy = tmp_path / "archive.db"
    archive_to_sqlite(parse_location(source), copy)
    assert tables(str(copy)) == before
    with backend_of(store):
        server = open_store(source)
        for backend in ("native", "mlmd") if any(s.endswith("-mlmd") for s in STORES) else ("native",):
            archived = open_store(copy, backend=backend)
            assert [(e.id, e.type, e.state, e.properties) for e in archived.backend.executions()] == \
                   [(e.id, e.type, e.state, e.properties) for e in server.backend.executions()]
            archived.close()
        server.close()

def test_the_archive_is_of_one_moment_while_the_server_is_written(tmp_path):
    source = tracked(f"{server_base('mysql')}t_{uuid.uuid4().hex[:12]}")
    tracker = mx.Tracker(source)
    for i in range(3):
        with tracker.execution("Trainer", params={"i": i}):
            pass
    writes = []

    def write_meanwhile(table: str, rows: int) -> None:
        if table == "Type" and not writes:  # the copy has begun: a writer records a run now
            with tracker.execution("Trainer", params={"i": 99}):
                pass
            writes.append(table)

    copy = tmp_path / "archive.db"
    archive_to_sqlite(parse_location(source), copy, progress=write_meanwhile)
    assert writes and mx.count_by_state(tracker.store) == {"COMPLETE": 4}
    tracker.store.close()
    assert mx.count_by_state(str(copy)) == {"COMPLETE": 3}  # the run recorded meanwhile is not half in it
    assert mx.check_store(str(copy)) == []


def test_a_failed_archive_leaves_nothing(tmp_path):
    copy = tmp_path / "archive.db"
    proc = run_module(["backup", copy, "--db", f"{server_base('mysql')}no_such_{uuid.uuid4().hex[:8]}"], tmp_path)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert list(tmp_path.iterdir()) == []
