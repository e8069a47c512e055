"""What an adapter learned and what went wrong: losses and scores (`metrics`), greedy answers and before/after
tables (`generation`), lm-evaluation-harness tasks (`harness`), pitfall diagnostics (`diagnostics`) and the pitfalls
reproduced (`pitfalls`)."""

from __future__ import annotations

from ..compat import lazy_exports

EXPORTS = {
    "classification_accuracy": "metrics", "eval_loss": "metrics", "exact_match": "metrics", "forgetting": "metrics",
    "perplexity": "metrics", "uniform_loss": "metrics",
    "answers_and_match": "generation", "before_after_table": "generation", "compare_adapters": "generation",
    "generate_answers": "generation", "generation_stats": "generation", "merged_matches_unmerged": "generation",
    "LM_EVAL_TASKS": "harness", "knowledge_texts": "harness", "run_lm_eval": "harness",
    "save_language_model_adapter": "harness",
    "FIXES": "diagnostics", "FORGETTING_RATIO": "diagnostics", "NanGuardCallback": "diagnostics",
    "diagnose": "diagnostics", "report": "diagnostics", "PITFALLS": "pitfalls", "reproduce": "pitfalls",
}
__all__ = sorted(EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, EXPORTS)
