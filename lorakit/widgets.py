"""Live widgets (chapters 1 and 3): a sweep panel that trains short runs and overlays their loss curves, and a
zero-training "what-if" calculator of parameters and memory.

The logic lives in widget-free classes (`Sweep`, `what_if`) so it is testable without a browser; the panels are thin
and use only ipywidgets APIs present in both 7.7 (Colab) and 8 (JupyterLab 4).
"""

from __future__ import annotations

import base64
import copy
import io
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable

from transformers import TrainerCallback

from .memory import estimate
from .params import LLAMA2_7B, ModelShape, count_lora_params

ALPHA_STRATEGIES = ("2r", "r", "16")
TARGET_SETS = ("q,v", "q,k,v,o", "all-linear")


@dataclass(frozen=True)
class SweepSettings:
    """One point of a sweep: the LoRA and optimisation choices a slider can change."""

    r: int = 16
    alpha_strategy: str = "2r"
    learning_rate: float = 1e-3
    lora_dropout: float = 0.05
    targets: str = "all-linear"
    use_rslora: bool = False
    dataset: str = "instruction"
    max_steps: int = 30

    @property
    def lora_alpha(self) -> float:
        if self.alpha_strategy not in ALPHA_STRATEGIES:
            raise ValueError(f"alpha_strategy must be one of {list(ALPHA_STRATEGIES)}, got {self.alpha_strategy!r}")
        return {"2r": 2 * self.r, "r": self.r, "16": 16}[self.alpha_strategy]

    def label(self) -> str:
        return (f"r={self.r} α={self.lora_alpha:g} lr={self.learning_rate:.0e} drop={self.lora_dropout:g} "
                f"{self.targets}{' rs' if self.use_rslora else ''}")


@dataclass
class SweepRun:
    """The outcome of one sweep point: losses, cost, or the error message that explains why it did not run."""

    settings: SweepSettings
    train_losses: list[tuple[int, float]]
    eval_loss: float | None
    trainable_params: int
    memory_bytes: int
    seconds: float
    train_seconds: float
    error: str | None = None


class _LiveLog(TrainerCallback):
    def __init__(self, on_loss: Callable[[int, float], None] | None, should_stop: Callable[[], bool]) -> None:
        self.on_loss, self.should_stop = on_loss, should_stop

    def on_log(self, args: Any, state: Any, control: Any, logs: dict | None = None, **kwargs: Any) -> None:
        if self.on_loss and logs and "loss" in logs:
            self.on_loss(state.global_step, logs["loss"])
        if self.should_stop():
            control.should_training_stop = True


class Sweep:
    """Short runs of the built-in model, one fresh adapter per settings, cached by settings."""

    def __init__(self, n_train: int = 320, n_eval: int = 48) -> None:
        from .base import load_base

        self.base, self.tokenizer = load_base("tiny")
        self.shape = ModelShape.from_config(self.base.config)
        self.n_train, self.n_eval = n_train, n_eval
        self.cache: dict[SweepSettings, SweepRun] = {}
        self.stop_requested = False
        self._data: dict[str, Any] = {}

    def data(self, name: str) -> Any:
        from .data import load_dataset

        if name not in self._data:
            self._data[name] = load_dataset(name, self.tokenizer, n_train=self.n_train, n_eval=self.n_eval)
        return self._data[name]

    def run(self, settings: SweepSettings, on_loss: Callable[[int, float], None] | None = None,
            output_dir: str = "runs/sweep") -> SweepRun:
        """Train one point (or return the cached run). Invalid settings give a run whose `error` says why."""
        if settings in self.cache:
            return self.cache[settings]
        from .training import train

        start = time.perf_counter()
        self.stop_requested = False
        try:
            trainable = count_lora_params(self.shape, settings.r, settings.targets)
            memory = estimate(self.shape, precision="fp32", optimizer="adamw", r=settings.r, targets=settings.targets,
                              batch=8, seq_len=64).total
            result = train("quickstart", model=copy.deepcopy(self.base), tokenizer=self.tokenizer,
                           data=self.data(settings.dataset), output_dir=output_dir, r=settings.r,
                           lora_alpha=settings.lora_alpha, learning_rate=settings.learning_rate,
                           lora_dropout=settings.lora_dropout, target_modules=settings.targets,
                           use_rslora=settings.use_rslora, max_steps=settings.max_steps, gradient_checkpointing=False,
                           optim="adamw_torch", save_strategy="no", logging_steps=2,
                           callbacks=[_LiveLog(on_loss, lambda: self.stop_requested)])
        except ValueError as err:
            return SweepRun(settings, [], None, 0, 0, time.perf_counter() - start, 0.0, error=str(err))
        run = SweepRun(settings, result.train_losses, result.final_eval_loss, trainable, memory,
                       time.perf_counter() - start, result.train_seconds)
        self.cache[settings] = run
        return run

    def table(self) -> list[dict[str, Any]]:
        """One row per finished run: settings, final eval loss, parameters, estimated memory, time."""
        return [{**asdict(run.settings), "eval_loss": run.eval_loss, "trainable": run.trainable_params,
                 "memory_MiB": run.memory_bytes / 2**20, "seconds": run.seconds} for run in self.cache.values()]


