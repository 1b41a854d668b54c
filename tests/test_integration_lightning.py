"""`MlmdLogger` (integrations/lightning.py): real Lightning fits on the CPU build of torch,
recorded into a real SQLite store; the explorer's run page draws the loss curve.

torch and Lightning are the `test-lightning` extra: without them (Python 3.13, where no torch
build lies on this machine's disk) these tests are skipped. Importing them takes seconds, so
one fit (module-scoped) serves most tests.
"""

from __future__ import annotations

import csv
import io
import logging
import logging.handlers
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch", reason="torch is not installed (pip install -e '.[test-lightning]')")
L = pytest.importorskip("lightning", reason="lightning is not installed (pip install -e '.[test-lightning]')")

import numpy as np  # noqa: E402
from lightning.pytorch.callbacks import ModelCheckpoint  # noqa: E402
from lightning.pytorch.loggers import CSVLogger  # noqa: E402

import mlmd_exercise as mx  # noqa: E402
from mlmd_exercise.integrations.lightning import MlmdLogger, datamodule_files  # noqa: E402

ROWS, BATCH, EPOCHS = 64, 16, 3
STEPS = ROWS // BATCH * EPOCHS


def write_csv(path: Path) -> Path:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(ROWS, 3))
    np.savetxt(path, np.c_[x, x @ [1.0, -2.0, 0.5]], delimiter=",", header="a,b,c,y", comments="")
    return path


class CsvData(L.LightningDataModule):
    """Reads its rows from the CSV file it names (`path`, a file: the run's input)."""

    def __init__(self, path: Path, batch_size: int = BATCH) -> None:
        super().__init__()
        self.save_hyperparameters("batch_size")
        self.path, self.batch_size, self.note = path, batch_size, "not a file"

    def setup(self, stage: str) -> None:
        rows = np.loadtxt(self.path, delimiter=",", skiprows=1, dtype=np.float32)
        self.data = torch.utils.data.TensorDataset(torch.from_numpy(rows[:, :3]), torch.from_numpy(rows[:, 3:]))

    def train_dataloader(self):
        return torch.utils.data.DataLoader(self.data, batch_size=self.batch_size)

    def val_dataloader(self):
        return torch.utils.data.DataLoader(self.data, batch_size=ROWS)


