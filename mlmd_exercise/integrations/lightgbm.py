"""LightGBM: each `lightgbm.train` (or `cv`, or a scikit-learn API `fit`) recorded as a run, by a
callback. (LightGBM rather than XGBoost: `pip install lightgbm` is about 10 MB, where xgboost
brings 700 MB of NVIDIA libraries.)

    from mlmd_exercise.integrations import lightgbm as mx_lightgbm

    with mx_lightgbm.record(experiment="gbm") as callback:
        booster = lightgbm.train(params, train, valid_sets=[valid], callbacks=[callback])

A train is an execution of the type `LightGBM` (EXECUTION_TYPE), started at its first round
with LightGBM's params for it (`env.params`, as `calls.param_value` stores them: a list or None
as its text) and its data as inputs; each round's evaluation results are its metric history,
`<data set>-<metric>` (`valid_0-binary_logloss`; for `cv` also `...-stdv`) at the step of the
round's 0-based index (LightGBM's `env.iteration`, which a train going on from `init_model`
counts on from that model's rounds), the last value of each its summary; at the end
`best_iteration` and `best-<data set>-<metric>` where early stopping chose a round, the booster
saved (`booster.save_model`: the best iteration, where there is one) into `model_dir` as
`LightGBM-<run id>.txt` (`-2.txt`, `-3.txt`... where another store's run has that name: a file
is never overwritten), its `SavedModel` output `model`, and COMPLETE.

Why a `with` block: LightGBM calls a callback after each round and never after the last one,
and early stopping and a failure both leave its loop by an exception no callback sees. A run
ends at the block's end (or at the next train's first round: several trains in one block are a
run each): a train that returned (its last round was seen, or early stopping chose a round) is
COMPLETE; one the block's exception came out of (a `lightgbm.train` or `cv` given this
callback, training this booster, is in its traceback) is FAILED, CANCELED on Ctrl-C, with
`error_type` and `error_message`, the exception going on unchanged; one that stopped before its
last round otherwise (it raised, and the script caught it) is FAILED; a train given the callback
that raised before its first round (bad params) is a FAILED run with the params it was given. The callback called outside
its block refuses to go on (a run it started could not be ended). Its `order` (25) puts it
after LightGBM's own log and record callbacks and before early stopping, which then stops
after the round is recorded; a callback given without an `order` runs before it. One
recording is for one thread's trains.

Data: while a block is open, `lightgbm.Dataset.construct` is wrapped (patching.py), so that
the data a Dataset is made of is fingerprinted as autolog fingerprints data (data.py, by
content, named by the script's variable: the same data is the same artifact as autolog's)
before LightGBM frees it (`free_raw_data`); a Dataset read from a file is that file, a
`DataSet` fingerprinted as `Tracker.dataset` does. The training data's inputs are `X` and `y`
(its label), a validation set's `<name>.X` and `<name>.y`; `init_model` is the model a train
goes on from (`init_model=`: a model file, or a Booster recorded here into the same store). A
Dataset built before the block (`construct()` called earlier), its raw data freed, has no data
input.

What the recording itself fails at (the store gone) is a warning logged by this module, never
an exception in the script.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple, Type, TypeVar, Union
from urllib.parse import quote

from mlmd_exercise import schema, values
from mlmd_exercise.errors import MlmdExerciseError
from mlmd_exercise.integrations import data
from mlmd_exercise.integrations.calls import is_number, param_name, param_value, safely
from mlmd_exercise.integrations.data import Origin, WeakIdMap
from mlmd_exercise.integrations.patching import Patches
from mlmd_exercise.integrations.record import Data, Input, Recorder
from mlmd_exercise.records import DEFAULT_EXPERIMENT, ArtifactRecord, ExecutionState, PropertyValue
from mlmd_exercise.store import Store
from mlmd_exercise.write.run import Run, tag_values
from mlmd_exercise.write.tracking import Tracker

__all__ = ["record", "Recording", "EXECUTION_TYPE", "MODEL_NAME"]

log = logging.getLogger(__name__)
T = TypeVar("T")
EXECUTION_TYPE = "LightGBM"
MODEL_NAME = "LightGBM Booster"
# After LightGBM's own log (10) and record (20) callbacks, before early stopping (30): the
# round early stopping stops at is recorded too.
ORDER = 25


def _safely(what: str, action: Callable[[], T]) -> Optional[T]:
    return safely(what, action, "the LightGBM callback", log)


# -- the data a Dataset is made of, noted before LightGBM frees it ---------------------------

@dataclass(frozen=True)
class _Part:
    """Data or a label as a Dataset was given it: in memory (fingerprinted), or a file."""

    name: Optional[str]  # the script's variable that held it, if any
    where: str  # its URI but the name: `python:<script>#`
    fingerprint: str
    properties: Dict[str, PropertyValue]
    origin: Optional[Origin]
    path: Optional[str] = None  # a file's absolute path

    def uri(self, role: str) -> str:
        """Named by its variable, else by its role in the run (as autolog names data)."""
        return self.where + quote(self.name or role)


_parts: WeakIdMap[Tuple[Optional[_Part], Optional[_Part]]] = WeakIdMap()  # by Dataset: (data, label)
_models: WeakIdMap[Tuple[str, ArtifactRecord]] = WeakIdMap()  # by Booster: (its store, its SavedModel)
_lock = threading.Lock()
_open = 0  # blocks open: the wrapper is there while one is
_patches: Optional[Patches] = None


def _part(value: Any, frame: Optional[FrameType]) -> Optional[_Part]:
    if isinstance(value, (str, os.PathLike)):
        path = str(Path(value).resolve())
        return _Part(os.fspath(value), "", "", {}, None, path) if os.path.isfile(path) else None
    found = data.describe(value)
    if found is None:
        return None
    digest, properties = found
    return _Part(data.name_in(frame, value), data.data_uri(frame, ""), digest, properties, data.origin_of(value))


def _construct_hook(call: Callable[..., Any], fn: Any, dataset: Any, args: Tuple[Any, ...],
                    kwargs: Dict[str, Any]) -> Any:
    raw = label = None
    if getattr(dataset, "_handle", None) is None and getattr(dataset, "used_indices", None) is None:
        raw, label = getattr(dataset, "data", None), getattr(dataset, "label", None)
    result = call(*args, **kwargs)
    if raw is not None:
        def note() -> None:
            frame = data.user_frame()
            _parts.set(dataset, (_part(raw, frame), _part(label, frame) if label is not None else None))
        _safely("the data of a LightGBM Dataset", note)
    return result


def _watch() -> None:
    global _open, _patches
    import lightgbm

    with _lock:
        if _open == 0:
            patches = Patches()
            patches.method(lightgbm.Dataset, "construct", _construct_hook)
            _patches = patches
        _open += 1


def _unwatch() -> None:
    global _open, _patches
    with _lock:
        _open -= 1
        if _open == 0 and _patches is not None:
            _patches.undo()
            _patches = None


def _datasets(model: Any) -> List[Tuple[str, Any]]:
    """The Datasets a booster trains on (role prefix "") and is evaluated on ("<name>.")."""
    folds = model.__dict__.get("boosters") if hasattr(model, "__dict__") else None
    if isinstance(folds, list):  # cv's CVBooster (whose other attributes are its boosters' methods)
        fold = folds[0].__dict__ if folds else {}
        full = getattr(fold.get("train_set"), "reference", None)  # the folds are subsets of it
        return [("", full)] if full is not None else []
    found = [("", model.train_set)] if getattr(model, "train_set", None) is not None else []
    names = getattr(model, "name_valid_sets", None) or []
    found += [(f"{name}.", valid) for name, valid in zip(names, getattr(model, "valid_sets", None) or [])]
    return found


# -- a train as a run --------------------------------------------------------------------------

@dataclass
class _Train:
    model: Any  # the Booster (CVBooster for cv) LightGBM trains
    run: Optional[Run]  # None where its start could not be recorded
    rounds: int = 0  # the rounds seen
    last_round: bool = False  # its last round was seen

    def returned(self) -> bool:
        """Whether LightGBM's loop ended as it does when it returns: its last round, or early
        stopping (which alone sets `best_iteration` above 0)."""
        best = getattr(self.model, "best_iteration", 0)
        return self.last_round or (isinstance(best, int) and best > 0)


def _train_argument(name: str) -> Any:
    """An argument of the `lightgbm.train` (or `cv`) call running now, in this thread."""
    frame: Optional[FrameType] = sys._getframe(1)
    while frame is not None:
        if frame.f_globals.get("__name__") == "lightgbm.engine" and frame.f_code.co_name in ("train", "cv"):
            return frame.f_locals.get(name)
        frame = frame.f_back
    return None


def _train_frame(error: BaseException) -> Optional[FrameType]:
    """The frame of `lightgbm.train` (or `cv`) that `error` came out of, if it did."""
    tb = error.__traceback__
    found = None
    while tb is not None:
        frame = tb.tb_frame
        if frame.f_globals.get("__name__") == "lightgbm.engine" and frame.f_code.co_name in ("train", "cv"):
            found = frame
        tb = tb.tb_next
    return found


def _new_file(folder: Path, stem: str, suffix: str) -> Path:
    """A file of that name made empty for us alone (`stem-2`, `stem-3`... where it is taken):
    a run's id is unique in its store, not among the stores that save into one folder."""
    for n in range(1, 1000):
        path = folder / (f"{stem}{suffix}" if n == 1 else f"{stem}-{n}{suffix}")
        try:
            with open(path, "x"):
                return path
        except FileExistsError:
            continue
    raise MlmdExerciseError(f"no free file name for {stem}{suffix} in {folder}")


