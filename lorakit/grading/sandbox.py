"""The bubblewrap sandbox every student notebook runs in.

What the student's code sees: the system's /usr and /etc, the Python install and virtual environment (and the
site-packages of any environment it is layered on), the lorakit
package (nothing else of the repository), the model cache (~/.cache/lorakit, ~/.cache/huggingface) read-only,
and one scratch folder (`/grading`, writable) holding only that student's notebook. No network, its own PID and IPC
namespaces, an empty /tmp, a fresh environment without the grader's variables, an unprivileged uid (nobody, or one per
parallel grading slot, when the grader runs as root), and limits on processes, memory, file size and CPU time.

Needs `bwrap` (Debian/Ubuntu package `bubblewrap`) and, as root, `setpriv` (util-linux).
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import lorakit

SCRATCH = "/grading"
NOBODY = 65534
SLOT_UID_BASE = 65400  # grading slot k (k ≥ 1) of `lorakit grade --jobs` runs as uid SLOT_UID_BASE + k when root
SANDBOX_MODES = ("require", "warn")


class SandboxUnavailable(RuntimeError):
    """bubblewrap is missing or cannot create the sandbox here."""


@dataclass(frozen=True)
class Limits:
    """Resource limits of one sandboxed run.

    processes: most processes of the sandbox's uid (stops fork bombs; ≥ 16). memory_gb: address space of each process
    (0.5-512). file_mb: largest file it may write (1-10000). cpu_s: CPU seconds of each process (≥ 10).
    uid: the unprivileged uid the sandbox runs as when grading as root (1000-65534; nobody by default). Parallel
    grading gives each slot its own (`slot_uid`), so one student's processes never count against another's limit.
    Without root the sandbox runs as the grader's own uid in a user namespace, and every slot shares it.
    total_memory_gb: memory of all the run's processes together (1-1024), and disk_mb: all the files it writes
    together (16-100000), where `bounds` can enforce them (root: a memory cgroup, a tmpfs scratch).
    """

    processes: int = 256
    memory_gb: float = 8.0
    file_mb: int = 200
    cpu_s: int = 3600
    uid: int = NOBODY
    total_memory_gb: float = 6.0
    disk_mb: int = 1024

    def __post_init__(self) -> None:
        if isinstance(self.processes, bool) or not isinstance(self.processes, int) or self.processes < 16:
            raise ValueError(f"processes must be a whole number ≥ 16, got {self.processes!r}")
        if not 0.5 <= self.memory_gb <= 512:
            raise ValueError(f"memory_gb must be in [0.5, 512], got {self.memory_gb!r}")
        if not 1 <= self.file_mb <= 10000:
            raise ValueError(f"file_mb must be in [1, 10000], got {self.file_mb!r}")
        if self.cpu_s < 10:
            raise ValueError(f"cpu_s must be ≥ 10, got {self.cpu_s!r}")
        if isinstance(self.uid, bool) or not isinstance(self.uid, int) or not 1000 <= self.uid <= NOBODY:
            raise ValueError(f"uid must be a whole number from 1000 to {NOBODY}, got {self.uid!r}")
        if not 1 <= self.total_memory_gb <= 1024:
            raise ValueError(f"total_memory_gb must be in [1, 1024], got {self.total_memory_gb!r}")
        if isinstance(self.disk_mb, bool) or not isinstance(self.disk_mb, int) or not 16 <= self.disk_mb <= 100_000:
            raise ValueError(f"disk_mb must be a whole number from 16 to 100000, got {self.disk_mb!r}")

    def apply(self) -> None:
        """Set the limits on the current process (run in the child before bwrap starts; inherited inside)."""
        memory = int(self.memory_gb * 2**30)
        resource.setrlimit(resource.RLIMIT_NPROC, (self.processes, self.processes))
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        resource.setrlimit(resource.RLIMIT_FSIZE, (self.file_mb * 2**20, self.file_mb * 2**20))
        resource.setrlimit(resource.RLIMIT_CPU, (self.cpu_s, self.cpu_s))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def read_only_paths() -> list[Path]:
    """What Python and lorakit need, read-only: the interpreter's install, the venv, every site-packages folder on
    sys.path (a venv layered on another reaches the other's through a .pth), the package, model caches. Other sys.path
    entries (a checkout on PYTHONPATH) stay hidden."""
    package = Path(lorakit.__file__).resolve().parent
    home = Path.home()
    site_folders = [Path(entry).resolve() for entry in sys.path
                    if Path(entry).name in ("site-packages", "dist-packages")]
    paths = [Path(sys.base_prefix).resolve(), Path(sys.prefix).resolve(), *site_folders, package,
             home / ".cache" / "lorakit", home / ".cache" / "huggingface"]
    return [path for path in dict.fromkeys(paths) if path.exists()]


def _with_parents(target: Path) -> list[str]:
    """bwrap arguments creating each missing parent folder of `target` world-readable (bwrap makes them 0700)."""
    args: list[str] = []
    for parent in reversed(target.parents):
        if str(parent) != "/":
            args += ["--perms", "0755", "--dir", str(parent)]
    return args


def slot_uid(slot: int) -> int:
    """The sandbox uid of parallel grading slot `slot` (0 is nobody, as when grading one student at a time)."""
    return NOBODY if slot == 0 else SLOT_UID_BASE + slot


def command(scratch: Path, argv: list[str], env: dict[str, str], uid: int = NOBODY) -> list[str]:
    """The full command line running `argv` inside the sandbox with `scratch` as its only writable folder (as `uid`
    when grading as root)."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        raise SandboxUnavailable(needs())
    # the empty /tmp comes first: a venv or checkout under /tmp (a CI clone) is bound read-only on top of it
    args = [bwrap, "--tmpfs", "/tmp", "--ro-bind", "/usr", "/usr", "--ro-bind", "/etc", "/etc"]
    for name in ("bin", "sbin", "lib", "lib32", "lib64"):
        link = Path("/") / name
        if link.is_symlink():
            args += ["--symlink", os.readlink(link), str(link)]
        elif link.is_dir():
            args += ["--ro-bind", str(link), str(link)]
    for path in read_only_paths():
        args += _with_parents(path) + ["--ro-bind", str(path), str(path)]
    for config_dir in (Path("/etc/jupyter"), Path(sys.prefix) / "etc" / "jupyter", Path("/usr/local/etc/jupyter")):
        if config_dir.is_dir():  # an instructor may keep the grading secret in a system-wide Jupyter config
            args += ["--tmpfs", str(config_dir)]
    package_parent = str(Path(lorakit.__file__).resolve().parent.parent)
    args += ["--bind", str(scratch), SCRATCH, "--dev", "/dev", "--proc", "/proc",
             "--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
             "--die-with-parent", "--new-session", "--clearenv", "--chdir", SCRATCH]
    base_env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "HOME": SCRATCH, "PYTHONPATH": package_parent,
                "JUPYTER_RUNTIME_DIR": f"{SCRATCH}/.runtime", "IPYTHONDIR": f"{SCRATCH}/.ipython",
                "MPLCONFIGDIR": f"{SCRATCH}/.matplotlib", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
                "HF_HOME": str(Path.home() / ".cache" / "huggingface"), "PYTHONDONTWRITEBYTECODE": "1",
                "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2"), "LANG": "C.UTF-8", "LORAKIT_SANDBOXED": "1"}
    for key, value in {**base_env, **env}.items():
        args += ["--setenv", key, value]
    if os.geteuid() == 0:
        args += ["--", shutil.which("setpriv") or "/usr/bin/setpriv", f"--reuid={uid}", f"--regid={uid}",
                 "--clear-groups", "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs"]
    else:
        args += ["--unshare-user", "--cap-drop", "ALL", "--"]
    return args + argv


