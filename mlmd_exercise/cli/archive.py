"""The commands that keep a store small and safe: `export` (runs to a bundle), `prune` (old runs
out, lineage of everything kept intact) and `backup` (a whole store, copied while it is
written, to an SQLite file). `import` (cli/record.py) reads bundles back."""

from __future__ import annotations

import time
from argparse import ArgumentParser, Namespace
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Dict, List, Optional

from mlmd_exercise import text
from mlmd_exercise.cli.command import Invocation, Outcome, add_openlineage_url, add_tag_filter, command, tags_of
from mlmd_exercise.errors import MlmdExerciseError, StoreError
from mlmd_exercise.records import DIRECTIONS

if TYPE_CHECKING:
    from mlmd_exercise.write.prune import PrunePlan

__all__ = ["export", "openlineage", "prune", "backup", "import_bundle_file", "parse_when", "OPENLINEAGE_FILE"]

OPENLINEAGE_FILE = "openlineage.jsonl"  # `openlineage export`'s file unless --to names another


def parse_when(text: str, option: str) -> int:
    """A date or time (ISO 8601, UTC unless it says) or an age ("30d": that long ago), in ms."""
    from mlmd_exercise.write.prune import parse_age

    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        try:
            return int(time.time() * 1000) - parse_age(text)
        except MlmdExerciseError:
            raise MlmdExerciseError(f"{option} '{text}' is neither a date (2026-01-31, 2026-01-31T12:00) "
                                    "nor an age (30d, 12h)") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return int(when.timestamp() * 1000)


# -- export ---------------------------------------------------------------------------------


def _export_options(parser: ArgumentParser) -> None:
    parser.add_argument("-o", "--output", required=True, metavar="FILE", help="the bundle to write")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--experiment", metavar="NAME", help="only the runs of this experiment")
    which.add_argument("--context", metavar="NAME", help="only the runs of this context (any type)")
    _time_tag_where_options(parser)
    parser.add_argument("--artifact", type=int, metavar="ID", help="only the runs in this artifact's lineage")
    parser.add_argument("--direction", choices=DIRECTIONS, default="upstream",
                        help="which way --artifact's lineage is walked (default: %(default)s)")


def _time_tag_where_options(parser: ArgumentParser) -> None:
    """The runs chosen by start time, tags and filter query (`export`, `openlineage export`)."""
    parser.add_argument("--since", metavar="WHEN", help="only runs started at or after WHEN (a date, or an age: 30d)")
    parser.add_argument("--until", metavar="WHEN", help="only runs started before WHEN")
    add_tag_filter(parser)
    parser.add_argument("--where", metavar="EXPR", help="only the runs MLMD's filter query EXPR matches "
                        "(docs/cli.md: \"custom_properties.C.double_value < 1\")")


@command("export", _export_options,
         help="write runs and their lineage to a bundle file, for `import` into another store",
         description="Write the chosen runs (default: all) with every artifact they used or made, their "
         "events, types, contexts, properties and original times to a bundle (versioned JSON lines, "
         "docs/bundle.md) that `import` records into any store.")
def export(args: Namespace, call: Invocation) -> Outcome:
    from mlmd_exercise import schema
    from mlmd_exercise.read.export import export_bundle, select_executions

    since = parse_when(args.since, "--since") if args.since else None
    until = parse_when(args.until, "--until") if args.until else None
    store = call.open()
    context_id = None
    if args.experiment:
        context_id = store.catalog.context_id(args.experiment, schema.EXPERIMENT.name)
    elif args.context:
        context_id = store.catalog.context_id(args.context)
    tags = tags_of(args)
    ids = select_executions(store, context_id=context_id, since_ms=since, until_ms=until,
                            artifact_id=args.artifact, direction=args.direction, tags=tags, where=args.where)
    selection = {k: getattr(args, k) for k in ("experiment", "context", "since", "until", "artifact", "where")
                 if getattr(args, k) is not None}
    if tags:
        selection["tags"] = tags
    counts = export_bundle(store, args.output, ids, selection=selection)
    print(f"exported {text.count(counts.executions, 'run')}, {text.count(counts.artifacts, 'artifact')}, "
          f"{text.count(counts.events, 'event')} and {text.count(counts.contexts, 'context')} "
          f"from {store} to {args.output}")
    return Outcome.OK


