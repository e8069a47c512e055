"""Hidden-check inputs are valid and varied: chapter 8's tasks are ones only one recipe fits."""

import random

from lorakit.grading.cases import random_shape, random_task


def test_random_tasks_never_mix_the_shapes_or_outputs_that_would_make_the_recipe_arguable():
    tasks = [random_task(random.Random(seed)) for seed in range(300)]
    assert not any(t["pairs"] and t["labels"] is not None for t in tasks)
    assert not any(t["output"] == "code" and t["new_knowledge"] for t in tasks)
    kinds = {("pairs" if t["pairs"] else "labels" if t["labels"] else "rows", t["output"], t["new_knowledge"])
             for t in tasks}
    assert len(kinds) == 9  # every data shape with every one of the three outputs
    assert all(2 <= len(set(t["labels"])) == len(t["labels"]) <= 5 for t in tasks if t["labels"] is not None)
    assert {t["n_train"] < 1_000 for t in tasks} == {True, False}
    assert random_task(random.Random(7)) == random_task(random.Random(7))


def test_random_shapes_split_their_heads_evenly():
    shapes = [random_shape(random.Random(seed)) for seed in range(100)]
    assert all(s.num_attention_heads % s.num_key_value_heads == 0 for s in shapes)
    assert len({s.hidden_size for s in shapes}) > 3
