"""Shared test set-up: offline hub, the venv's bin on PATH (nbgrader shells out to alembic), quiet logs."""

import os
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("MPLBACKEND", "Agg")
_bin = str(Path(sys.executable).parent)
if _bin not in os.environ.get("PATH", "").split(os.pathsep):
    os.environ["PATH"] = _bin + os.pathsep + os.environ.get("PATH", "")



@pytest.fixture
def repo() -> Path:
    return REPO
