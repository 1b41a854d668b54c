#!/usr/bin/env python3
"""Stress a store the way a team does: many writers at once, and writers killed mid-run.

    python scripts/stress.py writers --store STORE [--writers 8] [--runs 200]
    python scripts/stress.py kill --store STORE [--kills 50]

`writers` starts that many processes at the same moment, each recording --runs
runs through the Python API (a new input dataset, the run, a model), into one
store that none of them has opened before; then it checks that every run
landed COMPLETE with its input and output. `kill` starts a writer, SIGKILLs it
at a random moment, and checks the store after each kill: it opens, every
artifact has the event that says who made or used it, every run is COMPLETE
with its model or still RUNNING. Both print one JSON line of results and exit
1 if anything was lost or broken.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def record_runs(store: str, writer: int, runs: int, files: str, start_at: float) -> dict:
    """One writer: waits for the common start, then records `runs` runs."""
    import mlmd_exercise as mx

    time.sleep(max(0.0, start_at - time.time()))
    errors = []
    tracker = mx.Tracker(store, experiment="stress")
    done = 0
    for i in range(runs):
        data = Path(files) / f"w{writer}-r{i}.csv"
        data.write_text(f"writer {writer}, run {i}\n")
        model = Path(files) / f"w{writer}-r{i}.model"
        try:
            with tracker.execution("Trainer", inputs={"examples": tracker.dataset(data)},
                                   name=f"stress-w{writer}-r{i}") as run:
                model.write_text(f"model of writer {writer}, run {i}\n")
                run.log_model(model, name="StressModel")
            done += 1
        except Exception as e:  # counted, reported: a lost run
            errors.append(f"{type(e).__name__}: {e}")
    return {"writer": writer, "done": done, "errors": errors[:3]}


def _run_writer(args) -> dict:
    return record_runs(*args)


def check_runs(store: str, expected: int) -> dict:
    import mlmd_exercise as mx
    from mlmd_exercise.read.check import check_store
    from mlmd_exercise.records import Kind
    from mlmd_exercise.store.backend import Query

    s = mx.open_store(store)
    trainer = s.catalog.require_type(Kind.EXECUTION, "Trainer")
    executions = [e for e in s.backend.executions(Query(type_id=trainer)) if (e.label or "").startswith("stress-")]
    complete = [e for e in executions if e.state == "COMPLETE"]
    events = s.backend.events_by_executions([e.id for e in complete]) if complete else []
    with_both = {e.execution_id for e in events if e.type == "INPUT"} & {
        e.execution_id for e in events if e.type == "OUTPUT"}
    return {"expected": expected, "recorded": len(executions), "complete": len(complete),
            "complete_with_input_and_output": len(with_both), "problems": check_store(s)}


def writers(store: str, n: int, runs: int) -> dict:
    with tempfile.TemporaryDirectory() as files:
        start_at = time.time() + 1.5  # all open the new store at the same moment
        with multiprocessing.get_context("spawn").Pool(n) as pool:
            results = pool.map(_run_writer, [(store, w, runs, files, start_at) for w in range(n)])
        elapsed = time.time() - start_at
    report = check_runs(store, n * runs)
    report.update(writers=n, runs_each=runs, seconds=round(elapsed, 2),
                  runs_per_second=round(n * runs / elapsed, 1),
                  errors=[e for r in results for e in r["errors"]])
    report["ok"] = (report["complete_with_input_and_output"] == n * runs and not report["errors"]
                    and not report["problems"])
    return report


KILLED_WRITER = r"""
import sys, time
from pathlib import Path
import mlmd_exercise as mx
store, files = sys.argv[1], Path(sys.argv[2])
tracker = mx.Tracker(store, experiment="kill")
print("ready", flush=True)
i = 0
while True:
    i += 1
    tag = f"{time.time_ns()}-{i}"
    data = files / f"{tag}.csv"
    data.write_text(tag)
    with tracker.execution("Trainer", inputs={"examples": tracker.dataset(data)}) as run:
        (files / f"{tag}.model").write_text(tag)
        run.log_model(files / f"{tag}.model", name="KilledModel")
    print("committed", flush=True)
"""


def check_after_kill(store: str) -> list:
    import mlmd_exercise as mx
    from mlmd_exercise.read.check import check_store

    s = mx.open_store(store)
    problems = check_store(s)
    executions = s.backend.executions()
    events = s.backend.events_by_executions([e.id for e in executions]) if executions else []
    outputs = {e.execution_id for e in events if e.type == "OUTPUT"}
    inputs = {e.execution_id for e in events if e.type == "INPUT"}
    for e in executions:
        state = e.state
        if state not in ("COMPLETE", "RUNNING"):
            problems.append(f"execution {e.id} is {state}")
        if e.id not in inputs:
            problems.append(f"execution {e.id} ({state}) has no input")
        if state == "COMPLETE" and e.id not in outputs:
            problems.append(f"execution {e.id} is COMPLETE without its model")
    return problems


def kill(store: str, kills: int, seed: int) -> dict:
    rng = random.Random(seed)
    problems, runs_seen, committed = [], 0, 0
    with tempfile.TemporaryDirectory() as files:
        for k in range(kills):
            proc = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, store, files],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            ready = proc.stdout.readline()
            if ready.strip() != "ready":
                proc.kill()
                proc.wait()
                problems.append(f"kill {k}: writer did not start: {proc.stderr.read()[-300:]}")
                break
            # The kill lands after 0, 1 or 2 of the writer's runs have committed (it says so:
            # progress, not a time that suits a fast machine), then at a random moment of the next.
            for _ in range(rng.randint(0, 2)):
                if proc.stdout.readline().strip() != "committed":
                    break
                committed += 1
            time.sleep(rng.uniform(0.0, 0.25))
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            found = check_after_kill(store)
            problems += [f"after kill {k}: {p}" for p in found]
    import mlmd_exercise as mx

    runs_seen = sum(mx.count_by_state(mx.open_store(store)).values())
    return {"kills": kills, "runs": runs_seen, "committed_before_kills": committed, "problems": problems[:20],
            "ok": not problems}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    w = sub.add_parser("writers", help="many writers at once")
    w.add_argument("--store", required=True)
    w.add_argument("--writers", type=int, default=8)
    w.add_argument("--runs", type=int, default=200)
    k = sub.add_parser("kill", help="writers killed at random moments")
    k.add_argument("--store", required=True)
    k.add_argument("--kills", type=int, default=50)
    k.add_argument("--seed", type=int, default=int(time.time()))
    args = parser.parse_args()
    if args.what == "writers":
        report = writers(args.store, args.writers, args.runs)
    else:
        report = kill(args.store, args.kills, args.seed)
        report["seed"] = args.seed
    print(json.dumps(report))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
