# %% [markdown]
# # Chapter 6 — The five recipes, end to end
#
# **Learning goals.** After this chapter you can
# 1. name the five task recipes and the one choice that sets each apart;
# 2. run each one end to end on the built-in model and read its result;
# 3. work out how many optimizer steps a recipe takes on your data;
# 4. match a new task to a recipe.
#
# Every run here is short (a CPU minute for the whole chapter); the numbers are the recipes' own, only
# `max_steps` and the data size are cut down.

# %%
import math

import lorakit
from lorakit.recipes import RECIPES

# NBVAL_CHECK_OUTPUT
for name in ("instruction", "code", "domain", "classification", "dpo"):
    rec = RECIPES[name]
    print(f"{name:15s} r={rec.r:<3d} alpha={rec.lora_alpha:<4g} dropout={rec.lora_dropout:<5g} lr={rec.learning_rate:<7g}"
          f" targets={rec.target_modules!s:11s} 4-bit={rec.quantization == 'nf4'!s:5s} task={rec.task}")

# %% [markdown]
# | recipe | what makes it different | why |
# |---|---|---|
# | instruction | QLoRA, r=16, all-linear, LR 2e-4 | the default: teach a format and a skill, not facts |
# | code | r=32, LR 1e-4 | code is a harder, more precise distribution: more capacity, gentler steps |
# | domain | r=64, dropout 0.1, LR 5e-5 | absorbing new knowledge needs rank; a low LR limits forgetting |
# | classification | r=8 on q,v + a fully trained head | the head does most of the work; the adapter only nudges attention |
# | SFT → DPO | SFT first, then DPO at 5e-5 | preferences refine a model that already follows instructions |
#
# ## Instruction following (QLoRA)
#
# The base weights are loaded in 4-bit NF4 with double quantisation; only the LoRA matrices train, with the paged
# 8-bit AdamW. `evaluate`'s exact match compares the greedy answer with the task's one right answer.

# %% grading=skip
from lorakit.evaluate import exact_match

instruction = lorakit.train("instruction", max_steps=60, n_train=480, n_eval=48, gradient_checkpointing=False,
                            save_strategy="no", output_dir="runs/ch6-instruction")
print(instruction.summary())
print(type(instruction.model.base_model.model.model.layers[0].self_attn.q_proj.base_layer).__name__)

# %% [markdown]
# ## Code (QLoRA, higher rank, lower LR)

# %% grading=skip
code = lorakit.train("code", max_steps=20, n_train=64, n_eval=16, gradient_checkpointing=False,
                     save_strategy="no", output_dir="runs/ch6-code")
print(code.summary())

# %% [markdown]
# ## Domain adaptation (r = 64, dropout 0.1, LR 5e-5)
#
# The domain corpus (facts about the chemical elements) is nothing like the Python text the base model was
# pre-trained on: its eval perplexity starts high and falls as the adapter absorbs the domain.

# %% grading=skip
domain = lorakit.train("domain", max_steps=30, n_train=128, n_eval=32, gradient_checkpointing=False,
                       save_strategy="no", eval_strategy="steps", output_dir="runs/ch6-domain")
print(domain.summary())

# %% [markdown]
# ## Classification (r = 8 on q,v, head trained fully)
#
# A sequence-classification head (`score`, hidden size × number of labels) sits on the last token's hidden state.
# It starts random, so it must be trained in full: peft's `SEQ_CLS` task type adds it to `modules_to_save`.

# %% grading=skip
classification = lorakit.train("classification", max_steps=60, n_train=480, n_eval=96,
                               gradient_checkpointing=False, save_strategy="no", output_dir="runs/ch6-cls")
print(classification.summary())

# %% [markdown]
# ## SFT → DPO
#
# First supervised fine-tuning on the instruction data, then the SFT adapter is merged and a fresh adapter is
# trained with Direct Preference Optimisation (TRL's `DPOTrainer`) on chosen/rejected pairs, against the merged SFT
# model as reference. Its log shows the reward margin (chosen minus rejected) growing.

# %% grading=skip
dpo = lorakit.train("dpo", max_steps=10, n_train=64, n_eval=16, gradient_checkpointing=False,
                    save_strategy="no", output_dir="runs/ch6-dpo")
print(dpo.summary())
margins = [h["rewards/margins"] for h in dpo.log_history if "rewards/margins" in h]
print("reward margins:", [round(m, 3) for m in margins])

# %% [markdown]
# ### Exercise 6.1 — optimizer steps (2 points)
#
# Write `optimizer_steps(n_examples, batch_size, grad_accum, epochs)` returning the number of optimizer steps (an
# int) the Trainer takes. Each epoch has `ceil(n_examples / batch_size)` batches, and one optimizer step happens every
# `grad_accum` batches (a last, partial group still makes a step).

# %% [solution] id=ch6-steps
def optimizer_steps(n_examples: int, batch_size: int, grad_accum: int, epochs: int) -> int:
    ### BEGIN SOLUTION
    batches = math.ceil(n_examples / batch_size)
    return epochs * math.ceil(batches / grad_accum)
    ### END SOLUTION

