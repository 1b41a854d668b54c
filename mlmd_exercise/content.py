"""Content fingerprints: what makes two logs of an artifact the same version or not.

A file's fingerprint is the sha256 of its bytes; a directory's is the sha256 of
its files' relative paths and contents, in sorted order, so that renaming or
editing any file inside it changes it.
"""

from __future__ import annotations

import hashlib
import re
import os
from pathlib import Path
from typing import Union

from mlmd_exercise.errors import NotFoundError

__all__ = ["FINGERPRINT", "fingerprint"]

FINGERPRINT = "fingerprint"  # the custom property that holds it
_OURS = re.compile(r"sha256:[0-9a-f]{64}")
_CHUNK = 1 << 20


def _feed_file(digest, path: Path) -> None:
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)


def fingerprint(path: Union[str, os.PathLike]) -> str:
    """The content fingerprint of a file or directory, as "sha256:<hex>".

    Raises:
        NotFoundError: nothing exists at `path`.
    """
    path = Path(path)
    digest = hashlib.sha256()
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file())
        for file in files:
            rel = file.relative_to(path).as_posix().encode()
            # Length-prefix each part so that no two trees feed the same bytes.
            digest.update(len(rel).to_bytes(8, "big") + rel)
            digest.update(file.stat().st_size.to_bytes(8, "big"))
            _feed_file(digest, file)
    elif path.is_file():
        _feed_file(digest, path)
    else:
        raise NotFoundError(f"'{os.fspath(path)}' does not exist")
    return "sha256:" + digest.hexdigest()


def is_ours(value: object) -> bool:
    """Whether a stored value is a fingerprint this package wrote ("sha256:<64 hex digits>"),
    not another program's (an "md5:..." say); such a value is also safe in a filter query."""
    return isinstance(value, str) and _OURS.fullmatch(value) is not None
