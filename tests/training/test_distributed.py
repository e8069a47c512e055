"""`lorakit train` under torchrun and accelerate launch: two CPU processes (gloo) split the data, stay in sync, and
save one adapter; the shipped accelerate configs (DDP, FSDP + QLoRA, DeepSpeed ZeRO-2/3) parse with accelerate's own
classes."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO

CONFIGS = REPO / "configs" / "accelerate"
DISTRIBUTED_TYPES = {"ddp": "MULTI_GPU", "fsdp_qlora": "FSDP", "deepspeed_zero2": "DEEPSPEED",
                     "deepspeed_zero3": "DEEPSPEED"}
N_TRAIN, BATCH, WORLD = 32, 4, 2
OVERRIDES = {"n_train": N_TRAIN, "n_eval": 8, "num_train_epochs": 1, "per_device_train_batch_size": BATCH,
             "logging_steps": 1, "max_length": 64}

# Runs `lorakit.cli.main` in each rank and records, per rank, what it saw: the process group, the training rows it
# was fed, its trained LoRA weights and every PeftModel.save_pretrained call it made.
ENTRY = r'''
import hashlib, json, os, sys
import peft, torch.distributed as dist
import lorakit.training.pipeline as training
from lorakit.cli import main

record = {"saves": [], "rows": []}
save_pretrained = peft.PeftModel.save_pretrained
def recording_save(self, save_directory, *args, **kwargs):
    record["saves"].append(os.path.basename(os.path.normpath(str(save_directory))))
    return save_pretrained(self, save_directory, *args, **kwargs)
peft.PeftModel.save_pretrained = recording_save

compute_loss = training.LorakitTrainer.compute_loss
def recording_loss(self, model, inputs, *args, **kwargs):
    if model.training:  # padding-free batches: the rows concatenated, position ids restart at each row
        ids, positions = inputs["input_ids"][0], inputs["position_ids"][0]
        starts = (positions == 0).nonzero().flatten().tolist() + [len(positions)]
        for start, end in zip(starts, starts[1:]):
            record["rows"].append(hashlib.sha1(ids[start:end].numpy().tobytes()).hexdigest())
    return compute_loss(self, model, inputs, *args, **kwargs)
training.LorakitTrainer.compute_loss = recording_loss

train = training.train
def recording_train(*args, **kwargs):
    result = train(*args, **kwargs)
    record.update(world_size=dist.get_world_size(), rank=dist.get_rank(), backend=dist.get_backend(),
                  is_main_process=result.is_main_process, adapter_dir=str(result.adapter_dir),
                  steps=max(h["step"] for h in result.log_history),
                  weights={n: float(p.detach().double().sum()) for n, p in result.model.named_parameters()
                           if p.requires_grad})
    return result
training.train = recording_train

record["exit"] = main(sys.argv[2:])
with open(os.path.join(sys.argv[1], "rank%s.json" % os.environ["RANK"]), "w") as f:
    json.dump(record, f)
'''


def launch_env() -> dict[str, str]:
    """One CPU thread per process, no GPU, offline: the environment each rank runs in."""
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", CUDA_VISIBLE_DEVICES="", HF_HUB_OFFLINE="1",
               TOKENIZERS_PARALLELISM="false", MPLBACKEND="Agg", PYTHONPATH=str(REPO))
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    return env


def train_argv(output_dir: Path) -> list[str]:
    argv = ["train", "--recipe", "quickstart", "--output-dir", str(output_dir)]
    for field, value in OVERRIDES.items():
        argv += ["--set", f"{field}={value}"]
    return argv


def read_ranks(record_dir: Path, proc: subprocess.CompletedProcess) -> dict[int, dict]:
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    found = {int(p.stem[4:]): json.loads(p.read_text()) for p in record_dir.glob("rank*.json")}
    assert sorted(found) == list(range(WORLD)), f"rank records: {sorted(found)}\n{proc.stderr[-4000:]}"
    return found


def run_launcher(launcher: list[str], tmp: Path) -> tuple[dict[int, dict], Path]:
    """Run the recording entry script under `launcher` (torchrun / accelerate launch); return per-rank records."""
    entry, records, output_dir = tmp / "entry.py", tmp / "records", tmp / "run"
    entry.write_text(ENTRY)
    records.mkdir()
    cmd = [*launcher, str(entry), str(records), *train_argv(output_dir)]
    proc = subprocess.run(cmd, cwd=tmp, env=launch_env(), capture_output=True, text=True, timeout=300)
    return read_ranks(records, proc), output_dir


@pytest.fixture(scope="module")
def torchrun_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("torchrun")
    launcher = [str(Path(sys.executable).parent / "torchrun"), "--standalone", f"--nproc_per_node={WORLD}"]
    return run_launcher(launcher, tmp)


def check_ddp_run(ranks: dict[int, dict], output_dir: Path) -> None:
    """What any 2-process data-parallel lorakit run must show (shared with the accelerate config test)."""
    from safetensors.torch import load_file

    for rank, record in ranks.items():
        assert record["exit"] == 0
        assert (record["rank"], record["world_size"], record["backend"]) == (rank, WORLD, "gloo")
        assert record["is_main_process"] == (rank == 0)
        # each rank takes every other batch: N_TRAIN / (BATCH × WORLD) optimizer steps, not N_TRAIN / BATCH
        assert record["steps"] == N_TRAIN // (BATCH * WORLD)
        assert len(record["rows"]) == N_TRAIN // WORLD
    rows = [set(ranks[r]["rows"]) for r in range(WORLD)]
    assert not rows[0] & rows[1], "both ranks trained on the same rows"
    assert len(rows[0] | rows[1]) == N_TRAIN
    # DDP all-reduces the gradients: both ranks end with the same LoRA weights, which have moved from their init
    assert ranks[0]["weights"].keys() == ranks[1]["weights"].keys()
    for name, value in ranks[0]["weights"].items():
        assert ranks[1]["weights"][name] == pytest.approx(value, rel=1e-6, abs=1e-9), name
    assert any(abs(v) > 0 for n, v in ranks[0]["weights"].items() if "lora_B" in n)
    # one adapter, written by rank 0 alone, holding the trained weights
    assert ranks[0]["saves"].count("adapter") == 1 and ranks[1]["saves"].count("adapter") == 0
    adapter_dir = output_dir / "adapter"
    assert ranks[0]["adapter_dir"] == ranks[1]["adapter_dir"] == str(adapter_dir)
    assert (adapter_dir / "adapter_config.json").exists() and (adapter_dir / "tokenizer.json").exists()
    saved = load_file(adapter_dir / "adapter_model.safetensors")
    lora_b = sum(float(t.double().sum()) for n, t in saved.items() if "lora_B" in n)
    expected = sum(v for n, v in ranks[0]["weights"].items() if "lora_B" in n)
    assert lora_b == pytest.approx(expected, rel=1e-5)


@pytest.mark.slow
def test_torchrun_two_cpu_processes_train_one_adapter(torchrun_run):
    """torchrun --nproc_per_node 2 on the CLI: gloo, world size 2 on each rank, data split, one adapter saved."""
    ranks, output_dir = torchrun_run
    check_ddp_run(ranks, output_dir)
    assert len(list((output_dir / "runs").rglob("events.out.tfevents*"))) == 1  # TensorBoard from rank 0 only


@pytest.mark.slow  # a training run in a fresh process
def test_single_process_run_still_saves_its_adapter(tmp_path):
    """Without a launcher: world size 1, every batch on one process, the adapter saved by model.save_pretrained."""
    from lorakit import train

    result = train("quickstart", output_dir=tmp_path, progress=False, **OVERRIDES)
    assert result.is_main_process
    assert max(h["step"] for h in result.log_history) == N_TRAIN // BATCH
    assert (result.adapter_dir / "adapter_model.safetensors").exists()
    assert (result.adapter_dir / "tokenizer.json").exists()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_accelerate_launch_with_the_ddp_config_trains_on_two_cpu_processes(tmp_path):
    """configs/accelerate/ddp.yaml really launches: `accelerate launch --num_processes 2` on CPU, same checks."""
    launcher = [str(Path(sys.executable).parent / "accelerate"), "launch", "--config_file", str(CONFIGS / "ddp.yaml"),
                "--num_processes", str(WORLD), "--main_process_port", str(free_port())]
    check_ddp_run(*run_launcher(launcher, tmp_path))


def test_every_shipped_config_is_tested():
    assert sorted(p.stem for p in CONFIGS.glob("*.yaml")) == sorted(DISTRIBUTED_TYPES)


def launch_args(name: str):
    """What `accelerate launch --config_file configs/accelerate/<name>.yaml` resolves the config into."""
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser

    args = launch_command_parser().parse_args(["--config_file", str(CONFIGS / f"{name}.yaml"), "train.py"])
    args, defaults, _ = _validate_launch_command(args)
    return args, defaults


@pytest.mark.parametrize("name", sorted(DISTRIBUTED_TYPES))
def test_accelerate_config_loads_with_known_keys(name):
    """accelerate's ClusterConfig rejects unknown top-level keys; nested keys must be `accelerate launch` options."""
    from accelerate.commands.config.config_args import ClusterConfig, load_config_from_file
    from accelerate.commands.launch import launch_command_parser

    config = load_config_from_file(str(CONFIGS / f"{name}.yaml"))
    assert isinstance(config, ClusterConfig)
    assert config.distributed_type.value == DISTRIBUTED_TYPES[name]
    assert (config.compute_environment.value, config.num_machines, config.use_cpu) == ("LOCAL_MACHINE", 1, False)
    assert config.mixed_precision == "no"  # the recipe's precision decides (TrainingArguments override it)
    options = {action.dest for action in launch_command_parser()._actions}
    nested = [*config.fsdp_config, *config.deepspeed_config]
    assert nested or name == "ddp"
    assert not [key for key in nested if key not in options], f"unknown keys in {name}.yaml"
    args, _ = launch_args(name)
    assert (args.multi_gpu, args.use_fsdp, args.use_deepspeed) == (
        name == "ddp", name == "fsdp_qlora", name.startswith("deepspeed"))


