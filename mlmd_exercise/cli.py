"""The `mlmd-exercise` command: parse, make a library call, print or write files.

This is the only module that prints, and the only place where exceptions become
exit codes: 0 ok, 1 the job failed, 2 bad input or usage.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Iterable, List, Mapping, Optional, Sequence, Tuple

from . import __version__
from .errors import MlmdExerciseError
from .records import ArtifactRecord, ExecutionLineage

PROG = "mlmd-exercise"
EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2
log = logging.getLogger(__name__)


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line naming the bad value."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _execution_id(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"execution id must be a whole number, not '{text}'")
    if value <= 0:
        raise argparse.ArgumentTypeError(f"execution id must be positive, not '{text}'")
    return value


# -- output formatting -----------------------------------------------------------


def _table(rows: Iterable[Sequence[str]], indent: str = "  ") -> List[str]:
    rows = [list(r) for r in rows]
    if not rows:
        return []
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    return [
        indent + "  ".join([c.ljust(w) for c, w in zip(r, widths)] + [r[-1]]).rstrip()
        for r in rows
    ]


def _artifact_cells(artifact: ArtifactRecord) -> List[str]:
    version = f" v{artifact.version}" if artifact.version is not None else ""
    return [f"artifact {artifact.id}", artifact.type + version, artifact.uri]


def format_lineage(one: ExecutionLineage) -> List[str]:
    """The lines that show one execution's inputs and outputs."""
    e = one.execution
    lines = [f"execution {e.id} ({e.type}, {e.state})"]
    rows: List[Tuple[str, ...]] = [
        (kind, role or "-", *_artifact_cells(a))
        for kind, side in (("INPUT", one.inputs), ("OUTPUT", one.outputs))
        for role, a in side
    ]
    lines += _table(rows) or ["  no inputs or outputs recorded"]
    return lines


def format_counts(counts: Mapping[str, int]) -> str:
    if not counts:
        return "no executions"
    return ", ".join(f"{state} {n}" for state, n in counts.items())


def _has_display() -> bool:
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _save_or_show_chart(counts: Mapping[str, int], path: Path, show: bool) -> None:
    from . import render

    if show and _has_display():
        render.show_states_chart(counts)
        return
    if show:
        print(f"{PROG}: no display ($DISPLAY is not set); saving the chart instead", file=sys.stderr)
    print(f"chart of executions by state: {render.render_states_chart(counts, path)}")


# -- commands ---------------------------------------------------------------------


def cmd_run(args: argparse.Namespace) -> int:
    from . import render, workflow
    from .store import DEFAULT_STORE, open_store

    workdir = Path(args.workdir)
    if not workdir.is_dir():
        raise MlmdExerciseError(f"working directory '{args.workdir}' does not exist")
    chart = Path(args.chart) if args.chart else workdir / "execution_states.png"
    render.output_format(chart, render.CHART_FORMATS)  # before any work is done
    store = open_store(args.db or workdir / DEFAULT_STORE, create=True)

    result = workflow.run_demo(store, workdir, experiment=args.experiment)
    print(f"recorded in {store} (experiment '{result.experiment}'):")
    rows = [
        ("dataset", *_artifact_cells(result.dataset)),
        ("execution", f"execution {result.execution.id}", result.execution.type,
         result.execution.state),
        ("model", *_artifact_cells(result.model)),
    ]
    print("\n".join(_table(rows)))
    print(f"executions by state: {format_counts(result.counts)}")
    print("lineage of " + "\n".join(format_lineage(result.lineage)))
    _save_or_show_chart(result.counts, chart, args.show)
    return EXIT_OK


def cmd_lineage(args: argparse.Namespace) -> int:
    from .lineage import execution_lineage
    from .store import open_store

    print("\n".join(format_lineage(execution_lineage(open_store(args.db), args.execution_id))))
    return EXIT_OK


def cmd_states(args: argparse.Namespace) -> int:
    from .lineage import count_by_state
    from .store import open_store

    if args.chart:
        from . import render

        render.output_format(args.chart, render.CHART_FORMATS)
    counts = count_by_state(open_store(args.db))
    rows = [(state, str(n)) for state, n in counts.items()]
    print("\n".join(_table(rows, indent="")) if rows else "no executions")
    if args.chart:
        _save_or_show_chart(counts, Path(args.chart), show=False)
    return EXIT_OK


