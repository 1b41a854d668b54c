"""Runs that will never finish: RUNNING executions whose process is gone.

A process killed in the middle of a run leaves its execution RUNNING forever.
These functions find such runs and, only when asked, mark them FAILED (or
CANCELED) with the reason as the custom property `abandoned`.
"""

from __future__ import annotations

import os
import socket
import time
from typing import Callable, Dict, List, Optional, Sequence, Set, Tuple, TypeVar, Union

from mlmd_exercise import process
from mlmd_exercise.store.address import default_location, parse_location
from mlmd_exercise.records import ExecutionRecord, ExecutionState
from mlmd_exercise.store import SCHEMA_VERSION, Store, open_store, read_sqlite

__all__ = ["ABANDONED", "stale_runs", "interrupted_ids", "abandon", "check_store"]

ABANDONED = "abandoned"  # the custom property that says why a run was closed
# ml_metadata is imported only where MLMD's API is used, so that `states` and `check`
# answer by SQL without paying for it. MLMD's numbers (tests check them against its protos):
_RUNNING = 2  # Execution.State.RUNNING
# Every kind of event that says an execution made an artifact: DECLARED_OUTPUT, OUTPUT,
# INTERNAL_OUTPUT, PENDING_OUTPUT.
OUTPUT_KINDS = (1, 4, 6, 7)
_KIND_NAMES = ((1, "artifact"), (0, "execution"), (2, "context"))  # Type.type_kind, in check's order
T = TypeVar("T")


def _running(store: Store) -> list:
    from ml_metadata.metadata_store.metadata_store import ListOptions
    from ml_metadata.proto import metadata_store_pb2 as pb

    state = pb.Execution.State.Name(pb.Execution.RUNNING)
    return store.mlmd.get_executions(list_options=ListOptions(filter_query=f"last_known_state = {state}"))


def stale_runs(store: Store, older_than_s: Optional[float] = None,
               now: Optional[float] = None) -> List[ExecutionRecord]:
    """RUNNING executions whose process is known to be gone (it ran on this host
    and no longer exists), and, with `older_than_s`, those started longer ago."""
    from mlmd_exercise import schema

    cutoff = None if older_than_s is None else ((time.time() if now is None else now) - older_than_s) * 1000
    found = []
    start_times: Dict[int, Optional[int]] = {}
    for execution in _running(store):
        record = schema.execution_record(execution)
        too_old = cutoff is not None and execution.create_time_since_epoch <= cutoff
        if too_old or process.is_gone(record.properties, start_times):
            found.append(record)
    return sorted(found, key=lambda r: r.id)


# -- the same by SQL: RUNNING executions of this host, with their process identity ---------

# Only the identity properties of RUNNING executions that name this host; a declared
# property wins over a custom one of the same name, as MLMD's records read them.
_IDENTITIES = (
    "SELECT p.execution_id, p.name, p.is_custom_property, p.int_value, p.double_value, "
    "p.string_value, p.bool_value FROM execution e JOIN executionproperty p ON p.execution_id = e.id "
    f"WHERE e.last_known_state = {_RUNNING} AND p.name IN ('{process.HOST}', '{process.PID}', "
    f"'{process.PID_START}') AND e.id IN (SELECT execution_id FROM executionproperty "
    f"WHERE name = '{process.HOST}' AND string_value = ?)")


def _pick(name: str) -> str:
    # SQLite's COALESCE keeps each value's own type (int, float, text): one row per execution.
    return (f"(SELECT COALESCE(int_value, double_value, string_value, bool_value) FROM executionproperty "
            f"WHERE execution_id = e.id AND name = '{name}' ORDER BY is_custom_property LIMIT 1)")


# The same on SQLite, one row per execution: (id, host, pid, pid_start).
_IDENTITIES_SQLITE = (
    f"SELECT id, host, pid, start FROM (SELECT e.id, {_pick(process.HOST)} AS host, {_pick(process.PID)} AS pid, "
    f"{_pick(process.PID_START)} AS start FROM execution e WHERE e.last_known_state = {_RUNNING}) "
    "WHERE host = ?")


def _value(int_value, double_value, string_value, bool_value) -> object:
    """A property row's value as schema.get_value gives it (bool: SQLite says 0 or 1)."""
    for value in (int_value, double_value, string_value):
        if value is not None:
            return value
    return None if bool_value is None else bool(bool_value)