# %% [tests] id=ch6-steps-tests points=2
### BEGIN HIDDEN TESTS
from lorakit.grading.collect import collect

collect("ch6-steps-tests", optimizer_steps,
        cases=lambda rng: [(rng.randint(1, 100_000), rng.choice([1, 2, 4, 8, 16, 32]), rng.choice([1, 2, 3, 4, 8, 16]),
                            rng.randint(1, 10)) for _ in range(5)] + [(rng.randint(1, 7), 8, 1, rng.randint(1, 3))])
### END HIDDEN TESTS
from lorakit.checks import check_equal, passed

check_equal(optimizer_steps(1000, 8, 1, 1), 125, "optimizer_steps(1000, 8, 1, 1)")
check_equal(optimizer_steps(1000, 8, 4, 3), 96, "optimizer_steps(1000, 8, 4, 3)",
            hint="125 batches per epoch, one step per 4 batches → 32 steps per epoch (the last group is partial).")
check_equal(optimizer_steps(7, 8, 1, 2), 2, "optimizer_steps(7, 8, 1, 2)", hint="a partial batch is still a batch.")
passed("Exercise 6.1")

# %% [markdown]
# ### Exercise 6.2 — plan a recipe's run (2 points)
#
# Write `training_plan(recipe, n_examples)` for a `lorakit.recipes.Recipe` trained on `n_examples` examples. Read
# the recipe's `per_device_train_batch_size`, `gradient_accumulation_steps`, `num_train_epochs` (a whole number
# here) and `warmup_ratio`, and return a dict of three ints:
# * `"effective_batch"`: the examples that go into one optimizer step;
# * `"steps"`: the optimizer steps of the whole run (use your `optimizer_steps`);
# * `"warmup_steps"`: the warmup steps the Trainer derives from the ratio (rounded up, as in chapter 3).

# %% [solution] id=ch6-plan
def training_plan(recipe, n_examples: int) -> dict:
    ### BEGIN SOLUTION
    batch, accum = recipe.per_device_train_batch_size, recipe.gradient_accumulation_steps
    steps = optimizer_steps(n_examples, batch, accum, int(recipe.num_train_epochs))
    return {"effective_batch": batch * accum, "steps": steps, "warmup_steps": math.ceil(steps * recipe.warmup_ratio)}
    ### END SOLUTION

# %% [tests] id=ch6-plan-tests points=2
### BEGIN HIDDEN TESTS
import math
from fractions import Fraction

from lorakit.grading.collect import collect
from lorakit.recipes import RECIPES


def plans(rng):
    cases = []
    while len(cases) < 5:
        recipe = RECIPES[rng.choice(["instruction", "code", "domain", "classification"])].replace(
            per_device_train_batch_size=rng.choice([1, 2, 4, 8, 16]),
            gradient_accumulation_steps=rng.choice([1, 2, 4, 8]),
            num_train_epochs=float(rng.randint(1, 6)), warmup_ratio=rng.choice([0.03, 0.05, 0.1]))
        n = rng.randint(100, 60_000)
        per_epoch = math.ceil(math.ceil(n / recipe.per_device_train_batch_size) / recipe.gradient_accumulation_steps)
        steps = int(recipe.num_train_epochs) * per_epoch
        if math.ceil(steps * recipe.warmup_ratio) == math.ceil(steps * Fraction(str(recipe.warmup_ratio))):
            cases.append((recipe, n))
    return cases


collect("ch6-plan-tests", training_plan, cases=plans)
### END HIDDEN TESTS
from lorakit.checks import check_equal, passed
from lorakit.recipes import RECIPES

plan = training_plan(RECIPES["instruction"], 10_000)
check_equal(sorted(plan), ["effective_batch", "steps", "warmup_steps"], "the keys of training_plan's dict")
check_equal(plan["effective_batch"], 8, "effective batch of the instruction recipe", hint="batch × accumulation.")
check_equal(plan["steps"], 3750, "steps of the instruction recipe on 10,000 examples",
            hint="3 epochs × ceil(10,000 / 8) steps.")
check_equal(plan["warmup_steps"], 113, "warmup steps of the instruction recipe on 10,000 examples",
            hint="ceil(3750 × 0.03) = ceil(112.5).")
check_equal(training_plan(RECIPES["instruction"].replace(gradient_accumulation_steps=4), 10_000)["steps"], 939,
            "steps with 4 accumulation steps", hint="1250 batches per epoch make ceil(1250 / 4) = 313 steps.")
passed("Exercise 6.2")

# %% [markdown]
# ## Check yourself
# - Instruction: QLoRA r=16/alpha=32 all-linear at 2e-4 is the default starting point.
# - Code: r=32/alpha=64 at 1e-4. Domain: r=64/alpha=128, dropout 0.1, 5e-5.
# - Classification: r=8 on q,v plus a fully trained head. Preferences: SFT first, DPO at 5e-5.
# - Steps = epochs × ceil(ceil(n / batch) / grad_accum).
