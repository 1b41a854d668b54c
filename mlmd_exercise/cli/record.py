"""The commands that record runs: `run` (the demo job) and `import` (many finished runs)."""

from __future__ import annotations

import sys
import time
from argparse import ArgumentParser, Namespace
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from mlmd_exercise import text
from mlmd_exercise.cli import output as out
from mlmd_exercise.cli.command import (Invocation, Outcome, add_openlineage_url, command, positive,
                                       save_or_show_chart)
from mlmd_exercise.errors import MlmdExerciseError
from mlmd_exercise.records import BUNDLED_DATASETS, DEFAULT_EXPERIMENT

if TYPE_CHECKING:  # imported where events are sent: it imports openlineage-python
    from mlmd_exercise.integrations.openlineage import Emitter

__all__ = ["CHART_FILE", "Progress", "run", "import_runs"]

CHART_FILE = "execution_states.png"  # `run`'s chart of executions by state, in --workdir


# -- run --------------------------------------------------------------------------


def _run_options(parser: ArgumentParser) -> None:
    parser.add_argument("--workdir", default=".", metavar="DIR",
                        help="where data/, models/ and the store go, created if missing "
                        "(default: current directory)")
    parser.add_argument("--experiment", default=DEFAULT_EXPERIMENT, metavar="NAME",
                        help="the experiment the run belongs to (default: %(default)s)")
    parser.add_argument("--dataset", choices=BUNDLED_DATASETS, metavar="NAME",
                        help="train on one of scikit-learn's bundled datasets ("
                        + ", ".join(BUNDLED_DATASETS) + "), split into train and test, and "
                        "evaluate the model (default: the exercise's 10-row dataset)")
    parser.add_argument("--chart", metavar="PATH",
                        help="where to save the chart: .png, .svg or .pdf "
                        f"(default: {CHART_FILE} in --workdir)")
    parser.add_argument("--show", action="store_true",
                        help="open the chart in a window instead of saving it (needs a display)")
    add_openlineage_url(parser, "also send the runs as OpenLineage events, POSTed to URL/api/v1/lineage as they "
                        "start and end ($OPENLINEAGE_API_KEY as a bearer token; default: "
                        "$OPENLINEAGE_URL; needs openlineage-python). An endpoint that is down is a warning: "
                        "the run is recorded, and 'openlineage export' sends it later")
    parser.add_argument("--openlineage-file", metavar="FILE",
                        help="also append the runs' OpenLineage events to this JSON-lines file, one a line "
                        "(default: $MLMD_OPENLINEAGE_FILE)")


@command("run", _run_options, store_folder="workdir",
         help="run the demo job: dataset -> LogisticRegression -> model, recorded",
         description="Make the demo dataset (data/train_dataset.csv), train a scikit-learn "
         "LogisticRegression on it (models/trained_model.joblib), record the dataset, the "
         "Trainer execution, the model and their events in the store, print the lineage "
         "and save a chart of executions by state. An unchanged dataset is not recorded "
         "twice; each run's model is its own.")
def run(args: Namespace, call: Invocation) -> Outcome:
    from mlmd_exercise import render, workflow
    from mlmd_exercise.read.nodes import oldest_twins

    workdir = Path(args.workdir)
    if workdir.exists() and not workdir.is_dir():
        raise MlmdExerciseError(f"working directory '{args.workdir}' is not a folder")
    emitter = _emitter(args)  # a bad URL, or no client for it, refused before anything is done
    created = not workdir.exists()
    workdir.mkdir(parents=True, exist_ok=True)  # as the exercise makes data/ and models/
    try:
        chart = Path(args.chart) if args.chart else workdir / CHART_FILE
        render.output_format(chart, render.CHART_FORMATS)  # before any work is done
        store = call.open(create=True)
    except BaseException:
        if created:  # leave nothing behind for a run that did not start
            workdir.rmdir()
        raise
    if created:
        print(f"created working directory {args.workdir}")

    result = workflow.run_demo(store, workdir, experiment=args.experiment, dataset=args.dataset,
                               report=print, openlineage=emitter if emitter is not None else False)
    print(f"recorded in {store} (experiment '{result.experiment}'):")
    roles = [(f"{a.properties.get('split', 'data')} split", a) for a in result.datasets]
    roles += [("model", result.model)] + ([("metrics", result.metrics)] if result.metrics else [])
    same = oldest_twins(store, (a for _, a in roles))
    rows = [(role, *out.artifact_cells(a, same)) for role, a in sorted(roles, key=lambda r: r[1].id)]
    rows += [(r.execution.type.lower(), *out.execution_cells(r.execution)) for r in result.runs]
    print("\n".join(text.table(rows)))
    if result.metrics is not None:
        print("test metrics: " + ", ".join(
            f"{k} {out.number_text(v)}" for k, v in sorted(result.metrics.properties.items())
            if k not in ("fingerprint", "version")))
    print(f"executions by state: {out.format_counts(result.counts)}")
    for r in result.runs:
        print("lineage of " + "\n".join(out.format_lineage(r, same)))
    save_or_show_chart(result.counts, chart, args.show)
    if emitter is not None:
        from mlmd_exercise.masking import mask

        for target, sent in emitter.sent.items():
            if target not in emitter.failed:
                print(f"OpenLineage: {text.count(sent, 'event')} sent to {mask(target, whole=True)}")
        emitter.close()
    return Outcome.OK


