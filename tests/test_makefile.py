"""The Makefile: what `make run` and `make test` tell a person while they wait."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent


@pytest.mark.skipif(shutil.which("make") is None, reason="no make program")
def test_installing_says_what_it_does_and_how_long_it_takes(tmp_path):
    # -n: print the recipe without running it; -B: as if .venv had to be made anew.
    proc = subprocess.run(["make", "-n", "-B", "venv", f"VENV={tmp_path / 'venv'}"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    recipe = proc.stdout
    assert "about 1 to 2 minutes the first time" in recipe
    assert "installed in" in recipe
    # The message comes before the quiet pip install it announces.
    assert recipe.index("about 1 to 2 minutes") < recipe.index("pip install --quiet")
