"""What a wrapped call was given, and what of it a run records: its arguments by name, an
estimator's params as MLflow flattens them, and a guard that keeps the recording's own
failures out of the script."""

from __future__ import annotations

import inspect
import logging
import numbers
from typing import Any, Callable, Dict, List, Optional, Tuple, TypeVar

from mlmd_exercise import environment, values
from mlmd_exercise.errors import MlmdExerciseError
from mlmd_exercise.records import PropertyValue

__all__ = ["safely", "is_number", "arguments", "method_arguments", "param_name", "param_value", "params_of",
           "MAX_TEXT"]

log = logging.getLogger("mlmd_exercise.integrations.sklearn")  # one logger for what autolog says
T = TypeVar("T")
MAX_TEXT = 1000  # characters of a param recorded as text (an estimator's repr)
_PLAIN = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
_signatures: Dict[Any, Optional[inspect.Signature]] = {}


def safely(what: str, action: Callable[[], T], who: str = "autolog", logger: Optional[logging.Logger] = None
           ) -> Optional[T]:
    """Runs part of the recording: a failure is logged as a warning (by `who`, on `logger`: the
    integration's own), never raised into the script."""
    logger = logger or log
    try:
        return action()
    except Exception as e:
        logger.warning("%s could not record %s: %s", who, what, e)
        logger.debug("%s: %s", who, what, exc_info=True)
        return None


def is_number(value: object) -> bool:
    """A real number a metric can hold (numpy's too), not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _signature(fn: Any) -> Optional[inspect.Signature]:
    if fn not in _signatures:
        try:
            _signatures[fn] = inspect.signature(fn)
        except (TypeError, ValueError):
            _signatures[fn] = None
    return _signatures[fn]


def arguments(fn: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> Tuple[List[str], Dict[str, Any]]:
    """The names of `fn`'s plain parameters, and the call's arguments by name; nothing where
    the call does not fit `fn` (the call itself will say so)."""
    signature = _signature(fn) if fn is not None else None
    if signature is None:
        return [], {}
    try:
        bound = signature.bind(*args, **kwargs)
    except TypeError:
        return [], {}
    return [n for n, p in signature.parameters.items() if p.kind in _PLAIN], dict(bound.arguments)


def method_arguments(fn: Any, obj: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]
                     ) -> Tuple[List[str], Dict[str, Any]]:
    """`arguments` of a method called on `obj`, `self` left out."""
    names, given = arguments(fn, (obj, *args), kwargs)
    return names[1:], given


def param_name(key: object) -> Optional[str]:
    """The name a param is recorded under: a name this package records itself gets `param_`
    before it; None for one no store takes (too long, not a string)."""
    if not isinstance(key, str) or not key.strip() or len(key) > values.MAX_NAME - len("param_"):
        return None
    if key in values.RESERVED or environment.is_environment_key(key):
        return "param_" + key
    return key


def param_value(key: str, value: Any) -> PropertyValue:
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
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT - 1] + "\u2026"


def params_of(estimator: Any, deep: bool, chosen: Optional[Dict[str, Any]] = None) -> Dict[str, PropertyValue]:
    """An estimator's `get_params(deep=...)` as recorded (a nested one's as `step__param`),
    with `chosen` values over them."""
    try:
        given = dict(estimator.get_params(deep=deep))
    except Exception as e:
        log.debug("autolog: no params of %s: %s", type(estimator).__name__, e)
        given = {}
    given.update(chosen or {})
    params: Dict[str, PropertyValue] = {}
    for key, value in given.items():
        name = param_name(key)
        if name is not None:
            params[name] = param_value(name, value)
    return params
