"""The vLLM-based backends keep the Backend contract the engine relies on.

Each test runs on the offline engine (``vllm``) and on the ``openai`` backend
talking to a real vLLM server: both must continue token ids, stop *after* a
stop string, give N different samples for N seeds on one context, and
replay a sample exactly for the same seed.
"""

from __future__ import annotations

import dataclasses

import pytest

from inference.backends.base import GenerationRequest, SamplingSettings
from inference.backends.vllm_offline import map_finish
from tests.vllm_server import MAX_MODEL_LEN

pytest_plugins = ["tests.backend_fixtures"]

pytestmark = pytest.mark.slow

#: the paper's sampling settings
PAPER = SamplingSettings(temperature=0.6, top_p=0.95, top_k=40, min_p=0.0)


@pytest.fixture(params=["vllm_backend", "openai_backend"])
def backend(request):
    return request.getfixturevalue(request.param)


def chat_ids(tokenizer, question: str) -> list[int]:
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": question}], tokenize=False, add_generation_prompt=True
    )
    return tokenizer.encode(text, add_special_tokens=False)


def test_continues_token_ids_with_faithful_text(backend):
    tok = backend.tokenizer
    contexts = [chat_ids(tok, "What is 17 * 23?"), chat_ids(tok, "Solve 3x + 5 = 20.")]
    requests = [GenerationRequest(ids, max_tokens=12, seed=i) for i, ids in enumerate(contexts)]
    results = backend.generate(requests, PAPER)
    assert len(results) == len(requests)
    for result in results:
        assert result.stop_reason in ("length", "eos")
        assert 0 < len(result.token_ids) <= 12 or result.stop_reason == "eos"
        if result.stop_reason == "length":
            assert len(result.token_ids) == 12
        assert result.text == tok.decode(result.token_ids, skip_special_tokens=False)


def test_paths_differ_and_seeds_reproduce(backend):
    context = chat_ids(backend.tokenizer, "Find the number of minutes the walk takes.")
    requests = [GenerationRequest(context, max_tokens=16, seed=seed) for seed in (11, 12, 13, 14)]
    first = backend.generate(requests, PAPER)
    assert len({tuple(r.token_ids) for r in first}) == len(requests), "N paths must differ"
    again = backend.generate(requests, PAPER)
    assert [r.token_ids for r in again] == [r.token_ids for r in first]
    assert [r.text for r in again] == [r.text for r in first]