# -- openlineage export ---------------------------------------------------------------------


def _openlineage_options(parser: ArgumentParser) -> None:
    parser.add_argument("action", choices=["export"], help="export: the store's runs as OpenLineage events")
    parser.add_argument("--to", metavar="FILE", help="the JSON-lines file the events are appended to, one a line, "
                        f"or - for standard output (default: {OPENLINEAGE_FILE}, unless --openlineage-url is given)")
    add_openlineage_url(parser, "send the events to this OpenLineage endpoint instead (POSTed to "
                        "URL/api/v1/lineage; $OPENLINEAGE_API_KEY as a bearer token): what a run sent while "
                        "the endpoint was down, sent again; needs openlineage-python")
    parser.add_argument("--experiment", metavar="NAME", help="only the runs of this experiment")
    _time_tag_where_options(parser)


@command("openlineage", _openlineage_options,
         help="send the store's runs as OpenLineage events (to a JSON-lines file or an endpoint)",
         description="Replay the chosen runs (default: all, oldest first) as OpenLineage RunEvents: a START "
         "with its inputs, then COMPLETE, FAIL or ABORT with its inputs and outputs (a RUNNING run has its "
         "START alone), with the same run ids every time, and the custom facets docs/openlineage.md "
         "describes (params, metrics, environment, fingerprints). To --to FILE (appended), - (standard "
         "output), or --openlineage-url URL. Needs openlineage-python.")
def openlineage(args: Namespace, call: Invocation) -> Outcome:
    import sys
    from pathlib import Path

    from mlmd_exercise import schema
    from mlmd_exercise.read.export import select_executions

    to = args.to if args.to is not None else (None if args.openlineage_url else OPENLINEAGE_FILE)
    if to not in (None, "-"):
        where = Path(to)
        if where.is_dir():
            raise MlmdExerciseError(f"'{to}' is a folder: --to names the file the events go to")
        if not where.absolute().parent.is_dir():
            raise MlmdExerciseError(f"'{to}': its folder '{where.parent}' does not exist")
    since = parse_when(args.since, "--since") if args.since else None
    until = parse_when(args.until, "--until") if args.until else None
    from mlmd_exercise.integrations.openlineage import Emitter, available, run_events, to_json

    if not available():
        raise MlmdExerciseError("'openlineage export' needs openlineage-python (Python 3.10 or later): "
                                "pip install 'mlmd_exercise[openlineage]'")
    file = None if to in (None, "-") else to
    emitter = Emitter(args.openlineage_url, file, warn=False) if (args.openlineage_url or file) else None
    store = call.open()
    context_id = store.catalog.context_id(args.experiment, schema.EXPERIMENT.name) if args.experiment else None
    ids = select_executions(store, context_id=context_id, since_ms=since, until_ms=until, tags=tags_of(args),
                            where=args.where)
    events = 0
    for execution_id in ids:
        made = run_events(store, execution_id)
        events += len(made)
        if to == "-":
            for event in made:
                print(to_json(event))
        if emitter is not None:
            emitter.emit(made)
            if emitter.failed and len(emitter.failed) == len(emitter.targets):
                break  # nowhere left to send to
    shown = [t for t in (["standard output"] if to == "-" else []) + (emitter.targets if emitter else [])]
    summary = f"{text.count(events, 'event')} of {text.count(len(ids), 'run')} from {store}"
    if emitter is not None:
        emitter.close()
        if emitter.failed:
            target, why = next(iter(emitter.failed.items()))
            sent = emitter.sent.get(target, 0)
            raise RuntimeError(f"could not send to {target}: {why}; {sent:,} of {text.count(events, 'event')} "
                               "went there (the store is as it was: try again)")
    from mlmd_exercise.masking import mask

    print(f"sent {summary} to {' and '.join(mask(t, whole=True) for t in shown)}",
          file=sys.stderr if to == "-" else sys.stdout)
    return Outcome.OK


