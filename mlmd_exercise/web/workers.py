"""The explorer's page makers: a few threads, each page made with a store no other thread
uses meanwhile, and every request answered within a bound.

One MLMD store object is not safe across threads, so a page holds a store of its own for as
long as it is made: the first is the one `ui` opened, the others (up to `size`) are opened the
same way when pages overlap, and are reused. A request waits at most `bound` seconds for its
page, queued or being made; past that it gets a 503 (`Busy`), and a page still queued is
dropped, never made for nobody. A page that outlives its bound goes on in its thread (a thread
cannot be stopped) and gives its store back when it ends.
"""

from __future__ import annotations

import queue
import threading
from typing import TYPE_CHECKING, Callable, List, Optional, Tuple

if TYPE_CHECKING:
    from mlmd_exercise.store import Store

__all__ = ["WORKERS", "BOUND", "Busy", "Workers"]

WORKERS = 4  # stores (and threads) at most: pages are mostly Python, so more buys little on the GIL
BOUND = 30.0  # seconds a request may wait for its page, queued or being made

Answer = Tuple[str, List[Tuple[str, str]], bytes]  # status, headers, body


class Busy(Exception):
    """No page within the bound: the message says which wait it was, for a 503 page."""


class _Job:
    """One request's page: waiting, running, dropped (its request gave up) or done."""

    def __init__(self, environ: dict) -> None:
        self.environ = environ
        self.state = "waiting"
        self.done = threading.Event()
        self.answer: Optional[Answer] = None
        self.error: Optional[BaseException] = None


class Workers:
    """`size` threads making pages with the WSGI app `make_app(store)` over a store each.

    Args:
        store: the first store (the caller's: closed by the caller).
        make_app: the WSGI app over one store.
        opener: opens another store like `store` (read-only); None: `store` alone, one page
            at a time.
        size: threads, and stores at most.
        bound: seconds a request waits for its page.
    """

    def __init__(self, store: Store, make_app: Callable[[Store], Callable], opener: Optional[Callable[[], Store]],
                 size: int = WORKERS, bound: float = BOUND) -> None:
        self.bound = bound
        self._make_app, self._opener = make_app, opener
        self._idle: "queue.SimpleQueue[Tuple[Store, Callable]]" = queue.SimpleQueue()
        self._idle.put((store, make_app(store)))
        self._opened: List[Store] = []  # the stores opened here, closed by `close`
        self._jobs: "queue.SimpleQueue[Optional[_Job]]" = queue.SimpleQueue()
        self._lock = threading.Lock()  # a job's state, the opened stores, closing
        self._closed = False
        # Daemon threads: a page that runs on past Ctrl-C does not hold the process.
        self._threads = [threading.Thread(target=self._work, name=f"explorer-page-{i}", daemon=True)
                         for i in range(size if opener is not None else 1)]
        for thread in self._threads:
            thread.start()

    def answer(self, environ: dict) -> Answer:
        """The app's answer to the request, made by a worker with a store of its own.

        Raises:
            Busy: no answer within the bound (the message names the wait).
        """
        job = _Job(environ)
        self._jobs.put(job)
        if not job.done.wait(self.bound):
            with self._lock:
                queued = job.state == "waiting"
                if queued:
                    job.state = "dropped"
            if queued:
                raise Busy(f"the explorer is busy: this request waited {self.bound:g} s for a free store "
                           "(each was making another page); try again")
            raise Busy(f"this page took longer than {self.bound:g} s to make: ask for less "
                       "(a filter, fewer hops, one direction)")
        if job.error is not None:
            raise job.error
        assert job.answer is not None
        return job.answer

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            with self._lock:
                if job.state == "dropped":
                    continue
                job.state = "running"
            try:
                store, app = self._take()
                try:
                    job.answer = _collect(app, job.environ)
                finally:
                    self._give_back(store, app)
            except BaseException as e:  # the request's thread says it: a 500 page
                job.error = e
            job.done.set()

    def _take(self) -> Tuple[Store, Callable]:
        """An idle store, else a new one: at most one a thread, so never more than `size`."""
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            assert self._opener is not None  # one thread alone always finds the first store idle
            store = self._opener()
            with self._lock:
                self._opened.append(store)
            return store, self._make_app(store)

    def _give_back(self, store: Store, app: Callable) -> None:
        with self._lock:
            if not self._closed:
                self._idle.put((store, app))
                return
        if store in self._opened:  # closing meanwhile: a page that ran on past it
            store.close()

    def close(self) -> None:
        """Stops the threads and closes the stores opened here that no page holds (a page
        still being made closes its own when it ends)."""
        with self._lock:
            self._closed = True
            opened = list(self._opened)
        for _ in self._threads:
            self._jobs.put(None)
        while True:
            try:
                store, _ = self._idle.get_nowait()
            except queue.Empty:
                break
            if store in opened:
                store.close()


def _collect(app: Callable, environ: dict) -> Answer:
    """The WSGI app's whole answer, so that the request's thread sends it (or a 503)."""
    started: list = []

    def start_response(status, headers, exc_info=None):
        started[:] = [status, list(headers)]
        return lambda data: None  # the old write() interface: Bottle never uses it

    result = app(environ, start_response)
    try:
        body = b"".join(result)
    finally:
        if hasattr(result, "close"):
            result.close()
    return started[0], started[1], body
