"""The README's value table, one test per row: every Python value a user may log as a param, a
metric or a property, on each database and backend (the `db` fixture), read back through this
package on both backends and through raw ml-metadata; or refused at the call, in one line
naming the key and the value, with nothing recorded."""

from __future__ import annotations

import datetime
import decimal
import functools
import gc
import math
import re
from pathlib import Path
from typing import Any, NamedTuple, Optional

import numpy as np
import pandas as pd
import pytest

import mlmd_exercise as mx
from conftest import NATIVE_TOO, write
from mlmd_exercise.read.history import metric_history
from mlmd_exercise.store import choice
from mlmd_exercise.store.backend import Query
from raw_mlmd import raw_mlmd

VALUE_TABLE_PAGE = Path(__file__).resolve().parent.parent / "docs" / "python.md"  # the value table
LONG = "ن" * 50_000 + "\u200f" + "x" * 49_999  # 100,000 characters: Arabic, an RTL mark, ASCII
REFUSED = None  # what a row expects where the value is refused


class Row(NamedTuple):
    """One row of the value table: its first cell, the value logged, what a param reads
    back as (REFUSED: refused at the call), what a metric reads back as, and which of MLMD's
    value fields holds it (as raw ml-metadata sees it)."""

    name: str
    value: Any
    param: Any
    metric: Any
    field: Optional[str]


ROWS = [
    Row("int within 32 bits", 7, 7, 7, "int_value"),
    Row("int beyond 32 bits, up to 2\\*\\*53", 2 ** 40, float(2 ** 40), float(2 ** 40), "double_value"),
    Row("int beyond 2\\*\\*53", 2 ** 64 + 1, str(2 ** 64 + 1), REFUSED, "string_value"),
    Row("float", 0.25, 0.25, 0.25, "double_value"),
    Row("NaN", float("nan"), float("nan"), float("nan"), "proto_value"),
    Row("+inf, -inf", float("-inf"), float("-inf"), float("-inf"), "proto_value"),
    Row("-0.0", -0.0, -0.0, -0.0, "proto_value"),
    Row("bool", True, True, REFUSED, "bool_value"),
    Row("str, any Unicode, any length", LONG, LONG, REFUSED, "string_value"),
    Row("str with a NUL character", "a\x00b", REFUSED, REFUSED, None),
    Row("str with a lone surrogate", "a\ud800", REFUSED, REFUSED, None),
    Row("numpy scalar", np.float32(0.5), 0.5, 0.5, "double_value"),
    Row("numpy 0-d array", np.array(3, dtype=np.int64), 3, 3, "int_value"),
    Row("pandas scalar (NA, NaT, Timestamp)", pd.NA, REFUSED, REFUSED, None),
    Row("None", None, REFUSED, REFUSED, None),
    Row("list, tuple, set", [1, 2], REFUSED, REFUSED, None),
    Row("dict (a JSON object)", {"a": 1, "b": ["x"]}, {"a": 1.0, "b": ["x"]}, REFUSED, "struct_value"),
    Row("dict nested more than 32 levels", functools.reduce(lambda v, _: {"a": v}, range(33), 1), REFUSED, REFUSED,
        None),
    Row("datetime, date", datetime.datetime(2026, 1, 2), REFUSED, REFUSED, None),
    Row("Decimal", decimal.Decimal("0.1"), REFUSED, REFUSED, None),
    Row("bytes", b"\x00", REFUSED, REFUSED, None),
]


def same(a: Any, b: Any) -> bool:
    """Equal, of the same type; NaN equal to NaN; -0.0 told from 0.0."""
    if isinstance(a, float) and isinstance(b, float):
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    return type(a) is type(b) and a == b


def test_every_row_of_the_value_table_has_a_test():
    section = VALUE_TABLE_PAGE.read_text().split("## What a value is stored as", 1)[1].split("\n#", 1)[0]
    named = [line.split("|")[1].strip() for line in section.splitlines()
             if line.startswith("| ") and not line.startswith("| Python value") and "---" not in line]
    assert named == [r.name for r in ROWS]


