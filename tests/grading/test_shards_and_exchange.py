"""A class beyond one machine and nbgrader's exchange.

`lorakit grade --shard K/N` grades one slice of a class; `--merge` joins the slices' CSVs into exactly the CSV one
unsharded run writes, and refuses in one line shard CSVs that don't belong together. The exchange round trip: the
instructor releases, a student fetches, answers and submits, the instructor collects, `grade_class` grades, and
nbgrader's generate_feedback, release_feedback and the student's fetch_feedback bring the feedback page back.
"""

from dataclasses import replace
from pathlib import Path

import nbformat
import pytest
from traitlets.config import Config

from lorakit import grading
from lorakit.cli import main
from lorakit.grading import settings
from lorakit.grading.report import Grade, write_csv
from lorakit.grading.shards import Shard, merge_csvs
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
    student_notebook,
)
from tests.helpers.notebooks import readable_text

# Sorted by name (str order: digits, '=', capitals, lower case): 7ava, =x, Zed, amy, bea; slice 0 of 2 holds
# 7ava, Zed, bea. '=x' is no student id: an "error" row whose CSV cell is quoted ("'=x"), yet merged in its place.
CLASS = {"Zed": RIGHT, "amy": WRONG, "bea": RIGHT, "7ava": None, "=x": None}


def _hand_in(course: Path, folder: Path) -> None:
    for student, answers in CLASS.items():
        (folder / student).mkdir(parents=True)
        if student != "=x":
            nbformat.write(student_notebook(course, answers), folder / student / NOTEBOOK)


@pytest.mark.slow
@pytest.mark.sandbox
def test_two_shards_merged_are_the_unsharded_csv_byte_for_byte(tmp_path, capsys):
    require_sandbox()
    course = make_course(tmp_path / "course", REPO)
    hand_ins = tmp_path / "class"
    _hand_in(course, hand_ins)
    whole, first, second, merged = (tmp_path / f"{name}.csv" for name in ("whole", "shard-0", "shard-1", "merged"))
    grades = grading.grade_class(course, ASSIGNMENT, hand_ins, whole, timeout=20, secret=SECRET)
    assert [(g.student, g.score, g.status) for g in grades] == [
        ("7ava", 0.0, "empty"), ("=x", 0.0, "error"), ("Zed", MAX_SCORE, "ok"), ("amy", 0.0, "ok"),
        ("bea", MAX_SCORE, "ok")]
    sliced = grading.grade_class(course, ASSIGNMENT, hand_ins, first, timeout=20, secret=SECRET, shard=Shard(0, 2))
    assert [g.student for g in sliced] == ["7ava", "Zed", "bea"]
    (tmp_path / "secret").write_text(SECRET)
    assert main(["grade", str(course), ASSIGNMENT, "--submissions", str(hand_ins), "--timeout", "20", "--secret-file",
                 str(tmp_path / "secret"), "--shard", "1/2", "--csv", str(second)]) == 0
    assert "2 submission(s) graded (shard 1/2" in capsys.readouterr().out
    assert main(["grade", str(course), ASSIGNMENT, "--merge", str(second), str(first), "--csv", str(merged)]) == 0
    assert merged.read_bytes() == whole.read_bytes()
    assert "\n'=x," in whole.read_text()  # neutralised once, in the shard's CSV and in the merged one alike


def _grade(student: str, fingerprint: str = "0123456789ab", **changes: object) -> Grade:
    grade = Grade(student, ASSIGNMENT, 2.0, MAX_SCORE, "ok", seed_fingerprint=fingerprint,
                  exercises={"tiny-scale-tests": 2.0, "tiny-count-tests": None})
    return replace(grade, **changes)


def test_merging_hostile_cells_neutralises_them_once(tmp_path):
    """Cells report.cell quoted (a formula, a negative number) come back as written, never quoted twice."""
    exercises = ["tiny-scale-tests", "tiny-count-tests"]
    grades = [Grade("-cmd", ASSIGNMENT, 0.0, MAX_SCORE, "error", "not a valid student id", dict.fromkeys(exercises)),
              _grade("ann", detail="=HYPERLINK(\"http://x\")", late_penalty=-0.5, timestamp="+1"),
              _grade("bob", detail="@SUM(A1)", score=1e-05, exercises={"tiny-scale-tests": 0.333333}),
              _grade("cy", detail='a "quoted", comma\tline')]  # in folder-name order, as one run writes them
    write_csv(tmp_path / "whole.csv", grades, exercises)
    write_csv(tmp_path / "a.csv", grades[1::2], exercises)
    write_csv(tmp_path / "b.csv", grades[::2], exercises)
    merge_csvs([tmp_path / "a.csv", tmp_path / "b.csv"], tmp_path / "merged.csv")
    assert (tmp_path / "merged.csv").read_bytes() == (tmp_path / "whole.csv").read_bytes()
    assert "'=HYPERLINK" in (tmp_path / "merged.csv").read_text() and "''" not in (tmp_path / "merged.csv").read_text()


