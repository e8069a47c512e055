"""Live widgets (chapters 1, 3 and 4): a sweep panel that trains short runs of the built-in model and overlays their
loss curves, and a zero-training "what-if" calculator of trainable parameters and memory.

The logic lives in widget-free code (`Sweep`, `SweepSettings`, `SweepRun`, `what_if`), testable without a browser;
the panels (`SweepPanel`, `WhatIf`) are thin and use only ipywidgets APIs present in both 7.7 (Colab) and
8 (JupyterLab 4): Output, HTML, IntSlider, FloatSlider, FloatLogSlider, Dropdown, Checkbox, Button, VBox/HBox,
`observe`, `on_click`, `layout.display`.

    from lorakit.widgets import Sweep, SweepPanel, WhatIf
    sweep = Sweep()                      # loads the built-in model once
    run = sweep.run(r=8, learning_rate=3e-4)   # SweepRun: losses, eval loss, params, memory, seconds (or .error)
    SweepPanel(sweep).widget             # the same, with sliders, live curves, a stop button and a runs table
    WhatIf().widget                      # parameters and memory for tiny / LLaMA-2-7B / a custom shape

Importing this module does not import torch (the what-if calculator needs none); `Sweep` imports it when created.
"""

from __future__ import annotations

import base64
import dataclasses
import html
import io
import json
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .memory import estimate
from .params import LLAMA2_7B, ModelShape, count_base_params, count_lora_params
from .vocab import DTYPE_NAMES, STATE_OPTIMIZERS, TARGET_PRESETS, resolve_targets

ALPHA_STRATEGIES = ("2r", "r", "fixed")
TARGET_SETS = tuple(TARGET_PRESETS)
SWEEP_DATASETS = ("instruction", "code", "domain")  # the causal-LM datasets (classification/DPO need other heads)
RANKS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
TINY_CONFIG = Path(__file__).parent / "assets" / "tiny" / "config.json"


# ------------------------------------------------------------------------------------------------ sweep core
@dataclass(frozen=True)
class SweepSettings:
    """One point of a sweep: the choices the panel's sliders set.

    alpha_strategy: "2r" (alpha = 2·r, the guide's default), "r" (alpha = r) or "fixed" (alpha = `alpha`, 16 by
    default, whatever the rank).
    """

    r: int = 16
    alpha_strategy: str = "2r"
    alpha: float = 16.0
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
        return {"2r": 2 * self.r, "r": self.r}.get(self.alpha_strategy, self.alpha)

    def key(self) -> tuple:
        """What identifies a run: two settings with the same key train the same adapter (slider floats rounded)."""
        try:
            alpha = float(self.lora_alpha)
        except (TypeError, ValueError):
            alpha = self.alpha_strategy
        return (self.r, alpha, float(f"{self.learning_rate:.6g}"), round(float(self.lora_dropout), 6), self.targets,
                bool(self.use_rslora), self.dataset, self.max_steps)

    def label(self) -> str:
        return (f"r={self.r} α={self.lora_alpha:g} lr={self.learning_rate:.1e} drop={self.lora_dropout:g} "
                f"{self.targets}{' rsLoRA' if self.use_rslora else ''}"
                f"{'' if self.dataset == 'instruction' else ' ' + self.dataset}")


@dataclass
class SweepRun:
    """One sweep point's outcome: curves, cost, or the message that says why it did not run (`error`)."""

    settings: SweepSettings
    train_losses: list[tuple[int, float]] = field(default_factory=list)
    eval_losses: list[tuple[int, float]] = field(default_factory=list)
    trainable_params: int = 0
    memory_bytes: int = 0
    seconds: float = 0.0
    train_seconds: float = 0.0
    stopped: bool = False
    error: str | None = None

    @property
    def eval_loss(self) -> float | None:
        """The final eval loss (None when the run failed or had no eval set)."""
        return self.eval_losses[-1][1] if self.eval_losses else None

    @property
    def steps(self) -> int:
        return self.train_losses[-1][0] if self.train_losses else 0


def _make_callback(sweep: "Sweep", on_log: Callable[[str, int, float], None] | None) -> Any:
    from transformers import TrainerCallback

    class LiveLog(TrainerCallback):
        """Forward each logged train/eval loss as it arrives; stop when the sweep's stop flag is set."""

        def on_log(self, args: Any, state: Any, control: Any, logs: dict | None = None, **kwargs: Any) -> None:
            for kind, name in (("train", "loss"), ("eval", "eval_loss")):
                if logs and name in logs and on_log is not None:
                    on_log(kind, state.global_step, float(logs[name]))
            if sweep.stop_requested:
                control.should_training_stop = True

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if sweep.stop_requested:
                control.should_training_stop = True

    return LiveLog()


