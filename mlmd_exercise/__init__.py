"""mlmd_exercise: a local-first ML metadata tracker on Google ML Metadata (MLMD).

The public API: open a store, record datasets, executions and models, and ask
lineage questions. Everything returned is a plain record, never an MLMD proto.

    import mlmd_exercise as mx
    tracker = mx.Tracker("metadata.db")
    train = tracker.dataset("data/train.csv", split="train")
    with tracker.execution("Trainer", inputs={"examples": train}) as run:
        run.log_model("models/m.joblib", name="LogisticRegressionModel")
    print(mx.count_by_state(tracker.store))

Names are imported from their modules on first use (PEP 562), so that a query
command pays only for the modules it needs: start-up time is part of the product.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from mlmd_exercise.version import __version__

# public name -> the module that defines it
_EXPORTS = {
    # store
    "Store": "store", "open_store": "store",
    # writing
    "Tracker": "write.tracking", "Run": "write.run", "Pending": "write.artifacts",
    "ExecutionState": "records", "fingerprint": "content",
    "record_runs": "write.bulk", "RunSpec": "write.bulk", "ArtifactSpec": "write.bulk",
    # recording a library's work with no tracking code (imports scikit-learn when called for)
    "autolog": "integrations.sklearn",
    # runs sent as OpenLineage events (imports openlineage-python when events are made)
    "OpenLineageEmitter": "integrations.openlineage",
    # reading
    "get_artifact": "read.lineage", "get_execution": "read.lineage", "execution_lineage": "read.lineage",
    "walk": "read.lineage", "lineage_graph": "read.lineage", "with_experiments": "read.lineage",
    "count_by_state": "read.counts", "metric_history": "read.history", "Point": "history",
    "MetricHistory": "history",
    # in a notebook: records show themselves (_repr_html_); the lineage drawn in the cell
    "show_lineage": "notebook", "LineageView": "notebook",
    # looking around
    "list_artifacts": "read.nodes", "list_executions": "read.nodes", "list_experiments": "read.nodes",
    "show_artifact": "read.nodes", "show_execution": "read.nodes", "find_by_fingerprint": "read.nodes",
    "ExperimentRecord": "read.nodes", "NodeDetail": "read.nodes",
    "verify": "read.verify", "VerifyReport": "read.verify", "Problem": "read.verify",
    "check_store": "read.check", "stale_runs": "read.check", "abandon": "write.abandon",
    # comparing runs
    "summarize_runs": "read.compare", "RunSummary": "read.compare",
    "diff_runs": "read.diff", "diff_artifacts": "read.diff", "Diff": "read.diff",
    "find_stale": "read.stale", "StaleReport": "read.stale",
    # records
    "ArtifactRecord": "records", "ExecutionRecord": "records", "ExecutionLineage": "records",
    "LineageEdge": "records", "LineageGraph": "records",
    # errors
    "MlmdExerciseError": "errors", "StoreError": "errors", "SchemaError": "errors",
    "NotFoundError": "errors", "RenderError": "errors", "UsageError": "errors",
}

if TYPE_CHECKING:  # the same names, as real imports, for editors and type checkers
    from mlmd_exercise.store import Store, open_store
    from mlmd_exercise.write.tracking import Tracker
    from mlmd_exercise.write.run import Run
    from mlmd_exercise.write.artifacts import Pending
    from mlmd_exercise.records import ExecutionState
    from mlmd_exercise.content import fingerprint
    from mlmd_exercise.write.bulk import record_runs, RunSpec, ArtifactSpec
    from mlmd_exercise.integrations.sklearn import autolog
    from mlmd_exercise.integrations.openlineage import OpenLineageEmitter
    from mlmd_exercise.read.lineage import get_artifact, get_execution, execution_lineage, walk, lineage_graph, with_experiments
    from mlmd_exercise.read.counts import count_by_state
    from mlmd_exercise.read.history import metric_history
    from mlmd_exercise.history import Point, MetricHistory
    from mlmd_exercise.notebook import show_lineage, LineageView
    from mlmd_exercise.read.nodes import list_artifacts, list_executions, list_experiments, show_artifact, show_execution, find_by_fingerprint, ExperimentRecord, NodeDetail
    from mlmd_exercise.read.verify import verify, VerifyReport, Problem
    from mlmd_exercise.read.check import check_store, stale_runs
    from mlmd_exercise.write.abandon import abandon
    from mlmd_exercise.read.compare import summarize_runs, RunSummary
    from mlmd_exercise.read.diff import diff_runs, diff_artifacts, Diff
    from mlmd_exercise.read.stale import find_stale, StaleReport
    from mlmd_exercise.records import ArtifactRecord, ExecutionRecord, ExecutionLineage, LineageEdge, LineageGraph
    from mlmd_exercise.errors import MlmdExerciseError, StoreError, SchemaError, NotFoundError, RenderError, UsageError

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'mlmd_exercise' has no attribute '{name}'")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__():
    return sorted(__all__)
