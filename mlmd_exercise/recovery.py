"""Runs that will never finish: RUNNING executions whose process is gone.

A process killed in the middle of a run leaves its execution RUNNING forever.
These functions find such runs and, only when asked, mark them FAILED (or
CANCELED) with the reason as the custom property `abandoned`.
"""

from __future__ import annotations

import time
from typing import Dict, List, Optional, Sequence, Set

from ml_metadata.metadata_store.metadata_store import ListOptions
from ml_metadata.proto import metadata_store_pb2 as pb

from . import process, schema
from .records import ExecutionRecord
from .schema import ExecutionState
from .store import Store

__all__ = ["ABANDONED", "stale_runs", "abandon", "check_store"]

# Every kind of event that says an execution made an artifact (MLMD's Event.Type).
OUTPUT_KINDS = (pb.Event.DECLARED_OUTPUT, pb.Event.OUTPUT, pb.Event.INTERNAL_OUTPUT,
                pb.Event.PENDING_OUTPUT)
ABANDONED = "abandoned"  # the custom property that says why a run was closed


def _running(store: Store) -> List[pb.Execution]:
    state = pb.Execution.State.Name(pb.Execution.RUNNING)
    return store.mlmd.get_executions(list_options=ListOptions(filter_query=f"last_known_state = {state}"))


def stale_runs(store: Store, older_than_s: Optional[float] = None,
               now: Optional[float] = None) -> List[ExecutionRecord]:
    """RUNNING executions whose process is known to be gone (it ran on this host
    and no longer exists), and, with `older_than_s`, those started longer ago."""
    cutoff = None if older_than_s is None else ((time.time() if now is None else now) - older_than_s) * 1000
    found = []
    for execution in _running(store):
        record = schema.execution_record(execution)
        too_old = cutoff is not None and execution.create_time_since_epoch <= cutoff
        if too_old or process.is_gone(record.properties):
            found.append(record)
    return sorted(found, key=lambda r: r.id)


def abandon(store: Store, runs: Sequence[ExecutionRecord],
            state: ExecutionState = ExecutionState.FAILED, reason: str = "") -> List[ExecutionRecord]:
    """Marks these runs `state`, if they are still RUNNING, with `abandoned` = reason.

    Returns:
        The runs it changed, as stored now.
    """
    ids = [r.id for r in runs]
    with store.writing():
        # Those that finished meanwhile are left be.
        changed = [e for e in (store.mlmd.get_executions_by_id(ids) if ids else [])
                   if e.last_known_state == pb.Execution.RUNNING]
        for execution in changed:
            schema.set_execution_state(execution, state)
            execution.custom_properties[ABANDONED].string_value = reason or "marked stale by the user"
        if changed:
            store.mlmd.put_executions(changed)  # all in one transaction
    return [schema.execution_record(e) for e in changed]


def check_store(store: Store) -> List[str]:
    """What is wrong with a store, after a crash say; an empty list if nothing is.

    It looks for artifacts that no event joins to an execution (a write that
    left half a run behind), artifacts output by more than one execution (an
    output is made by one run: older versions of this package, or other tools,
    could record a second run's identical output as the first run's artifact,
    so "which run made this?" has two answers), and type names registered twice.
    """
    problems: List[str] = []
    artifacts = sorted(store.mlmd.get_artifacts(), key=lambda a: a.id)
    events = store.mlmd.get_events_by_artifact_ids([a.id for a in artifacts]) if artifacts else []
    joined = {e.artifact_id for e in events}
    producers: Dict[int, Set[int]] = {}
    for e in events:
        if e.type in OUTPUT_KINDS:
            producers.setdefault(e.artifact_id, set()).add(e.execution_id)
    for a in artifacts:
        if a.id not in joined:
            problems.append(f"artifact {a.id} ({a.type}, {a.uri}) has no event: no run made or used it")
        elif len(producers.get(a.id, ())) > 1:
            runs = ", ".join(str(i) for i in sorted(producers[a.id]))
            problems.append(f"artifact {a.id} ({a.type}, {a.uri}) is the output of "
                            f"{len(producers[a.id])} executions ({runs}): which run made it is ambiguous")
    for getter, kind in ((store.mlmd.get_artifact_types, "artifact"),
                         (store.mlmd.get_execution_types, "execution"),
                         (store.mlmd.get_context_types, "context")):
        names = [t.name for t in getter()]
        problems += [f"{kind} type '{n}' is registered {names.count(n)} times"
                     for n in sorted(set(names)) if names.count(n) > 1]
    return problems
