# %% [markdown]
# # Chapter 1 — The LoRA hyperparameters: rank, alpha, dropout
#
# **Learning goals.** After this chapter you can
# 1. explain what LoRA adds to a frozen linear layer and compute its scale `alpha / r` (and rsLoRA's `alpha / √r`);
# 2. compare the three alpha strategies (alpha = r, alpha = 2r, alpha fixed at 16) and say what each does when you
#    change the rank;
# 3. choose a dropout from the size of your dataset;
# 4. read a recipe as data and change it safely.

# %%
import math

import matplotlib.pyplot as plt
import torch

import lorakit
from lorakit.recipes import RECIPES

# %% [markdown]
# ## What LoRA adds
#
# A frozen weight `W` (shape `out × in`) is left untouched. LoRA learns two thin matrices, `A` (`r × in`) and
# `B` (`out × r`), and the layer computes `W x + (alpha / r) · B A x`. `B` starts at zero, so training starts from
# exactly the pre-trained model. The rank `r` bounds how much the update can express; `alpha / r` scales it.
#
# Below, that formula on a random 64 → 32 layer, checked against the output of peft's own LoRA layer
# (`peft.tuners.lora.Linear`, the class `get_peft_model` puts in place of each targeted linear): at init, and again
# after B is moved away from zero as training would.

# %%
from peft import LoraConfig, get_peft_model

torch.manual_seed(0)
d_in, d_out, r, alpha = 64, 32, 4, 8
one_layer = torch.nn.Sequential(torch.nn.Linear(d_in, d_out, bias=False))
layer = get_peft_model(one_layer, LoraConfig(r=r, lora_alpha=alpha, target_modules=["0"])).base_model.model[0]
print(type(layer).__module__ + "." + type(layer).__name__)
W, A = layer.base_layer.weight.detach(), layer.lora_A["default"].weight.detach()
x = torch.randn(d_in)
with torch.no_grad():
    at_init = torch.equal(layer(x), W @ x)
    layer.lora_B["default"].weight.normal_()  # what training would do to B
    B = layer.lora_B["default"].weight
    gap = (layer(x) - (W @ x + (alpha / r) * (B @ (A @ x)))).abs().max().item()
print("at init, peft's layer outputs exactly W x:", at_init)
print(f"with B ≠ 0, largest gap between peft's layer and W x + (alpha/r)·B A x: {gap:.0e}")
assert at_init and gap < 1e-5  # the sentence above: our formula is peft's layer

# %% [markdown]
# ## Play first: the sweep panel
#
# Before the arithmetic, get a feel for the knobs. The panel below trains the built-in model for a few dozen steps
# on the instruction dataset each time you press **Train** (a few seconds on a CPU) and draws the training loss as
# it goes, with the final eval loss as a dot. Next to the sliders: the adapter's trainable parameters and the
# estimated training memory of the point you picked. Every run lands in the table; moving the sliders back to a
# point you already ran shows its result at once, without training again. Impossible settings (a fixed alpha of 0,
# say) give a message instead of a run.
#
# The cell trains the default point (r = 16, alpha = 2r, LR 1e-3) once so that there is a curve to compare with.
# Try r = 4 and r = 64 next, then alpha = r, then a fixed alpha of 16 at r = 64.

# %% grading=skip
from lorakit.widgets import SweepPanel

panel = SweepPanel()
panel.start()
panel.wait()
panel

# %% [markdown]
# ### Exercise 1.1 — the LoRA scale (2 points)
#
# Write `lora_scale(r, alpha, rslora=False)`: return the adapter's scale as a float, `alpha / r` normally and
# `alpha / sqrt(r)` with rsLoRA.

# %% [solution] id=ch1-scale
def lora_scale(r: int, alpha: float, rslora: bool = False) -> float:
    ### BEGIN SOLUTION
    return alpha / (math.sqrt(r) if rslora else r)
    ### END SOLUTION

# %% [tests] id=ch1-scale-tests points=2
### BEGIN HIDDEN TESTS
from lorakit.grading.collect import collect

collect("ch1-scale-tests", lora_scale, rel=1e-9,
        cases=lambda rng: [(rng.choice([1, 2, 4, 8, 16, 32, 64, 128, 256]), rng.choice([1, 8, 16, 32, 64, 128, 512]),
                            rslora) for rslora in (False, True, False, True, rng.random() < 0.5)])
### END HIDDEN TESTS
from lorakit.checks import check_close, passed

check_close(lora_scale(16, 32), 2.0, "lora_scale(16, 32)", rel=1e-9, hint="the scale is alpha / r.")
check_close(lora_scale(16, 32, rslora=True), 8.0, "lora_scale(16, 32, rslora=True)", rel=1e-9,
            hint="rsLoRA uses alpha / sqrt(r).")
