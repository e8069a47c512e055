"""The seam between lorakit and its libraries: version differences (`versions`), library noise kept out of lesson
outputs (`silence`), lorakit's own one-line notes (`notes`), and the lazy re-export every public package uses.

Internal: chapters never import from here (a test checks).
"""

from __future__ import annotations

import importlib
from typing import Any, Callable

from .silence import drop_bitsandbytes_kernel_notice


def lazy_exports(package: str, exports: dict[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """`__getattr__` and `__dir__` for a package whose public names live in its modules (name → module), each module
    imported on first use, so that importing the package imports no torch and changes nothing.

    The first use is where lorakit starts importing its libraries, so it first filters bitsandbytes' two offline
    hub-kernel notices (`silence.drop_bitsandbytes_kernel_notice`), which peft or transformers' Trainer trigger on
    their first import: a chapter's first cell stays clean whichever lorakit name it imports first.
    """

    def __getattr__(name: str) -> Any:
        if name in exports:
            drop_bitsandbytes_kernel_notice()
            return getattr(importlib.import_module(f"{package}.{exports[name]}"), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted(exports)

    return __getattr__, __dir__
