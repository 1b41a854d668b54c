"""The native backend's hot queries stay on the indexes (SQLite's EXPLAIN QUERY PLAN, and
EXPLAIN on PostgreSQL and MySQL).

An MLMD SQLite file has no statistics, so SQLite's plans do not depend on how many rows the
store holds: a plan that reads every node of a table (or of a type) on a small store reads
them all on a store of 200,000 runs, and the run's cost grows with the store. This records
runs and asks what the CLI and the explorer's runs page ask, captures every statement the
native backend runs, and checks each one's plan: no full scan of a node, property, event or
membership table, except an ordered read of the newest nodes that stops at its LIMIT
(`ls --limit 10`: the create-time index or the ids, newest first). A look-up by type reads
the type's index (that is the question asked).
"""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path
from typing import Any, Iterator, List, Tuple

import pytest

import mlmd_exercise as mx
from mlmd_exercise.store import choice
from mlmd_exercise.store.native.sqlite import SqliteDb
from mlmd_exercise.web.runs import RunsQuery, runs_page
from conftest import deep_chain

_NODE_TABLES = ("Artifact", "Execution", "Context", "ArtifactProperty", "ExecutionProperty",
                "ContextProperty", "Event", "EventPath", "Association", "Attribution")


# Known, not yet mended: MLMD's schema has no index on Association.execution_id (nor on
# Attribution.artifact_id), only UNIQUE(context_id, execution_id), so the contexts of given
# executions read every association. The mend is an index of the package's own on MLMD's
# tables (a schema decision: ml-metadata must go on opening the file), not a query.
_KNOWN_SCANS = {("Association", "execution_id IN (SELECT value FROM json_each(?))"),
                ("Association", "execution_id = ?")}


def _bad_steps(sql: str, plan: List[str], aliases: dict) -> List[str]:
    """The steps of `plan` that read a whole node table or every node of a type."""
    bad = []
    limited = re.search(r"\bLIMIT\s+\?\s*$", sql) is not None
    for step in plan:
        scan = re.match(r"SCAN (\w+)(?: USING (?:COVERING )?INDEX (\w+))?", step)
        table = scan and aliases.get(scan.group(1), scan.group(1))
        if scan and table in _NODE_TABLES and not (table, sql.split(" WHERE ")[-1]) in _KNOWN_SCANS:
            # Newest (or highest id) first, stopping at the LIMIT: by rowid or create time.
            ordered = scan.group(2) is None or scan.group(2).endswith("create_time_since_epoch")
            if not (limited and ordered and not any("TEMP B-TREE" in s for s in plan)):
                bad.append(step)
        # Every node of a type read where the query names far fewer (URIs, ids, a context's
        # members, a property's nodes): the version look-up by URI that grew with the store.
        by_type = re.match(r"SEARCH \w+ USING (?:COVERING )?INDEX sqlite_autoindex_\w+ \(type_id=\?\)$", step)
        if by_type and re.search(r"\bn\.(uri|id) (=|IN)", sql):
            bad.append(step)
    return bad


def _aliases(sql: str) -> dict:
    return {alias: table for table, alias in re.findall(r"\b(?:FROM|JOIN)\s+(\w+)\s+(\w+)\b", sql)
            if alias.upper() not in {"WHERE", "ON", "LEFT", "JOIN", "ORDER", "GROUP", "LIMIT", "USING"}}


@pytest.fixture
def statements(monkeypatch) -> List[Tuple[str, Tuple[Any, ...]]]:
    """Every statement the native SQLite backend runs while the test runs."""
    monkeypatch.setenv(choice.ENV_BACKEND, "native")
    seen: List[Tuple[str, Tuple[Any, ...]]] = []
    run = SqliteDb.run

    def recording(self, sql: str, *values: Any):
        seen.append((sql, values))
        return run(self, sql, *values)

    monkeypatch.setattr(SqliteDb, "run", recording)
    return seen


def _hot_questions(store, address, run_cli, tmp_path: Path, statements: list) -> None:
    """What the CLI and the explorer's runs page ask of a store, and recording into it
    (`statements`, what was captured while the store was filled, is cleared first)."""
    deep_chain(store, 60)
    data, model = tmp_path / "d.csv", tmp_path / "m.bin"
    data.write_text("x")
    tracker = mx.Tracker(store, experiment="plans")
    statements.clear()
    for i in range(3):  # recording: the version look-ups by URI, the experiment by name, the steps
        model.write_text(str(i))
        with tracker.execution(inputs={"examples": tracker.dataset(data)}, params={"lr": 0.1}) as run:
            run.log_metric("acc", 0.5 + i)
            run.log_model(model, name="m")
    experiment = store.backend.context_by_name("Experiment", "plans")
    assert experiment is not None
    runs_page(store, RunsQuery())  # the explorer's runs page, newest first
    runs_page(store, RunsQuery(context=experiment.id))
    runs_page(store, RunsQuery(type="Trainer", state="COMPLETE"))
    store.close()
    for args in (["ls", "executions", "--limit", "10"], ["ls", "artifacts", "--limit", "10"],
                 ["lineage", "5"], ["states"], ["show", "execution", "5"]):
        assert run_cli("--db", address, *args).code == 0, args


