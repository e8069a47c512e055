import json
import math

import pytest
import torch

from lorakit.base import TINY_DIR, load_base, load_tokenizer
from lorakit.corpus import CODE_HOLDOUT_MODULES, pretraining_texts, stdlib_functions


@pytest.fixture(scope="module")
def tiny():
    return load_base("tiny")


def test_shipped_files_are_small_and_described():
    weights = TINY_DIR / "model.safetensors"
    assert weights.stat().st_size < 10 * 2**20
    info = json.loads((TINY_DIR / "build_info.json").read_text())
    assert 2e6 < info["params"] < 8e6


def test_loads_offline_in_fp32_on_cpu(tiny):
    model, tokenizer = tiny
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
    assert prompt.endswith("<|assistant|>\n")


@torch.no_grad()
def _heldout_perplexity(model, tokenizer, n_docs=4, seq=256):
    losses = []
    for text in pretraining_texts("heldout")[:n_docs]:
        ids = tokenizer(text, return_tensors="pt")["input_ids"][:, :seq]
        losses.append(model(input_ids=ids, labels=ids).loss.item())
    return math.exp(sum(losses) / len(losses))


def test_pretrained_far_below_random_init(tiny):
    from transformers import AutoModelForCausalLM

    model, tokenizer = tiny
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


def test_seq_cls_head():
    model, tokenizer = load_base("tiny", task="seq_cls", num_labels=3)
    out = model(**tokenizer(["hello there", "set a timer"], return_tensors="pt", padding=True))
    assert out.logits.shape == (2, 3)


@pytest.mark.parametrize("kwargs,fragment", [
    ({"quantization": "nf3"}, "quantization must be one of"),
    ({"task": "seq2seq"}, "task must be one of"),
    ({"task": "seq_cls"}, "num_labels must be an integer"),
    ({"device": "tpu"}, "device must be"),
    ({"dtype": "fp8"}, "dtype must be one of"),
    ({"name": ""}, "name must be 'tiny'"),
])
def test_bad_arguments_name_the_field(kwargs, fragment):
    with pytest.raises(ValueError, match=fragment):
        load_base(**kwargs)


def test_unknown_hub_id_offline_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(OSError, match="Offline, only name='tiny'"):
        load_base("no-such-org/no-such-model")


def test_corpus_splits_and_code_holdout():
    train, heldout = pretraining_texts("train"), pretraining_texts("heldout")
    assert train and heldout and not set(train) & set(heldout)
    functions = stdlib_functions()
    assert len(functions) > 50 and {f["module"] for f in functions} <= set(CODE_HOLDOUT_MODULES)
    assert all(f["signature"].startswith("def ") and f["body"].strip() for f in functions)
    with pytest.raises(ValueError, match="split must be one of"):
        pretraining_texts("test")
