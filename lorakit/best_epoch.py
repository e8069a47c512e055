"""Which per-epoch checkpoint a run kept with `load_best_model_at_end`, read from the Trainer's own state, and an
eval loss measured again outside the Trainer, to check what was kept (chapter 3)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

from .runner import last_checkpoint


def kept_checkpoint(output_dir: str | Path) -> Path:
    """The checkpoint the Trainer loaded at the end (its `best_model_checkpoint`), from the newest checkpoint's state."""
    newest = last_checkpoint(Path(output_dir))
    best = json.loads((newest / "trainer_state.json").read_text()).get("best_model_checkpoint") if newest else None
    if best is None:
        raise ValueError(f"output_dir {str(output_dir)!r} holds no run trained with load_best_model_at_end=True "
                         "(no checkpoint records a best_model_checkpoint)")
    return Path(best)


def same_adapter(folder_a: str | Path, folder_b: str | Path) -> bool:
    """Whether two folders hold the same adapter weights, tensor for tensor."""
    a, b = (load_file(Path(f) / "adapter_model.safetensors") for f in (folder_a, folder_b))
    return a.keys() == b.keys() and all(torch.equal(a[name], b[name]) for name in a)


def eval_loss(model: Any, data: Any, batch_size: int = 16) -> float:
    """The model's own loss on `data.eval` (a tokenised lorakit TaskData), averaged over rows as the Trainer does
    (each batch's loss weighted by its rows)."""
    total, rows = 0.0, 0
    model.eval()
    with torch.no_grad():
        for batch in data.eval_batches(batch_size, model.device):
            total += model(**batch).loss.item() * len(batch["input_ids"])
            rows += len(batch["input_ids"])
    return total / rows
