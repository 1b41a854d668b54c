"""Replacing a library's functions and methods by wrappers, and putting the originals back.

A decorated function (a scikit-learn metric) can instead have what it wraps replaced, in its
closure: then every reference to it is wrapped, those imported before as well.

A wrapper keeps what code around it relies on: its name, signature and docstring (it is the
original's `functools.wraps`), how it pickles (by the name it is found under, which now names
the wrapper: a model or a scorer pickled while it is on loads where it is off), and, for a
method that is a descriptor (scikit-learn's `available_if`), whether the method exists at all
(`hasattr(pipeline, "predict_proba")` asks the original).
"""

from __future__ import annotations

import functools
import types
from typing import Any, Callable, Dict, List, Optional, Tuple

__all__ = ["MethodHook", "FunctionHook", "Patches", "is_patched"]

# hook(call, fn, obj, args, kwargs): `call(*args, **kwargs)` runs the original on `obj`; `fn` is
# the original function with `self` as its first parameter (for its signature), or None.
MethodHook = Callable[[Callable[..., Any], Optional[Callable[..., Any]], Any, Tuple[Any, ...], Dict[str, Any]], Any]
# hook(original, args, kwargs)
FunctionHook = Callable[[Callable[..., Any], Tuple[Any, ...], Dict[str, Any]], Any]
_MARK = "__mlmd_exercise_original__"


def is_patched(value: object) -> bool:
    """Whether `value` is one of these wrappers."""
    return hasattr(value, _MARK)


def _filled(cell: Any) -> bool:
    try:
        cell.cell_contents
    except ValueError:  # an empty cell
        return False
    return True


class _Descriptor:
    """A method that is a descriptor of its own (`available_if`), wrapped: the original decides
    whether it is there; a call goes through the hook."""

    def __init__(self, original: Any, name: str, hook: MethodHook) -> None:
        self.original = original
        inner = getattr(original, "fn", None)

        def method(obj: Any, *args: Any, **kwargs: Any) -> Any:
            call = self.original.__get__(obj, type(obj))
            return hook(call, getattr(call, "__func__", inner), obj, args, kwargs)

        if callable(inner):
            functools.update_wrapper(method, inner)
        method.__name__ = name  # a bound method pickles as getattr(obj, its function's name)
        setattr(method, _MARK, original)
        self._method = method
        setattr(self, _MARK, original)

    def __get__(self, obj: Any, owner: Optional[type] = None) -> Any:
        if obj is None:
            return self.original.__get__(obj, owner)
        self.original.__get__(obj, owner)  # AttributeError where the original is not available
        return types.MethodType(self._method, obj)


class Patches:
    """The replacements made, to undo them in reverse order."""

    def __init__(self) -> None:
        self._made: List[Tuple[Any, str, Any]] = []

    def method(self, cls: type, name: str, hook: MethodHook) -> bool:
        """Wraps the method `name` that `cls` itself defines (not one it inherits); whether it did."""
        original = cls.__dict__.get(name)
        if original is None or is_patched(original):
            return False
        new: Any
        if isinstance(original, types.FunctionType):
            fn = original

            @functools.wraps(fn)
            def new(self: Any, *args: Any, **kwargs: Any) -> Any:
                return hook(functools.partial(fn, self), fn, self, args, kwargs)

            setattr(new, _MARK, original)
        elif hasattr(type(original), "__get__") and not isinstance(original, (staticmethod, classmethod, property)):
            new = _Descriptor(original, name, hook)
        else:
            return False
        setattr(cls, name, new)
        self._made.append((cls, name, original))
        return True

    def function(self, module: types.ModuleType, name: str, hook: FunctionHook) -> bool:
        """Wraps the function `module.name`; whether it did."""
        original = module.__dict__.get(name)
        if not callable(original) or is_patched(original):
            return False

        @functools.wraps(original)
        def new(*args: Any, **kwargs: Any) -> Any:
            return hook(original, args, kwargs)

        # Pickled by the name it is found under: `module.name`, which finds the original again
        # wherever the wrapper is not in place.
        new.__module__ = module.__name__
        new.__qualname__ = name
        setattr(new, _MARK, original)
        setattr(module, name, new)
        self._made.append((module, name, original))
        return True

    def inner(self, module: types.ModuleType, name: str, hook: FunctionHook) -> bool:
        """Wraps what the decorated function `module.name` calls: the function it wraps (its
        `__wrapped__`, held in its closure, as scikit-learn's `validate_params` holds every
        metric), so that every reference to it goes through the hook, one imported before too
        (`from sklearn.metrics import accuracy_score` at the top of a script). Where it holds
        none, `function` wraps the name instead."""
        outer = module.__dict__.get(name)
        wrapped = getattr(outer, "__wrapped__", None)
        cells = [c for c in (getattr(outer, "__closure__", None) or ()) if _filled(c)]
        if any(is_patched(c.cell_contents) for c in cells):
            return False
        cell = next((c for c in cells if wrapped is not None and c.cell_contents is wrapped), None)
        if cell is None or not callable(wrapped):
            return self.function(module, name, hook)
        original = wrapped

        @functools.wraps(original)
        def new(*args: Any, **kwargs: Any) -> Any:
            return hook(original, args, kwargs)

        setattr(new, _MARK, original)
        cell.cell_contents = new
        self._made.append((cell, "cell_contents", original))
        return True

    def undo(self) -> None:
        """Puts every original back, the last replaced first."""
        while self._made:
            owner, name, original = self._made.pop()
            setattr(owner, name, original)

    def __len__(self) -> int:
        return len(self._made)