def cmd_graph(args: argparse.Namespace) -> int:
    from . import render
    from .lineage import lineage_graph
    from .store import open_store

    render.check_graph_output(args.output)  # before the store is read
    graph = lineage_graph(open_store(args.db), args.execution)
    path = render.render_lineage(graph, args.output)
    print(
        f"lineage graph of {len(graph.artifacts)} artifacts and "
        f"{len(graph.executions)} executions: {path}"
    )
    return EXIT_OK


# -- parser -----------------------------------------------------------------------


def _add_db(parser: argparse.ArgumentParser, default_help: str = "metadata.db", **kw) -> None:
    parser.add_argument(
        "--db", metavar="PATH", help=f"the MLMD store, an SQLite file (default: {default_help})",
        **kw,
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Record ML workflows in a Google ML Metadata (MLMD) store, "
        "answer lineage questions and draw them.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="log diagnostics, and show tracebacks on errors")
    _add_db(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    p = sub.add_parser(
        "run", help="run the demo job: dataset -> LogisticRegression -> model, recorded",
        description="Make the demo dataset (data/train_dataset.csv), train a scikit-learn "
        "LogisticRegression on it (models/trained_model.joblib), record the dataset, the "
        "Trainer execution, the model and their events in the store, print the lineage "
        "and save a chart of executions by state.",
    )
    p.add_argument("--workdir", default=".", metavar="DIR",
                   help="where data/, models/ and the store go (default: current directory)")
    _add_db(p, "metadata.db in --workdir", default=argparse.SUPPRESS)
    p.add_argument("--experiment", default="default", metavar="NAME",
                   help="the experiment the run belongs to (default: default)")
    p.add_argument("--chart", metavar="PATH",
                   help="where to save the chart: .png, .svg or .pdf "
                   "(default: execution_states.png in --workdir)")
    p.add_argument("--show", action="store_true",
                   help="open the chart in a window instead of saving it (needs a display)")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser(
        "lineage", help="inputs and outputs of one execution",
        description="Show the artifacts one execution read (INPUT) and wrote (OUTPUT).",
    )
    p.add_argument("execution_id", type=_execution_id, metavar="EXECUTION_ID",
                   help="the execution's id, as `run` prints it")
    _add_db(p, default=argparse.SUPPRESS)
    p.set_defaults(func=cmd_lineage)

    p = sub.add_parser(
        "states", help="counts of executions by state",
        description="Count the store's executions by MLMD state (RUNNING, COMPLETE, FAILED, ...).",
    )
    _add_db(p, default=argparse.SUPPRESS)
    p.add_argument("--chart", metavar="PATH", help="also save a bar chart: .png, .svg or .pdf")
    p.set_defaults(func=cmd_states)

    p = sub.add_parser(
        "graph", help="draw the lineage graph with graphviz",
        description="Draw artifacts and executions joined by their INPUT and OUTPUT events. "
        "The format follows the output's extension: .svg, .png, .pdf or .dot.",
    )
    p.add_argument("--execution", type=_execution_id, metavar="ID",
                   help="only this execution and its inputs and outputs (default: the whole store)")
    p.add_argument("--output", "-o", default="lineage.svg", metavar="PATH",
                   help="where to write the graph (default: lineage.svg)")
    _add_db(p, default=argparse.SUPPRESS)
    p.set_defaults(func=cmd_graph)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format=f"{PROG}: %(name)s: %(message)s",
    )
    if args.db is None and args.command != "run":  # `run` puts it in --workdir
        from .store import DEFAULT_STORE

        args.db = DEFAULT_STORE
    try:
        return args.func(args)
    except MlmdExerciseError as e:
        if args.verbose:
            log.exception("bad input")
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except BrokenPipeError:  # `mlmd-exercise ... | head`: the reader left, not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILED
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # the job itself failed: one line, the traceback on -v
        if args.verbose:
            log.exception("failed")
        print(f"{PROG}: error: {args.command} failed: {type(e).__name__}: {e}", file=sys.stderr)
        return EXIT_FAILED
