"""Closing runs that will never finish: RUNNING executions whose process is gone.

`read.check` finds them; only when the user asks are they marked FAILED (or CANCELED)
here, with the reason as the custom property `abandoned`.
"""

from __future__ import annotations

from typing import List, Sequence

from mlmd_exercise import masking, schema
from mlmd_exercise.records import ExecutionRecord, ExecutionState
from mlmd_exercise.store import Store
from mlmd_exercise.store.backend import ExecutionWrite, Query

__all__ = ["ABANDONED", "abandon"]

ABANDONED = "abandoned"  # the custom property that says why a run was closed


def abandon(store: Store, runs: Sequence[ExecutionRecord],
            state: ExecutionState = ExecutionState.FAILED, reason: str = "") -> List[ExecutionRecord]:
    """Marks these runs `state`, if they are still RUNNING, with `abandoned` = reason.

    Returns:
        The runs it changed, as stored now.
    """
    ids = [r.id for r in runs]
    with store.writing():
        # Those that finished meanwhile are left be.
        changed = [e for e in (store.backend.executions(Query(ids=ids)) if ids else [])
                   if e.state == ExecutionState.RUNNING.value]
        declared = {e.id: set(e.properties) - set(e.custom) for e in changed}
        store.backend.update_executions([  # all in one transaction
            ExecutionWrite(e.type_id, e.type, id=e.id, state=state,
                           properties=schema.state_mirror(declared[e.id], state),
                           custom={ABANDONED: masking.mask(reason) or "marked stale by the user"})
            for e in changed])
        found = store.backend.executions(Query(ids=[e.id for e in changed], order="id", ascending=True)) \
            if changed else []
    return found