check_close(lora_scale(64, 16), 0.25, "lora_scale(64, 16)", rel=1e-9,
            hint="a fixed alpha shrinks the scale as r grows.")
passed("Exercise 1.1")

# %% [markdown]
# ## Three alpha strategies
#
# * **alpha = r** — scale 1 at every rank.
# * **alpha = 2r** — scale 2 at every rank: the guide's default (r = 16, alpha = 32).
# * **alpha fixed (16)** — the scale *shrinks* as the rank grows (16/64 = 0.25), so raising the rank also quietly
#   lowers the effective learning rate of the adapter. rsLoRA's `alpha/√r` is a middle ground designed so that
#   higher ranks keep learning.

# %%
# NBVAL_CHECK_OUTPUT
ranks = [4, 8, 16, 32, 64, 128]
print("rank  alpha=r  alpha=2r  alpha=16  rsLoRA(alpha=2r)")
for rank in ranks:
    print(f"{rank:4d}  {lora_scale(rank, rank):7.2f}  {lora_scale(rank, 2 * rank):8.2f}  {lora_scale(rank, 16):8.3f}"
          f"  {lora_scale(rank, 2 * rank, True):8.2f}")

# %% [markdown]
# ## Rank and alpha on the real model
#
# Short runs of the tiny model on the instruction dataset: the same recipe with `r` = 4, 16 and 64 under
# alpha = 2r. (Gradient checkpointing off for speed; it does not change the loss.)

# %% grading=skip
from lorakit.baselines import base_eval_loss, uniform_loss
from lorakit.data import load_dataset

results = {}
for rank in (4, 16, 64):
    results[rank] = lorakit.train("quickstart", r=rank, lora_alpha=2 * rank, max_steps=40, n_train=320, n_eval=64,
                                  gradient_checkpointing=False, save_strategy="no", output_dir=f"runs/ch1-r{rank}")
fig, ax = plt.subplots(figsize=(7, 3.5))
for rank, res in results.items():
    ax.plot(*zip(*res.train_losses), label=f"r={rank}: {res.trainable_params:,} params, eval {res.final_eval_loss:.2f}")
ax.set_xlabel("step")
ax.set_ylabel("train loss")
ax.legend()
plt.show()
base_model, tokenizer = lorakit.load_base("tiny")
same_eval = load_dataset("instruction", tokenizer, n_train=320, n_eval=64, seed=results[4].recipe.seed)
baseline, uniform = base_eval_loss(base_model, same_eval), uniform_loss(tokenizer)
evals = {rank: res.final_eval_loss for rank, res in results.items()}
print(f"eval loss per answer token: base model {baseline:.2f}, uniform guessing ln {len(tokenizer)} = {uniform:.2f}")
print("after 40 steps:", ", ".join(f"r={rank} {loss:.2f}" for rank, loss in evals.items()))
assert baseline > uniform  # the base model starts worse than guessing
assert evals[64] < evals[16] < evals[4] < baseline  # every rank learns; more rank learns faster here
assert evals[64] < uniform < evals[4]  # r=64 ends below uniform guessing, r=4 still above it

# %% [markdown]
# Read the numbers with their baselines. The base model, never trained on this question-and-answer format, starts
# *worse* than uniform guessing over its vocabulary. In 40 steps every rank improves on it, and here the rank
# matters a lot: the loss falls further the higher the rank, and only r = 64 ends below uniform guessing. With a
# budget this short (and alpha = 2r, so the same scale at every rank) more rank simply learns faster. Longer
# training narrows the gap on a simple task, which is why r = 8–16 remains the usual default, and 64+ is kept for
# domain adaptation, where the model must absorb a lot of new knowledge.
#
# ## Dropout by dataset size
#
# LoRA dropout zeroes a random part of the adapter's input during training. It fights overfitting, which matters
# when data is scarce. The course follows the guide's bands:
#
# | training examples | lora_dropout |
# |---|---|
# | fewer than 1,000 | 0.2 |
# | 1,000 – 9,999 | 0.1 |
# | 10,000 – 100,000 | 0.05 |
# | more than 100,000 | 0.0 |
#
# Where the course follows the guide and where it does not (`lorakit.deviations`, the dropout rows):

# %%
# NBVAL_CHECK_OUTPUT
from lorakit.deviations import deviations_table

print(deviations_table("dropout"))

# %% [markdown]
# ### Exercise 1.2 — dropout for a dataset (1 point)
#
# Write `dropout_for(n_examples)` following the table: return the float 0.2 below 1,000 examples, 0.1 from
# 1,000 to 9,999, 0.05 from 10,000 up to and including 100,000, and 0.0 above 100,000.