def _reopened(db: str, other: bool) -> mx.Store:
    """The store opened again, with the other backend where `other` (within the db fixture's
    patch of $MLMD_BACKEND). The writer's store must be closed first: one SQLite file, one
    backend, per process. (Closed, not dropped and collected: a gc.collect() took 74 ms here.)"""
    if not other:
        return mx.open_store(db)
    return mx.open_store(db, backend="mlmd" if _writer_is_native() else "native")


def _writer_is_native() -> bool:
    return choice.choose().name == "native"


@pytest.mark.parametrize("row", ROWS, ids=[r.name for r in ROWS])
def test_a_value_as_a_param_is_kept_or_refused_at_the_call(db, tmp_path, row):
    tracker = mx.Tracker(db)
    if row.param is REFUSED:
        with pytest.raises(mx.MlmdExerciseError) as refused:
            tracker.execution(params={"p": row.value})
        message = str(refused.value)
        assert "\n" not in message and message.startswith("param 'p' = ")
        assert tracker.store.backend.executions() == []  # nothing recorded
        return
    with tracker.execution(params={"p": row.value}) as run:
        pass
    tracker.store.close()
    _check_everywhere(db, run.id, "p", row)


@pytest.mark.parametrize("row", ROWS, ids=[r.name for r in ROWS])
def test_a_value_as_a_metric_is_kept_with_its_history_or_refused_at_the_call(db, row):
    tracker = mx.Tracker(db)
    with tracker.execution() as run:
        if row.metric is REFUSED:
            with pytest.raises(mx.MlmdExerciseError) as refused:
                run.log_metric("m", row.value)
            message = str(refused.value)
            assert "\n" not in message and message.startswith("metric 'm' = ")
            run.log_metric("ok", 1)  # the run goes on
        else:
            run.log_metric("m", row.value, step=5)
    tracker.store.close()
    if row.metric is REFUSED:
        store = _reopened(db, False)
        assert "m" not in store.backend.executions(Query(ids=[run.id]))[0].properties
        return
    _check_everywhere(db, run.id, "m", row._replace(param=row.metric), metric=True)


def _check_everywhere(db: str, run_id: int, key: str, row: Row, metric: bool = False) -> None:
    for other in (False, True):
        if other and not NATIVE_TOO:
            continue  # only the native backend here: nothing else to read with
        store = _reopened(db, other)
        [execution] = store.backend.executions(Query(ids=[run_id]))
        assert same(execution.properties[key], row.param), (other, execution.properties[key])
        if metric:
            [point] = metric_history(store, run_id, key)
            assert point.step == 5 and same(point.value, row.param)
        store.close()
    if choice.mlmd_missing() is None:  # raw ml-metadata, as any other MLMD client reads it
        [raw] = raw_mlmd(db).get_executions_by_id([run_id])
        assert raw.custom_properties[key].WhichOneof("value") == row.field


def test_an_output_property_of_the_wrong_type_is_refused_when_it_is_logged(tracker, tmp_path):
    with tracker.execution() as run:
        with pytest.raises(mx.MlmdExerciseError, match=r"^property 'split' = 3: type 'DataSet' declares it "
                                                        r"STRING, not INT$"):
            run.log_output("data", write(tmp_path / "d.csv", "a\n"), type="DataSet", properties={"split": 3})
        run.log_output("data", tmp_path / "d.csv", type="DataSet", properties={"split": "test"})
    assert run.outputs["data"].properties["split"] == "test"


def test_nan_accuracy_on_a_metrics_output_is_kept_as_a_custom_property(tracker, tmp_path):
    """Metrics declares accuracy a DOUBLE, and MLMD refuses a proto value there."""
    with tracker.execution("Evaluator") as run:
        run.log_metric("accuracy", float("nan"))
        run.log_output("metrics", write(tmp_path / "m.json", "{}"), type="Metrics")
    metrics = run.outputs["metrics"]
    assert math.isnan(metrics.custom["accuracy"]) and "accuracy" not in {
        k for k in metrics.properties if k not in metrics.custom}


@pytest.mark.parametrize("params, message", [
    ({"state": "hot"}, "'state' names what this package records itself"),
    ({"metric_names": "a"}, "'metric_names' names what this package records itself"),
    ({"": 1}, "a param's name must not be empty"),
    ({"x" * 201: 1}, "is 201 characters long: at most 200"),
    ({3: 1}, "a param's name must be a string, not 3"),
    ({"host": "db1"}, "'host' names what this package records about where the run ran"),
    ({"env.python": "3"}, "'env.python' names what this package records about where the run ran"),
])
def test_a_bad_param_name_is_refused_at_the_call(tracker, params, message):
    with pytest.raises(mx.MlmdExerciseError, match=re.escape(message)):
        tracker.execution(params=params)
    assert tracker.store.backend.executions() == []


