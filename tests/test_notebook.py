"""A real notebook, run by a real Jupyter kernel: it trains with autolog on a CSV read with pandas,
then shows a record, a lineage walk, `mx.show_lineage(model)`, a Diff of two runs and a metric
history; the outputs saved in the notebook are checked (tests/test_notebook_html.py checks each
`_repr_html_` without a kernel). One execution, shared by the tests of this module.

Needs the test-notebook extra (nbclient, nbformat, ipykernel): skipped where it is missing.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Dict, Iterator, List, Tuple

import pytest

try:
    import nbclient
    import nbformat
    import ipykernel  # noqa: F401 (the kernel the notebook runs in)
except ImportError as missing:
    pytest.skip(f"the test-notebook extra is not installed ({missing.name} is missing): "
                "pip install -e '.[test-notebook]'", allow_module_level=True)

KERNEL = "mlmd-exercise-test"
CSV = "iris&<i>.csv"  # HTML in a file name: shown as text, never as markup
HOSTILE = "<script>alert(1)</script> & co"
TIMEOUT = 300  # seconds a cell may take, kernel start included: a bound for a slow, loaded machine

# (name, source): each cell, by the name the tests look its outputs up by.
CELLS: List[Tuple[str, str]] = [
    ("python", "import sys\nprint(sys.executable)"),
    ("data", "from sklearn.datasets import load_iris\n"
             f"load_iris(as_frame=True).frame.to_csv({CSV!r}, index=False)"),
    ("train", "import pandas as pd\n"
              "from sklearn.linear_model import LogisticRegression\n"
              "import mlmd_exercise as mx\n"
              "mx.autolog(store='metadata.db', experiment='notebook')\n"
              f"frame = pd.read_csv({CSV!r})\n"
              "X, y = frame.drop(columns='target'), frame['target']\n"
              "LogisticRegression(C=0.5, max_iter=500).fit(X, y)\n"
              "LogisticRegression(C=2.0, max_iter=500).fit(X, y)\n"
              "store = mx.open_store('metadata.db')\n"
              "model = mx.list_artifacts(store, type='SavedModel')[0]  # the newest\n"
              "runs = mx.list_executions(store, type='LogisticRegression')"),
    ("record", "model"),
    ("walk", "mx.walk(store, artifact_id=model.id, direction='upstream')"),
    ("show_lineage", "mx.show_lineage(model)  # the default store: metadata.db, here"),
    ("diff", "mx.diff_runs(store, runs[1].id, runs[0].id)"),
    ("history", "tracker = mx.Tracker('metadata.db', experiment='notebook')\n"
                f"with tracker.execution('Trainer', name={HOSTILE!r}) as run:\n"
                "    for step in range(30):\n"
                "        run.log_metric('loss', 1 / (step + 1), step=step)\n"
                "mx.metric_history(store, run.id, 'loss')"),
    ("hostile", "display(mx.get_execution(store, run.id))\nmx.show_lineage(run, store)"),
]


@pytest.fixture(scope="module")
def executed(tmp_path_factory) -> Iterator[Tuple[Dict[str, List[dict]], Path]]:
    """Each cell's outputs, by name, once the notebook has run; and its folder."""
    home = tmp_path_factory.mktemp("notebook")
    work = home / "work"
    work.mkdir()
    # A kernel spec of this virtualenv's Python, found through JUPYTER_PATH alone: the kernel
    # never runs another Python that happens to be installed.
    subprocess.run([sys.executable, "-m", "ipykernel", "install", "--prefix", str(home / "jupyter"),
                    "--name", KERNEL], check=True, capture_output=True)
    saved = {k: os.environ.get(k) for k in ("JUPYTER_PATH", "MLMD_STORE")}
    os.environ["JUPYTER_PATH"] = str(home / "jupyter" / "share" / "jupyter")
    os.environ.pop("MLMD_STORE", None)  # show_lineage's default store is the folder's metadata.db
    try:
        nb = nbformat.v4.new_notebook()
        nb.cells = [nbformat.v4.new_code_cell(source, metadata={"name": name}) for name, source in CELLS]
        client = nbclient.NotebookClient(nb, kernel_name=KERNEL, timeout=TIMEOUT, startup_timeout=TIMEOUT,
                                         resources={"metadata": {"path": str(work)}})
        client.execute()  # raises CellExecutionError, with the traceback, where a cell fails
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    nbformat.write(nb, str(home / "executed.ipynb"))  # to open and look at, where a test fails
    yield {cell.metadata["name"]: cell.outputs for cell in nb.cells}, work