# %% [solution] id=ch1-dropout
def dropout_for(n_examples: int) -> float:
    ### BEGIN SOLUTION
    if n_examples < 1_000:
        return 0.2
    if n_examples < 10_000:
        return 0.1
    if n_examples <= 100_000:
        return 0.05
    return 0.0
    ### END SOLUTION

# %% [tests] id=ch1-dropout-tests points=1
### BEGIN HIDDEN TESTS
from lorakit.grading.collect import collect

collect("ch1-dropout-tests", dropout_for,
        cases=lambda rng: [(rng.randint(1, 999),), (rng.choice([999, 1_000, 9_999, 10_000, 100_000, 100_001]),),
                           (rng.randint(1_000, 9_999),), (rng.randint(10_000, 100_000),), (rng.randint(100_001, 10**7),),
                           (rng.choice([1_000, 10_000, 100_000]),)])
### END HIDDEN TESTS
from lorakit.checks import check_equal, passed

check_equal(dropout_for(500), 0.2, "dropout_for(500)", hint="small data overfits quickly: use more dropout.")
check_equal(dropout_for(5_000), 0.1, "dropout_for(5_000)")
check_equal(dropout_for(50_000), 0.05, "dropout_for(50_000)", hint="10,000 to 100,000 examples: 0.05.")
check_equal(dropout_for(500_000), 0.0, "dropout_for(500_000)", hint="above 100,000 examples, no dropout.")
passed("Exercise 1.2")

# %% [markdown]
# ## Recipes are data
#
# Every number above lives in a validated dataclass. Printing a recipe shows all choices; `replace` makes a changed
# copy and checks it again, so a typo or an impossible value fails at once with a message naming the field.

# %%
quick = RECIPES["quickstart"]
print(quick.r, quick.lora_alpha, quick.lora_dropout, quick.target_modules, quick.learning_rate)
try:
    quick.replace(lora_dropout=0.9)
except ValueError as err:
    print("ValueError:", err)

# %% [markdown]
# ### Exercise 1.3 — a recipe for a small dataset (2 points)
#
# Write `small_data_recipe(n_examples, r)`: starting from the quickstart recipe, return a recipe (a
# `lorakit.recipes.Recipe`, made with `replace`) with rank `r`, the alpha = 2r strategy, and the dropout your
# `dropout_for` gives for `n_examples`. Leave everything else as it is.

# %% [solution] id=ch1-recipe
def small_data_recipe(n_examples: int, r: int):
    ### BEGIN SOLUTION
    return RECIPES["quickstart"].replace(r=r, lora_alpha=2 * r, lora_dropout=dropout_for(n_examples))
    ### END SOLUTION

# %% [tests] id=ch1-recipe-tests points=2
### BEGIN HIDDEN TESTS
from lorakit.grading.collect import collect


def recipe_fields(n_examples, r):
    recipe = small_data_recipe(n_examples, r)
    return {"r": int(recipe.r), "lora_alpha": float(recipe.lora_alpha), "lora_dropout": float(recipe.lora_dropout),
            "learning_rate": float(recipe.learning_rate), "target_modules": str(recipe.target_modules),
            "num_train_epochs": float(recipe.num_train_epochs), "use_rslora": bool(recipe.use_rslora)}


collect("ch1-recipe-tests", recipe_fields, rel=1e-9,
        cases=lambda rng: [(rng.choice([rng.randint(50, 999), rng.randint(1_000, 9_999), rng.randint(10_000, 10**6)]),
                            rng.choice([2, 4, 8, 16, 32, 64])) for _ in range(4)])
### END HIDDEN TESTS
from lorakit.checks import check_equal, passed
from lorakit.recipes import RECIPES

mine = small_data_recipe(600, 8)
check_equal(mine.r, 8, "small_data_recipe(600, 8).r")
check_equal(mine.lora_alpha, 16, "small_data_recipe(600, 8).lora_alpha", hint="alpha = 2r.")
check_equal(mine.lora_dropout, 0.2, "small_data_recipe(600, 8).lora_dropout", hint="600 < 1,000 examples.")
check_equal(mine.learning_rate, RECIPES["quickstart"].learning_rate, "small_data_recipe(600, 8).learning_rate",
            hint="leave the rest of the quickstart recipe unchanged.")
passed("Exercise 1.3")

# %% [markdown]
# ## Check yourself
# - LoRA's output is `W x + (alpha/r)·B A x`; with `B = 0` at init, training starts from the pre-trained model.
# - alpha = 2r keeps the scale at 2 whatever the rank; a fixed alpha shrinks the update as r grows.
# - A loss means something next to its baselines: uniform guessing (ln V) and the base model before training.
# - In a short budget more rank learns faster; r = 8–16 remains the usual default, more rank for more new knowledge.
# - Dropout 0.2 under 1k examples, 0.1 under 10k, 0.05 up to 100k, 0 beyond (the guide's bands).
