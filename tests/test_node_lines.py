"""`Backend.node_lines`: what a walk's text shows of each node, which the native backend reads
without loading the node's other properties, against the same read from whole records (the base
class), on every database and for stores either backend wrote: a version declared and custom,
of every kind of value, fingerprints ours and not, URIs holding a password or a line break."""

from __future__ import annotations

import contextlib
from typing import List

import pytest

import mlmd_exercise as mx
from mlmd_exercise.records import Kind, PropertyType
from mlmd_exercise.store.backend import Backend, ExecutionWrite, NewArtifact

from conftest import backend_of

OURS = "sha256:" + "ab" * 32


def _fill(store: mx.Store) -> List[int]:
    """Artifacts whose version and fingerprint read in every way a record may hold them."""
    b = store.backend
    declares_int = b.put_type(Kind.ARTIFACT, "LinesInt", {"version": PropertyType.INT,
                                                          "fingerprint": PropertyType.STRING})
    declares_text = b.put_type(Kind.ARTIFACT, "LinesText", {"version": PropertyType.STRING})
    plain = b.put_type(Kind.ARTIFACT, "LinesPlain", {})
    artifacts = [
        NewArtifact(declares_int, "LinesInt", "file:///l/1", properties={"version": 3}, custom={"version": 7}),
        NewArtifact(declares_int, "LinesInt", "file:///l/2", custom={"version": 5, "fingerprint": OURS}),
        NewArtifact(declares_int, "LinesInt", "file:///l/3", properties={"fingerprint": "md5:0a"},
                    custom={"fingerprint": OURS}),
        NewArtifact(declares_text, "LinesText", "file:///l/4", properties={"version": "v9"}, custom={"version": 4}),
        NewArtifact(plain, "LinesPlain", "file:///l/5", custom={"version": True}),
        NewArtifact(plain, "LinesPlain", "file:///l/6", custom={"version": 2.0, "fingerprint": 12}),
        NewArtifact(plain, "LinesPlain", "postgresql://ann:s3cret@db.example/x", custom={"version": -(2 ** 31)}),
        NewArtifact(plain, "LinesPlain", "file:///l/with\nbreak\tand tab", state="DELETED"),
        NewArtifact(plain, "LinesPlain", "", state="ABANDONED", custom={"fingerprint": {"a": [1]}}),
    ]
    return b.put_artifacts(artifacts)


def _executions(store: mx.Store) -> List[int]:
    step = store.backend.put_type(Kind.EXECUTION, "LinesStep", {})
    return [store.backend.put_execution(ExecutionWrite(step, "LinesStep", state=state, name=f"lines-{state}"))[0]
            for state in ("RUNNING", "COMPLETE", "FAILED", "CACHED", "CANCELED", "UNKNOWN")]


@pytest.mark.parametrize("reader", ["native", "same"])
def test_node_lines_read_what_the_records_hold(db, reader):
    store = mx.open_store(db, create=True)
    artifact_ids, execution_ids = _fill(store), _executions(store)
    store.close()
    database = db.split(":", 1)[0] if "://" in db else "sqlite"
    # Read again by the backend that wrote the store, or by the native one (a store ml-metadata wrote).
    with backend_of(f"{database}-native") if reader == "native" else contextlib.nullcontext():
        with contextlib.closing(mx.open_store(db)) as store:
            for kind, ids in ((Kind.ARTIFACT, artifact_ids), (Kind.EXECUTION, execution_ids)):
                missing = [max(ids) + 1000]  # not stored: left out
                lines = store.backend.node_lines(kind, ids + missing)
                assert lines == Backend.node_lines(store.backend, kind, ids + missing)
                assert [n.id for n in lines] == sorted(ids)
            by_uri = {n.uri: n for n in store.backend.node_lines(Kind.ARTIFACT, artifact_ids)}
    # What the records say, spelled out: a declared version wins, a value that is not an int is none.
    assert [by_uri[f"file:///l/{i}"].version for i in range(1, 7)] == [3, 5, None, None, None, None]
    assert by_uri["file:///l/2"].fingerprint == OURS and by_uri["file:///l/3"].fingerprint == "md5:0a"
    assert by_uri["file:///l/1"].type_version == "LinesInt v3"
    assert "s3cret" not in "".join(by_uri)
    assert by_uri["file:///l/with\nbreak\tand tab"].state == "DELETED"
