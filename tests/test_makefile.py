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


def _python(version: str):
    """A real interpreter of that version on this machine (pyenv's, or the system's), or None."""
    import glob

    for found in [*sorted(glob.glob(f"{Path.home()}/.pyenv/versions/{version}.*/bin/python{version}")),
                  f"/usr/bin/python{version}", f"/usr/local/bin/python{version}"]:
        if Path(found).is_file():  # not pyenv's shims: they need pyenv on the PATH
            return found
    return None


@pytest.mark.skipif(shutil.which("make") is None, reason="no make program")
def test_make_takes_a_python_ml_metadata_has_wheels_for_else_the_newest(tmp_path):
    make = shutil.which("make")
    pythons = {v: _python(v) for v in ("3.11", "3.13")}
    if not all(pythons.values()):
        pytest.skip(f"needs Python 3.11 and 3.13 on this machine, found {pythons}")
    only = tmp_path / "bin"
    only.mkdir()

    def chosen() -> str:
        proc = subprocess.run([make, "-s", "--eval", "show: ; @echo $(PYTHON)", "show"], cwd=ROOT,
                              env={"PATH": str(only), "HOME": str(tmp_path)},
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout.strip()

    (only / "python3.13").symlink_to(pythons["3.13"])
    assert chosen() == "python3.13"  # a machine whose only Python is 3.13: the native backend
    (only / "python3.11").symlink_to(pythons["3.11"])
    assert chosen() == "python3.11"  # ml-metadata's wheels exist for it: the reference backend


@pytest.mark.skipif(shutil.which("make") is None, reason="no make program")
def test_the_cross_reading_python_is_of_the_other_kind(tmp_path):
    """make test's second virtualenv: 3.13 beside 3.11, 3.11 beside 3.13, none beside none."""
    make = shutil.which("make")
    pythons = {v: _python(v) for v in ("3.11", "3.13")}
    if not all(pythons.values()):
        pytest.skip(f"needs Python 3.11 and 3.13 on this machine, found {pythons}")
    only = tmp_path / "bin"
    only.mkdir()

    def chosen(*args: str) -> str:
        proc = subprocess.run([make, "-s", *args, "--eval", "show: ; @echo $(PYTHON) $(OTHER_PYTHON)", "show"],
                              cwd=ROOT, env={"PATH": str(only), "HOME": str(tmp_path)},
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout.strip()

    (only / "python3.11").symlink_to(pythons["3.11"])
    assert chosen() == "python3.11"  # nothing of the other kind: the cross-reading tests skip
    (only / "python3.13").symlink_to(pythons["3.13"])
    assert chosen() == "python3.11 python3.13"
    assert chosen("PYTHON=python3.13") == "python3.13 python3.11"  # .ci/run's second suite
    assert chosen("OTHER_PYTHON=") == "python3.11"  # turned off
