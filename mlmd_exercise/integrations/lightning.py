"""`MlmdLogger`: a PyTorch Lightning logger that records each fit as a run (the one module
that imports Lightning).

    from mlmd_exercise.integrations.lightning import MlmdLogger
    trainer = lightning.Trainer(logger=MlmdLogger("metadata.db", experiment="mnist"))
    trainer.fit(model, datamodule=data)

What Lightning calls, and what it records (lightning/pytorch/trainer/call.py, loggers/utilities.py):
- `log_hyperparams(params)` (at the fit's start, the module's and datamodule's hparams): kept,
  flattened as Lightning's MLflow logger does (`optimizer/lr`), to start the run with. A run's
  params are written with its start (Tracker.execution), and the run starts at `log_graph(model)`,
  which Lightning calls just after: there the module (its class names the execution type, as
  autolog names it by the estimator's) and the trainer's datamodule (its files are the run's
  inputs) are known. Hparams logged once the run has started are not recorded (a warning).
- `log_metrics(metrics, step)`: each value into the run's metric history at Lightning's step (a
  curve), the last one the run's summary. A fit that never called `log_graph`
  (`Trainer(enable_autolog_hparams=False)`) starts its run here, of type `Trainer`, with no inputs.
- `after_save_checkpoint(callback)`: the checkpoints ModelCheckpoint keeps (its best, its last,
  its top k) are noted; when the fit ends, each one that is still a file is a `SavedModel` output,
  fingerprinted then: one that ModelCheckpoint deleted meanwhile (save_top_k) is not recorded.
  The best (the newest, without a monitor) is the output `model`, `save_last`'s is `last`, the
  other top k are `checkpoint:<file name>`.
- `finalize(status)`: "success" -> COMPLETE; "failed" -> FAILED with the exception's type and
  message (Lightning calls it from inside its `except`), CANCELED for a KeyboardInterrupt (after
  which Lightning exits); any other status (a SLURM requeue's "finished") -> CANCELED. A fit
  that fails before `log_graph` (in `setup`, `on_fit_start`) has no run to finish: none is recorded.
- A `validate` or `test` after a fit with the same logger adds its metrics to the fit's run
  (Run.add_metrics: the model's score on other data); without one, it is a run of type `Evaluator`.

The datamodule's files: every attribute of `trainer.datamodule` whose name does not start with
`_` and whose value is a `str` or `os.PathLike` naming an existing file (or a list or tuple of
them: role `<attribute>[i]`) is a `DataSet` input whose role is the attribute's name.

As autolog, it never changes what the training sees: a failure of the recording is a warning
logged by `mlmd_exercise.integrations.lightning`, never an exception. Every method that writes
runs on rank zero alone (Lightning's `rank_zero_only`).
"""

from __future__ import annotations

import logging
import os
import sys
import uuid
from argparse import Namespace
from typing import Any, Callable, Dict, List, Mapping, Optional, TypeVar, Union

from lightning.pytorch.loggers.logger import Logger, rank_zero_experiment
from lightning.pytorch.utilities.rank_zero import rank_zero_only

from mlmd_exercise import schema, values
from mlmd_exercise.errors import MlmdExerciseError
from mlmd_exercise.integrations.calls import param_name, param_value, safely
from mlmd_exercise.records import DEFAULT_EXPERIMENT, RUN_NAME, TAG_PREFIX, ExecutionState, PropertyValue
from mlmd_exercise.store import Store
from mlmd_exercise.write.metrics import check_flush_every
from mlmd_exercise.write.run import Run
from mlmd_exercise.write.tracking import Tracker

__all__ = ["MlmdLogger", "datamodule_files"]

log = logging.getLogger(__name__)
T = TypeVar("T")
_BEST, _LAST, _TOP_K = "best", "last", "top_k"


def _safely(what: str, action: Callable[[], T]) -> Optional[T]:
    return safely(what, action, "MlmdLogger", log)


def _flat(params: Mapping[Any, Any], prefix: str = "") -> Dict[str, Any]:
    """Nested dicts and Namespaces flattened with '/' between the keys, as Lightning's loggers do."""
    flat: Dict[str, Any] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Namespace):
            value = vars(value)
        if isinstance(value, Mapping) and value:
            flat.update(_flat(value, name + "/"))
        else:
            flat[name] = value
    return flat


def _params(params: Union[Mapping[Any, Any], Namespace]) -> Dict[str, PropertyValue]:
    """Hparams as a run's params: a number, bool or string as itself, anything else (None, a
    module, a list) as its text, as autolog records an estimator's params."""
    given = vars(params) if isinstance(params, Namespace) else dict(params)
    recorded: Dict[str, PropertyValue] = {}
    for key, value in _flat(given).items():
        name = param_name(key)
        if name is not None and (name == RUN_NAME or name.startswith(TAG_PREFIX)):
            name = "param_" + name
        if name is not None:
            recorded[name] = param_value(name, value)
    return recorded


