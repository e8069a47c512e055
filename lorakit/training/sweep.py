"""The sweep engine behind the chapters' sweep panel: short runs of one shared base model, a fresh LoRA adapter
per point, results cached by settings. No widgets here (`lorakit.lessons.widgets.SweepPanel` draws them).

    from lorakit.training.sweep import Sweep
    sweep = Sweep()                              # loads the built-in model once
    run = sweep.run(r=8, learning_rate=3e-4)     # SweepRun: losses, eval loss, params, memory, seconds (or .error)
"""

from __future__ import annotations

import dataclasses
import html
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from ..config.choices import TARGET_PRESETS, resolve_targets
from ..memory.estimator import estimate
from ..models.shapes import ModelShape, count_lora_params
from .history import series

ALPHA_STRATEGIES = ("2r", "r", "fixed")
TARGET_SETS = tuple(TARGET_PRESETS)
SWEEP_DATASETS = ("instruction", "code", "domain")  # the causal-LM datasets (classification/DPO need other heads)
RANKS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


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

        for module in ("peft", "lorakit.training.pipeline"):  # imported now, so that the first Train click is not the slow one
            importlib.import_module(module)

        if model is None:
            from ..models.load import load_base

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
            from ..data.datasets import load_dataset

            self._data[name] = load_dataset(name, self.tokenizer, n_train=self.n_train, n_eval=self.n_eval,
                                            seed=0, max_length=self.max_length)
        return self._data[name]

    def recipe(self, settings: SweepSettings) -> Any:
        """The validated Recipe for a point (ValueError names the bad field, e.g. learning_rate 0 or alpha 0)."""
        from ..config.recipes import get_recipe

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
        from ..models.hardware import detect

        hardware = detect()
        return "adamw_8bit" if hardware.device == "cuda" and hardware.bitsandbytes else "adamw_torch"

    def estimate_point(self, settings: SweepSettings, precision: str | None = None) -> tuple[int, int]:
        """(trainable parameters, estimated training memory in bytes) for a point, without training."""
        from ..models.hardware import choose_precision

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
        from transformers import set_seed

        from ..compat import versions as compat
        from ..models.hardware import cpu_threads_for
        from .pipeline import prepare_model, train

        start = time.perf_counter()
        self.stop_requested = False
        try:
            recipe = self.recipe(settings)
            data = self.data(settings.dataset)
        except ValueError as err:
            return SweepRun(settings, seconds=time.perf_counter() - start, error=str(err))
        with cpu_threads_for(self.base.device.type, self.cpu_threads):
            set_seed(recipe.seed)  # the adapter's random init too: same settings → same run
            peft_model = prepare_model(recipe, self.base)
            try:
                with tempfile.TemporaryDirectory(prefix="lorakit-sweep-") as out:
                    result = train(recipe, model=peft_model, tokenizer=self.tokenizer, data=data, output_dir=out,
                                   callbacks=[_make_callback(self, on_log)], progress=not self.quiet)
            except ValueError as err:
                return SweepRun(settings, seconds=time.perf_counter() - start, error=str(err))
            finally:
                self.base = compat.unload_adapters(peft_model)  # the original layers back, adapters gone
        trainable, memory = self.estimate_point(settings, result.precision)
        evals = series(result.log_history, "eval_loss", axis="step")
        steps = result.train_losses[-1][0] if result.train_losses else 0
        run = SweepRun(settings, result.train_losses, evals, trainable, memory, time.perf_counter() - start,
                       result.train_seconds, stopped=self.stop_requested and steps < settings.max_steps)
        self.stop_requested = False
        self._runs.pop(settings.key(), None)
        self._runs[settings.key()] = run
        return run
