"""Data in a process's memory, as autolog records it: fingerprinted by its content, named by
where it lives (the script and the variable), and followed back to the files pandas read it
from.

- A DataFrame, Series, array, sparse matrix or list is fingerprinted by its content (values,
  column names and types, shape): the same data is the same fingerprint whatever object holds
  it, and changed data a new one.
- Its URI names it by the script that holds it and the variable it is in
  (`python:/home/me/proj/train.py#X_train`, or `#X` where it has no name), so that the same
  variable holding new data is the next version of that artifact.
- Where it came from (`Origin`): the files pandas read it from in this process (`read_csv`,
  `read_parquet`, `read_json`), fingerprinted when they were read, and the recorded models that
  made it (a transformer's output, a model's predictions). pandas passes what a frame came from
  on to what is made of it (`drop`, a column, `train_test_split`'s rows, `concat`, arithmetic)
  through `NDFrame.__finalize__`, the hook that carries `DataFrame.attrs`; the origin is kept
  here, by object, never on the frame itself, so that nothing the script sees changes. A numpy
  array made from a frame (`.to_numpy()`) has no origin: its content is still recorded.
"""

from __future__ import annotations

import hashlib
import re
import logging
import os
import pickle
import sys
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType, SimpleNamespace
from typing import Any, Callable, Dict, FrozenSet, Generic, Iterable, Optional, Tuple, TypeVar
from urllib.parse import quote

from mlmd_exercise.content import fingerprint
from mlmd_exercise.integrations.patching import Patches
from mlmd_exercise.records import PropertyValue
from mlmd_exercise.write.artifacts import file_uri

__all__ = ["Source", "Made", "Origin", "WeakIdMap", "describe", "origin_of", "remember", "forget",
           "watch_pandas", "user_frame", "name_in", "data_uri", "READERS"]

log = logging.getLogger(__name__)
V = TypeVar("V")

# The pandas readers whose files are recorded (the path is their first argument).
READERS = ("read_csv", "read_parquet", "read_json")
# Modules whose frames are not the user's: their callers name the data.
_NOT_THE_USERS = ("sklearn.", "mlmd_exercise.integrations", "joblib.", "functools", "threadpoolctl", "lightgbm.")


@dataclass(frozen=True)
class Source:
    """A file pandas read, as it was when it was read."""

    uri: str
    fingerprint: str
    reader: str  # "pandas.read_csv"


@dataclass(frozen=True)
class Made:
    """A recorded model that made some data: its run and its SavedModel."""

    run_id: int
    model: Any = field(compare=False)  # its ArtifactRecord (a run makes one model)


@dataclass(frozen=True)
class Origin:
    """Where some data came from. `detail` is the integration's own (a prediction's model and
    input), kept for that object alone, not passed on."""

    sources: FrozenSet[Source] = frozenset()
    made_by: FrozenSet[Made] = frozenset()
    detail: Any = None

    def passed_on(self) -> "Origin":
        return Origin(self.sources, self.made_by)

    def __or__(self, other: "Origin") -> "Origin":
        return Origin(self.sources | other.sources, self.made_by | other.made_by, self.detail or other.detail)


class WeakIdMap(Generic[V]):
    """Values by object identity for as long as the object lives (pandas objects and arrays
    cannot be dict keys; an id alone could name a later object)."""

    def __init__(self) -> None:
        self._items: Dict[int, Tuple["weakref.ref[Any]", V]] = {}

    def set(self, obj: Any, value: V) -> bool:
        """Keeps `value` for `obj`; False where `obj` cannot be referred to weakly (an int, a tuple)."""
        key = id(obj)
        items = self._items

        def gone(ref: "weakref.ref[Any]") -> None:
            entry = items.get(key)
            if entry is not None and entry[0] is ref:
                del items[key]

        try:
            ref = weakref.ref(obj, gone)
        except TypeError:
            return False
        items[key] = (ref, value)
        return True

    def get(self, obj: Any) -> Optional[V]:
        entry = self._items.get(id(obj))
        return entry[1] if entry is not None and entry[0]() is obj else None

    def clear(self) -> None:
        self._items.clear()

    def __len__(self) -> int:
        return len(self._items)


