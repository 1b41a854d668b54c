"""The `mlmd-exercise` command: the parser made from the commands, the store resolved once,
and the one place where outcomes and errors become exit codes.

Exit codes: 0 ok; 1 the check found problems (check, verify, stale) or the job itself
failed; 2 bad input or usage; 130 interrupted. Each command's options and body are
together in one module by theme: record (run, import), query (lineage, states,
graph, ls, show, diff), audit (check, verify, stale, abandon), explore (ui, report), archive (export,
prune, backup).
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import sys
from typing import Any, Dict, List, NoReturn, Optional, Sequence, TextIO, Tuple

from mlmd_exercise.version import __version__
from mlmd_exercise.cli import archive, audit, explore, query, record
from mlmd_exercise.cli.command import PROG, Command, Invocation, Outcome, store_help
from mlmd_exercise.errors import MlmdExerciseError
from mlmd_exercise.masking import mask
from mlmd_exercise.text import printable
from mlmd_exercise.store.choice import BACKENDS, ENV_BACKEND

__all__ = ["COMMANDS", "EXIT_OK", "EXIT_FAILED", "EXIT_BAD_INPUT", "EXIT_INTERRUPTED", "build_parser",
           "main"]

# In the order `mlmd-exercise --help` lists them.
COMMANDS: Tuple[Command, ...] = (
    record.run, query.lineage, query.states, query.graph, query.ls, query.show, query.metrics, query.diff,
    audit.stale, audit.abandon, record.import_runs, archive.export, archive.openlineage, archive.prune,
    archive.backup, audit.check,
    audit.verify, explore.ui, explore.report, audit.doctor,
)

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130
EXIT_CODES: Dict[Outcome, int] = {Outcome.OK: EXIT_OK, Outcome.CHECK_FAILED: EXIT_FAILED,
                                 Outcome.INTERRUPTED: EXIT_INTERRUPTED}
log = logging.getLogger(__name__)


class _MaskSecrets(logging.Filter):
    """Every line logged (with -v, tracebacks too) with its secrets masked (see `masking`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = mask(logging.Formatter().formatException(record.exc_info))
        return True


class _Line(logging.Formatter):
    """A logged line as the command's own: `mlmd-exercise: warning: MESSAGE`, as `warn` says
    it; with -v the logger's name after the level (`mlmd-exercise: debug: mlmd_exercise.x: ...`)."""

    def __init__(self, verbose: bool) -> None:
        super().__init__(f"{PROG}: %(level)s: " + ("%(name)s: " if verbose else "") + "%(message)s")

    def format(self, record: logging.LogRecord) -> str:
        record.level = record.levelname.lower()
        return super().format(record)


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line naming the bad value, and exits 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {mask(message)} (see '{self.prog} --help')\n")


def _add_globals(parser: argparse.ArgumentParser, folder_option: Optional[str] = None,
                 **kw: Any) -> None:
    """The options every command takes, before or after its name."""
    parser.add_argument("--db", metavar="STORE", help=store_help(folder_option), **kw)
    parser.add_argument("-v", "--verbose", action="store_true", **kw,
                        help="log diagnostics, and show tracebacks on errors")
    parser.add_argument("--upgrade-schema", action="store_true", **kw,
                        help="let MLMD upgrade a store made by an older MLMD (back it up first)")
    parser.add_argument("--backend", choices=BACKENDS, **kw,
                        help=f"how stores are opened: mlmd (Google's ml-metadata) or native (this "
                        f"package's own, on the same tables); default ${ENV_BACKEND}, else mlmd where "
                        f"it is installed, except for PostgreSQL stores, which native opens (see 'doctor')")


def build_parser() -> argparse.ArgumentParser:
    """The whole command line: the global options, then each command of COMMANDS."""
    parser = _Parser(
        prog=PROG,
        description="Record ML workflows in a Google ML Metadata (MLMD) store, "
        "answer lineage questions and draw them.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _add_globals(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for cmd in COMMANDS:
        p = sub.add_parser(cmd.name, help=cmd.help, description=cmd.description)
        # Given after the command, a global option wins; not given, the one before it stays.
        _add_globals(p, cmd.store_folder and f"--{cmd.store_folder}", default=argparse.SUPPRESS)
        if cmd.json:
            p.add_argument("--json", action="store_true", help="print JSON for scripts")
        cmd.options(p)
        p.set_defaults(command_spec=cmd)
    return parser


def _dash_values_attached(argv: Sequence[str]) -> List[str]:
    """`--sort -accuracy` as `--sort=-accuracy`: argparse takes a value that starts with
    a dash for an option (a long option, or one of ours, stays an option)."""
    options = {name for cmd in COMMANDS for name in cmd.dash_values}
    argv = list(argv)
    for i in range(len(argv) - 1, 0, -1):
        value = argv[i]
        if argv[i - 1] in options and value.startswith("-") and not value.startswith("--") \
                and value not in ("-h", "-v", "-o"):
            argv[i - 1:i + 1] = [f"{argv[i - 1]}={value}"]
    return argv


def _invocation(args: argparse.Namespace, cmd: Command) -> Invocation:
    """--db, else $MLMD_STORE, else metadata.db (in the command's folder): parsed here once.

    Raises:
        StoreError: the address is bad (an unknown scheme, a bad port, ...).
    """
    from mlmd_exercise.errors import StoreError
    from mlmd_exercise.store.address import default_location, parse_location

    if args.db is not None:
        address = args.db
    else:
        address = default_location(getattr(args, cmd.store_folder) if cmd.store_folder else None)
    named = os.environ.get(ENV_BACKEND)
    if args.backend is None and named and named not in BACKENDS:  # before any store is read
        raise StoreError(f"unknown backend '{named}' (from ${ENV_BACKEND}): use {' or '.join(BACKENDS)}")
    return Invocation(parse_location(address), upgrade=args.upgrade_schema, backend=args.backend)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Runs `mlmd-exercise ARGV` (default: the process's) and returns its exit code."""
    args = build_parser().parse_args(_dash_values_attached(sys.argv[1:] if argv is None else argv))
    root = logging.getLogger()
    had = list(root.handlers)  # a host's own (pytest's, a notebook's) keep their format
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING)
    for handler in root.handlers:
        if handler not in had:
            handler.setFormatter(_Line(args.verbose))
    for handler in root.handlers:
        if not any(isinstance(f, _MaskSecrets) for f in handler.filters):
            handler.addFilter(_MaskSecrets())
    cmd: Command = args.command_spec
    shown, sys.stdout = sys.stdout, _Printable(sys.stdout)
    try:
        return EXIT_CODES[cmd.run(args, _invocation(args, cmd))]
    except MlmdExerciseError as e:
        if args.verbose:
            log.exception("bad input")
        print(f"{PROG}: error: {printable(mask(str(e)))}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except BrokenPipeError:  # `mlmd-exercise ... | head`: the reader left, not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILED
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except OSError as e:  # a file the user named cannot be read or written
        if args.verbose:
            log.exception("bad input")
        if e.filename is None:
            return _failed(args, e)
        print(f"{PROG}: error: '{mask(str(e.filename))}': {mask(str(e.strerror or e))}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except Exception as e:  # the job itself failed: one line, the traceback on -v
        return _failed(args, e)
    finally:
        sys.stdout = shown


class _Printable(io.TextIOBase):
    """stdout with every character a terminal would act on escaped (`text.printable`): a
    name holding ESC, an OSC title or an RTL override prints as what it is. JSON stays valid
    JSON of the same strings."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        self._stream.write(printable(text))
        return len(text)

    def flush(self) -> None:
        if not self._stream.closed:  # closed before this one is collected (a test's captured stdout)
            self._stream.flush()

    def fileno(self) -> int:
        return self._stream.fileno()

    def isatty(self) -> bool:
        return self._stream.isatty()


def _failed(args: argparse.Namespace, e: BaseException) -> int:
    """One line for a failure of the job itself: its message, never an exception class name
    (that and the traceback are on -v)."""
    if args.verbose:
        log.exception("failed")
    first = printable(mask((str(e).strip().splitlines() or [""])[0]))  # one line; all of it with -v
    hint = "" if args.verbose else " (-v shows why)"
    print(f"{PROG}: error: {args.command} failed: {first or 'an unexpected error'}{hint}", file=sys.stderr)
    return EXIT_FAILED
