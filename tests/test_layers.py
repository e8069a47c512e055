"""The package is layered: no import loop between lorakit modules (module-level or inside functions), no module
imports another's private (`_name`) names, and the ground floor imports no other lorakit module."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "lorakit"


def _imports() -> dict[str, list[tuple[str, str]]]:
    """module → [(imported lorakit module, imported name)] for every `from . import` / `from .x import` in it."""
    found: dict[str, list[tuple[str, str]]] = {}
    for path in sorted(PACKAGE.glob("*.py")):
        module = path.stem
        found[module] = []
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                for alias in node.names:
                    target = node.module or alias.name
                    found[module].append((target, alias.name if node.module else ""))
    return found


def _loops(graph: dict[str, set[str]]) -> list[list[str]]:
    loops, state = [], {}

    def visit(node, path):
        state[node] = "open"
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == "open":
                loops.append(path[path.index(dep):] + [dep])
            elif dep not in state:
                visit(dep, path + [dep])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    return loops


def test_no_import_loops():
    graph = {m: {t for t, _ in deps if t != "__init__"} for m, deps in _imports().items() if m != "__init__"}
    assert _loops(graph) == []


def test_no_private_names_across_modules():
    private = [(m, t, n) for m, deps in _imports().items() for t, n in deps if n.startswith("_")]
    assert private == []


def test_the_ground_floor_imports_no_other_lorakit_module():
    imports = _imports()
    assert imports["vocab"] == [] and imports["notes"] == [] and imports["logs"] == []