def _emitter(args: Namespace) -> Optional["Emitter"]:
    """`run`'s OpenLineage emitter: to --openlineage-url and/or --openlineage-file, else to
    $OPENLINEAGE_URL and/or $MLMD_OPENLINEAGE_FILE; None where none is named."""
    import os

    url = args.openlineage_url or os.environ.get("OPENLINEAGE_URL") or None
    file = args.openlineage_file or os.environ.get("MLMD_OPENLINEAGE_FILE") or None
    if url is None and file is None:
        return None
    from mlmd_exercise.integrations.openlineage import Emitter

    if file is not None and Path(file).is_dir():
        raise MlmdExerciseError(f"OpenLineage file '{file}' is a folder")
    try:
        return Emitter(url, file)
    except MlmdExerciseError as e:
        given = "--openlineage-url" if args.openlineage_url else "$OPENLINEAGE_URL"
        raise MlmdExerciseError(f"{e} (from {given})" if url and "URL" in str(e) else str(e)) from None


# -- import -----------------------------------------------------------------------


class Progress:
    """A one-line progress count on stderr, shown only on a terminal and after a moment.

    Written here rather than taken from tqdm: its line is this one line, in the words
    of the rest of the CLI, and a dependency would cost an import for 15 lines.
    """

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

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()  # the line ended however the import ends


def _import_options(parser: ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE", nargs="?",
                        help="the runs, as JSON lines (- for standard input), or a bundle that `export` wrote")
    parser.add_argument("--from-exercise", metavar="OLD_DB",
                        help="instead, import the exercise's own SQLAlchemy database (its artifacts, "
                        "executions and events tables); importing it again records nothing twice")
    parser.add_argument("--from-mlflow", metavar="URI",
                        help="instead, import an MLflow tracking store (sqlite:///mlflow.db, a PostgreSQL "
                        "or MySQL MLflow database, or an mlruns/ folder), read-only: runs, params, tags, "
                        "metric histories, datasets, logged and registered models; importing it again "
                        "brings only new runs (needs mlflow-skinny, sqlalchemy and alembic)")
    parser.add_argument("--from-openlineage", metavar="FILE",
                        help="instead, import OpenLineage events (JSON lines, from any producer: this package's "
                        "'openlineage export', Airflow, Spark, dbt, Marquez): each run id an execution with its "
                        "datasets, START and COMPLETE/FAIL/ABORT joined; importing it again records nothing "
                        "twice (docs/openlineage.md)")
    parser.add_argument("--experiment", default=DEFAULT_EXPERIMENT, metavar="NAME",
                        help="the experiment of runs that name none (default: %(default)s)")
    parser.add_argument("--batch-size", type=positive("batch size"), default=1000, metavar="N",
                        help="runs per transaction (default: %(default)s)")


@command("import", _import_options,
         help="record many finished runs from JSON lines (imports, backfills)",
         description="Record finished runs, one JSON object a line (see docs/cli.md), a batch "
         "per transaction. Artifacts with the same \"ref\" are one artifact; versions continue "
         "those in the store. Shows progress on a terminal.")
def import_runs(args: Namespace, call: Invocation) -> Outcome:
    from mlmd_exercise.write.bulk import read_runs, record_runs
    from mlmd_exercise.write.tracking import Tracker

    if sum(given is not None for given in (args.file, args.from_exercise, args.from_mlflow,
                                           args.from_openlineage)) != 1:
        raise MlmdExerciseError("give a FILE of JSON lines, --from-exercise OLD_DB, --from-mlflow URI or "
                                "--from-openlineage FILE, one of them")
    if args.from_exercise is not None:
        return _import_exercise(args, call)
    if args.from_openlineage is not None:
        return _import_openlineage(args, call)
    if args.from_mlflow is not None:
        return _import_mlflow(args, call)
    path = Path(args.file)
    if args.file != "-" and not path.is_file():
        raise MlmdExerciseError(f"'{args.file}' does not exist" if not path.exists()
                                else f"'{args.file}' is not a file")
    if args.file != "-":
        from mlmd_exercise.bundle import is_bundle

        if is_bundle(path):  # by its header: JSON lines of runs never start with it
            from mlmd_exercise.cli.archive import import_bundle_file

            return import_bundle_file(args.file, call)
        with path.open("rb") as lines:  # every line read once before anything is written, a
            for _ in read_runs(lines, args.file):  # line at a time: a bad one is refused with the
                pass  # store as it was (not even made); stdin, read once, is checked as it is recorded
    tracker = Tracker(call.open(create=True), experiment=args.experiment)
    started = time.monotonic()
    with (sys.stdin.buffer if args.file == "-" else path.open("rb")) as lines, \
            Progress("importing") as progress:  # bytes: read_runs decodes
        result = record_runs(tracker, read_runs(lines, args.file), batch_size=args.batch_size, progress=progress)
    elapsed = time.monotonic() - started
    already = text.already_there(result.skipped)
    print(f"imported {text.count(result.recorded, 'run')} into {tracker.store} in {elapsed:.1f} s{already}")
    return Outcome.OK


