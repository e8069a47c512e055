"""The course's graded exercises (course/*.py), checked without a kernel.

Every [tests] cell has a self-contained hidden block that only collects the student's results on inputs built from
the grading seed (see lorakit.grading.collector): no assert, no print, no name it does not define or import itself
beyond the exercise's own answer. Run in-process here: the reference solutions give plain results for every seed,
the seed really varies the inputs, and wrong answers collect results that differ from the reference's.
"""

from __future__ import annotations

import ast
import builtins
import json
import math
from pathlib import Path
from typing import Any

import pytest

from lorakit.authoring.build import parse
from lorakit.grading.collector import RESULTS_ENV, SEED_ENV
from lorakit.grading.experiments import experiment_of
from lorakit.lessons.experiments import settings_problem
from tests.helpers import REPO

CHAPTERS = sorted(p.stem for p in (REPO / "course").glob("*.py"))
HIDDEN = ("### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS")
CHECKERS = {"check_close", "check_equal", "self_check"}


def cells(chapter: str) -> list[Any]:
    return parse((REPO / "course" / f"{chapter}.py").read_text(), f"{chapter}.py")


def kind(cell: Any) -> str:
    meta = cell.metadata.get("nbgrader")
    if meta and cell.cell_type == "markdown":
        return "written"  # graded by the instructor in formgrader: no code, nothing to check here
    if meta:
        return "tests" if meta["grade"] else "solution"
    return "skip" if cell.metadata.get("lorakit", {}).get("grading") == "skip" else cell.cell_type


def split_hidden(source: str) -> tuple[str, str]:
    """(hidden block, visible rest) of a test cell's source."""
    start, end = source.index(HIDDEN[0]), source.index(HIDDEN[1])
    return source[start + len(HIDDEN[0]):end], source[:start] + source[end + len(HIDDEN[1]):]


def bound_names(tree: ast.AST) -> set[str]:
    """Every name a piece of code binds anywhere (assignments, imports, defs, arguments, loop targets)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            names.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
    return names


def loaded_names(tree: ast.AST) -> set[str]:
    return {node.id for node in ast.walk(tree) if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)}


def top_level_names(source: str) -> set[str]:
    """Names a cell defines at its top level (what later cells can use)."""
    names = set()
    for node in ast.parse(source).body:
        names |= bound_names(node) if not isinstance(node, (ast.FunctionDef, ast.ClassDef)) else {node.name}
    return names


def exercises() -> list[tuple[str, Any]]:
    return [(chapter, cell) for chapter in CHAPTERS for cell in cells(chapter) if kind(cell) == "tests"]


def collect_call(hidden: str) -> ast.Call:
    calls = [node for node in ast.walk(ast.parse(hidden))
             if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "collect"]
    assert len(calls) == 1, f"{len(calls)} collect calls"
    return calls[0]


EXERCISE_IDS = [cell.metadata.nbgrader["grade_id"] for _, cell in exercises()]


def test_every_chapter_has_graded_exercises_with_unique_ids():
    assert {chapter for chapter, _ in exercises()} == set(CHAPTERS)
    assert len(EXERCISE_IDS) == len(set(EXERCISE_IDS)) >= 18


@pytest.mark.parametrize(("chapter", "cell"), exercises(), ids=EXERCISE_IDS)
def test_hidden_block_collects_varied_cases_and_decides_nothing(chapter, cell):
    hidden, _ = split_hidden(cell.source)
    tree = ast.parse(hidden)
    call = collect_call(hidden)
    assert isinstance(call.args[0], ast.Constant) and call.args[0].value == cell.metadata.nbgrader["grade_id"]
    cases = {kw.arg: kw.value for kw in call.keywords}.get("cases")
    assert cases is not None and not (isinstance(cases, ast.Constant) and cases.value is None), "collect needs cases"
    assert not any(isinstance(node, ast.Assert) for node in ast.walk(tree)), "a hidden block never asserts"
    assert "print" not in loaded_names(tree), "a hidden block never prints"
    assert "from lorakit.grading import collect" in hidden


@pytest.mark.parametrize(("chapter", "cell"), exercises(), ids=EXERCISE_IDS)
def test_hidden_block_needs_only_the_answers(chapter, cell):
    """Free names of the hidden block are builtins or names the chapter's [solution] cells define (the answers)."""
    answers = set().union(*(top_level_names(c.source) for c in cells(chapter) if kind(c) == "solution"))
    hidden, _ = split_hidden(cell.source)
    tree = ast.parse(hidden)
    free = loaded_names(tree) - bound_names(tree) - set(dir(builtins))
    assert free <= answers, f"hidden block of {chapter} relies on {sorted(free - answers)} from other cells"


