"""Protocol behaviour of the engine, driven by a scripted model (see scripted_model.py)."""

from __future__ import annotations

import pytest
from transformers import AutoTokenizer

from inference.args import LeapArguments
from inference.protocol import load_protocol
from inference.trace import Segment
from leapt.config import ConfigError
from tests.scripted_model import EOS, RAMBLE, run_one

PROTO = load_protocol()
PROTO_FORCED_TOKENS = LeapArguments().forced_answer_tokens


def test_truncated_summary_is_closed_by_the_engine(tmp_path, tiny_model_dir):
    def script(path, turn, phase):
        return RAMBLE  # never closes its summary

    trace, _ = run_one(tmp_path, tiny_model_dir, script, summary_max_tokens=5)
    for path in trace.paths:
        kinds = [(s.kind, s.text) for s in path.segments]
        for i, (kind, text) in enumerate(kinds):
            if kind == "prompt" and text.endswith(PROTO.summary_open):
                assert kinds[i + 1][0] == "model"
                assert kinds[i + 2] == ("prompt", PROTO.summary_close)
                assert kinds[i + 3][0] == "peer"
        assert path.summary_tokens > 0
        # summaries count against the budget and never outrun it
        assert path.generated_tokens <= 40 + PROTO_FORCED_TOKENS


def test_closed_summary_is_kept_and_routed(tmp_path, tiny_model_dir):
    def script(path, turn, phase):
        return f"path {path} says 4 </summarize> trailing" if phase == "summary" else RAMBLE

    trace, _ = run_one(tmp_path, tiny_model_dir, script)
    peers_of = {(r.turn, r.path): r.peers for r in trace.routing}
    assert peers_of, "LeaP blocks must be recorded in the routing"
    for (_turn, path), peers in peers_of.items():
        assert len(peers) == 1 and path not in peers
        block = trace.paths[path].text(["peer"])
        # the peers read the engine-written opening as part of the summary
        assert f'path {peers[0]} says 4"' in block
        assert any(f'Peer 1: "{o.strip()}' in block for o in PROTO.summary_openings)
    assert all(PROTO.summary_close + PROTO.summary_close not in p.text() for p in trace.paths)


def test_forced_answer_only_for_budget_exhausted_paths(tmp_path, tiny_model_dir):
    def script(path, turn, phase):
        if phase == "forced":
            return "4}"
        if path == 0:
            # reasoning closes in turn 1; the answer after the tag comes in turn 2
            if turn == 1:
                return "Easy: 2 + 2 = 4. </think> never sent"
            return (" The answer is \\boxed{4}.", EOS)
        if path == 1:
            return ("I am sure it is \\boxed{4}.", EOS)
        return RAMBLE

    trace, _ = run_one(tmp_path, tiny_model_dir, script, T=32)
    suffix = PROTO.forced_answer("math", close_thinking=False)  # the tiny model does not think
    finishes = [p.finish for p in trace.paths]
    assert finishes == ["think_end", "eos", "forced"]
    assert suffix not in trace.paths[0].text() and suffix not in trace.paths[1].text()
    assert suffix in trace.paths[2].text(["prompt"])
    assert trace.paths[2].final_answer == "4"
    assert trace.paths[2].generated_tokens >= 40
    # the think-end tag does not end a path: the answer written after it is kept and graded
    assert trace.paths[0].completion().endswith("</think> The answer is \\boxed{4}.")
    assert trace.paths[0].final_answer == "4"
    # paths 0 and 1 ended in turn 1, so path 2 reads no peers and says so
    assert PROTO.no_peers_text in trace.paths[2].text(["peer"])
    assert all(r.peers == [] for r in trace.routing)


