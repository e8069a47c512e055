# %% [markdown]
# # A tiny course for the grading tests
# Three short exercises whose hidden checks collect results on secret inputs.

# %%

MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "up_proj", "down_proj", "gate_proj"]

# %% grading=skip
# A long demo the grader skips (it would run past any grading timeout).
import time

time.sleep(120)

# %% [markdown]
# **Exercise 1.** Return LoRA's scale `alpha / r` as a float.

# %% [solution] id=tiny-scale
def lora_scale(r, alpha):
    ### BEGIN SOLUTION
    return alpha / r
    ### END SOLUTION

# %% [tests] id=tiny-scale-tests points=2
from lorakit.lessons.self_checks import check_close, passed

check_close(lora_scale(16, 32), 2.0, "scale at r=16, alpha=32", hint="alpha / r")
passed("Exercise 1")
### BEGIN HIDDEN TESTS
from lorakit.grading import collect

collect("tiny-scale-tests", lora_scale, rel=1e-9,
        cases=lambda rng: [(rng.choice([1, 2, 4, 8, 16, 64]), rng.choice([3, 8, 16, 32, 128])) for _ in range(4)])
### END HIDDEN TESTS

# %% [markdown]
# **Exercise 2.** Count the parameters LoRA adds to one `d_in × d_out` layer at rank `r`.

# %% [solution] id=tiny-count
def lora_params(d_in, d_out, r):
    ### BEGIN SOLUTION
    return r * (d_in + d_out)
    ### END SOLUTION

# %% [tests] id=tiny-count-tests points=2
from lorakit.lessons.self_checks import check_equal, passed

check_equal(lora_params(10, 20, 2), 60, "10×20 at r=2")
passed("Exercise 2")
### BEGIN HIDDEN TESTS
from lorakit.grading import collect

collect("tiny-count-tests", lora_params,
        cases=lambda rng: [(rng.randint(8, 4096), rng.randint(8, 4096), rng.choice([4, 8, 16])) for _ in range(4)])
### END HIDDEN TESTS

# %% [markdown]
# **Exercise 3.** From a list of module names keep the attention query and value projections, in order.

# %% [solution] id=tiny-targets
def attention_targets(names):
    ### BEGIN SOLUTION
    return [name for name in names if name in ("q_proj", "v_proj")]
    ### END SOLUTION

# %% [tests] id=tiny-targets-tests points=1
from lorakit.lessons.self_checks import check_equal, passed

check_equal(attention_targets(["q_proj", "k_proj", "v_proj"]), ["q_proj", "v_proj"], "q, k, v")
passed("Exercise 3")
### BEGIN HIDDEN TESTS
from lorakit.grading import collect

collect("tiny-targets-tests", attention_targets,
        cases=lambda rng: [(rng.sample(MODULES, rng.randint(2, 7)),) for _ in range(2)])
### END HIDDEN TESTS
