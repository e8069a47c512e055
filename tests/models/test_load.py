import json
import math
import os
from unittest import mock

os.environ["HF_HUB_OFFLINE"] = "1"  # before transformers / huggingface_hub read it (conftest sets it too)

import pytest  # noqa: E402
import torch  # noqa: E402

from lorakit.data.corpus import pretraining_texts  # noqa: E402
from lorakit.models import load as base  # noqa: E402
from lorakit.models.load import TINY_DIR, load_base, load_tokenizer  # noqa: E402


def test_shipped_files_are_small_and_described():
    weights = TINY_DIR / "model.safetensors"
    assert weights.stat().st_size < 10 * 2**20
    info = json.loads((TINY_DIR / "build_info.json").read_text())
    assert 2e6 < info["params"] < 8e6


def test_loads_offline_in_fp32_on_cpu(tiny_base):
    model, tokenizer = tiny_base
    assert model.dtype == torch.float32 and model.device.type == "cpu"
    assert model.config.num_key_value_heads < model.config.num_attention_heads  # GQA: k/v smaller than q
    assert tokenizer.pad_token_id != tokenizer.eos_token_id


def test_chat_template_format():
    tokenizer = load_tokenizer("tiny")
    text = tokenizer.apply_chat_template([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}],
                                         tokenize=False)
    assert text == "<|user|>\nhi<|end|>\n<|assistant|>\nyo<|end|>\n"
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False,
                                           add_generation_prompt=True)
    assert prompt == "<|user|>\nhi<|end|>\n<|assistant|>\n"
    messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]
    system = tokenizer.apply_chat_template(messages, tokenize=False)
    assert system == "<|system|>\nbe brief<|end|>\n<|user|>\nhi<|end|>\n"
    ids = tokenizer("<|user|>\nhi<|end|>\n<|assistant|>\n", add_special_tokens=False)["input_ids"]
    for token in ("<|user|>", "<|end|>", "<|assistant|>"):  # special tokens are single ids, never split
        assert tokenizer.convert_tokens_to_ids(token) in ids


def test_special_tokens_and_generation_config(tiny_base):
    model, tokenizer = tiny_base
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in ("<|endoftext|>", "<|pad|>", "<|user|>", "<|assistant|>",
                                                           "<|end|>")}
    assert len(set(ids.values())) == 5 and len(tokenizer) == model.config.vocab_size
    assert tokenizer.pad_token == "<|pad|>" and tokenizer.eos_token == "<|end|>"
    assert model.config.pad_token_id == ids["<|pad|>"] and model.config.tie_word_embeddings
    gen = model.generation_config
    assert set(gen.eos_token_id) == {ids["<|end|>"], ids["<|endoftext|>"]} and gen.pad_token_id == ids["<|pad|>"]


@torch.no_grad()
def _heldout_perplexity(model, tokenizer, n_docs=4, seq=256):
    losses = []
    for text in pretraining_texts("heldout")[:n_docs]:
        ids = tokenizer(text, return_tensors="pt")["input_ids"][:, :seq]
        losses.append(model(input_ids=ids, labels=ids).loss.item())
    return math.exp(sum(losses) / len(losses))


def test_pretrained_far_below_random_init(tiny_base):
    from transformers import AutoModelForCausalLM

    model, tokenizer = tiny_base
    torch.manual_seed(0)
    random_model = AutoModelForCausalLM.from_config(model.config)
    trained, random_ppl = _heldout_perplexity(model, tokenizer), _heldout_perplexity(random_model, tokenizer)
    assert trained < random_ppl / 5, (trained, random_ppl)


def test_nf4_load_uses_bitsandbytes_4bit_layers():
    import bitsandbytes as bnb

    model, tokenizer = load_base("tiny", quantization="nf4")
    assert isinstance(model.model.layers[0].self_attn.q_proj, bnb.nn.Linear4bit)
    assert model.model.layers[0].self_attn.q_proj.weight.quant_state.nested  # double quantisation
    logits = model(**tokenizer("def f(x):", return_tensors="pt")).logits
    assert torch.isfinite(logits).all()


def test_int8_load_uses_bitsandbytes_8bit_layers():
    import bitsandbytes as bnb

    model, tokenizer = load_base("tiny", quantization="int8")
    assert isinstance(model.model.layers[0].mlp.down_proj, bnb.nn.Linear8bitLt)
    assert torch.isfinite(model(**tokenizer("x = 1", return_tensors="pt")).logits).all()


def test_seq_cls_head():
    model, tokenizer = load_base("tiny", task="seq_cls", num_labels=3)
    out = model(**tokenizer(["hello there", "set a timer"], return_tensors="pt", padding=True))
    assert out.logits.shape == (2, 3) and model.config.pad_token_id == tokenizer.pad_token_id


@pytest.mark.parametrize("kwargs,fragment", [
    ({"quantization": "nf3"}, "quantization must be one of"),
    ({"task": "seq2seq"}, "task must be one of"),
    ({"task": "seq_cls"}, "num_labels must be an integer"),
    ({"device": "tpu"}, "device must be"),
    ({"dtype": "fp8"}, "dtype must be one of"),
    ({"dtype": torch.int8}, "dtype must be one of"),
    ({"name": ""}, "name must be one of \\['tiny'"),
    ({"head_seed": -1}, "head_seed must be None or an integer ≥ 0"),
    ({"head_seed": "0"}, "head_seed must be None or an integer ≥ 0"),
])
def test_bad_arguments_name_the_field(kwargs, fragment):
    with pytest.raises(ValueError, match=fragment):
        load_base(**kwargs)


def test_unknown_hub_id_offline_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for name in ("no-such-org/no-such-model", "/no/such/folder"):
        with pytest.raises(OSError, match="Offline, only name='tiny'"):
            load_base(name)


@pytest.mark.parametrize("failure,fragment", [
    (ConnectionError("[Errno -2] Name or service not known"), "ConnectionError"),
    ("missing", "RepositoryNotFoundError"),
])
def test_unreachable_hub_fails_fast_without_offline_flag(monkeypatch, failure, fragment):
    """No HF_HUB_OFFLINE and no network: one metadata request decides, instead of ~50 s of download retries."""
    from huggingface_hub import constants
    from huggingface_hub.errors import RepositoryNotFoundError

    if failure == "missing":
        failure = RepositoryNotFoundError("404 Repository Not Found", response=mock.Mock(headers={}))
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(base, "_hub_model_info", mock.Mock(side_effect=failure))
    with pytest.raises(OSError, match="Offline, only name='tiny'") as info:
        load_base("no-such-org/no-such-model")
    assert fragment in str(info.value)
    base._hub_model_info.assert_called_once()



def _head(**kwargs):
    return load_base("tiny", task="seq_cls", num_labels=3, **kwargs)[0].score.weight.detach().clone()


def test_a_new_classification_head_is_drawn_from_its_own_seed_whatever_ran_before():
    torch.manual_seed(1)
    first = _head()
    torch.rand(1000)  # the global random state moves on
    assert torch.equal(first, _head()) and first.abs().sum() > 0
    assert not torch.equal(first, _head(head_seed=1))
    after = torch.rand(1)
    torch.manual_seed(1)
    torch.rand(1000)
    assert torch.equal(after, torch.rand(1))  # loading left the caller's random state where it was


def test_head_seed_none_draws_the_head_from_the_global_random_state():
    torch.manual_seed(7)
    first = _head(head_seed=None)
    torch.manual_seed(7)
    assert torch.equal(first, _head(head_seed=None)) and not torch.equal(first, _head(head_seed=None))
