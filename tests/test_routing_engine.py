"""Routing through the engine: each router's choice, recomputed from the trace alone.

Four paths write summaries at measurably different distances from each other
(scripted model, real engine); with top_k=2 of 3 peers, dispersed, clustered
and hybrid must each pick a different pair, and the pair each one recorded
must be the one the paper's measure 1 - D_lev/max(|a|, |b|), recomputed here
from the summaries in the trace, prescribes.
"""

from __future__ import annotations

import pytest

from inference.args import LeapArguments
from inference.problems import Problem
from inference.protocol import load_protocol
from inference.trace import Trace
from tests.scripted_model import EOS, RAMBLE, run_scripted
from tests.test_routing import paper_similarity

PROTO = load_protocol()
#: one fixed summary opening, so the recorded summaries differ only where the script makes them
FIXED_OPENING = 'summary_openings: [" Notes:"]\n'
#: no path is equally similar to two peers (checked below), so every router's choice is unique
SUMMARIES = [
    "x = 3 so the answer is 12",
    "x = 3, so my answer is 13",
    "x = 3 but then the answer is 18",
    "a graph shows 9 roots",
]


def run(tmp_path, tiny_model_dir, router: str) -> Trace:
    def script(path, turn, phase):
        if phase == "summary":
            return SUMMARIES[path] + PROTO.summary_close
        return "12}" if phase == "forced" else RAMBLE

    protocol = tmp_path / "protocol.yaml"
    protocol.write_text(FIXED_OPENING, encoding="utf-8")
    leap_args = LeapArguments(
        n=4, top_k=2, T=16, max_tokens=200, router=router, protocol=str(protocol)
    )
    problems = [Problem("p", "What is 3 * 4?", "12")]
    (trace,), _ = run_scripted(tmp_path / router, tiny_model_dir, script, leap_args, problems)
    return trace


def summaries_in(trace: Trace, path: int) -> list[str]:
    """The path's own summaries: the model text right after each opening summary tag."""
    segments = trace.paths[path].segments
    found = []
    for before, seg in zip(segments, segments[1:], strict=False):
        if before.kind != "prompt" or PROTO.summary_open not in before.text:
            continue
        opening = before.text.rsplit(PROTO.summary_open, 1)[1]
        if PROTO.summary_close in opening:
            continue  # a closed example of the format (the announced prompt), not a LeaP block
        assert seg.kind == "model"
        found.append((opening + seg.text.removesuffix(PROTO.summary_close)).strip())
    return found


def expected_peers(own: str, others: dict[int, str], router: str, k: int) -> list[int]:
    by_sim = sorted(others, key=lambda p: (-paper_similarity(own, others[p]), p))
    least = sorted(others, key=lambda p: (paper_similarity(own, others[p]), p))
    if router == "clustered":
        return by_sim[:k]
    if router == "dispersed":
        return least[:k]
    chosen = by_sim[: k // 2]  # hybrid: half most similar, the rest least similar
    return chosen + [p for p in least if p not in chosen][: k - len(chosen)]


def summary_at(trace: Trace, path: int, turn: int) -> str:
    """The summary ``path`` wrote at ``turn`` (its n-th summary, n = its n-th LeaP block)."""
    turns = sorted(r.turn for r in trace.routing if r.path == path)
    return summaries_in(trace, path)[turns.index(turn)]


@pytest.mark.parametrize("router", ["dispersed", "clustered", "hybrid"])
def test_each_router_picks_the_peers_the_paper_measure_prescribes(tmp_path, tiny_model_dir, router):
    trace = run(tmp_path, tiny_model_dir, router)
    assert {r.turn for r in trace.routing} >= {1, 2}, "the run must hold several LeaP turns"
    full_turns = 0
    for record in trace.routing:
        # routing is among the paths that summarized at this turn (the others have ended)
        routed = [r.path for r in trace.routing if r.turn == record.turn]
        own = summary_at(trace, record.path, record.turn)
        others = {q: summary_at(trace, q, record.turn) for q in routed if q != record.path}
        if len(others) == 3:
            full_turns += 1
            sims = {paper_similarity(own, s) for s in others.values()}
            assert len(sims) == 3, "the scripted summaries must not tie"
        expected = expected_peers(own, others, router, min(2, len(others)))
        assert record.peers == expected, record
        blocks = [s.text for s in trace.paths[record.path].segments if s.kind == "peer"]
        turns = sorted(r.turn for r in trace.routing if r.path == record.path)
        read = blocks[turns.index(record.turn)]
        for i, q in enumerate(record.peers, start=1):
            assert f'Peer {i}: "{others[q]}"' in read
    assert full_turns >= 4


def test_dispersed_clustered_and_hybrid_pick_different_peers(tmp_path, tiny_model_dir):
    first_turn = {
        router: {
            r.path: r.peers for r in run(tmp_path, tiny_model_dir, router).routing if r.turn == 1
        }
        for router in ("dispersed", "clustered", "hybrid")
    }
    for path in range(4):
        picks = {router: tuple(sorted(peers[path])) for router, peers in first_turn.items()}
        assert len(set(picks.values())) == 3, (path, picks)
    # path 0 ("... is 12"): its nearest peer is path 1 ("... is 13"), its farthest path 3
    assert first_turn["clustered"][0] == [1, 2]
    assert first_turn["dispersed"][0] == [3, 2]
    assert first_turn["hybrid"][0] == [1, 3]


@pytest.mark.parametrize("hybrid_mode", ["distinct", "authors"])
def test_hybrid_mode_with_few_active_paths(tmp_path, tiny_model_dir, hybrid_mode):
    """Path 3 ends before the first block: 2 peers for a top-3 hybrid.  The authors' code
    shows one of them twice (its two lists are joined as they are); ours shows each once."""

    def script(path, turn, phase):
        if path == 3:
            return ("It is \\boxed{12}.", EOS)
        if phase == "summary":
            return SUMMARIES[path] + PROTO.summary_close
        return "12}" if phase == "forced" else RAMBLE

    leap_args = LeapArguments(
        n=4, top_k=3, T=16, max_tokens=40, router="hybrid", hybrid_mode=hybrid_mode
    )
    problems = [Problem("p", "What is 3 * 4?", "12")]
    (trace,), _ = run_scripted(tmp_path, tiny_model_dir, script, leap_args, problems)
    first = {r.path: r.peers for r in trace.routing if r.turn == 1}
    assert set(first) == {0, 1, 2}
    for path, peers in first.items():
        others = sorted({0, 1, 2} - {path})
        if hybrid_mode == "authors":
            assert len(peers) == 3 and sorted(set(peers)) == others  # one peer twice
        else:
            assert sorted(peers) == others
        block = trace.paths[path].text(["peer"]).split(f"</{PROTO.comment_tag}>")[0]
        assert block.count(PROTO.peer_label.format(i=1)) == 1
        assert (PROTO.peer_label.format(i=3) in block) == (hybrid_mode == "authors")
