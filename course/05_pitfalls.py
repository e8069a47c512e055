# %% [markdown]
# # Chapter 5 — Pitfalls: reproduce them, detect them, fix them
#
# **Learning goals.** After this chapter you can recognise, from a run's logs and outputs,
# 1. a loss that does not decrease, 2. overfitting, 3. divergence (NaN/Inf, grad-norm spikes),
# 4. catastrophic forgetting, 5. poor generation — and you know the first fix to try for each.
#
# Every pitfall below is produced for real on the built-in model by `lorakit.diagnostics.reproduce`, then read by
# `lorakit.diagnose`, which states its evidence in numbers and its thresholds as relative changes.

# %%
import math

import matplotlib.pyplot as plt

import lorakit
from lorakit.base import load_tokenizer
from lorakit.baselines import base_eval_loss, uniform_loss
from lorakit.corpus import pretraining_texts
from lorakit.data import load_dataset
from lorakit.diagnostics import FIXES, diagnose, report, reproduce
from lorakit.evaluate import forgetting, generate_answers
from lorakit.plots import plot_losses

# %% [markdown]
# ## 1. The loss does not move
#
# A learning rate 200× too low: the adapter's B matrix stays near zero and the loss is flat.

# %%
flat = reproduce("flat")
plot_losses(flat.log_history, title="LR 1e-6: flat")
plt.show()
print(report(diagnose(flat)))
base_model, tokenizer = lorakit.load_base("tiny")
flat_eval = load_dataset("instruction", tokenizer, n_train=480, n_eval=32, seed=flat.recipe.seed)
untrained = base_eval_loss(base_model, flat_eval)
print(f"eval loss: after 60 steps at LR 1e-6 {flat.final_eval_loss:.2f}; the base model {untrained:.2f}; "
      f"uniform guessing ln {len(tokenizer)} = {uniform_loss(tokenizer):.2f}")
assert abs(flat.final_eval_loss - untrained) < 0.05 * untrained  # flat: the adapter has not moved the model

# %% [markdown]
# ## 2. Overfitting
#
# Eight examples, sixty epochs, a high LR and no dropout: the model memorises its training rows. Train loss keeps
# falling; eval loss turns back up after its best epoch. The fix is in the recipe already: an adapter checkpoint per
# epoch, so you can keep the best one.

# %%
overfit = reproduce("overfit")
plot_losses(overfit.log_history, title="8 examples × 60 epochs")
plt.show()
print(report(diagnose(overfit)))

# %% [markdown]
# ## 3. Divergence
#
# A learning rate of 1 without gradient clipping on fp16 weights: the loss overflows within a few steps.
# `NanGuardCallback` stops the run at the first non-finite value instead of wasting the rest of the budget.

# %%
diverged = reproduce("nan")
print("logged steps:", [h["step"] for h in diverged.log_history if "loss" in h])
print(report(diagnose(diverged)))

# %% [markdown]
# ## 4. Catastrophic forgetting
#
# Long, high-LR training on the elements corpus teaches the domain — and wrecks what the model knew about Python.
# `forgetting` measures the base corpus with the adapter off and on.

# %%
base_texts = [t[:1500] for t in pretraining_texts("heldout")[:6]]
forgot = reproduce("forgetting")
numbers = forgetting(forgot.model, forgot.tokenizer, base_texts)
print({k: round(v, 2) for k, v in numbers.items()})
print(report(diagnose(forgot, forgetting=numbers)))

# %% [markdown]
# ## 5. Poor generation: training on the prompts
#
# If the labels are not masked, most of the loss is spent predicting the *prompts*, and the answers suffer. Same
# data (the same 1,200 training rows and 48 eval prompts, data seed 0), same steps, same LR, same training seed;
# only the masking differs.

# %%
masked_data = load_dataset("instruction", load_tokenizer("tiny"), n_train=1200, n_eval=48, seed=0)
unmasked_data = load_dataset("instruction", load_tokenizer("tiny"), n_train=1200, n_eval=48, seed=0, mask_prompt=False)
assert masked_data.train["input_ids"] == unmasked_data.train["input_ids"]  # same rows, token for token
assert masked_data.train["labels"] != unmasked_data.train["labels"]  # only the labels differ
rows = masked_data.raw_eval
unmasked = reproduce("unmasked")  # lorakit.diagnostics builds unmasked_data the same way
masked = lorakit.train("quickstart", data=masked_data, learning_rate=1e-3, max_steps=150, logging_steps=10,
                       seed=unmasked.recipe.seed, gradient_checkpointing=False, save_strategy="no",
                       output_dir="runs/pitfalls/masked")
