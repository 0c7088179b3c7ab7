"""LeaP-S: one peer exchange, then a single generation carries on.

``n`` drafts reason for ``T`` tokens; every draft still open writes a summary;
path 0 (the lead) reads the summaries the router picks for it, then continues
*alone* until it ends or its budget runs out (forced answer, as in LeaP).  The
other drafts stop after their summary.  The result is one answer per problem
that has learned from its peers once, at the cost of ``n`` short drafts.

The trace holds the lead path only (the one graded answer).  So that
per-problem token totals stay honest for compute-matched comparisons, the
lead's ``generated_tokens``/``summary_tokens`` also count the drafts' tokens.
"""

from __future__ import annotations

from inference.engine import EngineContext, ProblemRun
from inference.problems import Problem
from inference.routing import route
from inference.trace import RoutingRecord


def run_leap_s(ctx: EngineContext, problem: Problem) -> ProblemRun:
    """LeaP-S for one problem (see the module docstring)."""
    from inference.methods import _finish_forced, _force_answers  # methods.py registers us

    args, proto = ctx.leap_args, ctx.protocol
    drafts = ctx.new_paths(problem)
    lead = drafts[0]
    trace = ctx.new_trace(problem, [lead])
    stop = [proto.think_end]

    # 1. every draft reasons for up to T tokens
    results = yield [ctx.reasoning_request(problem, p, stop, 1) for p in drafts]
    for p, r in zip(drafts, results, strict=True):
        ctx.record_reasoning(p, r)

    # 2. one exchange: open drafts summarize, the lead reads its routed peers
    open_drafts = [p for p in drafts if not p.finished and not p.answering and ctx.remaining(p) > 0]
    if not lead.finished and lead in open_drafts:
        for p in open_drafts:
            ctx.add_text(p, "prompt", proto.summary_request())
        results = yield [
            ctx.request(
                p,
                args.summary_max_tokens,
                [proto.summary_close],
                ctx.seed(problem, p.index, 1, "summary"),
            )
            for p in open_drafts
        ]
        summaries = {}
        for p, r in zip(open_drafts, results, strict=True):
            ctx.add_model(p, r, summary=True)
            text = r.text
            if r.stop_string == proto.summary_close:
                text = text[: text.rfind(proto.summary_close)]
            else:
                ctx.add_text(p, "prompt", proto.summary_close)
            summaries[p.index] = text.strip()
        peers = route(summaries, args.router, args.top_k, ctx.rng(problem))[lead.index]
        trace.routing.append(RoutingRecord(turn=1, path=lead.index, peers=peers))
        ctx.add_text(lead, "peer", proto.peer_block([summaries[q] for q in peers]))
        ctx.add_text(lead, "prompt", proto.reflection_cue)

    # 3. the lead continues alone, T tokens at a time, with a forced answer at the budget
    turn = 1
    while not lead.finished:
        turn += 1
        forced, requests = _force_answers(ctx, problem, [lead], turn)
        if forced:
            _finish_forced(ctx, forced, (yield requests))
            break
        if lead.finished:  # budget spent and no forced-answer tokens allowed
            break
        (result,) = yield [ctx.reasoning_request(problem, lead, stop, turn)]
        ctx.record_reasoning(lead, result)

    for p in drafts[1:]:
        lead.record.generated_tokens += p.record.generated_tokens
        lead.record.summary_tokens += p.record.summary_tokens
    return trace