def _html(outputs: List[dict]) -> List[str]:
    return [o["data"]["text/html"] for o in outputs if "data" in o and "text/html" in o["data"]]


def _svg_of(html: str) -> str:
    found = re.search(r"<svg.*?</svg>", html, re.S)
    assert found, html[:300]
    return found.group(0)


def test_the_kernel_runs_this_virtualenvs_python(executed):
    outputs, _ = executed
    printed = "".join(o.get("text", "") for o in outputs["python"] if o["output_type"] == "stream")
    assert printed.strip() == sys.executable


def test_every_cell_ran_with_no_error_or_warning(executed):
    outputs, work = executed
    for name, cell in outputs.items():
        assert not [o for o in cell if o["output_type"] == "error"], name
        stderr = "".join(o.get("text", "") for o in cell if o.get("name") == "stderr")
        assert "mlmd_exercise" not in stderr and "Traceback" not in stderr, (name, stderr)
    assert (work / "metadata.db").is_file() and (work / CSV).is_file()


def test_the_model_record_shows_itself(executed):
    outputs, _ = executed
    (html,) = _html(outputs["record"])
    assert html.startswith('<div class="mlmdx"><style>')
    assert re.search(r"<b>SavedModel #\d+</b>", html) and "LogisticRegression" in html
    assert "training_score" in html and "fingerprint" in html


def test_show_lineage_draws_the_model_and_the_csv_in_the_cell(executed):
    outputs, _ = executed
    (result,) = [o for o in outputs["show_lineage"] if o["output_type"] == "execute_result"]
    svg = result["data"]["image/svg+xml"]
    assert svg.startswith("<svg") and svg.rstrip().endswith("</svg>") and 'class="node"' in svg
    html = result["data"]["text/html"]
    assert svg.strip() in html and "Lineage of SavedModel" in html and 'class="legend"' in html
    # The model, the run that made it and the file its data came from, by name.
    texts = re.findall(r"<text[^>]*>([^<]*)</text>", svg)
    assert "LogisticRegression" in texts and "iris&amp;&lt;i&gt;.csv" in texts
    # Data in memory is named by its notebook and variable, not by the kernel's file of one cell.
    assert "notebook#X" in texts and not any(re.search(r"\d+\.py#", t) for t in texts), texts
    assert any(t.startswith("SavedModel #") for t in texts) and any(t.startswith("LogisticRegression #") for t in texts)
    assert 'stroke-width="3"' in svg  # the model, outlined


def test_a_walk_a_diff_and_a_history_show_themselves(executed):
    outputs, _ = executed
    (walk,) = _html(outputs["walk"])
    assert "iris&amp;&lt;i&gt;.csv" in _svg_of(walk) and "4 artifacts, 1 execution" in walk  # X, y, the CSV, the model
    (diff,) = _html(outputs["diff"])
    assert re.search(r"Compare LogisticRegression #\d+ and LogisticRegression #\d+", diff)
    assert re.search(r"<td>params</td><td><code>C</code></td><td>0.5</td><td>2.0</td>", diff)
    (history,) = _html(outputs["history"])
    assert "30 points, steps 0 to 29" in history and "<polyline" in _svg_of(history)


def test_no_output_holds_a_script_or_fetches_anything(executed):
    outputs, _ = executed
    shown = [text for cell in outputs.values() for o in cell for mime, text in o.get("data", {}).items()
             if mime in ("text/html", "image/svg+xml")]
    assert len(shown) >= 8
    for text in shown:
        assert "<script" not in text.lower()
        assert not re.search(r"<[a-zA-Z][^<>]*\s(src|href)=", text) and "<link" not in text
        assert "url(" not in text.replace("url(#", "")
        assert set(re.findall(r'https?://[^"\s)<]+', text)) <= {"http://www.w3.org/2000/svg",
                                                              "http://www.w3.org/1999/xlink"}


def test_a_hostile_run_name_shows_as_text(executed):
    outputs, _ = executed
    record, lineage = _html(outputs["hostile"])
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co"
    assert escaped in record and HOSTILE not in record
    assert escaped in re.findall(r"<text[^>]*>([^<]*)</text>", _svg_of(lineage))
    assert HOSTILE not in lineage
