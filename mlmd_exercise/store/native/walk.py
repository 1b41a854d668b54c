"""One leg of a lineage walk in recursive SQL (`NativeReads.walk_leg`): many hops per query.

The walk goes a span of hops at a time: one `WITH RECURSIVE` query from the frontier (the nodes
first reached at the last hop walked) reaches the nodes of the next `span` hops, each at its
shortest distance; a query per side reads the events crossed. What the walk has reached lies in
a temporary table of the connection (kind, id, hop), never in Python: memory holds one span's
nodes, and the first span is one hop, so that the first hop comes at once; the span doubles
while its hops stay narrow, up to `Db.walk_span` (MySQL stops a recursion at 1,000 levels).

A recursive query over (node, depth) pairs can grow with the number of paths (diamonds of
unequal sides reach a node at several depths): UNION keeps each pair once, the nodes reached
before the span are never walked again (NOT EXISTS in the reached table), and the span bounds the
depths, so a query yields at most span x nodes rows; only the first reach of each node is kept.
Each engine's way with temporary tables is its dialect's (`Db.temporary_table`,
`Db.emptied_temporary`, `Db.drop_temporary`); MySQL cannot open one temporary table twice in a
statement, so every statement here names each table once.
"""

from __future__ import annotations

import itertools
from typing import Dict, Iterable, Iterator, List, Optional, Set, Tuple

from mlmd_exercise.records import EVENT_TYPES, INPUT_EVENTS, LEADS_ON, LineageEdge
from mlmd_exercise.store.backend import LegHop
from mlmd_exercise.store.native.rows import STEP_TEXT, stored_steps
from mlmd_exercise.store.native.sql import Db

__all__ = ["walk_leg", "temporary_tables", "WIDE"]

_NAMES = itertools.count(1)  # temporary tables of walks open at once on one connection
WIDE = 20000  # nodes in a span past which the next span is halved rather than doubled
_ARTIFACT, _EXECUTION = 0, 1

# The next span's nodes, each at its first reach: from the frontier, artifacts lead to
# executions and executions to artifacts by the events of the leg's direction.
_RECURSIVE = """
INSERT INTO {span} (kind, id, hop)
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
SELECT kind, id, MIN(depth) + ? FROM walk WHERE depth > 0 GROUP BY kind, id
"""
_COLUMNS = ("kind", "id", "hop")
_TABLE = "kind INTEGER NOT NULL, id INTEGER NOT NULL, hop INTEGER NOT NULL"


def temporary_tables(db: Db) -> Tuple[str, str, str]:
    """Three new temporary tables (kind, id, hop) on this connection: what a walk reached, the
    sources of a span's events, the nodes a span reached; raises the database's error where it
    makes none (a read-only transaction, a user without the right)."""
    number = next(_NAMES)
    made: List[str] = []
    try:
        for part, key in (("reached", ", PRIMARY KEY (kind, id)"), ("frontier", ""), ("span", "")):
            name = f"mlmd_walk_{part}_{number}"
            db.run(db.temporary_table(name, _TABLE + key))
            made.append(name)
    except BaseException:
        for name in made:
            db.run(db.drop_temporary(name))
        raise
    return made[0], made[1], made[2]


def _numbers(types: Iterable[str]) -> str:
    return ", ".join(str(EVENT_TYPES.index(t)) for t in types)  # our own constants, never input


