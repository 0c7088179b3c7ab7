"""Fidelity of the peer loop to LeaP (docs/fidelity.md), on the tiny real model and a scripted one.

Bugs that live in a real backend's output are driven through ``leapt infer``
on the hf backend; cases only a scripted model can force (a summary that
writes the think-end tag, an empty round) use :mod:`tests.scripted_model`.
"""

from __future__ import annotations

import json

import pytest
from transformers import AutoTokenizer

from inference.args import LeapArguments, ModelArguments
from inference.engine import NoProgressError
from inference.problems import Problem
from inference.protocol import load_protocol
from inference.trace import read_traces
from leapt.cli import main
from tests.scripted_model import EOS, ONE_PROBLEM, RAMBLE, run_one

PROTO = load_protocol()


def protocol_file(tmp_path, **keys) -> str:
    path = tmp_path / "protocol.yaml"
    path.write_text("".join(f"{k}: {json.dumps(v)}\n" for k, v in keys.items()))
    return str(path)


# -- bug 2: a summary ends at the think-end tag or EOS, and the path keeps reasoning ------------


def test_summary_stops_at_think_end_which_reaches_neither_peers_nor_path(tmp_path, tiny_model_dir):
    def script(path, turn, phase):
        if phase == "summary":
            return f"path {path} has 4 </think> so the answer is \\boxed{{4}}"
        return "4}" if phase == "forced" else RAMBLE

    trace, backend = run_one(tmp_path, tiny_model_dir, script, max_tokens=80)
    summary_calls = [c for c in backend.calls if any(PROTO.summary_close in r.stop for r in c)]
    assert summary_calls and all(
        PROTO.think_end in r.stop for call in summary_calls for r in call
    ), "the summary request must also stop at the think-end tag"
    for path in trace.paths:
        assert PROTO.think_end not in path.text(), "the tag is cut from the path"
        assert "has 4" in path.text(["peer"]) and "boxed" not in path.text(["peer"])
        # the engine closed the summary and the path went on reasoning: blocks in later turns
        assert path.text(["prompt"]).count(PROTO.summary_close) >= 2
        assert path.finish == "forced"
    assert {r.turn for r in trace.routing} >= {1, 2}


def test_summary_ended_by_eos_is_closed_and_the_path_goes_on(tmp_path, tiny_model_dir):
    def script(path, turn, phase):
        if phase == "summary":
            return (f"path {path} found 4", EOS)
        return "4}" if phase == "forced" else RAMBLE

    trace, _ = run_one(tmp_path, tiny_model_dir, script, max_tokens=80)
    for path in trace.paths:
        assert path.finish == "forced"
        assert f'found 4" </{PROTO.comment_tag}>' in path.text(["peer"])
    assert {r.turn for r in trace.routing} >= {1, 2}


# -- bug 4: the no-peers block has its own wording and cue ---------------------------------------


def test_no_peers_block_has_its_own_wording_and_cue(tmp_path, tiny_model_dir):
    def script(path, turn, phase):
        if phase == "forced":
            return "4}"
        if path > 0:
            return ("It is \\boxed{4}.", EOS)
        return "so far so good</summarize>" if phase == "summary" else RAMBLE

    trace, _ = run_one(tmp_path, tiny_model_dir, script, T=32)
    alone = trace.paths[0]
    assert PROTO.no_peers_text in alone.text(["peer"])
    assert PROTO.no_peers_cue in alone.text(["prompt"])
    assert PROTO.reflection_cue not in alone.text(["prompt"])
    assert PROTO.no_peers_cue != PROTO.reflection_cue


# -- items 7 and 8: varied triggers and openings, trim to the last paragraph ---------------------


def _blocks(path) -> list[str]:
    """The engine text that opened each LeaP block of a path (trigger + tag + opening)."""
    return [s.text for s in path.segments if s.kind == "prompt" and PROTO.summary_open in s.text]


def test_triggers_and_openings_vary_and_replay_with_the_seed(tmp_path, tiny_model_dir):
    def script(path, turn, phase):
        if phase == "summary":
            return f" path {path} says 4</summarize>"
        return "4}" if phase == "forced" else RAMBLE

    first, _ = run_one(tmp_path / "a", tiny_model_dir, script, max_tokens=200)
    again, _ = run_one(tmp_path / "b", tiny_model_dir, script, max_tokens=200)
    assert [p.segments for p in first.paths] == [p.segments for p in again.paths]
    blocks = [b for p in first.paths for b in _blocks(p)]
    assert len(blocks) >= 6
    triggers = {t for b in blocks for t in PROTO.summary_triggers if t in b}
    openings = {o for b in blocks for o in PROTO.summary_openings if b.endswith(o)}
    assert len(triggers) > 1 and len(openings) > 1
    # the peers read the opening as part of the summary
    quoted = first.paths[0].text(["peer"])
    assert any(f'"{o.strip()} path' in quoted for o in PROTO.summary_openings)


