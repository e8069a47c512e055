"""Training around HF Trainer, peft and TRL: `train` (`pipeline`), what every stage shares (`stage`), the DPO
stage (`dpo`), per-epoch checkpoints (`checkpoints`), LR schedules (`schedules`), the sweep engine (`sweep`) and the
log-history reader (`history`)."""

from __future__ import annotations

from ..compat import lazy_exports

EXPORTS = {
    "kept_checkpoint": "checkpoints", "last_checkpoint": "checkpoints", "same_adapter": "checkpoints",
    "dpo_stage": "dpo", "series": "history", "logged_values": "history",
    "get_peft_model": "pipeline", "prepare_model": "pipeline", "train": "pipeline", "train_sft_then_dpo": "pipeline",
    "LR_RANGES": "schedules", "lr_curve": "schedules", "warmup_steps": "schedules",
    "TrainResult": "stage", "Sweep": "sweep", "SweepRun": "sweep", "SweepSettings": "sweep",
}
__all__ = sorted(EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, EXPORTS)
