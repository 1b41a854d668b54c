"""What a command is: its options and its body in one place, and what every command is given.

A command module (record, query, audit, explore) declares each command as a function
that adds its options to a parser, and beside it the function that runs it, joined
by `@command(...)`:

    def _show_options(parser: ArgumentParser) -> None:
        parser.add_argument("id", type=positive("id"), metavar="ID")

    @command("show", _show_options, json=True, help="...", description="...")
    def show(args: Namespace, call: Invocation) -> Outcome:
        ...
        return Outcome.OK

A body returns an `Outcome` or raises; `main` alone turns either into an exit code.
It gets the store already resolved (`Invocation.location`: --db, else $MLMD_STORE,
else metadata.db) and reads its own options from `args`, under the names its options
function gave them.
"""

from __future__ import annotations

import argparse
import enum
import json
import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterable, Mapping, Optional, Tuple, Union

from mlmd_exercise.store.address import DEFAULT_STORE, ENV_STORE, Location

if TYPE_CHECKING:  # opening is imported where a command opens a store, not at start-up
    from mlmd_exercise.store import Store

__all__ = [
    "PROG", "Outcome", "Invocation", "Command", "command", "positive", "port", "add_walk",
    "add_context_type", "add_tag_filter", "add_openlineage_url",
    "tags_of", "tag_filter", "walk_start", "print_json", "store_help", "warn", "has_display",
    "save_or_show_chart",
]

PROG = "mlmd-exercise"


class Outcome(enum.Enum):
    """How a command that ran to its end came out (`main` maps each to an exit code)."""

    OK = "ok"
    CHECK_FAILED = "the check found problems"  # check, verify, stale: the store or its files are not right
    INTERRUPTED = "stopped by Ctrl-C or SIGTERM"  # after saying how far it got (a streamed lineage walk)

    @classmethod
    def of_check(cls, passed: bool) -> "Outcome":
        return cls.OK if passed else cls.CHECK_FAILED


@dataclass(frozen=True)
class Invocation:
    """What every command is given besides its own options.

    Attributes:
        location: the store, resolved once from --db, else $MLMD_STORE, else metadata.db
            (in the command's folder, for `run --workdir`).
        upgrade: --upgrade-schema: let MLMD upgrade a store of an older schema.
        backend: --backend: "mlmd" or "native"; None for $MLMD_BACKEND, else the default.
    """

    location: Location
    upgrade: bool = False
    backend: Optional[str] = None

    def open(self, create: bool = False) -> "Store":
        """The store, opened (read-only on SQLite unless `create`)."""
        from mlmd_exercise.store import open_store

        return open_store(self.location, create=create, upgrade=self.upgrade, backend=self.backend)

    def readable(self) -> Union[Location, "Store"]:
        """The store for a reader that takes an address or a store (states, check): its
        address where plain SQL reads it without opening it, else the store, opened as asked
        (--backend, --upgrade-schema): see `store.readable`."""
        from mlmd_exercise.store import readable

        return readable(self.location, upgrade=self.upgrade, backend=self.backend)


Options = Callable[[argparse.ArgumentParser], None]
Body = Callable[[argparse.Namespace, Invocation], Outcome]


def _no_options(parser: argparse.ArgumentParser) -> None:
    """A command with only the options every command has."""


@dataclass(frozen=True)
class Command:
    """One subcommand: its name, help texts, options and body.

    Attributes:
        name: as typed after `mlmd-exercise`.
        run: the body.
        options: adds the command's own options to its parser.
        help: the line in `mlmd-exercise --help`.
        description: the paragraph in `mlmd-exercise NAME --help`.
        json: the command takes --json.
        store_folder: the name of the option whose value is the folder the default
            store goes in (`run`'s --workdir); None: the current folder.
        dash_values: options whose value may start with a dash (`--sort -accuracy`).
    """

    name: str
    run: Body
    options: Options = _no_options
    help: str = ""
    description: str = ""
    json: bool = False
    store_folder: Optional[str] = None
    dash_values: Tuple[str, ...] = ()


def command(name: str, options: Options = _no_options, *, help: str, description: str,
            json: bool = False, store_folder: Optional[str] = None,
            dash_values: Tuple[str, ...] = ()) -> Callable[[Body], Command]:
    """Declares the function below as the body of command `name`, with `options`."""

    def declare(run: Body) -> Command:
        return Command(name, run, options, help=help, description=description, json=json,
                       store_folder=store_folder, dash_values=dash_values)

    return declare