def import_bundle_file(path: str, call: Invocation) -> Outcome:
    """`import FILE` where FILE is a bundle (cli/record.py sends it here)."""
    from mlmd_exercise.bundle import read_bundle
    from mlmd_exercise.write.bundle_import import import_bundle

    bundle = read_bundle(path)  # checked whole (its index held) before the store is opened or made
    store = call.open(create=True)
    started = time.monotonic()
    counts = import_bundle(store, bundle)
    already = counts.already.get("executions", 0)
    print(f"imported {text.count(counts.executions, 'run')}, {text.count(counts.artifacts, 'artifact')} and "
          f"{text.count(counts.events, 'event')} from bundle {path} into {store} in "
          f"{time.monotonic() - started:.1f} s" + text.already_there(already, "run"))
    return Outcome.OK


# -- backup ---------------------------------------------------------------------------------


def _backup_options(parser: ArgumentParser) -> None:
    parser.add_argument("dest", metavar="DEST", help="the new file to copy the store to (never replaced)")


@command("backup", _backup_options,
         help="copy a store, while it is written, to a new SQLite file",
         description="Copy the store to the new SQLite file DEST as it is at one moment, while other "
         "processes go on recording. An SQLite store is copied with SQLite's online backup, what is "
         "still in its write-ahead log included (a plain copy of the file misses that). A PostgreSQL or "
         "MySQL store (a team's, or the MLMD database a Kubeflow Pipelines installation left behind) "
         "is read in one snapshot and written table by table, ids kept, to a standalone MLMD file that "
         "this package, ml-metadata and sqlite3 read as they read the server; the server is only read. "
         "The copy is checked with SQLite's own integrity check and appears under its name only once "
         "it is whole. DEST must not exist.")
def backup(args: Namespace, call: Invocation) -> Outcome:
    from pathlib import Path

    from mlmd_exercise.store.archive import backup as backup_store

    loc, dest = call.location, Path(args.dest)
    started = time.monotonic()
    size = backup_store(loc, dest)
    print(f"backed up {loc} to {args.dest} ({size:,} bytes, checked, {time.monotonic() - started:.1f} s)")
    return Outcome.OK


# -- prune ----------------------------------------------------------------------------------


def _prune_options(parser: ArgumentParser) -> None:
    parser.add_argument("--older-than", required=True, metavar="AGE",
                        help="prune runs that started longer ago than AGE: 90d, 12h, 30m, 2w")
    parser.add_argument("--experiment", metavar="NAME", help="only runs of this experiment")
    parser.add_argument("--state", metavar="STATES", help="only runs in these states, e.g. FAILED,CANCELED")
    parser.add_argument("--where", metavar="EXPR",
                        help="only runs MLMD's filter query EXPR matches (docs/cli.md)")
    parser.add_argument("--keep", type=int, nargs="+", default=[], metavar="ID",
                        help="artifacts to keep whatever their age, with their whole lineage")
    parser.add_argument("--dry-run", action="store_true",
                        help="only say what would go (the default, unless --yes)")
    parser.add_argument("--yes", action="store_true", help="do remove it (one transaction)")
    parser.add_argument("--archive", metavar="FILE",
                        help="first write what goes to this bundle, and read it back; nothing is removed "
                        "unless that worked")
    parser.add_argument("--list-files", action="store_true",
                        help="print the local files that only pruned artifacts referred to (never deleted)")


def _states(text: Optional[str]) -> Optional[List[str]]:
    from mlmd_exercise.records import ExecutionState

    if not text:
        return None
    states = [s.strip().upper() for s in text.split(",") if s.strip()]
    for s in states:
        if s not in ExecutionState.__members__:
            raise MlmdExerciseError(f"--state '{s}' is not a state: use {', '.join(ExecutionState.__members__)}")
    return states


