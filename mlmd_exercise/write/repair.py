"""`check --repair`: mending the property rows ml-metadata cannot read, where this package
wrote them.

Before values.py, the native backend wrote a NaN metric as a double, and SQLite keeps a
NaN double as NULL: a row with no value in any column, which makes ml-metadata refuse the
whole store. Such a row on a node this package wrote (an execution that records its
environment or metric names, an artifact with our sha256 fingerprint, an Experiment or a
MetricHistory context) is rewritten as NaN in the form values.py keeps it (a DoubleValue
proto value). Anything else (a row another program wrote, a declared value in another
column) is reported and left alone: what it should hold cannot be known.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Set, Tuple

from mlmd_exercise import schema
from mlmd_exercise.records import METRIC_NAMES, Kind
from mlmd_exercise.store import Store
from mlmd_exercise.store.backend import Query

__all__ = ["Mend", "plan_repair", "repair"]

_EMPTY = "has no value in any column"
_OUR_CONTEXTS = (schema.EXPERIMENT.name, schema.METRIC_HISTORY.name)


@dataclass(frozen=True)
class Mend:
    """One unreadable property row: what it is, and what `repair` does with it (`fix` is
    False for a row that is only reported)."""

    kind: str
    node_id: int
    key: str
    custom: bool
    problem: str
    fix: bool
    action: str


def _ours(store: Store, kind: str, node_id: int) -> bool:
    """Whether this package wrote the node (see the module's docstring)."""
    if kind == "execution":
        found = store.backend.executions(Query(ids=[node_id]))
        return bool(found) and (METRIC_NAMES in found[0].custom or any(k.startswith("env.") for k in found[0].custom))
    if kind == "artifact":
        found_a = store.backend.artifacts(Query(ids=[node_id]))
        value = found_a[0].custom.get("fingerprint") if found_a else None
        return isinstance(value, str) and value.startswith("sha256:")
    found_c = store.backend.contexts(Query(ids=[node_id]))
    return bool(found_c) and found_c[0].type in _OUR_CONTEXTS


def plan_repair(store: Store) -> List[Mend]:
    """What `repair` would do with each unreadable row of the store (opened with the native
    backend, which reads every row: ml-metadata refuses such a store whole)."""
    plan: List[Mend] = []
    ours: Set[Tuple[str, int]] = set()
    for kind, node_id, key, custom, why in store.backend.unreadable_properties():
        if why == _EMPTY:
            if (kind, node_id) not in ours and _ours(store, kind, node_id):
                ours.add((kind, node_id))
            fix = (kind, node_id) in ours
            action = ("written as NaN (a DoubleValue proto value): this package wrote NaN so" if fix
                      else "left alone: another program wrote this node")
        else:
            fix, action = False, "left alone: which value it should hold cannot be known"
        plan.append(Mend(kind, node_id, key, custom, why, fix, action))
    return plan


def repair(store: Store, plan: List[Mend]) -> int:
    """Mends the rows `plan` says to, each in a transaction of its own; how many."""
    done = 0
    with store.writing():
        for mend in plan:
            if mend.fix:
                store.backend.set_property(Kind(mend.kind), mend.node_id, mend.key, mend.custom, float("nan"))
                done += 1
    return done
