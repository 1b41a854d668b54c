"""cli/walk_text.py: a long lineage walk printed hop by hop as it is reached, and stopped
cleanly by Ctrl-C or SIGTERM; a short one printed whole, as it always was."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import mlmd_exercise as mx
from conftest import deep_chain, digest, store_matrix
from mlmd_exercise.cli import output as out
from mlmd_exercise.cli.walk_text import STREAM_AFTER
from mlmd_exercise.read.nodes import oldest_twins
from mlmd_exercise.store.backend import Query
from mlmd_exercise.write.bulk import ArtifactSpec, RunSpec, record_runs

RUNS = 2000  # a chain this long prints far more than a pipe holds (see _start)
URI_LENGTH = 200
INTERRUPTED = re.compile(r"mlmd-exercise: interrupted after ([\d,]+) hops?: ([\d,]+) artifacts?, "
                         r"([\d,]+) executions? printed\n")


def _chain(address, workdir):
    """A plain chain of RUNS runs with long URIs (read only by the tests that use it)."""
    deep_chain(mx.open_store(address, create=True), RUNS, uri_length=URI_LENGTH)
    return address


def _shared(address, workdir):
    """A chain of 1,500 runs that all read the first dataset; models of the same content."""
    deep_chain(mx.open_store(address, create=True), 1500, shared=True)
    return address


chain, shared = store_matrix(_chain), store_matrix(_shared)


def _newest(store) -> int:
    return store.backend.artifacts(Query(order="id", limit=1))[0].id


def _words(line: str) -> str:
    return " ".join(line.split())


def _parse(text: str):
    """A streamed walk's text: its first and last lines, its node lines (without their
    alignment) and its events as (artifact id, execution id, kind, role, event)."""
    lines = text.splitlines()
    nodes, edges = [], []
    arrow = re.compile(r"  (artifact|execution) (\d+)\s+--(\S+)-->\s+(artifact|execution) (\d+)(?: \((\w+)\))?$")
    for line in lines[1:-1]:
        found = arrow.match(line)
        if found:
            tail, tail_id, role, _, head_id, event = found.groups()
            a, e, kind = ((tail_id, head_id, "INPUT") if tail == "artifact" else (head_id, tail_id, "OUTPUT"))
            edges.append((int(a), int(e), kind, "" if role == kind.lower() else role, event or ""))
        elif not line.startswith("hop "):
            nodes.append(_words(line))
    return lines[0], lines[-1], nodes, edges


@pytest.mark.parametrize("start, direction, hops", [
    ("newest", "upstream", None), ("data", "downstream", None), ("middle", "both", None),
    ("middle", "both", 700),
])
def test_a_long_walk_prints_each_hop_and_what_walk_gives(run_cli, shared, start, direction, hops):
    store = mx.open_store(shared)
    node = {"newest": _newest(store), "data": 1, "middle": _newest(store) // 2}[start]
    limit = [] if hops is None else ["--hops", hops]
    result = run_cli("lineage", "--artifact", node, "--direction", direction, *limit, "--db", shared)
    assert result.code == 0, result.err
    graph = mx.walk(store, artifact_id=node, direction=direction, hops=hops)
    # What the classic text would show, line for line (but for the alignment).
    title = (f"lineage of artifact {node}, upstream and downstream" if direction == "both"
             else f"{direction} lineage of artifact {node}")
    title += ", all hops" if hops is None else f", {hops} hops"
    whole = out.format_graph(graph, title, oldest_twins(store, graph.artifacts.values()))
    first, last, nodes, edges = _parse(result.out)
    assert first == f"{title}, each hop as it is reached:"
    assert last == whole[0]  # the counts, last
    assert len(nodes) == len(graph.artifacts) + len(graph.executions) > STREAM_AFTER
    assert sorted(nodes) == sorted(_words(line) for line in whole[1:len(nodes) + 1])
    assert any("(same content as artifact" in n for n in nodes)
    assert sorted(edges) == sorted((e.artifact_id, e.execution_id, e.kind, e.role, e.event) for e in graph.edges)
    hop_lines = [line for line in result.out.splitlines() if line.startswith("hop ")]
    assert hop_lines[0] == "hop 0"
    if direction == "both":
        assert "hop 1 upstream" in hop_lines and "hop 1 downstream" in hop_lines


def test_a_walk_of_up_to_stream_after_nodes_is_printed_whole(run_cli, chain):
    """Each hop of the plain chain reaches one node: hops + 1 nodes."""
    newest = _newest(mx.open_store(chain))
    whole = run_cli("lineage", "--artifact", newest, "--direction", "upstream",
                    "--hops", STREAM_AFTER - 1, "--db", chain)
    assert whole.out.splitlines()[0] == (f"upstream lineage of artifact {newest}, {STREAM_AFTER - 1:,} hops: "
                                         f"{STREAM_AFTER // 2:,} artifacts, {STREAM_AFTER // 2:,} executions")
    assert "events:" in whole.out and "hop 0" not in whole.out
    streamed = run_cli("lineage", "--artifact", newest, "--direction", "upstream",
                       "--hops", STREAM_AFTER, "--db", chain)
    assert streamed.out.splitlines()[0] == (f"upstream lineage of artifact {newest}, {STREAM_AFTER:,} hops, "
                                            "each hop as it is reached:")
    assert streamed.out.splitlines()[-1] == (f"upstream lineage of artifact {newest}, {STREAM_AFTER:,} hops: "
                                             f"{STREAM_AFTER // 2 + 1:,} artifacts, {STREAM_AFTER // 2:,} executions")


def _start(address: str, tmp_path: Path, *args) -> subprocess.Popen:
    """`mlmd-exercise lineage ARGS` in a process of its own, its stdout a pipe read line by
    line. Once the pipe is full (64 KiB: a few hundred hops of this chain) the command waits
    for the reader, at most two pages of records (about 1,000 runs) past what it printed:
    while the test does not read, the walk cannot end."""
    # Ctrl-C reaches it as from a terminal, even where the suite runs as a background job
    # (which starts with SIGINT ignored, and the command rightly keeps it so).
    return subprocess.Popen([sys.executable, "-m", "mlmd_exercise", "lineage", *map(str, args), "--db", address],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=(tmp_path / "stderr").open("w"), text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def test_text_is_printed_before_the_walk_ends(db, tmp_path):
    """Runs added to the far end of the chain once the first lines are out are in the walk:
    it had not got there when it printed them."""
    store = mx.open_store(db, create=True)
    deep_chain(store, RUNS, uri_length=URI_LENGTH)
    proc = _start(db, tmp_path, "--artifact", 1, "--direction", "downstream")
    assert proc.stdout is not None
    head = [proc.stdout.readline() for _ in range(3)]
    assert head == ["downstream lineage of artifact 1, all hops, each hop as it is reached:\n", "hop 0\n",
                    "  artifact 1  DataSet v1  file:///deep/data.csv\n"]
    newest = store.backend.artifacts(Query(ids=[_newest(store)]))[0]
    later = [ArtifactSpec(f"file:///deep/later{i}.joblib", type="SavedModel") for i in range(5)]
    record_runs(mx.Tracker(store, experiment="deep"),
                [RunSpec(inputs={"model": previous}, outputs={"model": model})
                 for previous, model in zip([newest, *later], later)])
    rest = proc.stdout.read()
    assert proc.wait(timeout=120) == 0, (tmp_path / "stderr").read_text()
    assert rest.splitlines()[-1] == (f"downstream lineage of artifact 1, all hops: {RUNS + 6:,} artifacts, "
                                     f"{RUNS + 5:,} executions")
    assert "file:///deep/later4.joblib" in rest


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_walk_says_how_far_it_got(chain, tmp_path, sig):
    store = mx.open_store(chain)
    newest, before = _newest(store), mx.count_by_state(store)
    files = [Path(chain + suffix) for suffix in ("", "-wal")] if "://" not in chain else []
    digests = [digest(f) for f in files]
    proc = _start(chain, tmp_path, "--artifact", newest, "--direction", "upstream")
    assert proc.stdout is not None
    head = [proc.stdout.readline() for _ in range(3)]
    time.sleep(0.5)  # the walk waits on the full pipe: a big write broken into by the signal lost its end
    proc.send_signal(sig)
    text = "".join(head) + proc.stdout.read()
    assert proc.wait(timeout=120) == 130
    err = (tmp_path / "stderr").read_text()
    found = INTERRUPTED.fullmatch(err)
    assert found, err  # one line, no traceback
    hops, artifacts, executions = (int(n.replace(",", "")) for n in found.groups())
    lines = text.splitlines()
    assert lines[0] == f"upstream lineage of artifact {newest}, all hops, each hop as it is reached:"
    assert not lines[-1].startswith("upstream lineage")  # it did not get to the end
    assert hops < 2 * RUNS
    # What it says it printed is what it printed: whole hops.
    assert sum(line.startswith("hop ") for line in lines) == hops + 1  # and hop 0
    assert sum(line.startswith("  artifact") and "-->" not in line for line in lines) == artifacts
    assert sum(line.startswith("  execution") and "-->" not in line for line in lines) == executions
    assert mx.count_by_state(store) == before and _newest(store) == newest
    assert [digest(f) for f in files] == digests  # the store's files as they were
