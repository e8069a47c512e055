"""Shared test helpers: the repository root, the guide, notebook readers, bad-input cases, the grading fixture course."""

import importlib.util
import json
import os
import sys
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[2]
# the guide sits in ../shared/guide beside the checkout (the steering side's copy); LORAKIT_GUIDE overrides
GUIDE = Path(os.environ.get("LORAKIT_GUIDE", REPO.parent / "shared" / "guide" / "training-guide.md"))
# the guide's number-bearing lines, for machines without the guide (lorakit.lessons.guide_audit.guide_number_lines)
GUIDE_NUMBERS: list[str] = json.loads((REPO / "tests" / "fixtures" / "guide_numbers.json").read_text())["lines"]


def load_benchmark(name: str) -> ModuleType:
    """benchmarks/<name>.py executed afresh as the module `name`, registered in sys.modules (its dataclasses look
    their module up there, and a benchmark importing it by name gets this one)."""
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
