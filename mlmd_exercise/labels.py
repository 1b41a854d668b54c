"""Names a person can read, for any store's nodes: ours, TFX's, Kubeflow's.

TFX names its types by class path (`tfx.components.trainer.component.Trainer`)
and leaves most artifacts unnamed, under URIs that end in a number; Kubeflow
gives every step the type `system.ContainerExecution` and keeps the step's name
in a `display_name` or `task_name` property. These functions pick the most
telling name available; the full one stays in tooltips and in `show`.
"""

from __future__ import annotations

import posixpath
import re
from typing import Mapping, Optional
from urllib.parse import unquote, urlparse

__all__ = ["NAME_PROPERTIES", "short_type", "shorten", "artifact_name", "execution_name", "run_name",
           "headline_metric"]

# Properties that hold a node's own name, most telling first (Kubeflow's, then ours and the guide's).
NAME_PROPERTIES = ("display_name", "task_name", "name")
_CLASS_PATH = re.compile(r"[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)+")
MAX_LABEL = 40  # characters of a name in a picture
_UUID_HEX = re.compile(r"[0-9a-f]{32}")  # the name a run gets when it is given none
# The metrics a Metrics artifact is best known by, most telling first.
HEADLINE_METRICS = ("accuracy", "f1", "f1_macro", "auc", "roc_auc", "precision", "recall",
                    "r2", "rmse", "mse", "mae", "loss")


def short_type(type_name: str) -> str:
    """The last part of a dotted class path (`...component.Trainer` -> `Trainer`), else the name."""
    if _CLASS_PATH.fullmatch(type_name):
        return type_name.rsplit(".", 1)[1]
    return type_name


def shorten(text: str, limit: int = MAX_LABEL) -> str:
    """`text` cut to `limit` characters, with an ellipsis where it was cut."""
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def _named(properties: Mapping[str, object]) -> Optional[str]:
    for key in NAME_PROPERTIES:
        value = properties.get(key)
        if isinstance(value, str) and value.strip():
            return value
    return None


def uri_name(uri: str) -> str:
    """The last part of a URI's path; with the parts before it while that part is a number
    (TFX writes `.../Trainer/model/7`: `Trainer/model/7` says more than `7`)."""
    path = unquote(urlparse(uri).path) if "://" in uri else uri.removeprefix("python:")  # data autolog saw
    parts = [p for p in path.split("/") if p]
    if not parts:
        return uri
    keep = 1
    while keep < len(parts) and keep < 3 and parts[-keep].isdigit():
        keep += 1
    return posixpath.join(*parts[-keep:])


def artifact_name(properties: Mapping[str, object], uri: str) -> str:
    """An artifact's name: a name property, else the end of its URI."""
    return _named(properties) or uri_name(uri) or uri


def execution_name(properties: Mapping[str, object]) -> Optional[str]:
    """An execution's own name (a Kubeflow step's display or task name), if it has one."""
    return _named(properties)


def run_name(name: str) -> Optional[str]:
    """A run's own name (`import`'s "name", `execution(name=...)`), not the UUID it gets by default."""
    return name if name and not _UUID_HEX.fullmatch(name) else None


def headline_metric(properties: Mapping[str, object]) -> Optional[str]:
    """"accuracy 0.958": the metric a Metrics artifact is best known by, if it has one."""
    for key in HEADLINE_METRICS:
        value = properties.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return f"{key} {value:.4g}"
    return None
