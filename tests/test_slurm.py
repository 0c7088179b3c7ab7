"""The shipped sbatch scripts, submitted to a real one-node Slurm cluster.

The scripts are used exactly as a user would: `sbatch [options] slurm/X.sbatch
CONFIG --key value`, with only the GPU/CPU headers overridden on the sbatch
command line because the test node has no GPU and few CPUs.
"""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path

import httpx
import pytest
import yaml

from tests.conftest import REPO_ROOT
from tests.processes import free_port
from tests.slurm_cluster import SlurmCluster, job_env, slurm_cluster  # noqa: F401 (fixture)

SLURM_DIR = REPO_ROOT / "slurm"
#: what a CPU-only test node can grant in place of the scripts' GPU defaults
CPU_NODE = ("--gpus-per-node=0", "--cpus-per-task=1")
JOB_TIMEOUT = 240.0

pytestmark = pytest.mark.slow


#: the scripts' --job-name, which names their logs (logs/%x-%j.out, arrays %x-%A_%a.out)
JOB_NAMES = {
    "infer": "leapt-infer",
    "evaluate": "leapt-eval",
    "generate": "leapt-generate",
    "serve": "leapt-serve",
}
#: LeaP settings small enough for a CPU node, shared by every stage's config here
TINY_LEAP = {
    "backend": "hf",
    "n": 2,
    "top_k": 1,
    "T": 8,
    "summary_max_tokens": 8,
    "max_tokens": 24,
    "forced_answer_tokens": 4,
}


def read_ids(traces: Path) -> list[str]:
    return [json.loads(line)["id"] for line in traces.read_text().splitlines() if line.strip()]


def job_log(workdir: Path, name: str) -> str:
    log = workdir / "logs" / name
    assert log.is_file(), f"no log logs/{name}; got {list((workdir / 'logs').iterdir())}"
    return log.read_text()


def run_job(
    cluster: SlurmCluster,
    workdir: Path,
    script: str,
    *script_args: str,
    options: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
) -> tuple[str, dict[str, dict[str, str]], str]:
    """``sbatch slurm/<script>.sbatch ARGS`` from ``workdir`` on a CPU node, waited for.

    Returns the job id, its records (one per array task, keyed ``<id>_<task>``)
    and the logs of all its records, each read from the file its header names.
    """
    job = cluster.sbatch(
        SLURM_DIR / f"{script}.sbatch",
        *script_args,
        options=(*CPU_NODE, *options),
        cwd=workdir,
        env={**job_env(), **(env or {})},
    )
    records = cluster.wait(job, timeout=JOB_TIMEOUT)
    log = "\n".join(job_log(workdir, f"{JOB_NAMES[script]}-{key}.out") for key in sorted(records))
    return job, records, log


def write_config(workdir: Path, name: str, settings: dict) -> Path:
    config = workdir / name
    config.write_text(yaml.safe_dump(settings))
    return config


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """The submit directory: configs and outputs are relative to it, logs/ exists as the README asks."""
    (tmp_path / "logs").mkdir()
    return tmp_path


def test_infer_sbatch_runs_leapt_infer_with_overrides(
    slurm_cluster: SlurmCluster,  # noqa: F811
    tiny_model_dir: Path,
    workdir: Path,
) -> None:
    settings = {"model": str(tiny_model_dir), "method": "leap", **TINY_LEAP}
    settings |= {"source": "synthetic", "num_synthetic": 2, "output_dir": "outputs/from-config"}
    config = write_config(workdir, "infer.yaml", settings)
    job, records, log = run_job(
        slurm_cluster, workdir, "infer", config.name, "--output_dir", "outputs/from-override"
    )
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


