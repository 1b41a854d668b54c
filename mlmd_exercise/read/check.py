"""Runs that will never finish: RUNNING executions whose process is gone.

A process killed in the middle of a run leaves its execution RUNNING forever.
These functions find such runs (`write/abandon.py` marks them, when asked), and
`check_store` finds what a crash or another tool left inconsistent.
"""

from __future__ import annotations

import logging
import socket
import time
from typing import Dict, List, Optional, Sequence, Tuple

from mlmd_exercise import process
from mlmd_exercise.environment import INPUTS
from mlmd_exercise.errors import StoreError
from mlmd_exercise.records import ExecutionRecord, ExecutionState, Kind
from mlmd_exercise.store import Address, Store, answer, damage, tables
from mlmd_exercise.store.address import Location, default_location, parse_location
from mlmd_exercise.store.backend import Query
from mlmd_exercise.store.tables import Run

__all__ = ["stale_runs", "interrupted_ids", "check_store", "unreadable"]

log = logging.getLogger(__name__)


def _running(store: Store) -> List[ExecutionRecord]:
    return store.backend.executions(Query(states=[ExecutionState.RUNNING.value]))


def stale_runs(store: Store, older_than_s: Optional[float] = None,
               now: Optional[float] = None) -> List[ExecutionRecord]:
    """RUNNING executions whose process is known to be gone (it ran on this host
    and no longer exists), and, with `older_than_s`, those started longer ago."""
    cutoff = None if older_than_s is None else ((time.time() if now is None else now) - older_than_s) * 1000
    found = []
    start_times: Dict[int, Optional[int]] = {}
    for record in _running(store):
        too_old = cutoff is not None and record.created_ms <= cutoff
        if too_old or process.is_gone(record.properties, start_times):
            found.append(record)
    return sorted(found, key=lambda r: r.id)


def _gone_ids(identities: Sequence[Tuple[int, object, object, object]]) -> List[int]:
    """Ids of the executions whose process is gone, from (id, host, pid, pid_start) rows."""
    by_process: Dict[Tuple[Tuple[type, object], ...], List[int]] = {}
    for execution_id, *identity in identities:  # each distinct process is judged once
        by_process.setdefault(tuple((type(v), v) for v in identity), []).append(execution_id)
    gone: List[int] = []
    for typed, ids in by_process.items():
        values = dict(zip((process.HOST, process.PID, process.PID_START), (v for _, v in typed)))
        if process.is_gone({k: v for k, v in values.items() if v is not None}):
            gone += ids
    return sorted(gone)


def interrupted_ids(store: Address) -> List[int]:
    """Ids of the RUNNING executions whose process is known to be gone, ascending: the
    runs `stale_runs(store)` finds, counted without loading them where SQL can.

    On an SQLite store given by its address (with no MLMD store open on it in this
    process) and on PostgreSQL, one SQL query reads the host, pid and pid start time
    of this host's RUNNING executions, and each distinct pid is looked up once;
    otherwise the store's backend finds them (by SQL where it can).

    Args:
        store: an open store, or a store address (None: the default store).
    """
    host = socket.gethostname()
    return _gone_ids(answer(store, lambda run, _: tables.running_processes(run, host, typed_coalesce=True),
                            lambda opened: opened.backend.running_processes(host)))


# -- check ------------------------------------------------------------------------------

_KIND_NAMES = ((Kind.ARTIFACT, "artifact"), (Kind.EXECUTION, "execution"), (Kind.CONTEXT, "context"))


def _no_event(artifact_id: int, type_name: str, uri: str) -> str:
    return f"artifact {artifact_id} ({type_name}, {uri}) has no event: no run made or used it"


def _shared(artifact_id: int, type_name: str, uri: str, producers: Sequence[int]) -> str:
    runs = ", ".join(str(i) for i in sorted(producers))
    return (f"artifact {artifact_id} ({type_name}, {uri}) is the output of "
            f"{len(producers)} executions ({runs}): which run made it is ambiguous")


def _twice(named: Sequence[Tuple[str, str, int]]) -> List[str]:
    """Type names registered more than once, from (kind, name, how many)."""
    order = [label for _, label in _KIND_NAMES]
    return [f"{kind} type '{name}' is registered {n} times"
            for kind, name, n in sorted(named, key=lambda k: (order.index(k[0]), k[1]))]


def _types_twice(store: Store) -> List[Tuple[str, str, int]]:
    found = []
    for kind, label in _KIND_NAMES:
        names: Dict[str, int] = {}
        for t in store.backend.types(kind):
            names[t.name] = names.get(t.name, 0) + 1
        found += [(label, name, n) for name, n in names.items() if n > 1]
    return found


