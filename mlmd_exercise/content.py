"""Content fingerprints: what makes two logs of an artifact the same version or not.

A file's fingerprint is the sha256 of its bytes; a directory's is the sha256 of
its files' relative paths and contents, in sorted order, so that renaming or
editing any file inside it changes it.
"""

from __future__ import annotations

import hashlib
import re
import os
import time
from pathlib import Path
from typing import Dict, Tuple, Union

from mlmd_exercise.errors import MlmdExerciseError, NotFoundError

__all__ = ["FINGERPRINT", "fingerprint", "readable_content"]

FINGERPRINT = "fingerprint"  # the custom property that holds it
_OURS = re.compile(r"sha256:[0-9a-f]{64}")
_CHUNK = 1 << 20


def _feed_file(digest, path: Path) -> None:
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)


def readable_content(path: Path) -> bool:
    """Whether `path` is what a fingerprint reads: a regular file or a directory (following
    links), not a device (`/dev/zero` never ends), a FIFO (blocks) or a socket."""
    return path.is_file() or path.is_dir()


# A file's fingerprint by (device, inode, size, mtime): a file viewed again is not read again
# (an 8 GiB model took 6 s a view). Bounded; a directory is always read (its files may change).
# As git does with its index ("racy git"), a file changed in the last seconds is not trusted to
# its mtime, which the file system may keep to a coarse tick: a rewrite of the same size in the
# same tick would look unchanged.
_KNOWN: Dict[Tuple[int, int, int, int], str] = {}
_KNOWN_MOST = 4096
_SETTLED_NS = 3_000_000_000


def fingerprint(path: Union[str, os.PathLike]) -> str:
    """The content fingerprint of a file or directory, as "sha256:<hex>".

    Raises:
        NotFoundError: nothing exists at `path`.
        MlmdExerciseError: it is neither a regular file nor a directory.
    """
    path = Path(path)
    if path.exists() and not readable_content(path):
        raise MlmdExerciseError(f"'{os.fspath(path)}' is not a regular file or a directory: "
                                "it has no content to fingerprint")
    if path.is_file():
        status = path.stat()
        key = (status.st_dev, status.st_ino, status.st_size, status.st_mtime_ns)
        known = _KNOWN.get(key)
        if known is not None:
            return known
        digest = hashlib.sha256()
        _feed_file(digest, path)
        found = "sha256:" + digest.hexdigest()
        if time.time_ns() - status.st_mtime_ns > _SETTLED_NS:
            if len(_KNOWN) >= _KNOWN_MOST:
                _KNOWN.clear()
            _KNOWN[key] = found
        return found
    digest = hashlib.sha256()
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file())
        for file in files:
            rel = file.relative_to(path).as_posix().encode()
            # Length-prefix each part so that no two trees feed the same bytes.
            digest.update(len(rel).to_bytes(8, "big") + rel)
            digest.update(file.stat().st_size.to_bytes(8, "big"))
            _feed_file(digest, file)
    else:
        raise NotFoundError(f"'{os.fspath(path)}' does not exist")
    return "sha256:" + digest.hexdigest()


def is_ours(value: object) -> bool:
    """Whether a stored value is a fingerprint this package wrote ("sha256:<64 hex digits>"),
    not another program's (an "md5:..." say); such a value is also safe in a filter query."""
    return isinstance(value, str) and _OURS.fullmatch(value) is not None
