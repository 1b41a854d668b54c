"""Contexts as groupings: our experiments, TFX's pipelines, runs and nodes, Kubeflow's runs.

Any context groups executions and artifacts, whatever its type. A name is
looked up by the store's catalog, exact match in each context type, never put
into a query string. Where one name belongs to contexts of
several types, our `Experiment` wins; otherwise the caller names the type.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

from mlmd_exercise import schema
from mlmd_exercise.records import ContextRecord, Kind
from mlmd_exercise.store import Store
from mlmd_exercise.store.catalog import choose

__all__ = ["choose", "find_context", "contexts_of", "context_names", "grouping_of"]


def find_context(store: Store, name: str, context_type: Optional[str] = None) -> ContextRecord:
    """The context called `name`, of any type (or of `context_type`); see `Catalog.context`.

    Raises:
        NotFoundError: no context has that name (in that type), the type is unknown,
            or the name is ambiguous across types.
    """
    return store.catalog.context(name, context_type)


def contexts_of(store: Store, kind: str, node_id: int) -> List[ContextRecord]:
    """The contexts an artifact or execution belongs to; none for a node in no context."""
    return store.backend.contexts_of(Kind(kind), node_id)


def context_names(contexts: Sequence[ContextRecord]) -> Tuple[str, ...]:
    """Names to show: an experiment by its name, another context as `type/name`."""
    return tuple(sorted(c.name if c.type == schema.EXPERIMENT.name else f"{c.type}/{c.name}"
                        for c in contexts))


def grouping_of(memberships: Dict[int, List[ContextRecord]], wanted: Optional[str] = None) -> Optional[str]:
    """The context type to draw as boxes, given each execution's contexts.

    `wanted` if given; else our Experiment if any execution has one; else the type
    that splits the executions into the fewest groups larger than one, among
    those in which no execution belongs to two contexts (boxes cannot overlap):
    TFX's `pipeline_run` rather than `pipeline` (one box) or `node` (one per step).
    """
    if wanted is not None:
        return wanted
    by_type: Dict[str, Dict[int, int]] = {}  # type -> execution -> number of its contexts
    groups: Dict[str, set] = {}
    for execution_id, contexts in memberships.items():
        for c in contexts:
            by_type.setdefault(c.type, {}).setdefault(execution_id, 0)
            by_type[c.type][execution_id] += 1
            groups.setdefault(c.type, set()).add(c.id)
    if schema.EXPERIMENT.name in by_type:
        return schema.EXPERIMENT.name
    disjoint = [t for t, counts in by_type.items() if max(counts.values()) == 1]
    if not disjoint:
        return None
    # Fewest boxes, but more than one if any type gives more; then the most executions boxed.
    return min(disjoint, key=lambda t: (len(groups[t]) < 2, len(groups[t]), -len(by_type[t]), t))
