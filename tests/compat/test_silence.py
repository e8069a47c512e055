"""Library noise is silenced at its source and only there; each run's peak memory is its own."""

import logging
import subprocess
import sys

import pytest

from lorakit.compat.silence import (
    BNB_CPU_LOGGER,
    BNB_KERNEL_NOTICE,
    HF_LOAD_LOGGER,
    KERNELS_HUB_LOGGER,
    KERNELS_OFFLINE_NOTICE,
    drop_bitsandbytes_kernel_notice,
    harness_output_kept_back,
    new_head_report_dropped,
    no_dataset_bars,
    no_loading_bars,
    only_the_head_missing,
    training_notices_dropped,
)
from lorakit.memory.peak import PeakMemory, reset_peak_rss


def test_only_the_kernel_notice_is_dropped(caplog):
    drop_bitsandbytes_kernel_notice()
    logger = logging.getLogger(BNB_CPU_LOGGER)
    with caplog.at_level(logging.WARNING, logger=BNB_CPU_LOGGER):
        logger.warning(BNB_KERNEL_NOTICE + ": %s. Please make sure ...", "No module named 'kernels'")
        logger.warning("another bitsandbytes warning")
    assert [r.getMessage() for r in caplog.records] == ["another bitsandbytes warning"]


def test_only_the_offline_kernel_notice_is_dropped(caplog):
    drop_bitsandbytes_kernel_notice()
    logger = logging.getLogger(KERNELS_HUB_LOGGER)
    with caplog.at_level(logging.WARNING, logger=KERNELS_HUB_LOGGER):
        logger.warning(KERNELS_OFFLINE_NOTICE + " because Hugging Face Hub is in offline mode.")
        logger.warning("Skipping publisher trust check for 'someone/other-kernel' because Hugging Face Hub is offline.")
    assert [r.getMessage() for r in caplog.records] == [
        "Skipping publisher trust check for 'someone/other-kernel' because Hugging Face Hub is offline."]


@pytest.mark.slow
@pytest.mark.parametrize("code", ["from lorakit import load_base; import peft, bitsandbytes",
                                  "from lorakit.evaluation import diagnose; import bitsandbytes"])  # via the Trainer
def test_importing_bitsandbytes_after_a_lorakit_name_prints_no_notice(code, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert BNB_KERNEL_NOTICE not in done.stderr and KERNELS_OFFLINE_NOTICE not in done.stderr


def test_loading_bars_come_back_after_the_block():
    from transformers.utils import logging as hf_logging

    hf_logging.enable_progress_bar()
    with no_loading_bars():
        assert not hf_logging.is_progress_bar_enabled()
    assert hf_logging.is_progress_bar_enabled()


@pytest.mark.parametrize("enabled_before", [True, False])
def test_dataset_bars_return_to_their_previous_state(enabled_before):
    from datasets.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars

    (enable_progress_bars if enabled_before else disable_progress_bars)()
    try:
        with no_dataset_bars():
            assert are_progress_bars_disabled()
        assert are_progress_bars_disabled() is not enabled_before
    finally:
        enable_progress_bars()


def test_peak_memory_is_per_run():
    meter = PeakMemory("cpu")
    block = bytearray(200 * 2**20)  # a 200 MiB peak before the run
    del block
    meter.start()
    peak, kind = meter.read()
    if reset_peak_rss():
        assert kind == "peak RSS of this run"
        assert peak < _baseline() + 150 * 2**20  # the 200 MiB before the run is not counted
    else:
        assert kind == "process lifetime peak RSS"


def _baseline() -> int:
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def test_harness_output_is_held_back_unless_the_block_fails(capsys):
    with harness_output_kept_back():
        print("Running loglikelihood requests: 100%", file=sys.stderr)
    assert capsys.readouterr().err == ""
    with pytest.raises(RuntimeError, match="broken task"):
        with harness_output_kept_back():
            print("loading task lorakit_capitals_mc", file=sys.stderr)
            raise RuntimeError("broken task")
    assert capsys.readouterr().err == "loading task lorakit_capitals_mc\n"


def test_child_process_stderr_is_held_back_too(capfd):
    git_like = [sys.executable, "-c", "import sys; sys.stderr.write('fatal: not a git repository\\n')"]
    with harness_output_kept_back():
        subprocess.run(git_like, check=True)
    assert capfd.readouterr().err == ""
    with pytest.raises(RuntimeError, match="broken task"):
        with harness_output_kept_back():
            subprocess.run(git_like, check=True)
            raise RuntimeError("broken task")
    assert capfd.readouterr().err == "fatal: not a git repository\n"


HEAD_ONLY = """LlamaForSequenceClassification LOAD REPORT from: tiny
Key          | Status  | 
-------------+---------+-
score.weight | MISSING | 

Notes:
- MISSING:\tthose params were newly initialized because missing from the checkpoint."""


def test_only_a_head_only_load_report_is_dropped():
    assert only_the_head_missing(HEAD_ONLY, "score.")
    assert not only_the_head_missing(HEAD_ONLY.replace("score.weight", "model.norm.weight"), "score.")
    assert not only_the_head_missing(HEAD_ONLY.replace("MISSING |", "UNEXPECTED |", 1), "score.")
    assert not only_the_head_missing("some other warning", "score.")


def test_loading_a_classifier_shows_no_head_report_but_other_reports_stay():
    import lorakit

    seen: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: seen.append(record.getMessage())
    logger = logging.getLogger(HF_LOAD_LOGGER)
    logger.addHandler(handler)
    try:
        lorakit.load_base("tiny", task="seq_cls", num_labels=6)
        assert not any("LOAD REPORT" in message for message in seen)
        with new_head_report_dropped():
            logger.warning(HEAD_ONLY.replace("score.weight", "model.norm.weight"))
        assert any("model.norm.weight" in message for message in seen)
    finally:
        logger.removeHandler(handler)


def test_only_the_known_training_notices_are_ignored():
    import warnings

    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with training_notices_dropped():
            warnings.warn("Paged optimizers are not supported on CPU. Falling back to non-paged optimizer behavior.")
            warnings.warn("`gradient_checkpointing_enable` is deprecated and will be removed in v6.", FutureWarning)
            warnings.warn("Paged optimizers are not supported on CPU.", FutureWarning)  # another category: shown
            warnings.warn("some other training warning")
        warnings.warn("Paged optimizers are not supported on CPU.")  # outside the block: shown
    assert [str(w.message) for w in seen] == ["Paged optimizers are not supported on CPU.", "some other training warning",
                                              "Paged optimizers are not supported on CPU."]


def test_a_machine_fact_is_announced_once_and_a_choice_every_time():
    from lorakit.compat.notes import announce, log

    said: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: said.append(record.getMessage())
    log.addHandler(handler)
    try:
        for _ in range(3):
            announce("this test's machine has no native bf16", once=True)
            announce("this test's choice, made again")
    finally:
        log.removeHandler(handler)
    assert said == ["this test's machine has no native bf16", "this test's choice, made again",
                    "this test's choice, made again", "this test's choice, made again"]
