"""Course authoring: the percent-format chapters in `course/` built into nbgrader notebooks (`build`) and run into
executed copies for reading (`executed`)."""
