"""The text of a lineage walk: whole while it is small, hop by hop past that.

`lineage --artifact/--execution` prints a walk that reaches at most STREAM_AFTER nodes as
it always has: a title with the counts, the nodes by id, then the events; that needs the
whole walk before its first line. A longer walk (a 200,000-run chain is 400,000 hops) would
keep the user waiting with nothing shown, and the process holding every record, so past
that the text follows the walk: each hop as it is reached, a page of records at a time,
and the counts on the last line. Only the ids reached are kept (`read.lineage.walk_hops`).
Ctrl-C or SIGTERM stops it between two hops, saying how far it got.
"""

from __future__ import annotations

import contextlib
import itertools
import signal
import sys
import threading
from types import FrameType
from typing import TYPE_CHECKING, Callable, Iterable, Iterator, List, Optional, Set

from mlmd_exercise import text
from mlmd_exercise.cli import output as out
from mlmd_exercise.cli.command import PROG, Outcome
from mlmd_exercise.records import ExecutionState

if TYPE_CHECKING:  # imported where the command runs: the store's modules are heavy
    from mlmd_exercise.read.lineage import Hop
    from mlmd_exercise.store import Store

__all__ = ["STREAM_AFTER", "print_walk"]

STREAM_AFTER = 1000  # nodes: a walk that reaches more is printed as it goes
CACHED = ExecutionState.CACHED.value


def print_walk(store: Store, hops: Iterator[Hop], title: str, legs: bool = False) -> Outcome:
    """Prints a walk's text: whole if it reaches at most STREAM_AFTER nodes, else hop by hop.

    Args:
        store: the store walked (for "same content as", looked up a page at a time).
        hops: the walk (`walk_hops` with `lines=True`: what the text shows of each node).
        title: what the walk is, "upstream lineage of artifact 6, all hops".
        legs: the walk goes both ways: each hop says which.

    Returns:
        OK, or INTERRUPTED when Ctrl-C or SIGTERM stopped it (it said how far it got).
    """
    from mlmd_exercise.read.lineage import graph_of, with_records
    from mlmd_exercise.read.nodes import oldest_twins

    with _stop_requests() as stopped:
        held: List[Hop] = []
        reached = 0
        for hop in hops:
            held.append(hop)
            reached += len(hop.artifacts) + len(hop.executions)
            if stopped():
                return _interrupted(0, 0, 0)
            if reached > STREAM_AFTER:
                break
        else:
            graph = graph_of(with_records(store, held))
            print("\n".join(out.format_graph(graph, title, oldest_twins(store, graph.artifacts.values()))))
            return Outcome.OK
        return _stream(store, itertools.chain(held, hops), title, legs, stopped)


def _stream(store: Store, hops: Iterable[Hop], title: str, legs: bool, stopped: Callable[[], bool]) -> Outcome:
    """Each hop as it comes, flushed at the end of each page of records; the counts last."""
    from mlmd_exercise.read.nodes import twins_by_fingerprint

    print(f"{title}, each hop as it is reached:")
    artifacts = executions = printed = 0
    cached: Set[int] = set()  # the CACHED executions reached so far: their outputs are re-published
    page: List[Hop] = []
    for hop in hops:
        page.append(hop)
        if not hop.page_end:
            continue
        same = twins_by_fingerprint(store, [(a.id, a.fingerprint) for one in page for a in one.artifacts])  # a query a page
        lines: List[str] = []  # the page's text, written at once: a write a hop took a fifth of the time
        for one in page:
            for e in one.executions:
                if e.state == CACHED:
                    cached.add(e.id)
            lines += out.format_hop(one, same, legs, cached)
            artifacts += len(one.artifacts)
            executions += len(one.executions)
            printed += one.number > 0
            if stopped():
                break
        lines.append("")
        _write("\n".join(lines))
        if stopped():
            return _interrupted(printed, artifacts, executions)
        page = []
    print(f"{title}: {text.count(artifacts, 'artifact')}, {text.count(executions, 'execution')}", flush=True)
    return Outcome.OK


def _write(text: str) -> None:
    """Writes a page of the walk and flushes it, with Ctrl-C and SIGTERM held until it is out
    (they only ask for a stop here). A signal that came while a big write waited on a full pipe
    made CPython drop the rest of the write: the reader got a page cut mid-line."""
    mask = getattr(signal, "pthread_sigmask", None)  # POSIX
    held = mask(signal.SIG_BLOCK, _STOPS) if mask else None
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    finally:
        if mask:
            mask(signal.SIG_SETMASK, held)


_STOPS = {signal.SIGINT, signal.SIGTERM}


def _interrupted(hops: int, artifacts: int, executions: int) -> Outcome:
    print(f"{PROG}: interrupted after {text.count(hops, 'hop')}: {text.count(artifacts, 'artifact')}, "
          f"{text.count(executions, 'execution')} printed", file=sys.stderr)
    return Outcome.INTERRUPTED


@contextlib.contextmanager
def _stop_requests() -> Iterator[Callable[[], bool]]:
    """Inside, Ctrl-C (SIGINT) and SIGTERM ask the walk to stop at the next hop instead of
    ending the process wherever it is, so that what was printed is whole hops, counted. A
    second one stops at once (a query of a very wide hop can take a while)."""
    asked: List[int] = []
    if threading.current_thread() is not threading.main_thread():  # only it receives signals
        yield lambda: False
        return

    def ask(signum: int, frame: Optional[FrameType]) -> None:
        if asked:
            raise KeyboardInterrupt
        asked.append(signum)

    # A signal the process was started ignoring (nohup, a background job) stays ignored.
    previous = {s: signal.signal(s, ask) for s in sorted(_STOPS)
                if signal.getsignal(s) is not signal.SIG_IGN}
    try:
        yield lambda: bool(asked)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler if handler is not None else signal.SIG_DFL)