def _identities(rows) -> List[Tuple[int, object, object, object]]:
    """_IDENTITIES' rows as _IDENTITIES_SQLITE's: (id, host, pid, pid_start)."""
    found: Dict[int, Dict[str, Tuple[bool, object]]] = {}
    for execution_id, name, custom, *value in rows:
        props = found.setdefault(execution_id, {})
        if name not in props or props[name][0]:  # declared wins over custom
            props[name] = (bool(custom), _value(*value))
    return [(i, *(props.get(k, (False, None))[1] for k in (process.HOST, process.PID, process.PID_START)))
            for i, props in found.items()]


def _gone_ids(identities) -> List[int]:
    """Ids of the executions whose process is gone, from (id, host, pid, pid_start) rows."""
    by_process: Dict[Tuple[object, ...], List[int]] = {}
    for execution_id, *ident in identities:  # each distinct process is judged once
        by_process.setdefault(tuple((type(v), v) for v in ident), []).append(execution_id)
    gone: List[int] = []
    for ident, ids in by_process.items():
        values = dict(zip((process.HOST, process.PID, process.PID_START), (v for _, v in ident)))
        if process.is_gone({k: v for k, v in values.items() if v is not None}):
            gone += ids
    return sorted(gone)


def _by_sql(store: Union[Store, str, os.PathLike, None], query: Callable[[Callable[..., list], bool], T]
            ) -> Tuple[Optional[T], Optional[Store]]:
    """(what `query(run, on_sqlite)` returns, None) where plain SQL is safe, else (None, an
    open store).

    Safe: an SQLite store given by its address with no MLMD store open on the file in
    this process (read_sqlite checks), or PostgreSQL and MySQL through the store's own SQL
    connection; each at the schema version our SQL was checked against. `run(sql,
    *values)` runs one query with `?` placeholders and returns its rows.
    """
    if not isinstance(store, Store):
        loc = parse_location(default_location() if store is None else store)
        if loc.is_sqlite:
            found = read_sqlite(loc, lambda con: [query(lambda sql, *values: con.execute(sql, values).fetchall(),
                                                        True)])
            if found is not None:
                return found[0], None
        store = open_store(loc)
    sql = store.sql
    if sql is not None and sql("SELECT schema_version FROM mlmdenv")[0][0] == SCHEMA_VERSION:
        def run(text: str, *values) -> list:
            first, *rest = text.split("?")  # pg8000 names its parameters
            named = first + "".join(f":v{i}{part}" for i, part in enumerate(rest))
            return sql(named, **{f"v{i}": v for i, v in enumerate(values)})

        return query(run, False), None
    return None, store


def interrupted_ids(store: Union[Store, str, os.PathLike, None]) -> List[int]:
    """Ids of the RUNNING executions whose process is known to be gone, ascending: the
    runs `stale_runs(store)` finds, counted without loading them where SQL can.

    On an SQLite store given by its address (with no MLMD store open on it in this
    process) and on PostgreSQL and MySQL, one SQL query reads the host, pid and pid start time
    of this host's RUNNING executions, and each distinct pid is looked up once;
    otherwise MLMD's API loads the RUNNING executions, as `stale_runs` does.

    Args:
        store: an open store, or a store address (None: the default store).
    """
    def query(run: Callable[..., list], on_sqlite: bool) -> list:
        host = socket.gethostname()
        return run(_IDENTITIES_SQLITE, host) if on_sqlite else _identities(run(_IDENTITIES, host))

    identities, opened = _by_sql(store, query)
    if opened is not None:
        return [r.id for r in stale_runs(opened)]
    return _gone_ids(identities)


def abandon(store: Store, runs: Sequence[ExecutionRecord],
            state: ExecutionState = ExecutionState.FAILED, reason: str = "") -> List[ExecutionRecord]:
    """Marks these runs `state`, if they are still RUNNING, with `abandoned` = reason.

    Returns:
        The runs it changed, as stored now.
    """
    from mlmd_exercise import schema

    ids = [r.id for r in runs]
    with store.writing():
        # Those that finished meanwhile are left be.
        changed = [e for e in (store.mlmd.get_executions_by_id(ids) if ids else [])
                   if e.last_known_state == _RUNNING]
        for execution in changed:
            schema.set_execution_state(execution, state)
            execution.custom_properties[ABANDONED].string_value = reason or "marked stale by the user"
        if changed:
            store.mlmd.put_executions(changed)  # all in one transaction
    return [schema.execution_record(e) for e in changed]


# -- check ------------------------------------------------------------------------------

