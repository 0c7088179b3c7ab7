"""`leap_t` on real backends: a model that writes `<summarize>` itself gets its LeaP block there.

The model (tests/summarizing_model.py) is a real Qwen2 checkpoint whose weights
make it write `` step<summarize> answer</summarize>`` over and over, so under
``leap_t`` every reasoning chunk must stop at its own tag (one token in, far
before ``T``), the summary must be sampled right after it with no engine
trigger, and the peers' summaries must follow.
"""

from __future__ import annotations

import pytest

from inference.args import LeapArguments
from inference.protocol import load_protocol
from inference.trace import Segment, read_traces
from leapt.cli import main as leapt
from tests.summarizing_model import CLOSE, NOTE, OPEN, STEP, build_summarizing_model
from tests.trace_shape import check_trace

PROTO = load_protocol()
LEAP = {"n": 3, "top_k": 1, "T": 16, "max_tokens": 24, "summary_max_tokens": 8}


@pytest.fixture(scope="module")
def summarizing_model(tiny_model_dir, tmp_path_factory):
    return build_summarizing_model(tiny_model_dir, tmp_path_factory.mktemp("summarizing"))


def run_leap_t(model, out, backend: str, *extra: str):
    argv = ["infer", "--model", str(model), "--backend", backend, "--dtype", "float32"]
    argv += ["--method", "leap_t", "--output_dir", str(out), "--forced_answer_tokens", "2"]
    argv += ["--source", "synthetic", "--num_synthetic", "2", *extra]
    for key, value in LEAP.items():
        argv += [f"--{key}", str(value)]
    assert leapt(argv) == 0
    return read_traces(out / "traces.jsonl")


def check_model_opened_blocks(traces) -> None:
    for trace in traces:
        check_trace(trace, LeapArguments(method="leap_t", forced_answer_tokens=2, **LEAP))
        for index, path in enumerate(trace.paths):
            # one reasoning token, then the model's own tag and its summary: no engine text between
            assert path.segments[1] == Segment("model", STEP + OPEN + NOTE + CLOSE)
            assert path.segments[2].kind == "peer"
            assert f'Peer 1: "{NOTE.strip()}"' in path.segments[2].text
            assert not any(t in path.text(["prompt"]) for t in PROTO.summary_triggers)
            blocks = [s for s in path.segments if s.kind == "peer"]
            assert len(blocks) == sum(1 for r in trace.routing if r.path == index) >= 3
            assert path.summary_tokens == 2 * len(blocks)  # NOTE + CLOSE, counted in the budget
        assert sorted(r.path for r in trace.routing if r.turn == 1) == [0, 1, 2]


def test_leap_t_on_hf(summarizing_model, tmp_path):
    check_model_opened_blocks(run_leap_t(summarizing_model, tmp_path / "hf", "hf"))


def test_plain_leap_on_hf_ignores_the_model_written_tag(summarizing_model, tmp_path):
    out = tmp_path / "leap"
    argv = ["infer", "--model", str(summarizing_model), "--dtype", "float32", "--method", "leap"]
    argv += ["--output_dir", str(out), "--source", "synthetic", "--num_synthetic", "1"]
    argv += ["--n", "2", "--top_k", "1", "--T", "8", "--max_tokens", "24", "--announce", "false"]
    assert leapt(argv) == 0
    (trace,) = read_traces(out / "traces.jsonl")
    first_chunk = trace.paths[0].segments[1]
    assert first_chunk.kind == "model" and first_chunk.text.count(OPEN) == 2  # 8 tokens, no stop
    block = trace.paths[0].segments[2]  # the engine's own trigger opens the block after T tokens
    assert block.kind == "prompt" and PROTO.summary_open in block.text
    assert any(block.text.startswith(t + PROTO.summary_open) for t in PROTO.summary_triggers)


@pytest.mark.slow
def test_leap_t_on_vllm(summarizing_model, tmp_path):
    # vLLM's default, compiled start (every other vLLM test runs eager to start sooner)
    traces = run_leap_t(summarizing_model, tmp_path / "vllm", "vllm", "--max_model_len", "2048")
    check_model_opened_blocks(traces)