def datamodule_files(datamodule: Any) -> Dict[str, str]:
    """The files a datamodule names, by role: each public attribute that is a `str` or
    `os.PathLike` naming an existing file, or a list or tuple of them (`<name>[i]`)."""
    found: Dict[str, str] = {}
    for name, value in sorted(vars(datamodule).items()) if hasattr(datamodule, "__dict__") else ():
        if name.startswith("_"):
            continue
        items = list(enumerate(value)) if isinstance(value, (list, tuple)) else [(None, value)]
        for i, item in items:
            if isinstance(item, (str, os.PathLike)) and os.path.isfile(item):
                found[name if i is None else f"{name}[{i}]"] = os.fspath(item)
    return found


class MlmdLogger(Logger):
    """Records each Lightning fit as a run in an MLMD store: its hparams, every metric logged
    with its step, the checkpoints kept as `SavedModel` outputs and the datamodule's files as
    `DataSet` inputs (see the module's docstring for when each is written).

    Args:
        store: an open `Store` or a store's address, opened (created if missing) here; default
            `$MLMD_STORE`, else `metadata.db`.
        experiment: the experiment the runs belong to (also the logger's `name`, which
            ModelCheckpoint puts in its folder: `<default_root_dir>/<experiment>/<version>/checkpoints`).
        name: each run's name (a label; default none).
        tags: text by key set on each run.
        flush_every: metric points written per transaction (Tracker.execution's `flush_every`).
        log_checkpoints: record the checkpoints ModelCheckpoint keeps (default True).

    Raises:
        MlmdExerciseError: an argument is wrong, naming it; the store cannot be opened.
    """

    def __init__(self, store: Union[Store, str, "os.PathLike[str]", None] = None, *,
                 experiment: str = DEFAULT_EXPERIMENT, name: Optional[str] = None,
                 tags: Optional[Mapping[str, str]] = None, flush_every: int = 1,
                 log_checkpoints: bool = True) -> None:
        super().__init__()
        if store is not None and not isinstance(store, (str, os.PathLike, Store)):
            raise MlmdExerciseError(f"MlmdLogger: store must be a store's address or an open Store, "
                                    f"not {values.shown(store)}")
        if not isinstance(experiment, str) or not experiment.strip():
            raise MlmdExerciseError(f"MlmdLogger: experiment must be a non-empty string, not {values.shown(experiment)}")
        if name is not None and (not isinstance(name, str) or not name.strip()):
            raise MlmdExerciseError(f"MlmdLogger: name must be a non-empty string or None, not {values.shown(name)}")
        if tags is not None and not (isinstance(tags, Mapping) and all(isinstance(k, str) and isinstance(v, str)
                                                                       for k, v in tags.items())):
            raise MlmdExerciseError(f"MlmdLogger: tags must be a dict of text -> text, not {values.shown(tags)}")
        if not isinstance(log_checkpoints, bool):
            raise MlmdExerciseError(f"MlmdLogger: log_checkpoints must be True or False, not "
                                    f"{values.shown(log_checkpoints)}")
        try:
            check_flush_every(flush_every)
        except MlmdExerciseError as e:
            raise MlmdExerciseError(f"MlmdLogger: {e}") from None
        self._tracker = Tracker(store, experiment=experiment)  # a bad address or name refused here
        self._experiment_name = experiment
        self._run_name = name
        self._tags = dict(tags or {})
        self._flush_every = flush_every
        self._log_checkpoints = log_checkpoints
        self._hparams: Dict[str, PropertyValue] = {}
        self._run: Optional[Run] = None
        self._last: Optional[Run] = None  # the last fit's run, finished: what validate/test add to
        self._adding = False  # this stage's metrics go onto self._last
        self._model_name = "LightningModule"
        self._checkpoints: Dict[str, str] = {}  # path -> its kind (best, last, top_k)
        self._version: Optional[str] = None
        self.runs: List[Run] = []  # every run this logger started, oldest first

    # -- what Lightning reads --------------------------------------------------------

    @property
    def name(self) -> str:
        """The experiment's name."""
        return self._experiment_name

    @property
    def version(self) -> str:
        """A label new for each fit (ModelCheckpoint's folder), fixed before the run starts."""
        if self._version is None:
            self._version = f"run_{uuid.uuid4().hex[:12]}"
        return self._version

    @property
    @rank_zero_experiment
    def experiment(self) -> Tracker:
        """The Tracker the runs are recorded with."""
        return self._tracker

    @property
    def run(self) -> Optional[Run]:
        """The run being recorded, else the last one (None before the first)."""
        return self._run or self._last

    # -- what Lightning calls ----------------------------------------------------------

    @rank_zero_only
    def log_hyperparams(self, params: Union[Dict[str, Any], Namespace], *args: Any, **kwargs: Any) -> None:
        """Keeps the hparams to start the run with (a run's params are written with its start)."""
        given = _safely("the hparams", lambda: _params(params))
        if given is None:
            return
        if self._run is not None:
            late = sorted(k for k, v in given.items() if self._hparams.get(k, object()) != v)
            if late:
                log.warning("MlmdLogger: run %s has started; hparams logged now are not recorded: %s",
                            self._run.id, ", ".join(late))
            return
        self._hparams.update(given)

    @rank_zero_only
    def log_graph(self, model: Any, input_array: Any = None) -> None:
        """Starts the run: the module (its class names the execution type) and the trainer's
        datamodule (its files are the inputs) are known here."""
        if self._run is not None:
            return
        self._model_name = type(model).__name__
        try:
            trainer = model.trainer
        except RuntimeError:  # a module no trainer holds: a call of the user's own
            trainer = None
        stage = getattr(getattr(getattr(trainer, "state", None), "fn", None), "value", "fit")
        if stage != "fit" and self._last is not None:
            self._adding = True
            return
        datamodule = getattr(trainer, "datamodule", None)
        self._start(self._model_name if stage == "fit" else schema.EVALUATOR.name, datamodule)

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, float], step: Optional[int] = None) -> None:
        """Each value into the run's history at `step`; the last one is the run's summary."""
        if self._run is None and self._adding and self._last is not None:
            last = self._last
            _safely("the metrics", lambda: last.add_metrics(dict(metrics), step=step))
            return
        if self._run is None:
            self._start(schema.TRAINER.name, None)
        run = self._run
        if run is None:
            return
        try:
            run.log_metrics(dict(metrics), step=step)
        except MlmdExerciseError:  # one refused value refuses the call: log the others alone
            for key, value in metrics.items():
                _safely(f"metric {key!r}", lambda: run.log_metrics({key: value}, step=step))
        except Exception as e:
            log.warning("MlmdLogger could not record the metrics at step %s: %s", step, e)

    @rank_zero_only
    def after_save_checkpoint(self, checkpoint_callback: Any) -> None:
        """Notes the checkpoints the callback keeps now; they are recorded when the fit ends."""
        if not self._log_checkpoints:
            return
        kept: Dict[str, str] = {path: _TOP_K for path in dict(getattr(checkpoint_callback, "best_k_models", {}) or {})}
        last = getattr(checkpoint_callback, "last_model_path", "")
        if last:
            kept[last] = _LAST
        best = getattr(checkpoint_callback, "best_model_path", "")
        if best:  # one best at a time: the one before is a top-k one now, or gone
            self._checkpoints = {p: _TOP_K if k == _BEST else k for p, k in self._checkpoints.items()}
            kept[best] = _BEST
        self._checkpoints.update({os.path.abspath(p): k for p, k in kept.items()})

    @rank_zero_only
    def finalize(self, status: str) -> None:
        """Finishes the run: its checkpoints still on disk as outputs, and its state."""
        run, self._run = self._run, None
        self._adding, self._version, self._hparams = False, None, {}
        checkpoints, self._checkpoints = self._checkpoints, {}
        if run is None:
            return
        self._last = run
        error: Optional[BaseException] = None
        if status == "success":
            state = ExecutionState.COMPLETE
            _safely("the checkpoints", lambda: self._declare_checkpoints(run, checkpoints))
        elif status == "failed":
            error = sys.exc_info()[1]  # Lightning calls this from inside its `except`
            state = ExecutionState.CANCELED if isinstance(error, KeyboardInterrupt) else ExecutionState.FAILED
        else:
            state = ExecutionState.CANCELED
        _safely(f"the end of run {run.id}", lambda: run.finish(state, error))

    @rank_zero_only
    def save(self) -> None:
        """Nothing: each metric is written when it is logged (`flush_every` points at a time)."""

    # -- recording ----------------------------------------------------------------------

    def _start(self, type: str, datamodule: Any) -> None:
        def start() -> Run:
            files = datamodule_files(datamodule) if datamodule is not None else {}
            inputs = {role: self._tracker.artifact(path) for role, path in files.items()}
            return self._tracker.execution(type, inputs=inputs, params=self._hparams, name=self._run_name,
                                           tags=self._tags, flush_every=self._flush_every)

        self._run = _safely("the run's start", start)
        if self._run is not None:
            self.runs.append(self._run)

    def _declare_checkpoints(self, run: Run, checkpoints: Mapping[str, str]) -> None:
        for path, kind in sorted(checkpoints.items()):
            if not os.path.isfile(path):  # deleted by ModelCheckpoint (save_top_k), or by someone
                continue
            # Its kind is in its role, not in a property: every property of a SavedModel but its
            # name and version reads as a metric of its run (read/compare.py).
            role = {_BEST: "model", _LAST: "last"}.get(kind) or f"checkpoint:{os.path.basename(path)}"
            _safely(f"the checkpoint {path}", lambda: run.log_model(path, name=self._model_name, role=role))