def _export(monkeypatch, env: dict[str, str]) -> None:
    for key in [k for k in os.environ if k.startswith(("FSDP_", "ACCELERATE_"))]:
        monkeypatch.delenv(key)
    for key, value in env.items():
        if key.startswith(("FSDP_", "ACCELERATE_")):
            monkeypatch.setenv(key, value)


def test_fsdp_qlora_config_builds_the_plugin_qlora_needs(monkeypatch):
    """The environment `accelerate launch` exports for fsdp_qlora.yaml gives a full-shard FSDP1 plugin with the
    settings FSDP + QLoRA requires (no orig params, RAM-efficient loading with synced module states)."""
    from accelerate.utils import FullyShardedDataParallelPlugin
    from accelerate.utils.launch import prepare_multi_gpu_env
    from torch.distributed.fsdp import ShardingStrategy, StateDictType

    args, _ = launch_args("fsdp_qlora")
    _export(monkeypatch, prepare_multi_gpu_env(args))
    # sync_module_states asks torch for the GPU (through torch.cuda or torch.accelerator, by accelerate's version);
    # this machine may have none, so torch itself reports one
    import torch

    monkeypatch.setattr("torch.cuda.is_available", lambda: True)
    monkeypatch.setattr("torch.cuda.current_device", lambda: 0)
    if hasattr(torch, "accelerator"):
        monkeypatch.setattr("torch.accelerator.current_accelerator", lambda *a, **k: torch.device("cuda"))
    plugin = FullyShardedDataParallelPlugin()
    assert plugin.fsdp_version == 1
    assert plugin.sharding_strategy == ShardingStrategy.FULL_SHARD
    assert plugin.use_orig_params is False
    assert plugin.cpu_ram_efficient_loading is True and plugin.sync_module_states is True
    assert plugin.state_dict_type == StateDictType.SHARDED_STATE_DICT
    assert plugin.cpu_offload.offload_params is False and plugin.activation_checkpointing is False
    assert plugin.auto_wrap_policy is not None


