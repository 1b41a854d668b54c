"""The commands that answer questions: lineage, states, graph, ls, show, diff.

None of them changes the store (on SQLite they open it read-only).
"""

from __future__ import annotations

from argparse import ArgumentParser, Namespace
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

from mlmd_exercise import text
from mlmd_exercise.cli import output as out, side_by_side
from mlmd_exercise.cli.command import (
    PROG, Invocation, Outcome, add_context_type, add_tag_filter, add_walk, command, positive, print_json,
    print_json_stream, save_or_show_chart, tags_of, walk_start,
)
from mlmd_exercise.errors import MlmdExerciseError, NotFoundError

__all__ = ["lineage", "states", "graph", "ls", "show", "diff"]


# -- lineage ----------------------------------------------------------------------


def _lineage_options(parser: ArgumentParser) -> None:
    parser.add_argument("execution_id", type=positive("execution id"), metavar="EXECUTION_ID",
                        nargs="?", help="one execution's inputs and outputs")
    add_walk(parser)
    parser.add_argument("--where", metavar="EXPR",
                        help="start from every node MLMD's filter query EXPR matches (docs/cli.md): "
                        "the executions, or the artifacts with --start artifacts")
    parser.add_argument("--start", choices=["executions", "artifacts"], default="executions",
                        help="which nodes --where picks (default: %(default)s)")


@command("lineage", _lineage_options, json=True,
         help="what an execution read and wrote, or lineage over many hops",
         description="With EXECUTION_ID: the artifacts that execution read (INPUT) and wrote "
         "(OUTPUT). With --artifact or --execution: the lineage over many hops, upstream (what "
         "produced it, all the way back), downstream (what came from it) or both. A hop "
         "crosses one event: from a model, 1 hop upstream is the run that made it, 2 hops "
         "that run's inputs.")
def lineage(args: Namespace, call: Invocation) -> Outcome:
    from mlmd_exercise.read.lineage import execution_lineage, walk, walk_hops
    from mlmd_exercise.read.nodes import oldest_twins

    if args.execution_id is not None and (args.artifact or args.walk_execution):
        raise MlmdExerciseError("give an EXECUTION_ID or --artifact/--execution, not both")
    if args.where is not None:
        return _lineage_where(args, call)
    start = walk_start(args)
    if start is None:
        if args.execution_id is None:
            raise MlmdExerciseError("give an EXECUTION_ID, --artifact ID or --execution ID")
        store = call.open()
        one = execution_lineage(store, args.execution_id)
        same = oldest_twins(store, [a for _, a in one.inputs + one.outputs])
        if args.json:
            print_json({**out.lineage_json(one), "same_content": out.same_json(same)})
        else:
            print("\n".join(out.format_lineage(one, same)))
        return Outcome.OK
    store = call.open()
    kind, node_id = start
    if args.json:  # one JSON document: the walk whole
        graph = walk(store, artifact_id=args.artifact, execution_id=args.walk_execution,
                     direction=args.direction, hops=args.hops)
        same = oldest_twins(store, graph.artifacts.values())
        print_json(out.graph_json(graph, start={"kind": kind, "id": node_id},
                                  direction=args.direction, hops=args.hops,
                                  same_content=out.same_json(same)))
        return Outcome.OK
    from mlmd_exercise.cli.walk_text import print_walk

    hops = walk_hops(store, artifact_id=args.artifact, execution_id=args.walk_execution,
                     direction=args.direction, hops=args.hops, lines=True)
    reach = "all hops" if args.hops is None else text.count(args.hops, "hop")
    title = (f"lineage of {kind} {node_id}, upstream and downstream" if args.direction == "both"
             else f"{args.direction} lineage of {kind} {node_id}")
    return print_walk(store, hops, f"{title}, {reach}", legs=args.direction == "both")


