"""`accelerate launch` with 2 CPU processes under DeepSpeed ZeRO-3 and ZeRO-3 offload.

The shipped accelerate YAMLs are used as is (only the process count and port
are overridden on the command line, as slurm/train.sbatch does).  On a machine
without GPUs `leapt train` runs DeepSpeed on CPU with the gloo backend.  ZeRO-3
offload steps with DeepSpeed's CPU Adam, which DeepSpeed JIT-compiles with the
system compiler on first use (about 1.5 min, then cached in ~/.cache/torch_extensions).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.processes import free_port
from tests.test_training_data import write_sft_dataset
from tests.training_runs import REPO, assert_trained_and_loadable, smoke_argv
from training.sft import FINISHED_MARKER


def accelerate_launch(accelerate_config: Path, *train_args: str) -> subprocess.CompletedProcess:
    port = free_port()
    env = {
        **os.environ,
        "CUDA_VISIBLE_DEVICES": "",
        "MASTER_PORT": str(port),
        "OMP_NUM_THREADS": "1",
    }
    cmd = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--config_file",
        str(accelerate_config),
    ]
    cmd += ["--num_processes", "2", "--main_process_port", str(port), "-m", "training.sft"]
    return subprocess.run(
        [*cmd, *train_args], cwd=REPO, env=env, capture_output=True, text=True, timeout=400
    )


@pytest.mark.slow
# zero2.yaml trains 2 processes through `leapt train` (test_training_launch.py, same checks)
# and through slurm/train.sbatch (test_slurm_train.py): a third zero2 run would add nothing
@pytest.mark.parametrize("zero", ["zero3", "zero3_offload"])
def test_deepspeed_two_processes_train_and_save_a_loadable_checkpoint(
    zero, tiny_model_dir, tmp_path
):
    data = write_sft_dataset(tmp_path / "data", n=8)
    out = tmp_path / "out"
    proc = accelerate_launch(
        REPO / "configs" / "accelerate" / f"{zero}.yaml",
        *smoke_argv(tiny_model_dir, data, out, "--max_steps", "3"),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = json.loads((out / FINISHED_MARKER).read_text())
    assert record["hyperparameters"]["world_size"] == 2
    assert record["hyperparameters"]["global_batch_size"] == 4
    assert_trained_and_loadable(out, tiny_model_dir)


@pytest.mark.slow
def test_mismatched_deepspeed_json_stops_every_rank_before_the_model(tmp_path):
    ds = tmp_path / "ds.json"
    ds.write_text(
        json.dumps({"train_micro_batch_size_per_gpu": 8, "zero_optimization": {"stage": 2}})
    )
    acc = tmp_path / "acc.yaml"
    acc.write_text(
        "compute_environment: LOCAL_MACHINE\ndistributed_type: DEEPSPEED\n"
        f"deepspeed_config:\n  deepspeed_config_file: {ds}\nnum_machines: 1\nuse_cpu: false\n"
    )
    data = write_sft_dataset(tmp_path / "data", n=2)
    proc = accelerate_launch(
        acc, *smoke_argv("/nonexistent/model-never-loaded", data, tmp_path / "out")
    )
    assert proc.returncode != 0
    assert "train_micro_batch_size_per_gpu=8 but the recipe has per_device_train_batch_size=2" in (
        proc.stderr
    )
