"""A model-written ``<summarize>`` (LeaP-T): both modes, a tag split across chunks, the context.

Driven by the scripted model (see scripted_model.py) behind the real engine.
"""

from __future__ import annotations

import pytest
from transformers import AutoTokenizer

from inference.args import LeapArguments
from inference.backends.base import SamplingSettings
from inference.engine import EngineContext
from inference.protocol import load_protocol
from leapt.config import ConfigError
from tests.scripted_model import EOS, ONE_PROBLEM, RAMBLE, ScriptedBackend, run_one

PROTO = load_protocol()


def _early_tag(path, turn, phase):
    if phase == "summary":
        return "I have 4 so far.</summarize>"
    if phase == "forced":
        return "4}"
    if turn == 1:
        return "Two plus two.\n\nSo the sum is <summarize> text after the tag"
    return ("So it is \\boxed{4}.", EOS)


def _phases(backend: ScriptedBackend) -> list[list[tuple[int, int, str, int]]]:
    """Each call's requests as (path, turn, phase, max_tokens)."""
    return [[(*backend._where[r.seed], r.max_tokens) for r in call] for call in backend.calls]


def test_authors_mode_cuts_the_tag_and_opens_the_engines_block(tmp_path, tiny_model_dir):
    trace, backend = run_one(
        tmp_path,
        tiny_model_dir,
        _early_tag,
        method="leap_t",
        self_summary_mode="authors",
        T=64,
        max_tokens=400,
    )
    for path in trace.paths:
        segs = path.segments
        # the unfinished paragraph and the model's own tag are gone from the path
        assert segs[1].kind == "model" and segs[1].text == "Two plus two."
        assert PROTO.summary_open not in path.text(["model"])
        # the engine wrote its trigger, the tag and an opening, as after a full chunk
        assert segs[2].kind == "prompt"
        assert any(segs[2].text.startswith(t) for t in PROTO.summary_triggers)
        assert any(segs[2].text.endswith(PROTO.summary_open + o) for o in PROTO.summary_openings)
        assert segs[3] == type(segs[3])("model", "I have 4 so far.</summarize>")
        assert path.final_answer == "4" and path.finish == "eos"
        # the cut tokens were generated: they count against the budget
        tok = AutoTokenizer.from_pretrained(tiny_model_dir)
        assert path.generated_tokens > len(tok.encode(path.text(["model"])))
    # the early stop is turn 1 (its block is turn 1's); turn 2 reasons a whole T again
    assert {r.turn for r in trace.routing} == {1}
    calls = _phases(backend)
    assert [c[0][1:3] for c in calls] == [(1, "reason"), (1, "summary"), (2, "reason")]
    assert all(max_tokens == 64 for *_, max_tokens in calls[2])


def test_keep_mode_is_the_default_and_keeps_the_models_tag(tmp_path, tiny_model_dir):
    trace, _ = run_one(tmp_path, tiny_model_dir, _early_tag, method="leap_t", T=64, max_tokens=400)
    segs = trace.paths[0].segments
    assert segs[1].text == "Two plus two.\n\nSo the sum is <summarize>I have 4 so far.</summarize>"
    assert not any(t in trace.paths[0].text(["prompt"]) for t in PROTO.summary_triggers)


def test_an_unknown_self_summary_mode_is_refused():
    with pytest.raises(ConfigError, match="self_summary_mode"):
        LeapArguments(method="leap_t", self_summary_mode="model")


def _context(tiny_model_dir, script, **leap) -> tuple[EngineContext, ScriptedBackend]:
    args = LeapArguments(**{"n": 3, "top_k": 1, "T": 64, "max_tokens": 400, **leap})
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    backend = ScriptedBackend(tok, script, args.seed, [ONE_PROBLEM.id], args.n)
    return EngineContext(backend, PROTO, args), backend


@pytest.mark.parametrize("mode", ["keep", "authors"])
def test_a_tag_split_across_two_chunks_is_seen(tiny_model_dir, mode):
    """``<summ`` ends one chunk, ``arize>`` starts the next: the tag stops the second chunk."""

    def script(path, turn, phase):
        return "Two plus two.\n\nIt is <summ" if turn == 1 else "arize> I have 4 so far, and on"

    ctx, backend = _context(tiny_model_dir, script, method="leap_t", self_summary_mode=mode)
    (path, *_) = ctx.new_paths(ONE_PROBLEM)
    stop = ctx.reasoning_stops(model_summarizes=True)
    generated = 0
    for turn in (1, 2):
        request = ctx.reasoning_request(ONE_PROBLEM, path, stop, turn)
        (result,) = backend.generate([request], SamplingSettings())
        generated += len(result.token_ids)
        kept = ctx.record_reasoning(path, result, stop)
    assert kept.stop_reason == "stop" and kept.stop_string == PROTO.summary_open
    model = path.record.segments[-1].text
    assert model == "Two plus two.\n\nIt is <summarize>"
    # the tokens generated past the tag are cut but still count against the budget
    assert path.record.generated_tokens == generated
    assert ctx.self_opened(ONE_PROBLEM, path, 2)
    text = ctx.tokenizer.decode(path.token_ids)
    if mode == "keep":
        assert text.endswith("It is <summarize>")
    else:
        assert "<summ" not in text.split("Two plus two.")[-1].split(PROTO.summary_open)[0]
        assert text.endswith(PROTO.summary_open + path.opening)