def _lineage_where(args: Namespace, call: Invocation) -> Outcome:
    """`lineage --where EXPR`: the walk from every node the filter query matches."""
    from mlmd_exercise.read.lineage import graph_of, walk_hops_from
    from mlmd_exercise.read.nodes import oldest_twins, parsed
    from mlmd_exercise.records import Kind
    from mlmd_exercise.store.backend import Query

    if args.execution_id is not None or args.artifact or args.walk_execution:
        raise MlmdExerciseError("give --where or a starting node (EXECUTION_ID, --artifact, --execution), not both")
    kind = Kind.ARTIFACT if args.start == "artifacts" else Kind.EXECUTION
    expr = parsed(args.where, kind)  # refused before the store is opened
    store = call.open()
    query = Query(where=expr, order="id", ascending=True)
    artifacts = store.backend.artifacts(query) if kind is Kind.ARTIFACT else []
    executions = store.backend.executions(query) if kind is Kind.EXECUTION else []
    if not artifacts and not executions:
        print(f"no {args.start} match --where {args.where}")
        return Outcome.OK
    count = text.count(len(artifacts) + len(executions), args.start[:-1])
    if args.json:
        graph = graph_of(walk_hops_from(store, artifacts, executions, direction=args.direction, hops=args.hops))
        same = oldest_twins(store, graph.artifacts.values())
        print_json(out.graph_json(graph, start={"kind": args.start[:-1], "ids": [n.id for n in artifacts + executions],
                                                "where": args.where},
                                  direction=args.direction, hops=args.hops, same_content=out.same_json(same)))
        return Outcome.OK
    from mlmd_exercise.cli.walk_text import print_walk

    hops = walk_hops_from(store, artifacts, executions, direction=args.direction, hops=args.hops, lines=True)
    reach = "all hops" if args.hops is None else text.count(args.hops, "hop")
    title = (f"lineage of {count} (--where), upstream and downstream" if args.direction == "both"
             else f"{args.direction} lineage of {count} (--where)")
    return print_walk(store, hops, f"{title}, {reach}", legs=args.direction == "both")


# -- states -----------------------------------------------------------------------


def _states_options(parser: ArgumentParser) -> None:
    parser.add_argument("--experiment", metavar="NAME",
                        help="count only this experiment's executions (or any context's: a TFX "
                        "pipeline run, ...)")
    add_context_type(parser)
    parser.add_argument("--chart", metavar="PATH", help="also save a bar chart: .png, .svg or .pdf")


@command("states", _states_options, json=True,
         help="counts of executions by state",
         description="Count executions by MLMD state (RUNNING, COMPLETE, FAILED, ...).")
def states(args: Namespace, call: Invocation) -> Outcome:
    from mlmd_exercise.read.counts import count_by_state

    if args.chart:
        from mlmd_exercise import render

        render.output_format(args.chart, render.CHART_FORMATS)
    if args.context_type and not args.experiment:
        raise MlmdExerciseError("--context-type names the type of the --experiment context: give both")
    # By address: on SQLite the count is then one SQL query, before MLMD opens the file.
    counts = count_by_state(call.readable(), args.experiment, args.context_type)
    if args.json:
        print_json(counts)
    else:
        gone = 0
        if counts.get("RUNNING"):  # only then are those runs' processes looked at
            from mlmd_exercise.read.check import interrupted_ids

            # By address too: one SQL query where safe, else MLMD's API.
            gone = len(interrupted_ids(call.readable()))
        rows = [(state, str(n)) for state, n in counts.items()]
        lines = text.table(rows, indent="") or ["no executions"]
        if gone:
            lines.append(f"{gone} of the RUNNING were interrupted: their process is gone "
                         f"(mark them with '{PROG} abandon')")
        print("\n".join(lines))
    if args.chart:
        save_or_show_chart(counts, Path(args.chart), show=False)
    return Outcome.OK


# -- graph ------------------------------------------------------------------------

