"""One leg of a lineage walk in recursive SQL (`NativeReads.walk_leg`): many hops per query.

The walk goes a span of hops at a time: one `WITH RECURSIVE` query from the frontier (the nodes
first reached at the last hop walked) reaches the nodes of the next `span` hops, each at its
shortest distance; a second query per side reads the events crossed. What the walk has reached
lies in a temporary table of the connection (kind, id, hop), never in Python: memory holds one
span's nodes, and the first span is one hop, so that the first hop comes at once; the span
doubles while its hops stay narrow (`Db.walk_span`, the most hops one query recurses: MySQL
stops a recursion at 1,000 levels).

A recursive query over (node, depth) pairs can grow with the number of paths (diamonds of
unequal sides reach a node at several depths): UNION keeps each pair once, the nodes reached
before the span are never walked again (NOT EXISTS in the reached table), and the span bounds the
depths, so a query yields at most span x nodes rows; only the first reach of each node is kept.
Each engine's way with temporary tables is its dialect's (`Db.temporary_table`,
`Db.drop_temporary`); MySQL cannot open one temporary table twice in a statement, so every
statement here names each table once.
"""

from __future__ import annotations

import itertools
from typing import Any, Dict, Iterable, Iterator, List, Optional, Set, Tuple

from mlmd_exercise.records import EVENT_TYPES, LEADS_ON, EventRecord, LineageEdge, edge_of
from mlmd_exercise.store.backend import LegHop
from mlmd_exercise.store.native.sql import Db

__all__ = ["walk_leg", "temporary_tables", "WIDE"]

_NAMES = itertools.count(1)  # temporary tables of walks open at once on one connection
WIDE = 2000  # nodes in a span past which the next span is halved rather than doubled
_ARTIFACT, _EXECUTION = 0, 1

# The next span's nodes, each at its first reach: from the frontier, artifacts lead to
# executions and executions to artifacts by the events of the leg's direction.
_RECURSIVE = """
WITH RECURSIVE walk(kind, id, depth) AS (
  SELECT kind, id, 0 FROM {frontier}
  UNION
  SELECT 1 - w.kind, CASE WHEN w.kind = 0 THEN a.execution_id ELSE x.artifact_id END, w.depth + 1
  FROM walk w
  LEFT JOIN Event a ON w.kind = 0 AND a.artifact_id = w.id AND a.type IN ({from_artifact})
  LEFT JOIN Event x ON w.kind = 1 AND x.execution_id = w.id AND x.type IN ({from_execution})
  WHERE w.depth < ? AND (a.id IS NOT NULL OR x.id IS NOT NULL)
    AND NOT EXISTS (SELECT 1 FROM {reached} r WHERE r.kind = 1 - w.kind
                    AND r.id = CASE WHEN w.kind = 0 THEN a.execution_id ELSE x.artifact_id END)
)
SELECT kind, id, MIN(depth) FROM walk WHERE depth > 0 GROUP BY kind, id ORDER BY 3, 1, 2
"""


def temporary_tables(db: Db) -> Tuple[str, str]:
    """Two new temporary tables (kind, id, hop) on this connection: what a walk reached, and its
    sources of one span; raises the database's error where it makes none (a read-only
    transaction, a user without the right)."""
    number = next(_NAMES)
    reached, frontier = f"mlmd_walk_reached_{number}", f"mlmd_walk_frontier_{number}"
    db.run(db.temporary_table(reached, "kind INTEGER NOT NULL, id INTEGER NOT NULL, hop INTEGER NOT NULL, "
                                       "PRIMARY KEY (kind, id)"))
    try:
        db.run(db.temporary_table(frontier, "kind INTEGER NOT NULL, id INTEGER NOT NULL, hop INTEGER NOT NULL"))
    except BaseException:
        db.run(db.drop_temporary(reached))
        raise
    return reached, frontier


def _numbers(types: Iterable[str]) -> str:
    return ", ".join(str(EVENT_TYPES.index(t)) for t in types)  # our own constants, never input


