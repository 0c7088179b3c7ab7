"""slurm/train.sbatch under a real Slurm: srun + `accelerate launch` + DeepSpeed ZeRO-2.

The script is submitted as a user would, from the repository root (the shipped
accelerate YAML names its DeepSpeed JSON relative to it); only the GPU header is
overridden and the job runs 2 CPU processes instead of one per GPU.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT
from tests.slurm_cluster import SlurmCluster, job_env, slurm_cluster  # noqa: F401 (fixture)
from tests.test_training_data import write_sft_dataset
from training.sft import FINISHED_MARKER

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_train_sbatch_runs_deepspeed_across_two_processes(
    slurm_cluster: SlurmCluster,  # noqa: F811
    tiny_model_dir: Path,
    tmp_path: Path,
) -> None:
    if slurm_cluster.cpus < 2:
        pytest.skip("two training processes need a node with 2 CPUs")
    data = write_sft_dataset(tmp_path / "data", n=8)
    out = tmp_path / "out"
    log = tmp_path / "train.out"
    job = slurm_cluster.sbatch(
        REPO_ROOT / "slurm" / "train.sbatch",
        "configs/training/smoke_cpu.yaml",
        "--model_name_or_path",
        str(tiny_model_dir),
        "--dataset_name",
        str(data),
        "--output_dir",
        str(out),
        "--max_steps",
        "3",
        options=("--gpus-per-node=0", "--cpus-per-task=2", f"--output={log}"),
        cwd=REPO_ROOT,
        env={
            **job_env(),
            "LEAPT_ACCELERATE_CONFIG": "configs/accelerate/zero2.yaml",
            "LEAPT_PROCS_PER_NODE": "2",
            "LEAPT_MAIN_PORT": str(free_port()),
            "CUDA_VISIBLE_DEVICES": "",
        },
    )
    state = slurm_cluster.wait(job, timeout=480)[job]
    text = log.read_text() if log.exists() else "(no log)"
    assert state["JobState"] == "COMPLETED", f"{state['ExitCode']}\n{text[-4000:]}"
    record = json.loads((out / FINISHED_MARKER).read_text())
    assert record["hyperparameters"]["world_size"] == 2
    assert (out / "config.json").is_file()
