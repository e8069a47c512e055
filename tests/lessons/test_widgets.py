"""The sweep panel and the what-if calculator, driven headlessly: set widget values, click buttons, read the runs,
the figure, the table and the messages.

Runs under the installed ipywidgets (8); `tests/ipywidgets7_env.sh` runs this same file under ipywidgets 7.7 (Colab's).
Short runs (6 steps, 48 training rows) keep the file under a minute on 2 CPU cores.
"""

import time

import ipywidgets
import pytest
import torch

from lorakit.lessons.widgets import SweepPanel, WhatIf
from lorakit.models.shapes import LLAMA2_7B, ModelShape, count_lora_params, tiny_shape
from lorakit.training.sweep import Sweep, SweepSettings

STEPS = 6


@pytest.fixture(scope="module")
def sweep():
    return Sweep(n_train=48, n_eval=8, logging_steps=1)


@pytest.fixture()
def panel(sweep):
    panel = SweepPanel(sweep, background=False)
    panel.steps.min = 1  # let the tests train fewer steps than a learner would
    panel.steps.value = STEPS
    return panel


def _base_weights(model):
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def test_clicking_train_runs_plots_and_tabulates(panel, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # nothing may be written to the working folder (no runs/, no checkpoints)
    panel.sweep.clear()
    panel.run_button.click()
    assert len(panel.sweep.runs) == 1, panel.message.value
    run = panel.sweep.runs[0]
    assert run.error is None and not run.stopped
    assert [step for step, _ in run.train_losses] == list(range(1, STEPS + 1))  # logged every step
    assert run.eval_losses and run.eval_losses[-1][0] == STEPS and run.eval_loss > 0  # eval at the end
    assert run.trainable_params == count_lora_params(panel.sweep.shape, 16, "all-linear")
    assert run.memory_bytes > 0 and run.seconds >= run.train_seconds > 0
    assert "image/png" in panel.plot.outputs[-1]["data"]
    lines = panel.figure.axes[0].get_lines()
    assert len(lines) == 2 and list(lines[0].get_xdata()) == list(range(1, STEPS + 1))  # train line + eval dot
    assert f"{run.trainable_params:,} params" in lines[0].get_label()
    assert f"<td>{run.trainable_params:,}</td>" in panel.table.value and f"{run.eval_loss:.3f}" in panel.table.value
    assert "Done" in panel.message.value
    assert list(tmp_path.iterdir()) == []


def test_live_curve_updates_while_training(panel):
    seen = []
    panel.sweep.clear()
    panel.rank.value = 8
    original = panel._draw
    panel._last_render = 0.0

    def spy(highlight=None):
        seen.append(len(panel._live.train_losses) if panel._live is not None else None)
        original(highlight)

    panel._draw = spy
    panel.run_button.click()
    assert any(n for n in seen), seen  # at least one redraw with a partial (live) curve, then the final one


def test_moving_a_slider_back_is_instant_and_highlights_the_run(panel):
    panel.sweep.clear()
    panel.rank.value = 16
    panel.run_button.click()
    panel.rank.value = 4
    panel.run_button.click()
    assert [r.settings.r for r in panel.sweep.runs] == [16, 4]
    panel.rank.value = 16  # back: the result shows at once, without a click
    assert "Already ran" in panel.message.value and "<tr style=\"font-weight:bold\"><td>1</td>" in panel.table.value
    before = list(panel.sweep.runs)
    panel.run_button.click()  # served from the cache: no new run
    assert panel.sweep.runs == before and "Cached" in panel.message.value


def test_runs_do_not_leak_adapters_into_each_other(sweep):
    weights = _base_weights(sweep.base)
    first = sweep.run(SweepSettings(r=4, targets="q,v", max_steps=4))
    sweep.run(SweepSettings(r=8, targets="all-linear", max_steps=4))
    sweep.clear()
    again = sweep.run(SweepSettings(r=4, targets="q,v", max_steps=4))
    assert again is not first and [s for s, _ in again.train_losses] == [s for s, _ in first.train_losses]
    assert [loss for _, loss in again.train_losses] == pytest.approx([loss for _, loss in first.train_losses], rel=1e-5)
    assert again.eval_loss == pytest.approx(first.eval_loss, rel=1e-5)
    assert not hasattr(sweep.base, "peft_config")
    assert not any("lora" in name for name, _ in sweep.base.named_modules())
    after = _base_weights(sweep.base)
    assert after.keys() == weights.keys() and all(torch.equal(weights[k], after[k]) for k in weights)


@pytest.mark.parametrize("change, expected", [
    ({"alpha": "fixed", "alpha_value": 0}, "lora_alpha must be a number in"),
    ({"rank": 256, "targets": "q,v"}, "r must be at most 128"),
])
def test_bad_slider_combinations_show_a_message_not_a_traceback(panel, change, expected):
    for name, value in change.items():
        getattr(panel, name).value = value
    runs = list(panel.sweep.runs)
    panel.run_button.click()
    assert "Can't run these settings" in panel.message.value and expected in panel.message.value
    assert panel.sweep.runs == runs  # nothing trained, nothing cached


def test_bad_settings_in_the_core_give_an_error_run(sweep):
    assert "learning_rate must be" in sweep.run(learning_rate=0.0).error
    assert "dropout" in sweep.run(lora_dropout=0.9).error
    assert "dataset must be one of" in sweep.run(dataset="preference").error


def test_an_unexpected_failure_is_a_message_too(panel, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(panel.sweep, "run", boom)
    panel.rank.value = 2
    panel.run_button.click()
    assert "The run failed" in panel.message.value and "RuntimeError: out of memory" in panel.message.value


def test_stop_button_stops_a_background_run(sweep):
    panel = SweepPanel(sweep, background=True)
    panel.steps.value = 200
    panel.rank.value = 32
    panel.run_button.click()
    deadline = time.time() + 120
    while not (panel._live is not None and panel._live.train_losses) and time.time() < deadline:
        time.sleep(0.05)
    assert panel.busy
    panel.run_button.click()  # a second Train while busy: refused with a message
    assert "in progress" in panel.message.value
    panel.stop_button.click()
    panel.wait(120)
    assert not panel.busy
    run = sweep.runs[-1]
    assert run.settings.r == 32 and run.stopped and run.steps < 200 and run.eval_loss is not None
    assert "Stopped" in panel.message.value and "(stopped)" in panel.table.value
    assert sweep.cached(run.settings) is None  # a stopped run is shown but trains again when asked


def test_what_if_updates_as_sliders_move():
    calc = WhatIf()
    assert calc.last["trainable"] == count_lora_params(LLAMA2_7B, 16, "all-linear")
    nf4 = calc.last["memory"].total
    calc.quantization.value = "none"
    assert calc.last["memory"].total > 2.5 * nf4  # 16-bit weights: ~13.5 GB of the 14.4
    calc.rank.value = 8
    calc.targets.value = "q,v"
    assert calc.last["trainable"] == 4_194_304 and "4,194,304" in calc.output.value


def test_what_if_tiny_and_custom_shapes(sweep):
    assert dict(vars(tiny_shape()), name="") == dict(vars(sweep.shape), name="")  # config.json = the loaded model
    calc = WhatIf()
    calc.shape.value = "tiny"
    assert calc.last["trainable"] == count_lora_params(sweep.shape, 16, "all-linear")
    assert calc.custom_box.layout.display == "none"
    calc.shape.value = "custom"
    assert calc.custom_box.layout.display == ""
    calc.custom["num_layers"].value = 16
    assert calc.last["shape"] == ModelShape(32000, 4096, 11008, 16, 32, 32, name="custom")
    assert calc.last["trainable"] == count_lora_params(LLAMA2_7B, 16, "all-linear") // 2
    calc.custom["num_attention_heads"].value = 3  # 4096 does not divide by 3
    assert calc.error and "num_attention_heads" in calc.output.value and "Not a valid" in calc.output.value
    calc.custom["num_attention_heads"].value = 32
    assert calc.error is None


def test_runs_on_a_supported_ipywidgets():
    assert int(ipywidgets.__version__.split(".")[0]) in (7, 8)
