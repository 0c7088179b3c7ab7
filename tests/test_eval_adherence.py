"""Protocol adherence from traces, and `leapt eval --seeds` reported as mean ± std over seeds."""

from __future__ import annotations

import json

import pytest

from eval.adherence import adherence_metrics
from inference.protocol import load_protocol
from inference.trace import PathRecord, RoutingRecord, Segment, Trace, TraceFile
from leapt.cli import main as leapt

PROTO = load_protocol()
PROMPT = "What is 6 times 7? Put the answer in \\boxed{}."


def leap_path(summary: str, reflection: str, peer: str, closed: bool = True) -> PathRecord:
    """Reasoning, an engine-opened summary, a peer block with ``peer``, the cue, a reflection."""
    segments = [
        Segment("prompt", PROMPT),
        Segment("model", "Six sevens: 6 + 6 + 6 + 6 + 6 + 6 + 6."),
        Segment("prompt", PROTO.summary_request()),
        Segment("model", summary + (PROTO.summary_close if closed else "")),
    ]
    if not closed:
        segments.append(Segment("prompt", PROTO.summary_close))
    segments += [
        Segment("peer", PROTO.peer_block([peer])),
        Segment("prompt", PROTO.reflection_cue),
        Segment("model", reflection),
    ]
    return PathRecord(segments=segments, final_answer="42", correct=True, finish="eos")


def trace(pid: str, *paths: PathRecord, method: str = "leap") -> Trace:
    routing = [RoutingRecord(1, i, [1 - i]) for i in range(len(paths))]
    return Trace(pid, PROMPT, "42", method=method, paths=list(paths), routing=routing)


def test_adherence_counts_closed_summaries_self_opening_and_peer_use():
    uses = leap_path(
        " I add sevens.",
        " Using the doubling trick from my peer gives 42. \\boxed{42}",
        "doubling trick from 21",
    )
    ignores = leap_path(
        " Sevens", " Back to adding: 42. \\boxed{42}", "halving then tripling", closed=False
    )
    self_open = PathRecord(
        segments=[
            Segment("prompt", PROMPT),
            Segment("model", "Sum it. <summarize> 42 so far </summarize> \\boxed{42}"),
        ],
        finish="eos",
    )
    empty = leap_path("  ", " fine", "nothing new")
    m = adherence_metrics(
        [trace("a", uses, ignores), trace("b", self_open, empty, method="leap_t")]
    )
    counts = m["counts"]
    # 4 summaries: closed with text (uses, self_open), engine-closed (ignores), empty (empty)
    assert (counts["summaries"], counts["summaries_closed"]) == (4, 2)
    assert m["summary_closed_rate"] == 0.5
    assert (counts["self_opening_paths"], counts["paths"]) == (1, 4)
    # 3 reflections after a block with peer words; only "doubling trick from" is borrowed
    assert (counts["reflections"], counts["reflections_using_peers"]) == (3, 1)
    assert m["peer_use_rate"] == pytest.approx(1 / 3)
    # chance control: the same reflections against the other problem's peer blocks
    assert counts["reflections_with_other"] == 3 and counts["reflections_using_other_peers"] == 0
    # bootstrap over problems: a alone reuses 1 of 2 reflections, b alone 0 of 1
    assert m["peer_use_rate_ci"] == pytest.approx([0.0, 0.5])


def test_words_the_path_already_had_are_not_credited_to_peers():
    echo = leap_path(" Six sevens", " Six sevens: 6 + 6 + 6, so 42.", "six sevens 6 + 6 + 6")
    m = adherence_metrics([trace("a", echo)])
    assert m["counts"]["reflections"] == 1 and m["peer_use_rate"] == 0.0


def write_seed(root, seed: int, answers: list[str]) -> None:
    tf = TraceFile(root / f"seed-{seed}" / "aime24" / "leap" / "traces.jsonl")
    for pid, answer in zip(("p1", "p2"), answers, strict=True):
        path = leap_path(" so far 42", f" \\boxed{{{answer}}}", "peer says 42")
        path.final_answer, path.correct = answer, answer == "42"
        t = trace(pid, path, leap_path(" 42", " \\boxed{42}", "maybe 41"))
        t.config = {"seed": seed, "task": "math", "n": 2}
        tf.append(t)


