"""Counts of executions by state: what the chart and `states` need, fast.

Counting needs no execution loaded. On PostgreSQL and MySQL, and on an SQLite store given
by its address (with no MLMD store open on the file in this process), it is one
SQL query over MLMD's tables, for the schema version that SQL was checked
against; otherwise MLMD's API. Neither this module nor the SQL path imports
ml_metadata, so that `states` starts faster than MLMD can be imported.
"""

from __future__ import annotations

import os
from collections import Counter
from typing import Callable, Dict, Optional, Union

from mlmd_exercise.store.address import default_location, parse_location
from mlmd_exercise.records import ExecutionState
from mlmd_exercise.store import SCHEMA_VERSION, Store, open_store, read_sqlite

__all__ = ["count_by_state"]

_COUNT = "SELECT last_known_state, COUNT(*) FROM execution GROUP BY last_known_state"
_COUNT_IN = ("SELECT e.last_known_state, COUNT(*) FROM execution e "
             "JOIN association a ON a.execution_id = e.id WHERE a.context_id = {param} "
             "GROUP BY e.last_known_state")
# Any context by name (an Experiment, a TFX pipeline run, ...): the caller chooses among them.
_CONTEXT_IDS = ("SELECT c.id, t.name FROM context c JOIN type t ON t.id = c.type_id "
                "WHERE t.type_kind = 2 AND c.name = {param}")


_STATES = list(ExecutionState)  # in the proto's order: index = the number MLMD stores


def _by_name(rows) -> Dict[str, int]:
    counts: Counter = Counter()
    for state, n in rows:  # no state (NULL, as the guide's code leaves it) reads as UNKNOWN
        counts[_STATES[state or 0].value] += n
    return {s.value: counts[s.value] for s in ExecutionState if counts[s.value]}


def _sql_counts(run: Callable[..., list], param: str, experiment: Optional[str],
                context_type: Optional[str] = None):
    """Rows of (state, count) by SQL, or None if the context is not there or not one (MLMD's
    API then says so). `run(sql, value)` runs one query; `param` is its placeholder."""
    if experiment is None:
        return run(_COUNT)
    # A parameter, never string formatting: the name is data.
    found = [(i, t) for i, t in run(_CONTEXT_IDS.format(param=param), experiment)
             if context_type is None or t == context_type]
    # The one context, or our Experiment among several (as contexts.choose decides).
    ours = [i for i, t in found if t == "Experiment"]
    chosen = found[0][0] if len(found) == 1 else ours[0] if len(ours) == 1 else None
    return None if chosen is None else run(_COUNT_IN.format(param=param), chosen)


def _sqlite_counts(con, experiment: Optional[str], context_type: Optional[str] = None):
    return _sql_counts(lambda sql, *value: con.execute(sql, value).fetchall(), "?", experiment,
                       context_type)


def _postgres_counts(sql, experiment: Optional[str], context_type: Optional[str] = None):
    if sql("SELECT schema_version FROM mlmdenv")[0][0] != SCHEMA_VERSION:
        return None
    return _sql_counts(lambda query, *value: sql(query, **({"v": value[0]} if value else {})),
                       ":v", experiment, context_type)


def count_by_state(store: Union[Store, str, os.PathLike, None],
                   experiment: Optional[str] = None, context_type: Optional[str] = None) -> Dict[str, int]:
    """Numbers of executions by `last_known_state`, only states present, in MLMD's order.

    Counting does not need the executions themselves: on PostgreSQL and MySQL, and on an
    SQLite store given by its address (with no MLMD store open on it in this
    process), it is one SQL query over MLMD's tables, when their schema is the
    one this package was checked against; otherwise MLMD's API.

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
        rows = read_sqlite(loc, lambda con: _sqlite_counts(con, experiment, context_type)) if loc.is_sqlite else None
        if rows is not None:
            return _by_name(rows)
        store = open_store(loc)
    elif store.sql is not None:
        rows = _postgres_counts(store.sql, experiment, context_type)
        if rows is not None:
            return _by_name(rows)
    from mlmd_exercise.read.lineage import experiment_id  # MLMD's API: only now is ml_metadata imported

    if experiment is None:
        executions = store.mlmd.get_executions()
    else:
        executions = store.mlmd.get_executions_by_context(experiment_id(store, experiment, context_type))
    return _by_name(Counter(e.last_known_state for e in executions).items())
