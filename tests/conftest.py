"""Shared fixtures: real MLMD stores in tmp_path, and ways to run the CLI."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path
from typing import List

import pytest

import mlmd_exercise as mx
from mlmd_exercise import cli, workflow


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "metadata.db"


@pytest.fixture
def store(db_path: Path) -> mx.Store:
    """A fresh, empty, writable store."""
    return mx.open_store(db_path, create=True)


@pytest.fixture
def tracker(store) -> mx.Tracker:
    return mx.Tracker(store)


def write(path: Path, text: str) -> Path:
    """Writes a small file (making its folder) and returns its path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory) -> Path:
    """A working directory in which the demo job has run once (read-only for tests)."""
    workdir = tmp_path_factory.mktemp("demo")
    workflow.run_demo(mx.open_store(workdir / "metadata.db", create=True), workdir)
    return workdir


def digest(path: Path) -> str:
    """The bytes of a file, hashed: to show that a command left a store as it was."""
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "absent"


class CliResult:
    def __init__(self, code: int, out: str, err: str):
        self.code, self.out, self.err = code, out, err


@pytest.fixture
def run_cli(capsys):
    """Runs `mlmd-exercise ARGS` in this process and returns its exit code and output."""

    def run(*args: str) -> CliResult:
        try:
            code = cli.main([str(a) for a in args])
        except SystemExit as e:  # argparse: --help, usage errors
            code = e.code if isinstance(e.code, int) else 1
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


def run_module(args: List[str], cwd: Path, **kw) -> subprocess.CompletedProcess:
    """Runs `python -m mlmd_exercise ARGS` in a separate process, as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "mlmd_exercise", *map(str, args)],
        cwd=cwd, capture_output=True, text=True, timeout=120, **kw,
    )
