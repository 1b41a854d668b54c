"""Bulk recording writes the very rows it always wrote: the native backend's tables after
`record_runs` of varied runs (params of every kind, custom properties, experiments, metric
histories, artifacts reused as inputs, versions of one URI, fingerprints, a second import that
skips what is recorded) hold, row for row and ids included, what they held when this test was
written. A change that makes bulk recording faster must leave this digest as it is; one that
means to change the rows says so by changing it (with `python tests/test_bulk_rows.py`)."""

from __future__ import annotations

import hashlib
import itertools
import json
import sqlite3
import sys
import uuid
from pathlib import Path
from typing import Dict, Iterator, List, Tuple

import pytest

import mlmd_exercise as mx
from mlmd_exercise.history import Point
from mlmd_exercise.store import choice
from mlmd_exercise.write.bulk import ArtifactSpec, RunSpec, record_runs

# Set by the clock, not by the runs.
CLOCK = {"create_time_since_epoch", "last_update_time_since_epoch", "milliseconds_since_epoch"}
ROWS = {"Artifact": 470, "ArtifactProperty": 1875, "Association": 408, "Attribution": 470, "Context": 74,
        "ContextProperty": 420, "Event": 1180, "EventPath": 1180, "Execution": 408, "ExecutionProperty": 4746,
        "MLMDEnv": 1, "ParentContext": 0, "ParentType": 0, "Type": 18, "TypeProperty": 15, "sqlite_sequence": 7}
DIGEST = "82dac8739283b495e7309b5bd6ea45e153018ebf3b60db16223e832443cecc16"


def runs(n: int = 400) -> Iterator[RunSpec]:
    shared = ArtifactSpec("file:///d/shared.csv", properties={"split": "train"}, fingerprint="sha256:" + "a" * 64)
    previous = None
    for i in range(n):
        inputs = {"examples": shared if i % 3 else ArtifactSpec(f"file:///d/{i % 7}.csv", created_ms=1000 + i)}
        if previous is not None and i % 5:
            inputs["model"] = previous  # the previous run's output: one artifact
        model = ArtifactSpec(f"file:///m/{i % 50}.joblib", type="SavedModel",  # versions of 50 URIs
                             properties={"name": "M", "n": i, "f": 0.5},
                             fingerprint=("sha256:%064x" % i) if i % 4 == 0 else "")
        outputs = {"model": model}
        if i % 11 == 0:
            outputs["report"] = ArtifactSpec(f"file:///r/{i}.html", type="Report" if i % 2 else "Dataset")
        metrics = {"loss": [Point(step=s, value=1.0 / (s + 1), ms=5000 + s) for s in range(3)]} if i % 6 == 0 else {}
        yield RunSpec(type="Trainer" if i % 9 else "Evaluator", inputs=inputs, outputs=outputs,
                      state="COMPLETE" if i % 13 else "FAILED",
                      params={"C": 1.0, "k": i, "s": f"v{i}", "b": bool(i % 2), "big": 2 ** 40, "huge": 2 ** 60,
                              "d": {"a": [1, 2]}, "neg": -0.0, "text": "é\u4e2d"},
                      experiment=None if i % 4 else f"exp-{i % 3}", name=None if i % 8 == 0 else f"run-{i}",
                      started_ms=10 ** 12 + i if i % 2 else None, ended_ms=10 ** 12 + 2 * i if i % 2 else None,
                      custom={"tag.x": "y", "nan": float("nan"), "inf": float("inf")} if i % 10 == 0 else {},
                      metrics=metrics)
        previous = model


def tables(path: Path) -> Dict[str, Tuple[List[str], List[List[str]]]]:
    """Every table's columns (less the clock's) and rows, in rowid order, each value as its repr."""
    con = sqlite3.connect(path)
    try:
        found = {}
        for (table,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"):
            columns = [r[1] for r in con.execute(f"PRAGMA table_info({table})") if r[1] not in CLOCK]
            rows = con.execute(f"SELECT {', '.join(columns)} FROM {table} ORDER BY rowid").fetchall()
            found[table] = (columns, [[repr(v) for v in row] for row in rows])
        return found
    finally:
        con.close()


def recorded(path: Path) -> Dict[str, Tuple[List[str], List[List[str]]]]:
    """The tables after two imports of `runs` (the second one again in part: named runs skipped),
    unnamed runs named by a counter rather than at random."""
    names = itertools.count()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(choice.ENV_BACKEND, "native")
        patch.setattr(uuid, "uuid4", lambda: uuid.UUID(int=next(names)))
        tracker = mx.Tracker(str(path), experiment="default")
        try:
            record_runs(tracker, runs(), batch_size=70)
            record_runs(tracker, list(runs())[:60], batch_size=70)
        finally:
            tracker.store.close()
    return tables(path)


def digest(found: Dict[str, Tuple[List[str], List[List[str]]]]) -> str:
    return hashlib.sha256(json.dumps(found, sort_keys=True).encode()).hexdigest()


def test_bulk_rows_are_the_same(tmp_path: Path) -> None:
    found = recorded(tmp_path / "bulk.db")
    assert {table: len(rows) for table, (_, rows) in found.items()} == ROWS
    assert digest(found) == DIGEST


if __name__ == "__main__":  # prints ROWS and DIGEST of what the code writes now
    import tempfile

    with tempfile.TemporaryDirectory() as where:
        now = recorded(Path(where) / "bulk.db")
    print({table: len(rows) for table, (_, rows) in now.items()}, digest(now), file=sys.stderr)
