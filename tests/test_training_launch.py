"""`leapt train --num_processes N --accelerate_config NAME`: one command starts a multi-process run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from leapt.config import ConfigError
from tests.processes import free_port
from tests.test_training_data import write_sft_dataset
from tests.training_runs import REPO, SMOKE, assert_trained_and_loadable, smoke_argv
from training.sft import FINISHED_MARKER


def leapt_train(*argv: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    cmd = [sys.executable, "-m", "leapt.cli", "train", *argv]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_leapt_train_starts_two_deepspeed_processes_from_any_directory(tiny_model_dir, tmp_path):
    data = write_sft_dataset(tmp_path / "data", n=8)
    out = tmp_path / "out"
    proc = leapt_train(
        "--num_processes", "2",
        "--accelerate_config", "zero2",
        "--main_process_port", str(free_port()),
        *smoke_argv(tiny_model_dir, data, out, "--max_steps", "2"),
        cwd=tmp_path,  # the shipped config's DeepSpeed JSON is found outside the repository too
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = json.loads((out / FINISHED_MARKER).read_text())
    assert record["hyperparameters"]["world_size"] == 2
    assert record["hyperparameters"]["global_batch_size"] == 4
    assert record["hyperparameters"]["distributed"] == "DEEPSPEED"  # not a silent DDP fallback
    assert (out / "model.safetensors").is_file()
    assert "LeaP-T training" in (out / "README.md").read_text()
    assert_trained_and_loadable(out, tiny_model_dir)


def test_the_fsdp_config_is_open_r1s_as_accelerate_reads_it():
    from accelerate.commands.config.config_args import load_config_from_file

    cfg = load_config_from_file(str(REPO / "configs" / "accelerate" / "fsdp.yaml"))
    assert cfg.distributed_type == "FSDP" and cfg.mixed_precision in (None, "no")
    assert {
        key: cfg.fsdp_config[key]
        for key in (
            "fsdp_auto_wrap_policy",
            "fsdp_sharding_strategy",
            "fsdp_state_dict_type",
            "fsdp_cpu_ram_efficient_loading",
            "fsdp_sync_module_states",
            "fsdp_use_orig_params",
        )
    } == {
        "fsdp_auto_wrap_policy": "TRANSFORMER_BASED_WRAP",
        "fsdp_sharding_strategy": "FULL_SHARD",
        "fsdp_state_dict_type": "FULL_STATE_DICT",
        "fsdp_cpu_ram_efficient_loading": True,
        "fsdp_sync_module_states": True,
        "fsdp_use_orig_params": True,
    }


def test_fsdp_without_an_accelerator_is_refused_in_one_line_before_launch(
    tmp_path, capsys, monkeypatch
):
    """accelerate would drop FSDP on the CPU and train plain data parallel without a word."""
    import subprocess as launched

    from leapt.cli import main as leapt
    from training.launch_check import check_launch

    monkeypatch.setattr("torch.accelerator.is_available", lambda: False)
    monkeypatch.setattr(launched, "run", lambda *a, **k: pytest.fail("launched anyway"))
    out, model = tmp_path / "out", tmp_path / "never-loaded"
    model.mkdir()
    (model / "config.json").write_text('{"model_type": "qwen2"}')  # looks like a checkpoint
    argv = ["train", "--config", str(SMOKE), "--num_processes", "2", "--accelerate_config", "fsdp"]
    argv += ["--model_name_or_path", str(model), "--output_dir", str(out)]
    assert leapt(argv) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()[-1:]
    assert "fsdp.yaml asks for FSDP" in line and "GPU" in line and "plain data parallel" in line
    assert not out.exists()

    rank_env = {"ACCELERATE_USE_FSDP": "true", "WORLD_SIZE": "2"}  # a rank launched directly
    with pytest.raises(ConfigError, match="ACCELERATE_USE_FSDP=true"):
        check_launch(SimpleNamespace(deepspeed=None), rank_env)


def test_an_unknown_accelerate_config_is_refused_naming_the_shipped_ones(tmp_path, capsys):
    from leapt.cli import main as leapt

    argv = ["train", "--config", str(SMOKE), "--accelerate_config", "zero9"]
    argv += ["--model_name_or_path", str(tmp_path / "never-loaded"), "--output_dir", str(tmp_path)]
    assert leapt(argv) == 2
    err = capsys.readouterr().err
    assert "accelerate_config 'zero9'" in err and "zero3" in err and "ddp" in err


def test_a_global_batch_that_the_process_count_cannot_split_fails_before_launch(tmp_path, capsys):
    from leapt.cli import main as leapt

    argv = ["train", "--config", str(SMOKE), "--num_processes", "3", "--global_batch_size", "8"]
    argv += ["--model_name_or_path", str(tmp_path / "never-loaded"), "--output_dir", str(tmp_path)]
    assert leapt(argv) == 2
    assert "global_batch_size=8" in capsys.readouterr().err


def test_launch_command_passes_a_zero_configs_deepspeed_json_as_an_absolute_path(monkeypatch):
    """The launched processes find the DeepSpeed JSON from any working directory; ddp has none."""
    from training.launcher import LaunchArguments, launch_command

    monkeypatch.chdir("/")
    zero2 = launch_command(LaunchArguments(accelerate_config="zero2"), ["--x"])
    ds = Path(zero2[zero2.index("--deepspeed_config_file") + 1])
    assert ds.is_absolute() and ds.is_file() and ds.suffix == ".json"
    assert zero2[-3:] == ["-m", "training.sft", "--x"]
    assert "--deepspeed_config_file" not in launch_command(LaunchArguments(num_processes=2), [])
