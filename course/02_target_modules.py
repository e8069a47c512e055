# %% [markdown]
# # Chapter 2 — Which modules to target
#
# **Learning goals.** After this chapter you can
# 1. name the seven linear layers of a Llama block and give their shapes from the model's config;
# 2. count the trainable parameters of any LoRA configuration by hand, and check the count with peft;
# 3. compare q,v / q,k,v,o / all-linear on cost and on results;
# 4. restrict an adapter to some layers with `layers_to_transform`;
# 5. spot a wrong "trainable parameters" figure for a 7B model.

# %%
import lorakit
from lorakit import get_peft_model  # peft's, without transformers 5's deprecation warning
from lorakit import LLAMA2_7B, ModelShape, count_base_params, count_lora_params, lora_table
from peft import LoraConfig  # after a lorakit name: lorakit keeps bitsandbytes' offline import notices out of outputs

model, tokenizer = lorakit.load_base("tiny")
shape = ModelShape.from_config(model.config, name="lorakit tiny")
print(shape)

# %% [markdown]
# ## The seven linear layers of a Llama block
#
# Attention has four projections: `q_proj`, `k_proj`, `v_proj` (queries, keys, values) and `o_proj` (output). The
# MLP is a SwiGLU with three: `gate_proj` and `up_proj` (hidden → intermediate) and `down_proj` (back). With
# grouped-query attention (GQA) several query heads share one key/value head, so `k_proj` and `v_proj` are
# narrower than `q_proj`: our tiny model has 4 query heads and 2 key/value heads.

# %%
# NBVAL_CHECK_OUTPUT
for name, (fan_in, fan_out) in shape.linear_shapes().items():
    print(f"{name:10s} {fan_in:4d} → {fan_out:4d}   weight {fan_in * fan_out:7,d}   LoRA r=16 adds {16 * (fan_in + fan_out):6,d}")

# %% [markdown]
# A LoRA adapter on a layer `in → out` has `A` (r × in) and `B` (out × r): **r · (in + out)** parameters.
#
# ### Exercise 2.1 — count by hand (2 points)
#
# Write `lora_params(shape, r, modules)`: return the number (an int) of trainable parameters of LoRA rank `r` on the
# listed `modules` of every layer of a model of that `shape`. Use only `shape.linear_shapes()` and
# `shape.num_layers` (not `count_lora_params`, which the self-check uses to check you).

# %% [solution] id="ch2-count"
def lora_params(shape: ModelShape, r: int, modules: list[str]) -> int:
    ### BEGIN SOLUTION
    dims = shape.linear_shapes()
    return shape.num_layers * sum(r * (dims[m][0] + dims[m][1]) for m in modules)
    ### END SOLUTION

# %% [tests] id="ch2-count-tests" points=2 forbid=["count_lora_params", "lora_table", "get_nb_trainable_parameters", "print_trainable_parameters"]
### BEGIN HIDDEN TESTS
from lorakit.grading import random_shape
from lorakit.grading import collect

MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


collect("ch2-count-tests", lora_params,
        cases=lambda rng: [(random_shape(rng), rng.choice([1, 4, 8, 16, 64]), rng.sample(MODULES, rng.randint(1, 7)))
                           for _ in range(5)])
### END HIDDEN TESTS
from lorakit.lessons import check_equal, self_check
from lorakit import LLAMA2_7B, count_lora_params

with self_check("Exercise 2.1"):
    check_equal(lora_params(shape, 16, ["q_proj", "v_proj"]), count_lora_params(shape, 16, "q,v"),
                "LoRA r=16 on q,v of the tiny model", hint="per layer r·(in+out) for q and for v, times the layers.")
    check_equal(lora_params(shape, 4, ["down_proj"]), count_lora_params(shape, 4, ["down_proj"]),
                "LoRA r=4 on down_proj of the tiny model", hint="down_proj goes from the MLP width back to hidden.")
    check_equal(lora_params(LLAMA2_7B, 8, ["q_proj", "v_proj"]), 4_194_304, "LLaMA-2-7B, r=8 on q,v")

# %% [markdown]
# ## The same number from peft
#
# peft wraps each targeted layer and reports what it will train. Our count from the shapes must agree.

# %% grading="skip"
for targets in ("q,v", "q,k,v,o", "all-linear"):
    fresh, _ = lorakit.load_base("tiny")
    peft_model = get_peft_model(fresh, lorakit.get_recipe("quickstart", target_modules=targets).lora_config(fresh))
    by_peft, total = peft_model.get_nb_trainable_parameters()
    print(f"{targets:11s} peft: {by_peft:8,d}   by hand: {count_lora_params(shape, 16, targets):8,d}   "
          f"({100 * by_peft / total:.2f}% of {total:,})")

