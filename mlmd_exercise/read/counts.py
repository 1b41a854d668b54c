"""Counts of executions by state: what the chart and `states` need, fast.

Counting needs no execution loaded. On an SQLite store given by its address (with no
MLMD store open on the file in this process) it is one SQL query over MLMD's tables
(`store.tables`), without opening MLMD at all, so that `states` starts faster than
MLMD can be imported; otherwise the store's backend counts.
"""

from __future__ import annotations

import os
from typing import Dict, Optional, Union

from mlmd_exercise.records import ExecutionState
from mlmd_exercise.store import Store, open_store, read_sqlite, tables
from mlmd_exercise.store.address import Location, default_location, parse_location
from mlmd_exercise.store.catalog import choose

__all__ = ["count_by_state"]


def _named(counts: Dict[ExecutionState, int]) -> Dict[str, int]:
    return {s.value: n for s, n in counts.items()}


def _by_sql(run: tables.Run, experiment: Optional[str], context_type: Optional[str], where: object):
    """Counts by SQL, or None where the catalog must say what is wrong (a context type
    named but not holding the name: the type may not exist)."""
    if experiment is None:
        return tables.count_by_state(run)
    found = [(i, t) for i, t in tables.contexts_named(run, experiment) if context_type is None or t == context_type]
    if not found and context_type is not None:
        return None
    # None, or several: the catalog's own words, without opening the store.
    return tables.count_by_state(run, choose(found, experiment, where))


def count_by_state(store: Union[Store, Location, str, os.PathLike, None],
                   experiment: Optional[str] = None, context_type: Optional[str] = None) -> Dict[str, int]:
    """Numbers of executions by `last_known_state`, only states present, in MLMD's order.

    Counting does not need the executions themselves: on an SQLite store given by its
    address (with no MLMD store open on it in this process) it is one SQL query over
    MLMD's tables, without opening MLMD at all; otherwise the backend counts (by SQL
    where it can).

    Args:
        store: an open store, or a store address (None: the default store).
        experiment: count only this experiment's executions, or any other context's.
        context_type: the type of that context, where its name alone is ambiguous.

    Raises:
        NotFoundError: no context has that name, or several have it.
        StoreError: the address cannot be opened.
    """
    if not isinstance(store, Store):
        loc = parse_location(default_location() if store is None else store)
        counts = read_sqlite(loc, lambda run: _by_sql(run, experiment, context_type, loc)) if loc.is_sqlite else None
        if counts is not None:
            return _named(counts)
        store = open_store(loc)
    context_id = None if experiment is None else store.catalog.context_id(experiment, context_type)
    return _named(store.backend.count_by_state(context_id))
