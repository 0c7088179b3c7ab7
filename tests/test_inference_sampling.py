"""Sampling on the hf backend: N paths are distinct samples; a fixed seed replays a run."""

from __future__ import annotations

import pytest

from inference.args import LeapArguments, ModelArguments
from inference.backends import load_backend
from inference.backends.base import GenerationRequest, SamplingSettings
from inference.problems import synthetic_problems
from inference.run import run_inference
from inference.trace import read_traces


@pytest.fixture(scope="module")
def hf_backend(tiny_model_dir):
    backend = load_backend(ModelArguments(model=str(tiny_model_dir)))
    yield backend
    backend.close()


def _run(backend, tmp_path, seed, name):
    leap_args = LeapArguments(n=4, top_k=2, T=8, max_tokens=16, summary_max_tokens=4, seed=seed)
    run_inference(
        ModelArguments(model="unused"),
        leap_args,
        synthetic_problems(2, seed=0),
        tmp_path / name,
        backend=backend,
        progress=False,
    )
    return read_traces(tmp_path / name / "traces.jsonl")


def _texts(traces):
    return {t.id: [p.text(["model"]) for p in t.paths] for t in traces}


def test_paths_differ_and_seed_reproduces(hf_backend, tmp_path):
    first = _texts(_run(hf_backend, tmp_path, seed=11, name="a"))
    again = _texts(_run(hf_backend, tmp_path, seed=11, name="b"))
    other = _texts(_run(hf_backend, tmp_path, seed=12, name="c"))
    assert first == again
    assert first != other
    for texts in first.values():
        assert len(set(texts)) == len(texts), "the N paths of a problem must be distinct samples"


def test_stop_string_is_kept_and_cuts_generation(hf_backend):
    tok = hf_backend.tokenizer
    prompt = tok.encode("Let me think step by step.")
    greedy = SamplingSettings(temperature=0.0)
    (free,) = hf_backend.generate([GenerationRequest(prompt, 12)], greedy)
    assert free.stop_reason == "length" and len(free.token_ids) == 12
    stop = tok.decode(free.token_ids[5:7])
    (cut,) = hf_backend.generate([GenerationRequest(prompt, 12, [stop])], greedy)
    assert cut.stop_reason == "stop" and cut.stop_string == stop
    assert stop in cut.text and len(cut.token_ids) <= 7
    assert cut.token_ids == free.token_ids[: len(cut.token_ids)]
    assert cut.text == tok.decode(cut.token_ids)


def test_batched_rows_match_their_requests(hf_backend):
    """Left padding must not change what a row generates (greedy, mixed lengths)."""
    tok = hf_backend.tokenizer
    short, long = tok.encode("What is 17"), tok.encode("Solve for x: 3x + 5 = 20. Subtract 5")
    greedy = SamplingSettings(temperature=0.0)
    alone = [hf_backend.generate([GenerationRequest(p, 6)], greedy)[0] for p in (short, long)]
    together = hf_backend.generate(
        [GenerationRequest(short, 6), GenerationRequest(long, 6)], greedy
    )
    assert [r.token_ids for r in together] == [r.token_ids for r in alone]


def test_a_sampled_row_depends_on_its_seed_not_on_its_batch(hf_backend):
    """Resumed or sharded runs batch paths differently; each path must still draw the same."""
    tok = hf_backend.tokenizer
    short, long = tok.encode("What is 17"), tok.encode("Solve for x: 3x + 5 = 20. Subtract 5")
    warm = SamplingSettings(temperature=1.0, top_p=1.0, top_k=-1)
    alone = hf_backend.generate([GenerationRequest(long, 12, seed=7)], warm)[0]
    batched = hf_backend.generate(
        [GenerationRequest(short, 12, seed=3), GenerationRequest(long, 12, seed=7)], warm
    )
    assert batched[1].token_ids == alone.token_ids
    other_seed = hf_backend.generate([GenerationRequest(long, 12, seed=8)], warm)[0]
    assert other_seed.token_ids != alone.token_ids