class Recording:
    """The callback of a `with record(...)` block (see the module's docstring)."""

    def __init__(self, tracker: Tracker, own_store: bool, model_dir: Path, name: Optional[str],
                 tags: Optional[Mapping[str, str]]) -> None:
        self.tracker = tracker
        self.model_dir = model_dir
        self.name = name
        self.tags = dict(tags) if tags else None
        self.runs: List[Run] = []  # every run the block recorded, in order
        self.order = ORDER
        self.before_iteration = False
        self._own_store = own_store
        self._recorder = Recorder(tracker, model_dir, True)
        self._current: Optional[_Train] = None
        self._inside = False
        self._closed = False

    def __repr__(self) -> str:
        return f"<mlmd_exercise LightGBM recording into {self.tracker.store}, {len(self.runs)} runs>"

    # -- the block ---------------------------------------------------------------------

    def __enter__(self) -> "Recording":
        if self._inside or self._closed:
            raise MlmdExerciseError("record(...): this recording was already used for a `with` block: "
                                    "call record(...) again for a new one")
        _watch()
        self._inside = True
        return self

    def __exit__(self, exc_type: Optional[Type[BaseException]], exc: Optional[BaseException],
                 tb: Optional[TracebackType]) -> None:
        try:
            frame = _train_frame(exc) if exc is not None else None
            given = frame.f_locals.get("callbacks") if frame is not None else None
            if not (isinstance(given, (list, tuple)) and any(c is self for c in given)):
                frame = None  # not a train given this callback: not ours to record
            current = self._current
            if frame is not None and current is not None and frame.f_locals.get(
                    "booster", frame.f_locals.get("cvbooster")) is current.model:
                self._end(exc)  # the train being recorded raised
            else:
                self._end(None)  # it returned (or never began)
                if frame is not None and exc is not None:  # a train that raised before its first round
                    failed = exc
                    _safely("a LightGBM train that failed", lambda: self._failed_early(frame, failed))
        finally:
            self._inside = False
            self._closed = True
            _unwatch()
            if self._own_store:
                self.tracker.store.close()
        # Returning None lets the exception go on unchanged.

    # -- the callback --------------------------------------------------------------------

    def __call__(self, env: Any) -> None:
        if not self._inside:
            raise MlmdExerciseError(
                "the LightGBM recording is a `with` block: `with record(...) as callback: lightgbm.train(..., "
                "callbacks=[callback])` (outside one, a train that fails or stops early would stay RUNNING)")
        model = env.model
        current = self._current
        if current is None or current.model is not model:  # a new train
            self._end(None)
            run = _safely("the start of a LightGBM train", lambda: self._start(env))
            current = self._current = _Train(model, run)
            if run is not None:
                self.runs.append(run)
        current.rounds += 1
        if env.iteration + 1 >= env.end_iteration:
            current.last_round = True
        run = current.run
        if run is None:
            return
        metrics: Dict[str, Any] = {}
        for result in env.evaluation_result_list or ():
            key = f"{result[0]}-{result[1]}"
            if is_number(result[2]):
                metrics[key] = result[2]
            if len(result) > 4 and is_number(result[4]):  # cv: the standard deviation over the folds
                metrics[f"{key}-stdv"] = result[4]
        if metrics:
            step = env.iteration
            _safely(f"round {step} of run {run.id}", lambda: run.log_metrics(metrics, step=step))

    def _params(self, given: Mapping[str, Any]) -> Dict[str, PropertyValue]:
        params: Dict[str, PropertyValue] = {}
        for key, value in given.items():
            name = param_name(key)
            if name is not None and not callable(value):  # (a custom objective is "none" by now)
                params[name] = param_value(name, value)
        return params

    def _start(self, env: Any) -> Run:
        datas: List[Data] = []
        for prefix, dataset in _datasets(env.model):
            found = _parts.get(dataset)
            if found is None:
                continue
            for what, part in zip(("X", "y"), found):
                if part is None:
                    continue
                if part.path is not None:
                    pending = self.tracker.dataset(part.path, split="train" if not prefix else prefix[:-1])
                    datas.append(Data(prefix + what, part.path, pending.fingerprint, pending, None))
                else:
                    uri = part.uri(prefix + what)
                    pending = self.tracker.described(uri, part.fingerprint, properties=part.properties)
                    datas.append(Data(prefix + what, part.name or prefix + what, part.fingerprint, pending,
                                      part.origin))
        inputs: Dict[str, Input] = self._recorder.inputs(datas)
        init = _train_argument("init_model")  # the model it goes on from: a file, or a recorded Booster
        if isinstance(init, (str, os.PathLike)) and os.path.isfile(init):
            inputs["init_model"] = self.tracker.artifact(init, type=schema.SAVED_MODEL.name)
        elif init is not None:
            recorded = _models.get(init)
            if recorded is not None and recorded[0] == str(self.tracker.store):
                inputs["init_model"] = recorded[1]
        return self.tracker.execution(EXECUTION_TYPE, inputs=inputs, params=self._params(env.params or {}),
                                      name=self.name, tags=self.tags)

    def _end(self, error: Optional[BaseException]) -> None:
        """Ends the current train's run: with `error`, FAILED (CANCELED on Ctrl-C); else
        COMPLETE with its model where it returned, FAILED where it stopped before its end."""
        current, self._current = self._current, None
        if current is None or current.run is None:
            return
        run = current.run
        if error is None and not current.returned():
            error = MlmdExerciseError(f"the train stopped after {current.rounds} rounds, before its last, "
                                      "without early stopping: it raised")
        if error is not None:
            state = ExecutionState.CANCELED if isinstance(error, KeyboardInterrupt) else ExecutionState.FAILED
            failure = error
            _safely(f"the failure of run {run.id}", lambda: run.finish(state, failure))
            return
        model = current.model
        best = getattr(model, "best_iteration", 0)
        if isinstance(best, int) and best > 0:
            scores = getattr(model, "best_score", None) or {}
            metrics: Dict[str, Any] = {"best_iteration": best}
            metrics.update({f"best-{d}-{m}": v for d, by in dict(scores).items() for m, v in dict(by).items()
                            if is_number(v)})
            _safely(f"the best iteration of run {run.id}", lambda: run.log_metrics(metrics))
        _safely(f"the model of run {run.id}", lambda: self._save_model(model, run))
        made = _safely(f"the end of run {run.id}", run.finish)
        if made and "model" in made:
            _models.set(model, (str(self.tracker.store), made["model"]))

    def _save_model(self, model: Any, run: Run) -> None:
        self.model_dir.mkdir(parents=True, exist_ok=True)
        path = _new_file(self.model_dir, f"{EXECUTION_TYPE}-{run.id}", ".txt")
        model.save_model(str(path))
        run.log_model(path, name=MODEL_NAME)

    def _failed_early(self, frame: FrameType, error: BaseException) -> None:
        given = frame.f_locals.get("params")
        params = self._params(given) if isinstance(given, Mapping) else {}
        run = self.tracker.execution(EXECUTION_TYPE, params=params, name=self.name, tags=self.tags)
        self.runs.append(run)
        state = ExecutionState.CANCELED if isinstance(error, KeyboardInterrupt) else ExecutionState.FAILED
        run.finish(state, error)


