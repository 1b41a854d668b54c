"""Cross-reading between Pythons: a store the native backend writes under Python 3.12+ is
read by ml-metadata under Python 3.9 to 3.11, value for value, and the reverse.

The other Python is `$MLMD_TEST_OTHER_PYTHON`, the interpreter of a second virtualenv that
`make test` makes where this machine has a Python of the other kind (see the Makefile's
`other-venv`). Each side runs tests/crossread.py, which prints the whole store as JSON.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mlmd_exercise.records import EVENT_TYPES
from conftest import has_mlmd, new_location, other_python
from native_compare import TABLE, comparable

SCRIPT = Path(__file__).parent / "crossread.py"


@pytest.fixture(scope="module")
def pythons() -> dict:
    """{"mlmd": the Python with ml-metadata, "native": the one without}, or a skip (a failure
    where $MLMD_REQUIRE_CROSSREAD is set, as in .ci/run)."""
    other = other_python()
    if other is not None and has_mlmd(other) != has_mlmd(sys.executable):
        sides = {has_mlmd(sys.executable): sys.executable, has_mlmd(other): other}
        return {"mlmd": sides[True], "native": sides[False]}
    why = (f"MLMD_TEST_OTHER_PYTHON ({other or 'not set'}) is not a Python of the other kind: "
           "one with ml-metadata and one without are needed")
    if os.environ.get("MLMD_REQUIRE_CROSSREAD"):
        pytest.fail(why)
    pytest.skip(why)


def _side(python: str, action: str, location: str, backend: str) -> dict:
    proc = subprocess.run([python, str(SCRIPT), action, location, backend], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.splitlines()[-1])


@pytest.mark.parametrize("writer, reader", [("native", "mlmd"), ("mlmd", "native")])
@pytest.mark.parametrize("database", ["sqlite", "postgresql", "mysql"])
def test_a_store_one_backend_wrote_under_one_python_reads_equal_in_the_other(
        pythons, database, writer, reader, tmp_path):
    location = new_location(database, tmp_path)
    written = _side(pythons[writer], "write", location, writer)
    read = _side(pythons[reader], "read", location, reader)
    assert (written["backend"], read["backend"]) == (writer, reader)
    assert written["python"] != read["python"]
    assert read["store"] == written["store"]  # every node, value, event path and time
    assert {e["type"] for e in read["store"]["events"]} == set(EVENT_TYPES[1:])
    # Every stored row of the value table (docs/python.md), value for value (NaN, infinities, -0.0, ...).
    [values] = [x for x in read["store"]["executions"] if x["name"] == "values"]
    assert values["custom"] == {k: comparable(v) for k, v in TABLE.items()}
    if writer == "mlmd":  # what only other programs write came across too
        deployer = [t for t in read["store"]["types"]["execution"] if t["name"] == "Deployer"]
        assert [(t["base_type"], t["version"]) for t in deployer] == [("DEPLOY", "v1")]
        assert {a["external_id"] for a in read["store"]["artifacts"]} >= {"ext-1"}