def test_a_metric_named_like_a_param_or_reserved_is_refused(tracker):
    with tracker.execution(params={"C": 1.0}) as run:
        with pytest.raises(mx.MlmdExerciseError, match="has a param 'C' already"):
            run.log_metric("C", 0.5)
        with pytest.raises(mx.MlmdExerciseError, match="'version' names what this package records itself"):
            run.log_metrics({"version": 2})
        with pytest.raises(mx.MlmdExerciseError, match=r"its step must be a whole number \(32 bits\), not 1\.5"):
            run.log_metric("loss", 0.1, step=1.5)


@pytest.mark.parametrize("inputs, message", [
    ({"examples": "data/train.csv"}, "input 'examples' is the path 'data/train.csv', not an artifact: "
                                     "pass tracker.dataset('data/train.csv')"),
    ("data/train.csv", "inputs must be a dict of name -> value, not 'data/train.csv'"),
    ({"examples": 3}, "input 'examples' must be an artifact"),
])
def test_a_wrong_argument_type_is_one_error_naming_the_argument(tracker, inputs, message):
    with pytest.raises(mx.MlmdExerciseError, match="^" + re.escape(message)):
        tracker.execution(inputs=inputs)


def test_one_pending_input_instead_of_a_dict_is_named(tracker, tmp_path):
    data = tracker.dataset(write(tmp_path / "d.csv", "a\n"))
    with pytest.raises(mx.MlmdExerciseError, match=r"^inputs must be a dict of role -> artifact, e\.g\. "
                                                    r"inputs=\{'examples': \.\.\.\}, not one artifact"):
        tracker.execution(inputs=data)
    with pytest.raises(mx.MlmdExerciseError, match=r"^params must be a dict of name -> value, not \[1\]"):
        tracker.execution(params=[1])


def test_a_finish_that_fails_records_the_run_failed_with_the_error(tracker, tmp_path, monkeypatch):
    with pytest.raises(mx.MlmdExerciseError, match="the store refuses"):
        with tracker.execution(params={"C": 1.0}) as run:
            run.log_metric("loss", 0.5)
            run.log_model(write(tmp_path / "m.bin", "m"), name="m")
            original = tracker.store.backend.put_execution
            calls = []

            def refuse_outputs(execution, artifacts=(), inputs=(), context=None):
                calls.append(len(artifacts))
                if artifacts:  # the finish with outputs fails; the one that records FAILED does not
                    raise mx.MlmdExerciseError("the store refuses")
                return original(execution, artifacts, inputs, context)

            monkeypatch.setattr(tracker.store.backend, "put_execution", refuse_outputs)
    stored = run.execution()
    assert stored.state == "FAILED"
    assert (stored.custom["error_type"], stored.custom["error_message"]) == ("MlmdExerciseError", "the store refuses")
    assert stored.custom["loss"] == 0.5 and stored.custom["C"] == 1.0  # what was logged stays
    assert [p.value for p in metric_history(tracker.store, run.id, "loss")] == [0.5]
    assert calls == [1, 0]


def test_an_error_message_with_a_nul_is_kept_readable(tracker):
    with pytest.raises(ValueError):
        with tracker.execution() as run:
            raise ValueError("bad\x00byte \ud800")
    assert run.execution().custom["error_message"] == "bad\ufffdbyte \ufffd"


def test_a_store_with_every_kind_of_value_reads_in_ml_metadata(db):
    """No backend writes a row ml-metadata cannot read: NaN and the infinities included."""
    tracker = mx.Tracker(db)
    with tracker.execution(params={"nan": float("nan"), "big": 2 ** 40}) as run:
        run.log_metrics({"loss": float("nan"), "acc": float("inf"), "n": np.int64(3)})
    del tracker, run
    gc.collect()
    executions = raw_mlmd(db).get_executions()
    assert len(executions) == 1 and executions[0].custom_properties["loss"].HasField("proto_value")