for name, run in (("unmasked", unmasked), ("masked", masked)):
    answers = generate_answers(run.model, run.tokenizer, [r["prompt"] for r in rows])
    right = sum(a == r["response"] for a, r in zip(answers, rows)) / len(rows)
    print(f"{name:9s} exact match {right:.0%}; first answers {answers[:5]}")
    print(report(diagnose(run, answers=answers)))

# %% [markdown]
# ## The fixes table

# %%
for pitfall, fixes in FIXES.items():
    print(pitfall)
    for fix in fixes:
        print("   →", fix)

# %% [markdown]
# ## Make them happen yourself
#
# The sweep panel from chapter 1, preset to a learning rate of 1e-6: the cell trains that point once, and its
# curve is the flat line of section 1. Then press **Train** at 1e-3 for comparison, and at 1e-1 to see how a
# learning rate far too high behaves on this model. Rank 1 with a fixed alpha of 1 is another way to starve the
# adapter; a fixed alpha of 0 is refused with a message.

# %%
from lorakit.widgets import SweepPanel

pitfall_panel = SweepPanel()
pitfall_panel.lr.value = 1e-6
pitfall_panel.start()
pitfall_panel.wait()
starved = pitfall_panel.sweep.runs[-1]
print(f"LR 1e-6: train loss {starved.train_losses[0][1]:.2f} → {starved.train_losses[-1][1]:.2f} "
      f"in {starved.steps} steps")
pitfall_panel

# %% [markdown]
# ### Exercise 5.1 — diagnose a logged run (2 points)
#
# Below is the log history of a run someone sent you. Write `my_diagnosis`: the pitfall name (a key of `FIXES`)
# that best explains it. Then check yourself with `diagnose`.

# %%
mystery = ([{"step": s, "epoch": s / 10, "loss": 2.5 * math.exp(-s / 40), "grad_norm": 0.5} for s in range(5, 105, 5)]
           + [{"step": 10 * e, "epoch": float(e), "eval_loss": v} for e, v in
              enumerate([2.1, 1.6, 1.4, 1.35, 1.38, 1.47, 1.6, 1.75, 1.9, 2.1], start=1)])

# %% [solution] id=ch5-diagnose
### BEGIN SOLUTION
my_diagnosis = "overfitting"
### END SOLUTION

# %% [tests] id=ch5-diagnose-tests points=2
from lorakit.grading import check_equal, passed

check_equal(my_diagnosis in FIXES, True, "my_diagnosis is a pitfall name", hint=f"use one of {list(FIXES)}.")
### BEGIN HIDDEN TESTS
check_equal(my_diagnosis, "overfitting", "my_diagnosis",
            hint="train loss keeps falling while eval loss turns up after epoch 4.")
check_equal({f.pitfall for f in diagnose(mystery)}, {"overfitting"}, "diagnose(mystery)")
### END HIDDEN TESTS
passed("Exercise 5.1")

# %% [markdown]
# ### Exercise 5.2 — fix the flat run (2 points)
#
# Starting from the quickstart recipe with `n_train=480, max_steps=60, gradient_checkpointing=False,
# save_strategy="no"`, choose a `fixed_lr` that turns the flat run into a learning one: `diagnose` must report no
# "loss not decreasing", and the final train loss must be below 70% of the first.

# %% [solution] id=ch5-fix
### BEGIN SOLUTION
fixed_lr = 1e-3
### END SOLUTION

# %%
fixed = lorakit.train("quickstart", learning_rate=fixed_lr, n_train=480, max_steps=60, gradient_checkpointing=False,
                      save_strategy="no", output_dir="runs/pitfalls/fixed")
print(report(diagnose(fixed)))

# %% [tests] id=ch5-fix-tests points=2
check_equal(0 < fixed_lr <= 0.1, True, "fixed_lr is a sensible learning rate", hint="between 1e-5 and 1e-2.")
losses = [loss for _, loss in fixed.train_losses]
### BEGIN HIDDEN TESTS
check_equal("loss not decreasing" in {f.pitfall for f in diagnose(fixed)}, False, "loss still flat",
            hint="raise the learning rate by factors of 3.")
assert losses[-1] < 0.7 * losses[0], f"final loss {losses[-1]:.2f} is not below 70% of the first ({losses[0]:.2f})"
### END HIDDEN TESTS
passed("Exercise 5.2")

# %% [markdown]
# ## Check yourself
# - Flat loss → LR (or alpha/r) too low, wrong targets, or labels masked away.
# - Eval loss up while train loss falls → overfitting: keep the best epoch, more dropout, more data.
# - NaN/Inf or huge grad norms → lower LR, clip at 0.3, prefer bf16.
# - Base-corpus perplexity more than tripled (`diagnostics.FORGETTING_RATIO` = 3) → forgetting: lower LR, fewer
#   steps, mix in general data.
# - Collapsed or run-on answers → mask prompts, pad ≠ eos, end answers with eos.