@command("prune", _prune_options,
         help="remove old runs and what only they used, never the lineage of anything kept",
         description="Remove runs older than --older-than, and the artifacts and events only they used. "
         "Never removed: anything upstream of a kept artifact (every artifact newer than the cut-off, "
         "every --keep, every artifact a remaining run used or made). A dry run unless --yes. Files on "
         "disk are never deleted. Removing needs the native backend (MLMD has no delete call): prune "
         "opens the store with it whichever backend is chosen.")
def prune(args: Namespace, call: Invocation) -> Outcome:
    from mlmd_exercise import schema
    from mlmd_exercise.store import open_store
    from mlmd_exercise.write.prune import local_files, parse_age, plan_prune, prune as remove

    from mlmd_exercise.read.nodes import parsed
    from mlmd_exercise.records import Kind

    age = parse_age(args.older_than)
    states = _states(args.state)
    where = parsed(args.where, Kind.EXECUTION)
    if args.yes and args.dry_run:
        raise MlmdExerciseError("give --dry-run or --yes, not both")
    cutoff = int(time.time() * 1000) - age
    loc = call.location
    if args.yes:
        if loc.path is not None and not loc.path.exists():  # a store file: never made by a prune
            raise StoreError(f"no store at '{loc}'")
        # MLMD has no delete call: the native backend writes MLMD's tables itself.
        store = open_store(loc, create=True, backend="native")
    else:
        store = call.open()
    context_id = store.catalog.context_id(args.experiment, schema.EXPERIMENT.name) if args.experiment else None

    def planned() -> PrunePlan:
        return plan_prune(store, cutoff, context_id=context_id, states=states, keep=args.keep, where=where)

    if not args.yes:
        plan = planned()
        _report(plan, dry=True)
        if args.archive:
            print(f"{args.archive} not written: a dry run writes no archive")
    else:
        with store.writing():  # no run recorded meanwhile can start using what goes
            plan = planned()
            _report(plan, dry=False)
            started = time.monotonic()
            removed = remove(store, plan, archive=args.archive)
        if args.archive:
            print(f"archived to {args.archive}")
        print(f"removed {text.count(removed.get('Execution', 0), 'run')}, "
              f"{text.count(removed.get('Artifact', 0), 'artifact')} and "
              f"{text.count(removed.get('Event', 0), 'event')} from {store} in {time.monotonic() - started:.1f} s")
    if args.list_files:
        for path in local_files(store, plan):
            print(path)
    return Outcome.OK


def _report(plan: "PrunePlan", dry: bool, most: int = 20) -> None:
    when = datetime.fromtimestamp(plan.cutoff_ms / 1000, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    verb = "would remove" if dry else "removing"
    print(f"{plan.candidates:,} runs started before {when}; {verb} {text.count(len(plan.executions), 'run')} "
          f"and {text.count(len(plan.artifacts), 'artifact')}")
    for (type_name, state), n in sorted(plan.by_type_and_state().items()):
        print(f"  runs: {type_name} {state}: {n:,}")
    for type_name, n in sorted(plan.artifacts_by_type().items()):
        print(f"  artifacts: {type_name}: {n:,}")
    if plan.kept_runs:
        print(f"kept, though old enough: {text.count(len(plan.kept_runs), 'run')}, in the lineage of:")
        by_root: Dict[int, List[int]] = {}
        for run, root in sorted(plan.kept_runs.items()):
            by_root.setdefault(root, []).append(run)
        for root, runs in sorted(by_root.items())[:most]:
            artifact, why = plan.protected[root]
            shown = ", ".join(str(r) for r in runs[:10]) + (f" and {len(runs) - 10} more" if len(runs) > 10 else "")
            print(f"  {artifact.type_version} {artifact.id} ({artifact.uri}; {why}): runs {shown}")
        if len(by_root) > most:
            print(f"  ... and {len(by_root) - most:,} more kept artifacts")
    if plan.spared_running:
        print(f"spared: {text.count(len(plan.spared_running), 'run')} still RUNNING, whose process may be alive "
              f"(runs {text.id_ranges(plan.spared_running)}; `abandon` closes those whose process is gone)")
    if dry:
        print("a dry run: nothing was removed (--yes removes it)")
