# %% [markdown]
# # Chapter 7 — Evaluation and monitoring
#
# **Learning goals.** After this chapter you can
# 1. measure an adapter three ways: eval perplexity, exact-match task accuracy, and forgetting of the base corpus;
# 2. compare two adapters on one base model, side by side;
# 3. check that merging LoRA into the weights changes nothing;
# 4. read a run's logs (loss, eval perplexity, grad norm, LR) and its TensorBoard files.

# %%
import math

import torch

import lorakit
from lorakit import pretraining_texts
from lorakit import load_dataset
from lorakit.evaluation import compare_adapters, exact_match, forgetting, generate_answers, merged_matches_unmerged
from lorakit.evaluation import perplexity

torch.manual_seed(0)
model, tokenizer = lorakit.load_base("tiny")
data = load_dataset("instruction", tokenizer, n_train=1200, n_eval=48)

# %% [markdown]
# ## Perplexity
#
# Perplexity is `exp(mean cross-entropy per predicted token)`: the number of equally likely choices the model is
# "hesitating between" on average. On the instruction eval set we count only answer tokens (the prompt is masked),
# so it measures exactly what training optimises.

# %%
base_ppl = perplexity(model, tokenizer, data.eval)
print(f"base model, answer-token perplexity: {base_ppl:,.0f}; uniform guessing over the vocabulary: {len(tokenizer):,}")
assert base_ppl < len(tokenizer)  # the base model already does better than guessing (it saw the chat format)

# %% [markdown]
# ## Two adapters on the same data
#
# Both adapters follow the quickstart recipe for 150 steps; **A** uses learning rate 2e-3 (the best of chapter 3's
# 40-step sweep on this tiny model), **B** the guide's 2e-4 (its default for billion-parameter models). Each run
# logs train loss, eval loss and eval perplexity, grad norm and learning rate.

# %% grading="skip"
runs = {}
for name, lr in (("A", 2e-3), ("B", 2e-4)):
    runs[name] = lorakit.train("quickstart", data=data, learning_rate=lr, max_steps=150, num_train_epochs=1,
                               gradient_checkpointing=False, save_strategy="no", output_dir=f"runs/ch7-{name}")
    print(runs[name].summary())
print({k: v for k, v in runs["A"].log_history[-2].items() if k in ("eval_loss", "eval_perplexity", "epoch")})

# %% [markdown]
# ## Task accuracy by exact match
#
# Loss says how likely the right answer is; exact match says whether greedy decoding actually produces it. Both
# matter: a model can lower its loss a lot before its top choice becomes right.

# %% grading="skip"
rows = data.raw_eval
task_scores = {name: (exact_match(run.model, tokenizer, rows), perplexity(run.model, tokenizer, data.eval))
               for name, run in runs.items()}
for name, (match, ppl) in task_scores.items():
    print(f"adapter {name}: exact match {match:.0%}, answer perplexity {ppl:.2f}")
base_match = exact_match(model, tokenizer, rows)
print(f"base: exact match {base_match:.0%}")
assert task_scores["A"][0] > 2 * task_scores["B"][0] and task_scores["B"][0] > base_match == 0  # A learned far more
assert task_scores["A"][1] < task_scores["B"][1]  # and its answers are also the more likely ones

# %% [markdown]
# **What you see.** Both adapters learned something (the base model answers none exactly), and the higher learning
# rate learned far more in 150 steps, on both measures. At 2e-4 the guide's rate is simply too slow for a run this
# short on a model this small (chapter 3 measured the same). The next sections ask what that speed cost.

# %% [markdown]
# ## Generation settings
#
# Exact match above decodes greedily: the most likely token every time. The guide suggests trying other generation
# parameters (temperature, top_p) when generations are poor. Adapter A's answers again, sampled (seeded, so the
# numbers repeat) at temperature 0.7 with top_p 0.9, and at temperature 1.5:

# %% grading="skip"
prompts = [r["prompt"] for r in rows]
decoding = {"greedy": {}, "T 0.7, top_p 0.9": dict(temperature=0.7, top_p=0.9), "T 1.5": dict(temperature=1.5)}
decoded = {label: generate_answers(runs["A"].model, tokenizer, prompts, **settings)
           for label, settings in decoding.items()}
sampled_match = {label: sum(a == r["response"] for a, r in zip(answers, rows)) / len(rows)
                 for label, answers in decoded.items()}
for label, answers in decoded.items():
    print(f"{label:17s} exact match {sampled_match[label]:.0%}; first answers {answers[:5]}")
assert sampled_match["greedy"] > sampled_match["T 0.7, top_p 0.9"] > sampled_match["T 1.5"]

