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
from lorakit.corpus import pretraining_texts
from lorakit.data import load_dataset
from lorakit.evaluate import compare_adapters, exact_match, forgetting, generate_answers, merged_matches_unmerged
from lorakit.evaluate import perplexity

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
print(f"base model, answer-token perplexity: {base_ppl:,.0f}")

# %% [markdown]
# ## Two adapters on the same data
#
# Both adapters follow the quickstart recipe for 150 steps; **A** uses learning rate 1e-3 (what chapter 3's sweep
# found best for this tiny model), **B** the guide's 2e-4 (tuned for 7B-class models). Each run logs train loss,
# eval loss and eval perplexity, grad norm and learning rate.

# %% grading=skip
runs = {}
for name, lr in (("A", 1e-3), ("B", 2e-4)):
    runs[name] = lorakit.train("quickstart", data=data, learning_rate=lr, max_steps=150, num_train_epochs=1,
                               gradient_checkpointing=False, save_strategy="no", output_dir=f"runs/ch7-{name}")
    print(runs[name].summary())
print({k: v for k, v in runs["A"].log_history[-2].items() if k in ("eval_loss", "eval_perplexity", "epoch")})

# %% [markdown]
# ## Task accuracy by exact match
#
# Loss says how likely the right answer is; exact match says whether greedy decoding actually produces it. Both
# matter: a model can lower its loss a lot before its top choice becomes right.

# %% grading=skip
rows = data.raw_eval
for name, run in runs.items():
    print(f"adapter {name}: exact match {exact_match(run.model, tokenizer, rows):.0%}, answer perplexity "
          f"{perplexity(run.model, tokenizer, data.eval):.2f}")
print(f"base: exact match {exact_match(model, tokenizer, rows):.0%}")

# %% [markdown]
# ## A/B on one base
#
# Instead of two full models, load both saved adapters onto one base with peft (`load_adapter`, `set_adapter`) and
# answer the same prompts side by side.

# %% grading=skip
base_for_ab, _ = lorakit.load_base("tiny")
from peft import PeftModel

ab_model = PeftModel.from_pretrained(base_for_ab, str(runs["A"].adapter_dir), adapter_name="A")
table = compare_adapters(ab_model, tokenizer, {"A": str(runs["A"].adapter_dir), "B": str(runs["B"].adapter_dir)},
                         rows[:8])
for row in table:
    print(f"{row['prompt'][:48]:48s} | {row['expected']!s:18s} | A: {row['A']!s:18s} | B: {row['B']!s:18s}")

# %% [markdown]
# ## Forgetting
#
# Fine-tuning on a narrow task can damage what the model knew. Measure the base corpus (Python docs and source)
# perplexity with the adapter switched off and on: a ratio well above 1 means forgetting.

# %% grading=skip
base_texts = [t[:1500] for t in pretraining_texts("heldout")[:6]]
for name, run in runs.items():
    f = forgetting(run.model, tokenizer, base_texts)
    print(f"adapter {name}: base-corpus perplexity {f['base_perplexity']:.1f} → {f['adapted_perplexity']:.1f} "
          f"(ratio {f['ratio']:.3f})")

# %% [markdown]
# ## Merging
#
# For deployment the adapter can be folded into the weights (`merge_and_unload`): `W ← W + (alpha/r)·B A`. The
# outputs must not change.

# %% grading=skip
inputs = tokenizer(["The for statement", "def add(a, b):"], return_tensors="pt", padding=True)
equal, diff = merged_matches_unmerged(runs["A"].model, inputs, atol=1e-4)
print(f"merged == unmerged: {equal} (max |Δlogit| = {diff:.2e})")

# %% [markdown]
# ### Exercise 7.1 — perplexity from losses (2 points)
#
# Write `perplexity_from(losses, token_counts)`: given the summed cross-entropy loss of several batches and the
# number of predicted tokens in each, return the perplexity (a float) over all of them (not the mean of per-batch
# perplexities).

# %% [solution] id=ch7-ppl
def perplexity_from(losses: list[float], token_counts: list[int]) -> float:
    ### BEGIN SOLUTION
    return math.exp(sum(losses) / sum(token_counts))
    ### END SOLUTION

# %% [tests] id=ch7-ppl-tests points=2
### BEGIN HIDDEN TESTS
from lorakit.grading.collect import collect


