"""Red team: every attack a student could hand in scores exactly what its honest part earns (a blank scores 0).

One class of the tiny fixture course (tests/fixtures/tiny.py: 3 exercises, 2 + 2 + 1 points, hidden checks
that `collect` results on secret inputs) is graded once by `lorakit grade --feedback` in the bubblewrap sandbox.
Skipped without bubblewrap unless LORAKIT_REQUIRE_SANDBOX is set (CI sets it).
"""

from __future__ import annotations

import csv
import re
import sqlite3
import textwrap

import nbformat
import pytest

from tests.helpers import REPO
from tests.helpers.grading_course import (
    ASSIGNMENT,
    MAX_SCORE,
    NOTEBOOK,
    RIGHT,
    SECRET,
    WRONG,
    make_course,
    require_sandbox,
    snapshot,
    student_notebook,
)
from tests.helpers.notebooks import readable_text

pytestmark = [pytest.mark.slow, pytest.mark.sandbox]  # grades a whole class in the sandbox

ALL_WRONG, ALL_RIGHT = WRONG, RIGHT
SCALE_COUNT_RIGHT = {**RIGHT, "tiny-targets": WRONG["tiny-targets"]}


def code(text: str) -> str:
    return textwrap.dedent(text).strip()


def attacks(course, outside):
    """name → (answers, extra cells, where they go, expected score, expected status)."""
    source_nb = course / "source" / ASSIGNMENT / NOTEBOOK
    steal = code(f'''
        import glob, json
        paths = [{str(source_nb)!r}, *glob.glob({str(REPO / "course")!r} + "/*.py"),
                 {str(REPO / "tests/fixtures/tiny.py")!r}, {str(REPO / "course/00_setup.py")!r}]
        for path in paths:
            try:
                text = open(path).read()
            except OSError as err:
                print("cannot read", type(err).__name__)
                continue
            exec(text.replace("### BEGIN SOLUTION", "").replace("### END SOLUTION", "")
                 if path.endswith(".py") else "\\n".join(c["source"] if isinstance(c["source"], str)
                 else "".join(c["source"]) for c in json.load(open(path))["cells"]
                 if "solution" in str(c.get("metadata"))))
    ''')
    return {
        # honest controls
        "honest_blank": (None, (), "end", 0.0, "empty"),
        "honest_right": (ALL_RIGHT, (), "end", 5.0, "ok"),
        "honest_half": (SCALE_COUNT_RIGHT, (), "end", 4.0, "ok"),
        "honest_warnings": ({k: "import sys, warnings\nwarnings.warn('careful')\nprint('noise', file=sys.stderr)\n"
                             + v for k, v in RIGHT.items()}, (), "end", 5.0, "ok"),
        # patching the checkers and the collector from an answer cell
        "patch_checks": (ALL_WRONG, (code('''
            import lorakit.lessons.self_checks as checks
            checks.check_close = checks.check_equal = lambda *a, **k: None
            import lorakit.grading.verdicts as verdicts
            verdicts.same = lambda *a, **k: True
        '''),), "start", 0.0, "ok"),
        "patch_collect": (ALL_WRONG, (code('''
            import lorakit.grading.collector as c
            c.collect = lambda *a, **k: None
            c.to_plain = lambda v, depth=0: v
        '''),), "start", 0.0, "ok"),
        "import_hook_fake_module": (ALL_WRONG, (code('''
            import contextlib, sys, types, importlib.abc, importlib.machinery
            class Fake(importlib.abc.MetaPathFinder, importlib.abc.Loader):
                def find_spec(self, name, path, target=None):
                    return importlib.machinery.ModuleSpec(name, self) if name.startswith("lorakit") else None
                def create_module(self, spec):
                    module = types.ModuleType(spec.name); module.__path__ = []
                    module.collect = module.check_close = module.check_equal = lambda *a, **k: None
                    module.self_check = lambda *a, **k: contextlib.nullcontext()
                    return module
                def exec_module(self, module):
                    pass
            for name in [n for n in sys.modules if n.startswith("lorakit")]:
                del sys.modules[name]
            sys.meta_path.insert(0, Fake())
        '''),), "start", 0.0, "ok"),
        "input_transformer_pass": (ALL_WRONG, (code('''
            get_ipython().input_transformers_cleanup.append(lambda lines: ["pass\\n"])
        '''),), "start", 0.0, "ok"),
        "post_run_hook_hides_errors": (ALL_WRONG, (code('''
            def hide(result):
                result.error_in_exec = None
            get_ipython().events.register("post_run_cell", hide)
            get_ipython().showtraceback = lambda *a, **k: None
        '''),), "start", 0.0, "ok"),
        "always_true_eq": ({k: v.split(":\n")[0] + ":\n    class Yes:\n        __eq__ = lambda s, o: True\n"
                            "        __hash__ = lambda s: 0\n    return Yes()" for k, v in RIGHT.items()},
                           (), "end", 0.0, "ok"),
        "float_reads_checker_frame": ({"tiny-scale": code('''
            import sys
            class Sneaky:
                def __float__(self):
                    frame = sys._getframe(1)
                    while frame:
                        for value in frame.f_locals.values():
                            if type(value) is float:
                                return value
                        frame = frame.f_back
                    return 0.0
            def lora_scale(r, alpha):
                return Sneaky()
        ''')}, (), "end", 0.0, "ok"),
        "float_subclass_and_bool": ({"tiny-scale": "class F(float):\n    __eq__ = lambda s, o: True\n"
                                     "def lora_scale(r, alpha):\n    return F(alpha / r)",
                                     "tiny-count": "def lora_params(d_in, d_out, r):\n    return True"},
                                    (), "end", 0.0, "ok"),
        "rebind_reference_and_random": (ALL_WRONG, (code('''
            import random, math
            MODULES = []
            random.Random = lambda *a, **k: random.SystemRandom()
            math.isclose = lambda *a, **k: True
        '''),), "start", 0.0, "ok"),
        "read_instructor_files": (ALL_WRONG, (steal,), "start", 0.0, "ok"),
        "read_secret_and_config": (ALL_WRONG, (code(f'''
            import os, glob
            for path in [os.path.expanduser("~/.jupyter/nbgrader_config.py"), "/etc/jupyter/nbgrader_config.py",
                         {str(course / "nbgrader_config.py")!r},
                         *glob.glob({str(REPO.parent)!r} + "/*/.venv/etc/jupyter/*")]:
                try:
                    print(open(path).read())
                except OSError as err:
                    print("no", type(err).__name__)
            print(os.environ.get("LORAKIT_GRADING_SECRET"))
        '''),), "end", 0.0, "ok"),
        "proc_and_environment": (ALL_WRONG, (code('''
            import os, glob
            print(sorted(os.environ))
            for path in glob.glob("/proc/*/environ") + glob.glob("/proc/*/cmdline"):
                try:
                    print(path, open(path, "rb").read()[:2000])
                except OSError as err:
                    print(path, type(err).__name__)
        '''),), "end", 0.0, "ok"),
        "sql_update_gradebook": (ALL_WRONG, (code(f'''
            import sqlite3
            try:
                db = sqlite3.connect({str(course / "gradebook.db")!r})
                db.execute("UPDATE grade SET auto_score = 100, manual_score = 100")
                db.commit()
                print("GRADEBOOK" + "-CHANGED")
            except Exception as err:
                print("no gradebook:", type(err).__name__)
        '''),), "end", 0.0, "ok"),
        "write_outside_scratch": (ALL_WRONG, (code(f'''
            import os
            for folder in [{str(outside)!r}, {str(course)!r}, {str(REPO / "tests")!r}, "/usr", "/etc", {str(REPO.parent)!r}]:
                try:
                    open(os.path.join(folder, "pwned.txt"), "w").write("pwned")
                    print("wrote", folder)
                except OSError as err:
                    print("no", type(err).__name__)
        '''),), "end", 0.0, "ok"),
        "print_In_history_into_feedback": (ALL_RIGHT, ('print("\\n".join(In))\nprint(Out)',), "end", 5.0, "ok"),
        "forged_result_lines": (ALL_WRONG, (code('''
            import json, os, random
            from lorakit.grading.collector import case_rng
            path = os.environ.get("LORAKIT_GRADING_RESULTS", "/grading/results.jsonl")
            rng = case_rng("tiny-scale-tests", "0")
            cases = [(rng.choice([1, 2, 4, 8, 16, 64]), rng.choice([3, 8, 16, 32, 128])) for _ in range(4)]
            lines = [{"exercise": "tiny-scale-tests", "rel": 0.99, "results": [{"value": a / r} for r, a in cases]},
                     {"exercise": "tiny-count-tests", "rel": 0.99, "results": [{"value": 60}] * 99},
                     {"exercise": "tiny-targets-tests", "rel": 0.99, "results": [{"value": ["q_proj"]}] * 99},
                     {"exercise": "bonus", "results": [{"value": 1}]}]
            with open(path, "a") as handle:
                handle.write("\\n".join(json.dumps(line) for line in lines) + "\\n")
        '''),), "end", 0.0, "ok"),
        "extra_graded_cell_with_points": (ALL_WRONG, (), "end", 0.0, "ok"),
        "os_exit_in_one_answer": ({**RIGHT, "tiny-count": "import os\nos._exit(1)"}, (), "end", 3.0, "error"),
        "sigint_ignoring_loop": ({**RIGHT, "tiny-count": "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)"
                                  "\nwhile True:\n    pass"}, (), "end", 3.0, "timeout"),
        "fork_bomb": ({**RIGHT, "tiny-targets": code('''
            import os
            while True:
                try:
                    os.fork()
                except OSError:
                    pass
        ''')}, (), "end", 4.0, "timeout"),
        "memory_bomb": ({**RIGHT, "tiny-targets": "hog = bytearray(64 * 2**30)"}, (), "end", 4.0, "ok"),
        "huge_output": (ALL_RIGHT, ("for _ in range(30):\n    print('x' * 10**6)",), "end", 5.0, "ok"),
        "pickle_and_copyreg_tricks": ({"tiny-count": code('''
            import os, pickle
            class Boom:
                def __reduce__(self):
                    return (os.system, ("touch /grading/boom",))
                def __index__(self):
                    return 0
            def lora_params(d_in, d_out, r):
                return Boom()
        '''), "tiny-scale": "import pickle\ndef lora_scale(r, alpha):\n    return pickle.dumps(alpha / r)"},
                                      (), "end", 0.0, "ok"),
        "network_access": (ALL_WRONG, (code('''
            import socket
            for host in ("8.8.8.8", "pypi.org", "10.0.0.1"):
                try:
                    socket.create_connection((host, 443), timeout=3)
                    print("NET" + "-REACHED", host)
                except OSError as err:
                    print("network:", type(err).__name__)
        '''),), "end", 0.0, "ok"),
        "kill_the_executor": ({**RIGHT, "tiny-targets": "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)"},
                              (), "end", 4.0, "error"),
        "symlink_results_to_host_files": (ALL_RIGHT, (code('''
            import os, signal
            for name in ("executed.ipynb", "results.jsonl"):
                if os.path.exists(name):
                    os.remove(name)
                os.symlink("/etc/shadow", name)
            os.kill(os.getppid(), signal.SIGKILL)
        '''),), "end", 0.0, "error"),
    }