def test_hot_queries_use_indexes(tmp_path: Path, statements, run_cli):
    path = tmp_path / "metadata.db"
    _hot_questions(mx.open_store(path, create=True), path, run_cli, tmp_path, statements)
    assert len(statements) > 100

    explain = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    found = {}
    for sql, values in statements:
        if not sql.lstrip().upper().startswith(("SELECT", "UPDATE", "DELETE", "WITH")):
            continue
        plan = [row[3] for row in explain.execute("EXPLAIN QUERY PLAN " + sql, values)]
        bad = _bad_steps(sql, plan, _aliases(sql))
        if bad:
            found[sql] = bad
    explain.close()
    assert not found, "\n".join(f"{sql}\n    {bad}" for sql, bad in found.items())


def test_the_check_sees_a_scan(tmp_path: Path):
    """The check itself: the plan a list parameter gave the version look-up by URI (every
    artifact of the type) is caught, and the plan of `uri = ?` is not."""
    store = mx.open_store(tmp_path / "metadata.db", create=True)
    store.close()
    con = sqlite3.connect(tmp_path / "metadata.db")
    for sql, values, caught in (
            ("SELECT n.id FROM Artifact n WHERE n.type_id = ? AND n.uri IN (SELECT value FROM json_each(?)) "
             "ORDER BY n.id", (1, '["a"]'), True),
            ("SELECT n.id FROM Artifact n WHERE n.type_id = ? AND n.uri = ? ORDER BY n.id", (1, "a"), False),
            ("SELECT n.id FROM Execution n ORDER BY n.id", (), True),
            ("SELECT n.id FROM Execution n ORDER BY n.create_time_since_epoch DESC, n.id DESC LIMIT ?", (10,),
             False)):
        plan = [row[3] for row in con.execute("EXPLAIN QUERY PLAN " + sql, values)]
        assert bool(_bad_steps(sql, plan, _aliases(sql))) is caught, (sql, plan)
    con.close()


# The servers (their planners have statistics, so on a small store they may read a whole small
# table where an index serves a big one): no plan of a hot query may read a node table whole
# where no index could serve it. PostgreSQL is asked with sequential scans turned off (it then
# scans only where no index serves the query); MySQL says which keys could serve each table.
_SERVER_KNOWN_SCANS = {"association"}  # as on SQLite: MLMD's schema has no index on execution_id
# Questions about every execution, which read every execution whatever the index: the count by
# state (`states`; MLMD has no index on last_known_state: 34 ms at 200,000 runs).
_WHOLE = {"SELECT last_known_state, COUNT(*) FROM Execution GROUP BY last_known_state"}
# The newest nodes, stopping at a LIMIT (`ls --limit 10`, the runs page): MySQL's planner reads a
# small table and sorts it where a big one is read from MLMD's create-time index (possible_keys
# names only keys for a WHERE), as on SQLite.
_NEWEST = re.compile(r"ORDER BY n\.(create_time_since_epoch|id) DESC(, n\.id DESC)? LIMIT \?$")


def _pg_nodes(plan: Any) -> Iterator[dict]:
    """Every node of a PostgreSQL plan (EXPLAIN's JSON)."""
    todo = [plan[0]["Plan"]]
    while todo:
        node = todo.pop()
        todo.extend(node.get("Plans", ()))
        yield node


def _pg_scans(plan: Any) -> List[str]:
    found = []
    for node in _pg_nodes(plan):
        relation = str(node.get("Relation Name", "")).lower()
        if node.get("Node Type") == "Seq Scan" and relation in {t.lower() for t in _NODE_TABLES} \
                and relation not in _SERVER_KNOWN_SCANS:
            found.append(f"Seq Scan on {relation}: {node.get('Filter', '')}")
    return found


def _mysql_scans(rows: List[Tuple[Any, ...]], columns: List[str], sql: str) -> List[str]:
    aliases = _aliases(sql)
    found = []
    for row in rows:
        step = dict(zip(columns, row))
        table = aliases.get(str(step["table"]), str(step["table"]))
        if step["type"] == "ALL" and step["possible_keys"] is None and table in _NODE_TABLES \
                and table.lower() not in _SERVER_KNOWN_SCANS:
            found.append(f"ALL {table}")
    return found


