"""Training-memory estimator (chapter 4): where the bytes go when you fine-tune, from the model's shape alone.

Components, in bytes:
- base_weights: frozen weights. Plain: params × dtype bytes. NF4: 0.5 byte per linear weight plus its block
  constants (one absmax per 64 weights: fp32 = 4 bytes, or with double quantisation 1 byte plus one fp32 per 256
  absmax); embeddings, norms and lm_head stay in the compute dtype (transformers never quantizes them). int8: 1 byte
  per linear weight plus an fp32 scale per output row.
  With `kbit_prepared` (peft's `prepare_model_for_kbit_training`, which `lorakit.train` applies to every quantized
  base) those unquantized weights are up-cast to fp32: 4 bytes each instead of the compute dtype's 2.
- adapters: LoRA parameters in fp32 (peft up-casts adapter weights of bf16/fp16 models to fp32 by default).
- gradients: one per trainable parameter, in the trainable parameters' dtype.
- optimizer_states: AdamW 8 bytes per trainable parameter (two fp32 moments); 8-bit AdamW (paged or not) 2 bytes
  plus one fp32 absmax per 256 values per moment, but bitsandbytes keeps tensors under 4,096 values in 32 bit;
  SGD without momentum none. Full fine-tuning in fp16/bf16 with AdamW or SGD is mixed precision: the optimizer
  also keeps an fp32 master copy (4 bytes/param), so AdamW costs 2 + 2 + 4 + 8 = 16 bytes/param in all (the ZeRO
  paper's accounting; HF Trainer's fp16 AMP on an fp32-loaded model, 4 + 4 + 8, is the same total). 8-bit
  optimizers update the 16-bit weights in place: no master copy. Paged 8-bit states live in CUDA unified memory,
  which `torch.cuda.max_memory_allocated` does not see (they are counted here all the same).
- activations: tensors autograd saves for backward, per token per layer, counted from a Llama block with frozen
  base weights (see `_layer_activation_bytes`); with gradient checkpointing only each layer's input is kept, plus
  one layer's activations while it is recomputed. After `kbit_prepared` the fp32 embeddings make the residual stream
  fp32, so the kept block inputs take 4 bytes per value (the other activation terms are not adjusted).
- logits: batch × seq × vocab, upcast to fp32 for the loss.
- overhead: transient buffers: the largest dequantized weight (4-bit/8-bit bases dequantize one layer at a time
  for compute), with gradient checkpointing the activations of the one block being recomputed, and the start of
  the backward pass through the loss, which holds two more fp32 batch × seq × vocab buffers (the gradient of the
  log-softmax output and of its input) next to the saved log-softmax output. Not included: the CUDA context and
  cuBLAS workspaces (~0.3–1 GB that nvidia-smi shows but `max_memory_allocated` does not) and allocator
  fragmentation.
The activation terms were checked against autograd's saved tensors on CPU (tests/memory/test_estimator.py);
`benchmarks/memory_grid.py` compares the total with `torch.cuda.max_memory_allocated` on a GPU.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from ..config.choices import (
    DTYPE_NAMES,
    QUANTIZATIONS,
    STATE_OPTIMIZERS,
    check_bool,
    check_choice,
    check_range,
    resolve_targets,
)
from ..models.shapes import ModelShape, count_base_params, count_lora_params

PRECISION_BYTES = dict(zip(DTYPE_NAMES, (2, 2, 4)))
FP32 = 4
NF4_BLOCK, NF4_NESTED_BLOCK, OPT_8BIT_BLOCK, OPT_8BIT_MIN_SIZE = 64, 256, 256, 4096


@dataclass(frozen=True)
class MemoryBreakdown:
    """Bytes per component of a training step's peak memory."""

    base_weights: int
    adapters: int
    gradients: int
    optimizer_states: int
    activations: int
    logits: int
    overhead: int

    @property
    def total(self) -> int:
        return sum(getattr(self, f.name) for f in fields(self))

    def gib(self) -> dict[str, float]:
        """Each component and the total in GiB (2^30 bytes)."""
        out = {f.name: getattr(self, f.name) / 2**30 for f in fields(self)}
        out["total"] = self.total / 2**30
        return out

    def table(self) -> str:
        """A two-column text table in GiB."""
        return "\n".join(f"{name:17s} {value:9.3f} GiB" for name, value in self.gib().items())


def _lora_tensor_sizes(shape: ModelShape, r: int, targets: list[str]) -> list[int]:
    """Element counts of every LoRA tensor (A: r×in, B: out×r) in the model."""
    dims = shape.linear_shapes()
    return [size for name in targets for size in (r * dims[name][0], dims[name][1] * r)] * shape.num_layers


