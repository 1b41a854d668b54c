"""What each `mlmd-exercise` command does: parse results into library calls, print them.

`cli` builds the parser and turns errors into exit codes; each `cmd_*` here
makes the library calls for one command and prints the result.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Mapping

from mlmd_exercise.cli import output as out
from mlmd_exercise.errors import MlmdExerciseError

PROG = "mlmd-exercise"
EXIT_OK, EXIT_FAILED = 0, 1


def _print_json(data) -> None:
    print(json.dumps(data, indent=2, sort_keys=True))


def _has_display() -> bool:
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _save_or_show_chart(counts: Mapping[str, int], path: Path, show: bool) -> None:
    from mlmd_exercise import render

    if show and _has_display():
        render.show_states_chart(counts)
        return
    if show:
        print(f"{PROG}: no display ($DISPLAY is not set); saving the chart instead", file=sys.stderr)
    print(f"chart of executions by state: {render.render_states_chart(counts, path)}")


def _reader(args: argparse.Namespace):
    from mlmd_exercise.store import open_store

    return open_store(args.db, upgrade=args.upgrade_schema)


# -- commands ---------------------------------------------------------------------


def cmd_run(args: argparse.Namespace) -> int:
    from mlmd_exercise import render, workflow
    from mlmd_exercise.store.address import DEFAULT_STORE, ENV_STORE
    from mlmd_exercise.read.nodes import same_content
    from mlmd_exercise.store import open_store

    workdir = Path(args.workdir)
    if workdir.exists() and not workdir.is_dir():
        raise MlmdExerciseError(f"working directory '{args.workdir}' is not a folder")
    created = not workdir.exists()
    workdir.mkdir(parents=True, exist_ok=True)  # as the exercise makes data/ and models/
    try:
        chart = Path(args.chart) if args.chart else workdir / "execution_states.png"
        render.output_format(chart, render.CHART_FORMATS)  # before any work is done
        db = args.db or os.environ.get(ENV_STORE) or workdir / DEFAULT_STORE
        store = open_store(db, create=True, upgrade=args.upgrade_schema)
    except BaseException:
        if created:  # leave nothing behind for a run that did not start
            workdir.rmdir()
        raise
    if created:
        print(f"created working directory {args.workdir}")

    result = workflow.run_demo(store, workdir, experiment=args.experiment, dataset=args.dataset,
                               report=print)
    print(f"recorded in {store} (experiment '{result.experiment}'):")
    roles = [(f"{a.properties.get('split', 'data')} split", a) for a in result.datasets]
    roles += [("model", result.model)] + ([("metrics", result.metrics)] if result.metrics else [])
    same = same_content(store, (a for _, a in roles))
    rows = [(role, *out.artifact_cells(a, same)) for role, a in sorted(roles, key=lambda r: r[1].id)]
    rows += [(run.execution.type.lower(), *out.execution_cells(run.execution)) for run in result.runs]
    print("\n".join(out.table(rows)))
    if result.metrics is not None:
        print("test metrics: " + ", ".join(
            f"{k} {v}" for k, v in sorted(result.metrics.properties.items())
            if k not in ("fingerprint", "version")))
    print(f"executions by state: {out.format_counts(result.counts)}")
    for run in result.runs:
        print("lineage of " + "\n".join(out.format_lineage(run, same)))
    _save_or_show_chart(result.counts, chart, args.show)
    return EXIT_OK


def _selection(args: argparse.Namespace):
    """The walk a `lineage` or `graph` command asks for, or None for none."""
    from mlmd_exercise.read.lineage import walk

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
    from mlmd_exercise.read.nodes import same_content
    from mlmd_exercise.read.lineage import execution_lineage

    if args.execution_id is not None and (args.artifact or args.walk_execution):
        raise MlmdExerciseError("give an EXECUTION_ID or --artifact/--execution, not both")
    selected = _selection(args)
    if selected is None:
        if args.execution_id is None:
            raise MlmdExerciseError("give an EXECUTION_ID, --artifact ID or --execution ID")
        store = _reader(args)
        one = execution_lineage(store, args.execution_id)
        same = same_content(store, [a for _, a in one.inputs + one.outputs])
        if args.json:
            _print_json({**out.lineage_json(one), "same_content": out.same_json(same)})
        else:
            print("\n".join(out.format_lineage(one, same)))
        return EXIT_OK
    store, graph, (kind, node_id) = selected
    same = same_content(store, graph.artifacts.values())
    if args.json:
        _print_json(out.graph_json(graph, start={"kind": kind, "id": node_id},
                                   direction=args.direction, hops=args.hops,
                                   same_content=out.same_json(same)))
    else:
        reach = "all hops" if args.hops is None else out.count(args.hops, "hop")
        title = (f"lineage of {kind} {node_id}, upstream and downstream" if args.direction == "both"
                 else f"{args.direction} lineage of {kind} {node_id}")
        print("\n".join(out.format_graph(graph, f"{title}, {reach}", same)))
    return EXIT_OK


def cmd_states(args: argparse.Namespace) -> int:
    from mlmd_exercise.read.counts import count_by_state

    if args.chart:
        from mlmd_exercise import render

        render.output_format(args.chart, render.CHART_FORMATS)
    if args.context_type and not args.experiment:
        raise MlmdExerciseError("--context-type names the type of the --experiment context: give both")
    # By address: on SQLite the count is then one SQL query, before MLMD opens the file.
    counts = count_by_state(_reader(args) if args.upgrade_schema else args.db, args.experiment,
                            args.context_type)
    if args.json:
        _print_json(counts)
    else:
        gone = 0
        if counts.get("RUNNING"):  # only then are those runs' processes looked at
            from mlmd_exercise.read.check import interrupted_ids

            # By address too: one SQL query where safe, else MLMD's API.
            gone = len(interrupted_ids(_reader(args) if args.upgrade_schema else args.db))
        rows = [(state, str(n)) for state, n in counts.items()]
        lines = out.table(rows, indent="") or ["no executions"]
        if gone:
            lines.append(f"{gone} of the RUNNING were interrupted: their process is gone "
                         f"(mark them with '{PROG} abandon')")
        print("\n".join(lines))
    if args.chart:
        _save_or_show_chart(counts, Path(args.chart), show=False)
    return EXIT_OK


def cmd_graph(args: argparse.Namespace) -> int:
    from mlmd_exercise import render
    from mlmd_exercise.collapse import collapse
    from mlmd_exercise.read.lineage import lineage_graph, with_experiments

    render.check_graph_output(args.output)  # before the store is read
    selected = _selection(args)
    if selected is None:
        store = _reader(args)
        graph = lineage_graph(store)
    else:
        store, graph, _ = selected
    if args.clusters is not None:
        if args.clusters:
            store.catalog.require_context_type(args.clusters)
        graph = with_experiments(store, graph, args.clusters or None)
    groups = []
    if not args.expand:
        graph, groups = collapse(graph)
    path = render.render_lineage(graph, args.output)
    artifacts = len(graph.artifacts) + sum(len(ids) - 1 for ids in graph.collapsed_artifacts.values())
    executions = len(graph.executions) + sum(len(ids) - 1 for ids in graph.collapsed.values())
    print(f"lineage graph of {out.count(artifacts, 'artifact')} and "
          f"{out.count(executions, 'execution')}: {path}")
    for group in groups:
        made = f" and their {out.count(group.outputs, 'output')}" if group.outputs else ""
        print(f"  drawn as one: {len(group.ids):,} {group.state} {group.type} executions with the "
              f"same inputs{made} (executions {out.id_ranges(group.ids)}; --expand draws each)")
    return EXIT_OK


def cmd_ls(args: argparse.Namespace) -> int:
    from mlmd_exercise.read import nodes as browse
    from mlmd_exercise.read.compare import BUILTIN_SORTS

    since = browse.parse_since(args.since) if args.since else None
    if args.state and args.what != "executions":
        raise MlmdExerciseError(f"--state filters executions, not {args.what}")
    if args.experiment and args.what in ("experiments", "contexts"):
        raise MlmdExerciseError("--type and --experiment filter artifacts and executions, not experiments")
    if args.columns is not None and args.what != "executions":
        raise MlmdExerciseError(f"--columns chooses the params and metrics of executions, not {args.what}")
    if args.sort and args.what != "executions" and args.sort.lstrip("-") not in BUILTIN_SORTS:
        raise MlmdExerciseError(f"{args.what} sort by id or created, not '{args.sort}'")
    if args.context_type and not args.experiment:
        raise MlmdExerciseError("--context-type names the type of the --experiment context: give both")
    store = _reader(args)
    # Sorted, the limit applies after sorting: "the 5 best", not "the best of the newest 5".
    limit = None if args.sort else args.limit
    if args.what == "artifacts":
        found = browse.list_artifacts(store, type=args.type, experiment=args.experiment,
                                      since_ms=since, limit=limit, context_type=args.context_type)
    elif args.what == "executions":
        return _ls_executions(args, store, browse.list_executions(
            store, type=args.type, experiment=args.experiment, state=args.state,
            since_ms=since, limit=limit, context_type=args.context_type))
    else:  # every context, with its type; --type picks a context type
        found = browse.list_experiments(store, since_ms=since, limit=limit, type=args.type)
    found = _builtin_sorted(found, args.sort, args.limit)
    if args.json:
        _print_json([out.record_json(r) for r in found])
    else:
        print("\n".join(out.format_listing(found) or [f"no {args.what}"]))
    return EXIT_OK


def _builtin_sorted(found, sort, limit):
    """Records sorted by id or created, as `--sort [-]id|created` asks, then limited."""
    if not sort:
        return found
    descending, key = sort.startswith("-"), sort.lstrip("-")
    return sorted(found, key=lambda r: (r.id if key == "id" else r.when_ms, r.id),
                  reverse=descending)[:limit]


def _ls_executions(args: argparse.Namespace, store, found) -> int:
    """`ls executions`: params and metrics as columns, sorted by one of them if asked."""
    from mlmd_exercise.read import compare

    by_value = bool(args.sort) and args.sort.lstrip("-") not in compare.BUILTIN_SORTS
    if args.json and not by_value and args.columns is None:  # records only: no outputs to read
        _print_json([out.record_json(r) for r in _builtin_sorted(found, args.sort, args.limit)])
        return EXIT_OK
    runs = compare.summarize_runs(store, found)
    if args.columns is not None:
        wanted = [c.strip() for c in args.columns.split(",") if c.strip()]
        if not wanted:
            raise MlmdExerciseError(f"--columns needs names separated by commas, not '{args.columns}'")
        columns, hidden = compare.choose_columns(runs, wanted), []
    else:
        every = compare.columns(runs)
        columns, hidden = every[:out.MAX_AUTO_COLUMNS], every[out.MAX_AUTO_COLUMNS:]
    if args.sort:
        runs = compare.sort_runs(runs, args.sort)[:args.limit]
    if args.json:
        _print_json([out.record_json(r.execution) for r in runs])
    else:
        print("\n".join(out.format_runs(runs, columns, hidden) or ["no executions"]))
    return EXIT_OK


def cmd_show(args: argparse.Namespace) -> int:
    from mlmd_exercise.read import nodes as browse

    show = browse.show_artifact if args.kind == "artifact" else browse.show_execution
    detail = show(_reader(args), args.id)
    if args.json:
        from mlmd_exercise.write.environment import split_environment

        _print_json({"kind": args.kind, "node": out.record_json(detail.node),
                     "events": [out.edge_json(e) for e in detail.events],
                     "experiments": list(detail.experiments),
                     "same_content": list(detail.same_content),
                     "environment": split_environment(detail.node.properties)[1]
                     if args.kind == "execution" else {}})
    else:
        print("\n".join(out.format_detail(detail)))
    return EXIT_OK


def cmd_abandon(args: argparse.Namespace) -> int:
    from mlmd_exercise.read import nodes as browse
    from mlmd_exercise.read.check import abandon, stale_runs
    from mlmd_exercise.schema import ExecutionState
    from mlmd_exercise.store import open_store

    older = None
    if args.older_than:
        older = (time.time() * 1000 - browse.parse_since(args.older_than)) / 1000
    store = open_store(args.db, create=not args.dry_run, upgrade=args.upgrade_schema)
    stale = stale_runs(store, older)
    reason = "process gone" + (f" or older than {args.older_than}" if args.older_than else "")
    if not args.dry_run:
        stale = abandon(store, stale, ExecutionState(args.state), reason=reason)
    verb = "would mark" if args.dry_run else "marked"
    for run in stale:
        print(f"{verb} execution {run.id} ({run.type}, started {out.when(run.created_ms)}) {args.state}")
    print(f"{out.count(len(stale), 'stale RUNNING execution')} ({reason})"
          + (": none changed" if args.dry_run else ""))
    return EXIT_OK


class _Progress:
    """A one-line progress count on stderr, shown only on a terminal and after a moment."""

    def __init__(self, what: str, delay: float = 0.5) -> None:
        self.what, self.start, self.delay, self.shown = what, time.monotonic(), delay, False

    def __call__(self, done: int) -> None:
        elapsed = time.monotonic() - self.start
        if sys.stderr.isatty() and elapsed >= self.delay:
            rate = done / elapsed if elapsed else 0
            sys.stderr.write(f"\r{self.what}: {done:,} runs ({rate:,.0f}/s)")
            sys.stderr.flush()
            self.shown = True

    def close(self) -> None:
        if self.shown:
            sys.stderr.write("\n")


def cmd_import(args: argparse.Namespace) -> int:
    from mlmd_exercise.write.bulk import read_runs, record_runs
    from mlmd_exercise.store import open_store
    from mlmd_exercise.write.tracking import Tracker

    if (args.file is None) == (args.from_exercise is None):
        raise MlmdExerciseError("give a FILE of JSON lines or --from-exercise OLD_DB, one of them")
    if args.from_exercise is not None:
        return _import_exercise(args)
    path = Path(args.file)
    if args.file != "-" and not path.is_file():
        raise MlmdExerciseError(f"'{args.file}' does not exist" if not path.exists()
                                else f"'{args.file}' is not a file")
    tracker = Tracker(open_store(args.db, create=True, upgrade=args.upgrade_schema),
                      experiment=args.experiment)
    progress = _Progress("importing")
    started = time.monotonic()
    with (sys.stdin if args.file == "-" else path.open()) as lines:
        try:
            result = record_runs(tracker, read_runs(lines, args.file), batch_size=args.batch_size,
                                 progress=progress)
        finally:
            progress.close()
    elapsed = time.monotonic() - started
    already = f" ({result.skipped:,} were already there)" if result.skipped else ""
    print(f"imported {result.recorded:,} runs into {tracker.store} in {elapsed:.1f} s{already}")
    return EXIT_OK


def _import_exercise(args: argparse.Namespace) -> int:
    from mlmd_exercise.write.bulk import record_runs
    from mlmd_exercise.write.exercise import read_exercise
    from mlmd_exercise.store import open_store
    from mlmd_exercise.write.tracking import Tracker

    found = read_exercise(args.from_exercise)  # before the store is opened or made
    from mlmd_exercise.store.address import default_location, parse_location

    target = parse_location(args.db or default_location())
    if target.path is not None and target.path.resolve() == Path(args.from_exercise).resolve():
        raise MlmdExerciseError(f"'{args.from_exercise}' is the exercise's database, not an MLMD store: "
                                "name the store to import into with --db")
    tracker = Tracker(open_store(args.db, create=True, upgrade=args.upgrade_schema),
                      experiment=args.experiment)
    started = time.monotonic()
    result = record_runs(tracker, found.runs, batch_size=args.batch_size)
    elapsed = time.monotonic() - started
    already = f" ({result.skipped:,} were already there)" if result.skipped else ""
    print(f"imported {result.recorded:,} runs from {args.from_exercise} into {tracker.store} "
          f"in {elapsed:.1f} s{already}")
    if found.unused_artifacts:
        print(f"not imported: {out.count(found.unused_artifacts, 'artifact')} that no event joins to a run")
    if found.bad_events:
        print(f"not imported: {out.count(found.bad_events, 'event')} of another type than INPUT/OUTPUT "
              "or naming a missing artifact or execution")
    return EXIT_OK


def cmd_check(args: argparse.Namespace) -> int:
    from mlmd_exercise.read.check import check_store

    # By address: on SQLite the check is then plain SQL, with no MLMD store open on the file.
    problems = check_store(_reader(args) if args.upgrade_schema else args.db)
    if args.json:
        _print_json({"problems": problems})
    else:
        print("\n".join(problems + [out.count(len(problems), "problem") if problems else "store is consistent"]))
    return EXIT_OK if not problems else EXIT_FAILED


def _json_lines(value, indent: str) -> str:
    """`value` as `_print_json` would print it nested at `indent`."""
    return indent + json.dumps(value, indent=2, sort_keys=True).replace("\n", "\n" + indent)


def cmd_verify(args: argparse.Namespace) -> int:
    from mlmd_exercise.read.verify import verify_ids, verify_pages

    # A page at a time: the JSON's unchecked are printed as they are read; the text needs their ids only.
    if args.json:
        checked, problems, unchecked = verify_pages(_reader(args))
        # What _print_json prints for {"checked", "problems", "unchecked"}, the last streamed.
        head = json.dumps({"checked": checked, "problems": [
            {"problem": p.kind, "artifact": out.record_json(p.artifact)} for p in problems]},
            indent=2, sort_keys=True)
        print(head[:-2] + ',\n  "unchecked": [', end="")
        separator = "\n"
        for u in unchecked:
            print(separator + _json_lines({"reason": u.reason, "artifact": out.record_json(u.artifact)}, "    "),
                  end="")
            separator = ",\n"
        print("]\n}" if separator == "\n" else "\n  ]\n}")
    else:
        checked, problems, by_reason = verify_ids(_reader(args))
        for p in problems:
            print(f"{p.kind:8}  artifact {p.artifact.id} ({p.artifact.type_version})  {p.artifact.uri}")
        for reason, ids in sorted(by_reason.items()):
            print(f"not checked: {out.count(len(ids), 'artifact')} ({reason}): {out.id_ranges(ids)}")
        print(f"checked {out.count(checked, 'artifact')}: "
              + (f"{len(problems)} missing or modified" if problems else "all match"))
    return EXIT_OK if not problems else EXIT_FAILED


def cmd_diff(args: argparse.Namespace) -> int:
    from mlmd_exercise.read.diff import diff_artifacts, diff_runs

    compare = diff_artifacts if args.artifact else diff_runs
    result = compare(_reader(args), args.a, args.b)
    if args.json:
        _print_json(out.diff_json(result))
    else:
        print("\n".join(out.format_diff(result)))
    return EXIT_OK


def cmd_stale(args: argparse.Namespace) -> int:
    from mlmd_exercise.read.stale import find_stale

    report = find_stale(_reader(args))
    if args.json:
        _print_json(out.stale_json(report))
    else:
        print("\n".join(out.format_stale(report)))
    return EXIT_OK if report.ok else EXIT_FAILED


# -- the explorer and the report (mlmd_exercise.web; the web framework loads only in `ui`) ----


def cmd_ui(args: argparse.Namespace) -> int:
    from mlmd_exercise.store import open_store
    from mlmd_exercise.web.server import serve

    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"{PROG}: warning: serving on '{args.host}': other machines that reach this address "
              "can read the store (with the token)", file=sys.stderr)
    store = open_store(args.db, upgrade=args.upgrade_schema)  # SQLite: read-only

    def ready(url: str, port: int) -> None:
        print(f"serving {store} (read-only) at {url}", flush=True)
        print("press Ctrl-C to stop", flush=True)
        if not args.no_browser and _has_display():
            import webbrowser

            webbrowser.open(url)

    import signal

    def interrupt(signum, frame):  # a stop by `kill` ends as Ctrl-C does
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    try:
        serve(store, args.host, [args.port] if args.port is not None else range(8765, 8775), ready)
    except KeyboardInterrupt:
        print("stopped")
    return EXIT_OK


def cmd_report(args: argparse.Namespace) -> int:
    from mlmd_exercise.web import report

    if args.artifact is not None and args.walk_execution is not None:
        raise MlmdExerciseError("give --artifact or --execution, not both")
    fmt = report.report_format(args.output, args.format)  # before the store is read
    data = report.gather(_reader(args), artifact=args.artifact, execution=args.walk_execution,
                         experiment=args.experiment, direction=args.direction, hops=args.hops)
    path = report.write_report(data, args.output, fmt)
    print(f"report of {out.count(len(data.runs.rows), 'run')} and a lineage of "
          f"{out.count(len(data.graph.artifacts), 'artifact')} and "
          f"{out.count(len(data.graph.executions), 'execution')}: {path}")
    return EXIT_OK
