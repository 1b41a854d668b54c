"""README.md stays true: its Python example runs, its CLI commands exist."""

from __future__ import annotations

import re
from pathlib import Path

import mlmd_exercise as mx
from mlmd_exercise import cli

README = (Path(__file__).parent.parent / "README.md").read_text()


def test_the_python_example_runs(tmp_path, monkeypatch):
    [example] = re.findall(r"```python\n(.*?)```", README, re.S)
    monkeypatch.chdir(tmp_path)
    exec(compile(example, "README.md", "exec"), {})
    store = mx.open_store(tmp_path / "metadata.db")
    assert mx.count_by_state(store) == {"COMPLETE": 1}
    [execution] = mx.lineage_graph(store).executions.values()
    one = mx.execution_lineage(store, execution.id)
    assert [a.type for _, a in one.inputs + one.outputs] == ["DataSet", "SavedModel"]


def test_the_readme_names_every_cli_command_and_no_other():
    named = set(re.findall(r"[$`] ?mlmd-exercise (\w+)", README))
    commands = set(cli.build_parser()._subparsers._group_actions[0].choices)
    assert named == commands  # each command is named, and only real ones
