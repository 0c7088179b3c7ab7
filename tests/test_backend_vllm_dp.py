"""``data_parallel_size`` > 1 on the vllm backend: vLLM's own data parallelism, two copies on CPU.

The copies are load-balanced by vLLM, so a request may land on either one:
per-request seeds must still give N distinct paths and replay exactly, and
close() must stop every engine process.
"""

from __future__ import annotations

import psutil
import pytest

from inference.backends import vllm_offline
from inference.backends.base import GenerationRequest, SamplingSettings
from tests.vllm_server import tiny_model_args

pytestmark = pytest.mark.slow


def test_two_data_parallel_copies_sample_distinctly_and_replay(tiny_model_dir):
    me = psutil.Process()
    before = {p.pid for p in me.children()}
    args = tiny_model_args(tiny_model_dir, "vllm", data_parallel_size=2)
    backend = vllm_offline.load(args, str(tiny_model_dir))
    started = [p for p in me.children() if p.pid not in before]
    engine = [
        p
        for p in started + [c for p in started for c in p.children(recursive=True)]
        if "resource_tracker" not in " ".join(p.cmdline())
    ]
    try:
        assert isinstance(backend.engine, vllm_offline.DataParallelEngine)
        context = backend.tokenizer.encode("What is 17 * 23?", add_special_tokens=False)
        requests = [GenerationRequest(context, max_tokens=12, seed=s) for s in range(6)]
        first = backend.generate(requests, SamplingSettings())
        assert all(len(r.token_ids) == 12 and r.stop_reason == "length" for r in first)
        assert len({tuple(r.token_ids) for r in first}) == len(requests)
        again = backend.generate(list(reversed(requests)), SamplingSettings())
        assert [r.token_ids for r in reversed(again)] == [r.token_ids for r in first]
    finally:
        backend.close()
    _, alive = psutil.wait_procs(engine, timeout=60)
    assert not alive, f"data-parallel engine processes still running after close(): {alive}"
