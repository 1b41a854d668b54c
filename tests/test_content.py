"""content.py: fingerprints of files and directories."""

from __future__ import annotations

import hashlib

import pytest

from conftest import write
from mlmd_exercise import content
from mlmd_exercise.content import fingerprint
from mlmd_exercise.errors import NotFoundError


def test_a_file_is_the_sha256_of_its_bytes(tmp_path):
    path = write(tmp_path / "f.csv", "a,b\n")
    assert fingerprint(path) == "sha256:" + hashlib.sha256(b"a,b\n").hexdigest()


def test_a_directory_depends_on_names_and_contents_not_on_its_location(tmp_path):
    for root in ("one", "two"):
        write(tmp_path / root / "a.txt", "A")
        write(tmp_path / root / "d" / "b.txt", "B")
    assert fingerprint(tmp_path / "one") == fingerprint(tmp_path / "two")
    (tmp_path / "two" / "d" / "b.txt").rename(tmp_path / "two" / "d" / "c.txt")
    assert fingerprint(tmp_path / "one") != fingerprint(tmp_path / "two")
    # Moving bytes between files changes it too: each file's length is fed.
    write(tmp_path / "x" / "a", "AB")
    write(tmp_path / "x" / "b", "")
    write(tmp_path / "y" / "a", "A")
    write(tmp_path / "y" / "b", "B")
    assert fingerprint(tmp_path / "x") != fingerprint(tmp_path / "y")


def test_a_missing_path_is_named(tmp_path):
    with pytest.raises(NotFoundError, match=f"^'{tmp_path}/gone' does not exist$"):
        fingerprint(tmp_path / "gone")


@pytest.mark.parametrize("value, ours", [
    ("sha256:" + "0" * 64, True), ("sha256:" + "A" * 64, False), ("sha256:" + "0" * 63, False),
    ("md5:" + "0" * 32, False), ("sha256:" + "0" * 64 + "'", False), (None, False), (3, False),
])
def test_only_our_own_fingerprints_are_ours(value, ours):
    assert content.is_ours(value) is ours
