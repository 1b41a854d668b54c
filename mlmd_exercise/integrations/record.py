"""Runs as autolog records them, through the Tracker: a fit's start with its inputs, its end
with its training metrics and model, and the metrics of a recorded model on some data (its
run's, and on other data than its training data an Evaluator's). What a library's call was is
sklearn.py's to say; nothing here imports scikit-learn.
"""

from __future__ import annotations

import warnings
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

from mlmd_exercise.integrations import data
from mlmd_exercise.integrations.calls import arguments, is_number, method_arguments, params_of, safely
from mlmd_exercise.integrations.data import Made, Origin, WeakIdMap
from mlmd_exercise.records import ArtifactRecord, PropertyValue
from mlmd_exercise.write.artifacts import Pending
from mlmd_exercise.write.run import Run
from mlmd_exercise.write.tracking import Tracker

__all__ = ["Data", "Fitted", "Prediction", "Started", "Recorder", "Input"]

Input = Union[Pending, ArtifactRecord]
Described = Tuple[Tuple[Any, "Data"], ...]  # objects given, and what they are


@dataclass(frozen=True)
class Data:
    """Data given to a call, described."""

    role: str  # the parameter it was given as: "X", "y"
    name: str  # the variable that held it, else the role
    fingerprint: str
    pending: Pending
    origin: Optional[Origin]


@dataclass
class Fitted:
    """A recorded fit: its run, its model, what it was trained on (fingerprints of X and y)."""

    run: Run
    model: Optional[ArtifactRecord]
    trained_on: Tuple[str, str]


@dataclass(eq=False)
class Prediction:
    """What a recorded model predicted from (an `Origin`'s detail): the data, named when it
    predicted and fingerprinted when a metric of the prediction first asks, so that a predict
    nobody scores costs no pass over its input."""

    fitted: Fitted
    role: str
    name: str
    uri: str
    given: Any  # a weak reference to the data, or the data where it takes none (a list)
    described: Optional[Data] = None

    @classmethod
    def of(cls, fitted: Fitted, role: str, name: str, uri: str, value: Any) -> "Prediction":
        try:
            given: Any = weakref.ref(value)
        except TypeError:
            given = value
        return cls(fitted, role, name, uri, given)

    def data(self, recorder: "Recorder") -> Optional[Data]:
        """The data it predicted from, described; None where that is gone."""
        if self.described is None:
            value = self.given() if isinstance(self.given, weakref.ref) else self.given
            if value is not None:
                self.described = recorder.described(self.role, value, self.name, self.uri)
        return self.described


@dataclass
class Started:
    """A fit recorded as started: its run, the data it was given (X, y, sample_weight)."""

    run: Run
    described: Described
    x: Any = None
    y: Any = None
    weight: Any = None

    def data_of(self, value: Any) -> Optional[Data]:
        return next((d for given, d in self.described if given is value), None) if value is not None else None


def _role(role: str, what: str, n: int) -> str:
    return f"{role}.{what}" if n == 1 else f"{role}.{what}.{n}"


