"""What a run records about where it ran, captured: git commit, command, packages, host (the
keys and how to read them back are `environment.py`'s).

`env.packages` is taken when the run starts and again when it finishes, so that
a package the run imports inside its `with` block is recorded too.

Recording costs microseconds, not a process per run: the interpreter, user and
installed distributions are read once per process; git is asked once per working
directory, and again only when its index changes (a commit, a checkout, an add)
or after `GIT_TTL_S` seconds, so a tracked file edited and not added within a
few seconds of the last run can still read as clean. Nothing here may fail a
run: where git is missing, slow or not a repository, the git keys are left out.
"""

from __future__ import annotations

import getpass
import hashlib
import logging
import os
import re
import shlex
import subprocess
import sys
import time
from typing import Callable, Dict, FrozenSet, Mapping, Optional, Tuple

from mlmd_exercise.environment import (COMMAND, CWD, EXECUTABLE, GIT_COMMIT, GIT_DIRTY, INSTALLED_HASH,
                                       PACKAGES, PYTHON, USER, format_packages, parse_packages)
from mlmd_exercise.masking import mask_argv
from mlmd_exercise.process import identity
from mlmd_exercise.records import PropertyValue

__all__ = ["GIT_TIMEOUT_S", "GIT_TTL_S", "capture", "imported_packages", "packages_now", "git", "git_state",
           "forget_git_states", "installed_hash", "installed_distributions", "normalize_name"]

log = logging.getLogger(__name__)

GIT_TIMEOUT_S = 2.0
GIT_TTL_S = 5.0

# Imported module -> distribution, where the names differ (PEP 503 normalized).
_DISTRIBUTION_OF = {
    "sklearn": "scikit-learn", "yaml": "pyyaml", "PIL": "pillow", "cv2": "opencv-python",
    "dateutil": "python-dateutil", "absl": "absl-py", "google.protobuf": "protobuf",
    "skimage": "scikit-image", "bs4": "beautifulsoup4", "attr": "attrs",
    "psycopg2": "psycopg2-binary", "Crypto": "pycryptodome", "jwt": "pyjwt",
}


def normalize_name(name: str) -> str:
    """A distribution's name as PEP 503 compares it ("Scikit_Learn" -> "scikit-learn")."""
    return re.sub(r"[-_.]+", "-", name).lower()


# -- installed and imported distributions ----------------------------------------

_installed: Optional[Dict[str, str]] = None


def installed_distributions() -> Dict[str, str]:
    """Every distribution on sys.path, normalized name -> version, read once per process
    from the names of their metadata folders (no file is opened: this takes well under
    a millisecond, where `importlib.metadata` takes tens)."""
    global _installed
    if _installed is None:
        found: Dict[str, str] = {}
        # Not "" (the current directory): the environment is the interpreter's, wherever it runs.
        for entry in dict.fromkeys(p for p in sys.path if p):  # in order, once each
            try:
                names = os.listdir(entry)
            except OSError:
                continue
            for folder in names:
                stem, dot, kind = folder.rpartition(".")
                name, _, version = stem.partition("-")
                version = version.split("-")[0]  # an egg's "-py3.11" suffix
                # A source tree's own "x.egg-info" has no version: the installed one says it.
                if dot and kind in ("dist-info", "egg-info") and version:
                    found.setdefault(normalize_name(name), version)  # the first on the path wins
        _installed = found
    return _installed


def installed_hash() -> str:
    """sha256 of the sorted "name==version" of every installed distribution."""
    listing = "\n".join(sorted(f"{n}=={v}" for n, v in installed_distributions().items()))
    return "sha256:" + hashlib.sha256(listing.encode()).hexdigest()


_packages_cache: Tuple[int, Dict[str, str]] = (-1, {})


def imported_packages() -> Dict[str, str]:
    """The installed distributions that this process has imported, name -> version.

    A module maps to the distribution of its name (or the one `_DISTRIBUTION_OF`
    names); modules of the standard library and of no distribution are left out.
    """
    global _packages_cache
    modules = sys.modules
    if _packages_cache[0] == len(modules):  # modules are added, hardly ever removed
        return dict(_packages_cache[1])
    installed = installed_distributions()
    stdlib: FrozenSet[str] = getattr(sys, "stdlib_module_names", frozenset())  # Python 3.10+
    found: Dict[str, str] = {}
    for module in list(modules):
        top = module.partition(".")[0]
        if top in stdlib or top.startswith("_"):
            continue
        for name in (_DISTRIBUTION_OF.get(module), _DISTRIBUTION_OF.get(top), top):
            dist = normalize_name(name) if name is not None else ""
            if dist in installed:
                found[dist] = installed[dist]
                break
    found = dict(sorted(found.items()))
    _packages_cache = (len(modules), found)
    return dict(found)


