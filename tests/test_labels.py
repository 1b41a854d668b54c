"""labels.py: the most telling name of a node from any program's store."""

from __future__ import annotations

import pytest

from mlmd_exercise import labels


@pytest.mark.parametrize("type_name, short", [
    ("tfx.components.trainer.component.Trainer", "Trainer"),
    ("system.ContainerExecution", "ContainerExecution"),
    ("Trainer", "Trainer"),
    ("<class 'pandas.DataFrame'>", "<class 'pandas.DataFrame'>"),  # not a class path: as it is
    ("my step.v2", "my step.v2"),
])
def test_short_type_is_the_last_part_of_a_class_path(type_name, short):
    assert labels.short_type(type_name) == short


@pytest.mark.parametrize("properties, uri, name", [
    ({"display_name": "train 🚀", "name": "x"}, "s3://b/m", "train 🚀"),
    ({"name": "LogisticRegressionModel"}, "file:///w/m.joblib", "LogisticRegressionModel"),
    ({}, "file:///w/data/train.csv", "train.csv"),
    ({}, "gs://bucket/root/Trainer/model/7", "model/7"),  # TFX: not just "7"
    ({}, "/serving/7/12", "serving/7/12"),
    ({}, "", ""),
])
def test_artifact_name(properties, uri, name):
    assert labels.artifact_name(properties, uri) == name


def test_execution_name_prefers_display_then_task_name():
    assert labels.execution_name({"task_name": "t", "display_name": "d"}) == "d"
    assert labels.execution_name({"task_name": "t"}) == "t"
    assert labels.execution_name({"C": 1.0}) is None


def test_shorten_cuts_with_an_ellipsis():
    assert labels.shorten("x" * 40) == "x" * 40
    assert labels.shorten("x" * 41) == "x" * 39 + "\u2026"
