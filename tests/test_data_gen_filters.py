"""Each harvest filter keeps the paths that show the protocol done well and drops the rest."""

from __future__ import annotations

import dataclasses

import pytest

from data_gen.filters import (
    IMITATION_REASONS,
    FilterSettings,
    ImitationCheck,
    filter_traces,
)
from inference.protocol import load_protocol
from inference.summaries import Tags, find_summaries
from inference.trace import PathRecord, RoutingRecord, Segment, Trace

PROTO = load_protocol()

PROMPT = "<|im_start|>user\nWhat is 6*7?<|im_end|>\n<|im_start|>assistant\n"
TRIGGER = " Let me sum up my progress so far. <summarize>"


def words(n: int) -> str:
    return " ".join(["step"] * n)


def good_path(answer: str = "42", summary: str = " I found 6*7 = 42. </summarize>") -> PathRecord:
    """A path that passes every rule: summary closed by the model, read a peer, ended itself."""
    return PathRecord(
        segments=[
            Segment("prompt", PROMPT),
            Segment("model", "<think> 6*7 is 42."),
            Segment("prompt", TRIGGER),
            Segment("model", summary),
            Segment("peer", ' <comment> Peer 1: "I got 42." </comment>'),
            Segment("prompt", " Let me weigh what my peers said."),
            Segment("model", f" Agreed. </think> \\boxed{{{answer}}}"),
        ],
        final_answer=answer,
        correct=answer == "42",
        generated_tokens=30,
        finish="think_end",
    )


def trace_of(*paths: PathRecord, routing: list[RoutingRecord] | None = None) -> Trace:
    if routing is None:
        routing = [
            RoutingRecord(turn=1, path=i, peers=[(i + 1) % len(paths)]) for i in range(len(paths))
        ]
    return Trace(id="p1", problem="What is 6*7?", answer="42", paths=list(paths), routing=routing)


def count_words(text: str) -> int:
    return len(text.split())


def run(trace: Trace, **settings) -> tuple[list[int], dict]:
    result = filter_traces([trace], FilterSettings(**settings), count_words)
    return [i for _, i in result.kept], result.stats()


def test_good_paths_are_kept_and_counted():
    kept, stats = run(trace_of(good_path(), good_path(summary=" Other words. </summarize>")))
    assert kept == [0, 1]
    assert stats["kept"] == 2 and stats["paths"] == 2 and sum(stats["dropped"].values()) == 0


def test_wrong_answer_is_dropped_unless_switched_off():
    trace = trace_of(good_path(), good_path(answer="41"))
    kept, stats = run(trace)
    assert kept == [0]
    assert stats["dropped"]["correct"] == 1
    assert run(trace, correct=False)[0] == [0, 1]


def test_ungraded_path_is_not_counted_as_correct():
    path = good_path()
    path.correct = None
    assert run(trace_of(path))[0] == []


@pytest.mark.parametrize("finish", ["budget", "forced", None])
def test_cut_or_forced_ending_is_dropped(finish):
    path = good_path(summary=" cut short later </summarize>")
    path.finish = finish
    kept, stats = run(trace_of(good_path(), path))
    assert kept == [0]
    assert stats["dropped"]["natural_end"] == 1
    assert run(trace_of(good_path(), path), natural_end=False)[0] == [0, 1]


def test_eos_ending_is_natural():
    path = good_path()
    path.finish = "eos"
    assert run(trace_of(path))[0] == [0]


def test_summary_closed_by_engine_is_dropped():
    path = good_path(summary=" I was cut off mid")
    path.segments.insert(4, Segment("prompt", " </summarize>"))
    assert [s.closed for s in find_summaries(path, Tags())] == [False]
    kept, stats = run(trace_of(good_path(), path))
    assert kept == [0]
    assert stats["dropped"]["summaries"] == 1


def test_summary_over_the_token_cap_is_dropped():
    long = good_path(summary=f" {words(20)} </summarize>")
    assert run(trace_of(good_path(), long), summary_max_tokens=10)[0] == [0]
    assert run(trace_of(good_path(), long), summary_max_tokens=20)[0] == [0, 1]


def test_summary_split_over_model_segments_and_self_opened_summary():
    path = good_path(summary=" part one")
    path.segments.insert(4, Segment("model", " part two </summarize> more"))
    path.segments.insert(5, Segment("model", " then <summarize> self written </summarize>"))
    summaries = find_summaries(path, Tags())
    assert [(s.text, s.closed) for s in summaries] == [
        (" part one part two ", True),
        (" self written ", True),
    ]


def test_custom_tag_names():
    path = good_path(summary=" done </sum>")
    path.segments[2] = Segment("prompt", " Summary: <sum>")
    tags = Tags("<sum>", "</sum>")
    assert [s.closed for s in find_summaries(path, tags)] == [True]
    assert [s.closed for s in find_summaries(path, Tags())] == []


