"""Resume only from completely written checkpoints; SIGUSR1 saves, stops, and the rerun resumes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.test_training_data import write_sft_dataset
from tests.training_runs import REPO, SMOKE, smoke_argv
from training.checkpoints import COMPLETE_MARKER, TRAINER_STATE, last_complete_checkpoint
from training.sft import FINISHED_MARKER, STOPPED_EXIT


def fake_checkpoint(out: Path, step: int, *files: str) -> Path:
    path = out / f"checkpoint-{step}"
    path.mkdir(parents=True)
    for name in files:
        (path / name).write_text("{}")
    return path


def test_the_newest_complete_checkpoint_is_picked_and_torn_ones_are_skipped(tmp_path):
    assert last_complete_checkpoint(tmp_path / "missing") == (None, [])
    fake_checkpoint(tmp_path, 9, TRAINER_STATE, COMPLETE_MARKER)
    ten = fake_checkpoint(tmp_path, 10, TRAINER_STATE, COMPLETE_MARKER)  # 10 > 9, not "10" < "9"
    torn = fake_checkpoint(tmp_path, 20, TRAINER_STATE)  # killed before every rank finished
    empty = fake_checkpoint(tmp_path, 30)  # killed right after mkdir
    fake_checkpoint(tmp_path, 40, COMPLETE_MARKER).joinpath(TRAINER_STATE).unlink(missing_ok=True)
    (tmp_path / "checkpoint-50.tmp").mkdir()  # not a checkpoint name
    last, skipped = last_complete_checkpoint(tmp_path)
    assert last == ten
    assert skipped == [tmp_path / "checkpoint-40", empty, torn]
    assert last_complete_checkpoint(tmp_path / "checkpoint-9") == (None, [])


def train_command(tiny_model_dir: Path, data: Path, out: Path, max_steps: int) -> list[str]:
    saving = ("--save_strategy", "steps", "--save_steps", "1", "--save_total_limit", "2")
    steps = ("--max_steps", str(max_steps))
    return [
        sys.executable,
        "-m",
        "training.sft",
        *smoke_argv(tiny_model_dir, data, out, *steps, *saving),
    ]


@pytest.mark.slow
def test_sigusr1_saves_a_complete_checkpoint_stops_and_the_rerun_resumes(tiny_model_dir, tmp_path):
    data = write_sft_dataset(tmp_path / "data", n=8)
    out = tmp_path / "out"
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}
    command = train_command(tiny_model_dir, data, out, max_steps=100_000)
    log = tmp_path / "train.err"  # a file, not a pipe: a full pipe would block the trainer
    with open(log, "w") as stderr:
        proc = subprocess.Popen(command, cwd=REPO, env=env, stderr=stderr, text=True)
    try:
        # Any complete checkpoint, not checkpoint-1: with save_total_limit=2 a fast trainer
        # has rotated checkpoint-1 away by step 3, and a poll that missed it would wait forever.
        deadline = time.monotonic() + 600
        while last_complete_checkpoint(out)[0] is None:
            assert proc.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, (
                "no complete checkpoint in 600 s\n" + log.read_text()[-3000:]
            )
            time.sleep(0.2)
        proc.send_signal(signal.SIGUSR1)
        proc.wait(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    err = log.read_text()
    assert proc.returncode == STOPPED_EXIT, err[-3000:]
    assert "run the same command again to resume" in err
    assert not (out / FINISHED_MARKER).exists()
    last, skipped = last_complete_checkpoint(out)
    assert last is not None and not skipped
    stopped_at = json.loads((last / TRAINER_STATE).read_text())["global_step"]
    assert 1 <= stopped_at < 100_000

    # the rerun resumes from that checkpoint and finishes a couple of steps later
    command = train_command(tiny_model_dir, data, out, max_steps=stopped_at + 2)
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"resuming from {last}" in done.stderr
    record = json.loads((out / FINISHED_MARKER).read_text())
    steps = [e["step"] for e in record["log_history"] if "loss" in e]
    assert steps[-1] == stopped_at + 2
    assert min(s for s in steps if s > stopped_at) == stopped_at + 1


def test_zero_checkpoint_of_another_world_size_is_refused_before_the_model(tmp_path, capsys):
    from leapt.cli import main as leapt

    out = tmp_path / "out"
    ckpt = fake_checkpoint(out, 8, TRAINER_STATE, COMPLETE_MARKER)
    (ckpt / "global_step8").mkdir()
    for rank in (0, 1):  # what DeepSpeed wrote from 2 processes
        (ckpt / "global_step8" / f"zero_pp_rank_{rank}_mp_rank_00_optim_states.pt").write_text("")
    argv = ["train", "--config", str(SMOKE), "--output_dir", str(out)]
    model = tmp_path / "model"  # a checkpoint folder as far as the checks look; never loaded
    model.mkdir()
    (model / "config.json").write_text("{}")
    argv += ["--model_name_or_path", str(model), "--dataset_name", "x"]
    assert leapt(argv) == 2  # this process alone: world size 1
    err = capsys.readouterr().err
    assert f"{ckpt} holds ZeRO optimizer states of 2 processes but this run has 1" in err
