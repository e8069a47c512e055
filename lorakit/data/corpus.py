"""Real offline text from the Python installation itself: the pydoc topics (English) and standard-library source.

The built-in model is pre-trained on `pretraining_texts("train")`; `pretraining_texts("heldout")` measures its
perplexity. Documents are split by a stable hash (sha1) of their name, so the split never depends on order or on
Python's salted `hash`. Only top-level stdlib modules are read (sorted by file name, private `_*` and `test*` modules
skipped, each cut at `MAX_FILE_CHARS`, all of them at about `MAX_SOURCE_CHARS`): packages such as `test/`,
`idlelib/` and `site-packages/` are never read. The modules in `CODE_HOLDOUT_MODULES` are never pre-trained on: the
code dataset is made of their functions.

The text differs slightly between Python versions (the topics and the stdlib change), so a rebuild with another
Python gives a slightly different tokenizer and model; the shipped one was built with Python 3.11 (see
`lorakit/assets/tiny/build_info.json`). On one machine and Python version the build is reproducible.
"""

from __future__ import annotations

import ast
import hashlib
import sysconfig
from functools import cache
from pathlib import Path

CODE_HOLDOUT_MODULES = (
    "bisect", "colorsys", "fnmatch", "glob", "heapq", "shlex", "statistics", "textwrap", "calendar",
    "genericpath", "posixpath", "base64", "string", "graphlib", "dataclasses", "copy",
)
MAX_FILE_CHARS = 40_000
MAX_SOURCE_CHARS = 2_000_000
SPLITS = ("train", "heldout")


def _is_heldout(name: str) -> bool:
    """A stable 10% of documents, chosen by a hash of their name (not Python's salted hash)."""
    return int(hashlib.sha1(name.encode()).hexdigest(), 16) % 10 == 0


def stdlib_dir() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


@cache
def _documents() -> tuple[tuple[str, str], ...]:
    """(name, text) pairs: every pydoc topic, then top-level stdlib modules (holdout modules excluded)."""
    from pydoc_data.topics import topics

    docs = [(f"topic:{key}", text.strip()) for key, text in sorted(topics.items())]
    budget = MAX_SOURCE_CHARS
    for path in sorted(stdlib_dir().glob("*.py")):
        if path.stem in CODE_HOLDOUT_MODULES or path.stem.startswith(("_", "test")) or budget <= 0:
            continue
        text = path.read_text(encoding="utf-8", errors="replace")[:MAX_FILE_CHARS]
        budget -= len(text)
        docs.append((f"module:{path.stem}", text))
    return tuple(docs)


def pretraining_texts(split: str = "train") -> list[str]:
    """The documents of one split ("train" or "heldout"), in a fixed order."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {list(SPLITS)}, got {split!r}")
    want_heldout = split == "heldout"
    return [text for name, text in _documents() if _is_heldout(name) == want_heldout]


def stdlib_functions(modules: tuple[str, ...] = CODE_HOLDOUT_MODULES, max_chars: int = 1200) -> list[dict[str, str]]:
    """Top-level functions with a docstring from `modules`: name, module, signature, docstring, body.

    `signature` is the `def` line(s) as written; `body` is the code after the docstring, dedented by nothing (it
    keeps its 4-space indent), so `signature + docstring block + body` re-forms the function.
    """
    if isinstance(modules, str) or not all(isinstance(m, str) for m in modules):
        raise ValueError(f"modules must be a tuple of stdlib module names, got {modules!r}")
    rows = []
    for module in modules:
        path = stdlib_dir() / f"{module}.py"
        if not path.exists():
            raise ValueError(f"modules: {module!r} is not a top-level standard-library module file ({path})")
        source = path.read_text(encoding="utf-8")
        lines = source.splitlines()
        for node in ast.parse(source).body:
            if not isinstance(node, ast.FunctionDef) or ast.get_docstring(node) is None:
                continue
            doc_node = node.body[0]
            if len(node.body) < 2:
                continue
            signature = "\n".join(lines[node.lineno - 1:node.body[0].lineno - 1]).rstrip()
            docstring = "\n".join(lines[doc_node.lineno - 1:doc_node.end_lineno])
            body = "\n".join(lines[node.body[1].lineno - 1:node.end_lineno])
            if node.decorator_list or len(signature) + len(docstring) + len(body) > max_chars:
                continue
            rows.append({"name": node.name, "module": module, "signature": signature,
                         "docstring": docstring, "body": body})
    return rows