# -- git --------------------------------------------------------------------------

# cwd -> (git dir or None, its index's signature, when asked, (commit, dirty) or None)
_git_states: Dict[str, Tuple[Optional[str], Tuple[int, ...], float, Optional[Tuple[str, bool]]]] = {}


def git(cwd: str, *args: str) -> Optional[str]:
    """What `git ARGS` in `cwd` prints, stripped; None where git is missing, slow or fails."""
    try:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True,
                              timeout=GIT_TIMEOUT_S, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError, ValueError) as e:
        log.debug("git %s in %s: %s", " ".join(args), cwd, e)
        return None
    return done.stdout if done.returncode == 0 else None


def _index_signature(git_dir: Optional[str]) -> Tuple[int, ...]:
    """What changes when git writes its index: git writes a new file and renames it over the
    old one, so the inode changes even within one tick of the file system's clock."""
    try:
        st = os.stat(os.path.join(git_dir, "index")) if git_dir else None
    except OSError:
        return ()
    return (st.st_ino, st.st_mtime_ns, st.st_size) if st else ()


def forget_git_states() -> None:
    """Forgets what git said of every working directory: it is asked again."""
    _git_states.clear()


def git_state(cwd: Optional[str] = None) -> Optional[Tuple[str, bool]]:
    """(commit, uncommitted changes to tracked files) of the git work tree at `cwd`.

    None where `cwd` is not in a git repository (or one without a commit yet) or
    git is missing. Untracked files do not count as changes, as for
    `git describe --dirty`: a run's own outputs are often untracked.
    """
    cwd = cwd or os.getcwd()
    now = time.monotonic()
    cached = _git_states.get(cwd)
    if cached is not None:
        git_dir, signature, asked, state = cached
        if now - asked < GIT_TTL_S and _index_signature(git_dir) == signature:
            return state
    found = git(cwd, "rev-parse", "--absolute-git-dir")
    git_dir = found.strip() if found else None
    state = None
    if git_dir:
        # Without optional locks, status never rewrites the index under the user's git.
        status = git(cwd, "--no-optional-locks", "status", "--porcelain=v2", "--branch",
                      "--untracked-files=no")
        if status is not None:
            lines = status.splitlines()
            commit = next((line.split()[2] for line in lines if line.startswith("# branch.oid ")), "")
            if re.fullmatch(r"[0-9a-f]{40,64}", commit):  # "(initial)" before the first commit
                state = (commit, any(not line.startswith("#") for line in lines))
    _git_states[cwd] = (git_dir, _index_signature(git_dir), now, state)
    return state


# -- the whole of it --------------------------------------------------------------

_static: Dict[str, PropertyValue] = {}


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name and no passwd entry (some containers)
        return str(os.getuid()) if hasattr(os, "getuid") else ""


def _part(env: Dict[str, PropertyValue], read: Callable[[], Mapping[str, PropertyValue]]) -> None:
    try:
        env.update(read())
    except Exception:  # a run is never failed by its description
        log.debug("could not read part of the environment", exc_info=True)


def _static_part() -> Dict[str, PropertyValue]:
    if not _static:
        _static.update({
            USER: _user(),
            EXECUTABLE: sys.executable or "",
            PYTHON: ".".join(map(str, sys.version_info[:3])),
            INSTALLED_HASH: installed_hash(),
        })
    return _static


def _cwd_part() -> Dict[str, PropertyValue]:
    cwd = os.getcwd()
    part: Dict[str, PropertyValue] = {CWD: cwd}
    git = git_state(cwd)
    if git is not None:
        # 1 or 0, not a bool: MLMD's schemas before 9 have no bool values to migrate from.
        part[GIT_COMMIT], part[GIT_DIRTY] = git[0], int(git[1])
    return part


def capture() -> Dict[str, PropertyValue]:
    """This process's environment, as the properties a new execution records.

    Never raises: a part that cannot be read is left out (and logged at debug level).
    """
    env: Dict[str, PropertyValue] = {}
    _part(env, identity)
    _part(env, _static_part)
    _part(env, lambda: {COMMAND: shlex.join(mask_argv(sys.argv))})
    _part(env, _cwd_part)
    _part(env, lambda: {PACKAGES: format_packages(imported_packages())})
    return env


def packages_now(recorded: object) -> str:
    """`env.packages` at the end of a run: those recorded at its start and those it has
    imported since."""
    try:
        return format_packages({**parse_packages(recorded), **imported_packages()})
    except Exception:
        log.debug("could not list the imported packages", exc_info=True)
        return recorded if isinstance(recorded, str) else ""
