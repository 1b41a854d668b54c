"""The Makefile: what `make run` and `make test` tell a person while they wait."""

from __future__ import annotations

import os
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


@pytest.mark.skipif(shutil.which("make") is None, reason="no make program")
@pytest.mark.parametrize("python", ["/no/such/python3.13", "false"])
def test_a_python_that_does_not_run_is_named_before_anything_is_made(tmp_path, python):
    # A pyenv shim of a version that is not selected fails as "/no/such" does: with pyenv's
    # own words, then an empty version in the message that announces the install.
    venv = tmp_path / "venv"
    proc = subprocess.run(["make", "venv", f"VENV={venv}", f"PYTHON={python}"], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2
    assert f"PYTHON={python} does not run here as a Python 3.9 or later" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout and "creating" not in proc.stdout
    assert not venv.exists()


@pytest.mark.skipif(shutil.which("make") is None, reason="no make program")
def test_make_test_makes_both_virtualenvs_at_once_before_the_suite(tmp_path):
    # -n still runs the recursive make lines, dry: what each would make is printed in turn.
    first, other = tmp_path / "first", tmp_path / "other"
    proc = subprocess.run(["make", "-n", "-B", "test", f"VENV={first}", f"OTHER_VENV={other}",
                           "OTHER_PYTHON=python3"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    recipe = proc.stdout
    [setup] = [line for line in recipe.splitlines() if "-j2" in line]
    assert f"{first}/bin/.test-extras" in setup and "other-venv" in setup
    for venv in (first, other):  # each gets the package and the integrations' libraries
        assert f"{venv}/bin/python -m pip install --quiet --disable-pip-version-check -e '.[test]'" in recipe
        assert f"{venv}/bin/python -m pip install --quiet --disable-pip-version-check -e '.[test,test-" in recipe
    assert recipe.index(setup) < recipe.index("-m pytest")  # the suite starts once both are made


@pytest.mark.skipif(shutil.which("make") is None, reason="no make program")
def test_test_quick_runs_the_suite_with_no_server_and_no_second_python():
    proc = subprocess.run(["make", "-n", "test-quick", "VENV=.venv"], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, env={**os.environ, "MLMD_REQUIRE_POSTGRES": "1"})
    assert proc.returncode == 0, proc.stderr
    [line] = [line for line in proc.stdout.splitlines() if "-m pytest" in line]
    assert "-m pytest" in line and "with-servers" not in line and ".venv-other" not in line
    for variable in ("MLMD_TEST_POSTGRES", "MLMD_TEST_MYSQL", "MLMD_TEST_OTHER_PYTHON", "MLMD_REQUIRE_POSTGRES"):
        assert f"-u {variable}" in line  # a full run's settings do not leak into the quick one


def _python(version: str):
    """A real interpreter of that version on this machine (pyenv's, or the system's), or None."""
    import glob

    for found in [*sorted(glob.glob(f"{Path.home()}/.pyenv/versions/{version}.*/bin/python{version}")),
                  f"/usr/bin/python{version}", f"/usr/local/bin/python{version}"]:
        if Path(found).is_file():  # not pyenv's shims: they need pyenv on the PATH
            return found
    return None


@pytest.fixture
def bare_machine(tmp_path):
    """(only, show): a PATH folder with no Python yet, where the test links 3.11 and 3.13, and
    show(expression, make args) prints what make makes of it there (HOME without pyenv)."""
    make = shutil.which("make")
    if make is None:
        pytest.skip("no make program")
    pythons = {v: _python(v) for v in ("3.11", "3.13")}
    if not all(pythons.values()):
        pytest.skip(f"needs Python 3.11 and 3.13 on this machine, found {pythons}")
    only = tmp_path / "bin"
    only.mkdir()

    def show(expression: str, *args: str) -> str:
        proc = subprocess.run([make, "-s", *args, "--eval", f"show: ; @echo {expression}", "show"], cwd=ROOT,
                              env={"PATH": str(only), "HOME": str(tmp_path)},
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout.strip()

    return only, pythons, show


def test_make_takes_a_python_ml_metadata_has_wheels_for_else_the_newest(bare_machine):
    only, pythons, show = bare_machine
    (only / "python3.13").symlink_to(pythons["3.13"])
    assert show("$(PYTHON)") == "python3.13"  # a machine whose only Python is 3.13: the native backend
    (only / "python3.11").symlink_to(pythons["3.11"])
    assert show("$(PYTHON)") == "python3.11"  # ml-metadata's wheels exist for it: the reference backend


def test_the_cross_reading_python_is_of_the_other_kind(bare_machine):
    """make test's second virtualenv: 3.13 beside 3.11, 3.11 beside 3.13, none beside none."""
    only, pythons, show = bare_machine
    both = "$(PYTHON) $(OTHER_PYTHON)"
    (only / "python3.11").symlink_to(pythons["3.11"])
    assert show(both) == "python3.11"  # nothing of the other kind: the cross-reading tests skip
    (only / "python3.13").symlink_to(pythons["3.13"])
    assert show(both) == "python3.11 python3.13"
    assert show(both, "PYTHON=python3.13") == "python3.13 python3.11"  # .ci/run's second suite
    assert show(both, "OTHER_PYTHON=") == "python3.11"  # turned off
