"""The in-kernel half of a hidden check: run the student's answer on inputs and write the results as plain data.

A hidden test cell never decides anything inside the student's kernel. It calls

    collect("ch2-count-tests", lora_params, cases=lambda rng: [(shape, 16, ["q_proj"]), ...])

and the grader (outside the kernel) compares the collected results with the reference solution's. Under grading the
environment names a results file (`RESULTS_ENV`) and a seed (`SEED_ENV`, derived from the course secret by the
grader; the secret itself never enters the sandbox). Outside grading (nbval, an instructor's own run) the cases use
the public seed 0 and `collect` only checks that every result is plain data, printing nothing that reveals a value.

Light imports only: this module is imported in every student's kernel.
"""

from __future__ import annotations

import json
import os
import random
from typing import Any, Callable

RESULTS_ENV = "LORAKIT_GRADING_RESULTS"
SEED_ENV = "LORAKIT_GRADING_SEED"
PUBLIC_SEED = "0"
MAX_LINE_CHARS = 1_000_000
SCALARS = (int, float, str, bool, type(None))


class NotPlainData(TypeError):
    """A result that is not int, float, str, bool, None, list or dict with str keys."""


def to_plain(value: Any, depth: int = 0) -> Any:
    """`value` as exact builtin JSON data (tuples become lists; numpy/torch scalars via `.item()`), else NotPlainData."""
    if depth > 20:
        raise NotPlainData("nested deeper than 20 levels")
    kind = type(value)
    if kind in SCALARS:
        return value
    if kind in (list, tuple):
        return [to_plain(item, depth + 1) for item in value]
    if kind is dict:
        if any(type(key) is not str for key in value):
            raise NotPlainData("dict with a key that is not a str")
        return {key: to_plain(item, depth + 1) for key, item in value.items()}
    if kind.__module__.split(".")[0] in ("numpy", "torch") and hasattr(value, "item"):
        item = value.item()
        if type(item) in SCALARS:
            return item
    raise NotPlainData(kind.__name__)


def case_rng(exercise: str, seed: str) -> random.Random:
    """The random source of one exercise's cases: the same for the student and the reference run."""
    return random.Random(f"{seed}:{exercise}")


def run_case(answer: Callable[..., Any], case: Any) -> dict[str, Any]:
    """{"value": plain result} or {"error": exception or type name}; never a value of a failed result."""
    try:
        args = case if type(case) is tuple else (case,)
        return {"value": to_plain(answer(*args))}
    except NotPlainData as err:
        return {"error": f"not plain data: {err}"}
    except BaseException as err:  # noqa: BLE001 - the student's code may raise anything; SystemExit included
        if isinstance(err, KeyboardInterrupt):
            raise
        return {"error": type(err).__name__}


def collect(exercise: str, answer: Any, cases: Callable[[random.Random], list[Any]] | None = None,
            rel: float = 0.0) -> None:
    """Collect `answer(*case)` for each case of `cases(rng)` (or `answer` itself when cases is None) for the grader.

    exercise: the test cell's grade_id. rel: relative tolerance for float results (the grader reads it from the
    reference run only).
    """
    if type(exercise) is not str or not exercise:
        raise ValueError(f"exercise must be the test cell's grade_id (a non-empty str), got {exercise!r}")
    if type(rel) not in (int, float) or not 0 <= rel < 1:
        raise ValueError(f"rel must be a number in [0, 1), got {rel!r}")
    target = os.environ.get(RESULTS_ENV)
    rng = case_rng(exercise, os.environ.get(SEED_ENV, PUBLIC_SEED) if target else PUBLIC_SEED)
    if cases is None:
        results = [run_case(lambda: answer, ())]
    else:
        try:
            inputs = list(cases(rng))
        except Exception as err:  # noqa: BLE001
            inputs, results = [], [{"error": f"building the cases: {type(err).__name__}"}]
        else:
            results = [run_case(answer, case) for case in inputs]
    if target is None:
        bad = [result["error"] for result in results if "error" in result]
        if bad:
            raise AssertionError(f"{exercise}: {len(bad)} of {len(results)} case(s) gave no plain result: {bad[0]}")
        return
    line = json.dumps({"exercise": exercise, "rel": float(rel), "results": results})
    if len(line) > MAX_LINE_CHARS:
        line = json.dumps({"exercise": exercise, "rel": float(rel),
                           "results": [{"error": "result too large"}] * len(results)})
    with open(target, "a", encoding="utf-8") as handle:
        handle.write(line + "\n")
