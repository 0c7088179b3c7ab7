"""Data parallel keeps a path on one model copy: its prefix cache holds the path's context.

The rank choice and the key the engine gives each request are checked here
without vLLM; test_backend_vllm_dp.py checks on a real two-copy engine that a
path's next turn is served from its copy's cache.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

from inference.args import LeapArguments
from inference.backends.vllm_offline import data_parallel_rank
from inference.engine import derive_seed
from inference.problems import Problem
from tests.scripted_model import RAMBLE, run_scripted

ROOT = Path(__file__).resolve().parents[1]


def test_every_request_of_a_path_goes_to_one_rank(tmp_path, tiny_model_dir):
    def script(path, turn, phase):
        if phase == "summary":
            return "so far 4</summarize>"
        return "4}" if phase == "forced" else RAMBLE

    problems = [Problem("a", "What is 2 + 2?", "4"), Problem("b", "What is 3 + 3?", "6")]
    args = LeapArguments(n=3, top_k=1, T=16, max_tokens=64)
    _, backend = run_scripted(tmp_path, tiny_model_dir, script, args, problems)
    path_of = {
        derive_seed(args.seed, p.id, i, turn, phase): (p.id, i)
        for p in problems
        for i in range(args.n)
        for turn in range(1, 20)
        for phase in ("reason", "summary", "forced")
    }
    keys: dict[tuple[str, int], set[str]] = {}
    for request in (r for call in backend.calls for r in call):
        keys.setdefault(path_of[request.seed], set()).add(request.path_key)
    assert len(keys) == 6 and all(len(k) == 1 and "" not in k for k in keys.values()), keys
    assert len({k for ks in keys.values() for k in ks}) == 6, "two paths share a key"
    # reasoning, summary and forced-answer requests of a path: several turns, one rank
    turns = Counter(path_of[r.seed] for call in backend.calls for r in call)
    assert min(turns.values()) >= 3
    for size in (2, 8):
        for (key,) in keys.values():
            assert 0 <= data_parallel_rank(key, size) < size


def test_ranks_spread_paths_over_all_copies():
    ranks = Counter(
        data_parallel_rank(f"problem-{p}\x1f{i}", 8) for p in range(30) for i in range(32)
    )
    assert set(ranks) == set(range(8))
    assert max(ranks.values()) < 2 * min(ranks.values())  # 960 paths: about 120 a copy
    assert data_parallel_rank("p\x1f0", 1) is None, "one copy: nothing to choose"
    assert data_parallel_rank("", 8) is None, "no path (e.g. a probe): vLLM balances"


def test_the_rank_does_not_depend_on_the_process():
    """Python's own hash is salted per process; a resumed run must place paths the same way."""
    keys = [f"aime24-{p}\x1f{i}" for p in range(4) for i in range(8)]
    code = (
        "import sys; from inference.backends.vllm_offline import data_parallel_rank as r; "
        "print(' '.join(str(r(k, 8)) for k in sys.argv[1:]))"
    )
    runs = [
        subprocess.run(
            [sys.executable, "-c", code, *keys],
            env={**os.environ, "PYTHONPATH": str(ROOT), "PYTHONHASHSEED": str(salt)},
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        for salt in (1, 2)
    ]
    assert runs[0] == runs[1] == [str(data_parallel_rank(k, 8)) for k in keys]
