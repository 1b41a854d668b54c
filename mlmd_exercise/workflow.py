"""The demo job, written on the `Tracker` API as any user's script would be.

By default it is the exercise: a 10-row dataset -> LogisticRegression -> a saved
model. With one of scikit-learn's bundled datasets it splits train/test, trains,
and adds an Evaluator step that turns the model and the test split into a
Metrics artifact:

    DataSet(train) -> Trainer -> SavedModel -> Evaluator <- DataSet(test)
                                               Evaluator -> Metrics

pandas, scikit-learn and joblib are imported inside the functions, so that
importing the package (and every query command) does not pay for them.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Optional, Tuple, Union

from mlmd_exercise.read import lineage
from mlmd_exercise.read.counts import count_by_state
from mlmd_exercise.errors import MlmdExerciseError
from mlmd_exercise.records import BUNDLED_DATASETS, DEFAULT_EXPERIMENT, ArtifactRecord, ExecutionLineage, ExecutionRecord
from mlmd_exercise.store import Store
from mlmd_exercise.write.artifacts import Pending
from mlmd_exercise.write.run import Run
from mlmd_exercise.write.tracking import OpenLineage, Tracker

__all__ = [
    "DATASET_FILE", "MODEL_FILE", "MODEL_NAME", "SEED",
    "DemoResult", "make_dataset", "load_bundled", "run_demo",
]

DATASET_FILE = Path("data") / "train_dataset.csv"
MODEL_FILE = Path("models") / "trained_model.joblib"
MODEL_NAME = "LogisticRegressionModel"
SEED = 0  # the train/test split is the same on every run
PARAMS = {"C": 1.0, "max_iter": 1000}


@dataclass(frozen=True)
class DemoResult:
    """What one demo run recorded, read back from the store."""

    experiment: str
    datasets: Tuple[ArtifactRecord, ...]  # the train split, then the test split if any
    model: ArtifactRecord
    metrics: Optional[ArtifactRecord]  # the Evaluator's output, with a test split
    runs: Tuple[ExecutionLineage, ...]  # the Trainer, then the Evaluator if any
    counts: Dict[str, int]

    @property
    def trainer(self) -> ExecutionRecord:
        return self.runs[0].execution


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


def load_bundled(name: str):
    """One of scikit-learn's bundled datasets as a frame of features plus `label`.

    Raises:
        MlmdExerciseError: `name` is not one of BUNDLED_DATASETS.
    """
    if name not in BUNDLED_DATASETS:
        raise MlmdExerciseError(
            f"unknown dataset '{name}': use one of {', '.join(BUNDLED_DATASETS)}"
        )
    from sklearn import datasets

    frame = getattr(datasets, f"load_{name}")(as_frame=True).frame
    return frame.rename(columns={"target": "label"})


def _model(scaled: bool):
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(**PARAMS)
    if not scaled:
        return model
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), model)


def _train(frame, model_path: Path, scaled: bool) -> float:
    """Fits the model, saves it with joblib and returns its training accuracy."""
    import joblib

    features, labels = frame.drop(columns="label"), frame["label"]
    model = _model(scaled).fit(features, labels)
    joblib.dump(model, model_path)
    return float(model.score(features, labels))


def _evaluate(model_path: Path, test, metrics_path: Path) -> Dict[str, float]:
    import joblib
    from sklearn.metrics import accuracy_score, f1_score

    model = joblib.load(model_path)
    features, labels = test.drop(columns="label"), test["label"]
    predicted = model.predict(features)
    metrics = {
        "accuracy": float(accuracy_score(labels, predicted)),
        "f1_macro": float(f1_score(labels, predicted, average="macro")),
        "n_examples": int(len(test)),
    }
    metrics_path.write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    return metrics


def _artifact_text(role: str, artifact: ArtifactRecord) -> str:
    return f"{role} = artifact {artifact.id} ({artifact.type_version})"


def _started(run: Run, report: Callable[[str], None]) -> None:
    inputs = ", ".join(_artifact_text(r, a) for r, a in sorted(run.inputs.items()))
    report(f"execution {run.id} ({run.type}) started: RUNNING, reading {inputs}")


def _finished(run: Run, report: Callable[[str], None]) -> None:
    outputs = ", ".join(_artifact_text(r, a) for r, a in run.outputs.items())
    report(f"execution {run.id} ({run.type}) now COMPLETE, wrote {outputs}")


def run_demo(
    store: Store,
    workdir: Union[str, os.PathLike] = ".",
    *,
    experiment: str = DEFAULT_EXPERIMENT,
    dataset: Optional[str] = None,
    report: Callable[[str], None] = lambda step: None,
    openlineage: OpenLineage = None,
) -> DemoResult:
    """Runs the demo job in `workdir` and records it in `store`.

    Writes the dataset under `data/`, the model under `models/` and, with a
    bundled dataset, the metrics under `metrics/`. A step that raises is
    recorded FAILED (CANCELED on Ctrl-C) and the exception propagates.

    Args:
        store: a store opened for writing.
        workdir: where `data/`, `models/` and `metrics/` go.
        experiment: the name of the experiment the runs belong to.
        dataset: None for the exercise's 10 rows, or one of BUNDLED_DATASETS.
        report: called with a line as each step happens (the CLI prints them):
            the data written, each execution RUNNING with its inputs, the
            model saved, each execution COMPLETE with its outputs.
        openlineage: where the runs are also sent as OpenLineage events (see `Tracker`).

    Returns:
        The records written, each execution's lineage and the store's counts by state.
    """
    frame = load_bundled(dataset) if dataset else make_dataset()  # unknown names fail first
    tracker = Tracker(store, experiment=experiment, openlineage=openlineage)  # then a store we cannot use
    workdir = Path(workdir)
    for sub in ("data", "models", "metrics") if dataset else ("data", "models"):
        (workdir / sub).mkdir(parents=True, exist_ok=True)

    if dataset:
        from sklearn.model_selection import train_test_split

        train, test = train_test_split(frame, test_size=0.25, random_state=SEED,
                                       stratify=frame["label"])
        paths = [workdir / "data" / f"{dataset}_{split}.csv" for split in ("train", "test")]
        model_path = workdir / "models" / f"{dataset}_model.joblib"
    else:
        train, test = frame, None
        paths, model_path = [workdir / DATASET_FILE], workdir / MODEL_FILE
    splits = [train] if test is None else [train, test]
    for part, path in zip(splits, paths):
        part.to_csv(path, index=False)
        report(f"wrote {path} ({len(part)} rows)")
    # Each split is recorded with the run that first reads it, in one transaction.
    train_data = tracker.dataset(paths[0], split="train")
    with tracker.execution("Trainer", inputs={"examples": train_data}, params=PARAMS) as trainer:
        _started(trainer, report)
        accuracy = _train(train, model_path, scaled=dataset is not None)
        report(f"trained LogisticRegression (train accuracy {accuracy:.3f}), "
               f"saved {model_path}")
        trainer.log_metrics({"train_accuracy": accuracy})
        trainer.log_model(model_path, name=MODEL_NAME)
    _finished(trainer, report)
    model = trainer.outputs["model"]
    runs = [trainer]

    metrics = None
    if test is not None:
        metrics_path = workdir / "metrics" / f"{dataset}_metrics.json"
        inputs: Dict[str, Union[ArtifactRecord, Pending]] = {
            "model": model, "examples": tracker.dataset(paths[1], split="test")}
        with tracker.execution("Evaluator", inputs=inputs) as evaluator:
            _started(evaluator, report)
            values = _evaluate(model_path, test, metrics_path)
            report(f"evaluated the model on the test split, saved {metrics_path}")
            evaluator.log_metrics(values)  # the run's, with a copy on its Metrics output
            evaluator.log_output("metrics", metrics_path, type="Metrics")
        _finished(evaluator, report)
        metrics = evaluator.outputs["metrics"]
        runs.append(evaluator)

    # Read each run back once; the splits are the stored artifacts its "examples" were.
    recorded = tuple(lineage.execution_lineage(store, run.id) for run in runs)
    return DemoResult(
        experiment=experiment,
        datasets=tuple(a for one in recorded for role, a in one.inputs if role == "examples"),
        model=model,
        metrics=metrics,
        runs=recorded,
        counts=count_by_state(store),
    )