class Sweep:
    """Short runs of one base model (loaded once), a fresh LoRA adapter per point, results cached by settings.

    On CPU a run uses at most `cpu_threads` torch threads (restored afterwards): the tiny model's matrices are so
    small that one thread beats two, by 20× on a shared 2-core machine (10 steps: 4 s instead of 89 s). None keeps
    torch's (within the container's CPU quota, as every `lorakit.train` run).

    Each run: LoRA injected into the shared base with peft's `get_peft_model`, trained by `lorakit.train` (no
    gradient checkpointing, AdamW, no checkpoints, output in a temporary folder, eval at the end), then removed with
    `unload()`, which puts the original linear layers back: the next run starts from the untouched base. (Injecting
    and unloading costs about half of a deepcopy of the base, and the tests check that no adapter leaks: a rerun of
    the same settings gives the same losses.)
    """

    def __init__(self, model: Any = None, tokenizer: Any = None, n_train: int = 256, n_eval: int = 32,
                 batch_size: int = 8, logging_steps: int = 2, max_length: int = 256, seed: int = 42,
                 cpu_threads: int | None = 1, quiet: bool = True) -> None:
        import importlib

        for module in ("peft", "lorakit.training"):  # imported now, so that the first Train click is not the slow one
            importlib.import_module(module)

        if model is None:
            from .base import load_base

            model, tokenizer = load_base("tiny")
        if tokenizer is None:
            raise ValueError("tokenizer must be given with a model (load both with lorakit.load_base)")
        self.base, self.tokenizer = model, tokenizer
        self.shape = ModelShape.from_config(model.config)
        self.n_train, self.n_eval, self.batch_size = n_train, n_eval, batch_size
        self.logging_steps, self.max_length, self.seed = logging_steps, max_length, seed
        self.cpu_threads, self.quiet = cpu_threads, quiet
        self.stop_requested = False
        self._runs: dict[tuple, SweepRun] = {}
        self._data: dict[str, Any] = {}
        self._lock = threading.Lock()

    # -- results
    @property
    def runs(self) -> list[SweepRun]:
        """Finished runs (failed settings excluded), oldest first; a rerun of stopped settings replaces it."""
        return list(self._runs.values())

    def cached(self, settings: SweepSettings) -> SweepRun | None:
        """The finished, unstopped run for these settings, if any."""
        run = self._runs.get(settings.key())
        return run if run is not None and not run.stopped else None

    def clear(self) -> None:
        self._runs.clear()

    def table(self) -> list[dict[str, Any]]:
        """One row per finished run: its settings, trainable parameters, estimated memory, eval loss and time."""
        return [{**dataclasses.asdict(run.settings), "lora_alpha": run.settings.lora_alpha,
                 "trainable": run.trainable_params, "memory_MiB": run.memory_bytes / 2**20,
                 "eval_loss": run.eval_loss, "steps": run.steps, "seconds": run.seconds, "stopped": run.stopped}
                for run in self.runs]

    def table_html(self, highlight: SweepSettings | None = None) -> str:
        """The runs table as HTML (the current settings' row in bold)."""
        if not self._runs:
            return "<i>No runs yet: choose settings and press Train.</i>"
        key = highlight.key() if highlight is not None else None
        head = ("<tr><th>#</th><th>data</th><th>r</th><th>α</th><th>LR</th><th>dropout</th><th>targets</th>"
                "<th>rsLoRA</th><th>trainable</th><th>est. memory</th><th>steps</th><th>eval loss</th>"
                "<th>time</th></tr>")
        rows = []
        for i, (run_key, run) in enumerate(self._runs.items(), 1):
            s = run.settings
            loss = "–" if run.eval_loss is None else f"{run.eval_loss:.3f}"
            cells = [i, s.dataset, s.r, f"{s.lora_alpha:g}", f"{s.learning_rate:.1e}", f"{s.lora_dropout:g}",
                     s.targets, "yes" if s.use_rslora else "", f"{run.trainable_params:,}",
                     f"{run.memory_bytes / 2**20:.0f} MiB", f"{run.steps}{' (stopped)' if run.stopped else ''}",
                     loss, f"{run.seconds:.1f} s"]
            style = ' style="font-weight:bold"' if run_key == key else ""
            cells_html = "".join(f"<td>{html.escape(str(c), quote=False)}</td>" for c in cells)
            rows.append(f"<tr{style}>{cells_html}</tr>")
        return f"<table>{head}{''.join(rows)}</table>"

    # -- inputs
    def data(self, name: str) -> Any:
        """The tokenised dataset `name` (loaded once)."""
        if name not in SWEEP_DATASETS:
            raise ValueError(f"dataset must be one of {list(SWEEP_DATASETS)} for a sweep, got {name!r}")
        if name not in self._data:
            from .data import load_dataset

            self._data[name] = load_dataset(name, self.tokenizer, n_train=self.n_train, n_eval=self.n_eval,
                                            seed=0, max_length=self.max_length)
        return self._data[name]

    def recipe(self, settings: SweepSettings) -> Any:
        """The validated Recipe for a point (ValueError names the bad field, e.g. learning_rate 0 or alpha 0)."""
        from .recipes import get_recipe

        if settings.targets not in TARGET_SETS:
            raise ValueError(f"targets must be one of {list(TARGET_SETS)}, got {settings.targets!r}")
        recipe = get_recipe("quickstart").replace(
            name="sweep", dataset=settings.dataset, r=settings.r, lora_alpha=settings.lora_alpha,
            lora_dropout=settings.lora_dropout, target_modules=settings.targets, use_rslora=settings.use_rslora,
            learning_rate=settings.learning_rate, max_steps=settings.max_steps, warmup_ratio=0.1,
            per_device_train_batch_size=self.batch_size, gradient_checkpointing=False, optim=self._optimizer(),
            precision="auto", save_strategy="no", eval_strategy="epoch", logging_steps=self.logging_steps,
            max_length=self.max_length, seed=self.seed, n_train=None, n_eval=None,
        )
        self._check_rank(settings)
        return recipe

    def _check_rank(self, settings: SweepSettings) -> None:
        shapes = self.shape.linear_shapes()
        narrowest = min(resolve_targets(settings.targets), key=lambda n: min(shapes[n]))
        limit = min(shapes[narrowest])
        if settings.r > limit:
            raise ValueError(
                f"r must be at most {limit} for targets {settings.targets!r} on this model: {narrowest} maps "
                f"{shapes[narrowest][0]} → {shapes[narrowest][1]}, so B·A has rank at most {limit}; "
                f"got r={settings.r}")

    def _optimizer(self) -> str:
        from .hardware import detect

        hardware = detect()
        return "adamw_8bit" if hardware.device == "cuda" and hardware.bitsandbytes else "adamw_torch"

    def estimate_point(self, settings: SweepSettings, precision: str | None = None) -> tuple[int, int]:
        """(trainable parameters, estimated training memory in bytes) for a point, without training."""
        from .hardware import choose_precision

        trainable = count_lora_params(self.shape, settings.r, settings.targets)
        data = self.data(settings.dataset)
        seq_len = max(len(ids) for ids in data.train["input_ids"])
        precision = precision or choose_precision("auto")
        optimizer = "adamw_8bit" if self._optimizer() == "adamw_8bit" else "adamw"
        memory = estimate(self.shape, precision=precision, optimizer=optimizer, gradient_checkpointing=False,
                          batch=self.batch_size, seq_len=seq_len, r=settings.r, targets=settings.targets).total
        return trainable, memory

    # -- running
    def stop(self) -> None:
        """Ask the run in progress to stop after its current step (it still evaluates and is kept, marked stopped)."""
        self.stop_requested = True

    def run(self, settings: SweepSettings | None = None, on_log: Callable[[str, int, float], None] | None = None,
            **changes: Any) -> SweepRun:
        """Train one point, or return the cached run for the same settings at once.

        `changes` override fields of `settings` (default `SweepSettings()`): `sweep.run(r=8)`. `on_log(kind, step,
        loss)` is called as "train" and "eval" losses are logged. Invalid settings give a run whose `error` holds
        the message (not cached, nothing trained).
        """
        settings = dataclasses.replace(settings or SweepSettings(), **changes)
        cached = self.cached(settings)
        if cached is not None:
            return cached
        with self._lock:
            return self._train(settings, on_log)

    def _train(self, settings: SweepSettings, on_log: Callable[[str, int, float], None] | None) -> SweepRun:
        from peft import get_peft_model
        from transformers import set_seed

        from .hardware import cpu_threads_for
        from .training import train

        start = time.perf_counter()
        self.stop_requested = False
        try:
            recipe = self.recipe(settings)
            data = self.data(settings.dataset)
        except ValueError as err:
            return SweepRun(settings, seconds=time.perf_counter() - start, error=str(err))
        with cpu_threads_for(self.base.device.type, self.cpu_threads):
            set_seed(recipe.seed)  # the adapter's random init too: same settings → same run
            peft_model = get_peft_model(self.base, recipe.lora_config(self.base))
            try:
                with tempfile.TemporaryDirectory(prefix="lorakit-sweep-") as out:
                    result = train(recipe, model=peft_model, tokenizer=self.tokenizer, data=data, output_dir=out,
                                   callbacks=[_make_callback(self, on_log)], progress=not self.quiet)
            except ValueError as err:
                return SweepRun(settings, seconds=time.perf_counter() - start, error=str(err))
            finally:
                self.base = peft_model.unload()  # the original layers back, adapters gone
        trainable, memory = self.estimate_point(settings, result.precision)
        evals = [(h["step"], h["eval_loss"]) for h in result.log_history if "eval_loss" in h]
        steps = result.train_losses[-1][0] if result.train_losses else 0
        run = SweepRun(settings, result.train_losses, evals, trainable, memory, time.perf_counter() - start,
                       result.train_seconds, stopped=self.stop_requested and steps < settings.max_steps)
        self.stop_requested = False
        self._runs.pop(settings.key(), None)
        self._runs[settings.key()] = run
        return run