def what_if(shape: ModelShape, r: int, targets: str, precision: str, quantization: str | None,
            gradient_checkpointing: bool, batch: int, seq_len: int) -> dict[str, Any]:
    """Parameters and memory for a model shape as the sliders set them (no training)."""
    breakdown = estimate(shape, precision=precision, quantization=quantization, gradient_checkpointing=gradient_checkpointing,
                         batch=batch, seq_len=seq_len, r=r, targets=targets)
    return {"trainable": count_lora_params(shape, r, targets), "memory": breakdown}


# ------------------------------------------------------------------------------------------------- the panels
def _widgets() -> Any:
    import ipywidgets

    return ipywidgets


class SweepPanel:
    """Sliders → a short training run → live loss curves, a runs table and messages (never a traceback)."""

    def __init__(self, sweep: Sweep | None = None, background: bool = True) -> None:
        w = _widgets()
        self.sweep = sweep or Sweep()
        self.background = background
        self.rank = w.Dropdown(options=[2, 4, 8, 16, 32, 64], value=16, description="rank r")
        self.alpha = w.Dropdown(options=list(ALPHA_STRATEGIES), value="2r", description="alpha")
        self.lr = w.FloatLogSlider(value=1e-3, base=10, min=-6, max=-1, step=0.5, description="LR")
        self.dropout = w.FloatSlider(value=0.05, min=0.0, max=0.5, step=0.05, description="dropout")
        self.targets = w.Dropdown(options=list(TARGET_SETS), value="all-linear", description="targets")
        self.rslora = w.Checkbox(value=False, description="rsLoRA")
        self.steps = w.IntSlider(value=30, min=5, max=200, step=5, description="steps")
        self.run_button = w.Button(description="Train")
        self.stop_button = w.Button(description="Stop")
        self.plot = w.Output()
        self.table = w.HTML()
        self.message = w.HTML()
        self.run_button.on_click(lambda _: self.start())
        self.stop_button.on_click(lambda _: setattr(self.sweep, "stop_requested", True))
        controls = w.VBox([self.rank, self.alpha, self.lr, self.dropout, self.targets, self.rslora, self.steps,
                           w.HBox([self.run_button, self.stop_button])])
        self.widget = w.VBox([w.HBox([controls, self.plot]), self.message, self.table])
        self.renders = 0

    def settings(self) -> SweepSettings:
        return SweepSettings(r=self.rank.value, alpha_strategy=self.alpha.value, learning_rate=self.lr.value,
                             lora_dropout=self.dropout.value, targets=self.targets.value,
                             use_rslora=self.rslora.value, max_steps=self.steps.value)

    def start(self) -> None:
        if self.background:
            import threading

            threading.Thread(target=self._run, daemon=True).start()
        else:
            self._run()

    def _run(self) -> None:
        settings = self.settings()
        live: list[tuple[int, float]] = []
        self.message.value = f"training {settings.label()} …"
        run = self.sweep.run(settings, on_loss=lambda step, loss: (live.append((step, loss)), self._draw(live)))
        if run.error:
            self.message.value = f"<b>Can't run these settings:</b> {run.error}"
            return
        self.message.value = f"done: {settings.label()} in {run.seconds:.1f} s"
        self._draw([])
        self._render_table()

    def _draw(self, live: list[tuple[int, float]]) -> None:
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(5, 3))
        for run in self.sweep.cache.values():
            if run.train_losses:
                ax.plot(*zip(*run.train_losses), label=f"{run.settings.label()} ({run.trainable_params:,} p)")
        if live:
            ax.plot(*zip(*live), "k--", label="running")
        ax.set_xlabel("step")
        ax.set_ylabel("train loss")
        ax.legend(fontsize=6)
        png = io.BytesIO()
        fig.savefig(png, format="png", dpi=80, bbox_inches="tight")
        plt.close(fig)
        # a trait update (not `with output:`) works from the training thread, on ipywidgets 7 and 8
        self.plot.outputs = ({"output_type": "display_data", "metadata": {},
                              "data": {"image/png": base64.b64encode(png.getvalue()).decode(),
                                       "text/plain": "loss curves"}},)
        self.renders += 1

    def _render_table(self) -> None:
        rows = "".join(
            f"<tr><td>{r['r']}</td><td>{r['alpha_strategy']}</td><td>{r['learning_rate']:.0e}</td>"
            f"<td>{r['targets']}</td><td>{r['trainable']:,}</td><td>{r['memory_MiB']:.0f}</td>"
            f"<td>{r['eval_loss']:.3f}</td><td>{r['seconds']:.1f}</td></tr>" for r in self.sweep.table())
        self.table.value = ("<table><tr><th>r</th><th>alpha</th><th>LR</th><th>targets</th><th>trainable</th>"
                            f"<th>est. MiB</th><th>eval loss</th><th>s</th></tr>{rows}</table>")