# %% [markdown]
# **What you see.** Every task here has one right answer, and sampling only ever trades the most likely token for a
# less likely one: accuracy falls as the temperature rises, and at 1.5 even the words break apart. Temperature and
# top_p are for open-ended generation, where variety is wanted; for exact answers decode greedily (or at a low
# temperature), and fix poor answers with data and training rather than sampling settings.

# %% [markdown]
# ## A/B on one base
#
# Instead of two full models, load both saved adapters onto one base and answer the same prompts side by side.
# `compare_adapters` wraps the base with peft's `PeftModel.from_pretrained` for the first adapter, adds the others
# with `load_adapter` and switches between them with `set_adapter`: one copy of the base weights in memory.

# %% grading="skip"
base_for_ab, _ = lorakit.load_base("tiny")
table = compare_adapters(base_for_ab, tokenizer, {"A": str(runs["A"].adapter_dir), "B": str(runs["B"].adapter_dir)},
                         rows[:8])
for row in table:
    print(f"{row['prompt'][:48]:48s} | {row['expected']!s:18s} | A: {row['A']!s:18s} | B: {row['B']!s:18s}")

# %% [markdown]
# ## Forgetting
#
# Fine-tuning on a narrow task can damage what the model knew. Measure the base corpus (Python docs and source)
# perplexity with the adapter switched off and on: a ratio well above 1 means forgetting.

# %% grading="skip"
from lorakit.evaluation import FORGETTING_RATIO

base_texts = [t[:1500] for t in pretraining_texts("heldout")[:6]]
ratios = {}
for name, run in runs.items():
    f = forgetting(run.model, tokenizer, base_texts)
    ratios[name] = f["ratio"]
    print(f"adapter {name}: base-corpus perplexity {f['base_perplexity']:.1f} → {f['adapted_perplexity']:.1f} "
          f"(ratio {f['ratio']:.3f})")
assert ratios["A"] > ratios["B"] >= 1.0  # the faster learner also moved further from what the base knew
assert max(ratios.values()) <= FORGETTING_RATIO  # both under diagnose's forgetting threshold

# %% [markdown]
# **What you see.** The price of A's speed: its base-corpus perplexity rose much more than B's. Both stay under the
# forgetting threshold of 3 that `diagnose` uses, so here A's gain on the task is worth it; Exercise 7.2 turns this
# into a rule. The next section shows forgetting that is not worth it, on a real model.

# %% [markdown]
# ## The guide's harness, offline, on a real model
#
# The tiny model knows Python docs and little else. To see forgetting where it hurts, take a real pretrained model,
# SmolLM2-135M-Instruct (Hugging Face, Apache-2.0; `lorakit.load_base("smollm2-135m")`, chapter 0), and score it
# with EleutherAI's lm-evaluation-harness, the guide's own `lm_eval.simple_evaluate(model="hf", ...)` call.
# lorakit ships small task files that run without a hub (`lorakit/assets/lm_eval_tasks/`, read through
# `lm_eval.tasks.TaskManager(include_path=...)`): **`lorakit_capitals_mc`**, the capital of 40 countries picked among
# four (chance 25%), and **`lorakit_capitals_gen`**, the same 40 facts generated greedily after "The capital of X
# is" and scored by exact match. `run_lm_eval` passes the converted model folder as `pretrained=` and an adapter
# as `peft=`. This section runs SmolLM2-135M in fp32 LoRA at every scale.

# %% [markdown]
# First an aggressive fine-tune on narrow data: the chemical-elements texts of the domain recipe, at a learning rate
# 200× the guide's 5e-5 for domain adaptation (so high that `diagnose` may also see the train loss rise).
# `forgetting` compares the perplexity of the capital facts ("The capital of France is Paris.") with the adapter
# off and on; `diagnose` flags a ratio above `FORGETTING_RATIO` (3) as forgetting.

# %% grading="skip"
import resource

from lorakit.evaluation import FORGETTING_RATIO, diagnose, report
from lorakit.evaluation import knowledge_texts, run_lm_eval
from lorakit import release_memory
from lorakit import converted_dir
from lorakit.lessons import course_scale

print(course_scale().describe())
NARROW_STEPS, NARROW_LR, NARROW_ROWS = 8, 1e-2, 32  # 200× the guide's domain LR, on 32 texts about elements
real_model, real_tokenizer = lorakit.load_base("smollm2-135m", dtype="fp32")
elements = load_dataset("domain", real_tokenizer, n_train=NARROW_ROWS, n_eval=4, max_length=64)
narrow = lorakit.train("domain", model=real_model, tokenizer=real_tokenizer, data=elements, r=16, lora_alpha=32,
                       learning_rate=NARROW_LR, max_steps=NARROW_STEPS, per_device_train_batch_size=4,
                       gradient_accumulation_steps=1, optim="adamw_torch", eval_strategy="no", save_strategy="no",
                       gradient_checkpointing=False, logging_steps=2, output_dir="runs/ch7-real-narrow", progress=False)