# %% [markdown]
# ## On a 7B model, and a number that is often wrong
#
# For LLaMA-2-7B (hidden 4096, MLP 11008, 32 layers, 32 heads with no GQA) the same arithmetic gives the table
# below. You will read in some write-ups that "LoRA r=16 on all linear layers trains about 4M parameters" of a 7B
# model; the real figure is ten times that: **39,976,960** (0.59% of 6.74B). The ~4M figure belongs to r=8 on q and
# v only (4,194,304).

# %%
# NBVAL_CHECK_OUTPUT
print(f"LLaMA-2-7B base parameters: {count_base_params(LLAMA2_7B):,}")
print(" r   targets         trainable   % of base")
for row in lora_table(LLAMA2_7B):
    print(f"{row['r']:3d}  {row['targets']:11s} {row['trainable']:13,d}   {row['percent_of_base']:.3f}%")

# %% [markdown]
# ## Cost versus results on the tiny model
#
# Same recipe, three target sets. More targets cost more parameters (and memory); on instruction tasks the guide's
# advice is all-linear, because the MLP layers hold much of what the model "knows" and adapting them helps.

# %% grading="skip"
runs = {}
for targets in ("q,v", "q,k,v,o", "all-linear"):
    runs[targets] = lorakit.train("quickstart", target_modules=targets, max_steps=40, n_train=320, n_eval=64,
                                  gradient_checkpointing=False, save_strategy="no", output_dir=f"runs/ch2-{targets}")
for targets, res in runs.items():
    print(f"{targets:11s} trainable {res.trainable_params:8,d}   final eval loss {res.final_eval_loss:.3f}")
target_losses = {targets: res.final_eval_loss for targets, res in runs.items()}
assert target_losses["all-linear"] < target_losses["q,k,v,o"] < target_losses["q,v"]  # more targets, lower loss

# %% grading="skip"
import matplotlib.pyplot as plt

from lorakit.lessons import baselines_of, compare_train_losses

reference = baselines_of(runs["q,v"])  # the same 64 eval rows for every run
compare_train_losses({f"{targets}: {res.trainable_params:,} params, eval {res.final_eval_loss:.2f}": res.train_losses
                      for targets, res in runs.items()}, baselines=reference.lines())
plt.show()
assert max(target_losses.values()) < reference.base_model < reference.uniform  # every target set improves on the base model
assert runs["all-linear"].trainable_params > 3 * runs["q,v"].trainable_params  # several times the parameters

# %% [markdown]
# What you see: at the same rank, learning rate and 40 steps, each wider target set ends with a lower eval loss,
# and all-linear (attention and MLP) lowest, as the guide advises for instruction tasks. Part of the reason is
# plain capacity: all-linear trains several times the parameters of q,v, and like a higher rank in chapter 1 that
# makes each step move the model further. Whether it is also "where the knowledge sits" these runs cannot tell
# apart; the parameter counts printed above are the price.

# %% [markdown]
# ## Only some layers: `layers_to_transform`
#
# peft can restrict an adapter to chosen layer indices, e.g. the top half of the network. It needs the target
# modules as an explicit list (a preset like "all-linear" can't be combined with it, and lorakit says so).

# %%
try:
    lorakit.get_recipe("quickstart", layers_to_transform=[2, 3])
except ValueError as err:
    print("ValueError:", err)
top_half = lorakit.get_recipe("quickstart", target_modules=["q_proj", "v_proj"], layers_to_transform=[2, 3])
print(top_half.lora_config().layers_to_transform)

# %% [markdown]
# ### Top half or bottom half?
#
# The guide's example adapts only the last 16 of 32 layers, reasoning that later layers are more task-specific and
# earlier ones more general. Test it at equal cost: all seven modules of the top two layers of the tiny model
# against the bottom two, same steps and data, two seeds.

# %% grading="skip"
every_module = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
halves = {}
for seed in (42, 0):
    for half, layers in (("bottom", [0, 1]), ("top", [2, 3])):
        run = lorakit.train("quickstart", target_modules=every_module, layers_to_transform=layers, seed=seed,
                            max_steps=40, n_train=320, n_eval=64, gradient_checkpointing=False, save_strategy="no",
                            output_dir=f"runs/ch2-{half}-{seed}", progress=False)
        halves[half, seed] = run.final_eval_loss
        print(f"seed {seed:2d}, {half:6s} layers {layers}: trainable {run.trainable_params:,}, "
              f"final eval loss {run.final_eval_loss:.3f}")
