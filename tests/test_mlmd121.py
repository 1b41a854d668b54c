"""ml-metadata 1.21 (what TFX 1.21 requires) for real: in the Debian 13 root that
scripts/mlmd121-root makes (1.21's Linux wheels need glibc 2.39; this machine has 2.36),
a store that 1.21 writes is read node for node by the native backend and by ml-metadata 1.17,
and a store that either writes is read so by 1.21, on SQLite, PostgreSQL and MySQL.

Each side runs tests/crossread.py, which writes everything `native_compare.write_everything`
writes (and, through raw ml-metadata, what only other programs write) and prints the whole
store as JSON. The root is built once and cached (about four minutes the first time); where it
cannot be (not root, no network, not x86-64) the tests are skipped with the script's reason,
a failure where $MLMD_REQUIRE_MLMD121 is set, as in .ci/run. .ci/run also runs the `mlmd`
backend's own tests inside the root (`make test-mlmd121`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import List

import pytest

from conftest import mlmd_python, new_location
from mlmd_exercise.records import EVENT_TYPES
from native_compare import TABLE, comparable

HERE = Path(__file__).parent
ROOT = HERE.parent / "scripts" / "mlmd121-root"
SCRIPT = HERE / "crossread.py"


@pytest.fixture(scope="session")
def root() -> List[str]:
    """How to run crossread.py under ml-metadata 1.21: the command's first words."""
    proc = subprocess.run([str(ROOT), "--build"], capture_output=True, text=True, timeout=3600)
    if proc.returncode != 0:
        said = [line for line in proc.stderr.splitlines() if line.startswith("mlmd121-root: ")]
        why = said[-1] if said else proc.stderr.strip()[-500:]
        if os.environ.get("MLMD_REQUIRE_MLMD121"):
            pytest.fail(why)
        pytest.skip(why)
    # Inside, this checkout is /src, and `python` is the root's virtualenv with 1.21.
    return [str(ROOT), "python", "/src/tests/crossread.py"]


def _command(side: str, root: List[str]) -> List[str]:
    if side == "mlmd121":
        return list(root)
    if side == "mlmd117":
        return [mlmd_python(), str(SCRIPT)]
    return [sys.executable, str(SCRIPT)]


def _side(command: List[str], action: str, location: str, backend: str) -> dict:
    proc = subprocess.run([*command, action, location, backend], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.splitlines()[-1])


BACKEND = {"native": "native", "mlmd117": "mlmd", "mlmd121": "mlmd"}


@pytest.mark.parametrize("writer, reader", [("native", "mlmd121"), ("mlmd121", "native"),
                                            ("mlmd117", "mlmd121"), ("mlmd121", "mlmd117")])
@pytest.mark.parametrize("database", ["sqlite", "postgresql", "mysql"])
def test_a_store_one_side_wrote_reads_node_for_node_on_the_other(root, database, writer, reader, tmp_path):
    location = new_location(database, tmp_path)
    written = _side(_command(writer, root), "write", location, BACKEND[writer])
    read = _side(_command(reader, root), "read", location, BACKEND[reader])
    assert (written["backend"], read["backend"]) == (BACKEND[writer], BACKEND[reader])
    for side, said in ((writer, written), (reader, read)):  # each side on the ml-metadata it names
        assert said["ml_metadata"] == "1.21.0" if side == "mlmd121" else \
            side != "mlmd117" or said["ml_metadata"].startswith("1.17."), (side, said["ml_metadata"])
    assert read["store"] == written["store"]  # every node, value, event path and time
    assert {e["type"] for e in read["store"]["events"]} == set(EVENT_TYPES[1:])
    # Every stored row of the value table (docs/python.md), value for value (NaN, infinities, -0.0, ...).
    [values] = [x for x in read["store"]["executions"] if x["name"] == "values"]
    assert values["custom"] == {k: comparable(v) for k, v in TABLE.items()}
    if BACKEND[writer] == "mlmd":  # what only other programs write came across too
        deployer = [t for t in read["store"]["types"]["execution"] if t["name"] == "Deployer"]
        assert [(t["base_type"], t["version"]) for t in deployer] == [("DEPLOY", "v1")]
        assert {a["external_id"] for a in read["store"]["artifacts"]} >= {"ext-1"}
