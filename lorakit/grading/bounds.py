"""Bounds on one student's whole run, beyond the per-process limits of `sandbox.Limits`: a memory cgroup that all
its processes share, and a size-limited scratch folder (a tmpfs mounted on it). Both need root and a kernel that
allows them (the machine's cgroup tree writable; tmpfs mounts); where they can't be made the run goes on with
the per-process limits only, and `available()` says which bounds hold here.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

CGROUP_ROOT = Path("/sys/fs/cgroup")
V1_MEMORY = CGROUP_ROOT / "memory"  # cgroup v1's memory hierarchy; v2 has one tree with memory.max files


def _memory_parent() -> tuple[Path, str] | None:
    """(where a memory group can be made, its limit file), or None when this process can't make one."""
    if os.geteuid() != 0:
        return None
    if (V1_MEMORY / "memory.limit_in_bytes").exists() and os.access(V1_MEMORY, os.W_OK):
        return V1_MEMORY, "memory.limit_in_bytes"
    controllers = CGROUP_ROOT / "cgroup.subtree_control"
    if controllers.exists() and "memory" in controllers.read_text().split() and os.access(CGROUP_ROOT, os.W_OK):
        return CGROUP_ROOT, "memory.max"
    return None


@contextmanager
def memory_group(limit_bytes: int) -> Iterator[Path | None]:
    """A fresh cgroup capping the memory of every process that joins it (`join`) at `limit_bytes` together; None
    where none can be made. Its processes are killed and the group removed on exit."""
    found = _memory_parent()
    group = None
    if found is not None:
        parent, limit_file = found
        group = parent / f"lorakit-{uuid.uuid4().hex[:12]}"
        try:
            group.mkdir()
            (group / limit_file).write_text(str(limit_bytes))
        except OSError:
            group = None
    try:
        yield group
    finally:
        if group is not None:
            _remove(group)


def join(group: Path | None) -> None:
    """Move the calling process (and so its future children) into `group`; nothing for None. Run in the child."""
    if group is not None:
        (group / "cgroup.procs").write_text(str(os.getpid()))


def _remove(group: Path) -> None:
    for _ in range(50):
        pids = [int(p) for p in (group / "cgroup.procs").read_text().split()] if group.exists() else []
        for pid in pids:
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
        try:
            group.rmdir()
            return
        except OSError:
            time.sleep(0.1)


def killed_for_memory(group: Path | None) -> bool:
    """True when the group's cap was reached and a process of it was killed (the `oom_kill` count of v2's
    memory.events or v1's memory.oom_control)."""
    if group is None:
        return False
    for name in ("memory.events", "memory.oom_control"):
        if (group / name).exists():
            counts = dict(line.split()[:2] for line in (group / name).read_text().splitlines() if line.strip())
            return int(counts.get("oom_kill", 0)) > 0
    return False


@contextmanager
def sized_scratch(folder: Path, size_bytes: int) -> Iterator[bool]:
    """Mount a tmpfs of `size_bytes` on the empty `folder`, so all a student's files together fit in it; yields
    whether the mount holds (False: not root, or mounting refused; the folder is then an ordinary one)."""
    mounted = os.geteuid() == 0 and subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_bytes},mode=0700,nosuid,nodev", "tmpfs", str(folder)],
        capture_output=True).returncode == 0
    try:
        yield mounted
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def available() -> dict[str, bool]:
    """Which whole-run bounds this machine gives the grader: {"memory": ..., "disk": ...}."""
    probe = Path(tempfile.mkdtemp(prefix="lorakit-bounds-"))
    try:
        with sized_scratch(probe, 2**20) as disk, memory_group(2**30) as group:
            return {"memory": group is not None, "disk": disk}
    finally:
        probe.rmdir()
