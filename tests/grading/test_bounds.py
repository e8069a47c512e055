"""Bounds on a student's whole run: one memory cap for all its processes (a cgroup) and one disk cap for all its
files (a tmpfs scratch). They need root; elsewhere these tests skip, and the run keeps its per-process limits."""

import os
import subprocess
import sys

import nbformat
import pytest

from lorakit.grading import bounds, sandbox
from lorakit.grading.runner import run_notebook
from tests.helpers.grading_course import require_sandbox

# three processes of 300 MB each: every one under the per-process limit, together over a 500 MB cap
THREE_PROCESSES = ("import subprocess, sys\n"
                   "child = \"import time; block = b'x' * (300 * 2**20); time.sleep(3)\"\n"
                   "running = [subprocess.Popen([sys.executable, '-c', child]) for _ in range(3)]\n"
                   "print([p.wait() for p in running])")
KERNEL = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}


def _needs(bound: str) -> None:
    if not bounds.available()[bound]:
        pytest.skip(f"no {bound} bound here: it needs root (a writable cgroup tree, tmpfs mounts)")


def _in_group(tmp_path, cap_bytes):
    require_sandbox()
    scratch = tmp_path / "scratch"
    scratch.mkdir(parents=True)
    sandbox.prepare_scratch(scratch)
    with bounds.memory_group(cap_bytes) as group:
        def start():
            sandbox.Limits().apply()
            bounds.join(group)

        done = subprocess.run(sandbox.command(scratch, [sys.executable, "-c", THREE_PROCESSES], {}),
                              capture_output=True, text=True, timeout=120, preexec_fn=start)
        return done, bounds.killed_for_memory(group), group


@pytest.mark.sandbox
def test_processes_that_together_pass_the_cap_are_stopped(tmp_path):
    _needs("memory")
    done, killed, group = _in_group(tmp_path, 500 * 2**20)
    assert killed and "-9" in done.stdout  # the kernel's OOM killer stopped at least one child
    assert not group.exists()  # removed, with whatever was left in it
    done, killed, _ = _in_group(tmp_path / "roomy", 2 * 2**30)
    assert not killed and done.stdout.strip() == "[0, 0, 0]"  # the same processes under a 2 GB cap finish


def test_a_sized_scratch_holds_only_its_size(tmp_path):
    _needs("disk")
    folder = tmp_path / "scratch"
    folder.mkdir()
    with bounds.sized_scratch(folder, 2**20) as mounted:
        assert mounted
        (folder / "small").write_bytes(b"x" * 500_000)
        with pytest.raises(OSError, match="No space left"):
            (folder / "big").write_bytes(b"x" * 600_000)
    assert not os.path.ismount(folder) and list(folder.iterdir()) == []


@pytest.mark.sandbox
def test_a_notebook_writing_past_its_disk_cap_is_stopped_there_and_graded_on(tmp_path):
    require_sandbox()
    _needs("disk")
    writes = "for i in range(8):\n    open(f'f{i}', 'wb').write(b'x' * 10 * 2**20)"  # 80 MB in 10 MB files
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(writes), nbformat.v4.new_code_cell("2 + 2")],
                                        metadata=KERNEL)
    run = run_notebook(notebook, timeout=30, seed="0", mode="require", limits=sandbox.Limits(disk_mb=32))
    first, second = run.executed.cells
    assert first.outputs[0]["ename"] == "OSError" and "No space left" in first.outputs[0]["evalue"]
    assert second.outputs[0]["data"]["text/plain"] == "4"


@pytest.mark.parametrize("field, value, problem", [
    ("total_memory_gb", 0.5, r"total_memory_gb must be in \[1, 1024\], got 0.5"),
    ("disk_mb", 8, "disk_mb must be a whole number from 16 to 100000, got 8"),
    ("disk_mb", 64.0, "disk_mb must be a whole number from 16 to 100000, got 64.0"),
])
def test_whole_run_limits_are_checked(field, value, problem):
    with pytest.raises(ValueError, match=problem):
        sandbox.Limits(**{field: value})
