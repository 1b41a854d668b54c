"""How a metric's history lies in an MLMD store: every value logged for a key, with its step
and time, in contexts of the type `MetricHistory` that any MLMD client reads.

One run's points for one key fill contexts of `CHUNK` points each (chunk 0, 1, ...). A chunk
declares `execution_id` (the run's), `key` (the metric's name) and `chunk` (its number), and is
named `<execution id>/<chunk>/<first 16 hex digits of the key's sha256>` (MLMD's names are
unique per type: a chunk is never made twice; the digest keeps any key's name short and plain).
Each point is one custom property, `p<n>` (n from 0, nine digits: they sort in order), whose
string value is `<step> <ms since the epoch> <value>`, the value as Python writes it (`3`,
`0.25`, `nan`, `inf`, `-0.0`): exact, whatever the float.

Why so: appending a point adds one property row (ml-metadata's field-masked `put_contexts`
writes that row alone; MLMD still reads the chunk it changes, so a chunk is kept small); the
chunks are contexts with no members, so lineage walks, `ls`, `show` and the explorer's run
lists never read them, and artifacts' and executions' ids are what they were without a
history; the run's summary value of each metric stays on its execution, as before. Plain
data only here: `write/metrics.py` appends, `read/history.py` reads.
"""

from __future__ import annotations

import hashlib
from typing import Dict, Iterable, List, Mapping, NamedTuple, Tuple, Union

from mlmd_exercise.errors import MlmdExerciseError
from mlmd_exercise.records import PropertyValue
from mlmd_exercise.schema import METRIC_HISTORY

__all__ = ["METRIC_HISTORY", "CHUNK", "Point", "chunk_name", "point_key", "point_text", "parse_point",
           "chunk_texts", "chunk_points", "series", "MetricHistory"]

CHUNK = 1000  # points per context
_PREFIX = "p"
Number = Union[int, float]


class Point(NamedTuple):
    """One logged value of a metric: its step, when it was logged (ms since the epoch), the value.
    (A named tuple: a 100,000-point history is read in a few tenths of a second.)"""

    step: int
    ms: int
    value: Number


class MetricHistory(List[Point]):
    """A run's history of one metric, as `metric_history` returns it: the points, in the order
    logged (a list, as it always was), with the run and the key they belong to."""

    def __init__(self, points: Iterable[Point] = (), *, execution_id: int = 0, key: str = "") -> None:
        super().__init__(points)
        self.execution_id = execution_id
        self.key = key

    def _repr_html_(self) -> str:  # Jupyter's display hook: the curve (notebook.py)
        from mlmd_exercise import notebook

        return notebook.html(self)


def chunk_name(execution_id: int, chunk: int, key: str) -> str:
    return f"{int(execution_id)}/{int(chunk)}/{hashlib.sha256(key.encode()).hexdigest()[:16]}"


def point_key(n: int) -> str:
    """The property name of a run's n-th point of a key (from 0)."""
    return f"{_PREFIX}{n:09d}"


def point_text(point: Point) -> str:
    value = point.value
    return f"{int(point.step)} {int(point.ms)} {value!r}" if isinstance(value, float) else \
        f"{int(point.step)} {int(point.ms)} {int(value)}"


def parse_point(text: str) -> Point:
    """A point from its stored text.

    Raises:
        MlmdExerciseError: the text is not a point.
    """
    try:
        step, ms, value = text.split(" ")
        # repr of a float always has one of these (0.5, 1e-07, nan, inf); an int's text none.
        number: Number = float(value) if ("." in value or "e" in value or "n" in value) else int(value)
        return Point(int(step), int(ms), number)
    except ValueError:
        raise MlmdExerciseError(f"a metric history point reads '{text[:60]}', not '<step> <ms> <value>'") from None


def chunk_texts(custom: Mapping[str, PropertyValue]) -> List[Tuple[str, str]]:
    """(property name, text) of each point property of one chunk, in order."""
    named = [(name, text) for name, text in custom.items()
             if name[:1] == _PREFIX and isinstance(text, str) and name[1:].isdigit()]
    # Nine digits, zero-padded: the names sort as the numbers do (a tenth digit sorts after).
    named.sort(key=lambda item: (len(item[0]), item[0]))
    return named


def chunk_points(custom: Mapping[str, PropertyValue]) -> List[Tuple[int, Point]]:
    """(n, point) of each point property of one chunk, in order."""
    return [(int(name[1:]), parse_point(text)) for name, text in chunk_texts(custom)]


def series(chunks: Iterable[Mapping[str, PropertyValue]]) -> List[Point]:
    """The points of a key's chunks (their custom properties, any order), in order."""
    found: Dict[int, Point] = {}
    for custom in chunks:
        found.update(chunk_points(custom))
    return [found[n] for n in sorted(found)]