@pytest.fixture(scope="module")
def red_team(tmp_path_factory):
    """The attack class, graded once at the default --jobs (as root on 2 cores: two slots, each its own sandbox uid);
    (course, rows, submissions before grading, outside folder)."""
    require_sandbox()
    from lorakit.cli import main

    base = tmp_path_factory.mktemp("redteam")
    course, outside = make_course(base / "course", REPO), base / "outside"
    outside.mkdir()
    submissions = base / "hand-ins"
    table = attacks(course, outside)
    for student, (answers, extra, where, _, _) in table.items():
        notebook = student_notebook(course, answers, extra, where)
        if student == "extra_graded_cell_with_points":
            forged = nbformat.v4.new_code_cell("print('bonus')")
            forged.metadata["nbgrader"] = {"grade": True, "solution": False, "locked": False, "points": 100.0,
                                           "grade_id": "bonus", "schema_version": 3}
            notebook.cells.append(forged)
        (submissions / student).mkdir(parents=True)
        nbformat.write(notebook, submissions / student / NOTEBOOK)
    before = snapshot(submissions)
    secret_file = base / "secret.txt"
    secret_file.write_text(SECRET)
    assert main(["grade", str(course), ASSIGNMENT, "--submissions", str(submissions), "--timeout", "20",
                 "--feedback", "--secret-file", str(secret_file)]) == 0
    with open(course / f"grades_{ASSIGNMENT}.csv", newline="") as handle:
        rows = {row["student"]: row for row in csv.DictReader(handle)}
    return course, rows, table, submissions, before, outside


