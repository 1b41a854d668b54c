"""The commands that check a store and its files, and clean up after crashes: check, verify,
stale, abandon. The first three come out CHECK_FAILED (exit 1) when they find a problem."""

from __future__ import annotations

import json
import time
from argparse import ArgumentParser, Namespace
from typing import Any

from mlmd_exercise import text
from mlmd_exercise.cli import output as out, side_by_side
from mlmd_exercise.cli.command import Invocation, Outcome, command, print_json
from mlmd_exercise.errors import MlmdExerciseError

__all__ = ["check", "verify", "stale", "abandon", "doctor"]


def _check_options(parser: ArgumentParser) -> None:
    parser.add_argument("--repair", action="store_true",
                        help="mend the property rows ml-metadata cannot read that this package wrote "
                        "(a dry run unless --yes)")
    parser.add_argument("--yes", action="store_true", help="with --repair: do mend them")


@command("check", _check_options, json=True,
         help="check the store's consistency (after a crash, say)",
         description="Check that every artifact is joined by an event to the run that made or "
         "used it, that no artifact is the output of more than one run, that no type "
         "name is registered twice, that ml-metadata can read every property row, and that "
         "every metric history belongs to a run. Exits 1 if anything is wrong. --repair "
         "mends what this package wrote (rows with no value, from NaN metrics): a dry run "
         "unless --yes; rows other programs wrote are only reported.")
def check(args: Namespace, call: Invocation) -> Outcome:
    from mlmd_exercise.read.check import check_store

    if args.yes and not args.repair:
        raise MlmdExerciseError("--yes goes with --repair")
    if args.repair:
        return _repair(args, call)
    # By address: on SQLite the check is then plain SQL, with no MLMD store open on the file.
    problems = check_store(call.readable())
    if args.json:
        print_json({"problems": problems})
    else:
        print("\n".join(problems + [text.count(len(problems), "problem") if problems
                                    else "store is consistent"]))
    return Outcome.of_check(not problems)


def _repair(args: Namespace, call: Invocation) -> Outcome:
    from mlmd_exercise.store import open_store
    from mlmd_exercise.write.repair import plan_repair, repair

    # ml-metadata refuses to read such a store at all: the native backend reads every row.
    store = open_store(call.location, create=args.yes, backend="native") if args.yes else \
        open_store(call.location, backend="native")
    plan = plan_repair(store)
    done = repair(store, plan) if args.yes else 0
    if args.json:
        print_json({"rows": [{"kind": m.kind, "id": m.node_id, "key": m.key, "custom": m.custom,
                              "problem": m.problem, "mend": m.fix, "action": m.action} for m in plan],
                    "mended": done, "dry_run": not args.yes})
    else:
        verb = "would mend" if not args.yes else "mended"
        for m in plan:
            print(f"{(verb if m.fix else 'left'):10}  {m.kind} {m.node_id} property '{m.key}' {m.problem}: {m.action}")
        fixable = sum(m.fix for m in plan)
        print(f"{text.count(len(plan), 'unreadable property row')}: " + (
            f"{verb} {fixable}" + ("" if args.yes else " (--yes mends them)") if plan else "none"))
    return Outcome.of_check(all(m.fix for m in plan) and (args.yes or not plan))


def _json_lines(value: Any, indent: str) -> str:
    """`value` as `print_json` would print it nested at `indent`."""
    return indent + json.dumps(value, indent=2, sort_keys=True).replace("\n", "\n" + indent)


@command("verify", json=True,
         help="check recorded files against their content fingerprints",
         description="Check the newest version of every recorded file or directory: report "
         "those that are gone or whose content no longer matches its sha256 fingerprint. "
         "Exits 1 if any.")
def verify(args: Namespace, call: Invocation) -> Outcome:
    from mlmd_exercise.read.verify import verify_ids, verify_pages

    # A page at a time: the JSON's unchecked are printed as they are read; the text needs their ids only.
    if args.json:
        checked, problems, unchecked = verify_pages(call.open())
        # What print_json prints for {"checked", "problems", "unchecked"}, the last streamed.
        head = json.dumps({"checked": checked, "problems": [
            {"problem": p.kind, "artifact": out.record_json(p.artifact)} for p in problems]},
            indent=2, sort_keys=True)
        print(head[:-2] + ',\n  "unchecked": [', end="")
        separator = "\n"
        for u in unchecked:
            print(separator + _json_lines({"reason": u.reason, "artifact": out.record_json(u.artifact)},
                                          "    "), end="")
            separator = ",\n"
        print("]\n}" if separator == "\n" else "\n  ]\n}")
    else:
        checked, problems, by_reason = verify_ids(call.open())
        for p in problems:
            print(f"{p.kind:8}  artifact {p.artifact.id} ({p.artifact.type_version})  {p.artifact.uri}")
        for reason, ids in sorted(by_reason.items()):
            print(f"not checked: {text.count(len(ids), 'artifact')} ({reason}): {text.id_ranges(ids)}")
        print(f"checked {text.count(checked, 'artifact')}: "
              + (f"{len(problems)} missing or modified" if problems else "all match"))
    return Outcome.of_check(not problems)


