"""Checking that recorded files still hold what was recorded."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple
from urllib.parse import unquote, urlparse

from mlmd_exercise import schema
from mlmd_exercise.content import FINGERPRINT, fingerprint, is_ours, readable_content
from mlmd_exercise.records import ArtifactRecord
from mlmd_exercise.store import Store
from mlmd_exercise.store.backend import Query

__all__ = ["Problem", "Unchecked", "VerifyReport", "verify", "verify_pages", "verify_ids"]

OLDER = "an older version: a newer one at its URI replaced it"
NOT_CONTENT = "not a regular file or a directory (a device, a FIFO, a socket)"


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
    value = artifact.custom.get(FINGERPRINT)
    digest = value if isinstance(value, str) else ""
    if not artifact.uri.startswith("file://"):
        return "not a local file"
    if not digest:
        return "no fingerprint recorded"
    if not is_ours(digest):
        return "fingerprint not written by mlmd_exercise"
    return ""


_Newest = Dict[Tuple[int, str], Tuple[int, int, str]]  # (type, URI) -> (version, id, digest)


def _survey(store: Store, page_size: int, unchecked: Optional[Dict[str, List[int]]] = None
            ) -> Tuple[_Newest, int]:
    """One pass: the newest version at each URI, and the last id seen; with `unchecked`,
    the ids it will not check are added there by reason."""
    from mlmd_exercise.read.lineage import artifact_pages

    newest: _Newest = {}
    checkable: List[int] = []
    last = 0
    for page in artifact_pages(store, page_size):
        for artifact in page:
            reason = _why_not(artifact)
            if reason:
                if unchecked is not None:
                    unchecked.setdefault(reason, []).append(artifact.id)
                continue
            checkable.append(artifact.id)
            key = (artifact.type_id, artifact.uri)
            digest = str(artifact.custom[FINGERPRINT])
            found = (schema.version_of(artifact), artifact.id, digest)
            if key not in newest or found[:2] > newest[key][:2]:
                newest[key] = found
        last = page[-1].id
    if unchecked is not None:
        kept = {i for _, i, _ in newest.values()}
        older = [i for i in checkable if i not in kept]
        if older:
            unchecked.setdefault(OLDER, []).extend(older)
    return newest, last


def _problems(store: Store, newest: _Newest, page_size: int) -> Tuple[List[Problem], List[int]]:
    """The newest versions' files checked, by id; only those with a problem are read again.
    Also the ids of those it could not read (not a regular file or directory), which `newest`
    no longer holds afterwards."""
    bad: Dict[int, str] = {}
    skipped: List[int] = []
    for key, (_, artifact_id, digest) in sorted(newest.items(), key=lambda item: item[1][1]):
        path = Path(unquote(urlparse(key[1]).path))
        if not path.exists():
            bad[artifact_id] = "missing"
        elif not readable_content(path):  # /dev/zero never ends, a FIFO blocks: not read
            skipped.append(artifact_id)
            del newest[key]
        elif fingerprint(path) != digest:
            bad[artifact_id] = "modified"
    problems: List[Problem] = []
    ids = sorted(bad)
    for first in range(0, len(ids), page_size):
        found = store.backend.artifacts(Query(ids=ids[first:first + page_size], order="id", ascending=True))
        problems += [Problem(a, bad[a.id]) for a in found]
    return problems, skipped


def verify_pages(store: Store, page_size: int = 1000
                 ) -> Tuple[int, List[Problem], Iterator[Unchecked]]:
    """`verify`, a page of artifacts at a time, so that memory does not grow with the store.

    A first pass over the store finds the newest version at each URI (keeping only
    ids, versions and fingerprints) and checks those files; a second pass, as the
    returned iterator is read, names the artifacts it did not check.

    Returns:
        How many artifacts were checked; the problems, by id; the unchecked, by id.
    """
    from mlmd_exercise.read.lineage import artifact_pages

    newest, last = _survey(store, page_size)
    kept = {i for _, i, _ in newest.values()}
    problems, skipped = _problems(store, newest, page_size)
    not_content = set(skipped)

    def unchecked() -> Iterator[Unchecked]:
        for page in artifact_pages(store, page_size):
            for artifact in page:
                if artifact.id > last:  # recorded since the first pass: not judged
                    return
                reason = _why_not(artifact) or ("" if artifact.id in kept else OLDER)
                reason = NOT_CONTENT if artifact.id in not_content else reason
                if reason:
                    yield Unchecked(artifact, reason)

    return len(newest), problems, unchecked()


def verify_ids(store: Store, page_size: int = 1000) -> Tuple[int, List[Problem], Dict[str, List[int]]]:
    """`verify_pages` in one pass, where only the ids of the unchecked are needed.

    Returns:
        How many artifacts were checked; the problems, by id; the ids not checked
        (ascending) by reason.
    """
    unchecked: Dict[str, List[int]] = {}
    newest, _ = _survey(store, page_size, unchecked)
    problems, skipped = _problems(store, newest, page_size)
    if skipped:
        unchecked[NOT_CONTENT] = skipped
    for ids in unchecked.values():
        ids.sort()
    return len(newest), problems, unchecked


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
