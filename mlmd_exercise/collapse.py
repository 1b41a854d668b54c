"""Big fan-outs drawn as one node: `Trainer x2000` instead of 2,000 boxes.

Executions are alike, and drawn as one, when nothing in the picture tells them
apart: the same type, state and box (context), the same inputs (artifact and
role, event by event), outputs of the same types under the same roles, and
none of their outputs read by any execution in the graph (what happens further
downstream would otherwise differ from one to the next). Their outputs are
drawn as one node per role in the same way.

A sweep's runs are alike in all of that and differ in their params: a group says which
params differ and over what range ("C 0.01–100"), so that the node drawn says what it hides.
"""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass
from typing import Collection, Dict, FrozenSet, Hashable, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

from mlmd_exercise import environment
from mlmd_exercise.records import (IMPORTED_PREFIXES, METRIC_NAMES, STATUS_KEYS, TAG_PREFIX, ExecutionRecord,
                                   LineageEdge, LineageGraph, PropertyValue)

__all__ = ["MIN_GROUP", "MAX_DIFFER", "Group", "Shape", "shape_of", "collapse", "differing_params"]

MIN_GROUP = 5  # fewer alike executions than this are drawn one by one


@dataclass(frozen=True)
class Group:
    """Executions drawn as one node: the one drawn, and all it stands for."""

    type: str
    state: str
    shown: int  # the id of the execution drawn
    ids: Tuple[int, ...]  # every execution it stands for, the drawn one first
    outputs: int  # how many output artifacts were drawn as one node per role
    differ: Tuple[str, ...] = ()  # the params that differ among them, each with its range ("C 0.01–100")


# An output of an execution, as the grouping sees it: (artifact id, role, event type).
Output = Tuple[int, str, str]
# An execution's inputs or outputs as a Shape holds them: one bare, more in a list. Most
# executions of a chain have one of each: 400,000 lists of one took 35 MB of a 200,000-run walk.
Held = Union[Output, List[Output]]


def _put(table: Dict[int, Held], key: int, item: Output) -> None:
    held = table.get(key)
    if held is None:
        table[key] = item
    elif isinstance(held, list):
        held.append(item)
    else:
        table[key] = [held, item]


def _all(table: Dict[int, Held], key: int) -> Sequence[Output]:
    held = table.get(key)
    if held is None:
        return ()
    return held if isinstance(held, list) else (held,)


class Shape:
    """What tells executions apart in a picture, and nothing else (no records): the executions'
    type and state, their box, their inputs and outputs, the artifacts' types. Filled an event
    at a time (`add`), so that a whole store's shape is read without holding its records."""

    def __init__(self) -> None:
        self.executions: Dict[int, Tuple[str, str]] = {}  # id -> (type, state)
        self.artifact_types: Dict[int, str] = {}
        self.box: Dict[int, str] = {}  # execution id -> the context it is drawn in
        self.inputs: Dict[int, Held] = {}  # execution id -> its inputs (_all reads them)
        self.outputs: Dict[int, Held] = {}
        self.read: set = set()  # artifacts some execution reads

    def add(self, edge: LineageEdge) -> None:
        if edge.artifact_id not in self.artifact_types or edge.execution_id not in self.executions:
            return
        role, event = sys.intern(edge.role), sys.intern(edge.event)  # a few roles, each read 200,000 times
        if edge.kind == "INPUT":
            _put(self.inputs, edge.execution_id, (edge.artifact_id, role, event))
            self.read.add(edge.artifact_id)
        else:
            _put(self.outputs, edge.execution_id, (edge.artifact_id, role, event))

    def groups(self, min_group: int = MIN_GROUP) -> List[List[int]]:
        """The sets of at least `min_group` alike executions (see the module), by id."""
        groups: Dict[Hashable, List[int]] = {}
        for i in sorted(self.executions):
            made = _all(self.outputs, i)
            if any(o[0] in self.read for o in made):
                continue  # something reads its outputs: it has a story of its own
            out_shape: FrozenSet = frozenset((role, event, self.artifact_types[a]) for a, role, event in made)
            if len(out_shape) != len(made):
                continue  # two outputs under one role: drawn as they are
            key = (*self.executions[i], self.box.get(i), frozenset(_all(self.inputs, i)), out_shape)
            groups.setdefault(key, []).append(i)
        return [ids for ids in groups.values() if len(ids) >= min_group]

    def outputs_by_role(self, ids: Sequence[int]) -> List[List[int]]:
        """A group's outputs, one list per role (and event type): each drawn as one node."""
        by_role: Dict[Tuple[str, str], List[int]] = {}
        for execution_id in ids:
            for artifact, role, event in _all(self.outputs, execution_id):
                by_role.setdefault((role, event), []).append(artifact)
        return list(by_role.values())

    def drawn_nodes(self, min_group: int = MIN_GROUP) -> int:
        """How many nodes the picture has once alike executions are drawn as one."""
        nodes = len(self.executions) + len(self.artifact_types)
        for ids in self.groups(min_group):
            nodes -= len(ids) - 1 + sum(len(same) - 1 for same in self.outputs_by_role(ids))
        return nodes


    @classmethod
    def of(cls, executions: Dict[int, Tuple[str, str]], artifact_types: Dict[int, str],
           edges: Iterable[LineageEdge], box: Optional[Dict[int, str]] = None) -> "Shape":
        """A shape from its parts: (type, state) and type by id, the edges (read once)."""
        shape = cls()
        shape.executions, shape.artifact_types, shape.box = executions, artifact_types, box or {}
        for edge in edges:
            shape.add(edge)
        return shape