@dataclass
class Recorder:
    """Where autolog records, and what it knows of the models it recorded."""

    tracker: Tracker
    model_dir: Path
    log_models: bool
    fitted: WeakIdMap[Fitted] = field(default_factory=WeakIdMap)  # by estimator, while it lives
    evaluators: Dict[Tuple[int, str, str], Run] = field(default_factory=dict)  # (run, X, y) -> its Evaluator

    # -- data ------------------------------------------------------------------------

    def describe(self, role: str, value: Any, frame: Optional[FrameType], known: Described = ()) -> Optional[Data]:
        """`value` as a DataSet to record, None where it is no data."""
        for given, described in known:
            if given is value and described.role == role:
                return described
        return self.described(role, value, *self.named(role, value, frame))

    @staticmethod
    def named(role: str, value: Any, frame: Optional[FrameType]) -> Tuple[str, str]:
        """The name and URI of data the script's `frame` holds (its variable, else its role)."""
        name = data.name_in(frame, value) or role
        return name, data.data_uri(frame, name)

    def described(self, role: str, value: Any, name: str, uri: str) -> Optional[Data]:
        """Data of that name fingerprinted; None where `value` is no data."""
        found = data.describe(value)
        if found is None:
            return None
        digest, properties = found
        pending = self.tracker.described(uri, digest, properties=properties)
        return Data(role, name, digest, pending, data.origin_of(value))

    def inputs(self, datas: List[Data]) -> Dict[str, Input]:
        """A run's inputs: its data, the files it was read from (`X.source`), the models that
        made it (`X.made_by`); each once."""
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
                    inputs[_role(d.role, "source", n)] = self.tracker.described(
                        source.uri, source.fingerprint, properties={"reader": source.reader})
            for n, made in enumerate(sorted(d.origin.made_by, key=lambda m: m.model.id), 1):
                if ("model", made.model.id) not in seen:
                    seen.add(("model", made.model.id))
                    inputs[_role(d.role, "made_by", n)] = made.model
        return inputs

    # -- fits ------------------------------------------------------------------------

    def start(self, estimator: Any, fn: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any],
              frame: Optional[FrameType], *, deep: bool, parent: Optional[Run] = None, known: Described = ()) -> Started:
        """Records a fit as RUNNING with its inputs: its data, and the model a warm start goes
        on from. `deep`: the params of the estimators inside it too; `parent`: the search
        whose refit it is."""
        names, given = method_arguments(fn, estimator, args, kwargs)
        first = names[0] if names else ""
        x = given.get(first) if first else None
        y_role = next((r for r in ("y", "Y") if r in names and r != first), "y")
        y = given.get(y_role)
        weight = given.get("sample_weight") if first != "sample_weight" else None
        described: List[Tuple[Any, Data]] = []
        for role, value in ((first, x), (y_role, y), ("sample_weight", weight)):
            found = self.describe(role, value, frame, known) if value is not None else None
            if found is not None:
                described.append((value, found))
        inputs = self.inputs([d for _, d in described])
        before = self.fitted.get(estimator)
        warm = getattr(estimator, "warm_start", False)
        if before is not None and before.model is not None and isinstance(warm, (bool, int)) and warm:
            inputs["warm_start"] = before.model  # it goes on from that model
        params = params_of(estimator, deep=deep)
        if parent is not None:
            params["search_run"] = parent.id
        run = self.tracker.execution(type(estimator).__name__, inputs=inputs, params=params)
        return Started(run, tuple(described), x, y, weight)

    def finish(self, estimator: Any, started: Started, metrics: Dict[str, Any], made: Optional[str] = None,
               result: Any = None) -> None:
        """Records a fit that returned: its training score and `metrics`, its model, COMPLETE.
        `made`: "transform" or "predict" where the fit returned what it made of its data."""
        run = started.run
        score = safely(f"the training score of run {run.id}", lambda: self._training_score(estimator, started))
        if score is not None:
            metrics = {"training_score": score, **metrics}
        if metrics:
            safely(f"the training metrics of run {run.id}", lambda: run.log_metrics(metrics))
        if self.log_models:
            safely(f"the model of run {run.id}", lambda: self._save_model(estimator, run))
        run.finish()
        x, y = started.data_of(started.x), started.data_of(started.y)
        fitted = Fitted(run, run.outputs.get("model"), (x.fingerprint if x else "", y.fingerprint if y else ""))
        self.fitted.set(estimator, fitted)
        if made is not None:  # what it made of its training data
            prediction = Prediction(fitted, x.role, x.name, x.pending.uri, None, x) \
                if made == "predict" and x is not None else None
            self.note_output(fitted, prediction, result, started.x)

    @staticmethod
    def _training_score(estimator: Any, started: Started) -> Optional[float]:
        if started.x is None or not hasattr(estimator, "score"):
            return None
        extra = {"sample_weight": started.weight} if started.weight is not None else {}
        with warnings.catch_warnings():  # the script's own warnings only
            warnings.simplefilter("ignore")
            value = (estimator.score(started.x, started.y, **extra) if started.y is not None
                     else estimator.score(started.x, **extra))
        return value if is_number(value) else None

    def _save_model(self, estimator: Any, run: Run) -> None:
        import joblib

        self.model_dir.mkdir(parents=True, exist_ok=True)
        path = self.model_dir / f"{type(estimator).__name__}-{run.id}.joblib"
        joblib.dump(estimator, path)
        run.log_model(path, name=type(estimator).__name__)

    # -- what recorded models make, and how they score -------------------------------

    @staticmethod
    def note_output(fitted: Fitted, prediction: Optional[Prediction], result: Any, given: Any) -> None:
        """Notes what a recorded model made of `given` (a transformer's output, a prediction):
        what is fitted on it has the model as input, a metric of a prediction is the model's."""
        made = frozenset([Made(fitted.run.id, fitted.model)]) if fitted.model is not None else frozenset()
        if (not made and prediction is None) or result is given:  # (an identity transformer's)
            return
        data.remember(result, Origin(frozenset(), made, prediction))
        owner = getattr(result, "base", None)
        if prediction is not None and type(owner).__module__ == "numpy" and owner is not given:
            # a prediction that is a view (a tree's predict_proba): numpy's views of it name
            # the array that owns the memory as their base, not the view
            data.remember(owner, Origin(frozenset(), made, prediction))

    def output(self, fitted: Fitted, prediction: bool, fn: Any, estimator: Any, args: Tuple[Any, ...],
               kwargs: Dict[str, Any], result: Any, frame: Optional[FrameType]) -> None:
        """After a recorded model's predict or transform."""
        names, given = method_arguments(fn, estimator, args, kwargs)
        x = given.get(names[0]) if names else None
        predicted = Prediction.of(fitted, names[0], *self.named(names[0], x, frame), x) \
            if prediction and x is not None else None
        self.note_output(fitted, predicted, result, x)

    def score(self, fitted: Fitted, fn: Any, estimator: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any],
              result: Any, frame: Optional[FrameType]) -> None:
        """After a recorded model's `score(X, y)`."""
        names, given = method_arguments(fn, estimator, args, kwargs)
        if not names:
            return
        x = self.describe(names[0], given.get(names[0]), frame)
        truth = given.get("y", given.get("Y"))
        y = self.describe("y", truth, frame) if truth is not None else None
        if x is not None:
            self.evaluated(fitted, "score", result, x, y)

    def metric(self, fn: Callable[..., Any], args: Tuple[Any, ...], kwargs: Dict[str, Any], result: Any,
               frame: Optional[FrameType]) -> None:
        """After a metric function `fn(y_true, y_pred, ...)`: the predicting model's, if recorded."""
        names, given = arguments(fn, args, kwargs)
        if len(names) < 2:
            return
        origin = data.origin_of(given.get(names[1]))
        if origin is None or not isinstance(origin.detail, Prediction):
            return  # not a recorded model's predictions
        prediction = origin.detail
        x = prediction.data(self)
        if x is None:  # what it predicted from is gone: the model's run alone
            prediction.fitted.run.add_metrics({f"{fn.__name__}_{prediction.name}": result})
            return
        self.evaluated(prediction.fitted, fn.__name__, result, x, self.describe("y", given.get(names[0]), frame))

    def evaluated(self, fitted: Fitted, metric: str, value: PropertyValue, x: Data, y: Optional[Data]) -> None:
        """A metric of a recorded model on some data: its run's (`<metric>_<data's name>`,
        MLflow's post-training metric) and, on other data than its training data, an
        Evaluator's, with that data and the model as inputs (one per model and data)."""
        fitted.run.add_metrics({f"{metric}_{x.name}": value})
        y_print = y.fingerprint if y is not None else ""
        trained_x, trained_y = fitted.trained_on
        if x.fingerprint == trained_x and (not trained_y or not y_print or y_print == trained_y):
            return
        key = (fitted.run.id, x.fingerprint, y_print)
        evaluator = self.evaluators.get(key)
        if evaluator is not None:
            evaluator.add_metrics({metric: value})
            return
        inputs: Dict[str, Input] = {"model": fitted.model} if fitted.model is not None else {}
        inputs.update(self.inputs([d for d in (x, y) if d is not None]))
        evaluator = self.tracker.execution("Evaluator", inputs=inputs, params={"model_run": fitted.run.id})
        evaluator.log_metrics({metric: value})
        evaluator.finish()
        self.evaluators[key] = evaluator
