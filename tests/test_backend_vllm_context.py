"""A full context on real vLLM: the backend says so and the engine ends the path (no endless loop).

Before the fix, a path whose context reached ``max_model_len`` before its
token budget got empty ``length`` results forever.  Here the tiny model runs
on the offline vLLM engine (the session's shared one) with a context far below the budget.
"""

from __future__ import annotations

import pytest

from inference.args import LeapArguments, ModelArguments
from inference.backends.base import GenerationRequest, SamplingSettings
from inference.problems import Problem
from inference.run import run_inference
from inference.trace import read_traces
from tests.trace_shape import check_trace
from tests.vllm_server import MAX_MODEL_LEN

pytest_plugins = ["tests.backend_fixtures"]

pytestmark = pytest.mark.slow

#: far below the budgets used here (the tiny tokenizer's announced prompt is ~700 tokens);
#: the shared engine of tests/backend_fixtures.py, started once per session, has this cap
SMALL_CONTEXT = MAX_MODEL_LEN


def test_backend_reports_a_full_context(vllm_backend):
    sampling = SamplingSettings()
    full = GenerationRequest([11] * SMALL_CONTEXT, max_tokens=8, seed=1)
    nearly = GenerationRequest([11] * (SMALL_CONTEXT - 3), max_tokens=50, seed=2)
    roomy = GenerationRequest([11] * 10, max_tokens=4, seed=3)
    results = vllm_backend.generate([full, nearly, roomy], sampling)
    assert results[0].stop_reason == "context" and results[0].token_ids == []
    assert results[1].stop_reason in ("context", "eos", "stop")
    if results[1].stop_reason == "context":
        assert len(results[1].token_ids) == 3
    assert results[2].stop_reason in ("length", "eos")


@pytest.mark.parametrize("method", ["leap", "independent"])
def test_leap_with_a_context_far_below_the_budget_finishes(vllm_backend, tmp_path, method):
    leap_args = LeapArguments(
        method=method, n=3, top_k=1, T=64, max_tokens=8000, summary_max_tokens=16, seed=1
    )
    # independent's plain prompt is short: pad it to the announced prompt's size so the
    # context, not an early EOS of the random model, ends its paths
    pad = "" if method == "leap" else " Think carefully." * 45
    problems = [
        Problem("p1", "What is 17 * 23?" + pad, "391"),
        Problem("p2", "Solve 3x + 5 = 20." + pad, "5"),
    ]
    run_inference(
        ModelArguments(model="tiny", backend="vllm"),
        leap_args,
        problems,
        tmp_path,
        backend=vllm_backend,
        progress=False,
    )
    traces = read_traces(tmp_path / "traces.jsonl")
    assert sorted(t.id for t in traces) == ["p1", "p2"]
    finishes = [p.finish for t in traces for p in t.paths]
    assert set(finishes) <= {"context", "forced", "eos", "think_end"}, finishes
    assert "context" in finishes, finishes
    for trace in traces:
        check_trace(trace, leap_args)
        for path in trace.paths:
            assert path.generated_tokens < SMALL_CONTEXT
