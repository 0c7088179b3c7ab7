"""The streaming scheduler and the hf backend's continuous batching and KV reuse.

A problem must advance as soon as its own requests return, and neither the
order problems advance in nor reusing a path's keys/values across rounds may
change what a fixed seed generates.
"""

from __future__ import annotations

import pytest

from inference.args import LeapArguments, ModelArguments
from inference.backends import load_backend
from inference.backends.base import GenerationRequest, SamplingSettings
from inference.backends.hf import HFBackend
from inference.engine import EngineContext, run_problems
from inference.problems import Problem, synthetic_problems
from inference.protocol import load_protocol
from inference.run import run_inference
from inference.trace import Trace, read_traces


@pytest.fixture(scope="module")
def hf_backend(tiny_model_dir):
    backend = load_backend(ModelArguments(model=str(tiny_model_dir)))
    yield backend
    backend.close()


def _leap(backend, out, concurrent=None, seed=5):
    run_inference(
        ModelArguments(model="unused"),
        LeapArguments(n=3, top_k=2, T=6, max_tokens=24, summary_max_tokens=5, seed=seed),
        synthetic_problems(3, seed=1),
        out,
        backend=backend,
        progress=False,
        concurrent_problems=concurrent,
    )
    return {
        t.id: [(p.segments, p.generated_tokens, p.finish) for p in t.paths]
        for t in read_traces(out / "traces.jsonl")
    }


def test_a_fast_problem_finishes_before_a_slow_problems_request_returns(hf_backend):
    """The slow problem's one long request is still decoding while the fast one runs two rounds."""
    events: list[str] = []
    ctx = EngineContext(hf_backend, load_protocol(None), LeapArguments(temperature=0.0))
    prompt = hf_backend.tokenizer.encode("Count to ten: one, two,")

    def runner(_ctx, problem: Problem):
        if problem.id == "slow":
            (result,) = yield [GenerationRequest(prompt, 40, seed=1)]
            events.append(f"slow got {len(result.token_ids)} tokens")
        else:
            for turn in range(2):
                yield [GenerationRequest(prompt, 2, seed=2 + turn)]
                events.append("fast round")
        return Trace(id=problem.id, problem="", answer=None)

    problems = [
        Problem(id="slow", problem="", answer=None),
        Problem(id="fast", problem="", answer=None),
    ]
    run_problems(problems, runner, ctx, lambda t: events.append(f"{t.id} done"), max_concurrent=2)
    assert events == ["fast round", "fast round", "fast done", "slow got 40 tokens", "slow done"]


def test_streaming_scheduler_matches_one_problem_at_a_time(hf_backend, tmp_path):
    together = _leap(hf_backend, tmp_path / "together")
    alone = _leap(hf_backend, tmp_path / "alone", concurrent=1)
    assert together == alone
    assert sum(tokens for paths in together.values() for _, tokens, _ in paths) > 0


def test_kv_reuse_generates_the_same_tokens(hf_backend, tmp_path):
    """Seeded LeaP runs with and without reused keys/values write identical traces."""
    fresh = HFBackend(hf_backend.model, hf_backend.tokenizer, "tiny", batch_size=4, kv_reuse=False)
    reusing = HFBackend(hf_backend.model, hf_backend.tokenizer, "tiny", batch_size=4)
    assert _leap(reusing, tmp_path / "reuse") == _leap(fresh, tmp_path / "fresh")
    assert reusing.counts.cached > 0 and fresh.counts.cached == 0


def test_kv_reuse_greedy_continuation_equals_full_prefill(hf_backend):
    """Continuing a finished row's ids (plus new text) from its stored cache = prefilling it all."""
    tok = hf_backend.tokenizer
    greedy = SamplingSettings(temperature=0.0)
    prompt = tok.encode("Solve for x: 3x + 5 = 20.")
    outputs = {}
    for reuse in (True, False):
        backend = HFBackend(hf_backend.model, tok, "tiny", kv_reuse=reuse)
        (first,) = backend.generate([GenerationRequest(prompt, 7)], greedy)
        longer = prompt + first.token_ids + tok.encode(" Peer: x is 5.")
        (second,) = backend.generate([GenerationRequest(longer, 9)], greedy)
        outputs[reuse] = (first.token_ids, second.token_ids, backend.counts.cached)
    assert outputs[True][:2] == outputs[False][:2]
    assert outputs[True][2] == len(prompt) + 6  # the prompt and all but the last sampled token


def test_requests_that_cannot_produce_a_token_are_answered_without_the_model(tiny_model_dir):
    """Every backend answers a full context with "context" and a zero cap with "length"."""
    backend = load_backend(ModelArguments(model=str(tiny_model_dir), max_model_len=16))
    try:
        prompt = backend.tokenizer.encode("Count to ten: one, two, three,")[:10]
        full, nothing, normal = (
            GenerationRequest(prompt + prompt, 4),
            GenerationRequest(prompt, 0),
            GenerationRequest(prompt, 3, seed=1),
        )
        results = backend.generate([full, nothing, normal], SamplingSettings())
        assert [(r.stop_reason, r.token_ids) for r in results[:2]] == [
            ("context", []),
            ("length", []),
        ]
        assert 1 <= len(results[2].token_ids) <= 3
        backend.submit("group", [normal], SamplingSettings())
        with pytest.raises(ValueError, match="already in flight"):
            backend.submit("group", [normal], SamplingSettings())
        assert [key for key, _ in backend.collect()] == ["group"]
    finally:
        backend.close()