def test_every_attack_scores_only_its_honest_part(red_team):
    _, rows, table, *_ = red_team
    got = {name: (float(rows[name]["score"]), rows[name]["status"]) for name in table}
    want = {name: (score, status) for name, (_, _, _, score, status) in table.items()}
    assert got == want
    assert len([name for name in table if not name.startswith("honest")]) >= 20
    assert {float(row["max_score"]) for row in rows.values()} == {MAX_SCORE}


def test_timeouts_and_kernel_deaths_name_the_exercise(red_team):
    _, rows, *_ = red_team
    assert "tiny-count-tests: a cell ran past 20 s" in rows["sigint_ignoring_loop"]["detail"]
    assert "tiny-targets-tests: a cell ran past 20 s" in rows["fork_bomb"]["detail"]
    assert "tiny-count-tests: the kernel died" in rows["os_exit_in_one_answer"]["detail"]
    assert "runner stopped" in rows["kill_the_executor"]["detail"]


def test_gradebook_holds_the_decided_scores_and_no_forged_ones(red_team):
    course, rows, *_ = red_team
    with sqlite3.connect(course / "gradebook.db") as db:
        totals = dict(db.execute("SELECT student.id, SUM(COALESCE(grade.auto_score, 0)) FROM grade "
                                 "JOIN submitted_notebook ON grade.notebook_id = submitted_notebook.id "
                                 "JOIN submitted_assignment ON submitted_notebook.assignment_id = submitted_assignment.id "
                                 "JOIN student ON submitted_assignment.student_id = student.id GROUP BY student.id"))
        assert db.execute("SELECT COUNT(*) FROM grade WHERE manual_score IS NOT NULL").fetchone()[0] == 0
    assert totals == {name: float(row["score"]) for name, row in rows.items()}