assert all(halves["bottom", seed] < halves["top", seed] for seed in (42, 0))

# %% [markdown]
# **What you see.** At the same parameter count the bottom half learned more, for both seeds. An adapter in an
# early layer changes the input of every layer above it; one in the last layers can only adjust what reaches
# them. "Later layers are more task-specific" may describe what layers represent, but it does not make the top
# half the better place to spend a small budget, at least on this model. If you restrict layers on your own
# model, compare both halves as here rather than assuming.

# %% [markdown]
# ### Exercise 2.2 — a parameter budget (2 points)
#
# You may train at most `budget` LoRA parameters on a model of shape `shape`. Write `budget_plan(shape, budget)`
# returning a dict of two ints:
# * `"max_rank"`: the largest power of two `r` (1, 2, 4, …, 1024) whose LoRA on all seven linear layers of every
#   layer fits within the budget (0 if not even r = 1 fits);
# * `"top_layers_r16"`: how many layers (at most `shape.num_layers`) you can adapt at r = 16 on all seven linear
#   layers (with `layers_to_transform`) within the same budget.
#
# `count_lora_params` is allowed here.

# %% [solution] id="ch2-budget"
ALL = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def budget_plan(shape: ModelShape, budget: int) -> dict:
    ### BEGIN SOLUTION
    fitting = [2**k for k in range(11) if count_lora_params(shape, 2**k, "all-linear") <= budget]
    per_layer = count_lora_params(shape, 16, ALL, layers_to_transform=[0])
    return {"max_rank": max(fitting, default=0), "top_layers_r16": min(shape.num_layers, budget // per_layer)}
    ### END SOLUTION

# %% [tests] id="ch2-budget-tests" points=2
### BEGIN HIDDEN TESTS
from lorakit.grading import random_shape
from lorakit.grading import collect
from lorakit import count_lora_params


def budgets(rng):
    cases = []
    for _ in range(5):
        shape = random_shape(rng)
        per_rank = count_lora_params(shape, 1, "all-linear")
        cases.append((shape, int(per_rank * rng.uniform(0.5, 300))))
    return cases


collect("ch2-budget-tests", budget_plan, cases=budgets)
### END HIDDEN TESTS
from lorakit.lessons import check_equal, self_check
from lorakit import LLAMA2_7B

with self_check("Exercise 2.2"):
    plan = budget_plan(LLAMA2_7B, 10_000_000)
    check_equal(sorted(plan), ["max_rank", "top_layers_r16"], "the keys of budget_plan's dict")
    check_equal(plan["max_rank"], 4, "max_rank for LLaMA-2-7B within 10M",
                hint="all-linear on 7B costs 2,498,560 parameters per unit of rank.")
    check_equal(plan["top_layers_r16"], 8, "top_layers_r16 for LLaMA-2-7B within 10M",
                hint="r=16 all-linear costs 1,249,280 parameters per layer.")
    check_equal(budget_plan(LLAMA2_7B, 10**12)["top_layers_r16"], 32, "top_layers_r16 with a huge budget",
                hint="a model has only shape.num_layers layers.")

# %% [markdown]
# ## LoRA from scratch
#
# Strip peft's `LoraLayer` of its bookkeeping (several adapters per layer, dtype casts, quantised bases) and a few
# lines remain. Writing them yourself shows exactly what an adapter trains and what merging means. The new layer
# keeps the original `nn.Linear` frozen and adds a low-rank path beside it:
#
# `y = base(x) + scaling · (x Aᵀ) Bᵀ`, with `A` of shape `r × in`, `B` of shape `out × r` and `scaling = alpha / r`.
#
# Two details make it behave like peft's: `A` starts random and `B` starts at zero, so the wrapped layer computes
# exactly what the original did until training moves `B`; and the base weight and bias stop requiring gradients.

# %%
import copy
import math

import torch
from torch import nn

# %% [markdown]
# ### Exercise 2.3 — a LoRALinear of your own (3 points)
#
# Complete `LoRALinear(base, r, alpha)`:
# * `self.base`: the wrapped `nn.Linear`, frozen (none of its parameters requires a gradient);
# * `self.lora_A`: an `nn.Parameter` of shape `(r, base.in_features)` with small random values;
# * `self.lora_B`: an `nn.Parameter` of shape `(base.out_features, r)`, all zeros;
# * `self.scaling`: `alpha / r`;
# * `forward(x)`: returns the formula above, for `x` of shape `(..., base.in_features)`;
# * `merged_weight()`: returns the weight of one plain linear layer computing the same thing, `W + scaling · B A` (same
#   shape as the base weight; the bias is unchanged).

# %% [solution] id="ch2-scratch"
class LoRALinear(nn.Module):
    """A frozen nn.Linear plus a trainable low-rank update scaled by alpha / r."""

    def __init__(self, base: nn.Linear, r: int, alpha: float) -> None:
        super().__init__()
        ### BEGIN SOLUTION
        self.base = base
        for param in self.base.parameters():
            param.requires_grad_(False)
        self.lora_A = nn.Parameter(torch.randn(r, base.in_features) / math.sqrt(base.in_features))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, r))
        self.scaling = alpha / r
        ### END SOLUTION

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ### BEGIN SOLUTION
        return self.base(x) + self.scaling * (x @ self.lora_A.T) @ self.lora_B.T
        ### END SOLUTION

    def merged_weight(self) -> torch.Tensor:
        ### BEGIN SOLUTION
        return self.base.weight + self.scaling * self.lora_B @ self.lora_A
        ### END SOLUTION

