"""The course's configuration (nbgrader_config.py, read with traitlets, never exec'd by hand) and the grading secret."""

from __future__ import annotations

import hashlib
import hmac
import os
from pathlib import Path
from typing import Any

SECRET_ENV = "LORAKIT_GRADING_SECRET"


def load_config(course_root: Path) -> Any:
    """The course's nbgrader config merged over the instructor's own (~/.jupyter/nbgrader_config.py)."""
    from jupyter_core.paths import jupyter_config_dir
    from traitlets.config import Config
    from traitlets.config.loader import PyFileConfigLoader

    config_file = course_root / "nbgrader_config.py"
    if not config_file.is_file():
        raise ValueError(f"course_root {str(course_root)!r} has no nbgrader_config.py (is it an nbgrader course folder?)")
    config = Config()
    personal = Path(jupyter_config_dir()) / "nbgrader_config.py"
    for path in ([personal] if personal.is_file() else []) + [config_file]:
        config.merge(PyFileConfigLoader(path.name, path=str(path.parent)).load_config())
    config.CourseDirectory.root = str(course_root.resolve())
    config.CourseDirectory.db_url = f"sqlite:///{(course_root / 'gradebook.db').resolve()}"
    return config


def secret(config: Any, given: str | None = None) -> str:
    """The course's grading secret: `given`, else $LORAKIT_GRADING_SECRET, else c.LorakitGrader.secret."""
    value = given or os.environ.get(SECRET_ENV) or config.get("LorakitGrader", {}).get("secret")
    if not value or not isinstance(value, str) or len(value) < 8:
        raise ValueError(f"no grading secret: set {SECRET_ENV} or c.LorakitGrader.secret (≥ 8 characters) in your "
                         "own ~/.jupyter/nbgrader_config.py, outside the repository; hidden-check inputs derive from it")
    return value


def seed(secret_value: str, assignment: str) -> str:
    """The hidden-check seed of one assignment (what enters the sandbox; the secret never does)."""
    return hmac.new(secret_value.encode(), f"lorakit-grading:{assignment}".encode(), hashlib.sha256).hexdigest()[:32]


def fingerprint(seed_value: str) -> str:
    """12 hex digits naming a seed in reports and cache names; neither the seed nor the secret can be read back."""
    return hashlib.sha256(f"lorakit-seed:{seed_value}".encode()).hexdigest()[:12]
