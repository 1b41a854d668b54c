"""A walk's leg as each backend walks it (`Backend.walk_leg`: the native backend's recursive SQL,
many hops per query) against the hop-by-hop walk of the base class, on random graphs with
fan-in, fan-out, diamonds of unequal sides and every event kind, on every database and backend;
and the CLI's lineage output the same, byte for byte, either way."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Dict, List, Tuple

import pytest

import mlmd_exercise as mx
from mlmd_exercise.read.lineage import walk_hops_from
from mlmd_exercise.records import EVENT_TYPES, Kind
from mlmd_exercise.store.backend import Backend, ContextWrite, ExecutionWrite, NewArtifact, NewEvent, Query
from mlmd_exercise.store.native import reads, walk

from conftest import deep_chain, store_matrix

CHAIN = 800  # runs: 1,600 hops upstream, more than the spans of hops that grow to walk_span (512)
SEEDS = range(6)


def _graph(backend: Backend, seed: int, context: ContextWrite, types: Tuple[int, int]) -> Tuple[List[int], List[int]]:
    """A random graph of a few dozen nodes: each execution reads some artifacts made before it
    and writes new ones (fan-in, fan-out, diamonds whose sides differ in length, some events
    read again in the other direction), with events of every type, paths of keys, indexes or
    none; returns its artifacts' and executions' ids."""
    rng = random.Random(seed)
    artifact_type, execution_type = types
    sizes = rng.randint(5, 30), rng.randint(5, 25)
    artifacts = [NewArtifact(artifact_type, "RandomData", f"file:///random/{seed}/{i}") for i in range(sizes[0])]
    executions = [ExecutionWrite(execution_type, "RandomStep", name=f"random-{seed}-{i}") for i in range(sizes[1])]
    events: Dict[Tuple[int, int, str], NewEvent] = {}
    paths = [(), ("examples",), ("model", 0), (3,), ("a", "b", 1)]
    for x in range(sizes[1]):
        made = sorted(rng.sample(range(sizes[0]), rng.randint(0, 3)))
        for a in rng.sample(range(sizes[0]), rng.randint(0, 4)):
            kind = rng.choice(EVENT_TYPES[1:]) if rng.random() < 0.3 else rng.choice(("INPUT", "OUTPUT"))
            if a in made and kind.endswith("INPUT"):
                kind = "OUTPUT"
            events[(a, x, kind)] = NewEvent(kind, rng.choice(paths), artifact_index=a, execution_index=x)
        for a in made:
            events[(a, x, "OUTPUT")] = NewEvent("OUTPUT", rng.choice(paths), artifact_index=a, execution_index=x)
    execution_ids, artifact_ids, _ = backend.put_lineage(executions, artifacts, list(events.values()), context)
    return artifact_ids, execution_ids


def _diamonds(backend: Backend, context: ContextWrite, types: Tuple[int, int], count: int = 40
              ) -> Tuple[List[int], List[int]]:
    """`count` diamonds in a row, each of a short side (one execution) and a long side (two
    executions and an artifact between them): 2**count paths from end to end, a node reached at
    many depths (a recursive query over (node, depth) pairs that kept every path would not end)."""
    artifact_type, execution_type = types
    artifacts = [NewArtifact(artifact_type, "RandomData", f"file:///diamond/{i}") for i in range(2 * count + 1)]
    executions = [ExecutionWrite(execution_type, "RandomStep", name=f"diamond-{i}") for i in range(3 * count)]
    events = []
    for d in range(count):
        top, middle, bottom = 2 * d, 2 * d + 1, 2 * d + 2
        short, first, second = 3 * d, 3 * d + 1, 3 * d + 2
        events += [NewEvent("INPUT", ("in",), artifact_index=top, execution_index=short),
                   NewEvent("OUTPUT", ("out",), artifact_index=bottom, execution_index=short),
                   NewEvent("INPUT", ("in",), artifact_index=top, execution_index=first),
                   NewEvent("OUTPUT", ("out",), artifact_index=middle, execution_index=first),
                   NewEvent("DECLARED_INPUT", ("in",), artifact_index=middle, execution_index=second),
                   NewEvent("OUTPUT", ("out",), artifact_index=bottom, execution_index=second)]
    execution_ids, artifact_ids, _ = backend.put_lineage(executions, artifacts, events, context)
    return artifact_ids, execution_ids


def _fill(address: str, workdir: Path):
    store = mx.open_store(address, create=True)
    backend = store.backend
    types = (backend.put_type(Kind.ARTIFACT, "RandomData", {}), backend.put_type(Kind.EXECUTION, "RandomStep", {}))
    context = ContextWrite(backend.put_type(Kind.CONTEXT, "RandomGraphs", {}), "RandomGraphs", "graphs")
    graphs = [_graph(backend, seed, context, types) for seed in SEEDS]
    diamonds = _diamonds(backend, context, types)
    deep_chain(store, CHAIN)
    return store, graphs, diamonds, address


graphs = store_matrix(_fill)


def _leg(backend: Backend, artifacts, executions, direction, hops, reference: bool = False):
    walked = (Backend.walk_leg(backend, artifacts, executions, direction, hops) if reference
              else backend.walk_leg(artifacts, executions, direction, hops))
    return [(number, sorted(a), sorted(e), edges) for number, a, e, edges in walked]


def _starts(rng: random.Random, artifacts: List[int], executions: List[int]):
    """A few starts as `walk_hops_from` gets them: artifacts, executions or both."""
    return (sorted(rng.sample(artifacts, rng.randint(0, min(3, len(artifacts))))),
            sorted(rng.sample(executions, rng.randint(0, min(2, len(executions))))))


@pytest.mark.parametrize("direction", ["upstream", "downstream"])
@pytest.mark.parametrize("hops", [0, 1, 2, None])
def test_a_leg_walks_as_hop_by_hop_on_random_graphs(graphs, direction, hops):
    store, made, _, address = graphs
    for seed, (artifacts, executions) in zip(SEEDS, made):
        rng = random.Random(seed * 31 + (hops or 7))
        for _ in range(4):
            start_a, start_e = _starts(rng, artifacts, executions)
            got = _leg(store.backend, start_a, start_e, direction, hops)
            assert got == _leg(store.backend, start_a, start_e, direction, hops, reference=True), (seed, start_a, start_e)


@pytest.mark.parametrize("hops", [0, 1, 2, 5, None])
def test_a_walk_both_ways_gives_the_hops_it_gave_hop_by_hop(graphs, hops, monkeypatch):
    store, made, _, address = graphs
    rng = random.Random(hops or 11)
    walks = []
    for artifacts, executions in made:
        start_a, start_e = _starts(rng, artifacts, executions)
        if start_a or start_e:
            walks.append((store.backend.artifacts(Query(ids=start_a)) if start_a else [],
                          store.backend.executions(Query(ids=start_e)) if start_e else []))
    assert walks
    for direction in ("upstream", "downstream", "both"):
        got = [list(walk_hops_from(store, a, e, direction=direction, hops=hops, page=7)) for a, e in walks]
        with monkeypatch.context() as patch:
            patch.setattr(type(store.backend), "walk_leg", Backend.walk_leg)
            expected = [list(walk_hops_from(store, a, e, direction=direction, hops=hops, page=7)) for a, e in walks]
        assert got == expected


@pytest.mark.parametrize("direction", ["upstream", "downstream"])
def test_diamonds_of_unequal_sides_are_walked_at_their_shortest_distance(graphs, direction):
    store, _, (artifacts, executions), _ = graphs
    start = artifacts[-1] if direction == "upstream" else artifacts[0]
    got = _leg(store.backend, [start], [], direction, None)
    assert got == _leg(store.backend, [start], [], direction, None, reference=True)
    # 40 diamonds, each crossed in 2 hops by its short side, the long side's nodes 1 hop later.
    assert max(number for number, a, e, edges in got if a or e) == 81
    assert sum(len(a) + len(e) for _, a, e, _ in got) == len(artifacts) + len(executions) - 1


def test_a_chain_deeper_than_a_span_of_hops_is_walked_whole(graphs):
    store, _, _, _ = graphs
    newest = store.backend.artifacts(Query(order="id", ascending=False, limit=1))[0].id
    got = _leg(store.backend, [newest], [], "upstream", None)
    assert got == _leg(store.backend, [newest], [], "upstream", None, reference=True)
    assert sum(1 for _, a, e, _ in got if a or e) == 2 * CHAIN
    for hops in (1023, 1024, 1500):  # where a span of hops ends, and within one
        assert _leg(store.backend, [newest], [], "upstream", hops) == got[:hops]


def test_spans_shrink_where_hops_are_wide_and_the_walk_is_the_same(graphs, monkeypatch):
    store, made, _, address = graphs
    monkeypatch.setattr(walk, "WIDE", 3)
    for artifacts, executions in made:
        for direction in ("upstream", "downstream"):
            got = _leg(store.backend, artifacts[:2], executions[:1], direction, None)
            assert got == _leg(store.backend, artifacts[:2], executions[:1], direction, None, reference=True)


def _native(store) -> reads.NativeReads:
    if not isinstance(store.backend, reads.NativeReads):
        pytest.skip("the native backend's own walk")
    return store.backend


def test_a_walk_leaves_no_temporary_table_behind_ended_or_not(graphs):
    backend = _native(graphs[0])
    newest = backend.artifacts(Query(order="id", ascending=False, limit=1))[0].id
    left = backend.walk_leg([newest], [], "upstream", None)
    assert next(left)[0] == 1
    left.close()  # given up after its first hop, as a reader that stops
    assert len(list(backend.walk_leg([newest], [], "upstream", 3))) == 3
    number = next(walk._NAMES)
    for n in range(number - 2, number):  # the two walks' tables are gone: their names are free
        for name in (f"mlmd_walk_reached_{n}", f"mlmd_walk_frontier_{n}", f"mlmd_walk_span_{n}"):
            backend.db.run(backend.db.temporary_table(name, "id INTEGER"))
            backend.db.run(backend.db.drop_temporary(name))


def test_where_no_temporary_table_can_be_made_the_walk_goes_hop_by_hop(tmp_path):
    store = mx.open_store(str(tmp_path / "s.db"), create=True, backend="native")
    deep_chain(store, 30)
    backend = _native(store)
    newest = backend.artifacts(Query(order="id", ascending=False, limit=1))[0].id
    expected = _leg(backend, [newest], [], "upstream", None)
    backend.db.run("PRAGMA query_only = 1")  # SQLite then refuses even temporary tables
    with pytest.raises(Exception):
        walk.temporary_tables(backend.db)
    assert _leg(backend, [newest], [], "upstream", None) == expected
    assert len([hop for hop in expected if hop[1] or hop[2]]) == 60
    store.close()


@pytest.mark.parametrize("args", [["--direction", "upstream"], ["--direction", "both"], ["--direction", "both", "--json"],
                                  ["--hops", "3", "--direction", "downstream"], ["--json"]])
def test_lineage_prints_what_it_printed_hop_by_hop(graphs, run_cli, monkeypatch, args):
    store, made, _, address = graphs
    starts = [made[0][0][0], made[3][0][-1],
              store.backend.artifacts(Query(order="id", ascending=False, limit=1))[0].id]
    for start in starts:
        now = run_cli("lineage", "--db", address, "--artifact", start, *args)
        with monkeypatch.context() as patch:
            for backend in {type(store.backend), reads.NativeReads}:  # a reader's backend, or a writer's
                patch.setattr(backend, "walk_leg", Backend.walk_leg)
            before = run_cli("lineage", "--db", address, "--artifact", start, *args)
        assert now.code == before.code == 0, (now.err, before.err)
        assert now.out == before.out and now.out