_origins: WeakIdMap[Origin] = WeakIdMap()


def remember(obj: Any, origin: Origin) -> None:
    """Notes where `obj` came from (merged with what was noted before)."""
    before = _origins.get(obj)
    _origins.set(obj, origin if before is None else before | origin)


def origin_of(obj: Any) -> Optional[Origin]:
    """Where `obj` came from, if known; a numpy view (`proba[:, 1]`) is its base's."""
    for _ in range(4):
        found = _origins.get(obj)
        if found is not None or type(obj).__module__ != "numpy":
            return found
        obj = getattr(obj, "base", None)  # (a DataFrame's attribute look-up would search its columns)
    return None


def forget() -> None:
    """Forgets every origin (autolog turned off)."""
    _origins.clear()


# -- pandas: the files read, and what is made of them ----------------------------

def _reader(name: str) -> Callable[..., Any]:
    def hook(original: Callable[..., Any], args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> Any:
        result = original(*args, **kwargs)
        try:
            given = args[0] if args else next((kwargs[k] for k in ("filepath_or_buffer", "path", "path_or_buf")
                                               if k in kwargs), None)
            if isinstance(given, (str, os.PathLike)) and "://" not in os.fspath(given) and os.path.exists(given):
                source = Source(file_uri(given), fingerprint(given), f"pandas.{name}")
                remember(result, Origin(frozenset([source])))
        except Exception as e:  # never the read's failure: its file is just not recorded
            log.debug("autolog: could not note the file pandas.%s read: %s", name, e)
        return result

    return hook


def _members(other: Any) -> Iterable[Any]:
    """What pandas finalizes a result from: one object, or concat's and merge's inputs."""
    if isinstance(other, SimpleNamespace):
        return list(getattr(other, "objs", None) or ()) + list(getattr(other, "input_objs", None) or ())
    return (other,)


def _finalize(original: Callable[..., Any], fn: Any, obj: Any, args: Tuple[Any, ...],
              kwargs: Dict[str, Any]) -> Any:
    result = original(*args, **kwargs)
    if len(_origins) and args:  # nothing to pass on until a file was read
        try:
            found = [o for o in map(origin_of, _members(args[0])) if o is not None]
            if found:
                merged = Origin()
                for o in found:
                    merged = merged | o.passed_on()
                if merged.sources or merged.made_by:
                    remember(obj, merged)
        except Exception as e:
            log.debug("autolog: could not pass a frame's origin on: %s", e)
    return result


def watch_pandas(patches: Patches) -> bool:
    """Notes the files pandas reads and passes their origin on; False where pandas is not
    installed."""
    try:
        import pandas
        from pandas.core.generic import NDFrame
    except ImportError:
        return False
    for name in READERS:
        patches.function(pandas, name, _reader(name))
    patches.method(NDFrame, "__finalize__", _finalize)
    return True


# -- content ------------------------------------------------------------------------

def _feed_array(digest: Any, values: Any) -> None:
    import numpy as np

    array = np.asarray(values)
    digest.update(f"{array.dtype.str}{array.shape}".encode())
    if array.dtype.kind in "biufcmMS" or array.dtype.kind == "U":
        digest.update(np.ascontiguousarray(array).tobytes())
        return
    try:  # objects (strings, mixed): by value, not by address
        import pandas

        digest.update(pandas.util.hash_array(array.ravel()).tobytes())
    except (ImportError, TypeError, ValueError):
        digest.update(pickle.dumps(array.tolist(), protocol=4))


def _feed_frame(digest: Any, frame: Any) -> None:
    """A DataFrame's or Series' column names and types, then pandas' own hash of each row (a
    pass over the values in C: a third of the time of hashing their bytes one column at a time)."""
    import pandas

    columns = [(frame.name, frame.dtype)] if frame.ndim == 1 else list(frame.dtypes.items())
    digest.update(repr([(name, str(dtype)) for name, dtype in columns]).encode())
    try:
        digest.update(pandas.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    except TypeError:  # cells pandas cannot hash (lists, dicts): by value
        digest.update(pickle.dumps(frame.to_numpy(dtype=object).tolist(), protocol=4))


def describe(obj: Any) -> Optional[Tuple[str, Dict[str, PropertyValue]]]:
    """The fingerprint of data in memory ("sha256:..."), and what to record about it (rows,
    columns, its Python type); None for what is not data (None, a callable)."""
    kind = type(obj)
    module = kind.__module__.split(".")[0]
    digest = hashlib.sha256()
    shape: Tuple[int, ...]
    if module == "pandas" and kind.__name__ in ("DataFrame", "Series"):
        digest.update(kind.__name__.encode())
        _feed_frame(digest, obj)
        shape = tuple(obj.shape)
    elif module == "numpy" and kind.__name__ == "ndarray":
        digest.update(b"ndarray")
        _feed_array(digest, obj)
        shape = tuple(obj.shape)
    elif module == "scipy" and hasattr(obj, "tocsr"):
        matrix = obj.tocsr()
        digest.update(f"sparse{matrix.shape}".encode())
        for part in (matrix.data, matrix.indices, matrix.indptr):
            _feed_array(digest, part)
        shape = tuple(matrix.shape)
    elif isinstance(obj, (list, tuple)):
        import numpy as np

        try:
            array = np.asarray(obj)
        except ValueError:  # ragged
            array = np.asarray(obj, dtype=object)
        digest.update(b"sequence")
        _feed_array(digest, array)
        shape = tuple(array.shape)
    else:
        return None
    rows = shape[0] if shape else 1
    columns = shape[1] if len(shape) > 1 else 1
    return "sha256:" + digest.hexdigest(), {"rows": int(rows), "columns": int(columns),
                                             "python_type": f"{module}.{kind.__name__}"}


# -- names ---------------------------------------------------------------------------

def user_frame() -> Optional[FrameType]:
    """The innermost frame of the user's code: the caller of the scikit-learn (or LightGBM) call."""
    frame: Optional[FrameType] = sys._getframe(1)
    while frame is not None:
        module = frame.f_globals.get("__name__", "")
        if not (module == "sklearn" or module.startswith(_NOT_THE_USERS)):
            return frame
        frame = frame.f_back
    return None


def name_in(frame: Optional[FrameType], obj: Any) -> Optional[str]:
    """The name a variable of `frame` holds `obj` under (its locals first), if any."""
    if frame is None:
        return None
    spaces = [frame.f_locals]
    if frame.f_globals is not spaces[0]:
        spaces.append(frame.f_globals)
    for space in spaces:
        for name, value in list(space.items()):
            if value is obj and not name.startswith("_"):
                return name
    return None


# A Jupyter kernel runs each cell as a file of its own, named by a hash of the cell's code
# (ipykernel_<pid>/<hash>.py): data is named by its notebook instead, the same from cell to cell
# and from one kernel to the next (its path where Jupyter says it: $JPY_SESSION_NAME).
_CELL = re.compile(r"ipykernel_\d+/\d+\.py")


def data_uri(frame: Optional[FrameType], name: str) -> str:
    """`python:<the script's path>#<name>`: where some data lived, by name (in a notebook,
    `python:<the notebook's path, or "notebook">#<name>`)."""
    filename = frame.f_code.co_filename if frame is not None else "<unknown>"
    path = Path(filename)
    if _CELL.search(filename.replace(os.sep, "/")):
        notebook = os.environ.get("JPY_SESSION_NAME", "")
        where = file_uri(Path(notebook))[len("file://"):] if notebook else "notebook"
    else:
        where = file_uri(path)[len("file://"):] if path.is_file() else quote(filename)
    return f"python:{where}#{quote(name)}"
