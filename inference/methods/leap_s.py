"""LeaP-S: one peer exchange, then a single generation carries on.

``n`` drafts reason for ``T`` tokens; every draft still open writes a summary;
path 0 (the lead) reads the summaries the router picks for it, then continues
*alone* until it ends or its budget or context runs out (forced answer, as in
LeaP).  The other drafts stop after their summary.  The result is one answer
per problem that has learned from its peers once, at the cost of ``n`` short
drafts.

The trace holds the lead path only (the one graded answer).  So that
per-problem token totals stay honest for compute-matched comparisons, the
lead's ``generated_tokens``/``summary_tokens`` also count the drafts' tokens.
"""

from __future__ import annotations

from inference.engine import EngineContext, ProblemRun
from inference.problems import Problem


def run(ctx: EngineContext, problem: Problem) -> ProblemRun:
    """LeaP-S for one problem (see the module docstring)."""
    drafts = ctx.new_paths(problem)
    lead = drafts[0]
    trace = ctx.new_trace(problem, [lead])
    stop = ctx.reasoning_stops()

    # 1. every draft reasons for up to T tokens
    results = yield [ctx.reasoning_request(problem, p, stop, 1) for p in drafts]
    for p, r in zip(drafts, results, strict=True):
        ctx.record_reasoning(p, r, stop)

    # 2. one exchange: open drafts summarize, the lead reads its routed peers
    writers = [p for p in drafts if not p.finished and not p.answering and ctx.block_fits(p)]
    if lead in writers:
        for p in writers:
            ctx.open_summary(problem, p, 1)
        yield from ctx.leap_block(problem, trace, writers, [lead], 1, ctx.rng(problem))

    # 3. the lead continues alone, T tokens at a time, with a forced answer when it runs out
    turn = 1
    while not lead.finished:
        turn += 1
        forced, requests = ctx.force_answers(problem, [lead], turn)
        if forced:
            ctx.finish_forced(forced, (yield requests))
            break
        if lead.finished:  # out of budget/context and no forced answer possible
            break
        (result,) = yield [ctx.reasoning_request(problem, lead, stop, turn)]
        ctx.record_reasoning(lead, result, stop)

    for p in drafts[1:]:
        lead.record.generated_tokens += p.record.generated_tokens
        lead.record.summary_tokens += p.record.summary_tokens
    return trace
