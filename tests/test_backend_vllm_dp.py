"""``data_parallel_size`` > 1 on the vllm backend: vLLM's own data parallelism, two copies on CPU.

A request without a path key may land on either copy: per-request seeds must
still give N distinct paths and replay exactly.  A path's requests all go to
one copy, so its next turn is served from that copy's prefix cache.  A
cancelled request ends the wait with an error instead of hanging it, prompts
reach vLLM rendered (no deprecated raw prompt), and close() stops every
engine process.
"""

from __future__ import annotations

import psutil
import pytest

from inference.backends import vllm_offline
from inference.backends.base import GenerationRequest, SamplingSettings
from inference.backends.vllm_offline import data_parallel_rank
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
        _paths_stay_on_their_copy(backend)
        _a_cancelled_request_ends_the_wait(backend, context)
    finally:
        backend.close()
    _, alive = psutil.wait_procs(engine, timeout=60)
    assert not alive, f"data-parallel engine processes still running after close(): {alive}"


def _paths_stay_on_their_copy(backend) -> None:
    """Each path's second turn finds its first turn's context cached on its own copy."""
    tok = backend.tokenizer
    engine = backend.engine
    prompts, cached = [], {}
    generate, finished = engine.engine.generate, engine.finished

    async def spy_generate(prompt, *args, **kwargs):
        prompts.append(prompt)
        async for output in generate(prompt, *args, **kwargs):
            yield output

    def spy_finished():
        ended = finished()
        cached.update((rid, out.num_cached_tokens) for rid, out in ended)
        return ended

    engine.engine.generate, engine.finished = spy_generate, spy_finished
    # three paths pinned to each copy, with contexts of 2+ KV blocks (128 tokens on CPU)
    candidates = [f"p{i}\x1f0" for i in range(40)]
    keys = [k for k in candidates if data_parallel_rank(k, 2) == 0][:3]
    keys += [k for k in candidates if data_parallel_rank(k, 2) == 1][:3]
    assert len(set(keys)) == 6
    contexts = [
        tok.encode(f"Path {key} thinks about {i * 7919} apples. " * 40, add_special_tokens=False)
        for i, key in enumerate(keys)
    ]
    contexts = [c[:300] for c in contexts]
    requests = [
        GenerationRequest(c, 4, seed=i, path_key=k)
        for i, (c, k) in enumerate(zip(contexts, keys, strict=True))
    ]
    first = backend.generate(requests, SamplingSettings())
    before = set(cached)
    turn2 = [
        GenerationRequest(c + r.token_ids, 4, seed=9, path_key=k)
        for c, r, k in zip(contexts, first, keys, strict=True)
    ]
    backend.generate(list(reversed(turn2)), SamplingSettings())  # the other order on purpose
    second = [cached[rid] for rid in cached if rid not in before]
    assert len(second) == len(keys) and all(n >= 256 for n in second), second
    assert all(isinstance(p, dict) and "type" in p for p in prompts), "a raw prompt reached vLLM"
    engine.engine.generate, engine.finished = generate, finished


def _a_cancelled_request_ends_the_wait(backend, context) -> None:
    backend.submit(
        "doomed", [GenerationRequest(context, 500, seed=1, path_key="x")], SamplingSettings()
    )
    (task,) = backend.engine.tasks
    task.cancel()
    with pytest.raises(RuntimeError, match="cancelled"):
        backend.collect()
    backend.groups.clear()