def test_trim_to_paragraph_cuts_the_unfinished_paragraph(tmp_path, tiny_model_dir):
    def script(path, turn, phase):
        if phase == "summary":
            return "done</summarize>"
        if phase == "forced":
            return "4}"
        return "Step one gives 4.\n\nStep two is half wri"

    proto = protocol_file(tmp_path, trim_to_paragraph=True)
    trace, _ = run_one(tmp_path / "run", tiny_model_dir, script, protocol=proto, T=32)
    assert trace.config["protocol_switches"]["trim_to_paragraph"] is True
    for path in trace.paths:
        model = path.text(["model"])
        assert "Step one gives 4." in model and "half wri" not in model
        segs = path.segments
        opened = [
            i
            for i, seg in enumerate(segs)
            if seg.kind == "prompt" and any(seg.text.startswith(t) for t in PROTO.summary_triggers)
        ]
        assert opened and all(segs[i - 1].text.endswith("Step one gives 4.") for i in opened)
        # the cut tokens were generated, so they still count against the budget
        assert path.generated_tokens > len(
            AutoTokenizer.from_pretrained(tiny_model_dir).encode(model)
        )


# -- bug 1 (engine side): a full context ends paths, and no round may stall ------------------------


def test_full_context_ends_every_path_with_finish_context_and_an_answer(tmp_path, tiny_model_dir):
    def script(path, turn, phase):
        if phase == "summary":
            return "so far 4</summarize>"
        return "4}" if phase == "forced" else RAMBLE

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    prompt = PROTO.build_prompt(tok, ONE_PROBLEM.problem, None, "math", announce=True)
    prefill = PROTO.assistant_prefill(True)
    limit = len(tok.encode(prompt + prefill)) + 600
    trace, backend = run_one(
        tmp_path, tiny_model_dir, script, max_model_len=limit, max_tokens=2000, summary_max_tokens=8
    )
    assert trace.routing, "blocks run while they fit"
    assert [p.finish for p in trace.paths] == ["context"] * 3
    for path in trace.paths:
        assert PROTO.forced_answer("math", close_thinking=False) in path.text(["prompt"])
        assert path.final_answer == "4"
    assert all(len(r.token_ids) + r.max_tokens <= limit for call in backend.calls for r in call)


def test_a_prompt_longer_than_the_context_ends_its_paths_at_once(tmp_path, tiny_model_dir):
    trace, backend = run_one(tmp_path, tiny_model_dir, lambda *_: RAMBLE, max_model_len=50)
    assert [p.finish for p in trace.paths] == ["context"] * 3
    assert backend.calls == [], "nothing fits, so nothing is requested"


def test_a_round_that_generates_nothing_is_an_error_not_a_loop(tmp_path, tiny_model_dir):
    with pytest.raises(NoProgressError, match="p1"):
        run_one(tmp_path, tiny_model_dir, lambda path, turn, phase: "")


# -- on the real hf backend: thinking (bug 5), announcing (item 6), grading (item 10) -------------


def infer(tmp_path, tiny_model_dir, name, *extra):
    out = tmp_path / name
    problems = tmp_path / "problems.jsonl"
    problems.write_text(
        "".join(json.dumps({"problem": q, "answer": a}) + "\n" for q, a in [("1 + 1?", "2")])
    )
    argv = [
        "infer", "--model", str(tiny_model_dir), "--output_dir", str(out),
        "--source", str(problems), "--n", "2", "--top_k", "1", "--T", "12",
        "--max_tokens", "30", "--summary_max_tokens", "6", "--forced_answer_tokens", "3",
        *extra,
    ]  # fmt: skip
    assert main(argv) == 0
    (trace,) = read_traces(out / "traces.jsonl")
    return trace


def test_forced_answer_closes_thinking_only_for_a_thinking_model(tmp_path, tiny_model_dir):
    plain = infer(tmp_path, tiny_model_dir, "plain")
    assert plain.config["protocol_switches"]["thinking"] is False  # no think tag in its vocabulary
    thinking = infer(
        tmp_path, tiny_model_dir, "thinking", "--protocol", protocol_file(tmp_path, thinking="true")
    )
    assert thinking.config["protocol_switches"]["thinking"] is True
    assert any(p.finish == "forced" for p in plain.paths)
    for path in plain.paths:
        if path.finish == "forced":
            assert PROTO.think_end not in path.text(["prompt"])
            assert PROTO.forced_answer("math", close_thinking=False) in path.text(["prompt"])
    assert any(p.finish == "forced" for p in thinking.paths)
    for path in thinking.paths:
        if path.finish == "forced":
            assert PROTO.forced_answer("math", close_thinking=True) in path.text(["prompt"])


