"""The sweep panel and the what-if calculator, driven headlessly: set values, click buttons, read the results.
Runs under the installed ipywidgets (8), and again under ipywidgets 7.7 (Colab's) in a subprocess."""

import ipywidgets
import pytest

from lorakit.params import LLAMA2_7B, count_lora_params
from lorakit.widgets import Sweep, SweepPanel, SweepSettings, WhatIf


@pytest.fixture(scope="module")
def panel():
    return SweepPanel(Sweep(n_train=96, n_eval=16), background=False)


def test_clicking_train_runs_plots_and_tabulates(panel):
    panel.steps.value = 10
    panel.run_button.click()
    assert len(panel.sweep.cache) == 1
    run = next(iter(panel.sweep.cache.values()))
    assert run.error is None and len(run.train_losses) >= 4 and run.eval_loss is not None
    assert run.trainable_params == count_lora_params(panel.sweep.shape, 16, "all-linear")
    assert panel.renders >= 2 and "image/png" in panel.plot.outputs[-1]["data"]  # live updates, then the final plot
    assert "<td>16</td>" in panel.table.value and "done" in panel.message.value


def test_moving_a_slider_back_is_instant(panel):
    panel.steps.value = 10
    panel.rank.value = 4
    panel.run_button.click()
    assert len(panel.sweep.cache) == 2
    panel.rank.value = 16
    before = dict(panel.sweep.cache)
    panel.run_button.click()
    assert panel.sweep.cache == before  # cached: no new training


def test_bad_combination_shows_a_message_not_a_traceback(panel):
    panel.lr.value = 1e-6
    panel.sweep.cache.clear()
    panel.dropout.value = 0.5
    bad = SweepSettings(learning_rate=0.0)
    run = panel.sweep.run(bad)
    assert run.error and "learning_rate must be" in run.error
    panel.settings = lambda: bad  # what a widget with an impossible value would send
    panel.run_button.click()
    assert "Can't run these settings" in panel.message.value and "learning_rate" in panel.message.value


def test_stop_button_stops_the_run():
    sweep = Sweep(n_train=96, n_eval=16)
    panel = SweepPanel(sweep, background=False)
    panel.steps.value = 200
    seen = []

    def stop_after_first_log(step, loss):
        seen.append(step)
        panel.stop_button.click()

    run = sweep.run(panel.settings(), on_loss=stop_after_first_log)
    assert run.train_losses[-1][0] < 200 and seen


def test_what_if_updates_as_sliders_move():
    calc = WhatIf()
    assert calc.last["trainable"] == count_lora_params(LLAMA2_7B, 16, "all-linear")
    nf4 = calc.last["memory"].total
    calc.quantization.value = None
    assert calc.last["memory"].total > nf4
    calc.rank.value = 8
    calc.targets.value = "q,v"
    assert calc.last["trainable"] == 4_194_304 and "4,194,304" in calc.output.value


def test_runs_on_a_supported_ipywidgets():
    assert int(ipywidgets.__version__.split(".")[0]) in (7, 8)


@pytest.mark.skipif(int(ipywidgets.__version__.split(".")[0]) == 7, reason="already running under ipywidgets 7")
def test_same_tests_pass_under_ipywidgets_7(tmp_path):
    """Colab ships ipywidgets 7.7: install it beside the venv's packages and run this file again under it."""
    import os
    import subprocess
    import sys

    target = tmp_path / "ipywidgets7"
    install = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target),
                              "ipywidgets==7.7.5", "widgetsnbextension==3.6.*", "jupyterlab_widgets==1.1.*",
                              "ipython_genutils"], capture_output=True, text=True)
    if install.returncode:
        pytest.skip(f"ipywidgets 7.7.5 could not be installed (offline?): {install.stderr[-300:]}")
    env = {**os.environ, "PYTHONPATH": str(target)}
    proc = subprocess.run([sys.executable, "-m", "pytest", __file__, "-q", "-p", "no:cacheprovider"],
                          capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "passed" in proc.stdout.splitlines()[-1]