def test_serve_sbatch_serves_openai_requests_until_cancelled(
    slurm_cluster: SlurmCluster,  # noqa: F811
    tiny_model_dir: Path,
    workdir: Path,
) -> None:
    port = free_port()
    settings = {"model": str(tiny_model_dir), **TINY_LEAP, "output_dir": "outputs/served"}
    config = write_config(workdir, "serve.yaml", settings)
    job = slurm_cluster.sbatch(
        SLURM_DIR / "serve.sbatch",
        config.name,
        "--port",
        str(port),
        options=CPU_NODE,
        cwd=workdir,
        env=job_env(),
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + JOB_TIMEOUT
    while True:
        state = slurm_cluster.states(job)[job]["JobState"]
        assert state in ("PENDING", "RUNNING"), job_log(workdir, f"leapt-serve-{job}.out")
        assert time.monotonic() < deadline, "the served job never answered /health"
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                break
        time.sleep(0.5)
    body = {
        "model": f"leap-{tiny_model_dir.name}",
        "messages": [{"role": "user", "content": "Compute 2 + 3."}],
        "n": 2,
    }
    reply = httpx.post(url + "/v1/chat/completions", json=body, timeout=120)
    assert reply.status_code == 200, reply.text
    assert len(reply.json()["choices"]) == 2
    slurm_cluster.run("scancel", job)
    assert slurm_cluster.wait(job, timeout=JOB_TIMEOUT)[job]["JobState"] == "CANCELLED"
    assert read_ids(workdir / "outputs" / "served" / "traces.jsonl") == [
        reply.json()["leapt"]["trace_id"]
    ]
    log = job_log(workdir, f"leapt-serve-{job}.out")
    assert "leapt serve --config serve.yaml --port" in log and f":{port}/v1" in log


def test_failed_stage_fails_the_job_with_the_error_in_its_log(
    slurm_cluster: SlurmCluster,  # noqa: F811
    workdir: Path,
) -> None:
    job, records, log = run_job(slurm_cluster, workdir, "infer", "missing.yaml")
    state = records[job]
    assert state["JobState"] == "FAILED"
    assert state["ExitCode"] == "2:0", log
    assert "missing.yaml" in log


def test_evaluate_sbatch_writes_the_results_table(
    slurm_cluster: SlurmCluster,  # noqa: F811
    tiny_model_dir: Path,
    workdir: Path,
) -> None:
    settings = {"model": str(tiny_model_dir), "methods": ["independent", "leap"], **TINY_LEAP}
    settings |= {"benchmarks": ["builtin_easy"], "limit": 2, "output_dir": "outputs/eval"}
    config = write_config(workdir, "eval.yaml", settings)
    job, records, log = run_job(slurm_cluster, workdir, "evaluate", config.name)
    state = records[job]
    assert state["JobState"] == "COMPLETED", f"{state['ExitCode']}\n{log}"
    out = workdir / "outputs" / "eval"
    for method in ("independent", "leap"):
        assert len(read_ids(out / "builtin_easy" / method / "traces.jsonl")) == 2
    assert (out / "results.json").is_file() and (out / "results.md").is_file()


def generate_config(workdir: Path, model_dir: Path) -> Path:
    """A tiny harvest of 4 synthetic problems with every quality filter off."""
    settings = {"model": str(model_dir), "method": "leap", **TINY_LEAP}
    settings |= {
        "source": "synthetic",
        "num_synthetic": 4,
        "filter_correct": False,
        "filter_summaries": False,
        "filter_peer_exchange": False,
        "filter_natural_end": False,
        "decontaminate": False,
        "output_dir": "outputs/generate",
    }
    return write_config(workdir, "generate.yaml", settings)


def test_generate_sbatch_array_splits_problems_into_disjoint_shards(
    slurm_cluster: SlurmCluster,  # noqa: F811
    tiny_model_dir: Path,
    workdir: Path,
) -> None:
    config = generate_config(workdir, tiny_model_dir)
    job, records, log = run_job(
        slurm_cluster, workdir, "generate", config.name, options=("--array=0-1",)
    )
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
    rerun, records, rerun_log = run_job(
        slurm_cluster,
        workdir,
        "generate",
        config.name,
        options=("--array=1",),
        env={"LEAPT_NUM_SHARDS": "2"},
    )
    assert records[f"{rerun}_1"]["JobState"] == "COMPLETED", rerun_log
    assert "--shard 1/2" in rerun_log
    assert read_ids(out / "raw" / "shard-1-of-2" / "traces.jsonl") == shard_ids[1]


def test_generate_sbatch_refuses_array_indices_that_are_not_shards(
    slurm_cluster: SlurmCluster,  # noqa: F811
    workdir: Path,
) -> None:
    job, records, log = run_job(
        slurm_cluster, workdir, "generate", "generate.yaml", options=("--array=2",)
    )
    state = records[f"{job}_2"]
    assert (state["JobState"], state["ExitCode"]) == ("FAILED", "2:0"), log
    assert "are not the shards 0..0 of 1" in log
