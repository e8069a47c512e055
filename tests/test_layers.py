"""The package's jobs are layered as pyproject's import-linter contract declares (checked by `lint-imports`), no
module imports another's private (`_name`) names, `import lorakit` has no side effect, and docs/DESIGN.md lists the
jobs in the contract's order."""

import ast
import re
import subprocess
import sys
from pathlib import Path

import tomllib

from tests.helpers import REPO

PACKAGE = REPO / "lorakit"


def _layers() -> list[str]:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]
    (contract,) = [c for c in config["contracts"] if c["type"] == "layers"]
    return contract["layers"]


def test_import_linter_keeps_the_layers_contract():
    lint = Path(sys.executable).parent / "lint-imports"
    done = subprocess.run([str(lint)], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and "1 kept, 0 broken" in done.stdout, done.stdout[-3000:]


def test_every_job_of_the_package_is_a_layer():
    jobs = {f"lorakit.{path.stem if path.is_file() else path.name}" for path in PACKAGE.iterdir()
            if (path.is_dir() and (path / "__init__.py").exists()) or (path.suffix == ".py" and path.stem != "__init__")}
    assert jobs == set(_layers())


def test_no_private_names_across_modules():
    private = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level and node.module:
                private += [(str(path.relative_to(REPO)), node.module, a.name) for a in node.names
                            if a.name.startswith("_") and a.name != "__version__"]
    assert private == []


def test_importing_lorakit_imports_no_library_and_changes_nothing():
    probe = ("import logging, sys; before = {n: list(l.filters) for n, l in logging.root.manager.loggerDict.items() "
             "if isinstance(l, logging.Logger)}; import lorakit; "
             "after = {n: list(l.filters) for n, l in logging.root.manager.loggerDict.items() "
             "if isinstance(l, logging.Logger)}; "
             "print(sorted(m for m in ('torch', 'transformers', 'peft', 'nbformat') if m in sys.modules), "
             "before == after)")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert done.stdout.strip() == "[] True", done.stdout + done.stderr


def test_design_doc_lists_the_layers_top_to_bottom():
    table = (REPO / "docs" / "DESIGN.md").read_text().split("## Layers", 1)[1].split("\n## ", 1)[0]
    listed = re.findall(r"^\| \d+ \| `(lorakit\.\w+)`", table, flags=re.M)
    assert listed == _layers()


def _exports(package: Path) -> dict[str, str]:
    tree = ast.parse((package / "__init__.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and [t.id for t in node.targets if isinstance(t, ast.Name)] == ["EXPORTS"]:
            return ast.literal_eval(node.value)
    return {}


def test_every_exported_name_resolves_and_none_shadows_a_module():
    """`from lorakit.x import name` must give the name, not a module: once a submodule called `name` is imported,
    the import system sets it as the package's attribute and the lazy export is never asked."""
    for package in [PACKAGE, *sorted(p for p in PACKAGE.iterdir() if (p / "__init__.py").exists())]:
        exports = _exports(package)
        modules = {p.stem for p in package.glob("*.py")} | {p.name for p in package.iterdir() if p.is_dir()}
        assert not set(exports) & modules, (package.name, set(exports) & modules)
        for module in set(exports.values()):
            assert (package / f"{module.replace('.', '/')}.py").exists(), (package.name, module)


def test_chapters_import_from_three_public_packages_and_hidden_tests_from_grading():
    """Lesson cells use `lorakit`, `lorakit.evaluation` and `lorakit.lessons` (never a module inside a job, never the
    internal `lorakit.compat`); hidden tests add `lorakit.grading`. Every name imported is one the package exports."""
    allowed = {"lorakit": PACKAGE, "lorakit.evaluation": PACKAGE / "evaluation", "lorakit.lessons": PACKAGE / "lessons",
               "lorakit.grading": PACKAGE / "grading"}
    wrong = []
    for chapter in sorted((REPO / "course").glob("*.py")):
        for node in ast.walk(ast.parse(chapter.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("lorakit"):
                exports = _exports(allowed[node.module]) if node.module in allowed else {}
                wrong += [(chapter.name, node.module, a.name) for a in node.names if a.name not in exports]
            elif isinstance(node, ast.Import):
                wrong += [(chapter.name, a.name) for a in node.names if a.name.startswith("lorakit.")]
    assert wrong == []
