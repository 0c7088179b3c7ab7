"""An interrupted `leapt infer` rerun into the same folder yields every problem exactly once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from inference.trace import read_traces

REPO = Path(__file__).resolve().parent.parent


def _argv(model: Path, out: Path) -> list[str]:
    return [
        sys.executable, "-m", "leapt.cli", "infer", "--model", str(model), "--output_dir", str(out),
        "--problems", "synthetic", "--num_synthetic", "5", "--concurrent_problems", "1",
        "--n", "2", "--top_k", "1", "--T", "8", "--max_tokens", "16",
        "--summary_max_tokens", "4", "--forced_answer_tokens", "2",
    ]  # fmt: skip


@pytest.mark.slow
def test_killed_run_resumes_without_duplicates(tmp_path, tiny_model_dir):
    out = tmp_path / "out"
    traces = out / "traces.jsonl"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        _argv(tiny_model_dir, out),
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 600
        while not (traces.exists() and traces.read_bytes().count(b"\n") >= 1):
            assert proc.poll() is None, "run ended before the first problem was written"
            assert time.monotonic() < deadline, "no problem finished in time"
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    first = [t.id for t in read_traces(traces)]
    assert 1 <= len(first) < 5, "the kill must interrupt the run part-way"

    subprocess.run(_argv(tiny_model_dir, out), cwd=REPO, env=env, check=True, capture_output=True)
    ids = [t.id for t in read_traces(traces)]
    assert sorted(ids) == sorted(f"synthetic-0-{i}" for i in range(5))
    assert ids[: len(first)] == first, "finished problems are never rewritten"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["finished"] == 5 and summary["run_now"] == 5 - len(first)
