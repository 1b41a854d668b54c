"""mlmd_exercise: a local-first ML metadata tracker on Google ML Metadata (MLMD).

The public API: open a store, record datasets, executions and models, and ask
lineage questions. Everything returned is a plain record, never an MLMD proto.

    import mlmd_exercise as mx
    tracker = mx.Tracker("metadata.db")
    train = tracker.log_dataset("data/train.csv", split="train")
    with tracker.execution("Trainer", inputs={"examples": train}) as run:
        run.log_model("models/m.joblib", name="LogisticRegressionModel")
    print(mx.count_by_state(tracker.store))
"""

from .browse import (
    ExperimentRecord,
    NodeDetail,
    find_by_fingerprint,
    list_artifacts,
    list_executions,
    list_experiments,
    show_artifact,
    show_execution,
)
from .errors import MlmdExerciseError, NotFoundError, RenderError, SchemaError, StoreError
from .content import fingerprint
from .lineage import (
    count_by_state,
    execution_lineage,
    get_artifact,
    get_execution,
    lineage_graph,
    walk,
    with_experiments,
)
from .records import ArtifactRecord, ExecutionLineage, ExecutionRecord, LineageEdge, LineageGraph
from .schema import ExecutionState
from .store import Store, open_store
from .tracking import Run, Tracker
from .verify import Problem, VerifyReport, verify

__version__ = "0.1.0"

__all__ = [
    "__version__",
    # store
    "Store",
    "open_store",
    # writing
    "Tracker",
    "Run",
    "ExecutionState",
    "fingerprint",
    # reading
    "get_artifact",
    "get_execution",
    "execution_lineage",
    "walk",
    "lineage_graph",
    "with_experiments",
    "count_by_state",
    # looking around
    "list_artifacts",
    "list_executions",
    "list_experiments",
    "show_artifact",
    "show_execution",
    "find_by_fingerprint",
    "ExperimentRecord",
    "NodeDetail",
    "verify",
    "VerifyReport",
    "Problem",
    # records
    "ArtifactRecord",
    "ExecutionRecord",
    "ExecutionLineage",
    "LineageEdge",
    "LineageGraph",
    # errors
    "MlmdExerciseError",
    "StoreError",
    "SchemaError",
    "NotFoundError",
    "RenderError",
]
