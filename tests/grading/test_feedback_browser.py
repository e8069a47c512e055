"""Feedback HTML from a hostile executed notebook, opened in headless Chromium: none of the student's script runs.

A control page (the same notebook through plain nbconvert, as feedback was written before) shows the probe works:
there the payloads do run. Every request but the page's own file is blocked, so the template's CDN scripts never
load. Skipped when /usr/bin/chromium is missing and LORAKIT_REQUIRE_BROWSER is unset (as tests/course/test_browser.py).
"""

from __future__ import annotations

import pytest
from nbconvert import HTMLExporter

from lorakit.grading.feedback import feedback_notebook, write_html
from tests.course.test_browser import page  # noqa: F401 - the headless Chromium fixture (skips this module without chromium)
from tests.grading.test_untrusted_input import hostile_executed

pytestmark = [pytest.mark.slow, pytest.mark.browser]


def script_ran(page, path) -> dict:  # noqa: F811
    page.route("**/*", lambda route: route.continue_() if route.request.url.startswith("file:") else route.abort())
    page.goto(path.as_uri(), wait_until="load")
    page.wait_for_timeout(500)  # image errors fire after load
    return page.evaluate("() => ({pwned: window.pwned ?? null, title: document.title})")


def test_feedback_runs_no_student_script_in_a_real_browser(page, tmp_path):  # noqa: F811
    control, unsafe = tmp_path / "control.html", hostile_executed()
    unsafe.cells[1]["execution_count"] = 1  # nbconvert itself refuses that one invalid field
    control.write_text(HTMLExporter(template_name="classic").from_notebook_node(unsafe)[0])
    assert script_ran(page, control)["pwned"] is not None  # unsanitised, the payloads are live

    feedback = write_html(feedback_notebook(hostile_executed(), {}, {}), tmp_path / "feedback.html")
    assert script_ran(page, feedback) == {"pwned": None, "title": "Notebook"}