def store_help(folder_option: Optional[str] = None) -> str:
    """The --db help: what it takes, its default (read from where it is defined), and how to
    keep a password out of the process list."""
    where = f" in {folder_option}" if folder_option else ""
    return ("the store: a file path, sqlite:///path, postgresql://user:password@host:port/db or "
            "mysql://user:password@host:port/db, or @FILE holding one of those "
            f"(default: ${ENV_STORE}, else {DEFAULT_STORE}{where}). A password written here shows in 'ps' "
            "while the command runs; these keep it out: no password in the address and $PGPASSWORD or "
            "~/.pgpass ($PGPASSFILE) for PostgreSQL, ~/.my.cnf [client] password= or $MYSQL_PWD for MySQL; "
            f"or the whole address in @FILE or ${ENV_STORE} (a variable is still readable by the same user "
            "in /proc/PID/environ)")


# -- option types and options several commands share ------------------------------


def positive(what: str) -> Callable[[str], int]:
    """An argparse type: a whole number above 0 (0 or more for "hops")."""

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


def port(text: str) -> int:
    """An argparse type: a TCP port, 0 (any free one) to 65535."""
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"port must be a whole number from 0 to 65535, not '{text}'")
    return int(text)


def add_walk(parser: argparse.ArgumentParser) -> None:
    """--artifact, --execution, --direction, --hops: a lineage walk (read by `walk_start`)."""
    from mlmd_exercise.records import DIRECTIONS

    parser.add_argument("--artifact", type=positive("artifact id"), metavar="ID",
                        help="start from this artifact")
    parser.add_argument("--execution", dest="walk_execution", type=positive("execution id"),
                        metavar="ID", help="start from this execution")
    parser.add_argument("--direction", choices=DIRECTIONS, default="both",
                        help="upstream, downstream or both (default: %(default)s)")
    parser.add_argument("--hops", type=positive("hops"), metavar="N",
                        help="cross at most N events (default: no limit)")


def walk_start(args: argparse.Namespace) -> Optional[Tuple[str, int]]:
    """The node a walk starts from, as ("artifact" or "execution", id), or None for none.

    Raises:
        MlmdExerciseError: both --artifact and --execution are given.
    """
    from mlmd_exercise.errors import MlmdExerciseError

    if args.artifact is not None and args.walk_execution is not None:
        raise MlmdExerciseError("give --artifact or --execution, not both")
    if args.artifact is not None:
        return "artifact", args.artifact
    if args.walk_execution is not None:
        return "execution", args.walk_execution
    return None


def tag_filter(text: str) -> Tuple[str, str]:
    """An argparse type: `--tag key=value`."""
    from mlmd_exercise.read.nodes import tag_pair

    pair = tag_pair(text)
    if pair is None:
        raise argparse.ArgumentTypeError(f"a tag filter is KEY=VALUE, not '{text}'")
    return pair


def add_tag_filter(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tag", type=tag_filter, action="append", metavar="KEY=VALUE", dest="tags",
                        help="only runs with this tag (run.tag, tags=...); again for runs with every one")


def tags_of(args: argparse.Namespace) -> Optional[Dict[str, str]]:
    """The --tag filters given, by key; None if none (a key given twice: the last value)."""
    return dict(args.tags) if getattr(args, "tags", None) else None


def add_openlineage_url(parser: argparse.ArgumentParser, help: str) -> None:
    """--openlineage-url URL: an OpenLineage endpoint (`run`, `openlineage export`)."""
    parser.add_argument("--openlineage-url", metavar="URL", help=help)


def add_context_type(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--context-type", metavar="TYPE",
                        help="the type of the --experiment context, where its name is ambiguous "
                        "(pipeline_run, system.PipelineRun, ...)")


def json_ready(data: Any) -> Any:
    """`data` with NaN and the infinities as the strings "NaN", "Infinity" and "-Infinity"
    (protobuf's JSON form of a double): JSON has no such numbers."""
    if isinstance(data, float) and not math.isfinite(data):
        return "NaN" if data != data else ("Infinity" if data > 0 else "-Infinity")
    if isinstance(data, dict):
        return {k: json_ready(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [json_ready(v) for v in data]
    return data


def print_json(data: Any) -> None:
    print(json.dumps(json_ready(data), indent=2, sort_keys=True, allow_nan=False))


def print_json_stream(items: Iterable[Any]) -> None:
    """A JSON array printed an element at a time, byte for byte as `print_json` prints the list."""
    first = True
    for item in items:
        body = json.dumps(json_ready(item), indent=2, sort_keys=True, allow_nan=False).replace("\n", "\n  ")
        print(("[\n  " if first else ",\n  ") + body, end="")
        first = False
    print("[]" if first else "\n]")


def warn(message: str) -> None:
    """A line on stderr that does not stop the command."""
    print(f"{PROG}: {message}", file=sys.stderr)


def has_display() -> bool:
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def save_or_show_chart(counts: Mapping[str, int], path: Path, show: bool) -> None:
    """The chart of executions by state, in a window if asked and one can open, else saved."""
    from mlmd_exercise import render

    if show and has_display():
        render.show_states_chart(counts)
        return
    if show:
        warn("no display ($DISPLAY is not set); saving the chart instead")
    print(f"chart of executions by state: {render.render_states_chart(counts, path)}")
