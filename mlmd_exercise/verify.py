"""Checking that recorded files still hold what was recorded."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Tuple
from urllib.parse import unquote, urlparse

from . import schema
from .content import FINGERPRINT, fingerprint
from .records import ArtifactRecord
from .store import Store

__all__ = ["Problem", "Unchecked", "VerifyReport", "verify"]

_OURS = re.compile(r"sha256:[0-9a-f]{64}")  # the fingerprints this package writes
OLDER = "an older version: a newer one at its URI replaced it"


@dataclass(frozen=True)
class Problem:
    artifact: ArtifactRecord
    kind: str  # "missing" or "modified"


@dataclass(frozen=True)
class Unchecked:
    """An artifact `verify` could not check, and why."""

    artifact: ArtifactRecord
    reason: str


@dataclass(frozen=True)
class VerifyReport:
    checked: int
    problems: Tuple[Problem, ...]
    unchecked: Tuple[Unchecked, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems


def _why_not(artifact) -> str:
    """Why an artifact cannot be checked, or "" if it can."""
    value = artifact.custom_properties.get(FINGERPRINT)
    digest = value.string_value if value is not None and value.WhichOneof("value") == "string_value" else ""
    if not artifact.uri.startswith("file://"):
        return "not a local file"
    if not digest:
        return "no fingerprint recorded"
    if not _OURS.fullmatch(digest):
        return "fingerprint not written by mlmd_exercise"
    return ""


def verify(store: Store) -> VerifyReport:
    """Checks each `file://` artifact that has a fingerprint this package wrote
    ("sha256:<64 hex>") against its file.

    Only the newest version at each URI is checked: older versions' content was
    replaced on purpose when the newer one was logged.

    Returns:
        How many artifacts were checked, those whose file is gone or whose content
        no longer matches its fingerprint, and those it could not check and why: a
        URI that is not a local file, no fingerprint, another program's
        fingerprint (an `md5:...`, say), or an older version at its URI.
    """
    versions: Dict[Tuple[int, str], list] = {}
    unchecked: List[Unchecked] = []
    for artifact in store.mlmd.get_artifacts():
        reason = _why_not(artifact)
        if reason:
            unchecked.append(Unchecked(schema.artifact_record(artifact), reason))
        else:
            versions.setdefault((artifact.type_id, artifact.uri), []).append(artifact)
    newest = [schema.newest(same) for same in versions.values()]
    kept = {a.id for a in newest}
    unchecked += [Unchecked(schema.artifact_record(a), OLDER) for same in versions.values()
                  for a in same if a.id not in kept]
    problems: List[Problem] = []
    for artifact in sorted(newest, key=lambda a: a.id):
        path = Path(unquote(urlparse(artifact.uri).path))
        if not path.exists():
            problems.append(Problem(schema.artifact_record(artifact), "missing"))
        elif fingerprint(path) != artifact.custom_properties[FINGERPRINT].string_value:
            problems.append(Problem(schema.artifact_record(artifact), "modified"))
    unchecked.sort(key=lambda u: u.artifact.id)
    return VerifyReport(len(newest), tuple(problems), tuple(unchecked))
