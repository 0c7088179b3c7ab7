"""`leapt view` without a browser: what the page is built from, escaping, CLI and report links."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pytest

from eval.viewer.data import problem_view, split_pieces, summary_tags
from eval.viewer.page import embed_json
from inference.routing import route, similarity
from inference.trace import PathRecord, RoutingRecord, Segment, Trace, TraceFile
from leapt.cli import main as leapt
from tests.viewer_fixture import PROBLEMS, SUMMARIES, TOP_K, N, build_run

TAGS = ("<summarize>", "</summarize>")


@pytest.fixture(scope="module")
def run(tmp_path_factory, tiny_model_dir):
    out = tmp_path_factory.mktemp("viewer-run")
    return out, build_run(out, tiny_model_dir)


def test_summaries_are_found_whoever_wrote_the_tags():
    leap = [  # engine opens the summary, the model closes it
        Segment("prompt", "Q"),
        Segment("model", "reasoning"),
        Segment("prompt", " Summarize. <summarize>"),
        Segment("model", " x is 3 </summarize>"),
        Segment("peer", ' <comment> Peer 1: "<summarize> y" </comment>'),
        Segment("model", "more"),
    ]
    assert split_pieces(leap, TAGS) == [
        ["prompt", "Q"],
        ["model", "reasoning"],
        ["prompt", " Summarize. <summarize>"],
        ["summary", " x is 3 </summarize>"],
        ["peer", ' <comment> Peer 1: "<summarize> y" </comment>'],
        ["model", "more"],
    ]
    leap_t = [
        Segment("prompt", "Q"),
        Segment("model", "think <summarize> short"),
        Segment("prompt", "</summarize>"),
    ]
    assert split_pieces(leap_t, TAGS) == [
        ["prompt", "Q"],
        ["model", "think "],
        ["summary", "<summarize> short"],
        ["prompt", "</summarize>"],
    ]
    custom = [Segment("model", "a <note>b</note> c")]
    assert split_pieces(custom, ("<note>", "</note>")) == [
        ["model", "a "],
        ["summary", "<note>b</note>"],
        ["model", " c"],
    ]


def test_summary_tag_comes_from_the_run(tmp_path):
    assert summary_tags({}) == TAGS
    assert summary_tags({"summarize_tag": "gist"}) == ("<gist>", "</gist>")
    protocol = tmp_path / "protocol.yaml"
    protocol.write_text("summarize_tag: recap\n")
    assert summary_tags({"protocol": str(protocol)}) == ("<recap>", "</recap>")
    assert summary_tags({"protocol": str(tmp_path / "gone.yaml")}) == TAGS


def test_rows_are_leap_turns_and_similarity_is_the_routers(run):
    _, traces = run
    trace = traces[0]
    view = problem_view(trace)
    turns = sorted({r.turn for r in trace.routing})
    assert [r["key"] for r in view["rows"]] == [str(t) for t in turns] + ["end"]
    assert view["prompt"] == trace.paths[0].segments[0].text
    for k, path in enumerate(view["paths"]):
        for turn in turns:
            authors = [a for a, _ in path["cells"][str(turn)]]
            # each turn's cell: reasoning, the summary request, the summary, the peers, the cue
            assert authors[-2:] == ["peer", "prompt"]
            assert "summary" in authors
            summary = "".join(t for a, t in path["cells"][str(turn)] if a == "summary")
            assert SUMMARIES[k].split()[0] in summary
        assert "\\boxed" in "".join(t for _, t in path["cells"]["end"])
    first = view["routing"][0]
    assert first["turn"] == turns[0] and first["paths"] == first["columns"] == list(range(N))
    said = {p: f"{SUMMARIES[p]} (turn {turns[0]})" for p in range(N)}
    for a in range(N):
        for b in range(N):
            expected = None if a == b else round(similarity(said[a], said[b]), 3)
            assert first["similarity"][a][b] == expected
    recorded = {r.path: r.peers for r in trace.routing if r.turn == turns[0]}
    assert {int(p): q for p, q in first["peers"].items()} == recorded
    # the recorded choice is what the run's router makes from these similarities
    router = trace.config["router"]
    assert route(said, router, TOP_K, random.Random(0)) == recorded


@pytest.mark.parametrize("method", ["leap_t", "leap_s", "independent", "moa"])
def test_every_method_reads_as_turns_or_whole_paths(method, tmp_path, tiny_model_dir):
    (trace, _) = build_run(tmp_path, tiny_model_dir, method=method)
    view = problem_view(trace)
    turns = sorted({r.turn for r in trace.routing})
    keys = [r["key"] for r in view["rows"]]
    assert keys == [str(t) for t in turns] + ["end"]
    assert bool(turns) == (method in ("leap_t", "leap_s"))
    for path in view["paths"]:  # every character of every path is shown exactly once
        shown = (view["prompt"] or "") + "".join(
            t for k in keys for _, t in path["cells"].get(k, [])
        )
        original = trace.paths[view["paths"].index(path)]
        assert shown == original.text()
    if method == "leap_t":  # path 1 opened its own summary: the tag and its text are the summary
        cell = view["paths"][1]["cells"]["1"]
        assert any(a == "summary" and t.startswith("<summarize>") for a, t in cell)
    if method == "leap_s":  # the lead read drafts whose summaries are not in the trace
        (routing,) = view["routing"]
        assert routing["paths"] == [0] and routing["columns"] == sorted(
            [0, *trace.routing[0].peers]
        )


def test_a_path_without_matching_routing_is_one_cell():
    trace = Trace(
        id="m1",
        problem="q",
        answer="1",
        method="moa",
        paths=[
            PathRecord(
                segments=[
                    Segment("prompt", "q "),
                    Segment("peer", "<comment> earlier: 1 </comment>"),
                    Segment("prompt", " go"),
                    Segment("model", "\\boxed{1}"),
                ]
            )
        ],
    )
    view = problem_view(trace)
    assert view["rows"] == [{"key": "end", "label": "whole path"}]
    assert [a for a, _ in view["paths"][0]["cells"]["end"]] == ["peer", "prompt", "model"]
    assert view["routing"] == []


def test_peers_that_are_not_in_the_trace_still_show_in_the_routing():
    # LeaP-S keeps only its lead path; the drafts it read are routing columns without summaries
    lead = PathRecord(
        segments=[
            Segment("prompt", "q"),
            Segment("model", "draft"),
            Segment("prompt", " <summarize>"),
            Segment("model", "mine </summarize>"),
            Segment("peer", ' <comment> Peer 1: "a" </comment>'),
            Segment("prompt", " cue"),
            Segment("model", "\\boxed{2}"),
        ]
    )
    trace = Trace(
        "s1", "q", "2", method="leap_s", paths=[lead], routing=[RoutingRecord(1, 0, [2, 3])]
    )
    (routing,) = problem_view(trace)["routing"]
    assert routing["paths"] == [0] and routing["columns"] == [0, 2, 3]
    assert routing["similarity"] == [[None, None, None]]
    assert routing["peers"] == {"0": [2, 3]}


def test_embedded_json_cannot_end_its_script_element():
    hostile = "</script><script>alert(1)</script><!-- & \u2028"
    text = embed_json({"t": hostile})
    assert not re.search(r"[<>&\u2028]", text)
    assert json.loads(text) == {"t": hostile}


def test_page_holds_hostile_text_only_as_escaped_data(run):
    out, traces = run
    assert leapt(["view", str(out), "--output", str(out / "page.html")]) == 0
    page = (out / "page.html").read_text()
    # our script elements only: one JSON block per problem, the index, and the code
    assert page.count("<script") == len(traces) + 2
    assert page.count("</script>") == len(traces) + 2
    assert "window.__pwned" in page  # the text is there, as data
    assert "<img" not in page and "<!--" not in page
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', page).group(1)
    assert "default-src 'none'" in csp and "unsafe-inline" not in csp


def eval_layout(root: Path, traces: list) -> Path:
    """``root`` laid out as ``leapt eval`` writes it: the traces under aime24/{independent,leap}."""
    for method in ("independent", "leap"):
        tf = TraceFile(root / "aime24" / method / "traces.jsonl")
        for t in traces:
            tf.append(t)
    return root


def test_view_cli_finds_every_run_layout(run, tmp_path, capsys):
    out, traces = run
    eval_root = eval_layout(tmp_path / "eval", traces)
    gen_root = tmp_path / "gen"
    for shard in ("shard-0-of-2", "shard-1-of-2"):
        tf = TraceFile(gen_root / "raw" / shard / "traces.jsonl")
        tf.append(traces[0 if shard.startswith("shard-0") else 1])
    labels = {}
    for root in (eval_root, gen_root, out):
        assert leapt(["view", str(root), "--output", str(tmp_path / f"{root.name}.html")]) == 0
        page = (tmp_path / f"{root.name}.html").read_text()
        index = json.loads(re.search(r'id="leapt-index">(.*?)</script>', page).group(1))
        labels[root] = [g["label"] for g in index["groups"]]
    assert labels[eval_root] == ["aime24/independent", "aime24/leap"]
    assert labels[gen_root] == ["raw/shard-0-of-2", "raw/shard-1-of-2"]
    assert labels[out] == [out.name]
    assert leapt(["view", str(eval_root)]) == 0  # default output: beside the traces
    assert leapt(["view", str(eval_root)]) == 0  # its own page is rewritten, not refused
    page = (eval_root / "trace_view.html").read_text()
    index = json.loads(re.search(r'id="leapt-index">(.*?)</script>', page).group(1))
    problems = index["groups"][1]["problems"]
    assert [p["id"] for p in problems] == [p.id for p in PROBLEMS]
    assert problems[0]["gold"] == "4" and problems[0]["correct"] == [True, True, False, True]
    assert "MB" in capsys.readouterr().out


def test_view_cli_bad_input_is_one_line(tmp_path, capsys):
    assert leapt(["view", str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert leapt(["view", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "no traces.jsonl" in err and len(err.strip().splitlines()) == 1


def test_report_links_a_viewer_page_per_method(run, tmp_path):
    _, traces = run
    root = eval_layout(tmp_path / "eval", traces)
    assert leapt(["report", str(root)]) == 0
    md = (root / "results.md").read_text()
    links = re.findall(r"\[([^\]]+)\]\(([^)]+\.html)\)", md)
    assert [label for label, _ in links] == ["aime24 / independent", "aime24 / leap"]
    for _, target in links:
        page = (root / target).read_text()
        assert 'id="leapt-d-0-1"' in page  # both problems embedded
