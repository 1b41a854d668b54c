"""mlmd_exercise: a local-first ML metadata tracker on Google ML Metadata (MLMD).

The public API: open a store, record datasets, executions and models, and ask
lineage questions. Everything returned is a plain record, never an MLMD proto.

    import mlmd_exercise as mx
    store = mx.open_store("metadata.db", create=True)
    print(mx.count_by_state(store))
"""

from .errors import MlmdExerciseError, NotFoundError, RenderError, SchemaError, StoreError
from .lineage import count_by_state, execution_lineage, get_execution, lineage_graph
from .records import ArtifactRecord, ExecutionLineage, ExecutionRecord, LineageEdge, LineageGraph
from .schema import ExecutionState
from .store import Store, open_store
from .tracking import NewArtifact, finish_execution, log_dataset, new_model, start_execution

__version__ = "0.1.0"

__all__ = [
    "__version__",
    # store
    "Store",
    "open_store",
    # writing
    "log_dataset",
    "new_model",
    "NewArtifact",
    "start_execution",
    "finish_execution",
    "ExecutionState",
    # reading
    "get_execution",
    "execution_lineage",
    "lineage_graph",
    "count_by_state",
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