@pytest.mark.parametrize(("chapter", "cell"), exercises(), ids=EXERCISE_IDS)
def test_visible_checks_import_their_checkers(chapter, cell):
    _, visible = split_hidden(cell.source)
    tree = ast.parse(visible)
    used = loaded_names(tree) & CHECKERS
    assert used <= bound_names(tree), f"{sorted(used - bound_names(tree))} used but not imported in this cell"
    assert "lorakit.grading import" not in visible, "self-checks come from lorakit.lessons.self_checks"


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_statements_say_what_to_return(chapter):
    chapter_cells = cells(chapter)
    for i, cell in enumerate(chapter_cells):
        if kind(cell) == "solution" and "def " in cell.source:
            statement = next(c for c in reversed(chapter_cells[:i]) if c.cell_type == "markdown").source
            assert "### Exercise" in statement and "return" in statement.lower(), statement[:80]


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_no_exercise_uses_a_skipped_cell(chapter):
    chapter_cells = cells(chapter)
    kept = set().union(*(top_level_names(c.source) for c in chapter_cells if kind(c) in ("code", "solution", "tests")))
    only_skipped = set().union(*(top_level_names(c.source) for c in chapter_cells if kind(c) == "skip")) - kept
    for cell in chapter_cells:
        if kind(cell) in ("solution", "tests"):
            tree = ast.parse(cell.source)
            used = (loaded_names(tree) - bound_names(tree)) & only_skipped
            assert not used, f"{cell.metadata.nbgrader['grade_id']} uses {sorted(used)}, set only in skipped cells"


def answers_of(chapter: str) -> dict[str, Any]:
    """Run the chapter's imports and its [solution] cells (reference solutions); return what the solutions define."""
    chapter_cells = cells(chapter)
    namespace: dict[str, Any] = {}
    imports = [node for c in chapter_cells if kind(c) == "code" for node in ast.parse(c.source).body
               if isinstance(node, (ast.Import, ast.ImportFrom))]
    exec(compile(ast.Module(body=imports, type_ignores=[]), f"{chapter}-imports", "exec"), namespace)
    names: set[str] = set()
    for cell in chapter_cells:
        if kind(cell) == "solution":
            exec(compile(cell.source, f"{chapter}-{cell.metadata.nbgrader['grade_id']}", "exec"), namespace)
            names |= top_level_names(cell.source)
    return {name: namespace[name] for name in names}


def collected(cell: Any, answers: dict[str, Any], seed: str, results_file: Path, monkeypatch) -> list[dict]:
    """The results the hidden block of `cell` collects under grading with `seed`, run with only `answers` defined."""
    monkeypatch.setenv(RESULTS_ENV, str(results_file))
    monkeypatch.setenv(SEED_ENV, seed)
    results_file.unlink(missing_ok=True)
    hidden, _ = split_hidden(cell.source)
    exec(compile(hidden, cell.metadata.nbgrader["grade_id"], "exec"), dict(answers))
    (line,) = results_file.read_text().splitlines()
    record = json.loads(line)
    assert record["exercise"] == cell.metadata.nbgrader["grade_id"]
    return record["results"]


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_reference_solutions_give_plain_results_for_every_seed(chapter, tmp_path, monkeypatch):
    answers = answers_of(chapter)
    for cell in (c for c in cells(chapter) if kind(c) == "tests"):
        by_seed = [collected(cell, answers, f"secret-{seed}", tmp_path / "results.jsonl", monkeypatch)
                   for seed in range(12)]
        if experiment_of(cell):  # one case, the student's settings: the grader reruns them on its own seed
            assert all(len(results) == 1 and settings_problem(results[0]["value"]) == "" for results in by_seed)
            continue
        for results in by_seed:
            assert 3 <= len(results) <= 6 and all("value" in r for r in results), results
        assert len({json.dumps(r) for r in by_seed}) > 1, "the seed does not vary the cases"


def ignores_rslora(r: int, alpha: float, rslora: bool = False) -> float:
    return alpha / r


def any_drop(losses: dict) -> bool:
    return all(losses[seed, "new"] < losses[seed, "base"] for seed, _ in losses)


def always_overfitting(history: list[dict]) -> str:
    return "overfitting"


def first_log_against_last(history: list[dict]) -> str:
    """Another sensible rule for Exercise 5.1: single logs instead of means, other thresholds."""
    if not all(math.isfinite(h[k]) for h in history for k in ("loss", "grad_norm", "eval_loss") if k in h):
        return "divergence"
    train = [h["loss"] for h in history if "loss" in h]
    if train[-1] > 1.5 * train[0]:
        return "divergence"
    if train[-1] > 0.85 * train[0]:
        return "loss not decreasing"
    evals = [h["eval_loss"] for h in history if "eval_loss" in h]
    return "overfitting" if len(evals) > 2 and evals[-1] > evals[-2] > evals[-3] else "healthy"