def batches(rng):
    cases = []
    for n_batches in (1, 2, 3, rng.randint(4, 12), rng.randint(4, 12)):
        counts = [rng.randint(1, 500) for _ in range(n_batches)]
        cases.append(([count * rng.uniform(0.5, 4.0) for count in counts], counts))
    return cases


collect("ch7-ppl-tests", perplexity_from, cases=batches, rel=1e-9)
### END HIDDEN TESTS
import math

from lorakit.checks import check_close, passed

check_close(perplexity_from([math.log(4) * 10], [10]), 4.0, "one batch of 10 tokens with loss log 4 each", rel=1e-9)
check_close(perplexity_from([10.0, 30.0], [10, 10]), math.exp(2.0), "two batches", rel=1e-9,
            hint="sum the losses, divide by all tokens, then exponentiate.")
check_close(perplexity_from([2.0, 40.0], [1, 20]), math.exp(42 / 21), "unequal batch sizes", rel=1e-9,
            hint="weight by tokens: a mean of per-batch perplexities is wrong.")
passed("Exercise 7.1")

# %% [markdown]
# ### Exercise 7.2 — pick the adapter to ship (2 points)
#
# Write `pick_adapter(results)` for a dict that maps each adapter's name to its measurements
# `{"exact_match": ..., "perplexity": ..., "forgetting_ratio": ...}`. Return the name (a str) of the adapter to
# ship: never one whose forgetting ratio is above 3 (the threshold `diagnose` uses,
# `lorakit.diagnostics.FORGETTING_RATIO`); among the others the highest exact match, a tie broken by the lower
# answer perplexity. Return `None` when every adapter forgot too much. The cell after the test applies it to the
# two adapters trained above (a self-check, not graded).

# %% [solution] id=ch7-ship
def pick_adapter(results: dict[str, dict[str, float]]) -> str | None:
    ### BEGIN SOLUTION
    kept = {name: m for name, m in results.items() if m["forgetting_ratio"] <= 3}
    if not kept:
        return None
    return max(kept, key=lambda name: (kept[name]["exact_match"], -kept[name]["perplexity"]))
    ### END SOLUTION

# %% [tests] id=ch7-ship-tests points=2
### BEGIN HIDDEN TESTS
from lorakit.grading.collect import collect


def adapter_results(rng):
    cases = []
    for _ in range(5):
        names = rng.sample(["A", "B", "C", "D", "E", "r8", "r16", "lr1e-3"], rng.randint(2, 5))
        shared_match = rng.randint(0, 48) / 48  # ties on exact match happen: 48 eval rows give coarse steps
        cases.append(({name: {"exact_match": shared_match if rng.random() < 0.5 else rng.randint(0, 48) / 48,
                              "perplexity": rng.uniform(1.5, 40.0),
                              "forgetting_ratio": rng.choice([rng.uniform(0.9, 2.9), rng.uniform(3.1, 9.0)])}
                       for name in names},))
    return cases


collect("ch7-ship-tests", pick_adapter, cases=adapter_results)
### END HIDDEN TESTS
from lorakit.checks import check_equal, passed

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
passed("Exercise 7.2")

# %% grading=skip
measured = {name: {"exact_match": exact_match(run.model, tokenizer, rows),
                   "perplexity": perplexity(run.model, tokenizer, data.eval),
                   "forgetting_ratio": forgetting(run.model, tokenizer, base_texts)["ratio"]}
            for name, run in runs.items()}
for name, m in measured.items():
    print(f"adapter {name}: " + ", ".join(f"{k} {v:.3g}" for k, v in m.items()))
print("ship:", pick_adapter(measured))

# %% [markdown]
# ## TensorBoard
#
# Every lorakit run writes TensorBoard event files under its output folder (`runs/<name>/runs/...`), offline.
# In JupyterLab: `%load_ext tensorboard` then `%tensorboard --logdir runs`. For online users, the standard
# benchmark harness works on a saved adapter too:
# `lm_eval --model hf --model_args pretrained=BASE,peft=ADAPTER_DIR --tasks hellaswag` (never needed here).

# %% grading=skip
event_files = sorted(p.name.split(".")[0] for p in runs["A"].output_dir.rglob("events.out.tfevents.*"))
print("TensorBoard event files written:", len(event_files) > 0)

# %% [markdown]
# ## Check yourself
# - Eval loss / perplexity, exact match and forgetting answer different questions; report all three.
# - Perplexity over a dataset is exp(total loss / total tokens).
# - Adapters are small: load several on one base and A/B them.
# - Merging must leave outputs unchanged (to float tolerance).