def test_answer_after_think_end_gets_no_leap_block_and_a_cut_answer_is_forced(
    tmp_path, tiny_model_dir
):
    def script(path, turn, phase):
        if phase == "summary":
            return "so far so good</summarize>"
        if phase == "forced":
            return "4}"
        if turn == 1:
            return "Short. </think>"
        return "The answer is coming " * 20  # never ends: the budget cuts the answer

    trace, backend = run_one(tmp_path, tiny_model_dir, script, T=32, max_tokens=96)
    # a budget that runs out in the answer phase gets the forced answer like any other
    assert [p.finish for p in trace.paths] == ["forced"] * len(trace.paths)
    assert not trace.routing, "a path writing its answer never gets a LeaP block"
    for p in trace.paths:
        # the forced answer does not close the thinking a second time
        assert p.text().count(PROTO.think_end) == 1
        assert PROTO.forced_answer("math", close_thinking=False) in p.text(["prompt"])
        assert p.final_answer == "4"
    # after the tag the engine asks for plain continuation, without stop strings
    assert all(r.stop == [] for r in backend.calls[1])


def test_leap_t_reacts_to_a_model_written_summarize(tmp_path, tiny_model_dir):
    def script(path, turn, phase):
        if phase == "summary":
            return "I have 4 so far.</summarize>"
        if phase == "forced":
            return "4}"
        return "Two plus two. <summarize> more text that must not appear"

    trace, backend = run_one(tmp_path, tiny_model_dir, script, method="leap_t", max_tokens=200)
    first = trace.paths[0].segments
    # the model's own <summarize> is followed directly by its summary: no engine text between
    assert first[1] == Segment("model", "Two plus two. <summarize>I have 4 so far.</summarize>")
    assert first[2].kind == "peer"
    # no trigger sentence: the model opened the summary itself
    assert not any(t in trace.paths[0].text(["prompt"]) for t in PROTO.summary_triggers)
    assert {r.turn for r in trace.routing} >= {1}
    # the summary request came right after the model's own <summarize>, in turn 1
    assert all(r.stop == [PROTO.summary_close, PROTO.think_end] for r in backend.calls[1])


def test_plain_leap_does_not_stop_at_summarize(tmp_path, tiny_model_dir):
    def script(path, turn, phase):
        return "Two plus two. <summarize> keeps going " * 3

    _, backend = run_one(tmp_path, tiny_model_dir, script, method="leap")
    assert backend.calls[0][0].stop == [PROTO.think_end]


def test_independent_has_no_peer_blocks(tmp_path, tiny_model_dir):
    def script(path, turn, phase):
        return "4}" if phase == "forced" else RAMBLE

    trace, _ = run_one(tmp_path, tiny_model_dir, script, method="independent")
    assert trace.routing == []
    assert all(s.kind != "peer" for p in trace.paths for s in p.segments)
    assert all(p.summary_tokens == 0 and p.finish == "forced" for p in trace.paths)


def test_protocol_file_overrides_tags_and_sentences(tmp_path):
    custom = tmp_path / "proto.yaml"
    custom.write_text("summarize_tag: recap\ncomment_tag: notes\nno_peers_text: alone\n")
    proto = load_protocol(custom)
    assert proto.summary_open in proto.summary_request() and proto.summary_close == "</recap>"
    assert proto.peer_block([]) == " <notes> alone </notes>"
    assert proto.peer_block(["a", "b"]) == ' <notes> Peer 1: "a"\nPeer 2: "b" </notes>'
    bad = tmp_path / "bad.yaml"
    bad.write_text("summarise_tag: x\n")
    with pytest.raises(ConfigError, match="summarise_tag"):
        load_protocol(bad)


def test_prompt_uses_chat_template_and_answer_format(tiny_model_dir):
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    math = PROTO.build_prompt(tok, "What is 2 + 2?", None, "math")
    assert math.startswith("<|im_start|>user\n") and math.endswith("<|im_start|>assistant\n")
    assert "\\boxed{}" in math
    choice = PROTO.build_prompt(tok, "Pick one.", ["x", "y", "z", "w"], "choice")
    assert "A) x\nB) y\nC) z\nD) w" in choice and '"ANSWER": "X"' in choice
    assert PROTO.forced_answer("choice").endswith('"ANSWER": "')