def loose_forgetting_line(results: dict) -> str | None:
    """Another sensible rule for Exercise 7.2: forgetting allowed up to 4, exact matches within 0.05 a tie."""
    kept = {name: m for name, m in results.items() if m["forgetting_ratio"] < 4}
    if not kept:
        return None
    close = {name: m for name, m in kept.items() if m["exact_match"] > max(k["exact_match"] for k in kept.values()) - 0.05}
    return min(close, key=lambda name: close[name]["perplexity"])


def ignores_forgetting(results: dict) -> str | None:
    return max(results, key=lambda name: results[name]["exact_match"])


def labels_before_pairs(task: dict) -> str:
    """Another sensible order for Exercise 8.1: the data's shape first, then the output, each pair of checks swapped
    (the grader's tasks never have both pairs and labels, nor both code output and new knowledge)."""
    if task["labels"] is not None:
        return "classification"
    if task["pairs"]:
        return "dpo"
    if task["new_knowledge"]:
        return "domain"
    return "code" if task["output"] == "code" else "instruction"


def classification_first(task: dict) -> str:
    return "classification" if task["labels"] is not None else "dpo" if task["pairs"] else "instruction"


def skips_checkpointing(shape: Any, budget_gib: float, batch: int, seq_len: int) -> dict | None:
    from lorakit.memory.estimator import estimate

    settings = dict(precision="fp16", quantization=None, optimizer="adamw", gradient_checkpointing=False)
    for change in ({}, {"quantization": "nf4"}, {"optimizer": "paged_adamw_8bit"}):
        settings = {**settings, **change}
        if estimate(shape, batch=batch, seq_len=seq_len, r=16, **settings).total <= budget_gib * 2**30:
            return settings
    return None


def mean_of_perplexities(losses: list[float], token_counts: list[int]) -> float:
    return sum(math.exp(loss / count) for loss, count in zip(losses, token_counts)) / len(losses)


WRONG = {"ch1-scale-tests": ("01_hyperparameters", "lora_scale", ignores_rslora),
         "ch1-noise-tests": ("01_hyperparameters", "beats_seed_noise", any_drop),
         "ch5-history-tests": ("05_pitfalls", "what_went_wrong", always_overfitting),
         "ch7-ship-tests": ("07_evaluation", "pick_adapter", ignores_forgetting),
         "ch8-choose-tests": ("08_capstone", "choose_recipe", classification_first),
         "ch4-t4-tests": ("04_memory", "first_fit", skips_checkpointing),
         "ch7-ppl-tests": ("07_evaluation", "perplexity_from", mean_of_perplexities)}


def hidden_tests_of(chapter: str, exercise: str) -> Any:
    """The [tests] cell of `chapter` whose grade id is `exercise`."""
    (cell,) = [c for c in cells(chapter) if kind(c) == "tests" and c.metadata.nbgrader["grade_id"] == exercise]
    return cell


@pytest.mark.parametrize("exercise", sorted(WRONG))
def test_a_wrong_answer_collects_different_results(exercise, tmp_path, monkeypatch):
    chapter, name, wrong = WRONG[exercise]
    cell, answers, results = hidden_tests_of(chapter, exercise), answers_of(chapter), tmp_path / "results.jsonl"
    reference = collected(cell, answers, "course-secret", results, monkeypatch)
    assert collected(cell, answers, "course-secret", results, monkeypatch) == reference, "cases must be reproducible"
    mistaken = collected(cell, {**answers, name: wrong}, "course-secret", results, monkeypatch)
    assert len(mistaken) == len(reference) and mistaken != reference


# exercises of judgement: the student picks the rule; any sensible one must score as the reference does
SENSIBLE = {"ch5-history-tests": ("05_pitfalls", "what_went_wrong", first_log_against_last),
            "ch7-ship-tests": ("07_evaluation", "pick_adapter", loose_forgetting_line),
            "ch8-choose-tests": ("08_capstone", "choose_recipe", labels_before_pairs),
            "ch8-plan-tests": ("08_capstone", "choose_recipe", labels_before_pairs)}


@pytest.mark.parametrize("exercise", sorted(SENSIBLE))
def test_another_sensible_rule_collects_the_reference_results(exercise, tmp_path, monkeypatch):
    chapter, name, other = SENSIBLE[exercise]
    cell, answers, results = hidden_tests_of(chapter, exercise), answers_of(chapter), tmp_path / "results.jsonl"
    for seed in range(40):
        reference = collected(cell, answers, f"secret-{seed}", results, monkeypatch)
        assert collected(cell, {**answers, name: other}, f"secret-{seed}", results, monkeypatch) == reference, seed