MAX_DRAWN = 2500  # nodes graphviz lays out here in seconds: 1,000 in 0.8 s, 3,000 in 23 s


def _graph_options(parser: ArgumentParser) -> None:
    add_walk(parser)
    parser.add_argument("--clusters", nargs="?", const="", default=None, metavar="TYPE",
                        help="draw each experiment as a box; or each context of TYPE (pipeline_run, "
                        "system.PipelineRun, ...); without TYPE on a store with no experiments, the "
                        "context type that groups best")
    parser.add_argument("--expand", action="store_true",
                        help="draw every execution: without it, runs of one type with the same inputs "
                        "and nothing downstream are drawn as one node (Trainer x2000)")
    parser.add_argument("--output", "-o", default="lineage.svg", metavar="PATH",
                        help="where to write the graph (default: %(default)s)")
    parser.add_argument("--max-nodes", type=positive("max nodes"), default=MAX_DRAWN, metavar="N",
                        help="refuse to draw more nodes than this, after alike runs are drawn as one "
                        "(default: %(default)s; graphviz took 23 s for 3,000 and minutes beyond; a .dot "
                        "file is written whatever its size)")


@command("graph", _graph_options,
         help="draw the lineage graph with graphviz",
         description="Draw artifacts and executions joined by their INPUT and OUTPUT events: the "
         "whole store, or the lineage of one node with --artifact or --execution. The format "
         "follows the output's extension: .svg, .png, .pdf or .dot.")
def graph(args: Namespace, call: Invocation) -> Outcome:
    from mlmd_exercise import render
    from mlmd_exercise.collapse import Group, Shape, collapse
    from mlmd_exercise.read.lineage import lineage_graph, store_parts, walk, walk_parts, with_experiments

    render.check_graph_output(args.output)  # before the store is read
    start = walk_start(args)
    store = call.open()
    dot = str(args.output).lower().endswith(".dot")
    if not dot:  # too many nodes to draw, even drawn as few as can be: said before records are read
        runs, artifact_types, edges = store_parts(store) if start is None else walk_parts(
            store, artifact_id=args.artifact, execution_id=args.walk_execution, direction=args.direction,
            hops=args.hops)
        # Shaped with no boxes: at most as many nodes as with --clusters, whose boxes keep more apart.
        shape = Shape.of(runs, artifact_types, edges)  # a walk's nodes are known once its edges are read
        _refuse_too_big(args, len(runs) + len(artifact_types) if args.expand else shape.drawn_nodes())
        del runs, artifact_types, edges, shape
    if start is None:
        drawn = lineage_graph(store)
    else:
        drawn = walk(store, artifact_id=args.artifact, execution_id=args.walk_execution,
                     direction=args.direction, hops=args.hops)
    if args.clusters is not None:
        if args.clusters:
            store.catalog.require_context_type(args.clusters)
        drawn = with_experiments(store, drawn, args.clusters or None)
    groups: List[Group] = []
    if not args.expand:
        drawn, groups = collapse(drawn)
    if not dot:
        _refuse_too_big(args, len(drawn.artifacts) + len(drawn.executions))
    path = render.render_lineage(drawn, args.output)
    artifacts = len(drawn.artifacts) + sum(len(ids) - 1 for ids in drawn.collapsed_artifacts.values())
    executions = len(drawn.executions) + sum(len(ids) - 1 for ids in drawn.collapsed.values())
    print(f"lineage graph of {text.count(artifacts, 'artifact')} and "
          f"{text.count(executions, 'execution')}: {path}")
    for group in groups:
        made = f" and their {text.count(group.outputs, 'output')}" if group.outputs else ""
        differ = f", differing in {'; '.join(group.differ)}" if group.differ else ""
        print(f"  drawn as one: {len(group.ids):,} {group.state} {group.type} executions with the "
              f"same inputs{made}{differ} (executions {text.id_ranges(group.ids)}; --expand draws each)")
    return Outcome.OK


