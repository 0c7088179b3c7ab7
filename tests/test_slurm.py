"""The shipped sbatch scripts, submitted to a real one-node Slurm cluster.

The scripts are used exactly as a user would: `sbatch [options] slurm/X.sbatch
CONFIG --key value`, with only the GPU/CPU headers overridden on the sbatch
command line because the test node has no GPU and few CPUs.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO_ROOT
from tests.slurm_cluster import SlurmCluster, job_env, slurm_cluster  # noqa: F401 (fixture)

SLURM_DIR = REPO_ROOT / "slurm"
#: what a CPU-only test node can grant in place of the scripts' GPU defaults
CPU_NODE = ("--gpus-per-node=0", "--cpus-per-task=1")
JOB_TIMEOUT = 240.0

pytestmark = pytest.mark.slow


def read_ids(traces: Path) -> list[str]:
    return [json.loads(line)["id"] for line in traces.read_text().splitlines() if line.strip()]


def job_log(workdir: Path, pattern: str) -> str:
    logs = sorted((workdir / "logs").glob(pattern))
    assert logs, f"no log matching logs/{pattern}; got {list((workdir / 'logs').iterdir())}"
    return "\n".join(p.read_text() for p in logs)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """The submit directory: configs and outputs are relative to it, logs/ exists as the README asks."""
    (tmp_path / "logs").mkdir()
    return tmp_path


def infer_config(workdir: Path, model_dir: Path, output_dir: str) -> Path:
    config = workdir / "infer.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "model": str(model_dir),
                "backend": "hf",
                "method": "leap",
                "source": "synthetic",
                "num_synthetic": 2,
                "n": 2,
                "top_k": 1,
                "T": 8,
                "summary_max_tokens": 8,
                "max_tokens": 24,
                "forced_answer_tokens": 4,
                "output_dir": output_dir,
            }
        )
    )
    return config


def test_infer_sbatch_runs_leapt_infer_with_overrides(
    slurm_cluster: SlurmCluster,  # noqa: F811
    tiny_model_dir: Path,
    workdir: Path,
) -> None:
    config = infer_config(workdir, tiny_model_dir, output_dir="outputs/from-config")
    job = slurm_cluster.sbatch(
        SLURM_DIR / "infer.sbatch",
        config.name,
        "--output_dir",
        "outputs/from-override",
        options=CPU_NODE,
        cwd=workdir,
        env=job_env(),
    )
    records = slurm_cluster.wait(job, timeout=JOB_TIMEOUT)
    log = job_log(workdir, f"leapt-infer-{job}.out")
    state = records[job]
    assert state["JobState"] == "COMPLETED", f"{state['JobState']} {state['ExitCode']}\n{log}"

    # the override on the script's command line beat the config's output_dir
    assert not (workdir / "outputs" / "from-config").exists()
    out = workdir / "outputs" / "from-override"
    ids = read_ids(out / "traces.jsonl")
    assert len(ids) == 2 and len(set(ids)) == 2
    assert (out / "summary.json").is_file()
    for line in (out / "traces.jsonl").read_text().splitlines():
        assert len(json.loads(line)["paths"]) == 2


def test_failed_stage_fails_the_job_with_the_error_in_its_log(
    slurm_cluster: SlurmCluster,  # noqa: F811
    workdir: Path,
) -> None:
    job = slurm_cluster.sbatch(
        SLURM_DIR / "infer.sbatch",
        "missing.yaml",
        options=CPU_NODE,
        cwd=workdir,
        env=job_env(),
    )
    state = slurm_cluster.wait(job, timeout=JOB_TIMEOUT)[job]
    log = job_log(workdir, f"leapt-infer-{job}.out")
    assert state["JobState"] == "FAILED"
    assert state["ExitCode"] == "2:0", log
    assert "missing.yaml" in log


def test_evaluate_sbatch_writes_the_results_table(
    slurm_cluster: SlurmCluster,  # noqa: F811
    tiny_model_dir: Path,
    workdir: Path,
) -> None:
    config = workdir / "eval.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "model": str(tiny_model_dir),
                "backend": "hf",
                "benchmarks": ["builtin_easy"],
                "methods": ["independent", "leap"],
                "limit": 2,
                "n": 2,
                "top_k": 1,
                "T": 8,
                "summary_max_tokens": 8,
                "max_tokens": 24,
                "forced_answer_tokens": 4,
                "output_dir": "outputs/eval",
            }
        )
    )
    job = slurm_cluster.sbatch(
        SLURM_DIR / "evaluate.sbatch", config.name, options=CPU_NODE, cwd=workdir, env=job_env()
    )
    state = slurm_cluster.wait(job, timeout=JOB_TIMEOUT)[job]
    log = job_log(workdir, f"leapt-eval-{job}.out")
    assert state["JobState"] == "COMPLETED", f"{state['ExitCode']}\n{log}"
    out = workdir / "outputs" / "eval"
    for method in ("independent", "leap"):
        assert len(read_ids(out / "builtin_easy" / method / "traces.jsonl")) == 2
    assert (out / "results.json").is_file() and (out / "results.md").is_file()


def generate_config(workdir: Path, model_dir: Path) -> Path:
    """A tiny harvest of 4 synthetic problems with every quality filter off."""
    config = workdir / "generate.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "source": "synthetic",
                "num_synthetic": 4,
                "model": str(model_dir),
                "backend": "hf",
                "method": "leap",
                "n": 2,
                "top_k": 1,
                "T": 8,
                "summary_max_tokens": 8,
                "max_tokens": 24,
                "forced_answer_tokens": 4,
                "filter_correct": False,
                "filter_summaries": False,
                "filter_peer_exchange": False,
                "filter_natural_end": False,
                "decontaminate": False,
                "output_dir": "outputs/generate",
            }
        )
    )
    return config


def test_generate_sbatch_array_splits_problems_into_disjoint_shards(
    slurm_cluster: SlurmCluster,  # noqa: F811
    tiny_model_dir: Path,
    workdir: Path,
) -> None:
    config = generate_config(workdir, tiny_model_dir)
    script = SLURM_DIR / "generate.sbatch"
    job = slurm_cluster.sbatch(
        script, config.name, options=(*CPU_NODE, "--array=0-1"), cwd=workdir, env=job_env()
    )
    records = slurm_cluster.wait(job, timeout=JOB_TIMEOUT)
    log = job_log(workdir, f"leapt-generate-{job}_*.out")
    assert {k: r["JobState"] for k, r in records.items()} == {
        f"{job}_0": "COMPLETED",
        f"{job}_1": "COMPLETED",
    }, log
    assert "--shard 0/2" in log and "--shard 1/2" in log

    out = workdir / "outputs" / "generate"
    shard_ids = [read_ids(out / "raw" / f"shard-{i}-of-2" / "traces.jsonl") for i in range(2)]
    assert not set(shard_ids[0]) & set(shard_ids[1])
    assert len(shard_ids[0]) + len(shard_ids[1]) == 4
    assert all((out / f"shard-{i}-of-2" / "stats.json").is_file() for i in range(2))

    # rerunning one shard of the 2-shard array (as after a time-out) keeps its
    # shard number, resumes, and duplicates nothing
    rerun = slurm_cluster.sbatch(
        script,
        config.name,
        options=(*CPU_NODE, "--array=1"),
        cwd=workdir,
        env={**job_env(), "LEAPT_NUM_SHARDS": "2"},
    )
    state = slurm_cluster.wait(rerun, timeout=JOB_TIMEOUT)[f"{rerun}_1"]
    rerun_log = job_log(workdir, f"leapt-generate-{rerun}_1.out")
    assert state["JobState"] == "COMPLETED", rerun_log
    assert "--shard 1/2" in rerun_log
    assert read_ids(out / "raw" / "shard-1-of-2" / "traces.jsonl") == shard_ids[1]


def test_generate_sbatch_refuses_array_indices_that_are_not_shards(
    slurm_cluster: SlurmCluster,  # noqa: F811
    workdir: Path,
) -> None:
    job = slurm_cluster.sbatch(
        SLURM_DIR / "generate.sbatch",
        "generate.yaml",
        options=(*CPU_NODE, "--array=2"),
        cwd=workdir,
        env=job_env(),
    )
    state = slurm_cluster.wait(job, timeout=JOB_TIMEOUT)[f"{job}_2"]
    log = job_log(workdir, f"leapt-generate-{job}_2.out")
    assert (state["JobState"], state["ExitCode"]) == ("FAILED", "2:0"), log
    assert "are not the shards 0..0 of 1" in log