# %% [tests] id="ch2-scratch-tests" points=3 forbid=["get_peft_model", "LoraConfig", "LoraLayer", "merge_and_unload"]
from lorakit.lessons import check_equal, self_check

with self_check("Exercise 2.3"):
    torch.manual_seed(0)
    layer = LoRALinear(nn.Linear(6, 4), r=2, alpha=4)
    check_equal(tuple(layer.lora_A.shape), (2, 6), "lora_A.shape", hint="A maps the input down to r: (r, in_features).")
    check_equal(tuple(layer.lora_B.shape), (4, 2), "lora_B.shape", hint="B maps r back up: (out_features, r).")
    check_equal([p.requires_grad for p in layer.base.parameters()], [False, False], "base weight and bias frozen")
    check_equal(layer.scaling, 2.0, "scaling for r=2, alpha=4", hint="scaling = alpha / r.")
    x = torch.randn(3, 6)
    check_equal(torch.allclose(layer(x), layer.base(x)), True, "at init the output equals the base layer's",
                hint="B starts at zero, so the low-rank path adds nothing.")
    with torch.no_grad():
        layer.lora_B.normal_()
        check_equal(torch.allclose(layer(x), x @ layer.merged_weight().T + layer.base.bias, atol=1e-5), True,
                    "forward(x) equals the merged layer's output", hint="merged weight = W + scaling · B @ A.")
### BEGIN HIDDEN TESTS
import torch
from torch import nn
from lorakit.grading import collect


def scratch_case(d_in: int, d_out: int, r: int, alpha: float, seed: int) -> dict:
    """The learner's layer on small integer weights and inputs (exact in float32): init facts, outputs, merge."""
    gen = torch.Generator().manual_seed(seed)
    ints = lambda *shape: torch.randint(-3, 4, shape, generator=gen).float()  # noqa: E731
    fresh = LoRALinear(nn.Linear(d_in, d_out), r, alpha)
    init = [list(fresh.lora_A.shape), list(fresh.lora_B.shape), bool(torch.all(fresh.lora_B == 0)),
            [p.requires_grad for p in fresh.base.parameters()], float(fresh.scaling)]
    with torch.no_grad():
        fresh.base.weight.copy_(ints(d_out, d_in))
        fresh.base.bias.copy_(ints(d_out))
        fresh.lora_A.copy_(ints(r, d_in))
        fresh.lora_B.copy_(ints(d_out, r))
        out, merged = fresh(ints(2, d_in)), fresh.merged_weight()
    as_lists = lambda t: [[round(v, 4) for v in row] for row in t.tolist()]  # noqa: E731
    return {"init": init, "forward": as_lists(out), "merged": as_lists(merged)}


def scratch_cases(rng) -> list[tuple]:
    cases = []
    for _ in range(4):
        r = rng.choice([1, 2, 4, 8])
        cases.append((rng.randint(2, 8), rng.randint(2, 8), r, r * rng.choice([0.5, 1, 2, 4]), rng.randrange(2**31)))
    return cases


collect("ch2-scratch-tests", scratch_case, cases=scratch_cases, rel=1e-6)
### END HIDDEN TESTS

