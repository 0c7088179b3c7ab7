"""An interrupted `leapt infer` rerun into the same folder yields every problem exactly once."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

import pytest

from inference.trace import read_traces
from tests.processes import REPO, kill_when, leapt_argv, leapt_env, lines_in


def _argv(model: Path, out: Path) -> list[str]:
    return leapt_argv(
        "infer", "--model", str(model), "--output_dir", str(out),
        "--source", "synthetic", "--num_synthetic", "5", "--concurrent_problems", "1",
        "--n", "2", "--top_k", "1", "--T", "8", "--max_tokens", "16",
        "--summary_max_tokens", "4", "--forced_answer_tokens", "2",
    )  # fmt: skip


@pytest.mark.slow
def test_killed_run_resumes_without_duplicates(tmp_path, tiny_model_dir):
    out = tmp_path / "out"
    traces = out / "traces.jsonl"
    status = kill_when(_argv(tiny_model_dir, out), lambda: lines_in(traces) >= 1)
    assert status == -signal.SIGKILL
    first = [t.id for t in read_traces(traces)]
    assert 1 <= len(first) < 5, "the kill must interrupt the run part-way"

    subprocess.run(
        _argv(tiny_model_dir, out), cwd=REPO, env=leapt_env(), check=True, capture_output=True
    )
    ids = [t.id for t in read_traces(traces)]
    assert sorted(ids) == sorted(f"synthetic-0-{i}" for i in range(5))
    assert ids[: len(first)] == first, "finished problems are never rewritten"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["finished"] == 5 and summary["run_now"] == 5 - len(first)
