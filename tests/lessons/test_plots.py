"""Lesson plots draw what they are given: one labelled line per run, one per baseline."""

import matplotlib

matplotlib.use("Agg")

from lorakit.lessons.plots import compare_train_losses  # noqa: E402


def test_compare_train_losses_draws_one_labelled_line_per_run():
    curves = {"LR 2e-05": [(1, 9.0), (5, 8.5)], "LR 0.0002": [(1, 9.0), (5, 7.0), (10, 6.0)]}
    ax = compare_train_losses(curves)
    assert [line.get_label() for line in ax.lines] == list(curves)
    assert [list(line.get_xydata()[:, 1]) for line in ax.lines] == [[9.0, 8.5], [9.0, 7.0, 6.0]]
    assert ax.get_legend() is not None


def test_compare_train_losses_draws_each_baseline_as_a_labelled_horizontal_line():
    curves = {"LR 2e-3": [(1, 6.0), (5, 3.0)]}
    ax = compare_train_losses(curves, baselines={"uniform ln 4096": 8.32, "base model": 6.4})
    lines = {line.get_label(): line for line in ax.lines}
    assert list(lines) == ["LR 2e-3", "uniform ln 4096", "base model"]
    for label, loss in (("uniform ln 4096", 8.32), ("base model", 6.4)):
        assert set(lines[label].get_ydata()) == {loss}
    assert lines["uniform ln 4096"].get_linestyle() != lines["base model"].get_linestyle()
