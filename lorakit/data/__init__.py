"""The course's data, made offline: fine-tuning datasets (`datasets`) and pre-training text from the Python
install (`corpus`)."""

from __future__ import annotations

from ..compat import lazy_exports

EXPORTS = {
    "pretraining_texts": "corpus", "stdlib_functions": "corpus", "DATASETS": "datasets", "TaskData": "datasets",
    "load_dataset": "datasets", "make_rows": "datasets", "tokenize_chat": "datasets",
}
__all__ = sorted(EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, EXPORTS)
