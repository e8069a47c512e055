"""Live widgets (chapters 1, 3 and 4): the sweep panel (sliders over `lorakit.training.sweep.Sweep`, live loss curves, a
runs table) and the what-if calculator (sliders over `lorakit.memory.calculator.what_if`).

The logic lives in widget-free modules (`lorakit.training.sweep`, `lorakit.memory.calculator`, `lorakit.lessons.plots`), testable without a
browser; the panels here are thin and use only ipywidgets APIs present in both 7.7 (Colab) and 8 (JupyterLab 4):
Output, HTML, IntSlider, FloatSlider, FloatLogSlider, Dropdown, Checkbox, Button, VBox/HBox, `observe`,
`on_click`, `layout.display`.

    from lorakit.lessons.widgets import SweepPanel, WhatIf
    SweepPanel().widget                  # sliders, live curves, a stop button and a runs table
    WhatIf().widget                      # parameters and memory for tiny / LLaMA-2-7B / a custom shape

Importing this module does not import torch (the what-if calculator needs none); `Sweep` imports it when created.
"""

from __future__ import annotations

import html
import threading
import time
from typing import Any

from ..config.choices import DTYPE_NAMES, STATE_OPTIMIZERS
from ..memory.calculator import what_if
from ..models.shapes import LLAMA2_7B, ModelShape, tiny_shape
from ..training.sweep import RANKS, SWEEP_DATASETS, TARGET_SETS, Sweep, SweepRun, SweepSettings
from .plots import loss_figure, png_output


def _widgets() -> Any:
    import ipywidgets

    return ipywidgets


_WIDE = {"description_width": "90px"}  # a style dict works on ipywidgets 7 and 8


def _error_html(prefix: str, err: BaseException | str) -> str:
    """A red one-line message: a ValueError's text as is, other exceptions with their type."""
    text = str(err) if isinstance(err, (str, ValueError)) else f"{type(err).__name__}: {err}"
    return (f'<span style="color:#b00020"><b>{html.escape(prefix, quote=False)}</b> '
            f'{html.escape(text, quote=False)}</span>')


