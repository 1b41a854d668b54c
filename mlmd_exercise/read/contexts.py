"""Contexts as groupings: our experiments, TFX's pipelines, runs and nodes, Kubeflow's runs.

Any context groups executions and artifacts, whatever its type. A name is
looked up with MLMD's exact-match `get_context_by_type_and_name` in each context
type, never put into a query string. Where one name belongs to contexts of
several types, our `Experiment` wins; otherwise the caller names the type.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

from ml_metadata import errors as mlmd_errors
from ml_metadata.proto import metadata_store_pb2 as pb

from mlmd_exercise import schema
from mlmd_exercise.errors import NotFoundError
from mlmd_exercise.store import Store

__all__ = ["choose", "find_context", "find_context_type", "context_id", "contexts_of", "context_names", "grouping_of"]


def choose(found: Sequence[Tuple[int, str]], name: str, store: object) -> int:
    """The one context id among (id, type name) pairs that share `name`: the only one, or our
    Experiment among several.

    Raises:
        NotFoundError: none, or several of other types (naming the types).
    """
    if not found:
        raise NotFoundError(f"no experiment named '{name}' in {store}")
    if len(found) == 1:
        return found[0][0]
    ours = [i for i, t in found if t == schema.EXPERIMENT.name]
    if len(ours) == 1:
        return ours[0]
    types = " and ".join(f"'{t}'" for t in sorted(t for _, t in found))
    raise NotFoundError(f"context name '{name}' is ambiguous in {store}: contexts of types {types} "
                        f"have it; name the type with --context-type")


def find_context(store: Store, name: str, context_type: Optional[str] = None) -> pb.Context:
    """The context called `name`, of any type (or of `context_type`).

    Raises:
        NotFoundError: no context has that name (in that type), the type is unknown,
            or the name is ambiguous across types.
    """
    mlmd = store.mlmd
    if context_type is not None:
        find_context_type(store, context_type)
        context = mlmd.get_context_by_type_and_name(context_type, name)
        if context is None:
            raise NotFoundError(f"no {context_type} context named '{name}' in {store}")
        return context
    found: Dict[int, pb.Context] = {}
    for ctype in mlmd.get_context_types():
        context = mlmd.get_context_by_type_and_name(ctype.name, name)
        if context is not None:
            found[context.id] = context
    return found[choose([(c.id, c.type) for c in found.values()], name, store)]


def find_context_type(store: Store, name: str) -> pb.ContextType:
    """The context type called `name`.

    Raises:
        NotFoundError: there is none.
    """
    try:
        return store.mlmd.get_context_type(name)
    except mlmd_errors.NotFoundError:
        raise NotFoundError(f"no context type named '{name}' in {store}") from None


def context_id(store: Store, name: str, context_type: Optional[str] = None) -> int:
    """The id of the context called `name` (see `find_context`)."""
    return find_context(store, name, context_type).id


def contexts_of(store: Store, kind: str, node_id: int) -> List[pb.Context]:
    """The contexts an artifact or execution belongs to; none for a node in no context
    (MLMD answers NotFoundError for those)."""
    getter = (store.mlmd.get_contexts_by_artifact if kind == "artifact"
              else store.mlmd.get_contexts_by_execution)
    try:
        return list(getter(node_id))
    except mlmd_errors.NotFoundError:
        return []


def context_names(contexts: Sequence[pb.Context]) -> Tuple[str, ...]:
    """Names to show: an experiment by its name, another context as `type/name`."""
    return tuple(sorted(c.name if c.type == schema.EXPERIMENT.name else f"{c.type}/{c.name}"
                        for c in contexts))


def grouping_of(memberships: Dict[int, List[pb.Context]], wanted: Optional[str] = None) -> Optional[str]:
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