_KINDS_IN = ", ".join(map(str, OUTPUT_KINDS))
_NO_EVENT = ("SELECT a.id, t.name, a.uri FROM artifact a LEFT JOIN type t ON t.id = a.type_id "
             "WHERE NOT EXISTS (SELECT 1 FROM event e WHERE e.artifact_id = a.id)")
_SHARED = ("SELECT a.id, t.name, a.uri, e.execution_id FROM artifact a LEFT JOIN type t ON t.id = a.type_id "
           f"JOIN event e ON e.artifact_id = a.id AND e.type IN ({_KINDS_IN}) WHERE a.id IN "
           f"(SELECT artifact_id FROM event WHERE type IN ({_KINDS_IN}) GROUP BY artifact_id "
           "HAVING COUNT(DISTINCT execution_id) > 1)")
_TWICE = "SELECT type_kind, name, COUNT(*) FROM type GROUP BY type_kind, name HAVING COUNT(*) > 1"


def _no_event(artifact_id: int, type_name: str, uri: str) -> str:
    return f"artifact {artifact_id} ({type_name}, {uri}) has no event: no run made or used it"


def _shared(artifact_id: int, type_name: str, uri: str, producers: Set[int]) -> str:
    runs = ", ".join(str(i) for i in sorted(producers))
    return (f"artifact {artifact_id} ({type_name}, {uri}) is the output of "
            f"{len(producers)} executions ({runs}): which run made it is ambiguous")


def _twice(names: Dict[Tuple[int, str], int]) -> List[str]:
    """Type names registered more than once, from (type_kind, name) -> how many."""
    return [f"{label} type '{name}' is registered {names[(kind, name)]} times"
            for kind, label in _KIND_NAMES
            for name in sorted(n for k, n in names if k == kind) if names[(kind, name)] > 1]


def _sql_problems(run: Callable[..., list]) -> List[str]:
    # MLMD gives a missing type name or URI as "".
    found = {i: _no_event(i, t or "", u or "") for i, t, u in run(_NO_EVENT)}
    producers: Dict[int, Tuple[str, str, Set[int]]] = {}
    for i, t, u, execution_id in run(_SHARED):
        producers.setdefault(i, (t or "", u or "", set()))[2].add(execution_id)
    found.update((i, _shared(i, t, u, runs)) for i, (t, u, runs) in producers.items())
    return [found[i] for i in sorted(found)] + _twice({(k, n): c for k, n, c in run(_TWICE)})


def _api_problems(store: Store) -> List[str]:
    from mlmd_exercise.read.lineage import artifact_pages

    problems: List[str] = []
    for page in artifact_pages(store):  # a page of artifacts and their events at a time
        events = store.mlmd.get_events_by_artifact_ids([a.id for a in page])
        joined = {e.artifact_id for e in events}
        producers: Dict[int, Set[int]] = {}
        for e in events:
            if e.type in OUTPUT_KINDS:
                producers.setdefault(e.artifact_id, set()).add(e.execution_id)
        for a in page:
            if a.id not in joined:
                problems.append(_no_event(a.id, a.type, a.uri))
            elif len(producers.get(a.id, ())) > 1:
                problems.append(_shared(a.id, a.type, a.uri, producers[a.id]))
    names: Dict[Tuple[int, str], int] = {}
    for getter, kind in ((store.mlmd.get_artifact_types, 1), (store.mlmd.get_execution_types, 0),
                         (store.mlmd.get_context_types, 2)):
        for t in getter():
            names[(kind, t.name)] = names.get((kind, t.name), 0) + 1
    return problems + _twice(names)


def check_store(store: Union[Store, str, os.PathLike, None]) -> List[str]:
    """What is wrong with a store, after a crash say; an empty list if nothing is.

    It looks for artifacts that no event joins to an execution (a write that
    left half a run behind), artifacts output by more than one execution (an
    output is made by one run: older versions of this package, or other tools,
    could record a second run's identical output as the first run's artifact,
    so "which run made this?" has two answers), and type names registered twice.

    It never holds the whole store: by SQL where that is safe (PostgreSQL, MySQL, and an
    SQLite store given by its address with no MLMD store open on it in this
    process), else through MLMD's API a page of artifacts at a time.

    Args:
        store: an open store, or a store address (None: the default store).
    """
    problems, opened = _by_sql(store, lambda run, on_sqlite: _sql_problems(run))
    if opened is not None:
        return _api_problems(opened)
    assert problems is not None
    return problems
