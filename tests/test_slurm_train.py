"""slurm/train.sbatch under a real Slurm: srun + `accelerate launch` + DeepSpeed ZeRO-2.

On one node with 2 processes, and on two nodes (network namespaces) with one each.

The script is submitted as a user would, from the repository root (the shipped
accelerate YAML names its DeepSpeed JSON relative to it); only the GPU header is
overridden and the job runs 2 CPU processes instead of one per GPU.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
import torch

from tests.conftest import REPO_ROOT
from tests.processes import free_port
from tests.slurm_cluster import (  # noqa: F401 (fixtures)
    FINAL_STATES,
    NODE_IFNAME,
    SUBNET,
    SlurmCluster,
    job_env,
    slurm_cluster,
    two_node_cluster,
)
from tests.test_training_data import write_sft_dataset
from tests.training_runs import SMOKE, run_flags
from training.checkpoints import last_complete_checkpoint
from training.sft import FINISHED_MARKER

pytestmark = pytest.mark.slow


def submit_train(
    cluster: SlurmCluster,
    log: Path,
    *overrides: str,
    options: tuple[str, ...],
    env: dict[str, str],
) -> str:
    """``sbatch [options] slurm/train.sbatch <smoke recipe> OVERRIDES`` on CPU nodes.

    Submitted from the repository root, as a user would (the shipped accelerate
    YAML names its DeepSpeed JSON relative to it), with the job's output in ``log``.
    """
    return cluster.sbatch(
        REPO_ROOT / "slurm" / "train.sbatch",
        str(SMOKE.relative_to(REPO_ROOT)),
        *overrides,
        options=("--gpus-per-node=0", *options, f"--output={log}"),
        cwd=REPO_ROOT,
        env={**job_env(), "CUDA_VISIBLE_DEVICES": "", **env},
    )


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
    job = submit_train(
        slurm_cluster,
        log,
        *run_flags(tiny_model_dir, data, out, "--max_steps", "3"),
        options=("--cpus-per-task=2",),
        env={
            "LEAPT_ACCELERATE_CONFIG": "configs/accelerate/zero2.yaml",
            "LEAPT_PROCS_PER_NODE": "2",
            "LEAPT_MAIN_PORT": str(free_port()),
        },
    )
    state = slurm_cluster.wait(job, timeout=480)[job]
    text = log.read_text() if log.exists() else "(no log)"
    assert state["JobState"] == "COMPLETED", f"{state['ExitCode']}\n{text[-4000:]}"
    record = json.loads((out / FINISHED_MARKER).read_text())
    assert record["hyperparameters"]["world_size"] == 2
    assert (out / "config.json").is_file()


def test_train_sbatch_on_two_nodes_saves_on_the_time_limit_signal_requeues_and_resumes(
    two_node_cluster: SlurmCluster,  # noqa: F811
    tiny_model_dir: Path,
    tmp_path: Path,
) -> None:
    """Two slurmds in their own network namespaces, one gloo process each.

    machine_rank, main_process_ip and the port come from Slurm.  The job gets
    the signal Slurm sends before a time limit (``--signal=B:USR1``, sent here
    at once with ``scancel --batch``): both ranks save at the same step, the
    job requeues itself and the second run resumes from that checkpoint.
    """
    from transformers import AutoModelForCausalLM

    data = write_sft_dataset(tmp_path / "data", n=8)
    out = tmp_path / "out"
    log = tmp_path / "train.out"
    max_steps = 16
    job = submit_train(
        two_node_cluster,
        log,
        *run_flags(tiny_model_dir, data, out, "--max_steps", str(max_steps)),
        *("--save_strategy", "steps", "--save_steps", "4", "--save_total_limit", "2"),
        options=("--nodes=2", "--cpus-per-task=1"),
        env={
            "LEAPT_ACCELERATE_CONFIG": "configs/accelerate/zero2.yaml",
            "LEAPT_PROCS_PER_NODE": "1",
            # gloo picks its interface from the hostname, which no DNS here resolves
            "GLOO_SOCKET_IFNAME": NODE_IFNAME,
        },
    )

    def text() -> str:  # bytes decoded by hand: read_text() would turn \r into line breaks
        return log.read_bytes().decode(errors="replace") if log.exists() else "(no log)"

    while last_complete_checkpoint(out)[0] is None:
        state = two_node_cluster.states(job)[job]["JobState"]
        assert state not in FINAL_STATES, f"{state} before the first checkpoint\n{text()[-4000:]}"
        time.sleep(0.5)
    two_node_cluster.run("scancel", "--batch", "--signal=USR1", job)
    record = two_node_cluster.wait(job, timeout=600)[job]
    assert record["JobState"] == "COMPLETED", f"{record['ExitCode']}\n{text()[-4000:]}"
    assert record["Restarts"] == "1", text()[-4000:]

    log_text = text()
    # what the script and the trainers said, without library warnings: the failure message
    said = "\n".join(
        line
        for line in log_text.split("\n")  # not splitlines(): progress bars use \r
        if re.search(r"leapt train|SIGUSR1|requeu|srun|machine_rank|^job |node\(s\)", line)
    )
    assert "0: node leapt-n0 is machine_rank 0" in log_text, said
    assert "1: node leapt-n1 is machine_rank 1" in log_text, said
    assert f"main {SUBNET}.10:" in said  # the first node's NodeAddr, from scontrol
    for rank in (0, 1):  # every rank saw the signal (rank 0's line may follow a progress bar) ...
        lines = [line for line in said.split("\n") if line.startswith(f"{rank}: ")]
        assert any("[leapt train] got SIGUSR1" in line for line in lines), said
    stopped = re.search(r"stopped on a signal at step (\d+)", said)
    assert stopped, said
    step = int(stopped.group(1))
    # ... and the requeued run picked up the checkpoint saved at that step
    assert f"resuming from {out / f'checkpoint-{step}'}" in said, said
    finished = json.loads((out / FINISHED_MARKER).read_text())
    assert finished["hyperparameters"]["world_size"] == 2
    assert [e["step"] for e in finished["log_history"] if "loss" in e][-1] == max_steps

    trained = AutoModelForCausalLM.from_pretrained(out)
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    trained_params = dict(trained.named_parameters())
    assert any(not torch.equal(p, trained_params[n]) for n, p in base.named_parameters())


def test_train_sbatch_never_logs_a_secret_given_on_its_command_line(
    slurm_cluster: SlurmCluster,  # noqa: F811
    tmp_path: Path,
) -> None:
    """The script logs the command it runs; a token passed as an override must not be in it."""
    secret = "hf_" + "sbatchLogSecret0123456789"  # fake, split so scanners do not flag it
    log = tmp_path / "train.out"
    job = submit_train(
        slurm_cluster,
        log,
        *run_flags(tmp_path / "never-loaded", tmp_path / "data", tmp_path / "out"),
        *("--hub_token", secret, f"--hub-token={secret}", "--max_steps", "3"),
        options=("--cpus-per-task=1",),
        env={"LEAPT_ACCELERATE_CONFIG": "none"},
    )
    state = slurm_cluster.wait(job, timeout=240)[job]
    text = log.read_text() if log.exists() else "(no log)"
    assert state["JobState"] == "FAILED", text  # leapt train refuses a token on its command line
    assert "running: leapt train" in text
    assert "--hub_token *** --hub-token=*** --max_steps 3" in text, text
    assert secret not in text