def _problems(orphans, shared) -> List[str]:
    found = {i: _no_event(i, t, u) for i, t, u in orphans}
    found.update((i, _shared(i, t, u, runs)) for i, t, u, runs in shared)
    return [found[i] for i in sorted(found)]


def unreadable(kind: str, node_id: int, key: str, custom: bool, why: str) -> str:
    """A property row ml-metadata cannot read, said in one line."""
    return (f"{kind} {node_id} {'custom ' if custom else ''}property '{key}' {why}: ml-metadata refuses "
            "to read the store (check --repair mends what this package wrote)")


def _history_problems(histories: Sequence[Tuple[int, int]]) -> List[str]:
    return [f"context {c} (MetricHistory) holds the metric history of execution {e}, which is not in the store"
            for c, e in histories]


def _check_apart(path: str) -> Optional[List[str]]:
    """The check of an SQLite store this process holds open with ml-metadata, run in a child
    process by the file's path: there plain SQL reads every property row (ml-metadata
    refuses to read a store with one it cannot read, and SQL on the file here would break its
    locks). None where the child could not run."""
    import json
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "mlmd_exercise", "check", "--json", "--db", path],
                          capture_output=True, text=True, timeout=600)
    said = proc.stderr.strip().splitlines()
    if proc.returncode == 2 and said and "is damaged" in said[-1]:
        raise StoreError(said[-1].split("error: ", 1)[-1])
    if proc.returncode not in (0, 1):
        return None
    return list(json.loads(proc.stdout)["problems"])


def _cut_short(runs: Sequence[Tuple[int, str, int, int]]) -> List[str]:
    return [f"execution {i} ({type_name}) has {_count(k, 'input event')} where its start recorded "
            f"{_count(n, 'input')} ({INPUTS} = {n}): its start was cut short, and what it used is not recorded"
            for i, type_name, n, k in runs]


def _count(n: int, what: str) -> str:
    return f"{n} {what}" + ("" if n == 1 else "s")


def _found(orphans, shared, twice, rows, histories, cut_short) -> List[str]:
    return (_problems(orphans, shared) + _twice(twice) + [unreadable(*r) for r in rows]
            + _history_problems(histories) + _cut_short(cut_short))


def _by_backend(store: Store) -> List[str]:
    backend = store.backend
    orphans, shared, twice = backend.artifacts_without_events(), backend.shared_outputs(), _types_twice(store)
    try:
        rows, histories = backend.unreadable_properties(), backend.histories_without_runs()
    except StoreError as e:  # no SQL here (a schema our SQL does not know): not checked
        log.info("property rows and histories not checked: %s", e)
        rows, histories = [], []
    return _found(orphans, shared, twice, rows, histories, backend.runs_missing_inputs())


def _refuse_damaged(store: Address) -> None:
    """Refuses an SQLite file that SQLite's own check finds damaged: what MLMD's tables hold
    cannot be trusted then (a store held by ml-metadata here is checked by `_check_apart`)."""
    loc = store.location if isinstance(store, Store) else parse_location(
        default_location() if store is None else store)
    found = damage(loc)
    if found:
        more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
        raise StoreError(f"store '{loc}' is damaged: SQLite's check of the file found '{found[0]}'{more}; "
                         "it was not changed: restore it from a backup (docs/sqlite.md)")


def check_store(store: Address) -> List[str]:
    """What is wrong with a store, after a crash say; an empty list if nothing is.

    It looks for artifacts that no event joins to an execution (a write that
    left half a run behind), artifacts output by more than one execution (an
    output is made by one run: older versions of this package, or other tools,
    could record a second run's identical output as the first run's artifact,
    so "which run made this?" has two answers), type names registered twice,
    property rows ml-metadata cannot read (no value in any column, as this
    package's native backend wrote NaN on SQLite before it kept NaN as a proto
    value; a declared property's value in another column), which make
    ml-metadata refuse the whole store, metric histories whose run is gone, and runs with
    fewer input events than their start recorded inputs (`environment.INPUTS`: every run
    `Tracker.execution` starts says how many; a run without it, recorded by an older version
    or another tool, cannot be checked so).

    It never holds the whole store: by SQL where that is safe (an SQLite store given
    by its address with no MLMD store open on it in this process, and PostgreSQL),
    else through the backend a page of artifacts at a time.

    Args:
        store: an open store, or a store address (None: the default store).

    Raises:
        StoreError: an SQLite file SQLite's own check finds damaged (`store.damage`).
    """
    def by_sql(run: Run, _: Location) -> List[str]:
        return _found(tables.artifacts_without_events(run), tables.shared_outputs(run),
                      tables.types_named_twice(run), tables.unreadable_properties(run),
                      tables.histories_without_runs(run), tables.runs_missing_inputs(run))

    _refuse_damaged(store)
    return answer(store, by_sql, _by_backend, apart=_check_apart)
