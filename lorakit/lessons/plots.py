"""Loss curves with matplotlib (an optional dependency: the `course` extra): one run's (`plot_losses`, with baselines
when given), a lesson's few runs side by side (`compare_train_losses`), and the sweep panel's overlay of many
(`loss_figure`, drawn without pyplot so it is safe from a training thread)."""

from __future__ import annotations

import base64
import io
import itertools
from pathlib import Path
from typing import Any

from ..training.history import series


def plot_losses(log_history: list[dict[str, float]], path: str | Path | None = None, title: str = "",
                ax: Any = None, baselines: dict[str, float] | None = None) -> Any:
    """Plot train loss per step and eval loss per evaluation; save to `path` when given. Returns the Axes.

    `baselines` ({label: loss}, e.g. uniform guessing ln V, the base model's eval loss) adds a grey line each and
    starts the loss axis at 0, so that a small wobble is drawn at its true size rather than across the whole plot."""
    import matplotlib

    if path is not None and ax is None:
        matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    train = series(log_history, "loss", axis="step")
    evals = series(log_history, "eval_loss", axis="step")
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))
    if train:
        ax.plot(*zip(*train), label="train loss")
    if evals:
        ax.plot(*zip(*evals), "o-", label="eval loss")
    if baselines:
        draw_baselines(ax, baselines)
        ax.set_ylim(bottom=0)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("cross-entropy loss")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    if path is not None:
        ax.figure.tight_layout()
        ax.figure.savefig(path, dpi=100)
        plt.close(ax.figure)
    return ax


def compare_train_losses(curves: dict[str, list[tuple[float, float]]],
                         baselines: dict[str, float] | None = None) -> Any:
    """One pyplot axes with a train-loss line per labelled run ({label: TrainResult.train_losses}) and a grey
    horizontal line per baseline ({label: loss}, e.g. uniform guessing ln V, the base model's eval loss); returns it."""
    import matplotlib.pyplot as plt

    _, ax = plt.subplots(figsize=(7, 3.5))
    for label, losses in curves.items():
        ax.plot(*zip(*losses), label=label)
    draw_baselines(ax, baselines or {})
    ax.set_xlabel("step")
    ax.set_ylabel("train loss")
    ax.legend()
    return ax


def draw_baselines(ax: Any, baselines: dict[str, float]) -> None:
    """A grey horizontal line per labelled baseline loss, each in its own dash style."""
    for (label, loss), style in zip(baselines.items(), itertools.cycle((":", "--", "-."))):
        ax.axhline(loss, linestyle=style, color="0.4", label=label)


def loss_figure(runs: list[Any], live: Any = None, highlight: Any = None) -> Any:
    """A matplotlib Figure of `lorakit.training.sweep.SweepRun`s: each run's train-loss line and eval losses (dots, same
    colour), `live` (the run in progress) dashed, the `highlight` settings' line thicker."""
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


def png_output(fig: Any) -> dict:
    """`fig` as a Jupyter display_data output (PNG), for setting an ipywidgets Output's `outputs` directly."""
    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=80)
    return {"output_type": "display_data", "metadata": {},
            "data": {"image/png": base64.b64encode(png.getvalue()).decode(), "text/plain": "<loss curves>"}}


def plot_memory_breakdown(breakdowns: dict[str, Any], stated_gb: dict[str, float] | None = None) -> Any:
    """A stacked horizontal bar per configuration: each `MemoryBreakdown` component in GB (10^9 bytes), with a
    marker at a stated figure (e.g. the guide's) where given. Returns the Axes."""
    from dataclasses import fields

    import matplotlib.pyplot as plt

    labels = list(breakdowns)
    components = [f.name for f in fields(next(iter(breakdowns.values())))]
    _, ax = plt.subplots(figsize=(8, 0.6 * len(labels) + 1.5))
    left = [0.0] * len(labels)
    for component in components:
        widths = [getattr(breakdowns[label], component) / 1e9 for label in labels]
        name = "transient" if component == "overhead" else component.replace("_", " ")
        ax.barh(labels, widths, left=left, label=name)
        left = [a + b for a, b in zip(left, widths)]
    if stated_gb:
        ax.scatter([stated_gb[label] for label in labels], labels, marker="|", s=400, color="black",
                   label="the guide's figure", zorder=3)
    ax.invert_yaxis()
    ax.set_xlabel("GB (10^9 bytes)")
    ax.grid(alpha=0.3, axis="x")
    ax.legend(fontsize=8, loc="lower right")
    ax.figure.tight_layout()
    return ax


def plot_lora_layer(d_in: int, d_out: int, r: int, alpha: float) -> Any:
    """One LoRA layer drawn to scale: the frozen W (d_out × d_in) beside the trainable B (d_out × r) and A (r × d_in)
    of `W x + (alpha / r) · B A x`, each labelled with its parameter count. A side thinner than 2% of the drawing is
    widened to stay visible (the label gives the true size). Returns the Axes."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    unit = 4.0 / max(d_in, d_out)  # drawing units per row or column
    visible = 0.08

    def size(cols: int, rows: int) -> tuple[float, float]:
        return max(cols * unit, visible), max(rows * unit, visible)

    _, ax = plt.subplots(figsize=(8, 3.6))
    x = 0.0
    parts = (("W", d_in, d_out, "frozen", "lightgray"), ("B", r, d_out, "trainable, starts at 0", "tab:orange"),
             ("A", d_in, r, "trainable, random start", "tab:blue"))
    for index, (name, cols, rows, role, colour) in enumerate(parts):
        width, height = size(cols, rows)
        ax.add_patch(Rectangle((x, 4.0 - height), width, height, facecolor=colour, edgecolor="black"))
        ax.text(x + width / 2, 4.0 - height - 0.25, f"{name}: {rows:,} × {cols:,}\n= {rows * cols:,}\n{role}",
                ha="center", va="top", fontsize=8)
        if index == 0:
            ax.text(x + width + 0.9, 2.0, f"+ {alpha:g}/{r} ·", ha="center", va="center", fontsize=10)
        x += width + (1.8 if index == 0 else 0.3)
    trainable = r * (d_in + d_out)
    ax.set_title(f"y = W x + (alpha / r) · B A x: {trainable:,} trainable beside {d_in * d_out:,} frozen "
                 f"({100 * trainable / (d_in * d_out):.2f}%)", fontsize=10)
    ax.set_xlim(-0.2, x + 0.2)
    ax.set_ylim(-1.6, 4.3)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.figure.tight_layout()
    return ax
