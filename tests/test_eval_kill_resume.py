"""`kill -9` of a real `leapt eval` part-way, then a rerun into the same folder.

Every problem ends up graded exactly once per method, and the report equals
the one an uninterrupted run writes, byte for byte.
"""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import pytest

from inference.trace import read_traces
from tests.processes import REPO, kill_when, leapt_argv, leapt_env, lines_in

FIXTURE = Path(__file__).resolve().parent / "data" / "aime_2024.json"
METHODS = ["independent", "leap"]
PROBLEMS = 5  # rows in the fixture


def eval_argv(model: Path, out: Path) -> list[str]:
    return leapt_argv(
        "eval", "--model", str(model), "--backend", "hf", "--dtype", "float32",
        "--benchmarks", "aime24", "--local_files", f"aime24={FIXTURE}",
        "--methods", *METHODS, "--n", "2", "--top_k", "1", "--T", "8", "--max_tokens", "40",
        "--summary_max_tokens", "6", "--forced_answer_tokens", "4", "--output_dir", str(out),
    )  # fmt: skip


def graded_ids(out: Path) -> dict[str, list[str]]:
    """Problem ids per method, in file order, each checked to be graded."""
    found = {}
    for method in METHODS:
        path = out / "aime24" / method / "traces.jsonl"
        traces = read_traces(path) if path.exists() else []
        assert all(p.correct is not None for t in traces for p in t.paths)
        found[method] = [t.id for t in traces]
    return found


@pytest.mark.slow
def test_killed_eval_resumes_to_the_uninterrupted_report(tmp_path, tiny_model_dir):
    whole, resumed = tmp_path / "whole", tmp_path / "resumed"
    subprocess.run(
        eval_argv(tiny_model_dir, whole), cwd=REPO, env=leapt_env(), check=True, capture_output=True
    )

    first_file = resumed / "aime24" / METHODS[0] / "traces.jsonl"
    status = kill_when(eval_argv(tiny_model_dir, resumed), lambda: lines_in(first_file) >= 1)
    assert status == -signal.SIGKILL
    before = graded_ids(resumed)
    done = sum(map(len, before.values()))
    assert 1 <= done < PROBLEMS * len(METHODS), "the kill must interrupt the evaluation"
    assert not (resumed / "results.json").exists()

    subprocess.run(
        eval_argv(tiny_model_dir, resumed),
        cwd=REPO,
        env=leapt_env(),
        check=True,
        capture_output=True,
    )
    after = graded_ids(resumed)
    for method in METHODS:
        assert sorted(after[method]) == sorted(graded_ids(whole)[method]), method
        assert len(after[method]) == len(set(after[method])) == PROBLEMS, method
        assert after[method][: len(before[method])] == before[method], "finished work is kept"
    for name in ("results.json", "results.md"):
        assert (resumed / name).read_bytes() == (whole / name).read_bytes(), name
