"""Memory estimate vs measurement over a grid of training set-ups (chapter 4).

GPU (the real check):  python benchmarks/memory_grid.py [--max-shape 7b] [--time]
    For each randomly initialised Llama shape up to --max-shape, each precision × 4-bit/none × gradient checkpointing
    × optimizer × sequence length: two LoRA training steps on the GPU, peak = torch.cuda.max_memory_allocated()
    (the CUDA context and cuBLAS workspaces are not in it, nor in the estimate). Prints estimate, measured, % error
    and the worst error. Goal: within 10 %. Paged 8-bit optimizer states live in CUDA unified memory, which
    max_memory_allocated does not see, so for paged optimizers the estimate's optimizer_states are left out of the
    comparison (and the row says so). 4-bit bases are built by saving the random model and reloading it with
    BitsAndBytesConfig(nf4, double quant) from a temporary folder (no hub access); prepare_model_for_kbit_training
    is not applied (it up-casts norms/embeddings to fp32, which the estimate does not model).
CPU (what this repository's tests can run):  python benchmarks/memory_grid.py --cpu-smoke
    A small shape, fp32/bf16 × GC × optimizer: CPU has no peak-allocation counter, so "measured" is an exact
    accounting of live storage: parameters + gradients + optimizer states after a step + the bytes autograd saves for
    backward (lorakit.memory.estimator.saved_activation_bytes). It is compared with the estimate minus its transient
    `overhead` term. It checks the formulas, not the allocator.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from lorakit.memory.estimator import estimate, optimizer_state_bytes, saved_activation_bytes  # noqa: E402
from lorakit.models.hardware import DTYPES  # noqa: E402
from lorakit.models.shapes import LLAMA2_7B, ModelShape  # noqa: E402

SHAPES = {
    "tiny": ModelShape(1024, 256, 704, 4, 4, 2, name="tiny"),
    "160m": ModelShape(32000, 768, 2048, 12, 12, 4, name="160m"),
    "1b": ModelShape(32000, 2048, 5632, 16, 16, 16, name="1b"),
    "7b": LLAMA2_7B,
}


def _model(shape: ModelShape, precision: str, quantization: str | None, device: str, cache: dict):
    from transformers import BitsAndBytesConfig, LlamaForCausalLM

    dtype = DTYPES[precision]
    if quantization is None:
        torch.manual_seed(0)
        with torch.device(device):
            return LlamaForCausalLM(shape.llama_config()).to(dtype)
    if shape.name not in cache:  # save a random model once per shape, reload it quantized
        folder = tempfile.mkdtemp(prefix=f"memgrid-{shape.name}-")
        with torch.device(device):
            LlamaForCausalLM(shape.llama_config()).to(torch.bfloat16).save_pretrained(folder)
        torch.cuda.empty_cache() if device == "cuda" else None
        cache[shape.name] = folder
    bnb = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                             bnb_4bit_compute_dtype=dtype)
    return LlamaForCausalLM.from_pretrained(cache[shape.name], quantization_config=bnb, dtype=dtype,
                                            device_map=device)


def _optimizer(name: str, params):
    if name == "adamw":
        return torch.optim.AdamW(params, lr=1e-4)
    if name == "sgd":
        return torch.optim.SGD(params, lr=1e-4)
    import bitsandbytes as bnb

    return {"adamw_8bit": bnb.optim.AdamW8bit, "paged_adamw_8bit": bnb.optim.PagedAdamW8bit}[name](params, lr=1e-4)


def _lora(model, gc: bool, r: int):
    from peft import LoraConfig, get_peft_model

    if gc:
        model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    model = get_peft_model(model, LoraConfig(r=r, target_modules="all-linear", lora_dropout=0.0))
    model.train()
    return model


def run_one(shape, precision, quantization, gc, optimizer, seq, batch, r, device, cache, timed=False):
    est = estimate(shape, precision=precision, quantization=quantization, optimizer=optimizer,
                   gradient_checkpointing=gc, batch=batch, seq_len=seq, r=r, targets="all-linear")
    model = _lora(_model(shape, precision, quantization, device, cache), gc, r)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = _optimizer(optimizer, params)
    ids = torch.randint(0, shape.vocab_size, (batch, seq), device=device)
    seconds = None
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        for step in range(3):
            start = time.perf_counter()
            model(input_ids=ids, labels=ids).loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            torch.cuda.synchronize()
            seconds = time.perf_counter() - start
        measured = torch.cuda.max_memory_allocated()
        expected = est.total - (est.optimizer_states if optimizer.startswith("paged") else 0)
    else:  # exact storage accounting (no peak counter on CPU): weights + grads + states + saved activations
        model(input_ids=ids, labels=ids).loss.backward()
        opt.step()
        weights = {}
        for p in model.parameters():
            weights.setdefault(p.untyped_storage().data_ptr(), p.untyped_storage().nbytes())
            qs = getattr(p, "quant_state", None)
            if qs is not None:
                weights[id(qs)] = qs.absmax.nbytes + (qs.state2.absmax.nbytes if qs.nested else 0)
        grads = sum(p.grad.nbytes for p in params if p.grad is not None)
        measured = sum(weights.values()) + grads + optimizer_state_bytes(opt) + saved_activation_bytes(model, ids)
        expected = est.total - est.overhead
    del model, opt
    if device == "cuda":
        torch.cuda.empty_cache()
    return expected, measured, (seconds if timed else None)


def main(argv=None) -> float:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max-shape", choices=list(SHAPES), default="7b")
    parser.add_argument("--cpu-smoke", action="store_true", help="small CPU subset (storage accounting)")
    parser.add_argument("--seq", type=int, nargs="+", default=[512, 2048])
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--r", type=int, default=16)
    parser.add_argument("--time", action="store_true", help="also print the step time (GPU)")
    args = parser.parse_args(argv)
    cache: dict = {}
    if args.cpu_smoke:
        device, shapes = "cpu", [SHAPES["tiny"]]
        torch.set_num_threads(1)  # tiny tensors: threads only add contention on a shared CPU
        grid = itertools.product(shapes, ["fp32", "bf16"], [None], [False, True], ["adamw", "adamw_8bit"], [64])
        batch = 2
    else:
        if not torch.cuda.is_available():
            parser.error("no CUDA GPU here: run with --cpu-smoke, or on a GPU machine")
        device = "cuda"
        names = list(SHAPES)[: list(SHAPES).index(args.max_shape) + 1]
        shapes = [SHAPES[n] for n in names]
        grid = itertools.product(shapes, ["bf16", "fp32"], [None, "nf4"], [False, True],
                                 ["adamw", "paged_adamw_8bit"], args.seq)
        batch = args.batch
    worst = 0.0
    print(f"{'shape':6s} {'prec':4s} {'quant':5s} {'GC':3s} {'optimizer':16s} {'seq':>5s} "
          f"{'estimate':>10s} {'measured':>10s} {'error':>7s}" + ("  step s" if args.time else ""))
    for shape, precision, quant, gc, optimizer, seq in grid:
        if device == "cuda" and quant and precision == "fp32":
            continue  # QLoRA computes in 16 bit
        try:
            expected, measured, seconds = run_one(shape, precision, quant, gc, optimizer, seq, batch, args.r, device,
                                                  cache, args.time)
        except torch.cuda.OutOfMemoryError:
            print(f"{shape.name:6s} {precision:4s} {str(quant):5s} {'on' if gc else 'off':3s} {optimizer:16s} {seq:5d}"
                  "  out of memory")
            torch.cuda.empty_cache()
            continue
        error = 100 * (expected - measured) / measured
        worst = max(worst, abs(error))
        print(f"{shape.name:6s} {precision:4s} {str(quant):5s} {'on' if gc else 'off':3s} {optimizer:16s} {seq:5d} "
              f"{expected / 2**30:9.3f}G {measured / 2**30:9.3f}G {error:+6.1f}%"
              + (f"  {seconds:.3f}" if seconds is not None else ""))
    print(f"worst |error|: {worst:.1f}% (goal: within 10%)")
    return worst


if __name__ == "__main__":
    main()