def _optimizer_bytes(optimizer: str, tensor_sizes: list[int]) -> int:
    if optimizer == "sgd":
        return 0
    if optimizer == "adamw":
        return 2 * FP32 * sum(tensor_sizes)
    total = 0
    for n in tensor_sizes:  # bitsandbytes: small tensors keep 32-bit states
        total += 2 * (n + FP32 * -(-n // OPT_8BIT_BLOCK)) if n >= OPT_8BIT_MIN_SIZE else 2 * FP32 * n
    return total


def _layer_activation_bytes(shape: ModelShape, targets: list[str], r: int, b: int, full_finetune: bool,
                            first_layer: bool) -> int:
    """Bytes autograd saves per token in one decoder block (frozen base + LoRA on `targets`, or full fine-tuning).

    Counted tensor by tensor from a transformers Llama block with SDPA attention (checked against
    `saved_activation_bytes` on CPU: exact for full fine-tuning and LoRA on q,v; within ~1 % for all-linear):
    - each RMSNorm: its input in fp32 (4h; the up-cast copy for 16-bit models, the block's input itself in fp32)
      and 1/rms (4); with trainable norm weights also the normalised value (b·h);
    - SDPA: q, k, v (kv heads only: GQA is native), the output (b·(2q + 2kv)) and the fp32 logsumexp (4 per head);
      o_proj's input is the output's storage laid out again (no copy);
    - SwiGLU: gate output, silu(gate), up output (3·b·i);
    - full fine-tuning: each linear's input (n1 and n2: b·h each, down_proj's input b·i);
    - LoRA (adapters in fp32): each adapted module's input cast to fp32 (4·in per module; in fp32 models the cast is
      a no-op, so modules that share an input share it) and A·x (4·r per module). Frozen base linears save nothing.
    - not modelled: lora_dropout > 0 adds, per adapted module, the dropout output (4·in) and its mask (1·in on
      CUDA, 4·in on CPU) instead of the cast input.
    """
    h, i = shape.hidden_size, shape.intermediate_size
    kv = shape.num_key_value_heads * shape.dim_per_head
    q = shape.num_attention_heads * shape.dim_per_head
    norm = (h + 1) * FP32
    total = norm if first_layer and not full_finetune else 2 * norm  # block 0's input comes from frozen embeddings
    total += (2 * q + 2 * kv) * b + shape.num_attention_heads * FP32
    total += 3 * i * b
    if full_finetune:
        return total + 4 * h * b + i * b
    dims = shape.linear_shapes()
    if b == FP32:  # no cast: one saved input per distinct input tensor (o_proj's is SDPA's output, counted above)
        groups = {"n1": ("q_proj", "k_proj", "v_proj"), "n2": ("gate_proj", "up_proj"), "mlp": ("down_proj",)}
        inputs = sum(dims[g[0]][0] for g in groups.values() if set(g) & set(targets))
    else:
        inputs = sum(dims[name][0] for name in targets)
    return total + FP32 * (inputs + r * len(targets))


def estimate(
    shape: ModelShape,
    precision: str = "bf16",
    quantization: str | None = None,
    double_quant: bool = True,
    optimizer: str = "paged_adamw_8bit",
    gradient_checkpointing: bool = False,
    batch: int = 1,
    seq_len: int = 512,
    r: int = 16,
    targets: str | list[str] = "all-linear",
    full_finetune: bool = False,
    kbit_prepared: bool = False,
) -> MemoryBreakdown:
    """Estimate training memory for `shape` (see the module docstring for each component's formula).

    kbit_prepared: the quantized base went through peft's `prepare_model_for_kbit_training` (as in `lorakit.train`),
    which up-casts embeddings, norms and lm_head to fp32; only with `quantization`.
    """
    if not isinstance(shape, ModelShape):
        raise ValueError(f"shape must be a lorakit.ModelShape (e.g. lorakit.LLAMA2_7B), got {shape!r}")
    for name, flag in (("double_quant", double_quant), ("gradient_checkpointing", gradient_checkpointing),
                       ("full_finetune", full_finetune), ("kbit_prepared", kbit_prepared)):
        check_bool(name, flag)
    check_choice("precision", precision, DTYPE_NAMES)
    check_choice("quantization", quantization, QUANTIZATIONS)
    check_choice("optimizer", optimizer, STATE_OPTIMIZERS)
    check_range("batch", batch, 1, 10**6, int)
    check_range("seq_len", seq_len, 1, 10**7, int)
    if full_finetune and quantization:
        raise ValueError("full_finetune=True cannot train quantized weights: set quantization=None")
    if kbit_prepared and not quantization:
        raise ValueError("kbit_prepared=True describes a quantized base: set quantization='nf4' or 'int8', or "
                         "kbit_prepared=False")
    b = PRECISION_BYTES[precision]
    names = resolve_targets(targets, "targets")
    tokens = batch * seq_len
    total_params = count_base_params(shape)
    linear_params = shape.num_layers * sum(i * o for i, o in shape.linear_shapes().values())
    other_params = total_params - linear_params
    other_bytes = other_params * (FP32 if kbit_prepared else b)  # embeddings, norms, lm_head: never quantized

    if quantization == "nf4":
        blocks = -(-linear_params // NF4_BLOCK)
        constants = blocks + FP32 * -(-blocks // NF4_NESTED_BLOCK) if double_quant else FP32 * blocks
        base = linear_params // 2 + constants + other_bytes
    elif quantization == "int8":
        rows = shape.num_layers * sum(o for _, o in shape.linear_shapes().values())
        base = linear_params + FP32 * rows + other_bytes
    else:
        base = total_params * b

    if full_finetune:
        adapters, trainable_sizes = 0, [total_params]
        gradients = total_params * b
    else:
        check_range("r", r, 1, 10**5, int)
        trainable_sizes = _lora_tensor_sizes(shape, r, names)
        adapters = FP32 * count_lora_params(shape, r, names)
        gradients = adapters
    optimizer_states = _optimizer_bytes(optimizer, trainable_sizes)
    if full_finetune and b < FP32 and optimizer in ("adamw", "sgd"):
        optimizer_states += FP32 * total_params  # mixed precision: fp32 master weights

    per_layer = [_layer_activation_bytes(shape, names, r, b, full_finetune, layer == 0)
                 for layer in range(shape.num_layers)]
    if gradient_checkpointing:  # only block inputs are kept; one block is recomputed at a time (overhead)
        activations = tokens * shape.num_layers * shape.hidden_size * (FP32 if kbit_prepared else b)
    else:
        activations = tokens * sum(per_layer)
    activations += tokens * ((shape.hidden_size + 1) * FP32 + 2 * shape.dim_per_head * b)  # final norm, RoPE cos/sin
    logits = tokens * shape.vocab_size * FP32
    largest = max(i * o for i, o in shape.linear_shapes().values())
    overhead = (largest * b if quantization else 0) + (tokens * max(per_layer) if gradient_checkpointing else 0)
    overhead += 2 * logits  # loss backward: grad of the log-softmax output and of the logits, fp32
    return MemoryBreakdown(base, adapters, gradients, optimizer_states, activations, logits, overhead)


def estimate_run(result: Any, shape: ModelShape) -> MemoryBreakdown:
    """The estimate for a finished `lorakit.train` run (its TrainResult) whose base has `shape`: the recipe's settings,
    the precision the run trained in, a micro-batch of `max_length` tokens, and a quantized base k-bit prepared, as
    `lorakit.train` prepares it."""
    recipe = result.recipe
    return estimate(shape, precision=result.precision, quantization=recipe.quantization, optimizer=recipe.optim,
                    gradient_checkpointing=recipe.gradient_checkpointing, batch=recipe.per_device_train_batch_size,
                    seq_len=recipe.max_length, r=recipe.r, targets=recipe.target_modules,
                    kbit_prepared=recipe.quantization is not None)


def saved_activation_bytes(model, input_ids) -> int:
    """Measure: bytes of the tensors autograd saves for backward in one forward pass (parameters excluded)."""
    import torch

    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    seen: dict[int, int] = {}

    def pack(tensor):
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in params:
            seen.setdefault(storage.data_ptr(), storage.nbytes())
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        model(input_ids=input_ids, labels=input_ids, use_cache=False)
    return sum(seen.values())


def optimizer_state_bytes(optimizer) -> int:
    """Measure: bytes of an optimizer's state tensors (moments, quantisation maps), each storage counted once;
    one-value tensors (step counters) left out."""
    import torch

    seen: dict[int, int] = {}
    for state in optimizer.state.values():
        for value in state.values():
            if torch.is_tensor(value) and value.numel() > 1:
                seen.setdefault(value.untyped_storage().data_ptr(), value.untyped_storage().nbytes())
    return sum(seen.values())
