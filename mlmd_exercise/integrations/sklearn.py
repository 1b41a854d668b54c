"""`mx.autolog()`: every scikit-learn fit recorded as a run, with no tracking code in the script.

    import mlmd_exercise as mx
    mx.autolog()           # the store ($MLMD_STORE, else metadata.db), experiment 'default'
    ...                    # the script as it was

A fit (`fit`, `fit_transform`, `fit_predict`) is an execution of the estimator's class name:
RUNNING with its inputs when it starts, then its training metrics, its model (joblib, a
`SavedModel` output) and COMPLETE when it returns, or FAILED (CANCELED on Ctrl-C) when it
raises, the exception going on unchanged. Its inputs are its data (data.py: content
fingerprints, and the files pandas read it from), the model a warm start starts from and the
models that made its data (a transformer's output). Its params are `get_params()`, deep (as
MLflow flattens them: `clf__C`), but a search's own alone. A search's candidates are runs of
their own (`search_run` names the search), recorded from `cv_results_`, and so is its refit.
A `score` or an `sklearn.metrics` function on a recorded model's predictions is a metric of
that model's run (`accuracy_score_X_test`, MLflow's post-training metrics) and, on data other
than its training data, of an `Evaluator` run with that data and the model as inputs.

How, as MLflow's autolog does: the methods of every estimator class (`all_estimators()`, the
mixins, the subclasses already defined) and the metric functions of `sklearn.metrics` are
wrapped (patching.py), and record.py writes the runs through the Tracker; a thread-local
depth lets only the outermost call record, so that the fits a Pipeline or a search makes
inside it are not runs (a search's refit excepted).
Nothing autolog does changes what the script sees: the call's own result or exception goes
on as it was, and a failure of the recording is logged as a warning, never raised.
"""

from __future__ import annotations

import inspect
import math
import os
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

from mlmd_exercise import values
from mlmd_exercise.errors import MlmdExerciseError
from mlmd_exercise.integrations import data
from mlmd_exercise.integrations.calls import is_number, params_of, safely
from mlmd_exercise.integrations.patching import Patches
from mlmd_exercise.integrations.record import Described, Input, Recorder, Started
from mlmd_exercise.records import DEFAULT_EXPERIMENT, ExecutionState
from mlmd_exercise.store import Store
from mlmd_exercise.write.run import Run
from mlmd_exercise.write.tracking import Tracker

__all__ = ["autolog", "is_on", "FIT_METHODS", "PREDICT_METHODS", "OUTPUT_METHODS"]

FIT_METHODS = ("fit", "fit_transform", "fit_predict")
PREDICT_METHODS = ("predict", "predict_proba", "predict_log_proba", "decision_function")
OUTPUT_METHODS = PREDICT_METHODS + ("transform",)
# A metric function is one whose parameters begin (y_true, <one of these>).
_PREDICTED = ("y_pred", "y_score", "y_prob", "y_proba", "probas_pred")


@dataclass(frozen=True)
class _Search:
    """A parameter search being fitted: its refit is recorded as a run of its own."""

    searcher: Any
    run: Run
    described: Described  # its data, described once for the refit too


@dataclass
class _On:
    recorder: Recorder
    patches: Patches
    pid: int  # the process that turned it on (a forked child does not record)
    own_store: bool


class _Local(threading.local):
    depth = 0  # calls being recorded in this thread: only the outermost records
    search: Optional[_Search] = None  # the search being fitted, whose refit is a run


_on: Optional[_On] = None
_local = _Local()


def is_on() -> bool:
    """Whether autolog is on."""
    return _on is not None


def _recorder() -> Optional[Recorder]:
    """Where to record, if this call is one to record (the outermost, in this process)."""
    on = _on
    if on is None or on.pid != os.getpid() or _local.depth:
        return None
    return on.recorder


def _is_search(estimator: object) -> bool:
    from sklearn.model_selection._search import BaseSearchCV

    return isinstance(estimator, BaseSearchCV)


# -- fits --------------------------------------------------------------------------------