def _refuse_too_big(args: Namespace, nodes: int) -> None:
    if nodes > args.max_nodes:
        raise MlmdExerciseError(
            f"the graph has {nodes:,} nodes{'' if args.expand else ' after alike runs are drawn as one'}: more than "
            f"graphviz draws in reasonable time (--max-nodes {args.max_nodes:,}); draw one node's lineage "
            "(--artifact ID or --execution ID, with --hops N), write a .dot file, or give a larger --max-nodes")


# -- ls ---------------------------------------------------------------------------


def _ls_options(parser: ArgumentParser) -> None:
    parser.add_argument("what", choices=["artifacts", "executions", "experiments", "contexts"])
    parser.add_argument("--type", metavar="NAME",
                        help="only this type (DataSet, Trainer, pipeline_run, ...)")
    parser.add_argument("--experiment", metavar="NAME",
                        help="only this experiment's (or any context's: a TFX pipeline run, ...)")
    add_context_type(parser)
    parser.add_argument("--state", metavar="STATE",
                        help="executions only in this state (COMPLETE, ...)")
    add_tag_filter(parser)
    parser.add_argument("--since", metavar="WHEN",
                        help="created at or after WHEN: 2026-11-26, 2026-11-26T14:00, or an age: "
                        "90m, 2h, 7d")
    parser.add_argument("--limit", type=positive("limit"), metavar="N", help="at most N")
    parser.add_argument("--where", metavar="EXPR",
                        help="only those MLMD's filter query EXPR matches, on every backend: "
                        "\"custom_properties.lr.double_value > 0.01 AND contexts_a.name = 'demo'\" "
                        "(docs/cli.md has the language)")
    parser.add_argument("--sort", metavar="KEY",
                        help="order by id, created or (executions) a param or metric; -KEY for "
                        "descending: --sort -accuracy (default: newest first)")
    parser.add_argument("--columns", metavar="A,B",
                        help="executions: the params, metrics or env.* keys to show as columns "
                        f"(default: the params and metrics the runs have, at most {side_by_side.MAX_AUTO_COLUMNS})")


@command("ls", _ls_options, json=True, dash_values=("--sort",),
         help="list artifacts, executions or experiments (all contexts), newest first",
         description="List artifacts, executions or experiments, newest first. Experiments "
         "are every context, with its type: ours, TFX's pipelines and runs, Kubeflow's; "
         "'contexts' is the same list.")
def ls(args: Namespace, call: Invocation) -> Outcome:
    from mlmd_exercise.read import nodes
    from mlmd_exercise.read.compare import BUILTIN_SORTS

    since = nodes.parse_since(args.since) if args.since else None
    if args.state and args.what != "executions":
        raise MlmdExerciseError(f"--state filters executions, not {args.what}")
    if args.tags and args.what != "executions":
        raise MlmdExerciseError(f"--tag filters executions, not {args.what}")
    if args.experiment and args.what in ("experiments", "contexts"):
        raise MlmdExerciseError("--type and --experiment filter artifacts and executions, not experiments")
    if args.columns is not None and args.what != "executions":
        raise MlmdExerciseError(f"--columns chooses the params and metrics of executions, not {args.what}")
    if args.sort and args.what != "executions" and args.sort.lstrip("-") not in BUILTIN_SORTS:
        raise MlmdExerciseError(f"{args.what} sort by id or created, not '{args.sort}'")
    if args.context_type and not args.experiment:
        raise MlmdExerciseError("--context-type names the type of the --experiment context: give both")
    if args.where is not None:  # a malformed expression is refused before the store is opened
        from mlmd_exercise.records import Kind

        nodes.parsed(args.where, {"artifacts": Kind.ARTIFACT, "executions": Kind.EXECUTION}.get(args.what, Kind.CONTEXT))
    store = call.open()
    # Sorted, the limit applies after sorting: "the 5 best", not "the best of the newest 5".
    limit = None if args.sort else args.limit
    found: Sequence[Any]
    if args.what == "artifacts":
        return _ls_artifacts(args, store, since)
    if args.what == "executions":
        return _ls_executions(args, store, since)
    # Every context, with its type; --type picks a context type.
    found = nodes.list_experiments(store, since_ms=since, limit=limit, type=args.type, where=args.where)
    found = _builtin_sorted(found, args.sort, args.limit)
    if args.json:
        print_json([out.record_json(r) for r in found])
    else:
        print("\n".join(out.format_listing(found) or [f"no {args.what}"]))
    return Outcome.OK