# ------------------------------------------------------------------------ a release notebook runs top to bottom
# nbgrader's stub is `raise NotImplementedError()`: it must only run when an answer is called, and every call of an
# answer outside its own [solution] cell must sit in `with self_check(...)` or `with uses_answer(...)`, which turn
# the stub's error into one line (lorakit.lessons.self_checks).

def answer_names(chapter: str) -> set[str]:
    return set().union(*(top_level_names(c.source) for c in cells(chapter) if kind(c) == "solution"))


def guarded_uses(source: str, names: set[str]) -> tuple[set[str], set[str]]:
    """(answer names loaded inside a `with self_check/uses_answer` block, answer names loaded outside one)."""
    inside, outside = set(), set()

    def visit(node: ast.AST, guarded: bool) -> None:
        if isinstance(node, ast.With) and any(isinstance(item.context_expr, ast.Call)
                                              and getattr(item.context_expr.func, "id", "") in ("self_check",
                                                                                                 "uses_answer")
                                              for item in node.items):
            guarded = True
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and node.id in names:
            (inside if guarded else outside).add(node.id)
        for child in ast.iter_child_nodes(node):
            visit(child, guarded)

    visit(ast.parse(source), False)
    return inside, outside


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_answer_stubs_only_raise_when_called(chapter):
    """Every solution region sits inside a def or class, so the release's `raise NotImplementedError()` runs only
    when the answer is used (a top-level stub would stop Run All at the answer cell)."""
    for cell in (c for c in cells(chapter) if kind(c) == "solution"):
        markers = [line for line in cell.source.splitlines() if "### BEGIN SOLUTION" in line]
        assert markers and all(line.startswith(" ") for line in markers), cell.metadata.nbgrader["grade_id"]


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_answers_are_used_only_where_a_stub_becomes_one_line(chapter):
    names = answer_names(chapter)
    for cell in cells(chapter):
        if kind(cell) in ("code", "skip"):
            _, outside = guarded_uses(cell.source, names)
            assert not outside, f"{chapter}: {sorted(outside)} used outside `with uses_answer(...)`:\n{cell.source}"
        elif kind(cell) == "tests":
            _, visible = split_hidden(cell.source)
            inside, outside = guarded_uses(visible, names)
            assert inside and not outside, f"{cell.metadata.nbgrader['grade_id']}: checks outside `with self_check`"


def guarded_bindings(source: str) -> set[str]:
    """Names bound inside the `with self_check/uses_answer` blocks of a cell (unbound when the block is skipped)."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.With) and any(getattr(getattr(item.context_expr, "func", None), "id", "")
                                              in ("self_check", "uses_answer") for item in node.items):
            for statement in node.body:
                names |= bound_names(statement)
    return names


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_later_cells_never_need_a_name_a_skipped_block_would_leave_unbound(chapter):
    unbound_when_skipped: set[str] = set()
    for cell in (c for c in cells(chapter) if c.cell_type == "code"):
        tree = ast.parse(cell.source)
        needed = (loaded_names(tree) & unbound_when_skipped) - bound_names(tree)
        assert not needed, f"{chapter}: {sorted(needed)} exist only if an earlier exercise was answered"
        unbound_when_skipped |= guarded_bindings(cell.source)


RUNS = ("lorakit.train(", "reproduce(", "SweepPanel(", "train_sft")


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_every_training_run_is_followed_by_an_assert_on_what_it_showed(chapter):
    """A lesson cell that trains asserts on the outcome, in itself or in the next code cell (nbval and `make
    executed` run them), so no run is left for the prose alone to interpret. GPU-only cells are exempt."""
    chapter_cells = [c for c in cells(chapter) if c.cell_type == "code"]
    for index, cell in enumerate(chapter_cells):
        if kind(cell) in ("code", "skip") and any(run in cell.source for run in RUNS) \
                and "torch.cuda.is_available()" not in cell.source:
            checked = cell.source + "".join(c.source for c in chapter_cells[index + 1:index + 2])
            assert "assert " in checked or "check_equal(" in checked, f"{chapter}: unchecked run\n{cell.source[:300]}"


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_reference_solutions_use_nothing_their_exercise_forbids(chapter):
    from lorakit.grading.forbidden import forbidden_calls, names_used

    chapter_cells = cells(chapter)
    answers: list[str] = []
    for cell in chapter_cells:
        if kind(cell) == "solution":
            answers.append(cell.source)
        elif kind(cell) == "tests":
            used = set().union(*(names_used(source) for source in answers)) if answers else set()
            assert not used & set(forbidden_calls(cell)), cell.metadata.nbgrader["grade_id"]
            answers = []
