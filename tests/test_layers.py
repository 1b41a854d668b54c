"""The package's imports run one way (DESIGN.md, "The modules"): a module imports only from its
own layer and the layers below it, and no modules import each other in a circle.

Every import counts, wherever it is: at the top of a module, inside a function (the package's
heavy imports are there), or under `if TYPE_CHECKING:`. A new module must be given a layer here.
One is no import of the package's own: a record's `_repr_html_`, which Jupyter calls to display
it and nothing in the package does, imports the notebook module (DISPLAY_HOOK) when it is called.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Dict, Iterator, List, Set, Tuple

import mlmd_exercise

PACKAGE = Path(mlmd_exercise.__file__).parent

# Lowest first. A module's layer is found by its dotted name: the longest prefix listed wins.
LAYERS: Tuple[Tuple[str, Tuple[str, ...]], ...] = (
    ("values", ("version", "errors", "labels", "records", "masking", "values", "schema", "history", "content",
                "process", "environment", "bundle_check", "bundle", "where")),
    ("store", ("store",)),
    ("read", ("read",)),
    ("text and pictures", ("render", "collapse", "text")),
    # A run's OpenLineage events, read from the store: below write, which tells it of runs as
    # they are recorded (Tracker(openlineage=...)); reading events back in is an integration.
    ("lineage events", ("integrations.openlineage",)),
    ("write", ("write",)),
    ("workflow", ("workflow",)),
    ("integrations", ("integrations",)),  # autolog: other libraries' work recorded through the write layer
    ("web", ("web",)),
    ("notebook", ("notebook",)),  # records and lineage drawn in Jupyter, with the explorer's HTML
    ("cli", ("cli", "__main__")),
    ("the package's face", ("",)),  # mlmd_exercise/__init__.py: re-exports, lazily
)
# Text and pictures take plain records and never touch a store: at run time they import only values
# (the read layer's records for type hints alone).
PLAIN = ("text and pictures",)
# The method Jupyter calls to display an object, and the one module it may import from any layer.
DISPLAY_METHOD, DISPLAY_HOOK = "_repr_html_", "mlmd_exercise.notebook"


def _modules() -> Iterator[Tuple[str, Path]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        yield ".".join(parts), path


def _is_module(dotted: str) -> bool:
    relative = Path(*dotted.split(".")[1:]) if "." in dotted else Path()
    return (PACKAGE / relative).with_suffix(".py").is_file() or (PACKAGE / relative / "__init__.py").is_file()


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(path: Path, module: str) -> List[Tuple[int, str, bool]]:
    """(line, imported module of this package, only for type checking) of every import."""
    found: List[Tuple[int, str, bool]] = []

    def visit(node: ast.AST, typing_only: bool, display: bool = False) -> None:
        if isinstance(node, ast.If) and _type_checking(node):
            for child in node.body:
                visit(child, True, display)
            for child in node.orelse:
                visit(child, typing_only, display)
            return
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            display = node.name == DISPLAY_METHOD
        if isinstance(node, ast.Import):
            found.extend((node.lineno, a.name, typing_only) for a in node.names
                         if a.name.split(".")[0] == "mlmd_exercise" and not (display and a.name == DISPLAY_HOOK))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the module's own package
                package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
                base = ".".join(["mlmd_exercise"] + package[:len(package) - node.level + 1]
                                + ([node.module] if node.module else []))
            if base.split(".")[0] == "mlmd_exercise":
                for alias in node.names:
                    target = f"{base}.{alias.name}"
                    target = target if _is_module(target) else base
                    if not (display and target == DISPLAY_HOOK):
                        found.append((node.lineno, target, typing_only))
        for child in ast.iter_child_nodes(node):
            visit(child, typing_only, display)

    visit(ast.parse(path.read_text(), str(path)), False)
    return found


def _layer(dotted: str) -> int:
    name = dotted[len("mlmd_exercise"):].lstrip(".")
    best, rank = -1, -1
    for i, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (name == prefix or name.startswith(prefix + ".") or prefix == "") and len(prefix) > best:
                best, rank = len(prefix), i
    return rank


def _graph() -> Dict[str, List[Tuple[int, str, bool]]]:
    return {f"mlmd_exercise.{m}".rstrip("."): _imports(path, m) for m, path in _modules()}


def test_every_module_has_a_layer():
    unplaced = [m for m in _graph() if _layer(m) == len(LAYERS) - 1 and m != "mlmd_exercise"]
    assert not unplaced, f"give these modules a layer in tests/test_layers.py: {unplaced}"


def test_no_import_runs_against_the_layers():
    wrong = []
    for module, imports in _graph().items():
        mine = _layer(module)
        for line, target, typing_only in imports:
            theirs = _layer(target)
            if theirs > mine:
                wrong.append(f"{module} (line {line}, {LAYERS[mine][0]}) imports {target} ({LAYERS[theirs][0]})")
            elif LAYERS[mine][0] in PLAIN and not typing_only and theirs > 0 and theirs != mine:
                wrong.append(f"{module} (line {line}, {LAYERS[mine][0]}) imports {target} at run time")
    assert not wrong, "imports against the layer order:\n" + "\n".join(wrong)


def test_no_modules_import_each_other_in_a_circle():
    """Every import counts, one named for type hints alone too (a Run names what it needs of its
    Tracker as a Protocol of its own, write/run.Recorder, rather than import the Tracker's module)."""
    graph = {m: {t for _, t, _ in imports if t != m} for m, imports in _graph().items()}
    circles: List[List[str]] = []
    state: Dict[str, int] = {}  # 1: on the path, 2: done
    path: List[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                circles.append(path[path.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        path.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert not circles, "modules that import each other:\n" + "\n".join(" -> ".join(c) for c in circles)


def test_the_checks_see_an_import_inside_a_function(tmp_path):
    """The parser finds what the tests above rely on: a late import, one under TYPE_CHECKING."""
    source = tmp_path / "m.py"
    source.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from mlmd_exercise import cli\n"
                      "def f():\n    from mlmd_exercise.write import tracking\n    import mlmd_exercise.web.server\n")
    assert _imports(source, "store.m") == [(3, "mlmd_exercise.cli", True), (5, "mlmd_exercise.write.tracking", False),
                                           (6, "mlmd_exercise.web.server", False)]
    assert _layer("mlmd_exercise.write.tracking") > _layer("mlmd_exercise.store.m")
    seen: Set[str] = {t for _, t, _ in _imports(PACKAGE / "cli" / "main.py", "cli.main")}
    assert "mlmd_exercise.cli.command" in seen


def test_only_a_display_hook_may_import_the_notebook_module(tmp_path):
    """`_repr_html_` importing the notebook module is no import; the notebook module imported
    anywhere else, or anything else imported in `_repr_html_`, is."""
    source = tmp_path / "m.py"
    source.write_text("class R:\n    def _repr_html_(self):\n        from mlmd_exercise import notebook\n"
                      "        import mlmd_exercise.notebook\n        from mlmd_exercise.web import views\n"
                      "    def other(self):\n        from mlmd_exercise import notebook\n")
    assert _imports(source, "records") == [(5, "mlmd_exercise.web.views", False), (7, "mlmd_exercise.notebook", False)]