def _fit_hook(method: str) -> Callable[..., Any]:
    def hook(call: Callable[..., Any], fn: Any, estimator: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> Any:
        on = _on
        if on is None or on.pid != os.getpid():
            return call(*args, **kwargs)
        search: Optional[_Search] = None
        if _local.depth:
            search = _local.search
            if search is None or getattr(search.searcher, "best_estimator_", None) is not estimator:
                return call(*args, **kwargs)  # inside a recorded call: a Pipeline's step, a candidate
        return _recorded_fit(on.recorder, method, call, fn, estimator, args, kwargs, search)

    return hook


def _recorded_fit(recorder: Recorder, method: str, call: Callable[..., Any], fn: Any, estimator: Any,
                  args: Tuple[Any, ...], kwargs: Dict[str, Any], search: Optional[_Search]) -> Any:
    frame = data.user_frame()
    what = f"{type(estimator).__name__}.{method}"
    _local.depth += 1  # what the recording itself calls (get_params, score) records nothing
    try:
        started = safely(f"the start of {what}", lambda: recorder.start(
            estimator, fn, args, kwargs, frame, deep=not _is_search(estimator),  # a search's estimator: a seed
            parent=search.run if search is not None else None, known=search.described if search is not None else ()))
    finally:
        _local.depth -= 1
    previous = _local.search
    _local.search = _Search(estimator, started.run, started.described) \
        if started is not None and _is_search(estimator) else None
    _local.depth += 1
    try:
        result = call(*args, **kwargs)
    except BaseException as error:
        if started is not None:
            run = started.run
            state = ExecutionState.CANCELED if isinstance(error, KeyboardInterrupt) else ExecutionState.FAILED
            safely(f"the failure of run {run.id} ({what})", lambda: run.finish(state, error))
        raise
    else:
        if started is not None:
            begun = started
            safely(f"the end of run {begun.run.id} ({what})", lambda: _finish(recorder, method, estimator, result, begun))
        return result
    finally:
        _local.depth -= 1
        _local.search = previous


def _finish(recorder: Recorder, method: str, estimator: Any, result: Any, started: Started) -> None:
    metrics: Dict[str, Any] = {}
    if _is_search(estimator):
        best = getattr(estimator, "best_score_", None)
        if is_number(best):
            metrics["best_cv_score"] = best
        safely(f"the candidates of run {started.run.id}", lambda: _candidates(recorder, estimator, started.run))
    made = {"fit_transform": "transform", "fit_predict": "predict"}.get(method)
    recorder.finish(estimator, started, metrics, made, result)


def _candidates(recorder: Recorder, search: Any, run: Run) -> None:
    """A search's candidates as runs of their own, from its `cv_results_`."""
    from sklearn.base import clone

    results = getattr(search, "cv_results_", None)
    if not isinstance(results, dict) or "params" not in results:
        return
    base = getattr(search, "estimator", None)
    kind = type(base).__name__ if base is not None else "Candidate"
    inputs: Dict[str, Input] = dict(run.inputs)
    for i, chosen in enumerate(results["params"]):
        try:  # as its estimator has them (a grid that swaps a step included)
            params = params_of(clone(base).set_params(**chosen), deep=True)
        except Exception:
            params = params_of(base, deep=True, chosen=chosen)
        params["search_run"] = run.id
        metrics = {k: v[i] for k, v in results.items()
                   if k != "params" and not k.startswith("param_") and is_number(v[i])}
        tests = [float(v) for k, v in metrics.items() if k.startswith("split") and "_test_" in k]
        failed = bool(tests) and all(math.isnan(v) for v in tests)  # every fit of it failed (error_score=nan)
        child = recorder.tracker.execution(kind, inputs=inputs, params=params)
        if metrics:
            child.log_metrics(metrics)
        child.finish(ExecutionState.FAILED if failed else ExecutionState.COMPLETE)


# -- what recorded models make, and how they score ---------------------------------------

def _nested(call: Callable[..., Any], args: Tuple[Any, ...], kwargs: Dict[str, Any],
            after: Callable[[Any, Any, Any], None]) -> Any:
    """Runs a wrapped call as a nested one (the fits it makes are not runs of their own), then,
    where autolog is on, `after(recorder, frame, result)`; the call's result either way."""
    recorder = _recorder()
    if recorder is None:
        return call(*args, **kwargs)
    frame = data.user_frame()
    _local.depth += 1
    try:
        result = call(*args, **kwargs)
        after(recorder, frame, result)
    finally:
        _local.depth -= 1
    return result


def _output_hook(method: str) -> Callable[..., Any]:
    prediction = method in PREDICT_METHODS

    def hook(call: Callable[..., Any], fn: Any, estimator: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> Any:
        def after(recorder: Any, frame: Any, result: Any) -> None:
            found = recorder.fitted.get(estimator)
            if found is not None:
                safely(f"what {type(estimator).__name__}.{method} made", lambda: recorder.output(
                    found, prediction, fn, estimator, args, kwargs, result, frame))
        return _nested(call, args, kwargs, after)

    return hook


def _score_hook(call: Callable[..., Any], fn: Any, estimator: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> Any:
    def after(recorder: Any, frame: Any, result: Any) -> None:
        found = recorder.fitted.get(estimator)
        if found is not None and is_number(result):
            safely(f"{type(estimator).__name__}.score", lambda: recorder.score(
                found, fn, estimator, args, kwargs, result, frame))
    return _nested(call, args, kwargs, after)


def _metric_hook(original: Callable[..., Any], args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> Any:
    def after(recorder: Any, frame: Any, result: Any) -> None:
        if is_number(result):
            safely(f"sklearn.metrics.{original.__name__}", lambda: recorder.metric(original, args, kwargs, result, frame))
    return _nested(original, args, kwargs, after)


# -- turning it on and off -----------------------------------------------------------------

def _estimator_classes() -> List[type]:
    from sklearn import base
    from sklearn.utils import all_estimators

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        classes = {cls for _, cls in all_estimators()}  # imports every estimator's module
    stack: List[type] = [base.BaseEstimator]
    while stack:  # and those defined by now elsewhere (the script's own, other libraries')
        cls = stack.pop()
        classes.add(cls)
        subclasses: List[type] = cls.__subclasses__()
        stack.extend(sub for sub in subclasses if sub not in classes)
    # and where each finds its methods: the mixins (LinearClassifierMixin.predict, say)
    classes.update(c for cls in list(classes) for c in cls.__mro__ if c is not object)
    return sorted(classes, key=lambda c: (c.__module__, c.__qualname__))


def _metric_names() -> List[str]:
    from sklearn import metrics

    names = []
    for name in getattr(metrics, "__all__", ()):
        fn = getattr(metrics, name, None)
        if not inspect.isfunction(fn):
            continue
        try:
            parameters = list(inspect.signature(fn).parameters)
        except (TypeError, ValueError):
            continue
        if len(parameters) >= 2 and parameters[0] == "y_true" and parameters[1] in _PREDICTED:
            names.append(name)
    return names


def _patch(patches: Patches) -> None:
    from sklearn import metrics

    for cls in _estimator_classes():
        for method in FIT_METHODS:
            patches.method(cls, method, _fit_hook(method))
        for method in OUTPUT_METHODS:
            patches.method(cls, method, _output_hook(method))
        patches.method(cls, "score", _score_hook)
    for name in _metric_names():
        patches.inner(metrics, name, _metric_hook)
    data.watch_pandas(patches)


def _turn_off() -> None:
    global _on
    on, _on = _on, None
    if on is None:
        return
    on.patches.undo()
    data.forget()
    if on.own_store:
        on.recorder.tracker.store.close()


def autolog(store: Union[Store, str, "os.PathLike[str]", None] = None, *, experiment: str = DEFAULT_EXPERIMENT,
            disable: bool = False, log_models: bool = True, model_dir: Union[str, "os.PathLike[str]"] = "models") -> None:
    """Records every scikit-learn fit from now on as a run, with its data, params, metrics and
    model (see the module's docstring); `autolog(disable=True)` stops it.

    Args:
        store: where to record: an open `Store` or a store's address (created if missing);
            default $MLMD_STORE, else `metadata.db`.
        experiment: the experiment the runs belong to.
        disable: turn autolog off (what it recorded stays).
        log_models: save each fitted model (joblib) as the run's `SavedModel` output.
        model_dir: the folder the models go to (made when the first is saved).

    Raises:
        MlmdExerciseError: an argument is wrong, naming it; the store cannot be opened.
    """
    for name, flag in (("disable", disable), ("log_models", log_models)):
        if not isinstance(flag, bool):
            raise MlmdExerciseError(f"autolog: {name} must be True or False, not {values.shown(flag)}")
    if store is not None and not isinstance(store, (str, os.PathLike, Store)):
        raise MlmdExerciseError(f"autolog: store must be a store's address or an open Store, not {values.shown(store)}")
    if not isinstance(experiment, str) or not experiment.strip():
        raise MlmdExerciseError(f"autolog: experiment must be a non-empty string, not {values.shown(experiment)}")
    if not isinstance(model_dir, (str, os.PathLike)):
        raise MlmdExerciseError(f"autolog: model_dir must be a folder's path, not {values.shown(model_dir)}")
    folder = Path(model_dir).resolve()
    if folder.exists() and not folder.is_dir():
        raise MlmdExerciseError(f"autolog: model_dir '{os.fspath(model_dir)}' is a file, not a folder")
    if disable:
        _turn_off()
        return
    tracker = Tracker(store, experiment=experiment)  # refuses a bad address or name before anything changes
    _turn_off()
    patches = Patches()
    try:
        _patch(patches)
    except BaseException:
        patches.undo()
        raise
    global _on
    _on = _On(Recorder(tracker, folder, log_models), patches, os.getpid(), own_store=not isinstance(store, Store))
