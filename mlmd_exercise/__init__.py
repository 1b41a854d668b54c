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
from typing import Any

__version__ = "0.1.0"

# public name -> the module that defines it
_EXPORTS = {
    # store
    "Store": "store", "open_store": "store",
    # writing
    "Tracker": "tracking", "Run": "tracking", "Pending": "tracking",
    "ExecutionState": "schema", "fingerprint": "content",
    "record_runs": "bulk", "RunSpec": "bulk", "ArtifactSpec": "bulk",
    # reading
    "get_artifact": "lineage", "get_execution": "lineage", "execution_lineage": "lineage",
    "walk": "lineage", "lineage_graph": "lineage", "with_experiments": "lineage",
    "count_by_state": "counting",
    # looking around
    "list_artifacts": "browse", "list_executions": "browse", "list_experiments": "browse",
    "show_artifact": "browse", "show_execution": "browse", "find_by_fingerprint": "browse",
    "ExperimentRecord": "browse", "NodeDetail": "browse",
    "verify": "verify", "VerifyReport": "verify", "Problem": "verify",
    "check_store": "recovery", "stale_runs": "recovery", "abandon": "recovery",
    # comparing runs
    "summarize_runs": "compare", "RunSummary": "compare",
    "diff_runs": "diff", "diff_artifacts": "diff", "Diff": "diff",
    "find_stale": "stale", "StaleReport": "stale",
    # records
    "ArtifactRecord": "records", "ExecutionRecord": "records", "ExecutionLineage": "records",
    "LineageEdge": "records", "LineageGraph": "records",
    # errors
    "MlmdExerciseError": "errors", "StoreError": "errors", "SchemaError": "errors",
    "NotFoundError": "errors", "RenderError": "errors",
}

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