@command("stale", json=True,
         help="artifacts made from files that changed or vanished: what to make again",
         description="Find the recorded files that are gone or whose content no longer "
         "matches its fingerprint (as verify does) and list every artifact downstream of "
         "them (models, metrics) and the runs that made those. Exits 1 if any.")
def stale(args: Namespace, call: Invocation) -> Outcome:
    from mlmd_exercise.read.stale import find_stale

    report = find_stale(call.open())
    if args.json:
        print_json(side_by_side.stale_json(report))
    else:
        print("\n".join(side_by_side.format_stale(report)))
    return Outcome.of_check(report.ok)


def _abandon_options(parser: ArgumentParser) -> None:
    parser.add_argument("--older-than", metavar="AGE", help="also runs older than AGE: 90m, 2h, 7d")
    parser.add_argument("--state", choices=["FAILED", "CANCELED"], default="FAILED",
                        help="the state to give them (default: %(default)s)")
    parser.add_argument("--dry-run", action="store_true", help="list them, change nothing")


@command("abandon", _abandon_options,
         help="mark RUNNING executions whose process is gone as FAILED",
         description="A run whose process was killed stays RUNNING for ever. Mark as FAILED "
         "(or --state CANCELED) the RUNNING executions whose process, on this host, is gone, "
         "and with --older-than those started longer ago (runs on other hosts). Each one is "
         "listed; --dry-run changes nothing.")
def abandon(args: Namespace, call: Invocation) -> Outcome:
    from mlmd_exercise.read import nodes
    from mlmd_exercise.read.check import stale_runs
    from mlmd_exercise.write.abandon import abandon as mark
    from mlmd_exercise.records import ExecutionState

    older = None
    if args.older_than:
        older = (time.time() * 1000 - nodes.parse_since(args.older_than)) / 1000
    store = call.open(create=not args.dry_run)
    found = stale_runs(store, older)
    reason = "process gone" + (f" or older than {args.older_than}" if args.older_than else "")
    if not args.dry_run:
        found = mark(store, found, ExecutionState(args.state), reason=reason)
    verb = "would mark" if args.dry_run else "marked"
    for run in found:
        print(f"{verb} execution {run.id} ({run.type}, started {text.when(run.created_ms)}) {args.state}")
    print(f"{text.count(len(found), 'stale RUNNING execution')} ({reason})"
          + (": none changed" if args.dry_run else ""))
    return Outcome.OK


@command("doctor", json=True,
         help="say which backend opens which kind of store here, and why",
         description="Say which backend opens each kind of store on this machine (Google's ml-metadata, "
         "or this package's own on the same tables), why, and what the store holds.")
def doctor(args: Namespace, call: Invocation) -> Outcome:
    import platform

    from mlmd_exercise.version import __version__
    from mlmd_exercise.errors import StoreError
    from mlmd_exercise.store import open_store
    from mlmd_exercise.store.choice import choices, mlmd_missing, title

    by_database = choices(call.backend)
    choice = by_database[call.location.scheme]
    missing = mlmd_missing()
    report: dict = {
        "version": __version__, "python": platform.python_version(),
        "backend": choice.name, "why": choice.reason,
        "backends": {db: {"backend": c.name, "why": c.reason} for db, c in by_database.items()},
        "mlmd_library": _mlmd_version() if missing is None else f"not usable: {missing}",
        "store": str(call.location),
    }
    try:
        store = open_store(call.location, upgrade=call.upgrade, backend=call.backend)
    except StoreError as e:
        report["store_status"] = str(e)
    else:
        report["backend"] = store.backend.name  # the one that opened it, after any fallback
        counts = store.backend.count_by_state()
        report["store_status"] = f"an MLMD store with {text.count(sum(counts.values()), 'execution')}"
    if args.json:
        print_json(report)
        return Outcome.OK
    print(f"mlmd-exercise {report['version']} on Python {report['python']}\n"
          f"backend: {report['backend']} ({report['why']})\n"
          f"ml-metadata: {report['mlmd_library']}\n"
          f"store: {report['store']}: {report['store_status']}\n"
          "backends by kind of store:")
    for line in text.table((title(db), c.name, c.reason) for db, c in by_database.items()):
        print(line)
    return Outcome.OK


def _mlmd_version() -> str:
    """The ml-metadata installed, and what it lacks that the package works around."""
    from importlib import metadata

    from mlmd_exercise.version import MLMD_WITHOUT_FILTERS, major_minor

    version = metadata.version("ml-metadata")
    if major_minor(version) >= MLMD_WITHOUT_FILTERS:
        return (f"{version} (no filter queries, which 1.21 dropped: the package lists with plain calls and "
                "filters what they return itself, slower on large stores than the native backend)")
    return version
