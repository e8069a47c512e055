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


def pytest_collection_modifyitems(config, items):
    """Tests marked `gpu` skip without CUDA, with the reason; LORAKIT_REQUIRE_GPU makes that a failure instead."""
    gpu_tests = [item for item in items if item.get_closest_marker("gpu")]
    if not gpu_tests:
        return
    import torch

    if torch.cuda.is_available():
        return
    if os.environ.get("LORAKIT_REQUIRE_GPU"):
        raise pytest.UsageError(f"LORAKIT_REQUIRE_GPU is set but no CUDA GPU is visible ({len(gpu_tests)} gpu tests)")
    for item in gpu_tests:
        item.add_marker(pytest.mark.skip(reason="no CUDA GPU here (marker gpu)"))


@pytest.fixture
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def tiny_base():
    """The built-in tiny model and its tokenizer, loaded once: for tests that only read them (never train them)."""
    from lorakit.models.load import load_base

    model, tokenizer = load_base("tiny")
    return model.eval(), tokenizer


@pytest.fixture(scope="session")
def tiny_tokenizer(tiny_base):
    return tiny_base[1]
