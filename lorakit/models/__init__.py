"""Base models and what they are made of: loading (`load`), the real pretrained model shipped in a wheel
(`packaged`), shapes and exact parameter counts (`shapes`), the machine and its precision (`hardware`)."""

from __future__ import annotations

from ..compat import lazy_exports

EXPORTS = {
    "Hardware": "hardware", "choose_dtype": "hardware", "choose_precision": "hardware", "detect": "hardware",
    "load_base": "load", "load_tokenizer": "load", "quantization_config": "load", "REAL_MODELS": "packaged",
    "converted_dir": "packaged", "LLAMA2_13B": "shapes", "LLAMA2_7B": "shapes", "LLAMA3_8B": "shapes",
    "SMOLLM2_1_7B": "shapes",
    "ModelShape": "shapes", "TINY_DIR": "shapes", "count_base_params": "shapes", "count_lora_params": "shapes",
    "lora_table": "shapes", "lora_table_7b": "shapes", "tiny_shape": "shapes",
}
__all__ = sorted(EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, EXPORTS)
