"""What a training run is made of: the allowed choices (`choices`) and recipes as validated, documented
dataclasses (`recipes`)."""

from __future__ import annotations

from ..compat import lazy_exports

EXPORTS = {
    "LLAMA_LINEAR_MODULES": "choices", "OPTIMIZERS": "choices", "PRECISIONS": "choices", "QUANTIZATIONS": "choices",
    "SCHEDULERS": "choices", "TARGET_PRESETS": "choices", "resolve_targets": "choices", "RECIPES": "recipes",
    "Recipe": "recipes", "field_table": "recipes", "get_recipe": "recipes", "parse_field": "recipes",
}
__all__ = sorted(EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, EXPORTS)
