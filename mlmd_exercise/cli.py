"""The `mlmd-exercise` command: parse, make a library call, print or write files.

This is the only module that prints, and the only place where exceptions become
exit codes: 0 ok, 1 the job failed, 2 bad input or usage.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys
from pathlib import Path
from typing import Mapping, Optional, Sequence

from . import __version__
from . import output as out
from .errors import MlmdExerciseError

PROG = "mlmd-exercise"
BUNDLED_DATASETS = ("iris", "wine", "breast_cancer", "digits")  # as workflow's, without importing it
EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2
log = logging.getLogger(__name__)


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line naming the bad value."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _positive(what: str):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{what} must be a whole number, not '{text}'")
        if value <= 0 and what != "hops":
            raise argparse.ArgumentTypeError(f"{what} must be positive, not '{text}'")
        if value < 0:
            raise argparse.ArgumentTypeError(f"{what} must be 0 or more, not '{text}'")
        return value

    return parse


def _print_json(data) -> None:
    print(json.dumps(data, indent=2, sort_keys=True))


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


def _reader(args: argparse.Namespace):
    from .store import open_store

    return open_store(args.db)


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

    result = workflow.run_demo(store, workdir, experiment=args.experiment, dataset=args.dataset)
    print(f"recorded in {store} (experiment '{result.experiment}'):")
    rows = [(f"{a.properties.get('split', 'data')} split", *out.artifact_cells(a))
            for a in result.datasets]
    rows += [("model", *out.artifact_cells(result.model))]
    if result.metrics is not None:
        rows += [("metrics", *out.artifact_cells(result.metrics))]
    rows += [(run.execution.type.lower(), *out.execution_cells(run.execution)) for run in result.runs]
    print("\n".join(out.table(rows)))
    if result.metrics is not None:
        print("test metrics: " + ", ".join(
            f"{k} {v}" for k, v in sorted(result.metrics.properties.items())
            if k not in ("fingerprint", "version")))
    print(f"executions by state: {out.format_counts(result.counts)}")
    for run in result.runs:
        print("lineage of " + "\n".join(out.format_lineage(run)))
    _save_or_show_chart(result.counts, chart, args.show)
    return EXIT_OK


def _selection(args: argparse.Namespace):
    """The walk a `lineage` or `graph` command asks for, or None for none."""
    from .lineage import walk

    if args.artifact is None and args.walk_execution is None:
        return None
    if args.artifact is not None and args.walk_execution is not None:
        raise MlmdExerciseError("give --artifact or --execution, not both")
    store = _reader(args)
    graph = walk(store, artifact_id=args.artifact, execution_id=args.walk_execution,
                 direction=args.direction, hops=args.hops)
    start = ("artifact", args.artifact) if args.artifact is not None else (
        "execution", args.walk_execution)
    return store, graph, start


def cmd_lineage(args: argparse.Namespace) -> int:
    from .lineage import execution_lineage

    selected = _selection(args)
    if selected is None:
        if args.execution_id is None:
            raise MlmdExerciseError("give an EXECUTION_ID, --artifact ID or --execution ID")
        one = execution_lineage(_reader(args), args.execution_id)
        if args.json:
            _print_json(out.lineage_json(one))
        else:
            print("\n".join(out.format_lineage(one)))
        return EXIT_OK
    if args.execution_id is not None:
        raise MlmdExerciseError("give an EXECUTION_ID or --artifact/--execution, not both")
    _, graph, (kind, node_id) = selected
    if args.json:
        _print_json(out.graph_json(graph, start={"kind": kind, "id": node_id},
                                   direction=args.direction, hops=args.hops))
    else:
        reach = "all hops" if args.hops is None else f"{args.hops} hops"
        print("\n".join(out.format_graph(graph, f"{args.direction} lineage of {kind} {node_id}, {reach}")))
    return EXIT_OK


def cmd_states(args: argparse.Namespace) -> int:
    from .lineage import count_by_state

    if args.chart:
        from . import render

        render.output_format(args.chart, render.CHART_FORMATS)
    counts = count_by_state(_reader(args), args.experiment)
    if args.json:
        _print_json(counts)
    else:
        rows = [(state, str(n)) for state, n in counts.items()]
        print("\n".join(out.table(rows, indent="")) if rows else "no executions")
    if args.chart:
        _save_or_show_chart(counts, Path(args.chart), show=False)
    return EXIT_OK


def cmd_graph(args: argparse.Namespace) -> int:
    from . import render
    from .lineage import lineage_graph, with_experiments

    render.check_graph_output(args.output)  # before the store is read
    selected = _selection(args)
    if selected is None:
        store = _reader(args)
        graph = lineage_graph(store)
    else:
        store, graph, _ = selected
    if args.clusters:
        graph = with_experiments(store, graph)
    path = render.render_lineage(graph, args.output)
    print(
        f"lineage graph of {len(graph.artifacts)} artifacts and "
        f"{len(graph.executions)} executions: {path}"
    )
    return EXIT_OK


def cmd_ls(args: argparse.Namespace) -> int:
    from . import browse

    since = browse.parse_since(args.since) if args.since else None
    if args.state and args.what != "executions":
        raise MlmdExerciseError(f"--state filters executions, not {args.what}")
    if (args.type or args.experiment) and args.what == "experiments":
        raise MlmdExerciseError("--type and --experiment filter artifacts and executions, not experiments")
    store = _reader(args)
    if args.what == "artifacts":
        found = browse.list_artifacts(store, type=args.type, experiment=args.experiment,
                                      since_ms=since, limit=args.limit)
    elif args.what == "executions":
        found = browse.list_executions(store, type=args.type, experiment=args.experiment,
                                       state=args.state, since_ms=since, limit=args.limit)
    else:
        found = browse.list_experiments(store, since_ms=since, limit=args.limit)
    if args.json:
        _print_json([out.record_json(r) for r in found])
    else:
        print("\n".join(out.format_listing(found) or [f"no {args.what}"]))
    return EXIT_OK


def cmd_show(args: argparse.Namespace) -> int:
    from . import browse

    show = browse.show_artifact if args.kind == "artifact" else browse.show_execution
    detail = show(_reader(args), args.id)
    if args.json:
        _print_json({"kind": args.kind, "node": out.record_json(detail.node),
                     "events": [dataclasses.asdict(e) for e in detail.events],
                     "experiments": list(detail.experiments)})
    else:
        print("\n".join(out.format_detail(detail)))
    return EXIT_OK


def cmd_verify(args: argparse.Namespace) -> int:
    from .verify import verify

    report = verify(_reader(args))
    if args.json:
        _print_json({"checked": report.checked, "problems": [
            {"problem": p.kind, "artifact": out.record_json(p.artifact)} for p in report.problems]})
    else:
        for p in report.problems:
            print(f"{p.kind:8}  artifact {p.artifact.id} ({p.artifact.type} v{p.artifact.version})  "
                  f"{p.artifact.uri}")
        print(f"checked {report.checked} artifacts: "
              + (f"{len(report.problems)} missing or modified" if report.problems else "all match"))
    return EXIT_OK if report.ok else EXIT_FAILED


# -- parser -----------------------------------------------------------------------


def _add_db(parser: argparse.ArgumentParser, default_help: str = "metadata.db", **kw) -> None:
    parser.add_argument(
        "--db", metavar="PATH", help=f"the MLMD store, an SQLite file (default: {default_help})",
        **kw,
    )


def _add_json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON for scripts")


def _add_walk(parser: argparse.ArgumentParser) -> None:
    from .lineage import DIRECTIONS

    parser.add_argument("--artifact", type=_positive("artifact id"), metavar="ID",
                        help="start from this artifact")
    parser.add_argument("--execution", dest="walk_execution", type=_positive("execution id"),
                        metavar="ID", help="start from this execution")
    parser.add_argument("--direction", choices=DIRECTIONS, default="both",
                        help="upstream, downstream or both (default: both)")
    parser.add_argument("--hops", type=_positive("hops"), metavar="N",
                        help="cross at most N events (default: no limit)")


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
        "and save a chart of executions by state. Unchanged files are not recorded twice.",
    )
    p.add_argument("--workdir", default=".", metavar="DIR",
                   help="where data/, models/ and the store go (default: current directory)")
    _add_db(p, "metadata.db in --workdir", default=argparse.SUPPRESS)
    p.add_argument("--experiment", default="default", metavar="NAME",
                   help="the experiment the run belongs to (default: default)")
    p.add_argument("--dataset", choices=BUNDLED_DATASETS, metavar="NAME",
                   help="train on one of scikit-learn's bundled datasets ("
                   + ", ".join(BUNDLED_DATASETS) + "), split into train and test, and "
                   "evaluate the model (default: the exercise's 10-row dataset)")
    p.add_argument("--chart", metavar="PATH",
                   help="where to save the chart: .png, .svg or .pdf "
                   "(default: execution_states.png in --workdir)")
    p.add_argument("--show", action="store_true",
                   help="open the chart in a window instead of saving it (needs a display)")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser(
        "lineage", help="what an execution read and wrote, or lineage over many hops",
        description="With EXECUTION_ID: the artifacts that execution read (INPUT) and wrote "
        "(OUTPUT). With --artifact or --execution: the lineage over many hops, upstream (what "
        "produced it, all the way back), downstream (what came from it) or both. A hop "
        "crosses one event: from a model, 1 hop upstream is the run that made it, 2 hops "
        "that run's inputs.",
    )
    p.add_argument("execution_id", type=_positive("execution id"), metavar="EXECUTION_ID",
                   nargs="?", help="one execution's inputs and outputs")
    _add_walk(p)
    _add_json(p)
    _add_db(p, default=argparse.SUPPRESS)
    p.set_defaults(func=cmd_lineage)

    p = sub.add_parser(
        "states", help="counts of executions by state",
        description="Count executions by MLMD state (RUNNING, COMPLETE, FAILED, ...).",
    )
    _add_db(p, default=argparse.SUPPRESS)
    p.add_argument("--experiment", metavar="NAME", help="count only this experiment's executions")
    p.add_argument("--chart", metavar="PATH", help="also save a bar chart: .png, .svg or .pdf")
    _add_json(p)
    p.set_defaults(func=cmd_states)

    p = sub.add_parser(
        "graph", help="draw the lineage graph with graphviz",
        description="Draw artifacts and executions joined by their INPUT and OUTPUT events: the "
        "whole store, or the lineage of one node with --artifact or --execution. The format "
        "follows the output's extension: .svg, .png, .pdf or .dot.",
    )
    _add_walk(p)
    p.add_argument("--clusters", action="store_true", help="draw each experiment as a box")
    p.add_argument("--output", "-o", default="lineage.svg", metavar="PATH",
                   help="where to write the graph (default: lineage.svg)")
    _add_db(p, default=argparse.SUPPRESS)
    p.set_defaults(func=cmd_graph)

    p = sub.add_parser(
        "ls", help="list artifacts, executions or experiments, newest first",
        description="List artifacts, executions or experiments, newest first.",
    )
    p.add_argument("what", choices=["artifacts", "executions", "experiments"])
    p.add_argument("--type", metavar="NAME", help="only this type (DataSet, Trainer, ...)")
    p.add_argument("--experiment", metavar="NAME", help="only this experiment's")
    p.add_argument("--state", metavar="STATE", help="executions only in this state (COMPLETE, ...)")
    p.add_argument("--since", metavar="WHEN",
                   help="created at or after WHEN: 2026-11-26, 2026-11-26T14:00, or an age: 90m, 2h, 7d")
    p.add_argument("--limit", type=_positive("limit"), metavar="N", help="at most N")
    _add_json(p)
    _add_db(p, default=argparse.SUPPRESS)
    p.set_defaults(func=cmd_ls)

    p = sub.add_parser(
        "show", help="every property, event and experiment of one node",
        description="Show one artifact or execution: its properties, the events that join it "
        "to others and the experiments it belongs to.",
    )
    p.add_argument("kind", choices=["artifact", "execution"])
    p.add_argument("id", type=_positive("id"), metavar="ID")
    _add_json(p)
    _add_db(p, default=argparse.SUPPRESS)
    p.set_defaults(func=cmd_show)

    p = sub.add_parser(
        "verify", help="check recorded files against their content fingerprints",
        description="Check the newest version of every recorded file or directory: report "
        "those that are gone or whose content no longer matches its sha256 fingerprint. "
        "Exits 1 if any.",
    )
    _add_json(p)
    _add_db(p, default=argparse.SUPPRESS)
    p.set_defaults(func=cmd_verify)
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