class SweepPanel:
    """Sliders → a short training run → live loss curves, a runs table, messages (never a traceback).

    `background=True` (the default in notebooks) trains in a thread so the kernel still answers the Stop button;
    tests pass `background=False` or call `wait()`.
    """

    def __init__(self, sweep: Sweep | None = None, background: bool = True) -> None:
        w = _widgets()
        self.sweep = sweep if sweep is not None else Sweep()
        self.background = background
        self.thread: threading.Thread | None = None
        self.figure: Any = None
        self.renders = 0
        self._last_render = 0.0
        self._live: SweepRun | None = None
        self.dataset = w.Dropdown(options=list(SWEEP_DATASETS), value="instruction", description="dataset", style=_WIDE)
        self.rank = w.Dropdown(options=list(RANKS), value=16, description="rank r", style=_WIDE)
        self.alpha = w.Dropdown(options=[("α = 2r", "2r"), ("α = r", "r"), ("fixed α", "fixed")], value="2r",
                                description="alpha", style=_WIDE)
        self.alpha_value = w.IntSlider(value=16, min=0, max=128, description="fixed α", style=_WIDE)
        self.lr = w.FloatLogSlider(value=1e-3, base=10, min=-6, max=-1, step=0.5, description="LR",
                                   readout_format=".1e", style=_WIDE)
        self.dropout = w.FloatSlider(value=0.05, min=0.0, max=0.5, step=0.05, description="dropout", style=_WIDE)
        self.targets = w.Dropdown(options=list(TARGET_SETS), value="all-linear", description="targets", style=_WIDE)
        self.rslora = w.Checkbox(value=False, description="rsLoRA (α/√r)", style=_WIDE)
        self.steps = w.IntSlider(value=30, min=5, max=200, step=5, description="steps", style=_WIDE)
        self.run_button = w.Button(description="Train", button_style="primary", icon="play")
        self.stop_button = w.Button(description="Stop", button_style="danger", icon="stop")
        self.clear_button = w.Button(description="Clear runs")
        self.info = w.HTML()
        self.message = w.HTML()
        self.plot = w.Output()
        self.table = w.HTML()
        self.run_button.on_click(lambda _: self.start())
        self.stop_button.on_click(lambda _: self.sweep.stop())
        self.clear_button.on_click(lambda _: self.clear())
        self.controls = [self.dataset, self.rank, self.alpha, self.alpha_value, self.lr, self.dropout, self.targets,
                         self.rslora, self.steps]
        for control in self.controls:
            control.observe(lambda _: self.refresh(), names="value")
        left = w.VBox([*self.controls, w.HBox([self.run_button, self.stop_button, self.clear_button]), self.info])
        self.widget = w.VBox([w.HBox([left, self.plot]), self.message, self.table])
        self.refresh()

    def _ipython_display_(self) -> None:  # `panel` alone in a cell shows the widget
        from IPython.display import display

        display(self.widget)

    def settings(self) -> SweepSettings:
        return SweepSettings(r=self.rank.value, alpha_strategy=self.alpha.value, alpha=float(self.alpha_value.value),
                             learning_rate=float(self.lr.value), lora_dropout=float(self.dropout.value),
                             targets=self.targets.value, use_rslora=bool(self.rslora.value),
                             dataset=self.dataset.value, max_steps=self.steps.value)

    @property
    def busy(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def refresh(self) -> None:
        """Sliders moved: show the point's parameters and memory, and its result at once when it already ran."""
        try:
            self.alpha_value.layout.display = "" if self.alpha.value == "fixed" else "none"
            settings = self.settings()
            trainable, memory = self.sweep.estimate_point(settings)
            self.info.value = (f"trainable parameters: <b>{trainable:,}</b><br>"
                               f"estimated training memory: <b>{memory / 2**20:.0f} MiB</b>")
            done = self.sweep.cached(settings)
            if done is not None and not self.busy:
                self.message.value = (f"Already ran {html.escape(settings.label(), quote=False)}: eval loss "
                                      f"{done.eval_loss:.3f} (highlighted)" if done.eval_loss is not None else "")
                self._draw(highlight=settings)
                self.table.value = self.sweep.table_html(highlight=settings)
        except Exception as err:  # noqa: BLE001 - a panel shows messages, not tracebacks
            self.info.value = _error_html("", err)

    def start(self) -> None:
        """The Train button: run the current settings (in a thread when `background`)."""
        if self.busy:
            self.message.value = "A run is in progress: press Stop first, or wait for it to finish."
            return
        settings = self.settings()
        if self.background:
            self.thread = threading.Thread(target=self._run, args=(settings,), daemon=True)
            self.thread.start()
        else:
            self._run(settings)

    def wait(self, timeout: float | None = None) -> None:
        """Block until the run in progress (if any) finishes."""
        if self.thread is not None:
            self.thread.join(timeout)

    def clear(self) -> None:
        if self.busy:
            self.message.value = "A run is in progress: stop it before clearing."
            return
        self.sweep.clear()
        self._draw()
        self.table.value = self.sweep.table_html()
        self.message.value = "Runs cleared."

    def _run(self, settings: SweepSettings) -> None:
        try:
            cached = self.sweep.cached(settings)
            if cached is not None:
                self.message.value = f"Cached: {html.escape(settings.label(), quote=False)} (no training needed)"
            else:
                self.message.value = f"Training {html.escape(settings.label(), quote=False)} …"
                self._live = SweepRun(settings)
            run = self.sweep.run(settings, on_log=self._on_log)
            self._live = None
            if run.error:
                self.message.value = _error_html("Can't run these settings:", run.error)
                return
            if cached is None:
                loss = "–" if run.eval_loss is None else f"{run.eval_loss:.3f}"
                verb = "Stopped" if run.stopped else "Done"
                self.message.value = (f"{verb}: {html.escape(settings.label(), quote=False)} — eval loss {loss} "
                                      f"after {run.steps} steps in {run.seconds:.1f} s")
            self._draw(highlight=settings)
            self.table.value = self.sweep.table_html(highlight=settings)
        except Exception as err:  # noqa: BLE001 - a panel shows messages, not tracebacks
            self._live = None
            self.message.value = _error_html("The run failed:", err)

    def _on_log(self, kind: str, step: int, loss: float) -> None:
        if self._live is None:
            return
        (self._live.train_losses if kind == "train" else self._live.eval_losses).append((step, loss))
        if kind == "train" and time.perf_counter() - self._last_render > 0.4:  # a redraw costs ~50 ms: throttle
            self._draw()

    def _draw(self, highlight: SweepSettings | None = None) -> None:
        self.figure = loss_figure(self.sweep.runs, self._live, highlight)
        # a trait update (not `with output:`) works from the training thread, on ipywidgets 7 and 8
        self.plot.outputs = (png_output(self.figure),)
        self.renders += 1
        self._last_render = time.perf_counter()


class WhatIf:
    """Sliders over a model shape and the LoRA/memory choices → trainable parameters and a memory breakdown.

    Shapes: the built-in tiny model, LLaMA-2-7B, anything passed in `shapes`, and "custom" (its own sliders).
    """

    SHAPES: dict[str, ModelShape] = {"LLaMA-2-7B": LLAMA2_7B}

    def __init__(self, shapes: dict[str, ModelShape] | None = None, shape: str = "LLaMA-2-7B") -> None:
        w = _widgets()
        self.shapes: dict[str, ModelShape] = {"tiny": tiny_shape(), **self.SHAPES, **(shapes or {})}
        self.shape = w.Dropdown(options=[*self.shapes, "custom"], value=shape, description="model", style=_WIDE)
        c = LLAMA2_7B
        self.custom = {
            "hidden_size": w.IntSlider(value=c.hidden_size, min=64, max=16384, step=64, description="hidden",
                                       style=_WIDE),
            "intermediate_size": w.IntSlider(value=c.intermediate_size, min=64, max=65536, step=64,
                                             description="MLP width", style=_WIDE),
            "num_layers": w.IntSlider(value=c.num_layers, min=1, max=128, description="layers", style=_WIDE),
            "num_attention_heads": w.IntSlider(value=c.num_attention_heads, min=1, max=128, description="heads",
                                               style=_WIDE),
            "num_key_value_heads": w.IntSlider(value=c.num_key_value_heads, min=1, max=128, description="KV heads",
                                               style=_WIDE),
            "vocab_size": w.IntSlider(value=c.vocab_size, min=256, max=262144, step=256, description="vocab",
                                      style=_WIDE),
        }
        self.rank = w.Dropdown(options=list(RANKS), value=16, description="rank r", style=_WIDE)
        self.targets = w.Dropdown(options=list(TARGET_SETS), value="all-linear", description="targets", style=_WIDE)
        self.precision = w.Dropdown(options=list(DTYPE_NAMES), value="bf16", description="precision",
                                    style=_WIDE)
        self.quantization = w.Dropdown(options=[("none (16/32-bit)", "none"), ("NF4 (QLoRA)", "nf4"), ("int8", "int8")],
                                       value="nf4", description="base weights", style=_WIDE)
        self.optimizer = w.Dropdown(options=list(STATE_OPTIMIZERS),
                                    value="paged_adamw_8bit", description="optimizer", style=_WIDE)
        self.checkpointing = w.Checkbox(value=True, description="gradient checkpointing", style=_WIDE)
        self.batch = w.IntSlider(value=1, min=1, max=64, description="batch", style=_WIDE)
        self.seq_len = w.IntSlider(value=512, min=64, max=8192, step=64, description="seq len", style=_WIDE)
        self.output = w.HTML()
        self.last: dict[str, Any] = {}
        self.error: str | None = None
        self.controls = [self.shape, *self.custom.values(), self.rank, self.targets, self.precision,
                         self.quantization, self.optimizer, self.checkpointing, self.batch, self.seq_len]
        for control in self.controls:
            control.observe(lambda _: self.update(), names="value")
        self.custom_box = w.VBox(list(self.custom.values()))
        self.widget = w.HBox([w.VBox([self.shape, self.custom_box, *self.controls[1 + len(self.custom):]]),
                              self.output])
        self.update()

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)

    def current_shape(self) -> ModelShape:
        if self.shape.value != "custom":
            return self.shapes[self.shape.value]
        return ModelShape(name="custom", **{name: slider.value for name, slider in self.custom.items()})

    def update(self) -> None:
        """Recompute for the sliders' values; an impossible shape shows its message instead of numbers."""
        self.custom_box.layout.display = "" if self.shape.value == "custom" else "none"
        try:
            quantization = None if self.quantization.value == "none" else self.quantization.value
            numbers = what_if(self.current_shape(), self.rank.value, self.targets.value, self.precision.value,
                              quantization, self.checkpointing.value, self.batch.value, self.seq_len.value,
                              self.optimizer.value)
        except ValueError as err:
            self.error = str(err)
            self.output.value = _error_html("Not a valid model/setting:", err)
            return
        self.error = None
        self.last = numbers
        gib = numbers["memory"].gib()
        rows = "".join(f"<tr><td>{name.replace('_', ' ')}</td><td style='text-align:right'>{value:.3f} GiB</td></tr>"
                       for name, value in gib.items() if name != "total")
        self.output.value = (
            f"<b>trainable parameters: {numbers['trainable']:,}</b> ({numbers['percent']:.3f}% of "
            f"{numbers['base_params'] / 1e9:.3g} B)<br><b>estimated training memory: {gib['total']:.2f} GiB</b>"
            f"<table>{rows}</table>")


__all__ = ["SweepPanel", "WhatIf"]
