"""Checking that recorded files still hold what was recorded."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Tuple
from urllib.parse import unquote, urlparse

from . import schema
from .content import FINGERPRINT, fingerprint
from .records import ArtifactRecord
from .store import Store

__all__ = ["Problem", "VerifyReport", "verify"]


@dataclass(frozen=True)
class Problem:
    artifact: ArtifactRecord
    kind: str  # "missing" or "modified"


@dataclass(frozen=True)
class VerifyReport:
    checked: int
    problems: Tuple[Problem, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(store: Store) -> VerifyReport:
    """Checks each fingerprinted `file://` artifact against its file.

    Only the newest version at each URI is checked: older versions' content was
    replaced on purpose when the newer one was logged.

    Returns:
        How many artifacts were checked and those whose file is gone or whose
        content no longer matches its fingerprint.
    """
    versions: Dict[Tuple[int, str], list] = {}
    for artifact in store.mlmd.get_artifacts():
        if artifact.uri.startswith("file://") and FINGERPRINT in artifact.custom_properties:
            versions.setdefault((artifact.type_id, artifact.uri), []).append(artifact)
    newest = [schema.newest(same) for same in versions.values()]
    problems: List[Problem] = []
    for artifact in sorted(newest, key=lambda a: a.id):
        path = Path(unquote(urlparse(artifact.uri).path))
        if not path.exists():
            problems.append(Problem(schema.artifact_record(artifact), "missing"))
        elif fingerprint(path) != artifact.custom_properties[FINGERPRINT].string_value:
            problems.append(Problem(schema.artifact_record(artifact), "modified"))
    return VerifyReport(len(newest), tuple(problems))