@pytest.mark.parametrize(("second", "exercises", "problem"), [
    ([_grade("bob"), _grade("ann")], None, "student ann is also in {first}: the shards overlap"),
    ([_grade("bob", fingerprint="ba9876543210")], None,
     "seed_fingerprint ba9876543210 differs from {first}'s 0123456789ab: graded with another secret"),
    ([_grade("bob")], ["tiny-scale-tests"], "its header ("),
    ([_grade("bob", assignment="other")], None, f"student bob was graded on other, not {ASSIGNMENT}"),
])
def test_shard_csvs_that_dont_belong_together_are_refused_in_one_line(tmp_path, capsys, second, exercises, problem):
    first, other, out = tmp_path / "shard-0.csv", tmp_path / "shard-1.csv", tmp_path / "merged.csv"
    write_csv(first, [_grade("ann"), _grade("-x", fingerprint="")], ["tiny-scale-tests", "tiny-count-tests"])
    write_csv(other, second, exercises or ["tiny-scale-tests", "tiny-count-tests"])
    assert main(["grade", str(tmp_path), ASSIGNMENT, "--merge", str(first), str(other), "--csv", str(out)]) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith(f"lorakit: error: {other}: ") and problem.format(first=first) in line
    assert not out.exists()


@pytest.mark.parametrize("shard", ["3/2", "a/b", "0/0", "2/2", "1/2/3", "1 / 2", "1.0/2"])
def test_a_bad_shard_is_refused_naming_the_option_and_what_is_allowed(tmp_path, capsys, shard):
    with pytest.raises(SystemExit) as stopped:
        main(["grade", str(tmp_path), ASSIGNMENT, "--shard", shard])
    assert stopped.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"lorakit grade: error: argument --shard: expected K/N with whole numbers 0 ≤ K < N, e.g. 0/8 up to 7/8, "
        f"got {shard!r}")


def test_merge_needs_an_output_and_no_grading_option(tmp_path, capsys):
    assert main(["grade", str(tmp_path), ASSIGNMENT, "--merge", "a.csv"]) == 2
    assert main(["grade", str(tmp_path), ASSIGNMENT, "--merge", "a.csv", "--csv", "o.csv", "--shard", "0/2"]) == 2
    first, second = capsys.readouterr().err.splitlines()
    assert first.startswith("lorakit: error: --merge takes the shard CSVs and --csv OUT") and second.endswith(
        "and no --shard")


def _as_student(step: str, exchange: Path, home: Path, course_id: str, student: str) -> None:
    """Run one of nbgrader's student-side exchange steps ("FetchAssignment", "Submit", "FetchFeedback") for `student`,
    whose home is `home`. The student id is given, so nbgrader never asks the system for the uid's user name (a uid
    with no passwd entry, e.g. a container's, has none); path_includes_course puts the assignment in
    home/<course>/<assignment>, where fetch, submit and fetch_feedback all look."""
    from nbgrader.auth import Authenticator
    from nbgrader.coursedir import CourseDirectory
    from nbgrader.exchange import ExchangeFactory

    config = Config()
    config.CourseDirectory.root = str(home)
    config.CourseDirectory.course_id = course_id
    config.CourseDirectory.student_id = student
    config.CourseDirectory.assignment_id = ASSIGNMENT
    config.Exchange.root = str(exchange)
    config.Exchange.cache = str(home / ".nbgrader_cache")
    config.Exchange.assignment_dir = str(home)
    config.Exchange.path_includes_course = True
    app = getattr(ExchangeFactory(config=config), step)(coursedir=CourseDirectory(config=config),
                                                        authenticator=Authenticator(config=config), config=config)
    app.start()


@pytest.mark.slow
@pytest.mark.sandbox
def test_the_exchange_round_trip_release_fetch_submit_collect_grade_feedback(tmp_path):
    require_sandbox()
    from nbgrader.apps import NbGraderAPI

    course = make_course(tmp_path / "course", REPO)
    exchange, home = tmp_path / "exchange", tmp_path / "home" / "alice"
    config = settings.load_config(course)
    config.Exchange.root = str(exchange)  # release_assignment creates it, world-writable as the exchange must be
    api = NbGraderAPI(config=config)
    course_id = config.CourseDirectory.course_id
    released = api.release_assignment(ASSIGNMENT)
    assert released["success"], released.get("error")

    _as_student("FetchAssignment", exchange, home, course_id, "alice")
    fetched = home / course_id / ASSIGNMENT / NOTEBOOK
    assert nbformat.read(fetched, as_version=4) == nbformat.read(course / "release" / ASSIGNMENT / NOTEBOOK,
                                                                 as_version=4)
    nbformat.write(student_notebook(course, RIGHT), fetched)  # the release with the right answers filled in
    _as_student("Submit", exchange, home, course_id, "alice")
    collected = api.collect(ASSIGNMENT)
    assert collected["success"], collected.get("error")
    submitted = course / "submitted" / "alice" / ASSIGNMENT
    assert {p.name for p in submitted.iterdir()} >= {NOTEBOOK, "timestamp.txt", "submission_secret.txt"}

    [grade] = grading.grade_class(course, ASSIGNMENT, timeout=20, secret=SECRET)
    assert (grade.student, grade.score, grade.max_score, grade.status) == ("alice", MAX_SCORE, MAX_SCORE, "ok")
    assert grade.timestamp.startswith((submitted / "timestamp.txt").read_text()[:10])
    assert api.get_autograded_students(ASSIGNMENT) == {"alice"}

    generated = api.generate_feedback(ASSIGNMENT, "alice")
    assert generated["success"], generated.get("error")
    released = api.release_feedback(ASSIGNMENT, "alice")
    assert released["success"], released.get("error")
    _as_student("FetchFeedback", exchange, home, course_id, "alice")
    [page] = (home / course_id / ASSIGNMENT / "feedback").glob(f"*/{Path(NOTEBOOK).stem}.html")
    text = readable_text(page)
    assert "return alpha / r" in text and "HIDDEN TESTS" not in text and "collect(" not in text
    assert f"{MAX_SCORE} / {MAX_SCORE}" in text