def test_path_without_peer_exchange_is_dropped():
    lonely = good_path()
    lonely.segments[4] = Segment("prompt", " No peer comments this round.")
    routing = [RoutingRecord(1, 0, [1]), RoutingRecord(1, 1, [])]
    kept, stats = run(trace_of(good_path(), lonely, routing=routing))
    assert kept == [0]
    assert stats["dropped"]["peer_exchange"] == 1
    assert run(trace_of(good_path(), lonely, routing=routing), peer_exchange=False)[0] == [
        0,
        1,
    ]


def test_exact_duplicates_within_a_problem_are_dropped():
    kept, stats = run(trace_of(good_path(), good_path(), good_path(summary=" x </summarize>")))
    assert kept == [0, 2]
    assert stats["dropped"]["duplicates"] == 1
    assert run(trace_of(good_path(), good_path()), duplicates=False)[0] == [0, 1]


def test_per_problem_cap_keeps_the_lowest_path_indices():
    paths = [good_path(summary=f" s{i} </summarize>") for i in range(4)]
    paths[0].correct = False
    kept, stats = run(trace_of(*paths), max_paths_per_problem=2)
    assert kept == [1, 2]
    assert stats["dropped"] == {**stats["dropped"], "correct": 1, "max_paths_per_problem": 1}


def test_drop_counts_use_the_first_failed_rule_and_add_up():
    bad = good_path(answer="41")
    bad.finish = "budget"
    result = filter_traces([trace_of(good_path(), bad)], FilterSettings(), count_words)
    stats = result.stats()
    assert stats["dropped"]["natural_end"] == 1 and stats["dropped"]["correct"] == 0
    assert stats["rule_failures"]["correct"] == 1
    assert stats["kept"] + sum(stats["dropped"].values()) == stats["paths"]


def test_summary_rule_needs_a_token_counter():
    with pytest.raises(ValueError, match="tokenizer"):
        filter_traces([trace_of(good_path())], FilterSettings())


def test_switched_off_rules_are_reported_but_do_not_drop():
    wrong = good_path(answer="41")
    wrong.finish = "budget"
    kept, stats = run(trace_of(good_path(), wrong), correct=False, natural_end=False)
    assert kept == [0, 1]
    assert stats["rule_failures"]["correct"] == 1 and stats["rule_failures"]["natural_end"] == 1
    assert sum(stats["dropped"].values()) == 0


def test_summary_opened_by_the_engine_with_prefilled_words():
    """The engine may prefill the summary's first words after the tag, in its own segment."""
    path = good_path(summary=" 6*7 = 42. </summarize>")
    path.segments[2] = Segment("prompt", TRIGGER + " So far I have")
    (summary,) = find_summaries(path, Tags())
    assert (summary.opening, summary.written, summary.closed) == (
        " So far I have",
        " 6*7 = 42. ",
        True,
    )
    assert summary.text == " So far I have 6*7 = 42. "
    # the cap bounds the model's own words, as the engine's summary budget does
    assert run(trace_of(path), summary_max_tokens=3)[0] == [0]


def protocol_copy(text: str) -> PathRecord:
    path = good_path()
    path.segments[1] = Segment("model", f"<think> 6*7 is 42.{text}")
    return path


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (' <comment> Peer 1: "I got 42." </comment>', "comment_tag"),
        (' Peer 2: "maybe 40"', "peer_label"),
        (f" {PROTO.summary_triggers[-1].upper()}", "trigger"),
        (" let me compare these notes with my own reasoning, fix any", "cue"),
        (f"\n{PROTO.no_peers_text}", "no_peers"),
    ],
)
def test_paths_imitating_the_protocol_are_dropped_by_reason(text, reason):
    kept, stats = run(trace_of(good_path(), protocol_copy(text)))
    assert kept == [0]
    assert stats["dropped"]["imitation"] == 1
    assert stats["imitation"] == {**dict.fromkeys(IMITATION_REASONS, 0), reason: 1}
    both = run(trace_of(good_path(), protocol_copy(text)), imitation=False)
    assert both[0] == [0, 1] and both[1]["rule_failures"]["imitation"] == 1


def test_own_words_about_peers_and_self_opened_summaries_are_not_imitation():
    path = protocol_copy(
        " Peer 1's answer matches mine; let me compare. <summarize> 42 </summarize>"
    )
    assert run(trace_of(path))[0] == [0]


def test_imitation_uses_the_wording_of_the_runs_protocol():
    custom = dataclasses.replace(PROTO, comment_tag="notes", peer_label="Friend {i}")
    settings = {"imitation_check": ImitationCheck.from_protocol(custom)}
    assert run(trace_of(protocol_copy(" Friend 3: 41")), **settings)[0] == []
    assert run(trace_of(protocol_copy(" <notes> x")), **settings)[0] == []
    assert run(trace_of(protocol_copy(" <comment> x")), **settings)[0] == [0]