def _builtin_sorted(found: Sequence[Any], sort: Optional[str], limit: Optional[int]) -> Sequence[Any]:
    """Records sorted by id or created, as `--sort [-]id|created` asks, then limited."""
    if not sort:
        return found
    descending, key = sort.startswith("-"), sort.lstrip("-")
    return sorted(found, key=lambda r: (r.id if key == "id" else r.when_ms, r.id),
                  reverse=descending)[:limit]


def _sorted_ids(ids: List[int], sort: str) -> List[int]:
    """Ids newest first (`nodes.newest_first_ids`) in the order `--sort [-]id|created` asks."""
    if sort.lstrip("-") == "id":
        return sorted(ids, reverse=sort.startswith("-"))
    if sort.lstrip("-") == "created":
        return ids if sort.startswith("-") else ids[::-1]
    return ids


def _ls_artifacts(args: Namespace, store: Any, since: Optional[int]) -> Outcome:
    """`ls artifacts`: the newest N (`--limit`, unsorted) in one short query, any other listing
    streamed a page at a time. A row is its artifact's alone, so text rows are made as the pages
    are read, once, and only they are held until sorted and aligned; JSON is read a second time
    in order and printed as it is read."""
    from mlmd_exercise.read import nodes
    from mlmd_exercise.records import ArtifactRecord, Kind

    rows: Dict[int, Tuple[str, ...]] = {}

    def seen(page: List[Any]) -> None:
        rows.update((a.id, out.listing_row(a)) for a in page)

    if args.limit is not None and not args.sort:
        found = nodes.list_artifacts(store, type=args.type, experiment=args.experiment, since_ms=since,
                                     limit=args.limit, context_type=args.context_type, where=args.where)
        ids, pages = [a.id for a in found], iter([found])  # the newest N, already read
        seen(found)
    else:
        base = nodes.artifacts_query(store, type=args.type, experiment=args.experiment,
                                     context_type=args.context_type, where=args.where)
        ids = nodes.newest_first_ids(store, Kind.ARTIFACT, base, since, None if args.json else seen)
        ids = _sorted_ids(ids, args.sort or "")[:args.limit]
        pages = nodes.nodes_by_ids(store, Kind.ARTIFACT, ids)
    if args.json:
        print_json_stream(out.record_json(a) for page in pages for a in page)
        return Outcome.OK
    if not ids:
        print("no artifacts")
        return Outcome.OK
    for line in text.aligned([out.listing_header(ArtifactRecord)] + [rows[i] for i in ids], indent=""):
        print(line)
    return Outcome.OK


