"""The leap_s and moa baselines, driven by the real engine with a scripted model."""

from __future__ import annotations

import pytest
from transformers import AutoTokenizer

from eval.grading import make_grader
from inference.args import LeapArguments
from inference.problems import Problem
from leapt.config import ConfigError
from tests.scripted_model import EOS, run_scripted

PROBLEM = Problem("p1", "What is 6 * 7?", "42")
RAMBLE = "Let me multiply carefully, six sevens are forty-two. " * 10


def run(tmp_path, tiny_model_dir, script, seed_ids=(), **leap):
    leap_args = LeapArguments(**{"n": 3, "top_k": 2, "T": 8, "max_tokens": 40, **leap})
    (trace,), backend = run_scripted(
        tmp_path,
        tiny_model_dir,
        script,
        leap_args,
        [PROBLEM],
        seed_ids=seed_ids,
        grade=make_grader("math"),
    )
    return trace, backend


def test_leap_s_exchanges_once_then_only_the_lead_continues(tmp_path, tiny_model_dir):
    def script(path, turn, phase):
        if phase == "summary":
            return f"path {path} thinks the answer is 42</summarize>"
        if turn == 1:
            return RAMBLE  # every draft is cut at T tokens
        if turn == 2:
            return "So the product is 42.</think>"
        return (" The answer is \\boxed{42}.", EOS)  # written after the think-end tag

    trace, backend = run(tmp_path, tiny_model_dir, script, method="leap_s", T=64, max_tokens=600)
    assert trace.method == "leap_s" and len(trace.paths) == 1
    (lead,) = trace.paths
    assert [r.path for r in trace.routing] == [0] and sorted(trace.routing[0].peers) == [1, 2]
    peer_text = "".join(s.text for s in lead.segments if s.kind == "peer")
    assert "path 1 thinks" in peer_text and "path 2 thinks" in peer_text
    assert "path 0 thinks" not in peer_text  # never its own summary
    assert (lead.final_answer, lead.correct, lead.finish) == ("42", True, "think_end")
    # rounds: 3 drafts, 3 summaries, then the lead alone (reasoning, then its answer)
    assert [len(call) for call in backend.calls] == [3, 3, 1, 1]
    # the lead's counts cover all the drafts' work: 3 chunks of T, 3 summaries, its ending
    encode = backend.tokenizer.encode
    summaries = sum(
        len(encode(f"path {p} thinks the answer is 42</summarize>", add_special_tokens=False))
        for p in range(3)
    )
    ending = sum(
        len(encode(text, add_special_tokens=False))
        for text in ("So the product is 42.</think>", " The answer is \\boxed{42}.")
    )
    assert lead.summary_tokens == summaries
    assert lead.generated_tokens == 3 * 64 + summaries + ending


def test_leap_s_lead_finishing_early_skips_the_exchange(tmp_path, tiny_model_dir):
    def script(path, turn, phase):
        return ("\\boxed{41}", EOS) if path == 0 else RAMBLE

    trace, backend = run(tmp_path, tiny_model_dir, script, method="leap_s", T=64, max_tokens=200)
    assert trace.routing == [] and len(backend.calls) == 1
    assert (trace.paths[0].final_answer, trace.paths[0].correct) == ("41", False)


def test_moa_final_layer_reads_previous_conclusions(tmp_path, tiny_model_dir):
    def script(path, turn, phase):
        if path == 0:  # closes its reasoning, then ends with an empty answer
            return "Six sevens: \\boxed{42}</think>" if turn == 1 else ("", EOS)
        return ("\\boxed{40}" if path == 1 else "no idea", EOS)

    trace, backend = run(
        tmp_path,
        tiny_model_dir,
        script,
        seed_ids=("p1#moa1", "p1#moa2"),
        method="moa",
        n=3,
        moa_layers=2,
        T=64,
        max_tokens=64,
    )
    assert (trace.id, trace.problem, trace.method) == ("p1", PROBLEM.problem, "moa")
    # two rounds per layer: everyone, then path 0's answer after its think-end tag
    assert len(trace.paths) == 3 and [len(c) for c in backend.calls] == [3, 1, 3, 1]
    for path in trace.paths:
        kinds = [s.kind for s in path.segments]
        assert kinds[:3] == ["prompt", "peer", "prompt"]
        peer = path.segments[1].text
        assert '"42"' in peer and '"40"' in peer and "(no final answer)" in peer
        assert "What is 6 * 7?" in path.segments[0].text
    assert [p.final_answer for p in trace.paths] == ["42", "40", None]
    own = [
        len(AutoTokenizer.from_pretrained(tiny_model_dir).encode(t, add_special_tokens=False))
        for t in ("Six sevens: \\boxed{42}</think>", "\\boxed{40}", "no idea")
    ]
    # per-problem total = both layers (the first layer's tokens shared among the final agents)
    assert sum(p.generated_tokens for p in trace.paths) == 2 * sum(own)


def test_moa_needs_no_spare_peer_but_leap_s_does():
    LeapArguments(method="moa", n=1, top_k=2)
    with pytest.raises(ConfigError, match="top_k"):
        LeapArguments(method="leap_s", n=2, top_k=2)
    with pytest.raises(ConfigError, match="moa_layers"):
        LeapArguments(method="moa", moa_layers=0)
