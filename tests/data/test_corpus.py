import ast

import pytest

from lorakit.data import corpus
from lorakit.data.corpus import CODE_HOLDOUT_MODULES, pretraining_texts, stdlib_functions


def test_splits_are_disjoint_nonempty_and_stable():
    train, heldout = pretraining_texts("train"), pretraining_texts("heldout")
    assert train and heldout and not set(train) & set(heldout)
    assert 0.03 < len(heldout) / (len(train) + len(heldout)) < 0.2
    assert pretraining_texts("train") == train  # same order every call
    # the split is sha1 of the document name (not Python's salted hash()): the same answer on every machine
    assert corpus._is_heldout("module:typing") and not corpus._is_heldout("module:ast")
    assert all(isinstance(corpus._is_heldout(n), bool) for n in ("a", "b"))


def test_documents_are_english_docs_and_top_level_source_within_the_cap():
    names = [name for name, _ in corpus._documents()]
    assert any(n.startswith("topic:") for n in names) and any(n.startswith("module:") for n in names)
    modules = [n.split(":", 1)[1] for n in names if n.startswith("module:")]
    assert not any(m.startswith(("test", "_")) or m in ("idlelib", "site-packages") for m in modules)
    source_chars = sum(len(t) for n, t in corpus._documents() if n.startswith("module:"))
    assert source_chars <= corpus.MAX_SOURCE_CHARS + corpus.MAX_FILE_CHARS
    assert any("for" in t and "statement" in t for t in pretraining_texts("train"))


def test_code_holdout_modules_are_never_pretrained_on():
    texts = set(pretraining_texts("train")) | set(pretraining_texts("heldout"))
    names = {name for name, _ in corpus._documents()}
    for module in CODE_HOLDOUT_MODULES:
        assert f"module:{module}" not in names
        source = (corpus.stdlib_dir() / f"{module}.py").read_text(encoding="utf-8")[: corpus.MAX_FILE_CHARS]
        assert source not in texts


def test_stdlib_functions_rows_reform_valid_functions():
    functions = stdlib_functions()
    assert len(functions) > 50 and {f["module"] for f in functions} <= set(CODE_HOLDOUT_MODULES)
    for f in functions:
        assert set(f) == {"name", "module", "signature", "docstring", "body"}
        assert f["signature"].startswith("def ") and f["body"].strip()
        tree = ast.parse(f["signature"] + "\n" + f["docstring"] + "\n" + f["body"])
        assert tree.body[0].name == f["name"]
    bisect_only = stdlib_functions(modules=("bisect",))
    assert bisect_only and {f["module"] for f in bisect_only} == {"bisect"}


@pytest.mark.parametrize("call,fragment", [
    (lambda: pretraining_texts("test"), "split must be one of"),
    (lambda: stdlib_functions(modules="bisect"), "modules must be"),
    (lambda: stdlib_functions(modules=("no_such_module",)), "modules: 'no_such_module'"),
])
def test_bad_arguments_name_the_field(call, fragment):
    with pytest.raises(ValueError, match=fragment):
        call()
