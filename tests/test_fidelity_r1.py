"""The peer loop in the exact format of the paper's models (DeepSeek-R1-Distill-Qwen tokenizer).

The tokenizer comes from ``tests/r1_distill.py`` (offline, from the GGUF header
package); ``</think>`` is one special token there and the chat template ends
the prompt with ``<｜Assistant｜>``, which the toy tokenizer cannot show.
"""

from __future__ import annotations

from transformers import AutoTokenizer

from inference.protocol import load_protocol
from tests.r1_distill import r1_tiny_model_dir, r1_tokenizer_dir  # noqa: F401 (fixtures)
from tests.scripted_model import run_one
from tests.test_fidelity import infer

PROTO = load_protocol()


def test_r1_tokenizer_is_detected_as_thinking(r1_tokenizer_dir):  # noqa: F811
    tok = AutoTokenizer.from_pretrained(r1_tokenizer_dir)
    assert PROTO.model_thinks(tok)
    assert len(tok.encode(PROTO.think_end, add_special_tokens=False)) == 1


def test_r1_leap_prompt_announces_and_forced_answers_close_thinking(
    tmp_path,
    r1_tiny_model_dir,  # noqa: F811
):
    trace = infer(tmp_path, r1_tiny_model_dir, "r1")
    assert trace.config["protocol_switches"] == {
        **trace.config["protocol_switches"],
        "announce": True,
        "thinking": True,
    }
    first, prefill = trace.paths[0].segments[:2]
    assert "<｜Assistant｜>" in first.text[-40:]
    assert PROTO.summary_open in first.text and f"<{PROTO.comment_tag}>" in first.text
    assert prefill.text == PROTO.assistant_prefill(True)
    forced = [p for p in trace.paths if p.finish == "forced"]
    assert forced, "a 30-token budget forces the answers of the random model"
    for path in forced:
        assert PROTO.forced_answer("math", close_thinking=True) in path.text(["prompt"])
        assert path.text().count(PROTO.think_end) == 1


def test_r1_summary_stops_at_the_think_end_token(tmp_path, r1_tiny_model_dir):  # noqa: F811
    def script(path, turn, phase):
        if phase == "summary":
            return f" path {path} has 4 </think> so it is \\boxed{{4}}"
        return "4}" if phase == "forced" else "Let me add the numbers step by step. " * 10

    trace, _ = run_one(tmp_path, r1_tiny_model_dir, script, max_tokens=80)
    for path in trace.paths:
        # the model's tag was cut; the only one is the forced answer's
        assert PROTO.think_end not in path.text(["model", "peer"])
        assert path.completion().count(PROTO.think_end) == 1
        assert "has 4" in path.text(["peer"]) and "boxed" not in path.text(["peer"])
        # the path kept reasoning: its answer was forced, and the suffix closed the thinking
        assert path.finish == "forced"
        assert PROTO.forced_answer("math", close_thinking=True) in path.text(["prompt"])
