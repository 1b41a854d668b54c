"""The `mlmd-exercise` command: its parser, and the one place errors become exit codes.

Exit codes: 0 ok, 1 the job failed, 2 bad input or usage. The commands
themselves are in `commands`; together they are the only modules that print.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import List, Optional, Sequence

from mlmd_exercise import __version__
from mlmd_exercise.cli.commands import (
    EXIT_FAILED,
    PROG,
    cmd_abandon,
    cmd_check,
    cmd_diff,
    cmd_graph,
    cmd_import,
    cmd_report,
    cmd_lineage,
    cmd_ls,
    cmd_run,
    cmd_show,
    cmd_stale,
    cmd_states,
    cmd_ui,
    cmd_verify,
)
from mlmd_exercise.errors import MlmdExerciseError

BUNDLED_DATASETS = ("iris", "wine", "breast_cancer", "digits")  # as workflow's, without importing it
EXIT_BAD_INPUT = 2
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


def _port(text: str) -> int:
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"port must be a whole number from 0 to 65535, not '{text}'")
    return int(text)


# -- parser -----------------------------------------------------------------------


def _add_db(parser: argparse.ArgumentParser, default_help: str = "$MLMD_STORE, else metadata.db",
            **kw) -> None:
    parser.add_argument(
        "--db", metavar="STORE", **kw,
        help="the store: a file path, sqlite:///path, postgresql://user:password@host:port/db "
        "or mysql://user:password@host:port/db "
        f"(default: {default_help})",
    )


def _add_json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON for scripts")


def _add_walk(parser: argparse.ArgumentParser) -> None:
    from mlmd_exercise.records import DIRECTIONS

    parser.add_argument("--artifact", type=_positive("artifact id"), metavar="ID",
                        help="start from this artifact")
    parser.add_argument("--execution", dest="walk_execution", type=_positive("execution id"),
                        metavar="ID", help="start from this execution")
    parser.add_argument("--direction", choices=DIRECTIONS, default="both",
                        help="upstream, downstream or both (default: both)")
    parser.add_argument("--hops", type=_positive("hops"), metavar="N",
                        help="cross at most N events (default: no limit)")


def _add_globals(parser: argparse.ArgumentParser, **kw) -> None:
    """The options every command takes, before or after its name."""
    parser.add_argument("-v", "--verbose", action="store_true", **kw,
                        help="log diagnostics, and show tracebacks on errors")
    parser.add_argument("--upgrade-schema", action="store_true", **kw,
                        help="let MLMD upgrade a store made by an older MLMD (back it up first)")


def _add_context_type(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--context-type", metavar="TYPE",
                        help="the type of the --experiment context, where its name is ambiguous "
                        "(pipeline_run, system.PipelineRun, ...)")


def _command(sub, name: str, func, *, json: bool = False, db_help: Optional[str] = None,
             **texts: str) -> argparse.ArgumentParser:
    """A subcommand with its help texts, the global options (default: as given before the
    command), and --json if it has one."""
    parser = sub.add_parser(name, **texts)
    _add_db(parser, db_help or "$MLMD_STORE, else metadata.db", default=argparse.SUPPRESS)
    _add_globals(parser, default=argparse.SUPPRESS)
    if json:
        _add_json(parser)
    parser.set_defaults(func=func)
    return parser


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Record ML workflows in a Google ML Metadata (MLMD) store, "
        "answer lineage questions and draw them.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _add_db(parser)
    _add_globals(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    p = _command(sub, "run", cmd_run, db_help="$MLMD_STORE, else metadata.db in --workdir",
                 help="run the demo job: dataset -> LogisticRegression -> model, recorded",
                 description="Make the demo dataset (data/train_dataset.csv), train a scikit-learn "
                 "LogisticRegression on it (models/trained_model.joblib), record the dataset, the "
                 "Trainer execution, the model and their events in the store, print the lineage "
                 "and save a chart of executions by state. An unchanged dataset is not recorded "
                 "twice; each run's model is its own.")
    p.add_argument("--workdir", default=".", metavar="DIR",
                   help="where data/, models/ and the store go, created if missing "
                   "(default: current directory)")
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

    p = _command(sub, "lineage", cmd_lineage, json=True,
                 help="what an execution read and wrote, or lineage over many hops",
                 description="With EXECUTION_ID: the artifacts that execution read (INPUT) and wrote "
                 "(OUTPUT). With --artifact or --execution: the lineage over many hops, upstream (what "
                 "produced it, all the way back), downstream (what came from it) or both. A hop "
                 "crosses one event: from a model, 1 hop upstream is the run that made it, 2 hops "
                 "that run's inputs.")
    p.add_argument("execution_id", type=_positive("execution id"), metavar="EXECUTION_ID",
                   nargs="?", help="one execution's inputs and outputs")
    _add_walk(p)

    p = _command(sub, "states", cmd_states, json=True,
                 help="counts of executions by state",
                 description="Count executions by MLMD state (RUNNING, COMPLETE, FAILED, ...).")
    p.add_argument("--experiment", metavar="NAME",
                   help="count only this experiment's executions (or any context's: a TFX pipeline run, ...)")
    _add_context_type(p)
    p.add_argument("--chart", metavar="PATH", help="also save a bar chart: .png, .svg or .pdf")

    p = _command(sub, "graph", cmd_graph,
                 help="draw the lineage graph with graphviz",
                 description="Draw artifacts and executions joined by their INPUT and OUTPUT events: the "
                 "whole store, or the lineage of one node with --artifact or --execution. The format "
                 "follows the output's extension: .svg, .png, .pdf or .dot.")
    _add_walk(p)
    p.add_argument("--clusters", nargs="?", const="", default=None, metavar="TYPE",
                   help="draw each experiment as a box; or each context of TYPE (pipeline_run, "
                   "system.PipelineRun, ...); without TYPE on a store with no experiments, the "
                   "context type that groups best")
    p.add_argument("--expand", action="store_true",
                   help="draw every execution: without it, runs of one type with the same inputs "
                   "and nothing downstream are drawn as one node (Trainer x2000)")
    p.add_argument("--output", "-o", default="lineage.svg", metavar="PATH",
                   help="where to write the graph (default: lineage.svg)")

    p = _command(sub, "ls", cmd_ls, json=True,
                 help="list artifacts, executions or experiments (all contexts), newest first",
                 description="List artifacts, executions or experiments, newest first. Experiments "
                 "are every context, with its type: ours, TFX's pipelines and runs, Kubeflow's; "
                 "'contexts' is the same list.")
    p.add_argument("what", choices=["artifacts", "executions", "experiments", "contexts"])
    p.add_argument("--type", metavar="NAME", help="only this type (DataSet, Trainer, pipeline_run, ...)")
    p.add_argument("--experiment", metavar="NAME",
                   help="only this experiment's (or any context's: a TFX pipeline run, ...)")
    _add_context_type(p)
    p.add_argument("--state", metavar="STATE", help="executions only in this state (COMPLETE, ...)")
    p.add_argument("--since", metavar="WHEN",
                   help="created at or after WHEN: 2026-11-26, 2026-11-26T14:00, or an age: 90m, 2h, 7d")
    p.add_argument("--limit", type=_positive("limit"), metavar="N", help="at most N")
    p.add_argument("--sort", metavar="KEY",
                   help="order by id, created or (executions) a param or metric; -KEY for "
                   "descending: --sort -accuracy (default: newest first)")
    p.add_argument("--columns", metavar="A,B",
                   help="executions: the params, metrics or env.* keys to show as columns "
                   "(default: the params and metrics the runs have, at most 8)")

    p = _command(sub, "show", cmd_show, json=True,
                 help="every property, event and experiment of one node",
                 description="Show one artifact or execution: its properties, the events that join it "
                 "to others and the experiments it belongs to.")
    p.add_argument("kind", choices=["artifact", "execution"])
    p.add_argument("id", type=_positive("id"), metavar="ID")

    p = _command(sub, "diff", cmd_diff, json=True,
                 help="what differs between two runs, or two artifacts and all upstream of them",
                 description="Compare two executions side by side: params, metrics, outputs, the "
                 "inputs all the way back (content fingerprints and URIs), the params of the runs "
                 "upstream, the code (git commit, command) and the environment (Python, packages, "
                 "host). With --artifact, compare two artifacts (two models, say), the runs that "
                 "made them and everything upstream. Says so when inputs and params are the same "
                 "but the outputs differ.")
    p.add_argument("a", type=_positive("id"), metavar="A", help="the first execution (or artifact)")
    p.add_argument("b", type=_positive("id"), metavar="B", help="the second execution (or artifact)")
    p.add_argument("--artifact", action="store_true",
                   help="A and B are artifacts, each walked upstream")

    p = _command(sub, "stale", cmd_stale, json=True,
                 help="artifacts made from files that changed or vanished: what to make again",
                 description="Find the recorded files that are gone or whose content no longer "
                 "matches its fingerprint (as verify does) and list every artifact downstream of "
                 "them (models, metrics) and the runs that made those. Exits 1 if any.")

    p = _command(sub, "abandon", cmd_abandon,
                 help="mark RUNNING executions whose process is gone as FAILED",
                 description="A run whose process was killed stays RUNNING for ever. Mark as FAILED "
                 "(or --state CANCELED) the RUNNING executions whose process, on this host, is gone, "
                 "and with --older-than those started longer ago (runs on other hosts). Each one is "
                 "listed; --dry-run changes nothing.")
    p.add_argument("--older-than", metavar="AGE", help="also runs older than AGE: 90m, 2h, 7d")
    p.add_argument("--state", choices=["FAILED", "CANCELED"], default="FAILED",
                   help="the state to give them (default: FAILED)")
    p.add_argument("--dry-run", action="store_true", help="list them, change nothing")

    p = _command(sub, "import", cmd_import,
                 help="record many finished runs from JSON lines (imports, backfills)",
                 description="Record finished runs, one JSON object a line (see the README), a batch "
                 "per transaction. Artifacts with the same \"ref\" are one artifact; versions continue "
                 "those in the store. Shows progress on a terminal.")
    p.add_argument("file", metavar="FILE", nargs="?", help="the runs, as JSON lines; - for standard input")
    p.add_argument("--from-exercise", metavar="OLD_DB",
                   help="instead, import the exercise's own SQLAlchemy database (its artifacts, "
                   "executions and events tables); importing it again records nothing twice")
    p.add_argument("--experiment", default="default", metavar="NAME",
                   help="the experiment of runs that name none (default: default)")
    p.add_argument("--batch-size", type=_positive("batch size"), default=1000, metavar="N",
                   help="runs per transaction (default: 1000)")

    p = _command(sub, "check", cmd_check, json=True,
                 help="check the store's consistency (after a crash, say)",
                 description="Check that every artifact is joined by an event to the run that made or "
                 "used it, that no artifact is the output of more than one run, and that no type "
                 "name is registered twice. Exits 1 if anything is wrong.")

    p = _command(sub, "verify", cmd_verify, json=True,
                 help="check recorded files against their content fingerprints",
                 description="Check the newest version of every recorded file or directory: report "
                 "those that are gone or whose content no longer matches its sha256 fingerprint. "
                 "Exits 1 if any.")

    p = _command(sub, "ui", cmd_ui,
                 help="explore the store in the browser: runs, nodes, lineage, compare, states",
                 description="Serve a read-only lineage explorer for the store on this machine and open "
                 "it in the browser. The printed address holds a token that the pages need; requests "
                 "without it are refused.")
    p.add_argument("--port", type=_port, metavar="N",
                   help="the port (default: 8765, else the next free one; 0 for any)")
    p.add_argument("--host", default="127.0.0.1", metavar="ADDR",
                   help="the address to listen on (default: 127.0.0.1, this machine only)")
    p.add_argument("--no-browser", action="store_true", help="only print the address")

    p = _command(sub, "report", cmd_report,
                 help="write a self-contained HTML (or Markdown) report: lineage, runs, states",
                 description="Write one file with the lineage (of a node, or of the newest runs), the "
                 "newest runs with their params and metrics, and the executions by state. HTML has its "
                 "graph and chart inline and refers to nothing outside it; Markdown (--format md, or a "
                 ".md file) draws the lineage as a Mermaid flowchart.")
    p.add_argument("--output", "-o", required=True, metavar="PATH", help="the file to write (.html or .md)")
    _add_walk(p)
    p.add_argument("--experiment", metavar="NAME", help="only this experiment's runs and states")
    p.add_argument("--format", choices=("html", "md"), help="html or md (default: from the file name)")
    return parser


def _sort_values_attached(argv: Sequence[str]) -> List[str]:
    """`--sort -accuracy` as `--sort=-accuracy`: argparse takes a value that starts with
    a dash for an option (a long option, or one of ours, stays an option)."""
    argv = list(argv)
    for i in range(len(argv) - 1, 0, -1):
        value = argv[i]
        if argv[i - 1] == "--sort" and value.startswith("-") and not value.startswith("--") \
                and value not in ("-h", "-v", "-o"):
            argv[i - 1:i + 1] = [f"--sort={value}"]
    return argv


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(_sort_values_attached(sys.argv[1:] if argv is None else argv))
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format=f"{PROG}: %(name)s: %(message)s",
    )
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
    except OSError as e:  # a file the user named cannot be read or written
        if args.verbose:
            log.exception("bad input")
        if e.filename is None:
            return _failed(args, e)
        print(f"{PROG}: error: '{e.filename}': {e.strerror or e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except Exception as e:  # the job itself failed: one line, the traceback on -v
        return _failed(args, e)


def _failed(args: argparse.Namespace, e: BaseException) -> int:
    """One line for a failure of the job itself: its message, never an exception class name
    (that and the traceback are on -v)."""
    if args.verbose:
        log.exception("failed")
    first = (str(e).strip().splitlines() or [""])[0]  # one line; all of it with -v
    hint = "" if args.verbose else " (-v shows why)"
    print(f"{PROG}: error: {args.command} failed: {first or 'an unexpected error'}{hint}", file=sys.stderr)
    return EXIT_FAILED