def prepare_scratch(scratch: Path, uid: int = NOBODY) -> None:
    """Make `scratch` writable by the sandbox's uid (`uid` when grading as root)."""
    if os.geteuid() == 0:
        for path in [scratch, *scratch.rglob("*")]:
            os.chown(path, uid, uid, follow_symlinks=False)


def needs() -> str:
    """The one-sentence requirement, for error messages."""
    return ("grading runs student code in a bubblewrap sandbox: install it (Debian/Ubuntu: apt-get install "
            "bubblewrap) and allow unprivileged user namespaces or grade as root; or pass sandbox='warn' "
            "(CLI --unsafe-no-sandbox) to run student code unsandboxed at your own risk")


def check(scratch_root: Path) -> None:
    """Raise SandboxUnavailable (saying what is needed) unless a trivial command runs in the sandbox here."""
    probe = scratch_root / "sandbox-probe"
    probe.mkdir(parents=True, exist_ok=True)
    prepare_scratch(probe)
    try:
        done = subprocess.run(command(probe, [sys.executable, "-c", "print('sandbox ok')"], {}),
                              capture_output=True, text=True, timeout=60, preexec_fn=Limits().apply)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise SandboxUnavailable(f"{needs()} ({type(err).__name__}: {err})") from None
    if done.returncode != 0 or "sandbox ok" not in done.stdout:
        raise SandboxUnavailable(f"{needs()} (bwrap said: {done.stderr.strip()[-300:] or done.returncode})")