real_forgetting = forgetting(narrow.model, real_tokenizer, knowledge_texts())
print(f"{NARROW_STEPS} steps at LR {NARROW_LR:g}: {narrow.train_seconds:.0f} s; capital-fact perplexity "
      f"{real_forgetting['base_perplexity']:.1f} → {real_forgetting['adapted_perplexity']:.1f} "
      f"(ratio {real_forgetting['ratio']:.1f}; the detector's threshold {FORGETTING_RATIO:g})")
print(report(diagnose(narrow, forgetting=real_forgetting)))
assert real_forgetting["ratio"] > FORGETTING_RATIO
assert "forgetting" in {finding.pitfall for finding in diagnose(narrow, forgetting=real_forgetting)}
narrow_adapter = narrow.adapter_dir

# %% [markdown]
# SmolLM2 uses one token, `<|im_end|>`, as both its pad and its end-of-turn (eos) token. That is a classic cause of
# answers that never stop, but only when the collator masks labels by token id (transformers'
# `DataCollatorForLanguageModeling` sets every label equal to the pad id to -100, eos included). lorakit pads
# labels with -100 by position, so each answer keeps its final eos as a label. `diagnose(..., data=...)` checks the
# labels rather than the tokenizer alone.

# %%
chat_rows = load_dataset("instruction", real_tokenizer, n_train=32, n_eval=4, max_length=128)
ends_with_eos = sum(real_tokenizer.eos_token_id in row["labels"] for row in chat_rows.train)
print(f"pad {real_tokenizer.pad_token!r} == eos {real_tokenizer.eos_token!r}: "
      f"{real_tokenizer.pad_token_id == real_tokenizer.eos_token_id}; training rows whose labels keep eos: "
      f"{ends_with_eos} of {len(chat_rows.train)}")
assert real_tokenizer.pad_token_id == real_tokenizer.eos_token_id and ends_with_eos == len(chat_rows.train)
assert "poor generation" not in {f.pitfall for f in diagnose(narrow.log_history, tokenizer=real_tokenizer,
                                                                   data=chat_rows)}
del narrow, real_model, real_tokenizer, elements, chat_rows
release_memory()

# %% [markdown]
# Then the harness, on the base model and on the same base with the narrow adapter (`peft=`): each call loads the
# model folder, scores both tasks and frees the model again.

# %% grading="skip"
real_dir = converted_dir("smollm2-135m")
knowledge = ["lorakit_capitals_mc", "lorakit_capitals_gen"]
before = run_lm_eval(real_dir, knowledge)
print(f"base model: capital picked among 4: {before['lorakit_capitals_mc']:.0%} (chance 25%); "
      f"capital generated exactly: {before['lorakit_capitals_gen']:.0%}")
assert before["lorakit_capitals_mc"] >= 0.25 + 0.5  # it knows its capitals, far above guessing

# %% grading="skip"
after = run_lm_eval(real_dir, knowledge, peft=narrow_adapter)
for task in knowledge:
    print(f"{task}: base model {before[task]:.0%} → with the narrow adapter {after[task]:.0%}")
print(f"chance on the multiple choice: 25%; kernel peak memory so far "
      f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10:.0f} MiB")
assert after["lorakit_capitals_mc"] < before["lorakit_capitals_mc"] - 0.2  # it forgot capitals it knew
assert after["lorakit_capitals_gen"] < before["lorakit_capitals_gen"]

# %% [markdown]
# ## Merging
#
# For deployment the adapter can be folded into the weights (`merge_and_unload`): `W ← W + (alpha/r)·B A`. The
# outputs must not change.

# %% grading="skip"
inputs = tokenizer(["The for statement", "def add(a, b):"], return_tensors="pt", padding=True)
equal, diff = merged_matches_unmerged(runs["A"].model, inputs, atol=1e-4)
print(f"merged == unmerged: {equal} (max |Δlogit| = {diff:.2e})")
assert equal  # merging changed no logit by more than 1e-4

# %% [markdown]
# ### Exercise 7.1 — perplexity from losses (2 points)
#
# Write `perplexity_from(losses, token_counts)`: given the summed cross-entropy loss of several batches and the
# number of predicted tokens in each, return the perplexity (a float) over all of them (not the mean of per-batch
# perplexities).