def _stop_string_from(tokenizer, ids: list[int], text: str) -> str:
    """A two-token piece from the middle of a sample that decodes cleanly."""
    for start in range(len(ids) // 2, len(ids) - 1):
        piece = tokenizer.decode(ids[start : start + 2], skip_special_tokens=False)
        if piece.strip() and "\ufffd" not in piece and piece in text:
            return piece
    pytest.fail(f"no clean two-token piece in sample {text!r}")


def test_stop_string_ends_output_and_is_included(backend):
    tok = backend.tokenizer
    context = chat_ids(tok, "Let me think step by step.")
    free = backend.generate([GenerationRequest(context, max_tokens=24, seed=5)], PAPER)[0]
    stop = _stop_string_from(tok, free.token_ids, free.text)

    request = GenerationRequest(context, max_tokens=24, stop=["@@never@@", stop], seed=5)
    stopped = backend.generate([request], PAPER)[0]

    assert stopped.stop_reason == "stop"
    assert stopped.stop_string == stop
    # the same sample, cut right after the token that completed the first occurrence
    assert stopped.token_ids == free.token_ids[: len(stopped.token_ids)]
    assert stop in stopped.text
    assert stop not in tok.decode(stopped.token_ids[:-1], skip_special_tokens=False)
    assert stopped.text == tok.decode(stopped.token_ids, skip_special_tokens=False)


def test_full_context_gives_empty_context_result_beside_normal_requests(backend):
    tok = backend.tokenizer
    normal = chat_ids(tok, "What is 2 + 2?")
    full = (normal * (MAX_MODEL_LEN // len(normal) + 1))[:MAX_MODEL_LEN]
    results = backend.generate(
        [GenerationRequest(full, max_tokens=8, seed=1), GenerationRequest(normal, 8, seed=2)],
        PAPER,
    )
    # "context", not "length": the engine must end such a path instead of asking again
    assert results[0].token_ids == [] and results[0].stop_reason == "context"
    assert len(results[1].token_ids) > 0
    # a request the context cuts short says so too
    nearly = full[:-3]
    (cut,) = backend.generate([GenerationRequest(nearly, max_tokens=8, seed=3)], PAPER)
    assert cut.stop_reason in ("context", "eos")
    if cut.stop_reason == "context":
        assert len(cut.token_ids) == 3


def test_finish_reasons_map_to_protocol():
    assert map_finish("length", None) == ("length", None)
    assert map_finish("stop", "</summarize>") == ("stop", "</summarize>")
    assert map_finish("stop", None) == ("eos", None)  # the tokenizer's EOS
    assert map_finish("stop", 151643) == ("eos", None)  # another EOS id from generation_config
    with pytest.raises(RuntimeError, match="abort"):
        map_finish("abort", None)


def test_offline_engine_reuses_cached_prefix(vllm_backend):
    """A path's next turn shares its whole context with the last one: it must hit the cache."""
    from vllm import SamplingParams
    from vllm.inputs import TokensPrompt

    tok = vllm_backend.tokenizer
    context = (chat_ids(tok, "Let me reconsider the peers' summaries.") * 40)[:600]
    llm = vllm_backend.engine.llm
    params = SamplingParams(max_tokens=1, seed=0)
    llm.generate([TokensPrompt(prompt_token_ids=context)], params, use_tqdm=False)
    longer = context + tok.encode(" and continue", add_special_tokens=False)
    (again,) = llm.generate([TokensPrompt(prompt_token_ids=longer)], params, use_tqdm=False)
    assert again.num_cached_tokens > 0


def test_prompts_reach_the_engine_rendered(vllm_backend):
    """vLLM 0.32 deprecates raw prompts in ``add_request``: ours arrive as engine inputs."""
    engine = vllm_backend.engine.engine
    seen, add = [], engine.add_request

    def spy(request_id, prompt, *args, **kwargs):
        seen.append(prompt)
        return add(request_id, prompt, *args, **kwargs)

    engine.add_request = spy
    try:
        context = chat_ids(vllm_backend.tokenizer, "What is 2 + 2?")
        (result,) = vllm_backend.generate([GenerationRequest(context, 3, seed=0)], PAPER)
    finally:
        del engine.add_request
    assert len(result.token_ids) == 3
    assert seen and all(isinstance(p, dict) and "type" in p for p in seen), seen


def test_offline_backend_counts_prefilled_cached_and_decoded_tokens(vllm_backend):
    """Every prompt token is prefilled or a cache hit (vLLM's own count); every sampled one decoded."""
    tok = vllm_backend.tokenizer
    context = (chat_ids(tok, "Let me count what the engine computed.") * 40)[:600]
    before = dataclasses.replace(vllm_backend.counts)
    settings = SamplingSettings(temperature=0.0)
    (first,) = vllm_backend.generate([GenerationRequest(context, 3, seed=0)], settings)
    longer = context + first.token_ids + tok.encode(" and on", add_special_tokens=False)
    (second,) = vllm_backend.generate([GenerationRequest(longer, 3, seed=1)], settings)
    counts = vllm_backend.counts
    prefilled, cached = counts.prefilled - before.prefilled, counts.cached - before.cached
    assert prefilled + cached == len(context) + len(longer)
    assert cached >= 512  # the second request's context was cached (blocks of 16 tokens)
    sampled = sum(len(r.token_ids) + (r.stop_reason == "eos") for r in (first, second))
    assert counts.decoded - before.decoded == sampled


def test_a_short_group_returns_while_a_long_one_decodes(vllm_backend):
    """Streaming submission: a problem's short round comes back before another's long one ends.

    Offline engine only: it steps only inside ``collect``, so the order is
    fixed; over HTTP it would depend on when each call reaches the server.
    """
    backend = vllm_backend
    context = chat_ids(backend.tokenizer, "Count from one to one hundred.")
    backend.submit("long", [GenerationRequest(context, max_tokens=48, seed=1)], PAPER)
    short = [GenerationRequest(context, max_tokens=2, seed=s) for s in (2, 3)]
    backend.submit("short", short, PAPER)
    first = backend.collect()
    assert [key for key, _ in first] == ["short"]
    assert all(len(r.token_ids) <= 2 for r in first[0][1])
    (rest,) = backend.collect()
    assert rest[0] == "long" and len(rest[1]) == 1