def _import_exercise(args: Namespace, call: Invocation) -> Outcome:
    from mlmd_exercise.write.bulk import record_runs
    from mlmd_exercise.write.exercise import read_exercise
    from mlmd_exercise.write.tracking import Tracker

    found = read_exercise(args.from_exercise)  # before the store is opened or made
    target = call.location
    if target.path is not None and target.path.resolve() == Path(args.from_exercise).resolve():
        raise MlmdExerciseError(f"'{args.from_exercise}' is the exercise's database, not an MLMD store: "
                                "name the store to import into with --db")
    tracker = Tracker(call.open(create=True), experiment=args.experiment)
    started = time.monotonic()
    result = record_runs(tracker, found.runs, batch_size=args.batch_size)
    elapsed = time.monotonic() - started
    already = text.already_there(result.skipped)
    print(f"imported {text.count(result.recorded, 'run')} from {args.from_exercise} into {tracker.store} "
          f"in {elapsed:.1f} s{already}")
    if found.unused_artifacts:
        print(f"not imported: {text.count(found.unused_artifacts, 'artifact')} that no event joins to a run")
    if found.bad_events:
        print(f"not imported: {text.count(found.bad_events, 'event')} of another type than INPUT/OUTPUT "
              "or naming a missing artifact or execution")
    return Outcome.OK


def _import_mlflow(args: Namespace, call: Invocation) -> Outcome:
    from mlmd_exercise.integrations.mlflow_import import import_mlflow, open_mlflow
    from mlmd_exercise.masking import mask
    from mlmd_exercise.write.tracking import Tracker

    started = time.monotonic()
    with open_mlflow(args.from_mlflow) as source:  # checked and listed before the store is opened or made
        target = call.location
        for uri in (source.uri, source.client.tracking_uri):
            path = Path(uri.split(":///", 1)[1] if uri.startswith("sqlite:///") else uri)
            if target.path is not None and path.exists() and target.path.resolve() == path.resolve():
                raise MlmdExerciseError(f"'{args.from_mlflow}' is the MLflow store, not an MLMD store: "
                                        "name the store to import into with --db")
        tracker = Tracker(call.open(create=True), experiment=args.experiment)
        with Progress("importing from MLflow") as progress:
            result = import_mlflow(tracker, source, batch_size=args.batch_size, progress=progress)
    elapsed = time.monotonic() - started
    bulk = result.bulk
    already = text.already_there(bulk.skipped)
    print(f"imported {text.count(bulk.recorded, 'run')} from {mask(args.from_mlflow, whole=True)} into {tracker.store} "
          f"in {elapsed:.1f} s{already}")
    if bulk.recorded:
        mapped = [text.count(n, what) for what, n in sorted(result.mapped.items()) if n]
        print("with " + ", ".join(mapped))
    for (what, why), n in sorted(result.left_out.items()):
        print(f"left out: {text.count(n, what)} {why}")
    return Outcome.OK


def _import_openlineage(args: Namespace, call: Invocation) -> Outcome:
    from mlmd_exercise.integrations.openlineage_import import import_openlineage, read_events
    from mlmd_exercise.write.tracking import Tracker

    started = time.monotonic()
    events = read_events(args.from_openlineage)  # read whole and checked before the store is opened or made
    target = call.location
    if target.path is not None and target.path.resolve() == Path(args.from_openlineage).resolve():
        raise MlmdExerciseError(f"'{args.from_openlineage}' is the events' file, not an MLMD store: "
                                "name the store to import into with --db")
    tracker = Tracker(call.open(create=True), experiment=args.experiment)
    with Progress("importing from OpenLineage") as progress:
        result = import_openlineage(tracker, events, batch_size=args.batch_size, progress=progress)
    bulk = result.bulk
    already = text.already_there(bulk.skipped)
    print(f"imported {text.count(bulk.recorded, 'run')} from {text.count(events.events, 'event')} in "
          f"{args.from_openlineage} into {tracker.store} in {time.monotonic() - started:.1f} s{already}")
    if bulk.recorded:
        print("with " + ", ".join(text.count(n, what) for what, n in sorted(result.mapped.items()) if n))
    for (what, why), n in sorted(result.left_out.items()):
        print(f"left out: {text.count(n, what)} {why}")
    if events.bad:
        print(f"left out: {text.count(events.bad, 'line')} that {'is' if events.bad == 1 else 'are'} no run event "
              f"(the first: {events.first_bad})")
    return Outcome.OK