def test_a_think_end_split_across_chunks_starts_the_answer(tmp_path, tiny_model_dir):
    """Independent paths continue chunk after chunk: ``</th`` | ``ink>`` still ends the thinking."""

    def script(path, turn, phase):
        if turn == 1:
            return "Two plus two is 4 </th"
        if turn == 2:
            return "ink> reasoning that must be cut"
        return (" The answer is \\boxed{4}.", EOS)

    trace, backend = run_one(
        tmp_path, tiny_model_dir, script, method="independent", T=64, max_tokens=400
    )
    for path in trace.paths:
        assert path.finish == "think_end"
        assert path.completion().endswith("</think> The answer is \\boxed{4}.")
        assert "must be cut" not in path.text()
    # after the tag the answer is asked for without stop strings
    assert all(r.stop == [] for r in backend.calls[2])


@pytest.mark.parametrize("room", [450, 600, 750])
@pytest.mark.parametrize("mode", ["keep", "authors"])
def test_self_opened_blocks_near_the_context_limit_leave_room_for_the_answer(
    tmp_path, tiny_model_dir, room, mode
):
    """A model that opens a block in every chunk: blocks stop when they no longer fit."""

    def script(path, turn, phase):
        if phase == "summary":
            return RAMBLE  # fills its cap
        return "4}" if phase == "forced" else "Two plus two is four. <summarize>"

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    prompt = PROTO.build_prompt(tok, ONE_PROBLEM.problem, None, "math", announce=False)
    limit = len(tok.encode(prompt)) + room
    trace, backend = run_one(
        tmp_path,
        tiny_model_dir,
        script,
        max_model_len=limit,
        method="leap_t",
        self_summary_mode=mode,
        T=64,
        max_tokens=2000,
        summary_max_tokens=24,
        forced_answer_tokens=16,  # the room each case leaves is sized for this reserve
    )
    assert trace.routing, "blocks run while they fit"
    for path in trace.paths:
        assert path.finish == "context"
        assert PROTO.forced_answer("math", close_thinking=False) in path.text(["prompt"])
        assert path.final_answer == "4"
    assert all(len(r.token_ids) + r.max_tokens <= limit for call in backend.calls for r in call)


def test_context_check_says_a_leap_t_model_may_open_more_blocks(tmp_path, caplog):
    from inference.args import ModelArguments
    from inference.context import check_context_fits, context_need
    from inference.problems import Problem

    problems = [Problem("p", "Find x.", "1")]
    keys = {"n": 4, "top_k": 2, "T": 100, "max_tokens": 1000, "announce": "false"}
    need = context_need(LeapArguments(method="leap_t", **keys), problems, PROTO)
    assert need.blocks == 10 and need.more_blocks
    limit = need.total + need.per_block // 2  # the 10 blocks fit, an 11th would not
    (tmp_path / "config.json").write_text('{"model_type": "qwen2"}')  # a checkpoint's folder
    model = ModelArguments(model=str(tmp_path), max_model_len=limit, strict=True)
    for method in ("leap", "leap_t"):
        caplog.clear()
        assert check_context_fits(model, LeapArguments(method=method, **keys), problems)
        assert ("may write more" in caplog.text) == (method == "leap_t"), method


def test_context_need_counts_the_opening_tag_of_every_block(tmp_path):
    from inference.context import context_need
    from inference.problems import Problem

    problems = [Problem("p", "Find x.", "1")]
    longer = tmp_path / "proto.yaml"
    longer.write_text("summarize_tag: " + "s" * 60 + "\n")
    args = LeapArguments(method="leap", n=4, top_k=2, T=100, max_tokens=1000)
    short = context_need(args, problems, PROTO).per_block
    long = context_need(args, problems, load_protocol(longer)).per_block
    # both tags grow by 51 characters: 102 characters, 34 tokens at 3 characters a token
    assert long - short >= 33
