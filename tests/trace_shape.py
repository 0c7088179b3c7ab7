"""Structural checks of LeaP traces, shared by the hf / vLLM / OpenAI end-to-end tests.

Sampled text differs between backends, so the tests compare *structure*:
``check_trace`` asserts the invariants every trace must satisfy, and
``trace_shape`` is a coarse signature that two backends running the same
configuration should agree on.
"""

from __future__ import annotations

from typing import Any

from inference.args import LeapArguments
from inference.protocol import Protocol, load_protocol
from inference.trace import Trace

FINISHES = {"think_end", "eos", "budget", "forced", "context"}


def check_trace(trace: Trace, leap_args: LeapArguments, protocol: Protocol | None = None) -> None:
    """Assert the protocol invariants of one trace produced under ``leap_args``."""
    proto = protocol or load_protocol(leap_args.protocol)
    assert trace.method == leap_args.method
    assert len(trace.paths) == leap_args.n
    suffixes = [proto.forced_answer(leap_args.task, close) for close in (True, False)]
    budget = leap_args.max_tokens  # everything the model writes, summaries included
    for index, path in enumerate(trace.paths):
        assert path.segments[0].kind == "prompt"
        assert path.finish in FINISHES
        if path.finish == "forced":  # the budget was spent, then only the forced answer
            assert budget <= path.generated_tokens <= budget + leap_args.forced_answer_tokens
        elif path.finish == "budget":  # cut off exactly at the budget
            assert path.generated_tokens == budget
        elif path.finish == "context":  # the context filled up first (forced answer if it fit)
            assert 0 < path.generated_tokens <= budget + leap_args.forced_answer_tokens
        else:
            assert 0 < path.generated_tokens <= budget
        peer_blocks = sum(1 for s in path.segments if s.kind == "peer")
        assert path.summary_tokens <= min(
            path.generated_tokens, peer_blocks * leap_args.summary_max_tokens
        )
        forced = any(s in path.text(["prompt"]) for s in suffixes)
        if path.finish != "context":  # a full context ends with a forced answer if there is room
            assert (path.finish == "forced") == forced
        peers = [s for s in path.segments if s.kind == "peer"]
        assert len(peers) == sum(1 for r in trace.routing if r.path == index)
        before = ""
        for seg in path.segments:
            if seg.kind == "peer":
                assert seg.text.startswith(f" <{proto.comment_tag}>")
                assert seg.text.endswith(f"</{proto.comment_tag}>")
                assert before.rstrip().endswith(proto.summary_close), (
                    "peer block before summary end"
                )
            before += seg.text
    for r in trace.routing:
        assert r.path not in r.peers and len(set(r.peers)) == len(r.peers)
        if leap_args.router != "all":
            assert len(r.peers) <= leap_args.top_k
    if leap_args.method == "independent":
        assert not trace.routing


def trace_shape(trace: Trace) -> dict[str, Any]:
    """A backend-independent signature: method, paths, segment kinds, routing at turn 1."""
    return {
        "method": trace.method,
        "paths": len(trace.paths),
        "first_kinds": sorted({p.segments[0].kind for p in trace.paths}),
        "kinds": sorted({s.kind for p in trace.paths for s in p.segments}),
        "routed_turn1": sorted(r.path for r in trace.routing if r.turn == 1),
    }