# %% [markdown]
# ## Your layer against peft's
#
# Now on the built-in model: layer 0's `q_proj`, wrapped by peft (rank 8, alpha 16, that one layer only) and by your
# `LoRALinear` around a copy of the same base layer. peft also starts `B` at zero, so a comparison at init would
# prove nothing; both layers get the same random `B`, your layer takes peft's random `A`, and both see one input.

# %%
from lorakit.lessons import uses_answer

torch.manual_seed(0)
one_layer, _ = lorakit.load_base("tiny")
peft_one = get_peft_model(one_layer, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules=["q_proj"],
                                                 layers_to_transform=[0]))
peft_q = peft_one.base_model.model.model.layers[0].self_attn.q_proj
with uses_answer("Exercise 2.3"):
    mine = LoRALinear(copy.deepcopy(peft_q.base_layer), r=8, alpha=16)
    with torch.no_grad():
        peft_q.lora_B["default"].weight.normal_(std=0.05)
        mine.lora_A.copy_(peft_q.lora_A["default"].weight)
        mine.lora_B.copy_(peft_q.lora_B["default"].weight)
        x = torch.randn(2, 5, mine.base.in_features)
        lora_part = (peft_q(x) - peft_q.base_layer(x)).abs().max().item()
        gap = (mine(x) - peft_q(x)).abs().max().item()
    print(f"scaling: peft {peft_q.scaling['default']}, yours {mine.scaling}")
    print(f"largest LoRA contribution to an output: {lora_part:.4f}; "
          f"largest gap between the two layers: {gap:.1e}")
    assert peft_q.scaling["default"] == mine.scaling
    assert lora_part > 0.01 and gap < 1e-5 * lora_part, (lora_part, gap)

# %% [markdown]
# The LoRA path changes the outputs visibly (the first number), and the two implementations agree to float
# rounding (the second, asserted above to be at least 100,000 times smaller).
#
# ## Merging by hand
#
# For inference the adapter can be folded into the weight: one matrix `W + scaling · B A`, no extra matmuls, no
# adapter left. peft's `merge_and_unload` does that and hands back plain `nn.Linear` layers; yours is `merged_weight()`.

# %%
with uses_answer("Exercise 2.3"):
    by_hand = LoRALinear(copy.deepcopy(peft_q.base_layer), r=8, alpha=16)  # yours again, with peft's A and B
    with torch.no_grad():
        by_hand.lora_A.copy_(peft_q.lora_A["default"].weight)
        by_hand.lora_B.copy_(peft_q.lora_B["default"].weight)
    merged_by_hand = by_hand.merged_weight().detach()
    merged_q = peft_one.merge_and_unload().model.layers[0].self_attn.q_proj
    merge_gap = (merged_q.weight - merged_by_hand).abs().max().item()
    print(f"after merge_and_unload: {type(merged_q).__name__}; largest weight difference from yours {merge_gap:.1e}")
    assert type(merged_q) is nn.Linear and merge_gap < 1e-6, merge_gap

# %% [markdown]
# ### Exercise 2.4 — spend half the budget (written, 2 points, graded by your instructor)
#
# A colleague has to cut a 7B adapter to half its planned parameters and proposes the guide's example: keep the
# rank, adapt only the top 16 of 32 layers. Using what this chapter's top-or-bottom run showed, say what you would
# try instead or as well, and what you would measure before choosing. Three to five sentences in the cell below.

# %% [markdown] [written] id="ch2-half-budget" points=2
# Model answer (for the instructor). At equal cost the bottom half beat the top half here for both seeds, so the
# top half is an assumption to test, not a safe default. Half the budget can also be spent as half the rank on
# every layer (r 16 → 8 all-linear), which keeps every layer adaptable. I would run the three candidates (top
# half, bottom half, all layers at half rank) for the same short run on the same data with two seeds, compare the
# held-out eval loss (and the task metric if there is one), and keep the winner. Credit: any plan that compares
# options at equal parameter count on held-out data with more than one seed, and does not take the tiny model's
# result as proof for the 7B model.

# %% [markdown]
# ## Check yourself
# - A Llama block has q, k, v, o (attention) and gate, up, down (MLP); GQA makes k and v narrower.
# - LoRA adds r·(in + out) per adapted layer; multiply by the layers.
# - LLaMA-2-7B: r=8 on q,v = 4.19M; r=16 all-linear = 39.98M, not "~4M".
# - `layers_to_transform` needs an explicit module list.
