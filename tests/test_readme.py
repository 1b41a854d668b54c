"""README.md stays true: its Python example runs, its CLI commands exist."""

from __future__ import annotations

import math
import re
from pathlib import Path

import mlmd_exercise as mx
from mlmd_exercise.cli import main as cli

README = (Path(__file__).parent.parent / "README.md").read_text()


def test_the_python_examples_run(tmp_path, monkeypatch):
    """The README's Python examples, in order, in one namespace (the second uses the first's tracker)."""
    first, history = re.findall(r"```python\n(.*?)```", README, re.S)
    monkeypatch.chdir(tmp_path)
    names: dict = {}
    exec(compile(first, "README.md", "exec"), names)
    store = mx.open_store(tmp_path / "metadata.db")
    assert mx.count_by_state(store) == {"COMPLETE": 1}
    [execution] = mx.lineage_graph(store).executions.values()
    one = mx.execution_lineage(store, execution.id)
    assert [a.type for _, a in one.inputs + one.outputs] == ["DataSet", "SavedModel"]
    del store
    exec(compile(history, "README.md", "exec"), names)
    assert [(p.step, p.value) for p in names["history"]] == [(s, math.exp(-s / 20)) for s in range(100)]


def test_the_readme_names_every_cli_command_and_no_other():
    named = set(re.findall(r"[$`] ?mlmd-exercise (\w+)", README))
    commands = {c.name for c in cli.COMMANDS}
    assert named == commands  # each command is named, and only real ones


def test_every_console_example_prints_what_the_readme_shows(tmp_path):
    """Each ```console block is run for real (scripts/readme_examples.py --write refreshes them)."""
    import sys

    sys.path.insert(0, str(Path(__file__).parent.parent / "scripts"))
    import readme_examples

    folder = tmp_path / "proj"
    folder.mkdir()
    results = readme_examples.run_all(README, folder)
    assert sum(len(commands) for _, commands, _ in results) >= 10  # the examples are there
    found = readme_examples.differences(results)
    assert not found, "\n\n".join(found)
