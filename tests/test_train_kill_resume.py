"""`kill -9` of a real `leapt train` while it writes a checkpoint, then a rerun.

The Trainer writes ``checkpoint-N`` in place, ``trainer_state.json`` last; the
process is killed while a checkpoint folder exists without it.  The rerun into
the same output_dir must skip that folder, resume from the newest complete
checkpoint (or start over when there is none) and finish.
"""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

import pytest

from tests.processes import REPO, kill_when, leapt_argv, leapt_env
from tests.test_training_data import write_sft_dataset
from training.sft import FINISHED_MARKER

SMOKE = REPO / "configs" / "training" / "smoke_cpu.yaml"
STEPS = 16
STATE = "trainer_state.json"


def train_argv(model: Path, data: Path, out: Path) -> list[str]:
    return leapt_argv(
        "train", "--config", str(SMOKE), "--model_name_or_path", str(model),
        "--dataset_name", str(data), "--output_dir", str(out), "--max_steps", str(STEPS),
        "--save_strategy", "steps", "--save_steps", "1", "--logging_steps", "1",
    )  # fmt: skip


def checkpoints(out: Path) -> dict[int, Path]:
    found = {}
    for folder in out.glob("checkpoint-*"):
        found[int(folder.name.split("-")[1])] = folder
    return found


def half_written(out: Path) -> list[int]:
    return sorted(step for step, d in checkpoints(out).items() if not (d / STATE).exists())


@pytest.mark.slow
def test_train_killed_mid_checkpoint_resumes_from_a_complete_one_and_finishes(
    tiny_model_dir, tmp_path
):
    data = write_sft_dataset(tmp_path / "data", n=16)
    for attempt in range(3):  # the kill must land inside a save; retry if it landed between two
        out = tmp_path / f"run-{attempt}"
        argv = train_argv(tiny_model_dir, data, out)
        status = kill_when(argv, lambda o=out: bool(half_written(o)), poll=0.002)
        assert status == -signal.SIGKILL
        if half_written(out):
            break
    else:
        pytest.fail("three kills in a row missed every checkpoint write")
    (torn,) = half_written(out)
    complete = [step for step in checkpoints(out) if step != torn]

    rerun = subprocess.run(argv, cwd=REPO, env=leapt_env(), capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert f"skipping incomplete checkpoint {out / f'checkpoint-{torn}'}" in rerun.stderr
    if complete:
        assert f"resuming from {out / f'checkpoint-{max(complete)}'}\n" in rerun.stderr
    else:
        assert "resuming from" not in rerun.stderr
    record = json.loads((out / FINISHED_MARKER).read_text())
    logged = [e["step"] for e in record["log_history"] if "loss" in e]
    assert logged == list(range(1, STEPS + 1))
    assert all((d / STATE).exists() for d in checkpoints(out).values())
