"""Shared test helpers: the repository root, the guide, notebook readers, bad-input cases, the grading fixture course."""

import json
import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# the guide sits in ../shared/guide beside the checkout (the steering side's copy); LORAKIT_GUIDE overrides
GUIDE = Path(os.environ.get("LORAKIT_GUIDE", REPO.parent / "shared" / "guide" / "training-guide.md"))
# the guide's number-bearing lines, for machines without the guide (lorakit.lessons.guide_audit.guide_number_lines)
GUIDE_NUMBERS: list[str] = json.loads((REPO / "tests" / "fixtures" / "guide_numbers.json").read_text())["lines"]
