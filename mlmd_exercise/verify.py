"""Checking that recorded files still hold what was recorded."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List, Tuple
from urllib.parse import unquote, urlparse

from . import schema
from .content import FINGERPRINT, fingerprint
from .records import ArtifactRecord
from .store import Store

__all__ = ["Problem", "Unchecked", "VerifyReport", "verify", "verify_pages"]

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


def verify_pages(store: Store, page_size: int = 1000
                 ) -> Tuple[int, List[Problem], Iterator[Unchecked]]:
    """`verify`, a page of artifacts at a time, so that memory does not grow with the store.

    A first pass over the store finds the newest version at each URI (keeping only
    ids, versions and fingerprints) and checks those files; a second pass, as the
    returned iterator is read, names the artifacts it did not check.

    Returns:
        How many artifacts were checked; the problems, by id; the unchecked, by id.
    """
    from .lineage import artifact_pages

    newest: Dict[Tuple[int, str], Tuple[int, int, str]] = {}  # (type, URI) -> (version, id, digest)
    last = 0
    for page in artifact_pages(store, page_size):
        for artifact in page:
            if not _why_not(artifact):
                key = (artifact.type_id, artifact.uri)
                found = (schema.version_of(artifact), artifact.id,
                         artifact.custom_properties[FINGERPRINT].string_value)
                if key not in newest or found[:2] > newest[key][:2]:
                    newest[key] = found
        last = page[-1].id
    kept = {i for _, i, _ in newest.values()}
    bad: Dict[int, str] = {}
    for (_, uri), (_, artifact_id, digest) in sorted(newest.items(), key=lambda item: item[1][1]):
        path = Path(unquote(urlparse(uri).path))
        if not path.exists():
            bad[artifact_id] = "missing"
        elif fingerprint(path) != digest:
            bad[artifact_id] = "modified"
    problems = []
    ids = sorted(bad)
    for first in range(0, len(ids), page_size):
        found = store.mlmd.get_artifacts_by_id(ids[first:first + page_size])
        problems += [Problem(schema.artifact_record(a), bad[a.id]) for a in sorted(found, key=lambda a: a.id)]

    def unchecked() -> Iterator[Unchecked]:
        for page in artifact_pages(store, page_size):
            for artifact in page:
                if artifact.id > last:  # recorded since the first pass: not judged
                    return
                reason = _why_not(artifact) or ("" if artifact.id in kept else OLDER)
                if reason:
                    yield Unchecked(schema.artifact_record(artifact), reason)

    return len(newest), problems, unchecked()


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
    checked, problems, unchecked = verify_pages(store)
    return VerifyReport(checked, tuple(problems), tuple(unchecked))
