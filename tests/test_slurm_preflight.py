"""What a cluster job checks before it costs GPU hours; no Slurm needed.

GPU layout against the visible GPUs (every stage), shard sets before a merge,
`--help` of every sbatch script, and bash < 4.4 compatibility of the scripts.
"""

from __future__ import annotations

import os
import re
import subprocess

import pytest

import inference.args
from leapt.cli import main as leapt
from tests.conftest import REPO_ROOT
from tests.test_data_gen_output import shard_dir, trace

SCRIPTS = sorted((REPO_ROOT / "slurm").glob("*.sbatch"))
HUB_MODEL = "org/never-downloaded"  # not a local folder: nothing but our check can fail first


@pytest.mark.parametrize(
    "stage",
    [
        ["infer", "--source", "synthetic"],
        ["eval", "--benchmarks", "builtin_easy"],
        ["generate", "--source", "synthetic"],
    ],
    ids=lambda s: s[0],
)
def test_parallel_layout_larger_than_the_visible_gpus_fails_before_loading(
    stage, monkeypatch, tmp_path, capsys
):
    # a node Slurm gave one GPU (this machine has none: the count is what CUDA would report)
    monkeypatch.setattr(inference.args, "visible_gpu_count", lambda: 1)
    argv = [*stage, "--model", HUB_MODEL, "--backend", "vllm", "--output_dir", str(tmp_path)]
    code = leapt([*argv, "--tensor_parallel_size", "4"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1
    assert "needs 4 GPUs but 1 are visible" in err
    assert leapt([*argv, "--tensor_parallel_size", "2", "--data_parallel_size", "2"]) == 2
    assert "2 x 2 needs 4 GPUs but 1 are visible" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_cpu_only_build_has_no_gpu_count_to_check():
    import torch

    if torch.version.cuda is not None:
        pytest.skip("this torch is a CUDA build")
    assert inference.args.visible_gpu_count() is None
    inference.args.check_gpu_count(4, 2)  # vLLM's CPU backend: no GPUs to count


def shards(tmp_path, count: int, indices, prefix: str = "") -> list[str]:
    return [
        str(
            shard_dir(
                tmp_path, f"{prefix}shard-{i}-of-{count}", [trace(f"p{i}", 1)], f"{i}/{count}", []
            )
        )
        for i in indices
    ]


def test_merge_refuses_an_incomplete_shard_set_naming_the_missing_shards(tmp_path, capsys):
    present = shards(tmp_path, 4, [0, 2])
    out = tmp_path / "merged"
    assert leapt(["generate", "merge", *present, "--output-dir", str(out)]) == 2
    err = capsys.readouterr().err
    assert "missing shard-1-of-4, shard-3-of-4" in err and "--allow_partial" in err
    assert not out.exists()
    assert leapt(["generate", "merge", *present, "--output-dir", str(out), "--allow-partial"]) == 0
    assert (out / "stats.json").is_file()


def test_merge_refuses_shards_of_different_counts(tmp_path, capsys):
    mixed = shards(tmp_path, 2, [0, 1]) + shards(tmp_path, 4, range(4), prefix="other-")
    assert leapt(["generate", "merge", *mixed, "--output-dir", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err
    assert "mixed shard counts -of-2" in err and "-of-4" in err


def test_merge_of_a_folder_with_an_unfinished_shard_names_it(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    shards(run, 3, [0, 2])
    (run / "shard-1-of-3").mkdir()  # the array task is still running: no stats.json yet
    assert leapt(["generate", "merge", str(run), "--output-dir", str(tmp_path / "m")]) == 2
    assert "missing shard-1-of-3" in capsys.readouterr().err


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
@pytest.mark.parametrize("flag", ["-h", "--help"])
def test_every_script_prints_its_usage_for_help(script, flag, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM")}
    env["PATH"] = "/usr/bin:/bin"  # no leapt, accelerate or srun: help must not reach them
    proc = subprocess.run(
        ["bash", str(script), flag], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    assert f"slurm/{script.name}" in proc.stdout and "--job-name" not in proc.stdout
    assert not any(tmp_path.iterdir())
    missing = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True)
    assert missing.returncode == 2 and f"slurm/{script.name}" in missing.stderr


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_scripts_use_no_bash_arrays(script):
    # bash < 4.4 (RHEL/CentOS 7 login nodes) treats "${empty[@]}" as unbound under set -u
    assert not re.search(r"\[@\]|\[\*\]|=\(", script.read_text())