# %% [solution] id="ch7-ppl"
def perplexity_from(losses: list[float], token_counts: list[int]) -> float:
    ### BEGIN SOLUTION
    return math.exp(sum(losses) / sum(token_counts))
    ### END SOLUTION

# %% [tests] id="ch7-ppl-tests" points=2 forbid=["perplexity", "eval_loss"]
### BEGIN HIDDEN TESTS
from lorakit.grading import collect


def batches(rng):
    cases = []
    for n_batches in (1, 2, 3, rng.randint(4, 12), rng.randint(4, 12)):
        counts = [rng.randint(1, 500) for _ in range(n_batches)]
        cases.append(([count * rng.uniform(0.5, 4.0) for count in counts], counts))
    return cases


collect("ch7-ppl-tests", perplexity_from, cases=batches, rel=1e-9)
### END HIDDEN TESTS
import math

from lorakit.lessons import check_close, self_check

with self_check("Exercise 7.1"):
    check_close(perplexity_from([math.log(4) * 10], [10]), 4.0, "one batch of 10 tokens with loss log 4 each", rel=1e-9)
    check_close(perplexity_from([10.0, 30.0], [10, 10]), math.exp(2.0), "two batches", rel=1e-9,
                hint="sum the losses, divide by all tokens, then exponentiate.")
    check_close(perplexity_from([2.0, 40.0], [1, 20]), math.exp(42 / 21), "unequal batch sizes", rel=1e-9,
                hint="weight by tokens: a mean of per-batch perplexities is wrong.")

# %% [markdown]
# ### Exercise 7.2 — pick the adapter to ship (2 points)
#
# Write `pick_adapter(results)` for a dict that maps each adapter's name to its measurements
# `{"exact_match": ..., "perplexity": ..., "forgetting_ratio": ...}`. Return the name (a str) of the adapter you
# would ship, or `None` when you would ship none. How you decide is yours: this chapter showed what each measure
# says, and `diagnose` flags forgetting above `lorakit.evaluation.FORGETTING_RATIO` (3). The grader's cases are ones
# a reviewer would not argue about: every forgetting ratio is either under 2 or over 5; two exact matches are
# either equal or at least 0.1 apart (5 of 48 prompts); and two adapters tied on exact match differ in answer
# perplexity by at least 25%. The cell after the test applies your rule to the two adapters trained above (a
# self-check, not graded).

# %% [solution] id="ch7-ship"
def pick_adapter(results: dict[str, dict[str, float]]) -> str | None:
    ### BEGIN SOLUTION
    # one sensible rule: no adapter past diagnose's threshold; then the best answers, the more confident on a tie
    kept = {name: m for name, m in results.items() if m["forgetting_ratio"] <= 3}
    if not kept:
        return None
    return max(kept, key=lambda name: (kept[name]["exact_match"], -kept[name]["perplexity"]))
    ### END SOLUTION

# %% [tests] id="ch7-ship-tests" points=2
### BEGIN HIDDEN TESTS
from lorakit.grading import collect


def adapter_results(rng):
    cases = []
    for _ in range(5):
        names = rng.sample(["A", "B", "C", "D", "E", "r8", "r16", "lr1e-3"], rng.randint(2, 5))
        matches = [k / 48 for k in rng.sample(range(0, 49, 5), 3)]  # 5 of 48 prompts apart, or tied
        lowest, confidence = rng.uniform(1.5, 3.0), rng.sample(range(len(names)), len(names))  # 25% apart, or more
        cases.append(({name: {"exact_match": rng.choice(matches),
                              "perplexity": lowest * 1.25 ** confidence[i],
                              "forgetting_ratio": rng.choice([rng.uniform(0.9, 2.0), rng.uniform(5.0, 9.0)])}
                       for i, name in enumerate(names)},))
    return cases


collect("ch7-ship-tests", pick_adapter, cases=adapter_results)
### END HIDDEN TESTS
from lorakit.lessons import check_equal, self_check