def walk_leg(db: Db, tables: Tuple[str, str], artifact_ids: Iterable[int], execution_ids: Iterable[int],
             direction: str, hops: Optional[int]) -> Iterator[LegHop]:
    """`Backend.walk_leg` in recursive SQL over the two `temporary_tables`, which it drops when
    it ends (or is closed)."""
    reached, frontier = tables
    from_artifact, from_execution = LEADS_ON[direction]
    recursive = _RECURSIVE.format(frontier=frontier, reached=reached, from_artifact=_numbers(from_artifact),
                                  from_execution=_numbers(from_execution))
    try:
        starts = [(_ARTIFACT, int(i), 0) for i in sorted(set(artifact_ids))] + \
                 [(_EXECUTION, int(i), 0) for i in sorted(set(execution_ids))]
        db.insert(reached, ("kind", "id", "hop"), starts)
        db.insert(frontier, ("kind", "id", "hop"), starts)
        current, span, alive = 0, 1, bool(starts)
        while alive and (hops is None or current < hops):
            end = current + span if hops is None else min(current + span, hops)
            found = [(kind, node, current + depth) for kind, node, depth in db.run(recursive, end - current)]
            db.insert(reached, ("kind", "id", "hop"), found)
            db.insert(frontier, ("kind", "id", "hop"), [row for row in found if row[2] < end])
            edges = _crossed(db, frontier, from_artifact, from_execution)
            nodes: Dict[int, Tuple[Set[int], Set[int]]] = {}
            for kind, node, hop in found:
                nodes.setdefault(hop, (set(), set()))[kind].add(node)
            last = found[-1][2] if found else current  # found is in hop order
            for number in range(current + 1, min(last + 1, end) + 1):
                new_a, new_e = nodes.get(number, (set(), set()))
                yield number, new_a, new_e, edges.get(number - 1, [])
            db.run(f"DELETE FROM {frontier}")
            alive = last == end
            if alive:
                db.insert(frontier, ("kind", "id", "hop"), [row for row in found if row[2] == end])
            current = end
            span = min(span * 2, db.walk_span) if len(found) < WIDE else max(1, span // 2)
    finally:
        for table in tables:
            try:
                db.run(db.drop_temporary(table))
            except Exception:  # the connection gone: its temporary tables went with it
                pass


def _crossed(db: Db, sources: str, from_artifact: Iterable[str], from_execution: Iterable[str]
             ) -> Dict[int, List[LineageEdge]]:
    """The events that lead on from the span's sources, as edges by their source's hop: those
    of artifacts first, then those of executions, each in event id order (as `events_by_*`)."""
    edges: Dict[int, List[LineageEdge]] = {}
    for kind, column, types in ((_ARTIFACT, "artifact_id", from_artifact), (_EXECUTION, "execution_id", from_execution)):
        for hop, event in _events(db, f"FROM {sources} s JOIN Event e ON e.{column} = s.id WHERE s.kind = {kind} "
                                      f"AND e.type IN ({_numbers(types)})"):
            edges.setdefault(hop, []).append(edge_of(event))
    return edges


def _events(db: Db, source: str) -> List[Tuple[int, EventRecord]]:
    """(the source's hop, the event) for the events `source` (FROM ... WHERE) picks, in hop and
    event id order, each with its path's steps in the order they were stored, as
    `NativeReads._events` reads them."""
    def event(a: int, x: int, t: int, steps: Tuple[Any, ...]) -> EventRecord:
        return EventRecord(a, x, EVENT_TYPES[t] if 0 <= t < len(EVENT_TYPES) else "UNKNOWN", steps)

    found: List[Tuple[int, EventRecord]] = []
    if db.row_order:
        rows = db.run("SELECT s.hop, e.id, e.artifact_id, e.execution_id, e.type, p.is_index_step, p.step_index, "
                      f"p.step_key {source.replace(' WHERE ', ' LEFT JOIN EventPath p ON p.event_id = e.id WHERE ', 1)} "
                      f"ORDER BY s.hop, e.id, p.{db.row_order}")
        steps: List[Any] = []
        for n, (hop, i, a, x, t, is_index, index, key) in enumerate(rows):
            if is_index is not None:
                steps.append(int(index) if is_index else key)
            if n + 1 == len(rows) or rows[n + 1][1] != i:  # the event's last row
                found.append((hop, event(a, x, t, tuple(steps))))
                steps = []
        return found
    rows = db.run(f"SELECT s.hop, e.id, e.artifact_id, e.execution_id, e.type {source} ORDER BY s.hop, e.id")
    paths: Dict[int, List[Any]] = {}
    for first in range(0, len(rows), db.ids_per_query):
        sql, ids = db.in_list("event_id", [r[1] for r in rows[first:first + db.ids_per_query]])
        for event_id, is_index, index, key in db.run(
                f"SELECT event_id, is_index_step, step_index, step_key FROM EventPath WHERE {sql}", *ids):
            paths.setdefault(event_id, []).append(int(index) if is_index else key)
    return [(hop, event(a, x, t, tuple(paths.get(i, ())))) for hop, i, a, x, t in rows]
