"""EleutherAI's lm-evaluation-harness on the small offline tasks lorakit ships (chapter 7).

`run_lm_eval` is the guide's `lm_eval.simple_evaluate(model="hf", ...)` on a local model folder, with or without a
saved adapter, on the tasks in `TASKS_DIR` (`lorakit_capitals_mc`, `lorakit_capitals_gen`, `lorakit_instruction_mc`);
`knowledge_texts` are the facts those tasks ask about; `save_language_model_adapter` saves a classifier's adapter so
that the harness can score what it did to the language model (chapter 8). Needs the `eval` extra (`lm-eval`).

Online, the same call scores a hub model on standard benchmarks (downloads the tasks):
`lm_eval --model hf --model_args pretrained=meta-llama/Llama-3.2-1B,peft=runs/instruction/adapter --tasks hellaswag`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..memory.peak import release_memory

TASKS_DIR = Path(__file__).resolve().parents[1] / "assets" / "lm_eval_tasks"
LM_EVAL_TASKS = {"lorakit_capitals_mc": "acc", "lorakit_capitals_gen": "exact_match", "lorakit_instruction_mc": "acc"}


def knowledge_texts() -> list[str]:
    """The capitals task's facts as sentences ("The capital of France is Paris."): text whose perplexity shows
    whether a fine-tune damaged what a pretrained model knew."""
    import json

    rows = [json.loads(line) for line in (TASKS_DIR / "capitals.jsonl").read_text(encoding="utf-8").splitlines()]
    return [f"The capital of {r['country']} is {r['capital']}." for r in rows]


def model_source(model: str | Path) -> str:
    """What lm-eval's `pretrained=` gets for `model`: a saved model folder (with its config.json), the converted
    folder of one of lorakit's real models, or a hub id ('owner/name') that is not a local path."""
    from ..models.packaged import REAL_MODELS, converted_dir

    if isinstance(model, str) and model in REAL_MODELS:
        return str(converted_dir(model))
    if isinstance(model, (str, Path)) and (Path(model) / "config.json").is_file():
        return str(model)
    if isinstance(model, str) and model.count("/") == 1 and not Path(model).exists():
        return model
    raise ValueError(f"model must be a saved model folder with a config.json, one of {list(REAL_MODELS)} or a hub id "
                     f"('owner/name'), got {str(model)!r}")


def run_lm_eval(model: str | Path, tasks: Sequence[str], peft: str | Path | None = None, limit: int | None = None,
                batch_size: int = 16, chat: bool = False) -> dict[str, float]:
    """Score `tasks` (names in LM_EVAL_TASKS) with lm-evaluation-harness on `model` (a saved model folder, a real
    model of lorakit's such as 'smollm2-135m', or a hub id, which lm-eval downloads online) in fp32 on the GPU when
    there is one, else the CPU, with the adapter saved in `peft` when given; `chat=True` wraps each prompt in the
    model's chat template. Returns each task's score: accuracy for multiple choice, exact match for generation."""
    unknown = [t for t in tasks if t not in LM_EVAL_TASKS]
    if not tasks or unknown:
        raise ValueError(f"tasks must be a non-empty list of {list(LM_EVAL_TASKS)}, got {list(tasks)!r}")
    source = model_source(model)
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
        raise ValueError(f"limit must be None or a positive integer (questions per task), got {limit!r}")
    import lm_eval
    import torch
    from lm_eval.tasks import TaskManager

    from ..compat.silence import harness_output_kept_back, no_loading_bars

    model_args = {"pretrained": source, "dtype": "float32", "device": "cuda" if torch.cuda.is_available() else "cpu"}
    if peft is not None:
        model_args["peft"] = str(peft)
    with no_loading_bars(), harness_output_kept_back():
        results = lm_eval.simple_evaluate(model="hf", model_args=model_args, tasks=list(tasks), limit=limit,
                                          batch_size=batch_size, apply_chat_template=chat, log_samples=False,
                                          task_manager=TaskManager(include_path=str(TASKS_DIR)), verbosity="ERROR",
                                          bootstrap_iters=0)
    release_memory()  # the harness's copy of the model is garbage now
    return {t: float(results["results"][t][f"{LM_EVAL_TASKS[t]},none"]) for t in tasks}


def save_language_model_adapter(model: Any, out_dir: str | Path) -> Path:
    """Save the LoRA weights of a sequence-classification peft model as an adapter of the causal language model with
    the same base (task CAUSAL_LM, the classification head left out), for `run_lm_eval(..., peft=out_dir)`: the
    classifier and the language model share the transformer the adapter changed, so the harness measures what the
    classifier's training did to the model's knowledge. Returns `out_dir`."""
    if not hasattr(model, "peft_config") or getattr(model, "active_adapter", None) not in model.peft_config:
        raise ValueError(f"model must be a peft model with an active LoRA adapter, got {type(model).__name__}")
    from peft import get_peft_model_state_dict
    from safetensors.torch import save_file

    config = model.peft_config[model.active_adapter]
    if config.peft_type != "LORA":
        raise ValueError(f"model's adapter must be LoRA, got {config.peft_type}")
    weights = {key: tensor.detach().cpu().contiguous() for key, tensor in get_peft_model_state_dict(model).items()
               if ".lora_" in key}
    out_dir = Path(out_dir)
    replace(config, task_type="CAUSAL_LM", modules_to_save=None).save_pretrained(out_dir)
    save_file(weights, out_dir / "adapter_model.safetensors")
    return out_dir