def record(store: Union[Store, str, "os.PathLike[str]", None] = None, *, experiment: str = DEFAULT_EXPERIMENT,
           name: Optional[str] = None, tags: Optional[Mapping[str, str]] = None,
           model_dir: Union[str, "os.PathLike[str]"] = "models") -> Recording:
    """A recording of LightGBM trains, for a `with` block whose value is the callback to pass
    to `lightgbm.train(..., callbacks=[...])`, `lightgbm.cv` or a scikit-learn API `fit` (see
    the module's docstring).

    Args:
        store: where to record: an open `Store` or a store's address (created if missing);
            default $MLMD_STORE, else `metadata.db`. An address is opened here and closed at
            the block's end.
        experiment: the experiment the runs belong to.
        name: each run's name (a label: `show execution NAME` shows the newest).
        tags: text by key, on each run.
        model_dir: the folder the boosters are saved to (made when the first is saved).

    Raises:
        MlmdExerciseError: an argument is wrong, naming it; the store cannot be opened.
    """
    if store is not None and not isinstance(store, (str, os.PathLike, Store)):
        raise MlmdExerciseError(f"record: store must be a store's address or an open Store, not {values.shown(store)}")
    if not isinstance(experiment, str) or not experiment.strip():
        raise MlmdExerciseError(f"record: experiment must be a non-empty string, not {values.shown(experiment)}")
    if name is not None and (not isinstance(name, str) or not name.strip()):
        raise MlmdExerciseError(f"record: name must be a non-empty string or None, not {values.shown(name)}")
    if name is not None:
        values.check_node_name("record: name", name)
    if tags is not None and not isinstance(tags, Mapping):
        raise MlmdExerciseError(f"record: tags must be a mapping of text to text, not {values.shown(tags)}")
    if not isinstance(model_dir, (str, os.PathLike)) or not os.fspath(model_dir):
        raise MlmdExerciseError(f"record: model_dir must be a folder's path, not {values.shown(model_dir)}")
    folder = Path(model_dir).resolve()
    if folder.exists() and not folder.is_dir():
        raise MlmdExerciseError(f"record: model_dir '{os.fspath(model_dir)}' is a file, not a folder")
    try:
        import lightgbm  # noqa: F401  (refused here, not at the first round)
    except ImportError:
        raise MlmdExerciseError("record: LightGBM is not installed (pip install lightgbm)") from None
    tracker = Tracker(store, experiment=experiment)  # refuses a bad address or experiment name
    try:
        if name is not None:
            tracker.store.backend.check_text("record: name", name)
        tag_values(tracker.store.backend, tags)  # a bad tag refused now, naming it
    except BaseException:
        if not isinstance(store, Store):
            tracker.store.close()
        raise
    return Recording(tracker, not isinstance(store, Store), folder, name, tags)