def loss_figure(runs: list[SweepRun], live: SweepRun | None = None, highlight: SweepSettings | None = None) -> Any:
    """A matplotlib Figure: each run's train-loss line and final eval loss (dot, same colour); `live` dashed."""
    from matplotlib.figure import Figure  # no pyplot: safe from the training thread, no global state

    fig = Figure(figsize=(6.4, 3.6))
    ax = fig.subplots()
    key = highlight.key() if highlight is not None else None
    for run in runs:
        if not run.train_losses:
            continue
        label = f"{run.settings.label()} · {run.trainable_params:,} params · {run.memory_bytes / 2**20:.0f} MiB"
        width = 2.5 if run.settings.key() == key else 1.2
        (line,) = ax.plot(*zip(*run.train_losses), label=label, linewidth=width)
        if run.eval_losses:
            ax.plot(*zip(*run.eval_losses), "o", color=line.get_color(), markersize=6)
    if live is not None and live.train_losses:
        ax.plot(*zip(*live.train_losses), "k--", linewidth=1.5, label=f"running: {live.settings.label()}")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (line: train, dot: eval)")
    if ax.lines:
        ax.legend(fontsize=6, loc="upper right")
    fig.tight_layout()
    return fig


def _png_output(fig: Any) -> dict:
    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=80)
    return {"output_type": "display_data", "metadata": {},
            "data": {"image/png": base64.b64encode(png.getvalue()).decode(), "text/plain": "<loss curves>"}}


