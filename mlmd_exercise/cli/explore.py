"""The commands that show a store to people: `ui` (the explorer in the browser) and `report`
(one HTML or Markdown file). Both are in mlmd_exercise.web; the web framework loads only in `ui`."""

from __future__ import annotations

from argparse import ArgumentParser, ArgumentTypeError, Namespace
from typing import Any

from mlmd_exercise import text
from mlmd_exercise.cli.command import (
    Invocation, Outcome, add_walk, command, has_display, port, walk_start, warn,
)
from mlmd_exercise.web.workers import BOUND

__all__ = ["UI_PORTS", "ui", "report"]

UI_PORTS = range(8765, 8775)  # `ui` takes the first free one unless --port names one


def _ui_options(parser: ArgumentParser) -> None:
    parser.add_argument("--port", type=port, metavar="N",
                        help=f"the port (default: {UI_PORTS[0]}, else the next free one; 0 for any)")
    parser.add_argument("--host", default="127.0.0.1", metavar="ADDR",
                        help="the address to listen on (default: %(default)s, this machine only)")
    parser.add_argument("--no-browser", action="store_true", help="only print the address")
    parser.add_argument("--timeout", type=_seconds, default=BOUND, metavar="S",
                        help="seconds a request may wait for its page before a 503 (default: %(default)g)")


def _seconds(text: str) -> float:
    """An argparse type: a number of seconds above 0."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < float("inf"):
        raise ArgumentTypeError(f"timeout must be a number of seconds above 0, not '{text}'")
    return value


@command("ui", _ui_options,
         help="explore the store in the browser: runs, nodes, lineage, compare, states",
         description="Serve a read-only lineage explorer for the store on this machine and open "
         "it in the browser. The printed address holds a token that the pages need; requests "
         "without it are refused.")
def ui(args: Namespace, call: Invocation) -> Outcome:
    import signal

    from mlmd_exercise.web.server import serve

    if args.host not in ("127.0.0.1", "localhost", "::1"):
        warn(f"warning: serving on '{args.host}': other machines that reach this address "
             "can read the store (with the token)")
    store = call.open()  # SQLite: read-only

    def ready(url: str, port: int) -> None:
        print(f"serving {store} (read-only) at {url}", flush=True)
        print("press Ctrl-C to stop", flush=True)
        if not args.no_browser and has_display():
            import webbrowser

            webbrowser.open(url)

    def interrupt(signum: int, frame: Any) -> None:  # a stop by `kill` ends as Ctrl-C does
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    try:
        # Pages made at the same time each get a store of their own, opened as this one was.
        serve(store, args.host, [args.port] if args.port is not None else UI_PORTS, ready,
              opener=call.open, bound=args.timeout)
    except KeyboardInterrupt:
        # One stop is enough: a second Ctrl-C or kill while it shuts down does not cut the
        # shutdown short into "interrupted" (seen once on a loaded machine).
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        print("stopped")
    finally:
        store.close()
    return Outcome.OK


def _report_options(parser: ArgumentParser) -> None:
    parser.add_argument("--output", "-o", required=True, metavar="PATH",
                        help="the file to write (.html or .md)")
    add_walk(parser)
    parser.add_argument("--experiment", metavar="NAME", help="only this experiment's runs and states")
    parser.add_argument("--format", choices=("html", "md"),
                        help="html or md (default: from the file name)")


@command("report", _report_options,
         help="write a self-contained HTML (or Markdown) report: lineage, runs, states",
         description="Write one file with the lineage (of a node, or of the newest runs), the "
         "newest runs with their params and metrics, and the executions by state. HTML has its "
         "graph and chart inline and refers to nothing outside it; Markdown (--format md, or a "
         ".md file) draws the lineage as a Mermaid flowchart.")
def report(args: Namespace, call: Invocation) -> Outcome:
    from mlmd_exercise.web.report import gather, report_format, write_report

    walk_start(args)  # only to refuse --artifact with --execution, before anything is read
    fmt = report_format(args.output, args.format)  # before the store is read
    data = gather(call.open(), artifact=args.artifact, execution=args.walk_execution,
                  experiment=args.experiment, direction=args.direction, hops=args.hops)
    path = write_report(data, args.output, fmt)
    print(f"report of {text.count(len(data.runs.rows), 'run')} and a lineage of "
          f"{text.count(len(data.graph.artifacts), 'artifact')} and "
          f"{text.count(len(data.graph.executions), 'execution')}: {path}")
    return Outcome.OK
