"""Artifacts as a run records them: described and fingerprinted first (`Pending`), then, under
the store's lock, the stored artifact with that content at that URI (an input) or a new one at
the next version of its URI (an output, always).

Inputs are versioned by content: the same bytes at the same URI are the stored artifact; new
bytes at that URI are the next version. An output is made by exactly one run: a run's outputs
are always new artifacts (identical bytes are still told by their fingerprint), so a later run
never changes what an earlier one recorded.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Optional, Tuple, Union

from mlmd_exercise import schema
from mlmd_exercise.content import FINGERPRINT
from mlmd_exercise.records import ArtifactRecord, PropertyValue
from mlmd_exercise.schema import TypeSpec
from mlmd_exercise.store import Store
from mlmd_exercise.store.backend import NewArtifact, Query

__all__ = ["Pending", "file_uri", "new_artifact", "input_artifact", "output_artifact"]


def file_uri(path: Union[str, os.PathLike]) -> str:
    """The absolute `file://` URI of a local path."""
    return Path(path).resolve().as_uri()


@dataclass(frozen=True)
class Pending:
    """A file or directory described and fingerprinted, not yet in the store.

    Pass it as a run's input and it is recorded together with the run, in one
    transaction: a crash can never leave it stored without its INPUT event.
    """

    type: TypeSpec
    uri: str
    fingerprint: str
    properties: Mapping[str, PropertyValue] = field(default_factory=dict)


def new_artifact(spec: TypeSpec, type_id: int, uri: str, values: Mapping[str, PropertyValue]) -> NewArtifact:
    """A LIVE artifact to store; declared properties go where every MLMD client looks for
    them, the others into custom properties."""
    declared, custom = schema.split_values(spec, values)
    return NewArtifact(type_id, spec.name, uri, declared, custom)


def _newest(store: Store, pending: Pending) -> Tuple[int, Optional[ArtifactRecord]]:
    """The type id and the newest stored artifact of that type at the pending URI."""
    type_id = store.catalog.spec_id(pending.type)
    stored = store.backend.artifacts(Query(uris=[pending.uri], type_id=type_id))
    return type_id, schema.newest(stored, pending.type)


def _next_version(pending: Pending, type_id: int, latest: Optional[ArtifactRecord]) -> NewArtifact:
    version = 1 + (schema.version_of(latest, pending.type) if latest else 0)
    return new_artifact(pending.type, type_id, pending.uri, {
        **pending.properties, "version": version, FINGERPRINT: pending.fingerprint})


def input_artifact(store: Store, pending: Pending) -> Union[ArtifactRecord, NewArtifact]:
    """An input: the stored artifact with this content at this URI, or a new one at the next
    version. Call it under the store's lock."""
    type_id, latest = _newest(store, pending)
    if latest is not None and latest.custom.get(FINGERPRINT) == pending.fingerprint:
        return latest
    return _next_version(pending, type_id, latest)


def output_artifact(store: Store, pending: Pending) -> NewArtifact:
    """An output: always a new artifact, at the next version of its URI, whatever its
    content. Call it under the store's lock."""
    return _next_version(pending, *_newest(store, pending))
