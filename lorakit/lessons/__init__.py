"""What the chapters show and check: the course scale (`scales`), the guide audit (`guide_audit`), where the
course differs (`deviations`), learner self-checks (`self_checks`), graded experiments (`experiments`), widgets
(`widgets`), plots (`plots`) and the losses they are read against (`baselines`)."""

from __future__ import annotations

from ..compat import lazy_exports

EXPORTS = {
    "course_scale": "scales", "deviations_table": "deviations", "dropout_for": "deviations", "Claim": "guide_audit",
    "audit": "guide_audit", "claims_table": "guide_audit", "counts": "guide_audit", "inconsistencies": "guide_audit",
    "baselines_of": "baselines", "Baselines": "baselines", "nf4_bits_per_weight": "guide_measurements",
    "compare_train_losses": "plots", "plot_losses": "plots",
    "plot_memory_breakdown": "plots", "plot_lora_layer": "plots",
    "check_close": "self_checks", "check_equal": "self_checks", "self_check": "self_checks",
    "uses_answer": "self_checks", "SweepPanel": "widgets", "WhatIf": "widgets",
    "budget_run": "experiments", "settings_problem": "experiments", "BudgetRun": "experiments",
}
__all__ = sorted(EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, EXPORTS)