# ------------------------------------------------------------------------------------------------ what-if core
def tiny_shape() -> ModelShape:
    """The built-in model's shape, read from its config.json (no torch, no weights)."""
    config = json.loads(TINY_CONFIG.read_text())
    return ModelShape(config["vocab_size"], config["hidden_size"], config["intermediate_size"],
                      config["num_hidden_layers"], config["num_attention_heads"], config["num_key_value_heads"],
                      head_dim=config.get("head_dim"), tie_word_embeddings=bool(config.get("tie_word_embeddings")),
                      name="lorakit tiny")


def what_if(shape: ModelShape, r: int = 16, targets: str = "all-linear", precision: str = "bf16",
            quantization: str | None = None, gradient_checkpointing: bool = False, batch: int = 1,
            seq_len: int = 512, optimizer: str = "paged_adamw_8bit") -> dict[str, Any]:
    """Trainable parameters, their share of the base model and the estimated training memory (no training)."""
    breakdown = estimate(shape, precision=precision, quantization=quantization, optimizer=optimizer,
                         gradient_checkpointing=gradient_checkpointing, batch=batch, seq_len=seq_len, r=r,
                         targets=targets)
    trainable = count_lora_params(shape, r, targets)
    base = count_base_params(shape)
    return {"shape": shape, "trainable": trainable, "base_params": base, "percent": 100 * trainable / base,
            "memory": breakdown}


# ------------------------------------------------------------------------------------------------ the panels
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
        self.plot.outputs = (_png_output(self.figure),)
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


__all__ = ["ALPHA_STRATEGIES", "TARGET_SETS", "SWEEP_DATASETS", "SweepSettings", "SweepRun", "Sweep", "SweepPanel",
           "WhatIf", "what_if", "tiny_shape", "loss_figure"]