def shape_of(graph: LineageGraph) -> Shape:
    """A lineage graph's shape, its boxes (experiments) included."""
    return Shape.of({e.id: (e.type, e.state) for e in graph.executions.values()},
                    {a.id: a.type for a in graph.artifacts.values()}, graph.edges,
                    {e: name for name, ids in graph.experiments.items() for e in ids})


def collapse(graph: LineageGraph, min_group: int = MIN_GROUP) -> Tuple[LineageGraph, List[Group]]:
    """The graph with each set of at least `min_group` alike executions drawn as one.

    Returns:
        The graph to draw (its `collapsed` and `collapsed_artifacts` say what each
        kept node stands for) and the groups, largest first.
    """
    shape = shape_of(graph)
    drop_e: set = set()
    drop_a: set = set()
    collapsed: Dict[int, Tuple[int, ...]] = {}
    collapsed_artifacts: Dict[int, Tuple[int, ...]] = {}
    found: List[Group] = []
    for ids in shape.groups(min_group):
        shown = ids[0]
        collapsed[shown] = tuple(ids)
        drop_e.update(ids[1:])
        by_role = shape.outputs_by_role(ids)
        for same in by_role:
            collapsed_artifacts[same[0]] = tuple(same)
            drop_a.update(same[1:])
        execution = graph.executions[shown]
        held = {k for i in ids for o in _all(shape.outputs, i) for k in graph.artifacts[o[0]].properties}
        found.append(Group(execution.type, execution.state, shown, tuple(ids), sum(len(s) for s in by_role),
                           differing_params([graph.executions[i] for i in ids], held)))
    if not found:
        return graph, []
    drawn = dataclasses.replace(
        graph,
        artifacts={i: a for i, a in graph.artifacts.items() if i not in drop_a},
        executions={i: e for i, e in graph.executions.items() if i not in drop_e},
        edges=tuple(e for e in graph.edges
                    if e.execution_id not in drop_e and e.artifact_id not in drop_a),
        experiments={name: tuple(i for i in ids if i not in drop_e)
                     for name, ids in graph.experiments.items()},
        collapsed=collapsed,
        collapsed_artifacts=collapsed_artifacts,
        collapsed_differ={g.shown: g.differ for g in found if g.differ},
    )
    return drawn, sorted(found, key=lambda g: (-len(g.ids), g.shown))



MAX_DIFFER = 3  # params named on a collapsed node; more are counted


def _params(e: ExecutionRecord, made: FrozenSet[str]) -> Mapping[str, PropertyValue]:
    """An execution's params as `diff` tells them (not its environment, tags, status or the
    metrics it logged, nor a key its outputs hold: a metric on its model)."""
    logged = e.properties.get(METRIC_NAMES)
    metrics = set(logged.split(",")) if isinstance(logged, str) else set()
    return {k: v for k, v in e.properties.items()
            if not (k.startswith((TAG_PREFIX, *IMPORTED_PREFIXES)) or k in STATUS_KEYS or k in metrics or k in made
                    or environment.is_environment_key(k))}


def _range(values: Sequence[PropertyValue]) -> str:
    numbers = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool) and v == v]
    if len(numbers) == len(values):
        return f"{min(numbers):g}–{max(numbers):g}"
    shown = sorted({str(v) for v in values})
    return ", ".join(shown) if len(shown) <= 3 and sum(map(len, shown)) <= 30 else f"{len(shown)} values"


def differing_params(executions: Sequence[ExecutionRecord], made: Collection[str] = ()) -> Tuple[str, ...]:
    """The params whose values differ among these executions, by name, each with the range of
    its values: "C 0.01–100" (numbers), "solver: lbfgs, saga" (a few texts), "tol: 5 values";
    at most MAX_DIFFER, then how many more. A param some of them lack differs too."""
    params = [_params(e, frozenset(made)) for e in executions]
    keys = sorted({k for p in params for k in p})
    differ = []
    for key in keys:
        values = [p[key] for p in params if key in p]
        if len({repr(v) for v in values}) > 1:
            differ.append(f"{key} {_range(values)}")
        elif len(values) < len(params):
            differ.append(f"{key} (some unset)")
    if len(differ) > MAX_DIFFER:
        differ = differ[:MAX_DIFFER] + [f"{len(differ) - MAX_DIFFER} more"]
    return tuple(differ)
