"""nbgrader configuration of the lorakit course (course root: this folder)."""

from lorakit.grading.feedback import feedback_preprocessors
from lorakit.grading.plain_nbgrader import refusing_exporter

c = get_config()  # noqa: F821  (provided by nbgrader)

c.CourseDirectory.course_id = "lorakit"
c.CourseDirectory.root = __file__.rsplit("/", 1)[0] if "/" in __file__ else "."
c.CourseDirectory.db_url = "sqlite:///gradebook.db"
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"
c.ExecutePreprocessor.timeout = 300
c.Execute.timeout = 300
c.Execute.interrupt_on_timeout = True
c.ClearOutput.enabled = True
c.ClearHiddenTests.enabled = True
c.ClearMarkScheme.enabled = True
c.GenerateFeedback.preprocessors = feedback_preprocessors()  # nbgrader 0.9's feedback would show hidden tests
c.Autograde.exporter_class = refusing_exporter()  # plain `nbgrader autograde` refuses, naming `lorakit grade`