@pytest.mark.parametrize("database", ["postgresql", "mysql"])
def test_hot_queries_have_an_index_on_the_servers(database, tmp_path: Path, run_cli, monkeypatch):
    from conftest import new_location, server_base

    server_base(database)  # skips (or fails, in CI) without the server
    monkeypatch.setenv(choice.ENV_BACKEND, "native")
    address = new_location(database, tmp_path)
    store = mx.open_store(address, create=True)
    db_class = type(store.backend.db)
    seen: List[Tuple[str, Tuple[Any, ...]]] = []
    for method in ("run", "send"):
        original = getattr(db_class, method)

        def recording(self, sql: str, *values: Any, _original=original):
            seen.append((sql, values))
            return _original(self, sql, *values)

        monkeypatch.setattr(db_class, method, recording)
    _hot_questions(store, address, run_cli, tmp_path, seen)
    monkeypatch.undo()
    monkeypatch.setenv(choice.ENV_BACKEND, "native")
    asked = [(sql, values) for sql, values in seen if sql.lstrip().upper().startswith(("SELECT", "UPDATE", "DELETE"))
             and "pg_" not in sql and "information_schema" not in sql.lower()]
    assert len(asked) > 100
    explain = mx.open_store(address)
    db = explain.backend.db
    found, explained = {}, 0
    if database == "postgresql":
        db.run("SET enable_seqscan = off")
    for sql, values in asked:
        if sql in _WHOLE or (database == "mysql" and _NEWEST.search(sql)):
            explained += 1
            continue
        if database == "postgresql":
            [[plan]] = db.run("EXPLAIN (FORMAT JSON) " + sql, *values)
            bad = _pg_scans(plan if isinstance(plan, list) else json.loads(plan))
        else:
            rows = db.run("EXPLAIN " + sql, *values)
            columns = ["id", "select_type", "table", "type", "possible_keys", "key", "key_len", "ref", "rows",
                       "Extra"]
            bad = _mysql_scans(rows, columns, sql)
        explained += 1
        if bad:
            found[sql] = bad
    # The check itself: a read by a column no index serves is caught, one by URI is not.
    for sql, caught in (("SELECT n.id FROM Artifact n WHERE n.state = ?", True),
                        ("SELECT n.id FROM Artifact n WHERE n.uri = ?", False)):
        if database == "postgresql":
            [[plan]] = db.run("EXPLAIN (FORMAT JSON) " + sql, 1 if caught else "file:///x")
            bad = _pg_scans(plan if isinstance(plan, list) else json.loads(plan))
        else:
            bad = _mysql_scans(db.run("EXPLAIN " + sql, 1 if caught else "file:///x"),
                               ["id", "select_type", "table", "type", "possible_keys", "key", "key_len", "ref",
                                "rows", "Extra"], sql)
        assert bool(bad) is caught, (sql, bad)
    explain.close()
    assert explained == len(asked)
    assert not found, "\n".join(f"{sql}\n    {bad}" for sql, bad in found.items())


def _pg_joins(plan: Any) -> List[str]:
    """The joins of a PostgreSQL plan (JSON) that are not nested loops: hash and merge joins."""
    return [f"{node['Node Type']} ({node.get('Join Type', '')})" for node in _pg_nodes(plan)
            if node.get("Node Type") in ("Hash Join", "Merge Join")]


def test_a_walks_recursive_query_goes_by_the_indexes_on_postgresql(tmp_path: Path, monkeypatch):
    """PostgreSQL plans a recursive query once, without knowing its work table's rows at each
    level: left to itself it hashed the whole Event table and merge-joined the nodes reached,
    sorted again at every level, and a 20,000-run chain's walk took 328 s. The walk's recursive
    statement runs with hash and merge joins off (`run_by_index`), and the settings come back.
    (Whether the planner alone hashes depends on the statistics autovacuum has taken by then.)"""
    from conftest import new_location, server_base

    server_base("postgresql")
    monkeypatch.setenv(choice.ENV_BACKEND, "native")
    address = new_location("postgresql", tmp_path)
    store = mx.open_store(address, create=True)
    deep_chain(store, 300)
    store.close()
    store = mx.open_store(address)
    db = store.backend.db
    db_class = type(db)
    recursive: List[Tuple[str, Tuple[Any, ...]]] = []
    plans: List[List[str]] = []
    hashed: List[List[str]] = []
    original = db_class.run_by_index

    def recording(self, sql: str, *values: Any):
        [[plan]] = original(self, "EXPLAIN (FORMAT JSON) " + sql, *values)  # as it runs, settings and all
        plans.append(_pg_joins(json.loads(plan) if isinstance(plan, str) else plan))
        self.run("SET enable_nestloop = off")  # the check itself: it sees a hash or merge join
        [[other]] = self.run("EXPLAIN (FORMAT JSON) " + sql, *values)
        self.run("RESET enable_nestloop")
        hashed.append(_pg_joins(json.loads(other) if isinstance(other, str) else other))
        recursive.append((sql, values))
        return original(self, sql, *values)

    monkeypatch.setattr(db_class, "run_by_index", recording)
    from mlmd_exercise.read.lineage import walk

    [[newest]] = db.run("SELECT MAX(id) FROM Artifact")
    graph = walk(store, artifact_id=newest, direction="upstream")
    assert (len(graph.artifacts), len(graph.executions)) == (301, 300)
    assert recursive and all("WITH RECURSIVE" in sql for sql, _ in recursive)
    assert plans == [[] for _ in recursive]  # nested loops, node by node
    assert all(hashed)
    settings = "SELECT current_setting('enable_hashjoin'), current_setting('enable_mergejoin')"
    assert tuple(db.run(settings)[0]) == ("on", "on")
    with pytest.raises(Exception, match="no_such_table"):  # a statement that fails takes them back too
        db.run_by_index("SELECT * FROM no_such_table")
    assert tuple(db.run(settings)[0]) == ("on", "on")
    store.close()
