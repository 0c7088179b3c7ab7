"""One writer per run folder, across real `leapt infer` processes.

Two processes on one folder: the second refuses in one line naming the first (its PID);
a holder killed with ``kill -9`` leaves its lock file behind, unlocked, and the next run
takes it over with a warning and finishes the run, every problem exactly once.  Reruns
with other inputs and a corrupt middle line are refused by a real process too.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from inference.trace import read_traces
from leapt.run_lock import LOCK_NAME
from tests.processes import REPO, leapt_argv, leapt_env, lines_in
from tests.test_run_folder import snapshot, write_problems

PROBLEMS = 24


def _argv(model: Path, out: Path, *extra: str) -> list[str]:
    return leapt_argv(
        "infer", "--model", str(model), "--output_dir", str(out),
        "--source", "synthetic", "--num_synthetic", str(PROBLEMS), "--concurrent_problems", "1",
        "--n", "2", "--top_k", "1", "--T", "8", "--max_tokens", "24",
        "--summary_max_tokens", "4", "--forced_answer_tokens", "2", *extra,
    )  # fmt: skip


def _run(argv: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=REPO, env=leapt_env(), capture_output=True, text=True)


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ": error: " in line]


def _holder(out: Path) -> dict | None:
    try:
        return json.loads((out / LOCK_NAME).read_text())
    except (OSError, ValueError):
        return None


@pytest.mark.slow
def test_second_writer_refuses_and_a_killed_holders_lock_is_taken_over(tmp_path, tiny_model_dir):
    out = tmp_path / "run"
    traces = out / "traces.jsonl"
    first = subprocess.Popen(
        _argv(tiny_model_dir, out),
        cwd=REPO,
        env=leapt_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 300
        while not ((_holder(out) or {}).get("pid") == first.pid and lines_in(traces) >= 1):
            assert first.poll() is None, "the first run ended before the second could start"
            assert time.monotonic() < deadline, "the first run never started writing"
            time.sleep(0.05)
        second = _run(_argv(tiny_model_dir, out))
        assert first.poll() is None, "the first run must still hold the folder"
        assert second.returncode == 2, second.stderr
        (line,) = _error_lines(second.stderr)
        assert f"PID {first.pid} on host" in line and "leapt infer" in line and "in use" in line
        os.killpg(first.pid, signal.SIGKILL)
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    assert first.returncode == -signal.SIGKILL
    assert _holder(out)["pid"] == first.pid, "kill -9 leaves the lock file (unlocked) behind"
    done_before = [t.id for t in read_traces(traces)]
    assert 1 <= len(done_before) < PROBLEMS

    third = _run(_argv(tiny_model_dir, out))
    assert third.returncode == 0, third.stderr
    assert f"taking over the lock of PID {first.pid}" in third.stderr
    ids = [t.id for t in read_traces(traces)]
    assert sorted(ids) == sorted(f"synthetic-0-{i}" for i in range(PROBLEMS))
    assert ids[: len(done_before)] == done_before
    assert not (out / LOCK_NAME).exists()


@pytest.mark.slow
def test_real_reruns_with_other_inputs_or_a_corrupt_line_are_refused(tmp_path, tiny_model_dir):
    source = write_problems(tmp_path / "p.jsonl", ["Compute 1 + 2.", "Compute 3 + 4."])
    out = tmp_path / "run"
    base = leapt_argv(
        "infer", "--output_dir", str(out), "--source", str(source),
        "--n", "2", "--top_k", "1", "--T", "6", "--max_tokens", "12",
        "--summary_max_tokens", "3", "--forced_answer_tokens", "2",
    )  # fmt: skip
    done = _run([*base, "--model", str(tiny_model_dir)])
    assert done.returncode == 0, done.stderr
    other = tmp_path / "other-model"
    shutil.copytree(tiny_model_dir, other)
    before = snapshot(out)

    cases = [
        ([*base, "--model", str(other)], "model.path"),
        ([*base, "--model", str(tiny_model_dir), "--dtype", "float32"], "dtype 'auto', not"),
    ]
    for argv, words in cases:
        result = _run(argv)
        assert result.returncode == 2, result.stderr
        (line,) = _error_lines(result.stderr)
        assert words in line, line
        assert snapshot(out) == before
    write_problems(source, ["Compute 1 + 2.", "Compute 3 + 5."])
    result = _run([*base, "--model", str(tiny_model_dir)])
    assert result.returncode == 2 and "'p1'" in _error_lines(result.stderr)[0], result.stderr
    assert snapshot(out) == before

    write_problems(source, ["Compute 1 + 2.", "Compute 3 + 4."])
    traces = out / "traces.jsonl"
    first, second = traces.read_text().splitlines(keepends=True)
    traces.write_text(first[:-20] + "\n" + second)
    before = snapshot(out)
    result = _run([*base, "--model", str(tiny_model_dir)])
    assert result.returncode == 2, result.stderr
    (line,) = _error_lines(result.stderr)
    assert f"{traces} line 1 " in line and "delete line 1" in line
    assert snapshot(out) == before