def test_leap_announces_both_tags_and_leap_t_only_when_asked(tmp_path, tiny_model_dir):
    tags = (PROTO.summary_open, PROTO.summary_close, f"<{PROTO.comment_tag}>")
    leap = infer(tmp_path, tiny_model_dir, "leap")
    first = leap.paths[0].segments[0]
    assert first.kind == "prompt" and all(t in first.text for t in tags)
    assert leap.paths[0].segments[1].text == PROTO.assistant_prefill(True)
    assert leap.config["protocol_switches"]["announce"] is True

    leap_t = infer(tmp_path, tiny_model_dir, "leap_t", "--method", "leap_t")
    assert not any(t in leap_t.paths[0].segments[0].text for t in tags)
    assert leap_t.config["protocol_switches"]["announce"] is False

    asked = infer(tmp_path, tiny_model_dir, "asked", "--method", "leap_t", "--announce", "true")
    assert all(t in asked.paths[0].segments[0].text for t in tags)


def test_infer_grades_paths_and_prints_pass1_and_cons(tmp_path, tiny_model_dir, capsys):
    trace = infer(tmp_path, tiny_model_dir, "graded")
    assert all(p.correct is not None for p in trace.paths)
    out = capsys.readouterr().out
    assert "Pass@1 " in out and "Cons@2 " in out
    summary = json.loads((tmp_path / "graded" / "summary.json").read_text())
    assert summary["per_problem"][0]["correct"] == [p.correct for p in trace.paths]


def test_context_check_warns_or_refuses_before_the_model_loads(tmp_path, tiny_model_dir, capsys):
    small = ["--max_model_len", "200", "--max_tokens", "4000", "--T", "500"]
    problems = tmp_path / "p.jsonl"
    problems.write_text(json.dumps({"problem": "1 + 1?", "answer": "2"}) + "\n")
    base = ["infer", "--model", str(tiny_model_dir), "--source", str(problems)]
    rc = main([*base, "--output_dir", str(tmp_path / "strict"), *small, "--strict", "true"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "max_model_len 200" in err and "LeaP overhead" in err
    assert not (tmp_path / "strict" / "traces.jsonl").exists()


def test_hf_run_with_a_small_context_finishes_every_path(tmp_path, tiny_model_dir, caplog):
    trace = infer(
        tmp_path, tiny_model_dir, "small", "--max_model_len", "1000", "--max_tokens", "4000",
        "--T", "40", "--summary_max_tokens", "20",
    )  # fmt: skip
    assert "may not hold" in caplog.text
    assert {p.finish for p in trace.paths} <= {"context", "forced", "eos", "think_end"}
    assert any(p.finish == "context" for p in trace.paths)
    assert all(p.generated_tokens < 4000 for p in trace.paths)


def test_context_check_reads_a_hub_model_limit_from_the_local_cache(tmp_path, monkeypatch):
    """A Hub id (the paper configs' case) is checked from the cached config.json, offline."""
    from huggingface_hub import constants

    from inference.context import check_context_fits
    from leapt.config import ConfigError

    snapshot = tmp_path / "hub" / "models--org--qwq" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text(json.dumps({"max_position_embeddings": 40960}))
    (tmp_path / "hub" / "models--org--qwq" / "refs").mkdir()
    (tmp_path / "hub" / "models--org--qwq" / "refs" / "main").write_text("abc123")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    # QwQ-32B's paper setting: a 32,768 budget plus a LeaP block every 4,096 tokens, top-4
    leap = LeapArguments(n=8, top_k=4, T=4096, max_tokens=32768, summary_max_tokens=256)
    problems = [Problem("p", "Find x.", "1")]
    with pytest.raises(ConfigError, match="max_model_len 40960"):
        check_context_fits(ModelArguments(model="org/qwq", strict=True), leap, problems)
    short = LeapArguments(n=8, top_k=4, T=4096, max_tokens=16384, summary_max_tokens=256)
    assert check_context_fits(ModelArguments(model="org/qwq", strict=True), short, problems)


def test_context_need_counts_each_methods_leap_overhead():
    """LeaP blocks every T tokens for leap/leap_t, one for leap_s, none without peers; a later
    MoA layer's prompt quotes the n previous conclusions."""
    from inference.context import context_need

    problems = [Problem("p", "Find x.", "1")]

    def need(method: str, **keys):
        args = LeapArguments(method=method, n=4, top_k=2, T=100, max_tokens=1000, **keys)
        return context_need(args, problems, PROTO)

    assert [need(m).blocks for m in ("leap", "leap_t", "leap_s")] == [10, 10, 1]
    assert need("independent").blocks == need("moa").blocks == 0
    one, two = need("moa", moa_layers=1), need("moa", moa_layers=2, summary_max_tokens=50)
    assert two.prompt - one.prompt == 4 * (50 + 6)
    assert need("leap", moa_layers=2).prompt == need("leap").prompt