def test_submissions_are_unchanged_byte_for_byte(red_team):
    *_, submissions, before, _ = red_team
    assert snapshot(submissions) == before


def test_nothing_was_written_outside_the_scratch_folder(red_team):
    course, *_, outside = red_team
    assert list(outside.iterdir()) == []
    assert not list(course.rglob("pwned.txt")) and not (REPO / "tests/pwned.txt").exists()


def test_feedback_holds_no_hidden_check_secret_or_host_file(red_team):
    course, rows, *_ = red_team
    pages = {p.parts[-3]: readable_text(p) for p in (course / "feedback").rglob("*.html")}
    for student, text in pages.items():
        assert "collect(" not in text and "cases=lambda" not in text, student
        assert SECRET not in text, student
        assert "root:" not in text, student
    assert "checked 4 secret cases, 4 matched" in pages["print_In_history_into_feedback"]
    assert "no gradebook: OperationalError" in pages["sql_update_gradebook"]
    assert "GRADEBOOK-CHANGED" not in pages["sql_update_gradebook"]
    assert re.search(r"cannot read (FileNotFoundError|PermissionError)", pages["read_instructor_files"])
    assert "network: OSError network: gaierror" in pages["network_access"]
    assert "NET-REACHED" not in pages["network_access"]
    assert len((course / "feedback/huge_output/tiny/tiny.html").read_bytes()) < 2_000_000