def _ls_executions(args: Namespace, store: Any, since: Optional[int]) -> Outcome:
    """`ls executions`: params and metrics as columns, sorted by one of them if asked.

    The newest N (`--limit`, unsorted) are one short query. Every other listing streams, a
    page of runs at a time, so that 200,000 runs list in bounded memory: the runs read once
    by id for their order, their columns (and the values sorted by), then once more in that
    order for the rows, which alone are held until they are aligned."""
    from mlmd_exercise.read import compare, nodes
    from mlmd_exercise.records import Kind

    sort = args.sort or ""
    by_value = bool(sort) and sort.lstrip("-") not in compare.BUILTIN_SORTS
    records_only = args.json and not by_value and args.columns is None  # no outputs to read
    values: Dict[int, Any] = {}  # by run: the value sorted by
    wanted = None if args.columns is None else [c.strip() for c in args.columns.split(",") if c.strip()]
    if wanted == []:
        raise MlmdExerciseError(f"--columns needs names separated by commas, not '{args.columns}'")
    keys, named = compare.RunKeys(), False

    def seen(page: List[Any]) -> None:
        nonlocal named
        for run in compare.summarize_runs(store, page):
            keys.add(run)
            named = named or bool(run.execution.label)
            if by_value:
                values[run.execution.id] = run.value(sort.lstrip("-"))

    if args.limit is not None and not sort:
        found = nodes.list_executions(store, type=args.type, experiment=args.experiment, state=args.state,
                                      since_ms=since, limit=args.limit, context_type=args.context_type,
                                      tags=tags_of(args), where=args.where)
        ids, held = [e.id for e in found], {e.id: e for e in found}
        if not records_only:
            seen(found)
    else:
        held = {}
        base = nodes.executions_query(store, type=args.type, experiment=args.experiment, state=args.state,
                                      context_type=args.context_type, tags=tags_of(args), where=args.where)
        ids = _sorted_ids(nodes.newest_first_ids(store, Kind.EXECUTION, base, since,
                                                 None if records_only else seen), sort)

    def pages(order: Sequence[int]) -> Iterator[List[Any]]:
        if held:  # the newest N, already read: not read again
            return iter([[held[i] for i in order]])
        return nodes.nodes_by_ids(store, Kind.EXECUTION, order)

    if records_only:
        print_json_stream(out.record_json(r) for page in pages(ids[:args.limit]) for r in page)
        return Outcome.OK
    hidden: List[str]
    if wanted is not None:
        columns, hidden = keys.choose(wanted), []
    else:
        every = keys.columns(first=sort.lstrip("-") if by_value else None)
        columns, hidden = every[:side_by_side.MAX_AUTO_COLUMNS], every[side_by_side.MAX_AUTO_COLUMNS:]
    if by_value:
        keys.check_sort(sort)
        ids = compare.sort_by_value(ids, [values.get(i) for i in ids], sort.startswith("-"))
    ids = ids[:args.limit]
    if args.json:
        print_json_stream(out.record_json(r) for page in pages(ids) for r in page)
        return Outcome.OK
    if not ids:
        print("no executions")
        return Outcome.OK
    rows = [side_by_side.runs_header(columns, named)]
    for page in pages(ids):
        rows += [side_by_side.run_row(run, columns, named) for run in compare.summarize_runs(store, page)]
    for line in text.aligned(rows, indent=""):
        print(line)
    for line in side_by_side.hidden_note(hidden):
        print(line)
    return Outcome.OK


# -- show -------------------------------------------------------------------------


def _show_options(parser: ArgumentParser) -> None:
    parser.add_argument("kind", choices=["artifact", "execution"])
    parser.add_argument("id", metavar="ID", help="the node's id; for an execution, or its run name: the newest "
                        "run of that name")
    parser.add_argument("--all", action="store_true",
                        help="with a run name: list every run of that name, newest first")


@command("show", _show_options, json=True,
         help="every property, event and experiment of one node",
         description="Show one artifact or execution: its properties, the events that join it "
         "to others and the experiments it belongs to.")