def test_report_of_a_seeded_run_gives_mean_and_std_over_seeds(tmp_path):
    root = tmp_path / "eval"
    write_seed(root, 0, ["42", "42"])  # pass@1 1.0
    write_seed(root, 1, ["42", "41"])  # pass@1 0.75
    assert leapt(["report", str(root)]) == 0
    results = json.loads((root / "results.json").read_text())
    (row,) = results["benchmarks"]["aime24"]["methods"].values()
    assert row["seeds"]["seeds"] == [0, 1]
    assert row["seeds"]["pass@1"]["values"] == [1.0, 0.75]
    assert row["pass@1"] == pytest.approx(0.875)
    assert row["seeds"]["pass@1"]["std"] == pytest.approx(0.176777, abs=1e-5)
    assert row["pass@1_ci"][0] <= 0.875 <= row["pass@1_ci"][1]
    assert row["adherence"]["counts"]["summaries"] == 8
    md = (root / "results.md").read_text()
    assert "87.50 ± 17.68" in md and "2 seeds" in md and "Protocol adherence" in md


@pytest.mark.slow
def test_leapt_eval_runs_each_seed_into_its_folder(tmp_path, tiny_model_dir):
    bench = tmp_path / "bench.jsonl"
    bench.write_text(json.dumps({"id": "x1", "problem": "What is 2 + 3?", "answer": "5"}) + "\n")
    out = tmp_path / "eval"
    argv = ["eval", "--model", str(tiny_model_dir), "--backend", "hf", "--dtype", "float32"]
    argv += ["--benchmarks", "aime24", "--local_files", f"aime24={bench}", "--methods", "leap"]
    argv += ["--n", "2", "--top_k", "1", "--T", "6", "--max_tokens", "14"]
    argv += ["--summary_max_tokens", "4", "--forced_answer_tokens", "2"]
    argv += ["--seeds", "3", "5", "--output_dir", str(out)]
    assert leapt(argv) == 0
    for seed in (3, 5):
        (t,) = TraceFile(out / f"seed-{seed}" / "aime24" / "leap" / "traces.jsonl")
        assert t.config["seed"] == seed
    row = json.loads((out / "results.json").read_text())["benchmarks"]["aime24"]["methods"]["leap"]
    assert row["seeds"]["seeds"] == [3, 5] and len(row["seeds"]["pass@1"]["values"]) == 2
    assert row["adherence"]["counts"]["summaries"] > 0
    assert leapt([*argv[:-5], "--seeds", "3", "3", "--output_dir", str(out)]) == 2


def test_compare_report_puts_before_and_after_side_by_side(tmp_path):
    before, after = tmp_path / "before", tmp_path / "after"
    write_seed(before, 0, ["41", "41"])
    write_seed(before, 1, ["42", "41"])
    write_seed(after, 0, ["42", "42"])
    write_seed(after, 1, ["42", "42"])
    out = tmp_path / "e2e"
    spec = [f"before={before}", f"after={after}"]
    assert leapt(["report", "--compare", *spec, "--output-dir", str(out)]) == 0
    doc = json.loads((out / "results.json").read_text())
    assert doc["labels"] == ["before", "after"] and doc["seeds"]["after"] == [0, 1]
    b, a = doc["before"]["aime24"]["leap"], doc["after"]["aime24"]["leap"]
    assert (b["pass@1"], a["pass@1"]) == (pytest.approx(0.625), 1.0)
    assert set(a["adherence"]) >= {"summary_closed_rate", "self_open_rate", "peer_use_rate"}
    md = (out / "results.md").read_text()
    assert "| leap | Pass@1 (%) | 62.50 ± 17.68" in md and "reflection uses peer" in md
    # seed-averaged Pass@1 before: p1 0.75, p2 0.5; after: 1.0 each -> paired gains 0.25, 0.5
    paired = doc["paired"]["after"]["aime24"]["leap"]
    assert paired["problems"] == 2
    assert paired["pass@1_diff"] == pytest.approx(0.375)
    assert paired["pass@1_diff_ci"] == [pytest.approx(0.25), pytest.approx(0.5)]
    assert "## after minus before (points, paired bootstrap over problems)" in md
    assert "| aime24 | leap | 2 | +37.50 [25.0, 50.0] |" in md
    for png in ("accuracy_compare.png", "adherence_compare.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert leapt(["report", "--compare", "before", "--output-dir", str(out)]) == 2
