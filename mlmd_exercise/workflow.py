"""The demo job: a small dataset -> LogisticRegression -> a saved model, all recorded.

pandas, scikit-learn and joblib are imported here, inside the functions, so that
importing the package (and every query command) does not pay for them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Union

from . import lineage, schema, tracking
from .records import ArtifactRecord, ExecutionLineage, ExecutionRecord
from .schema import ExecutionState
from .store import Store

__all__ = ["DemoResult", "DATASET_FILE", "MODEL_FILE", "MODEL_NAME", "make_dataset", "run_demo"]

DATASET_FILE = Path("data") / "train_dataset.csv"
MODEL_FILE = Path("models") / "trained_model.joblib"
MODEL_NAME = "LogisticRegressionModel"


@dataclass(frozen=True)
class DemoResult:
    """What one demo run recorded, read back from the store."""

    dataset: ArtifactRecord
    execution: ExecutionRecord
    model: ArtifactRecord
    experiment: str
    lineage: ExecutionLineage
    counts: Dict[str, int]


def make_dataset():
    """The exercise's dataset: feature1 = 0..9, feature2 = 2 * feature1, label 0, 1, 0, 1, ..."""
    import pandas as pd

    feature1 = list(range(10))
    return pd.DataFrame(
        {
            "feature1": feature1,
            "feature2": [2 * x for x in feature1],
            "label": [i % 2 for i in feature1],
        }
    )


def _train(frame, model_path: Path) -> None:
    import joblib
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression()
    model.fit(frame[["feature1", "feature2"]], frame["label"])
    joblib.dump(model, model_path)


def run_demo(
    store: Store,
    workdir: Union[str, os.PathLike] = ".",
    *,
    experiment: str = tracking.DEFAULT_EXPERIMENT,
) -> DemoResult:
    """Runs the demo job in `workdir` and records it in `store`.

    Writes `data/train_dataset.csv` and `models/trained_model.joblib` under
    `workdir`. If training fails the execution is recorded FAILED (CANCELED on
    Ctrl-C) and the exception propagates.

    Args:
        store: a store opened for writing.
        workdir: where `data/` and `models/` go.
        experiment: the name of the experiment the run belongs to.

    Returns:
        The records written, the execution's lineage and the store's counts by state.
    """
    workdir = Path(workdir)
    dataset_path, model_path = workdir / DATASET_FILE, workdir / MODEL_FILE
    dataset_path.parent.mkdir(parents=True, exist_ok=True)
    model_path.parent.mkdir(parents=True, exist_ok=True)
    schema.register_types(store.mlmd)

    frame = make_dataset()
    frame.to_csv(dataset_path, index=False)
    dataset = tracking.log_dataset(store, dataset_path, split="train")

    execution = tracking.start_execution(store, {"examples": dataset}, experiment=experiment)
    try:
        _train(frame, model_path)
    except BaseException as e:
        state = ExecutionState.CANCELED if isinstance(e, KeyboardInterrupt) else ExecutionState.FAILED
        tracking.finish_execution(store, execution.id, {}, state=state, experiment=experiment)
        raise
    [model] = tracking.finish_execution(
        store,
        execution.id,
        {"model": tracking.new_model(model_path, name=MODEL_NAME)},
        experiment=experiment,
    )
    return DemoResult(
        dataset=dataset,
        execution=lineage.get_execution(store, execution.id),
        model=model,
        experiment=experiment,
        lineage=lineage.execution_lineage(store, execution.id),
        counts=lineage.count_by_state(store),
    )