@pytest.mark.parametrize("name, stage", [("deepspeed_zero2", 2), ("deepspeed_zero3", 3)])
def test_deepspeed_config_builds_the_plugin(monkeypatch, name, stage):
    """The DeepSpeed configs give the intended ZeRO stage, leave accumulation and clipping to the recipe ("auto"),
    and ZeRO-3 gathers 16-bit weights on save (without it Trainer.save_model cannot write the adapter)."""
    from accelerate.utils import DeepSpeedPlugin
    from accelerate.utils.launch import prepare_deepspeed_cmd_env

    args, defaults = launch_args(name)
    args.deepspeed_fields_from_accelerate_config = ",".join(defaults.deepspeed_config)  # as launch_command sets it
    _, env = prepare_deepspeed_cmd_env(args)
    _export(monkeypatch, env)
    plugin = DeepSpeedPlugin()
    config = plugin.deepspeed_config
    assert config["zero_optimization"]["stage"] == stage
    assert config["gradient_accumulation_steps"] == "auto" and config["gradient_clipping"] == "auto"
    assert config["zero_optimization"]["offload_optimizer"]["device"] == "none"
    assert config["zero_optimization"]["stage3_gather_16bit_weights_on_model_save"] is (stage == 3)
    assert plugin.zero3_init_flag is (stage == 3)


def test_each_rank_loads_onto_its_own_gpu(monkeypatch):
    """Under a launcher (LOCAL_RANK set) device 'auto' is cuda:<LOCAL_RANK>, not GPU 0 for every rank."""
    import torch

    from lorakit.models.hardware import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    assert resolve_device("auto") == "cuda"
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert resolve_device("auto") == "cuda:1"
    assert resolve_device("cuda:0") == "cuda:0"  # an explicit choice stays
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == "cpu"