def walk_leg(db: Db, tables: Tuple[str, str, str], artifact_ids: Iterable[int], execution_ids: Iterable[int],
             direction: str, hops: Optional[int]) -> Iterator[LegHop]:
    """`Backend.walk_leg` in recursive SQL over the three `temporary_tables`, which it drops when
    it ends (or is closed). Every statement names each temporary table once (MySQL opens one
    only once a statement), and the nodes go from table to table in SQL, read once, to yield."""
    reached, frontier, span_table = tables
    from_artifact, from_execution = LEADS_ON[direction]
    recursive = _RECURSIVE.format(span=span_table, frontier=frontier, reached=reached,
                                  from_artifact=_numbers(from_artifact), from_execution=_numbers(from_execution))
    try:
        starts = [(_ARTIFACT, int(i), 0) for i in sorted(set(artifact_ids))] + \
                 [(_EXECUTION, int(i), 0) for i in sorted(set(execution_ids))]
        db.insert(reached, _COLUMNS, starts)
        db.insert(frontier, _COLUMNS, starts)
        current, span, alive = 0, 1, bool(starts)
        while alive and (hops is None or current < hops):
            end = current + span if hops is None else min(current + span, hops)
            db.run_by_index(recursive, end - current, current)
            found = db.run(f"SELECT kind, id, hop FROM {span_table} ORDER BY hop, kind, id")
            db.run(f"INSERT INTO {reached} (kind, id, hop) SELECT kind, id, hop FROM {span_table}")
            db.run(f"INSERT INTO {frontier} (kind, id, hop) SELECT kind, id, hop FROM {span_table} WHERE hop < ?", end)
            edges = _crossed(db, frontier, from_artifact, from_execution)
            nodes: Dict[int, Tuple[Set[int], Set[int]]] = {}
            at: Optional[int] = None
            sides: Tuple[Set[int], Set[int]] = (set(), set())
            for kind, node, hop in found:  # in hop order
                if hop != at:
                    at, sides = hop, (set(), set())
                    nodes[hop] = sides
                sides[kind].add(node)
            last = found[-1][2] if found else current
            for number in range(current + 1, min(last + 1, end) + 1):
                new_a, new_e = nodes.get(number) or (set(), set())
                yield number, new_a, new_e, edges.get(number - 1) or []
            for sql in db.emptied_temporary(frontier, _TABLE):
                db.run(sql)
            alive = last == end
            if alive:
                db.run(f"INSERT INTO {frontier} (kind, id, hop) SELECT kind, id, hop FROM {span_table} WHERE hop = ?",
                       end)
            for sql in db.emptied_temporary(span_table, _TABLE):
                db.run(sql)
            current = end
            span = min(span * 2, db.walk_span) if len(found) < WIDE else max(1, span // 2)
    finally:
        for table in tables:
            try:
                db.run(db.drop_temporary(table))
            except Exception:  # the connection gone: its temporary tables went with it
                pass


# An event's type (MLMD's number) -> (the edge's kind, its event where it is not plain kind).
_EDGE_KINDS = {n: ("INPUT" if t in INPUT_EVENTS else "OUTPUT", "" if t in ("INPUT", "OUTPUT") else t)
               for n, t in enumerate(EVENT_TYPES)}


def _crossed(db: Db, sources: str, from_artifact: Iterable[str], from_execution: Iterable[str]
             ) -> Dict[int, List[LineageEdge]]:
    """The events that lead on from the span's sources, as edges by their source's hop: those
    of artifacts first, then those of executions, each in event id order (as `events_by_*`), an
    edge's role its event's first path step in the order the steps were stored (as
    `NativeReads._events` reads them)."""
    edges: Dict[int, List[LineageEdge]] = {}
    for kind, column, types in ((_ARTIFACT, "artifact_id", from_artifact), (_EXECUTION, "execution_id", from_execution)):
        source = f"FROM {sources} s JOIN Event e ON e.{column} = s.id"
        where = f"WHERE s.kind = {kind} AND e.type IN ({_numbers(types)})"
        if db.row_order:
            rows = db.run(f"SELECT s.hop, e.id, e.artifact_id, e.execution_id, e.type, p.is_index_step, "
                          f"p.step_index, p.step_key {source} LEFT JOIN EventPath p ON p.event_id = e.id {where} "
                          f"ORDER BY s.hop, e.id, p.{db.row_order}")
            previous, at, bucket = None, None, []
            for hop, i, a, x, t, is_index, index, key in rows:  # in hop order
                if i != previous:  # the event's first row: its first step, if any
                    previous = i
                    role = "" if is_index is None else str(int(index)) if is_index else str(key)
                    if hop != at:
                        at, bucket = hop, edges.setdefault(hop, [])
                    bucket.append(LineageEdge(a, x, *_kind(t, role)))
            continue
        # MySQL (see rows.STEP_TEXT): an event comes with its steps in one query, each row one
        # text field, "hop,event,artifact,execution,type" and, where the event has a path, its
        # step; the first step of a longer path is the first of its steps read again apart.
        rows = db.run(f"SELECT CONCAT_WS(',', s.hop, e.id, e.artifact_id, e.execution_id, e.type, {STEP_TEXT}) "
                      f"{source} LEFT JOIN EventPath p ON p.event_id = e.id {where} ORDER BY s.hop, e.id")
        found: List[Tuple[int, int, int, int, int]] = []
        roles: Dict[int, str] = {}
        longer: List[int] = []
        previous = None
        for (row,) in rows:  # in hop order, an event's rows together
            hop, i, a, x, t, *step = row.split(",", 5)
            event_id = int(i)
            if event_id != previous:
                previous = event_id
                found.append((int(hop), event_id, int(a), int(x), int(t)))
                if step:
                    roles[event_id] = step[0][1:]
            elif step and (not longer or longer[-1] != event_id):
                longer.append(event_id)
        for event_id, path in stored_steps(db, longer).items():
            roles[event_id] = str(path[0]) if path else ""
        for hop, event_id, a, x, t in found:
            edges.setdefault(hop, []).append(LineageEdge(a, x, *_kind(t, roles.get(event_id, ""))))
    return edges


def _kind(event_type: int, role: str) -> Tuple[str, str, str]:
    kind, event = _EDGE_KINDS.get(event_type, ("OUTPUT", "UNKNOWN"))
    return kind, role, event