class WhatIf:
    """Sliders over a model shape and LoRA/memory settings → parameters and an estimated memory breakdown."""

    SHAPES = {"LLaMA-2-7B": LLAMA2_7B}

    def __init__(self, shapes: dict[str, ModelShape] | None = None) -> None:
        w = _widgets()
        self.shapes = {**self.SHAPES, **(shapes or {})}
        self.shape = w.Dropdown(options=list(self.shapes), value="LLaMA-2-7B", description="model")
        self.rank = w.Dropdown(options=[4, 8, 16, 32, 64, 128], value=16, description="rank r")
        self.targets = w.Dropdown(options=list(TARGET_SETS), value="all-linear", description="targets")
        self.precision = w.Dropdown(options=["bf16", "fp16", "fp32"], value="bf16", description="precision")
        self.quantization = w.Dropdown(options=[("none", None), ("NF4", "nf4"), ("int8", "int8")], value="nf4",
                                       description="weights")
        self.checkpointing = w.Checkbox(value=True, description="gradient checkpointing")
        self.batch = w.IntSlider(value=1, min=1, max=32, description="batch")
        self.seq_len = w.IntSlider(value=512, min=64, max=8192, step=64, description="seq len")
        self.output = w.HTML()
        self.controls = [self.shape, self.rank, self.targets, self.precision, self.quantization, self.checkpointing,
                         self.batch, self.seq_len]
        for control in self.controls:
            control.observe(lambda _: self.update(), names="value")
        self.widget = w.VBox([*self.controls, self.output])
        self.update()

    def update(self) -> None:
        numbers = what_if(self.shapes[self.shape.value], self.rank.value, self.targets.value, self.precision.value,
                          self.quantization.value, self.checkpointing.value, self.batch.value, self.seq_len.value)
        rows = "".join(f"<tr><td>{k}</td><td>{v:.2f} GiB</td></tr>" for k, v in numbers["memory"].gib().items())
        self.output.value = (f"<b>trainable parameters: {numbers['trainable']:,}</b><table>{rows}</table>")
        self.last = numbers
