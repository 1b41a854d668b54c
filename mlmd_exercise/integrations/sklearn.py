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
wrapped (patching.py); a thread-local depth lets only the outermost call record, so that the
fits a Pipeline or a search makes inside it are not runs (a search's refit excepted).
Nothing autolog does changes what the script sees: the call's own result or exception goes
on as it was, and a failure of the recording is logged as a warning, never raised.
"""

from __future__ import annotations

import inspect
import logging
import math
import numbers
import os
import threading
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple, TypeVar, Union

from mlmd_exercise import environment, values
from mlmd_exercise.errors import MlmdExerciseError
from mlmd_exercise.integrations import data
from mlmd_exercise.integrations.data import Made, Origin, WeakIdMap
from mlmd_exercise.integrations.patching import Patches
from mlmd_exercise.records import DEFAULT_EXPERIMENT, ArtifactRecord, ExecutionState, PropertyValue
from mlmd_exercise.store import Store
from mlmd_exercise.write.artifacts import Pending
from mlmd_exercise.write.run import Run
from mlmd_exercise.write.tracking import Tracker

__all__ = ["autolog", "FIT_METHODS", "PREDICT_METHODS", "OUTPUT_METHODS", "is_on"]

log = logging.getLogger(__name__)
T = TypeVar("T")

FIT_METHODS = ("fit", "fit_transform", "fit_predict")
PREDICT_METHODS = ("predict", "predict_proba", "predict_log_proba", "decision_function")
OUTPUT_METHODS = PREDICT_METHODS + ("transform",)
# A metric function is one whose parameters begin (y_true, <one of these>).
_PREDICTED = ("y_pred", "y_score", "y_prob", "y_proba", "probas_pred")
_MAX_TEXT = 1000  # characters of a param recorded as text (an estimator's repr)
Input = Union[Pending, ArtifactRecord]


@dataclass(frozen=True)
class _Data:
    """Data given to a call, described."""

    role: str  # the parameter it was given as: "X", "y"
    name: str  # the variable that held it, else the role
    fingerprint: str
    pending: Pending
    origin: Optional[Origin]


@dataclass
class _Fitted:
    """A recorded fit: its run, its model, what it was trained on (fingerprints of X and y)."""

    run: Run
    model: Optional[ArtifactRecord]
    trained_on: Tuple[str, str]


@dataclass(frozen=True)
class _Prediction:
    """What a recorded model predicted from (an `Origin`'s detail)."""

    fitted: _Fitted
    data: _Data


@dataclass
class _Started:
    run: Run
    described: List[Tuple[Any, _Data]]  # the data given, and what it is
    x: Any = None
    y: Any = None
    weight: Any = None

    @property
    def datas(self) -> List[_Data]:
        return [d for _, d in self.described]


@dataclass(frozen=True)
class _Search:
    """A parameter search being fitted: its refit is recorded as a run of its own."""

    searcher: Any
    run: Run
    described: List[Tuple[Any, _Data]]  # its data, described once for the refit too


@dataclass
class _Config:
    tracker: Tracker
    model_dir: Path
    log_models: bool
    pid: int  # the process that turned it on (a forked child does not record)
    patches: Patches
    own_store: bool
    fitted: WeakIdMap[_Fitted] = field(default_factory=WeakIdMap)
    evaluators: Dict[Tuple[int, str, str], Run] = field(default_factory=dict)


class _Local(threading.local):
    depth = 0  # calls being recorded in this thread: only the outermost records
    search: Optional[_Search] = None  # the search being fitted, whose refit is a run


_config: Optional[_Config] = None
_local = _Local()
_signatures: Dict[Any, Optional[inspect.Signature]] = {}


def is_on() -> bool:
    """Whether autolog is on."""
    return _config is not None


# -- small parts ---------------------------------------------------------------------

def _active() -> Optional[_Config]:
    """The configuration, where this call is one to record (the outermost, in this process)."""
    config = _config
    if config is None or config.pid != os.getpid() or _local.depth:
        return None
    return config


@contextmanager
def _inside() -> Iterator[None]:
    _local.depth = _local.depth + 1
    try:
        yield
    finally:
        _local.depth -= 1


def _safely(what: str, action: Callable[[], T]) -> Optional[T]:
    """Runs part of the recording: a failure is logged, never raised into the script."""
    try:
        return action()
    except Exception as e:
        log.warning("autolog could not record %s: %s", what, e)
        log.debug("autolog: %s", what, exc_info=True)
        return None


def _is_number(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _is_search(estimator: object) -> bool:
    from sklearn.model_selection._search import BaseSearchCV

    return isinstance(estimator, BaseSearchCV)


def _signature(fn: Any) -> Optional[inspect.Signature]:
    if fn not in _signatures:
        try:
            _signatures[fn] = inspect.signature(fn)
        except (TypeError, ValueError):
            _signatures[fn] = None
    return _signatures[fn]


def _arguments(fn: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> Tuple[List[str], Dict[str, Any]]:
    """The names of `fn`'s plain parameters and the call's arguments by name (`args` as
    given to `fn`, `self` too for a method)."""
    signature = _signature(fn) if fn is not None else None
    if signature is None:
        return [], {}
    try:
        bound = signature.bind(*args, **kwargs)
    except TypeError:  # the call itself will say so
        return [], {}
    plain = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD,
             inspect.Parameter.KEYWORD_ONLY)
    names = [n for n, p in signature.parameters.items() if p.kind in plain]
    return names, dict(bound.arguments)


def _method_arguments(fn: Any, obj: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]
                      ) -> Tuple[List[str], Dict[str, Any]]:
    names, arguments = _arguments(fn, (obj, *args), kwargs)
    return names[1:], arguments  # without self


def _param_name(key: object) -> Optional[str]:
    if not isinstance(key, str) or not key.strip() or len(key) > values.MAX_NAME - len("param_"):
        return None
    if key in values.RESERVED or environment.is_environment_key(key):
        return "param_" + key  # a name the package records itself: kept, renamed
    return key


def _param_value(key: str, value: Any) -> PropertyValue:
    """A param as stored: a number, bool or string as itself, anything else (None, an
    estimator, a list) as its text on one line, as MLflow logs it."""
    if isinstance(value, (bool, int, float, str)) or (type(value).__module__ == "numpy"
                                                      and getattr(value, "ndim", None) == 0):
        try:
            return values.normalize(key, value, values.Role.PARAM)
        except MlmdExerciseError:
            pass
    try:
        text = " ".join(str(value).split())
    except Exception:
        text = type(value).__name__
    text = text.replace("\x00", "\ufffd").encode("utf-8", "replace").decode("utf-8")
    return text if len(text) <= _MAX_TEXT else text[:_MAX_TEXT - 1] + "\u2026"


def _params(estimator: Any, deep: bool) -> Dict[str, PropertyValue]:
    try:
        given = estimator.get_params(deep=deep)
    except Exception as e:
        log.debug("autolog: no params of %s: %s", type(estimator).__name__, e)
        return {}
    params: Dict[str, PropertyValue] = {}
    for key, value in given.items():
        name = _param_name(key)
        if name is not None:
            params[name] = _param_value(name, value)
    return params


def _describe(config: _Config, role: str, value: Any, frame: Optional[FrameType],
              known: Tuple[Tuple[Any, _Data], ...] = ()) -> Optional[_Data]:
    for obj, described in known:
        if obj is value and described.role == role:
            return described
    found = data.describe(value)
    if found is None:
        return None
    digest, properties = found
    name = data.name_in(frame, value) or role
    pending = config.tracker.described(data.data_uri(frame, name), digest, properties=properties)
    return _Data(role, name, digest, pending, data.origin_of(value))


def _role(role: str, what: str, n: int) -> str:
    return f"{role}.{what}" if n == 1 else f"{role}.{what}.{n}"


def _inputs(config: _Config, datas: List[_Data]) -> Dict[str, Input]:
    """A run's inputs: its data, the files it was read from, the models that made it."""
    inputs: Dict[str, Input] = {}
    seen = set()
    for d in datas:
        if (d.pending.uri, d.fingerprint) not in seen:
            seen.add((d.pending.uri, d.fingerprint))
            inputs[d.role] = d.pending
    for d in datas:
        if d.origin is None:
            continue
        for n, source in enumerate(sorted(d.origin.sources, key=lambda s: (s.uri, s.fingerprint)), 1):
            if (source.uri, source.fingerprint) not in seen:
                seen.add((source.uri, source.fingerprint))
                inputs[_role(d.role, "source", n)] = config.tracker.described(
                    source.uri, source.fingerprint, properties={"reader": source.reader})
        for n, made in enumerate(sorted(d.origin.made_by, key=lambda m: m.model.id), 1):
            if ("model", made.model.id) not in seen:
                seen.add(("model", made.model.id))
                inputs[_role(d.role, "made_by", n)] = made.model
    return inputs


# -- fits --------------------------------------------------------------------------------

def _fit_hook(method: str) -> Callable[..., Any]:
    def hook(call: Callable[..., Any], fn: Any, estimator: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> Any:
        config = _config
        if config is None or config.pid != os.getpid():
            return call(*args, **kwargs)
        search: Optional[_Search] = None
        if _local.depth:
            search = _local.search
            if search is None or getattr(search.searcher, "best_estimator_", None) is not estimator:
                return call(*args, **kwargs)  # inside a recorded call: a Pipeline's step, a candidate
        return _recorded_fit(config, method, call, fn, estimator, args, kwargs, search)

    return hook


def _recorded_fit(config: _Config, method: str, call: Callable[..., Any], fn: Any, estimator: Any,
                  args: Tuple[Any, ...], kwargs: Dict[str, Any], search: Optional[_Search]) -> Any:
    frame = data.user_frame()
    what = f"{type(estimator).__name__}.{method}"
    with _inside():
        started = _safely(f"the start of {what}", lambda: _start(config, fn, estimator, args, kwargs, frame, search))
    previous = _local.search
    _local.search = None
    if started is not None and _is_search(estimator):
        _local.search = _Search(estimator, started.run, started.described)
    _local.depth = _local.depth + 1
    try:
        result = call(*args, **kwargs)
    except BaseException as error:
        if started is not None:
            run = started.run
            state = ExecutionState.CANCELED if isinstance(error, KeyboardInterrupt) else ExecutionState.FAILED
            _safely(f"the failure of run {run.id} ({what})", lambda: run.finish(state, error))
        raise
    else:
        if started is not None:
            begun = started
            _safely(f"the end of run {begun.run.id} ({what})",
                    lambda: _finish(config, method, estimator, result, begun))
        return result
    finally:
        _local.depth -= 1
        _local.search = previous


def _start(config: _Config, fn: Any, estimator: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any],
           frame: Optional[FrameType], search: Optional[_Search]) -> _Started:
    names, arguments = _method_arguments(fn, estimator, args, kwargs)
    first = names[0] if names else ""
    x = arguments.get(first) if first else None
    y_role = next((r for r in ("y", "Y") if r in names and r != first), "y")
    y = arguments.get(y_role)
    weight = arguments.get("sample_weight") if first != "sample_weight" else None
    known = tuple(search.described) if search is not None else ()
    described: List[Tuple[Any, _Data]] = []
    for role, value in ((first, x), (y_role, y), ("sample_weight", weight)):
        if value is not None:
            found = _describe(config, role, value, frame, known)
            if found is not None:
                described.append((value, found))
    inputs = _inputs(config, [d for _, d in described])
    before = config.fitted.get(estimator)
    warm = getattr(estimator, "warm_start", False)
    if before is not None and before.model is not None and isinstance(warm, (bool, int)) and warm:
        inputs["warm_start"] = before.model  # it goes on from that model
    params = _params(estimator, deep=not _is_search(estimator))  # a search's estimator: a seed, not what ran
    if search is not None:
        params["search_run"] = search.run.id
    run = config.tracker.execution(type(estimator).__name__, inputs=inputs, params=params)
    return _Started(run, described, x, y, weight)


def _training_score(estimator: Any, started: _Started) -> Optional[float]:
    if started.x is None or not hasattr(estimator, "score"):
        return None
    extra = {"sample_weight": started.weight} if started.weight is not None else {}
    with warnings.catch_warnings():  # the script's own warnings only
        warnings.simplefilter("ignore")
        value = (estimator.score(started.x, started.y, **extra) if started.y is not None
                 else estimator.score(started.x, **extra))
    return value if _is_number(value) else None


def _finish(config: _Config, method: str, estimator: Any, result: Any, started: _Started) -> None:
    run = started.run
    metrics: Dict[str, Any] = {}
    score = _safely(f"the training score of run {run.id}", lambda: _training_score(estimator, started))
    if score is not None:
        metrics["training_score"] = score
    if _is_search(estimator):
        best = getattr(estimator, "best_score_", None)
        if _is_number(best):
            metrics["best_cv_score"] = best
        _safely(f"the candidates of run {run.id}", lambda: _candidates(config, estimator, run))
    if metrics:
        _safely(f"the training metrics of run {run.id}", lambda: run.log_metrics(metrics))
    if config.log_models:
        _safely(f"the model of run {run.id}", lambda: _save_model(config, estimator, run))
    run.finish()
    x = next((d for value, d in started.described if value is started.x), None)
    y = next((d for value, d in started.described if value is started.y), None)
    fitted = _Fitted(run, run.outputs.get("model"), (x.fingerprint if x else "", y.fingerprint if y else ""))
    config.fitted.set(estimator, fitted)
    if method != "fit":  # fit_transform, fit_predict: what it made of its training data
        _note_output(fitted, method, result, x, started.x)


def _save_model(config: _Config, estimator: Any, run: Run) -> None:
    import joblib

    config.model_dir.mkdir(parents=True, exist_ok=True)
    path = config.model_dir / f"{type(estimator).__name__}-{run.id}.joblib"
    joblib.dump(estimator, path)
    run.log_model(path, name=type(estimator).__name__)


def _candidates(config: _Config, search: Any, run: Run) -> None:
    """A search's candidates as runs of their own, from its `cv_results_`."""
    results = getattr(search, "cv_results_", None)
    if not isinstance(results, dict) or "params" not in results:
        return
    base = getattr(search, "estimator", None)
    kind = type(base).__name__ if base is not None else "Candidate"
    inputs: Dict[str, Input] = dict(run.inputs)
    for i, chosen in enumerate(results["params"]):
        params = _candidate_params(base, chosen)
        params["search_run"] = run.id
        metrics = {k: v[i] for k, v in results.items()
                   if k != "params" and not k.startswith("param_") and _is_number(v[i])}
        tests = [float(v) for k, v in metrics.items() if k.startswith("split") and "_test_" in k]
        failed = bool(tests) and all(math.isnan(v) for v in tests)  # every fit of it failed (error_score=nan)
        child = config.tracker.execution(kind, inputs=inputs, params=params)
        if metrics:
            child.log_metrics(metrics)
        child.finish(ExecutionState.FAILED if failed else ExecutionState.COMPLETE)


def _candidate_params(base: Any, chosen: Dict[str, Any]) -> Dict[str, PropertyValue]:
    """A candidate's params, as its estimator has them (a grid that swaps a step included)."""
    try:
        from sklearn.base import clone

        return _params(clone(base).set_params(**chosen), deep=True)
    except Exception:
        params = _params(base, deep=True) if base is not None else {}
        for key, value in chosen.items():
            name = _param_name(key)
            if name is not None:
                params[name] = _param_value(name, value)
        return params


# -- what recorded models make, and how they score ---------------------------------------

def _note_output(fitted: _Fitted, method: str, result: Any, x: Optional[_Data], x_value: Any = None) -> None:
    made = frozenset([Made(fitted.run.id, fitted.model)]) if fitted.model is not None else frozenset()
    detail = _Prediction(fitted, x) if x is not None and method in PREDICT_METHODS + ("fit_predict",) else None
    if made or detail is not None:
        data.remember(result, Origin(frozenset(), made, detail))
        owner = getattr(result, "base", None)
        if detail is not None and type(owner).__module__ == "numpy" and owner is not x_value:
            # predictions that are a view (a tree's predict_proba): numpy's views of them name
            # the array that owns the memory as their base, not the view
            data.remember(owner, Origin(frozenset(), made, detail))


def _output_hook(method: str) -> Callable[..., Any]:
    def hook(call: Callable[..., Any], fn: Any, estimator: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> Any:
        config = _active()
        if config is None:
            return call(*args, **kwargs)
        frame = data.user_frame()
        with _inside():
            result = call(*args, **kwargs)
            fitted = config.fitted.get(estimator)
            if fitted is not None:
                _safely(f"what {type(estimator).__name__}.{method} made",
                        lambda: _output(config, fitted, method, fn, estimator, args, kwargs, result, frame))
        return result

    return hook


def _output(config: _Config, fitted: _Fitted, method: str, fn: Any, estimator: Any, args: Tuple[Any, ...],
            kwargs: Dict[str, Any], result: Any, frame: Optional[FrameType]) -> None:
    x, given = None, None
    if method in PREDICT_METHODS:
        names, arguments = _method_arguments(fn, estimator, args, kwargs)
        if names:
            given = arguments.get(names[0])
            x = _describe(config, names[0], given, frame)
    _note_output(fitted, method, result, x, given)


def _score_hook(call: Callable[..., Any], fn: Any, estimator: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> Any:
    config = _active()
    if config is None:
        return call(*args, **kwargs)
    frame = data.user_frame()
    with _inside():
        result = call(*args, **kwargs)
        fitted = config.fitted.get(estimator)
        if fitted is not None and _is_number(result):
            _safely(f"{type(estimator).__name__}.score", lambda: _score(config, fitted, fn, estimator, args, kwargs,
                                                                        result, frame))
    return result


def _score(config: _Config, fitted: _Fitted, fn: Any, estimator: Any, args: Tuple[Any, ...],
           kwargs: Dict[str, Any], result: Any, frame: Optional[FrameType]) -> None:
    names, arguments = _method_arguments(fn, estimator, args, kwargs)
    if not names:
        return
    x = _describe(config, names[0], arguments.get(names[0]), frame)
    truth = arguments.get("y", arguments.get("Y"))
    y = _describe(config, "y", truth, frame) if truth is not None else None
    if x is not None:
        _evaluated(config, fitted, "score", result, x, y)


def _metric_hook(original: Callable[..., Any], args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> Any:
    config = _active()
    if config is None:
        return original(*args, **kwargs)
    frame = data.user_frame()
    with _inside():
        result = original(*args, **kwargs)
        if _is_number(result):
            _safely(f"sklearn.metrics.{original.__name__}", lambda: _metric(config, original, args, kwargs,
                                                                           result, frame))
    return result


def _metric(config: _Config, fn: Callable[..., Any], args: Tuple[Any, ...], kwargs: Dict[str, Any],
            result: Any, frame: Optional[FrameType]) -> None:
    names, arguments = _arguments(fn, args, kwargs)
    if len(names) < 2:
        return
    origin = data.origin_of(arguments.get(names[1]))
    if origin is None or not isinstance(origin.detail, _Prediction):
        return  # not a recorded model's predictions
    y = _describe(config, "y", arguments.get(names[0]), frame)
    _evaluated(config, origin.detail.fitted, fn.__name__, result, origin.detail.data, y)


def _evaluated(config: _Config, fitted: _Fitted, metric: str, value: Any, x: _Data, y: Optional[_Data]) -> None:
    """A metric of a recorded model on some data: its run's (`<metric>_<data's name>`), and on
    other data than it was trained on, an Evaluator's with that data and the model as inputs."""
    fitted.run.add_metrics({f"{metric}_{x.name}": value})
    y_print = y.fingerprint if y is not None else ""
    trained_x, trained_y = fitted.trained_on
    if x.fingerprint == trained_x and (not trained_y or not y_print or y_print == trained_y):
        return
    key = (fitted.run.id, x.fingerprint, y_print)
    evaluator = config.evaluators.get(key)
    if evaluator is not None:
        evaluator.add_metrics({metric: value})
        return
    inputs: Dict[str, Input] = {"model": fitted.model} if fitted.model is not None else {}
    inputs.update(_inputs(config, [d for d in (x, y) if d is not None]))
    evaluator = config.tracker.execution("Evaluator", inputs=inputs, params={"model_run": fitted.run.id})
    evaluator.log_metrics({metric: value})
    evaluator.finish()
    config.evaluators[key] = evaluator


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
        signature = _signature(fn)
        parameters = list(signature.parameters) if signature is not None else []
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
    global _config
    config, _config = _config, None
    if config is None:
        return
    config.patches.undo()
    data.forget()
    if config.own_store:
        config.tracker.store.close()


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
    global _config
    _config = _Config(tracker, folder, log_models, os.getpid(), patches, own_store=not isinstance(store, Store))
