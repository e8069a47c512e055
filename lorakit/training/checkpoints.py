"""A run's checkpoints: the newest complete one and the point a run resumes from, an earlier run's checkpoints
cleared when a fresh run reuses its folder, which per-epoch checkpoint a run kept with `load_best_model_at_end` (read
from the Trainer's own state; chapter 3), and whether two adapters are the same."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file

from ..compat.notes import announce


def numbered_checkpoints(output_dir: str | Path) -> list[Path]:
    """The `checkpoint-N` entries of `output_dir` (N a step number), in step order; complete or not."""
    numbered = [p for p in Path(output_dir).glob("checkpoint-*") if p.name.rsplit("-", 1)[-1].isdigit()]
    return sorted(numbered, key=lambda p: int(p.name.rsplit("-", 1)[-1]))


def last_checkpoint(output_dir: Path) -> Path | None:
    """The newest complete `checkpoint-N` folder in `output_dir`: one whose trainer_state.json, which the Trainer
    writes last, reads back. (transformers' `get_last_checkpoint` takes the newest folder even when a run killed
    while saving left it incomplete; this skips such a folder.)"""
    complete = []
    for path in numbered_checkpoints(output_dir):
        try:
            json.loads((path / "trainer_state.json").read_text())
        except (OSError, ValueError):
            continue
        complete.append(path)
    return complete[-1] if complete else None


def resume_point(resume_from_checkpoint: bool | str | os.PathLike | None, output_dir: Path,
                 required: bool = True) -> str | None:
    """The checkpoint folder to resume from (announced), None to start afresh.

    True means the newest complete checkpoint in `output_dir`: a ValueError when there is none and `required`
    (a later stage of a multi-stage run that had not started yet simply starts).
    """
    if resume_from_checkpoint is None or resume_from_checkpoint is False:
        return None
    if resume_from_checkpoint is True:
        checkpoint = last_checkpoint(output_dir)
        if checkpoint is None and not required:
            return None
        if checkpoint is None:
            raise ValueError(f"resume_from_checkpoint=True but output_dir {str(output_dir)!r} holds no complete "
                             "checkpoint-N folder (save_strategy 'epoch' or 'steps' writes them): train without "
                             "resuming first")
    else:
        checkpoint = Path(resume_from_checkpoint)
        if not (checkpoint / "trainer_state.json").is_file():
            raise ValueError(f"resume_from_checkpoint {str(checkpoint)!r} is not a checkpoint folder "
                             "(it has no trainer_state.json)")
    state = json.loads((checkpoint / "trainer_state.json").read_text())
    announce(f"resuming from {checkpoint} (epoch {state.get('epoch', 0):g}, step {state.get('global_step', 0)})")
    return str(checkpoint)


def clear_earlier_checkpoints(output_dir: Path) -> list[str]:
    """Remove the `checkpoint-N` folders an earlier run left in `output_dir` (announced) and return their names.

    A fresh run that reuses a folder (a learner running a cell again with other settings) would otherwise mix its
    checkpoints with the old ones: the newest checkpoint, the best epoch and a later resume would be the old run's.
    """
    earlier = numbered_checkpoints(output_dir)
    for path in earlier:
        if path.is_symlink() or not path.is_dir():
            path.unlink()
        else:
            shutil.rmtree(path)
    if earlier:
        announce(f"{output_dir} held {len(earlier)} checkpoint folder(s) of an earlier run ({earlier[0].name} … "
                 f"{earlier[-1].name}): removed, so this run's checkpoints are its own (resume_from_checkpoint=True "
                 "continues an earlier run instead)")
    return [path.name for path in earlier]


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

