"""Lesson plots draw what they are given: one labelled line per run, one per baseline, a LoRA layer to scale."""

import matplotlib
import pytest

matplotlib.use("Agg")

from lorakit.lessons.plots import compare_train_losses, plot_lora_layer, plot_losses  # noqa: E402


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


def test_a_runs_plot_with_baselines_starts_its_loss_axis_at_zero():
    history = [{"step": 5, "loss": 6.02}, {"step": 10, "loss": 5.98}, {"step": 10, "eval_loss": 6.0}]
    bare = plot_losses(history)
    assert bare.get_ylim()[0] > 5  # autoscaled: a 0.04 wobble fills the plot
    ax = plot_losses(history, baselines={"uniform ln 4096": 8.32, "base model": 6.0})
    assert [line.get_label() for line in ax.lines] == ["train loss", "eval loss", "uniform ln 4096", "base model"]
    assert set(ax.lines[2].get_ydata()) == {8.32} and ax.get_ylim()[0] == 0 and ax.get_ylim()[1] > 8.32


def test_the_lora_layer_is_drawn_to_scale_with_true_counts():
    ax = plot_lora_layer(300, 200, r=40, alpha=80)
    w, b, a = ([p.get_width(), p.get_height()] for p in ax.patches)
    assert w[0] / w[1] == pytest.approx(300 / 200) and b[1] == w[1] and a[0] == w[0]  # W is out × in; B shares out, A shares in
    assert b[0] / w[0] == pytest.approx(40 / 300) and a[1] / w[1] == pytest.approx(40 / 200)
    text = " ".join(t.get_text() for t in ax.texts) + ax.get_title()
    assert "W: 200 × 300" in text and "B: 200 × 40" in text and "A: 40 × 300" in text and "+ 80/40" in text
    assert "20,000 trainable beside 60,000 frozen (33.33%)" in ax.get_title()


def test_a_thin_side_is_widened_but_labelled_with_its_true_size():
    ax = plot_lora_layer(4096, 4096, r=1, alpha=2)
    _, b, a = ([p.get_width(), p.get_height()] for p in ax.patches)
    assert b[0] == a[1] > 4 * 1 / 4096  # one row would be invisible: drawn wider than its share
    assert "B: 4,096 × 1" in " ".join(t.get_text() for t in ax.texts)
