"""MLflow tracking stores made by real MLflow, for tests/test_mlflow_import.py and the bench.

Run as a script, in a process of its own (MLflow's fluent API keeps global state, and the
tests' processes never import mlflow):

    python tests/mlflow_stores.py URI FOLDER story        the store the tests read
    python tests/mlflow_stores.py URI FOLDER sweep:N      N runs with params, step metrics, a
                                                          dataset and a registered model each
    python tests/mlflow_stores.py URI FOLDER story,sweep:100   both, in one process
    python tests/mlflow_stores.py URI FOLDER more         one run more, for a later import

It prints what it made as one JSON object (run ids by role, model ids). URI is
sqlite:////abs/mlflow.db or file:///abs/mlruns (written with MLFLOW_ALLOW_FILE_STORE=true,
which MLflow 3.13+ asks for before it writes a file store).
"""

from __future__ import annotations

import json
import os
import sys
import warnings
from pathlib import Path

ENV = {"MLFLOW_DISABLE_TELEMETRY": "true", "MLFLOW_ALLOW_FILE_STORE": "true", "GIT_PYTHON_REFRESH": "quiet"}


def _frame(n: int = 20):
    import pandas as pd

    return pd.DataFrame({"x": [float(i) for i in range(n)], "y": [i % 2 for i in range(n)]})


def _dataset(folder: Path, name: str):
    import mlflow

    df = _frame()
    csv = folder / f"{name}.csv"
    if not csv.exists():  # else only read: a later run reads the file the first ones did
        df.to_csv(csv, index=False)
    return mlflow.data.from_pandas(df, source=str(csv), name=name)


def story(uri: str, folder: Path) -> dict:
    """Two experiments: a training run that logs a dataset, a step metric and a model
    registered as `clf` (alias champion), a fine-tune of that model registered as version 2,
    a parent run with two nested runs, a FAILED and a KILLED run, a deleted run."""
    import mlflow
    from mlflow.entities import LoggedModelInput
    from sklearn.linear_model import LogisticRegression

    mlflow.set_tracking_uri(uri)
    client = mlflow.MlflowClient()
    made: dict = {}
    mlflow.set_experiment("training")
    train = _dataset(folder, "train")
    df = _frame()
    with mlflow.start_run(run_name="train") as run:
        mlflow.log_params({"C": 1.0, "solver": "lbfgs", "db_password": "hunter2"})
        mlflow.set_tags({"team": "vision", "mlflow.source.git.commit": "0123abcd"})
        for step in range(5):
            mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
        mlflow.log_metric("accuracy", 0.9)
        mlflow.log_input(train, context="training")
        model = LogisticRegression().fit(df[["x"]], df.y)
        info = mlflow.sklearn.log_model(model, name="model", registered_model_name="clf",
                                        serialization_format="cloudpickle", pip_requirements=[])
        made["train"], made["model"] = run.info.run_id, info.model_id
    client.set_registered_model_alias("clf", "champion", "1")
    with mlflow.start_run(run_name="finetune") as run:
        client.log_inputs(run.info.run_id, models=[LoggedModelInput(made["model"])])
        mlflow.log_param("C", 0.5)
        mlflow.log_metric("loss", 0.1, step=0)
        tuned = LogisticRegression(C=0.5).fit(df[["x"]], df.y)
        info = mlflow.sklearn.log_model(tuned, name="tuned", registered_model_name="clf",
                                        serialization_format="cloudpickle", pip_requirements=[])
        made["finetune"], made["tuned"] = run.info.run_id, info.model_id
    with mlflow.start_run(run_name="sweep") as parent:
        made["parent"] = parent.info.run_id
        made["children"] = []
        for c in (0.1, 10.0):
            with mlflow.start_run(run_name=f"C={c}", nested=True) as child:
                mlflow.log_param("C", c)
                mlflow.log_metric("loss", c / 100, step=0)
                mlflow.log_metric("loss", c / 200, step=1)
                mlflow.log_input(train, context="training")
                made["children"].append(child.info.run_id)
    for status in ("FAILED", "KILLED"):
        with mlflow.start_run(run_name=status.lower()) as run:
            mlflow.log_param("C", 2.0)
            made[status] = run.info.run_id
            mlflow.end_run(status=status)
    mlflow.set_experiment("other")
    with mlflow.start_run(run_name="gone") as run:
        made["deleted"] = run.info.run_id
    client.delete_run(made["deleted"])
    return made


def more(uri: str, folder: Path) -> dict:
    """One run more in the training experiment, reading the same dataset, and a version of
    `clf` registered from the story's first run (which an import has recorded already)."""
    import mlflow

    mlflow.set_tracking_uri(uri)
    client = mlflow.MlflowClient()
    experiment = mlflow.set_experiment("training")
    with mlflow.start_run(run_name="later") as run:
        mlflow.log_param("C", 3.0)
        mlflow.log_metric("loss", 0.3, step=0)
        mlflow.log_input(_dataset(folder, "train"), context="training")
    [train] = client.search_runs([experiment.experiment_id], "attributes.run_name = 'train'")
    client.create_model_version("clf", f"{train.info.artifact_uri}/again", run_id=train.info.run_id)
    return {"later": run.info.run_id}


def sweep(uri: str, folder: Path, runs: int) -> dict:
    """`runs` runs, each with 3 params, a 10-step metric, a dataset and a registered model
    version (registered from the run's artifacts, as MLflow 2 did: no model is serialized)."""
    import time

    import mlflow
    from mlflow.entities import Metric, Param

    mlflow.set_tracking_uri(uri)
    client = mlflow.MlflowClient()
    experiment = client.create_experiment("sweep")
    train = _dataset(folder, "train")
    client.create_registered_model("swept")
    ids = []
    for i in range(runs):
        run = client.create_run(experiment, run_name=f"run-{i}")
        rid = run.info.run_id
        now = int(time.time() * 1000)
        client.log_batch(rid, params=[Param("C", str(0.01 * (i + 1))), Param("seed", str(i)),
                                      Param("solver", "lbfgs")],
                         metrics=[Metric("loss", 1.0 / (s + i + 1), now + s, s) for s in range(10)])
        client.log_inputs(rid, datasets=[mlflow.entities.DatasetInput(train._to_mlflow_entity(), tags=[
            mlflow.entities.InputTag("mlflow.data.context", "training")])])
        client.create_model_version("swept", f"{run.info.artifact_uri}/model", run_id=rid)
        client.set_terminated(rid)
        ids.append(rid)
    return {"runs": ids}


def main(argv) -> None:
    os.environ.update(ENV)
    warnings.simplefilter("ignore")
    import logging

    logging.getLogger("mlflow").setLevel(logging.ERROR)
    uri, folder = argv[1], Path(argv[2])
    folder.mkdir(parents=True, exist_ok=True)
    made: dict = {}
    for part in argv[3].split(","):
        what, _, n = part.partition(":")
        made.update({"story": lambda: story(uri, folder), "more": lambda: more(uri, folder),
                     "sweep": lambda: sweep(uri, folder, int(n))}[what]())
    print(json.dumps(made))


if __name__ == "__main__":
    main(sys.argv)
