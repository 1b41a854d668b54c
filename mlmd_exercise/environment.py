"""How to reproduce a run: the keys under which a run records the code, the command and the
environment it ran in, and how to read them back (`write/capture.py` records them).

Every execution that `Tracker.execution` records carries these as custom properties, without
the user asking. They are named here, once, so that readers (`show`, `ls`, `diff`) can tell a
run's environment from its params:

    host, pid, pid_start     the process (see `process`; kept without a prefix,
                             as stores written before this module have them)
    env.user                 the user name the process ran as
    env.cwd                  its working directory
    env.command              its command line (`sys.argv`, shell-quoted), its secrets masked
                             (a URL's password, --password X, token=X: see `masking`)
    env.executable           the Python interpreter (`sys.executable`)
    env.python               the Python version, e.g. "3.11.7"
    env.git_commit           the commit checked out in the working directory,
    env.git_dirty            and 1 if tracked files had uncommitted changes, else 0
                             (both only where the working directory is in a git
                             repository and git is installed)
    env.packages             the installed distributions the run had imported,
                             "name==version" separated by spaces, sorted
    env.installed_hash       "sha256:<hex>" of the sorted "name==version" of every
                             distribution installed on the interpreter's path: two
                             runs with the same hash ran with the same packages
    env.inputs               how many input artifacts the run's start recorded (an INPUT
                             event each, in the same transaction): `check` reports a run
                             with fewer input events than that
"""

from __future__ import annotations

from typing import Dict, Mapping, Tuple

from mlmd_exercise.process import HOST, PID, PID_START

__all__ = [
    "PREFIX", "USER", "CWD", "COMMAND", "EXECUTABLE", "PYTHON", "GIT_COMMIT", "GIT_DIRTY",
    "PACKAGES", "INSTALLED_HASH", "INPUTS", "PROCESS_KEYS", "CODE_KEYS",
    "is_environment_key", "split_environment", "format_packages", "parse_packages",
]

PREFIX = "env."
USER = PREFIX + "user"
CWD = PREFIX + "cwd"
COMMAND = PREFIX + "command"
EXECUTABLE = PREFIX + "executable"
PYTHON = PREFIX + "python"
GIT_COMMIT = PREFIX + "git_commit"
GIT_DIRTY = PREFIX + "git_dirty"
PACKAGES = PREFIX + "packages"
INSTALLED_HASH = PREFIX + "installed_hash"
INPUTS = PREFIX + "inputs"
# Which process recorded the run: environment too, under the names stores already hold.
PROCESS_KEYS = (HOST, PID, PID_START)
# What says which code ran; `diff` shows these apart from the rest of the environment.
CODE_KEYS = (GIT_COMMIT, GIT_DIRTY, COMMAND)


def is_environment_key(key: str) -> bool:
    """True for a property that says where and how a run ran, not what it was given."""
    return key.startswith(PREFIX) or key in PROCESS_KEYS


def split_environment(properties: Mapping[str, object]) -> Tuple[Dict[str, object], Dict[str, object]]:
    """A run's properties as (the others, its environment)."""
    others: Dict[str, object] = {}
    env: Dict[str, object] = {}
    for key, value in properties.items():
        (env if is_environment_key(key) else others)[key] = value
    return others, env


def format_packages(packages: Mapping[str, str]) -> str:
    """{"numpy": "2.1.0", ...} as stored: "numpy==2.1.0 ...", sorted by name."""
    return " ".join(f"{name}=={version}" for name, version in sorted(packages.items()))


def parse_packages(text: object) -> Dict[str, str]:
    """The stored `env.packages` text back as {name: version}; anything else as {}."""
    if not isinstance(text, str):
        return {}
    return dict(item.partition("==")[::2] for item in text.split() if "==" in item)
