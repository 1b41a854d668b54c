"""README.md and docs/*.md stay true: their examples run, their commands exist, their links lead somewhere."""

from __future__ import annotations

import importlib.util
import math
import re
import sys
from pathlib import Path
from typing import List

import pytest

import mlmd_exercise as mx
from mlmd_exercise.cli import main as cli

ROOT = Path(__file__).parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import readme_examples  # noqa: E402

PAGES = readme_examples.pages()  # README.md and every docs/*.md, found rather than listed
README = (ROOT / "README.md").read_text()


def _name(page: Path) -> str:
    return str(page.relative_to(ROOT))


def _python_blocks(page: Path):
    return re.findall(r"```python\n(.*?)```", page.read_text(), re.S)


def _records_a_run_with_its_lineage(folder: Path, names: dict) -> None:
    store = mx.open_store(folder / "metadata.db")
    assert mx.count_by_state(store) == {"COMPLETE": 1}
    [execution] = mx.lineage_graph(store).executions.values()
    one = mx.execution_lineage(store, execution.id)
    assert [a.type for _, a in one.inputs + one.outputs] == ["DataSet", "SavedModel"]


def _reads_back_every_step(folder: Path, names: dict) -> None:
    assert [(p.step, p.value) for p in names["history"]] == [(s, math.exp(-s / 20)) for s in range(100)]


# What a page's examples must have done, beyond running (pages not named here: running is the test).
OUTCOMES = {"README.md": _records_a_run_with_its_lineage, "docs/python.md": _reads_back_every_step}


def _missing(block: str) -> List[str]:
    """The libraries a block says it needs (a first line `# needs: torch, lightning`: an
    integration's example, which its own test runs too) that are not installed here."""
    needs = re.match(r"# needs: (.+)\n", block)
    return [m.strip() for m in needs.group(1).split(",") if importlib.util.find_spec(m.strip()) is None] if needs else []


@pytest.mark.parametrize("page", [p for p in PAGES if _python_blocks(p)], ids=_name)
def test_the_python_examples_run(page, tmp_path, monkeypatch):
    """A page's Python examples, in order, in one namespace, in an empty folder of their own;
    one that needs a library not installed here is left to its integration's test, which skips."""
    monkeypatch.chdir(tmp_path)
    names: dict = {}
    for block in _python_blocks(page):
        if _missing(block):
            continue
        exec(compile(block, _name(page), "exec"), names)
    OUTCOMES.get(_name(page), lambda *_: None)(tmp_path, names)


def test_the_pages_named_for_outcomes_have_python_examples():
    assert all(_python_blocks(ROOT / name) for name in OUTCOMES)


def test_the_readme_names_every_cli_command_and_no_other():
    """The README's command table is the list of commands (cli/main.COMMANDS), every one, once."""
    table = re.findall(r"^\| `mlmd-exercise (\w+)", README, re.M)
    assert sorted(table) == sorted(c.name for c in cli.COMMANDS)


@pytest.mark.parametrize("page", PAGES, ids=_name)
def test_a_page_names_only_real_commands(page):
    named = set(re.findall(r"[$`] ?mlmd-exercise (\w+)", page.read_text()))
    assert named <= {c.name for c in cli.COMMANDS}


def _anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


@pytest.mark.parametrize("page", PAGES, ids=_name)
def test_every_link_to_a_page_or_a_heading_resolves(page):
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"\w+://", target):
            continue
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        if not linked.exists():
            broken.append(target)
        elif anchor and linked.suffix == ".md":
            headings = re.findall(r"^#+ (.*)$", linked.read_text(), re.M)
            if anchor not in {_anchor(h) for h in headings}:
                broken.append(target)
    assert not broken, f"{_name(page)}: links that lead nowhere: {broken}"


def test_the_readme_is_a_front_page():
    assert len(README.splitlines()) < 250
    linked = set(re.findall(r"\]\(docs/([\w-]+\.md)\)", README))
    assert linked == {p.name for p in (ROOT / "docs").glob("*.md")}  # every page is reachable


@pytest.mark.parametrize("page", [p for p in PAGES if readme_examples.parse(p.read_text())], ids=_name)
def test_every_console_example_prints_what_its_page_shows(page, tmp_path):
    """Each ```console block is run for real (scripts/readme_examples.py --write refreshes them)."""
    folder = tmp_path / "proj"
    folder.mkdir()
    results = readme_examples.run_all(page.read_text(), folder)
    assert sum(len(commands) for _, commands, _ in results) >= 1  # the examples are there
    found = readme_examples.differences(results)
    assert not found, "\n\n".join(found)