with self_check("Exercise 7.2"):
    check_equal(pick_adapter({"A": {"exact_match": 0.5, "perplexity": 3.0, "forgetting_ratio": 1.2},
                              "B": {"exact_match": 0.6, "perplexity": 4.0, "forgetting_ratio": 1.1}}), "B",
                "higher exact match wins")
    check_equal(pick_adapter({"A": {"exact_match": 0.5, "perplexity": 3.0, "forgetting_ratio": 1.2},
                              "B": {"exact_match": 0.5, "perplexity": 4.0, "forgetting_ratio": 1.1}}), "A",
                "a tie on exact match", hint="break a tie by the lower perplexity.")
    check_equal(pick_adapter({"A": {"exact_match": 0.9, "perplexity": 2.0, "forgetting_ratio": 8.3},
                              "B": {"exact_match": 0.5, "perplexity": 4.0, "forgetting_ratio": 1.1}}), "B",
                "the best adapter forgot", hint="an adapter whose forgetting ratio is above 3 is never shipped.")
    check_equal(pick_adapter({"A": {"exact_match": 0.9, "perplexity": 2.0, "forgetting_ratio": 8.3}}), None,
                "every adapter forgot", hint="the answer is None when no adapter qualifies.")

# %% grading="skip"
from lorakit.lessons import check_equal, uses_answer
from lorakit.evaluation import FORGETTING_RATIO

measured = {name: {"exact_match": exact_match(run.model, tokenizer, rows),
                   "perplexity": perplexity(run.model, tokenizer, data.eval),
                   "forgetting_ratio": forgetting(run.model, tokenizer, base_texts)["ratio"]}
            for name, run in runs.items()}
for name, m in measured.items():
    print(f"adapter {name}: " + ", ".join(f"{k} {v:.3g}" for k, v in m.items()))
with uses_answer("Exercise 7.2"):
    shipped = pick_adapter(measured)
    refused = [name for name, m in measured.items() if m["forgetting_ratio"] > FORGETTING_RATIO]
    print(f"ship: {shipped}; refused for a forgetting ratio above {FORGETTING_RATIO:g}: {', '.join(refused) or 'none'}")
    check_equal(shipped is None or measured[shipped]["forgetting_ratio"] <= FORGETTING_RATIO, True,
                "the shipped adapter stays under the forgetting threshold", hint="never ship a ratio above 3.")

# %% grading="skip"
import matplotlib.pyplot as plt

_, (match_ax, forgetting_ax) = plt.subplots(1, 2, figsize=(10, 3), layout="constrained")
match_ax.bar(list(measured), [m["exact_match"] for m in measured.values()])
match_ax.set(title="exact match on the eval prompts", xlabel="adapter", ylim=(0, 1))
forgetting_ax.bar(list(measured), [m["forgetting_ratio"] for m in measured.values()])
forgetting_ax.axhline(FORGETTING_RATIO, color="0.4", linestyle=":", label="diagnose's threshold")
forgetting_ax.set(title="forgetting ratio (base-text perplexity on / off)", xlabel="adapter")
forgetting_ax.legend()
plt.show()

# %% [markdown]
# ## TensorBoard
#
# Every lorakit run writes TensorBoard event files under its output folder (`runs/<name>/runs/...`), offline.
# In JupyterLab: `%load_ext tensorboard` then `%tensorboard --logdir runs`. Online, the harness of the section
# above scores the same adapter on standard benchmarks:
# `lm_eval --model hf --model_args pretrained=BASE,peft=ADAPTER_DIR --tasks hellaswag`.

# %% grading="skip"
event_files = sorted(p.name.split(".")[0] for p in runs["A"].output_dir.rglob("events.out.tfevents.*"))
print("TensorBoard event files written:", len(event_files) > 0)

# %% [markdown]
# ### Exercise 7.3 — read two results before shipping (written, 2 points, graded by your instructor)
#
# Two adapters for a support bot were evaluated on the same 48 held-out questions: A has exact match 35% and a
# forgetting ratio of 2.6; B has 31% and 1.1. A rule that ships the best exact match under `diagnose`'s threshold
# ships A. Would you ship A? Say what the numbers do and do not show, and the one further measurement you would want
# first. Three to five sentences.

# %% [markdown] [written] id="ch7-read-results" points=2
# Model answer (for the instructor). On 48 questions, 35% vs 31% is 17 vs 15 right answers: two questions, well
# inside the noise of so small a set (one standard error is about 7 points), so the rule's "highest exact match"
# is not a real difference here. The forgetting gap is large: A's general-text perplexity rose 2.6×, close to the
# threshold of 3, against B's 1.1×. For a bot that must also answer general questions I would ship B unless more
# data shows A really answers better: evaluate both on a larger held-out set (or several seeds) first. Credit:
# seeing that two questions are noise at n = 48, weighing forgetting, and asking for a bigger evaluation.

# %% [markdown]
# ## Check yourself
# - Eval loss / perplexity, exact match and forgetting answer different questions; report all three.
# - Perplexity over a dataset is exp(total loss / total tokens).
# - Adapters are small: load several on one base and A/B them.
# - Merging must leave outputs unchanged (to float tolerance).
