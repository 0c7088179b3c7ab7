"""The peer-loop benchmark compares like with like, and its token counts are the backend's.

Its ratios only mean something if every workload starts each path from the
same prompt ids with the same seed (the announced prompt when ``leap`` announces
it), and if the decoded / prefilled tokens it prices are what the backend
computed: every prompt token either prefilled or served from the cache, every
sampled token (an end-of-sequence one included) decoded.
"""

from __future__ import annotations

from collections import defaultdict

import pytest

from benchmarks.peer_loop import engine_context, first_prompts, run_all
from inference.args import LeapArguments, ModelArguments
from inference.backends import load_backend
from inference.backends.base import GenerationRequest, SamplingSettings
from inference.problems import synthetic_problems


@pytest.fixture(scope="module")
def hf_backend(tiny_model_dir):
    backend = load_backend(ModelArguments(model=str(tiny_model_dir)))
    yield backend
    backend.close()


class Recorder:
    """Every request and result of one backend, by the benchmark run it belongs to."""

    def __init__(self, backend):
        self.run = "setup"
        self.requests: dict[str, list[GenerationRequest]] = defaultdict(list)
        self.results: dict[str, list] = defaultdict(list)
        submit, collect = backend.submit, backend.collect

        def recording_submit(key, requests, sampling):
            self.requests[self.run] += requests
            submit(key, requests, sampling)

        def recording_collect():
            done = collect()
            for _, results in done:
                self.results[self.run] += results
            return done

        backend.submit, backend.collect = recording_submit, recording_collect

    def switch(self, run: str) -> None:
        self.run = run


def _leap_args(**overrides) -> LeapArguments:
    args = dict(n=3, T=8, top_k=2, max_tokens=32, summary_max_tokens=6, forced_answer_tokens=4)
    return LeapArguments(**{**args, **overrides})


@pytest.mark.parametrize("announce", ["auto", "false"])
def test_every_workload_starts_each_path_from_leaps_prompt_ids(hf_backend, tmp_path, announce):
    leap_args = _leap_args(announce=announce)
    problems = synthetic_problems(2, seed=3)
    recorder = Recorder(hf_backend)
    try:
        rows = run_all(
            hf_backend,
            leap_args,
            problems,
            synthetic_problems(2, seed=4),
            tmp_path,
            on_run=recorder.switch,
        )
    finally:
        del hf_backend.submit, hf_backend.collect
    ctx = engine_context(hf_backend, leap_args)
    expected = first_prompts(ctx, problems)
    assert ctx.announce == (announce == "auto")
    for run in ("leap", "independent", "naive", "limit"):
        by_seed = {r.seed: r.token_ids for r in recorder.requests[run]}
        for ids, seed in expected:
            assert by_seed.get(seed) == ids, f"{run}: path with seed {seed} saw another prompt"
    for run, row in rows.items():
        requests, results = recorder.requests[run], recorder.results[run]
        assert row["prefilled"] + row["cached"] == sum(len(r.token_ids) for r in requests), run
        decoded = sum(len(r.token_ids) + (r.stop_reason == "eos") for r in results)
        assert row["decoded"] == decoded, run
        assert row["prefilled"] > 0 and row["decoded"] >= row["tokens"] > 0, run
    # KV reuse: LeaP re-sends every path's context each round, but prefills only what is new
    assert rows["leap"]["cached"] > rows["leap"]["prefilled"]


@pytest.mark.parametrize("kv_reuse", [True, False])
def test_hf_counts_every_prompt_token_once_and_every_sampled_token(tiny_model_dir, kv_reuse):
    from inference.backends.hf import HFBackend

    loaded = load_backend(ModelArguments(model=str(tiny_model_dir)))
    backend = HFBackend(loaded.model, loaded.tokenizer, "tiny", batch_size=2, kv_reuse=kv_reuse)
    tok, greedy = backend.tokenizer, SamplingSettings(temperature=0.0)
    prompts = [tok.encode(text) for text in ("Count: one, two,", "Add 2 and 3.", "x = 4, so")]
    first = backend.generate(
        [GenerationRequest(p, 5, seed=i) for i, p in enumerate(prompts)], greedy
    )
    longer = prompts[0] + first[0].token_ids + tok.encode(" Peer: three.")
    (second,) = backend.generate([GenerationRequest(longer, 4)], greedy)
    prompt_tokens = sum(map(len, prompts)) + len(longer)
    assert backend.counts.prefilled + backend.counts.cached == prompt_tokens
    sampled = [*first, second]
    assert backend.counts.decoded == sum(
        len(r.token_ids) + (r.stop_reason == "eos") for r in sampled
    )
    if kv_reuse:  # the continuation prefilled only its new text and its last sampled token
        reused = len(prompts[0]) + len(first[0].token_ids) - 1
        assert first[0].stop_reason == "length" and backend.counts.cached == reused
    else:
        assert backend.counts.cached == 0


def test_hf_attention_without_copied_heads_decodes_what_transformers_sdpa_does(tiny_model_dir):
    """The backend's grouped-query sdpa (and in-place cache) gives transformers' own greedy tokens."""
    import torch
    from transformers import AutoModelForCausalLM

    from inference.backends.hf import GQA_SDPA, HFBackend

    loaded = load_backend(ModelArguments(model=str(tiny_model_dir)))
    assert loaded.model.config._attn_implementation == GQA_SDPA
    assert loaded.model.config.num_key_value_heads < loaded.model.config.num_attention_heads
    reference = AutoModelForCausalLM.from_pretrained(tiny_model_dir, attn_implementation="sdpa")
    tok = loaded.tokenizer
    prompts = [tok.encode(text) for text in ("Count: one, two,", "Add 2 and 3, then the rest.")]
    backend = HFBackend(loaded.model, tok, "tiny", batch_size=2)  # both rows share a padded batch
    greedy = SamplingSettings(0.0)
    got = backend.generate([GenerationRequest(p, 70) for p in prompts], greedy)
    # alone, a row's prefill has no padding, so no mask: attention must still be causal
    assert backend.generate([GenerationRequest(prompts[1], 70)], greedy) == got[1:]
    for prompt, result in zip(prompts, got, strict=True):
        with torch.inference_mode():
            out = reference.generate(
                torch.tensor([prompt]), max_new_tokens=70, do_sample=False, eos_token_id=None
            )
        assert result.token_ids == out[0, len(prompt) :].tolist()
