"""Training memory: the estimator (`estimator`), measurement on a random model (`measure`), out-of-memory
advice (`oom_advice`), one run's peak (`peak`) and the what-if calculator (`calculator`)."""

from __future__ import annotations

from ..compat import lazy_exports

EXPORTS = {
    "what_if": "calculator", "MemoryBreakdown": "estimator", "estimate": "estimator", "estimate_run": "estimator",
    "saved_activation_bytes": "estimator", "Measurement": "measurement", "measure": "measurement",
    "TrainingOutOfMemoryError": "oom_advice", "PeakMemory": "peak", "release_memory": "peak",
}
__all__ = sorted(EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, EXPORTS)
