"""EleutherAI's lm-evaluation-harness on the small offline tasks lorakit ships (chapter 7).

`run_lm_eval` is the guide's `lm_eval.simple_evaluate(model="hf", ...)` on a local model folder, with or without a
saved adapter, on the tasks in `TASKS_DIR` (`lorakit_capitals_mc`, `lorakit_capitals_gen`, `lorakit_instruction_mc`);
`knowledge_texts` are the facts those tasks ask about. Needs the `eval` extra (`lm-eval`).

Online, the same call scores a hub model on standard benchmarks (downloads the tasks):
`lm_eval --model hf --model_args pretrained=meta-llama/Llama-3.2-1B,peft=runs/instruction/adapter --tasks hellaswag`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..memory.peak import release_memory

TASKS_DIR = Path(__file__).resolve().parents[1] / "assets" / "lm_eval_tasks"
LM_EVAL_TASKS = {"lorakit_capitals_mc": "acc", "lorakit_capitals_gen": "exact_match", "lorakit_instruction_mc": "acc"}


def knowledge_texts() -> list[str]:
    """The capitals task's facts as sentences ("The capital of France is Paris."): text whose perplexity shows
    whether a fine-tune damaged what a pretrained model knew."""
    import json

    rows = [json.loads(line) for line in (TASKS_DIR / "capitals.jsonl").read_text(encoding="utf-8").splitlines()]
    return [f"The capital of {r['country']} is {r['capital']}." for r in rows]


def run_lm_eval(model_dir: str | Path, tasks: Sequence[str], peft: str | Path | None = None, limit: int | None = None,
                batch_size: int = 16, chat: bool = False) -> dict[str, float]:
    """Score `tasks` (names in LM_EVAL_TASKS) with lm-evaluation-harness on the model saved in `model_dir` (fp32,
    CPU), with the adapter saved in `peft` when given; `chat=True` wraps each prompt in the model's chat template.
    Returns each task's score: accuracy for multiple choice, exact match for generation. Offline."""
    unknown = [t for t in tasks if t not in LM_EVAL_TASKS]
    if not tasks or unknown:
        raise ValueError(f"tasks must be a non-empty list of {list(LM_EVAL_TASKS)}, got {list(tasks)!r}")
    if not (Path(model_dir) / "config.json").is_file():
        raise ValueError(f"model_dir must be a saved model folder with a config.json, got {str(model_dir)!r}")
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
        raise ValueError(f"limit must be None or a positive integer (questions per task), got {limit!r}")
    import lm_eval
    from lm_eval.tasks import TaskManager

    from ..compat.silence import harness_output_kept_back, no_loading_bars

    model_args = {"pretrained": str(model_dir), "dtype": "float32", "device": "cpu"}
    if peft is not None:
        model_args["peft"] = str(peft)
    with no_loading_bars(), harness_output_kept_back():
        results = lm_eval.simple_evaluate(model="hf", model_args=model_args, tasks=list(tasks), limit=limit,
                                          batch_size=batch_size, apply_chat_template=chat, log_samples=False,
                                          task_manager=TaskManager(include_path=str(TASKS_DIR)), verbosity="ERROR",
                                          bootstrap_iters=0)
    release_memory()  # the harness's copy of the model is garbage now
    return {t: float(results["results"][t][f"{LM_EVAL_TASKS[t]},none"]) for t in tasks}