def show(args: Namespace, call: Invocation) -> Outcome:
    from mlmd_exercise.read import nodes

    if args.kind == "artifact" and not args.id.isdigit():
        raise MlmdExerciseError(f"an artifact is shown by its id, a whole number, not '{args.id}'")
    if args.all and (args.kind == "artifact" or args.id.isdigit()):
        raise MlmdExerciseError("--all lists every run of a name: give a run name, not an id")
    if args.id.isdigit() and int(args.id) == 0:
        raise MlmdExerciseError("id must be positive, not '0'")
    store = call.open()
    if args.id.isdigit():
        node_id = int(args.id)
    else:
        named = nodes.runs_named(store, args.id)
        if not named:
            raise NotFoundError(f"no run named '{args.id}' in {store}")
        if args.all:
            from mlmd_exercise.read.compare import summarize_runs

            if args.json:
                print_json([out.record_json(r) for r in named])
            else:
                runs = summarize_runs(store, named)
                print("\n".join(side_by_side.format_runs(runs, [])))
            return Outcome.OK
        node_id = named[0].id
    read = nodes.show_artifact if args.kind == "artifact" else nodes.show_execution
    detail = read(store, node_id)
    if args.json:
        from mlmd_exercise.environment import split_environment

        print_json({"kind": args.kind, "node": out.record_json(detail.node),
                    "events": [out.edge_json(e) for e in detail.events],
                    "experiments": list(detail.experiments),
                    "same_content": list(detail.same_content),
                    **out.reused_json(detail.reused),
                    "environment": split_environment(detail.node.properties)[1]
                    if args.kind == "execution" else {}})
    else:
        print("\n".join(out.format_detail(detail)))
    return Outcome.OK


# -- metrics ----------------------------------------------------------------------


def _metrics_options(parser: ArgumentParser) -> None:
    parser.add_argument("run", type=positive("execution id"), metavar="RUN", help="the run (execution id)")
    parser.add_argument("key", nargs="?", metavar="KEY", help="one metric (default: every metric of the run)")


@command("metrics", _metrics_options, json=True,
         help="every value a run logged for its metrics, with steps and times",
         description="Print a run's metric history: for each metric (or KEY alone), every value "
         "logged, with its step and when it was logged, in the order logged.")
def metrics(args: Namespace, call: Invocation) -> Outcome:
    from mlmd_exercise.read.history import metric_history, metric_keys

    store = call.open()
    keys = [args.key] if args.key is not None else metric_keys(store, args.run)
    found = {key: metric_history(store, args.run, key) for key in keys}
    if args.json:
        print_json({"execution": args.run, "metrics": {
            key: [{"step": p.step, "ms": p.ms, "value": p.value} for p in points] for key, points in found.items()}})
        return Outcome.OK
    if not keys:
        print(f"execution {args.run} logged no metrics")
    for key, points in found.items():
        print(f"{key}: {text.count(len(points), 'value')}")
        for p in points:
            print(f"  step {p.step:<8} {text.when(p.ms)}  {p.value!r}")
    return Outcome.OK


# -- diff -------------------------------------------------------------------------


def _diff_options(parser: ArgumentParser) -> None:
    parser.add_argument("a", type=positive("id"), metavar="A", help="the first execution (or artifact)")
    parser.add_argument("b", type=positive("id"), metavar="B", help="the second execution (or artifact)")
    parser.add_argument("--artifact", action="store_true",
                        help="A and B are artifacts, each walked upstream")


@command("diff", _diff_options, json=True,
         help="what differs between two runs, or two artifacts and all upstream of them",
         description="Compare two executions side by side: params, metrics, outputs, the "
         "inputs all the way back (content fingerprints and URIs), the params of the runs "
         "upstream, the code (git commit, command) and the environment (Python, packages, "
         "host). With --artifact, compare two artifacts (two models, say), the runs that "
         "made them and everything upstream. Says so when inputs and params are the same "
         "but the outputs differ.")
def diff(args: Namespace, call: Invocation) -> Outcome:
    from mlmd_exercise.read.diff import diff_artifacts, diff_runs

    compare = diff_artifacts if args.artifact else diff_runs
    result = compare(call.open(), args.a, args.b)
    if args.json:
        print_json(side_by_side.diff_json(result))
    else:
        print("\n".join(side_by_side.format_diff(result)))
    return Outcome.OK