class Regressor(L.LightningModule):
    def __init__(self, lr: float = 0.05, optimizer: dict = None, fail_at: int = -1, interrupt: bool = False) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.layer = torch.nn.Linear(3, 1)

    def training_step(self, batch, batch_idx):
        if batch_idx == self.hparams.fail_at:
            raise KeyboardInterrupt() if self.hparams.interrupt else RuntimeError("the model's own failure")
        x, y = batch
        loss = torch.nn.functional.mse_loss(self.layer(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", torch.nn.functional.mse_loss(self.layer(x), y))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)


def trainer(tmp_path: Path, logger, epochs: int = EPOCHS, **kw):
    return L.Trainer(max_epochs=epochs, accelerator="cpu", logger=logger, default_root_dir=tmp_path,
                     log_every_n_steps=1, enable_progress_bar=False, enable_model_summary=False,
                     num_sanity_val_steps=0, **kw)


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """One logger, two fits and a validate: the first fit (3 epochs) beside Lightning's own
    CSVLogger, keeping its 2 best checkpoints and the last; a second fit of 1 epoch."""
    tmp = tmp_path_factory.mktemp("lightning")
    said = logging.handlers.BufferingHandler(1000)  # what the logger says of its own failures
    logging.getLogger("mlmd_exercise.integrations.lightning").addHandler(said)
    data = CsvData(write_csv(tmp / "data.csv"))
    logger = MlmdLogger(tmp / "metadata.db", experiment="regression", tags={"team": "vision"})
    checkpoints = ModelCheckpoint(monitor="train_loss", save_top_k=2, save_last=True)
    L.seed_everything(0, verbose=False)
    first = trainer(tmp, [logger, CSVLogger(tmp / "csv")], callbacks=[checkpoints])
    first.fit(Regressor(lr=0.05, optimizer={"name": "sgd", "nesterov": False}), datamodule=data)
    csv_log = Path(first.loggers[1].log_dir) / "metrics.csv"
    second = trainer(tmp, logger, epochs=1)
    model = Regressor(lr=0.01)
    second.fit(model, datamodule=data)
    [validated] = second.validate(model, datamodule=data)
    logging.getLogger("mlmd_exercise.integrations.lightning").removeHandler(said)
    store = logger.experiment.store  # the logger's own: one store object per file in a process
    return {"tmp": tmp, "store": store, "logger": logger, "checkpoints": checkpoints, "csv": csv_log,
            "runs": sorted(mx.list_executions(store), key=lambda e: e.id), "validated": validated,
            "said": [r.getMessage() for r in said.buffer if r.levelno >= logging.WARNING]}


def test_a_fit_is_a_complete_run_with_its_hparams_and_tags(fitted):
    assert fitted["said"] == []  # no part of the recording failed
    first = fitted["runs"][0]
    assert first.type == "Regressor" and first.state == "COMPLETE"
    props = first.properties
    assert props["lr"] == 0.05 and props["fail_at"] == -1 and props["interrupt"] is False
    assert props["optimizer/name"] == "sgd" and props["optimizer/nesterov"] is False  # flattened
    assert props["batch_size"] == BATCH  # the datamodule's hparams too
    assert props["tag.team"] == "vision"
    assert mx.list_experiments(fitted["store"])[0].name == "regression"


def test_every_logged_step_of_the_loss_is_a_point_and_the_summary_is_the_last(fitted):
    first = fitted["runs"][0]
    with open(fitted["csv"]) as f:  # what Lightning logged, as its own CSVLogger wrote it
        logged = [(int(row["step"]), float(row["train_loss"])) for row in csv.DictReader(f) if row["train_loss"]]
    points = mx.metric_history(fitted["store"], first.id, "train_loss")
    assert len(logged) == STEPS and [p.step for p in points] == [s for s, _ in logged]
    assert [p.value for p in points] == pytest.approx([v for _, v in logged], rel=1e-6)
    # The summary is the last point (ml-metadata 1.17 writes a double as %f text: 6 decimals).
    assert first.properties["train_loss"] == pytest.approx(points[-1].value, abs=1e-6)
    assert first.properties["train_loss"] != pytest.approx(points[-2].value, abs=1e-6)
    val = mx.metric_history(fitted["store"], first.id, "val_loss")
    assert [p.step for p in val] == [ROWS // BATCH * (e + 1) - 1 for e in range(EPOCHS)]  # each epoch's end


def test_the_checkpoints_kept_are_saved_model_outputs_and_a_deleted_one_is_not(fitted):
    first, callback = fitted["runs"][0], fitted["checkpoints"]
    outputs = dict(mx.execution_lineage(fitted["store"], first.id).outputs)
    on_disk = sorted(Path(callback.dirpath).glob("*.ckpt"))
    assert len([p for p in on_disk if p.name.startswith("epoch=")]) == 2  # of 3 saved: one was deleted
    assert sorted(a.uri for a in outputs.values()) == sorted(p.as_uri() for p in on_disk)
    assert all(a.type == "SavedModel" and a.properties["name"] == "Regressor" for a in outputs.values())
    assert outputs["model"].uri == Path(callback.best_model_path).as_uri()
    assert outputs["last"].uri == Path(callback.last_model_path).as_uri()
    [other] = set(outputs) - {"model", "last"}
    assert other.startswith("checkpoint:epoch=")
    summary = mx.summarize_runs(fitted["store"], [first])[0]  # a checkpoint brings no metric of its own
    assert sorted(summary.metrics) == ["epoch", "train_loss", "val_loss"]
    assert mx.verify(fitted["store"]).ok  # each recorded file is there with its fingerprint


def test_the_datamodules_csv_is_an_input_and_upstream_of_the_checkpoint(fitted):
    first = fitted["runs"][0]
    data = (fitted["tmp"] / "data.csv").as_uri()
    lineage = mx.execution_lineage(fitted["store"], first.id)
    assert [(role, a.type, a.uri) for role, a in lineage.inputs] == [("path", "DataSet", data)]
    model = dict(lineage.outputs)["model"]
    upstream = mx.walk(fitted["store"], artifact_id=model.id, direction="upstream")
    assert data in {a.uri for a in upstream.artifacts.values()} and first.id in upstream.executions


def test_two_fits_are_two_runs_and_a_validate_adds_to_the_last(fitted):
    first, second = fitted["runs"]  # validate started no third run
    assert second.type == "Regressor" and second.state == "COMPLETE" and second.properties["lr"] == 0.01
    assert len(mx.metric_history(fitted["store"], first.id, "train_loss")) == STEPS
    assert len(mx.metric_history(fitted["store"], second.id, "train_loss")) == ROWS // BATCH
    val = mx.metric_history(fitted["store"], second.id, "val_loss")
    assert len(val) == 2 and val[-1].value == pytest.approx(fitted["validated"]["val_loss"])
    assert fitted["logger"].runs[0].id == first.id and fitted["logger"].run.id == second.id


def test_the_explorer_run_page_draws_the_loss_curve(fitted):
    from mlmd_exercise.web import server

    first = fitted["runs"][0]
    app = server.make_app(fitted["store"])
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": f"/execution/{first.id}", "QUERY_STRING": "",
               "SERVER_NAME": "t", "SERVER_PORT": "0", "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO()}
    status = []
    body = b"".join(app(environ, lambda s, h, *a: status.append(s))).decode()
    assert status == ["200 OK"]
    chart = body.split('<svg class="curve"')[1:]
    loss = [c.split("</svg>")[0] for c in chart if 'aria-label="train_loss"' in c]
    assert len(loss) == 1
    [line] = re.findall(r'<polyline [^>]*points="([^"]*)"', loss[0])
    assert len(line.split()) == STEPS  # one vertex per logged step


def test_a_failing_training_step_gives_a_failed_run_without_outputs(tmp_path):
    logger = MlmdLogger(tmp_path / "metadata.db")
    with pytest.raises(RuntimeError, match="the model's own failure"):
        trainer(tmp_path, logger).fit(Regressor(fail_at=2), datamodule=CsvData(write_csv(tmp_path / "data.csv")))
    store = logger.experiment.store
    [run] = mx.list_executions(store)
    assert run.state == "FAILED" and run.properties["error_type"] == "RuntimeError"
    assert "the model's own failure" in run.properties["error_message"]
    assert len(mx.metric_history(store, run.id, "train_loss")) == 2  # the steps before it
    assert mx.execution_lineage(store, run.id).outputs == ()


def test_a_keyboard_interrupt_gives_a_canceled_run(tmp_path):
    logger = MlmdLogger(tmp_path / "metadata.db")
    before = signal.getsignal(signal.SIGINT)
    try:  # Lightning finalizes its loggers with "failed", ignores Ctrl-C from then on and exits
        with pytest.raises(SystemExit):
            trainer(tmp_path, logger).fit(Regressor(fail_at=1, interrupt=True),
                                          datamodule=CsvData(write_csv(tmp_path / "data.csv")))
    finally:
        signal.signal(signal.SIGINT, before)
    [run] = mx.list_executions(logger.experiment.store)
    assert run.state == "CANCELED" and run.properties["error_type"] == "KeyboardInterrupt"


def test_datamodule_files_are_its_public_attributes_naming_files(tmp_path):
    a, b = write_csv(tmp_path / "a.csv"), write_csv(tmp_path / "b.csv")
    data = CsvData(a)
    data.splits = [str(b), tmp_path / "missing.csv"]
    data._private = a
    data.folder = tmp_path
    assert datamodule_files(data) == {"path": str(a), "splits[0]": str(b)}


@pytest.mark.parametrize("given, named", [
    ({"store": 3}, "store must be a store's address"),
    ({"experiment": ""}, "experiment must be a non-empty string"),
    ({"name": 5}, "name must be a non-empty string or None"),
    ({"tags": {"team": 1}}, "tags must be a dict of text -> text"),
    ({"flush_every": 0}, "flush_every must be a whole number"),
    ({"log_checkpoints": "yes"}, "log_checkpoints must be True or False"),
])
def test_a_bad_argument_is_refused_naming_it(tmp_path, given, named):
    kw = {"store": tmp_path / "metadata.db", **given}
    with pytest.raises(mx.MlmdExerciseError, match=re.escape(f"MlmdLogger: {named}")):
        MlmdLogger(**kw)
    assert not (tmp_path / "metadata.db").exists()  # refused before the store is opened


def test_the_package_imports_neither_torch_nor_lightning():
    code = ("import sys, mlmd_exercise as mx, mlmd_exercise.integrations; mx.Tracker; mx.metric_history; "
            "print(sorted(m for m in ('torch', 'lightning') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stderr


def test_the_docs_example_records_its_fit(tmp_path, monkeypatch):
    import runpy

    page = (Path(__file__).resolve().parent.parent / "docs" / "python.md").read_text()
    section = page.split("## PyTorch Lightning\n", 1)[1]
    script = tmp_path / "train.py"
    script.write_text(section.split("```python\n", 1)[1].split("```", 1)[0])
    monkeypatch.chdir(tmp_path)
    done = runpy.run_path(str(script), run_name="__main__")
    store = done["trainer"].logger.experiment.store
    [run] = mx.list_executions(store)
    assert (run.type, run.state, run.properties["lr"]) == ("Regressor", "COMPLETE", 0.05)
    assert [p.step for p in mx.metric_history(store, run.id, "train_loss")] == list(range(12))
    lineage = mx.execution_lineage(store, run.id)
    assert [(role, a.uri) for role, a in lineage.inputs] == [("path", (tmp_path / "data.csv").as_uri())]
    [(role, model)] = lineage.outputs
    assert role == "model" and model.id == 2 and Path(done["trainer"].checkpoint_callback.best_model_path).is_file()


class LogsAReservedName(Regressor):
    def training_step(self, batch, batch_idx):
        self.log("state", 1.0)  # a name the package records itself: refused, the rest recorded
        return super().training_step(batch, batch_idx)


def test_without_autologged_hparams_the_run_starts_at_the_first_metrics_and_a_refused_one_is_a_warning(
        tmp_path, caplog):
    logger = MlmdLogger(tmp_path / "metadata.db")
    data = CsvData(write_csv(tmp_path / "data.csv"))
    with caplog.at_level(logging.WARNING, logger="mlmd_exercise.integrations.lightning"):
        trainer(tmp_path, logger, epochs=1, enable_autolog_hparams=False).fit(LogsAReservedName(), datamodule=data)
    store = logger.experiment.store
    [run] = mx.list_executions(store)
    assert run.type == "Trainer" and run.state == "COMPLETE" and "lr" not in run.properties
    assert len(mx.metric_history(store, run.id, "train_loss")) == ROWS // BATCH
    assert "state" not in mx.summarize_runs(store, [run])[0].metrics
    assert any("metric 'state'" in r.getMessage() for r in caplog.records)
    assert mx.execution_lineage(store, run.id).inputs == ()  # no datamodule known without log_graph


def test_a_validate_with_no_fit_before_is_an_evaluator_run(tmp_path):
    logger = MlmdLogger(tmp_path / "metadata.db")
    data = CsvData(write_csv(tmp_path / "data.csv"))
    [result] = trainer(tmp_path, logger).validate(Regressor(), datamodule=data)
    store = logger.experiment.store
    [run] = mx.list_executions(store)
    assert (run.type, run.state) == ("Evaluator", "COMPLETE")
    assert run.properties["val_loss"] == pytest.approx(result["val_loss"], abs=1e-6)
    assert [role for role, _ in mx.execution_lineage(store, run.id).inputs] == ["path"]
