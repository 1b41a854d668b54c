"""`ls executions` and `ls artifacts` stream: a listing of many runs holds a page of runs at a time
and the rows it prints, never every run's record, events and outputs at once (at 200,000 runs that was 728 MB on
the native backend and 1.44 GB on ml-metadata's; see docs/performance.md)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import mlmd_exercise as mx
from conftest import STORES, backend_of, deep_chain
from mlmd_exercise.write.bulk import ArtifactSpec, RunSpec, record_runs

RUNS = 30_000
# What one run's record, events and output cost when all are held (measured: about 3.5 KB a run
# on the native backend, 7 KB on ml-metadata's); a streamed listing adds its rows alone.
ROOM_MB = 45
# A streamed artifact listing holds its rows (about 25 MB here); every record held took 60-90 MB.
ARTIFACT_ROOM_MB = 35


@pytest.fixture(scope="module")
def many(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("many") / "metadata.db"
    store = mx.open_store(path, create=True, backend="native")

    def runs():
        for i in range(RUNS):
            yield RunSpec(inputs={"examples": ArtifactSpec(f"file:///d/{i % 50}.csv")},
                          outputs={"model": ArtifactSpec(f"file:///m/{i}.joblib", type="SavedModel",
                                                         properties={"accuracy": (i % 101) / 100})},
                          params={"C": float(i % 7)})

    record_runs(mx.Tracker(store), runs())
    store.close()
    return path


def peak_mb(args, cwd: Path, expect: int = 0) -> tuple:
    """Runs `mlmd-exercise ARGS` under a Python of its own that waits for it alone, and returns its
    peak resident memory in MB and its output (its error output where it must exit `expect`, not 0)."""
    wrapper = ("import resource, subprocess, sys\n"
               "p = subprocess.run([sys.executable, '-m', 'mlmd_exercise', *sys.argv[1:]], capture_output=True)\n"
               "sys.stderr.buffer.write(p.stderr)\n"
               "sys.stdout.buffer.write(p.stdout)\n"
               "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024, p.returncode, file=sys.stderr)\n")
    proc = subprocess.run([sys.executable, "-c", wrapper, *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=600)
    *errors, last = proc.stderr.strip().splitlines()
    mb, code = map(int, last.split())
    assert code == expect, proc.stderr
    return mb, proc.stdout if expect == 0 else "\n".join(errors)


@pytest.mark.parametrize("store", [s for s in STORES if s.startswith("sqlite")])
def test_listing_every_run_holds_a_page_at_a_time(store, many, tmp_path):
    with backend_of(store):
        one, _ = peak_mb(["ls", "executions", "--limit", "1", "--db", many], tmp_path)
        every, text = peak_mb(["ls", "executions", "--db", many], tmp_path)
        lines = text.splitlines()
        assert len(lines) == RUNS + 1 and lines[0].split() == ["ID", "TYPE", "STATE", "CREATED", "accuracy", "C"]
        assert lines[1].split()[0] == str(RUNS) and lines[-1].split()[0] == "1"
        assert every - one < ROOM_MB, f"listing {RUNS:,} runs took {every} MB, one run {one} MB"
        best, text = peak_mb(["ls", "executions", "--sort", "-accuracy", "--json", "--db", many], tmp_path)
        assert text.count('"id":') == RUNS and best - one < ROOM_MB, f"sorted as JSON: {best} MB, one run {one} MB"
        made, text = peak_mb(["ls", "artifacts", "--db", many], tmp_path)
        lines = text.splitlines()
        assert len(lines) == RUNS + 50 + 1 and lines[1].split()[:2] == [str(RUNS + 50), "SavedModel"]
        assert made - one < ARTIFACT_ROOM_MB, f"listing {RUNS + 50:,} artifacts took {made} MB, one run {one} MB"


# An export holds a chunk of records at a time (the rest goes to temporary files as it is read):
# 23 MB above a one-run listing here on the native backend, 36 MB on ml-metadata's; every record
# held at once took 105-108 MB (383 MB for 100,000 runs, 87 MB streamed).
EXPORT_ROOM_MB = 65


@pytest.mark.parametrize("store", [s for s in STORES if s.startswith("sqlite")])
def test_exporting_every_run_holds_a_chunk_at_a_time(store, many, tmp_path):
    with backend_of(store):
        one, _ = peak_mb(["ls", "executions", "--limit", "1", "--db", many], tmp_path)
        every, text = peak_mb(["export", "--output", tmp_path / "all.bundle", "--db", many], tmp_path)
        assert text.startswith(f"exported {RUNS:,} runs, {RUNS + 50:,} artifacts, {2 * RUNS:,} events"), text
        kinds = [json.loads(line)["kind"] for line in (tmp_path / "all.bundle").read_text().splitlines()[1:]]
        # In the format's order, each kind once, all of it: the parts written aside were joined whole.
        assert [k for i, k in enumerate(kinds) if i == 0 or kinds[i - 1] != k] == \
            ["type", "context", "artifact", "execution", "event", "end"]
        assert kinds.count("execution") == RUNS and kinds.count("event") == 2 * RUNS
        assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".export-") or p.suffix == ".partial"]
        assert every - one < EXPORT_ROOM_MB, f"exporting {RUNS:,} runs took {every} MB, one run {one} MB"


# A prune's plan holds what it says of each run and artifact (id, type, state or URI) and who touched
# what as columns of ids: 25 MB above a one-run listing here on the native backend, 58 MB on
# ml-metadata's. It held every candidate's record, every artifact's and every event: 124-147 MB here,
# 855 MB for 200,000 runs (148-190 MB now).
PRUNE_ROOM_MB = 90


@pytest.mark.parametrize("store", [s for s in STORES if s.startswith("sqlite")])
def test_a_prune_plan_holds_ids_not_records(store, many, tmp_path):
    with backend_of(store):
        one, _ = peak_mb(["ls", "executions", "--limit", "1", "--db", many], tmp_path)
        every, text = peak_mb(["prune", "--older-than", "0s", "--dry-run", "--db", many], tmp_path)
        lines = text.splitlines()
        assert lines[0].endswith(f"; would remove {RUNS:,} runs and {RUNS + 50:,} artifacts"), text
        assert lines[1:4] == [f"  runs: Trainer COMPLETE: {RUNS:,}", "  artifacts: DataSet: 50",
                              f"  artifacts: SavedModel: {RUNS:,}"], text
        assert every - one < PRUNE_ROOM_MB, f"planning to prune {RUNS:,} runs took {every} MB, one run {one} MB"


# `stale` of a store with nothing to check (its URIs no local files) holds the unchecked artifacts'
# ids, not their records: 5 MB above a one-run listing here, 33 MB when every record was held
# (170 MB of 206 MB on a 200,000-run chain).
STALE_ROOM_MB = 12


@pytest.mark.parametrize("store", [s for s in STORES if s.startswith("sqlite")])
def test_stale_holds_the_ids_of_what_it_cannot_check_not_their_records(store, many, tmp_path):
    with backend_of(store):
        one, _ = peak_mb(["ls", "executions", "--limit", "1", "--db", many], tmp_path)
        every, text = peak_mb(["stale", "--db", many], tmp_path)
        assert text == "no stale artifacts: 0 changed or missing files among 0 checked files\n"
        assert every - one < STALE_ROOM_MB, f"stale of {RUNS:,} runs took {every} MB, one run's listing {one} MB"


# A picture of the whole store too big to draw is refused from the store's shape (types, states and
# events by id), before any record is read: 25 MB above a one-run listing on the native backend, 30 MB
# on ml-metadata's. It read every record first: 94-143 MB here, 647 MB-1 GB at 200,000 runs.
GRAPH_ROOM_MB = 60


@pytest.mark.parametrize("store", [s for s in STORES if s.startswith("sqlite")])
def test_a_whole_store_too_big_to_draw_is_refused_before_its_records_are_read(store, many, tmp_path):
    with backend_of(store):
        one, _ = peak_mb(["ls", "executions", "--limit", "1", "--db", many], tmp_path)
        wrapper = ("import resource, subprocess, sys\n"
                   "p = subprocess.run([sys.executable, '-m', 'mlmd_exercise', *sys.argv[1:]], capture_output=True, text=True)\n"
                   "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024, p.returncode)\n"
                   "print(p.stderr, end='')\n")
        proc = subprocess.run([sys.executable, "-c", wrapper, "graph", "--expand", "--output", str(tmp_path / "g.svg"),
                               "--db", str(many)], cwd=tmp_path, capture_output=True, text=True, timeout=600)
        first, said = proc.stdout.split("\n", 1)
        mb, code = map(int, first.split())
        # 30,000 runs, each with its model, and 50 datasets, each drawn (--expand).
        assert code == 2 and said == (
            f"mlmd-exercise: error: the graph has {2 * RUNS + 50:,} nodes: more "
            "than graphviz draws in reasonable time (--max-nodes 2,500); draw one node's lineage (--artifact ID or "
            "--execution ID, with --hops N), write a .dot file, or give a larger --max-nodes\n")
        assert not (tmp_path / "g.svg").exists()
        assert mb - one < GRAPH_ROOM_MB, f"refusing to draw {RUNS:,} runs took {mb} MB, one run {one} MB"


@pytest.fixture(scope="module")
def many_bundle(many, tmp_path_factory) -> Path:
    from mlmd_exercise.read.export import export_bundle
    from mlmd_exercise.store.backend import Query

    path = tmp_path_factory.mktemp("bundle") / "all.bundle"
    store = mx.open_store(many, backend="native")
    export_bundle(store, path, [e.id for e in store.backend.executions(Query())])
    store.close()
    return path


# An import holds the bundle's index (where each line starts, ids, types, origins, contexts, as arrays)
# and reads the records again a batch at a time, the memberships a chunk to a call: 15 MB above a one-run
# listing here on the native backend, 20 MB on ml-metadata's. It held every record as a dict: 231-264 MB
# here, 1.6-1.8 GB at 200,000 runs.
IMPORT_ROOM_MB = 70


@pytest.mark.parametrize("store", [s for s in STORES if s.startswith("sqlite")])
def test_importing_a_bundle_holds_its_index_not_its_records(store, many, many_bundle, tmp_path):
    with backend_of(store):
        one, _ = peak_mb(["ls", "executions", "--limit", "1", "--db", many], tmp_path)
        every, text = peak_mb(["import", many_bundle, "--db", tmp_path / "copy.db"], tmp_path)
        assert text.startswith(f"imported {RUNS:,} runs, {RUNS + 50:,} artifacts and {2 * RUNS:,} events"), text
        mb, listed = peak_mb(["ls", "executions", "--db", tmp_path / "copy.db"], tmp_path)
        assert len(listed.splitlines()) == RUNS + 1
        assert every - one < IMPORT_ROOM_MB, f"importing {RUNS:,} runs took {every} MB, one run {one} MB"


# A prune's removal binds a chunk of ids to a statement, the ids held as arrays: it adds nothing to what
# planning the same prune takes (0 MB here). Binding every id at once, with every event's id in a set and
# each DELETE's returned rows, took 11 MB more than the plan here (with --archive at 200,000 runs, 312 MB
# in all, 189 MB now).
REMOVAL_ROOM_MB = 6


def test_a_prunes_removal_holds_a_chunk_of_ids_at_a_time(many, tmp_path, monkeypatch):
    import shutil

    from mlmd_exercise.store import choice

    monkeypatch.setenv(choice.ENV_BACKEND, "native")  # only the native backend removes nodes
    copy = tmp_path / "copy.db"
    shutil.copy(many, copy)
    planned, text = peak_mb(["prune", "--older-than", "0s", "--dry-run", "--db", copy], tmp_path)
    assert text.startswith(f"{RUNS:,} runs started before "), text
    every, text = peak_mb(["prune", "--older-than", "0s", "--yes", "--db", copy], tmp_path)
    assert f"removed {RUNS:,} runs, {RUNS + 50:,} artifacts and {2 * RUNS:,} events from" in text, text
    _, left = peak_mb(["ls", "executions", "--db", copy], tmp_path)
    assert left == "no executions\n", left
    assert every - planned < REMOVAL_ROOM_MB, f"pruning {RUNS:,} runs took {every} MB, planning it {planned} MB"


# An export of an artifact's lineage asks the walk for the runs' ids alone. From the newest model of
# a 40,000-run chain it took 98-99 MB above a one-run listing when it gathered the walk as a graph
# of records (both backends), 23-40 MB with the ids (500 MB and 60 MB at 200,000 runs, native).
DEEP = 40_000
DEEP_ROOM_MB = 60


@pytest.fixture(scope="module")
def deep(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("deep") / "metadata.db"
    store = mx.open_store(path, create=True, backend="native")
    deep_chain(store, DEEP)
    store.close()
    return path


@pytest.mark.parametrize("store", [s for s in STORES if s.startswith("sqlite")])
def test_exporting_a_deep_lineage_holds_the_runs_ids_not_their_records(store, deep, tmp_path):
    with backend_of(store):
        one, _ = peak_mb(["ls", "executions", "--limit", "1", "--db", deep], tmp_path)
        newest = DEEP + 1  # the chain's artifacts: its dataset, then each run's model
        every, text = peak_mb(["export", "--output", tmp_path / "up.bundle", "--artifact", newest,
                               "--db", deep], tmp_path)
        assert text.startswith(f"exported {DEEP:,} runs, {DEEP + 1:,} artifacts, {2 * DEEP:,} events"), text
        assert every - one < DEEP_ROOM_MB, f"exporting a {DEEP:,}-run lineage took {every} MB, one run {one} MB"


# A graph of a walk too big to draw is refused from the walk's shape (types, states, edges by id),
# read before any record: from the newest model of the 40,000-run chain that took 35-43 MB above a
# one-run listing, and 111-117 MB with every record of the walk held first (649 and 212 MB at 200,000).
WALK_GRAPH_ROOM_MB = 75


@pytest.mark.parametrize("store", [s for s in STORES if s.startswith("sqlite")])
def test_a_walk_too_big_to_draw_is_refused_before_its_records_are_read(store, deep, tmp_path):
    with backend_of(store):
        one, _ = peak_mb(["ls", "executions", "--limit", "1", "--db", deep], tmp_path)
        mb, refused = peak_mb(["graph", "--artifact", DEEP + 1, "--output", tmp_path / "g.svg", "--db", deep], tmp_path,
                              expect=2)
        assert refused.startswith(
            f"mlmd-exercise: error: the graph has {2 * DEEP + 1:,} nodes after alike runs are drawn as one"), refused
        assert not (tmp_path / "g.svg").exists()
        assert mb - one < WALK_GRAPH_ROOM_MB, f"refusing a {DEEP:,}-run walk took {mb} MB, one run {one} MB"
