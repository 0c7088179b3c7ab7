"""LeaP: N paths that summarize every ``T`` tokens and read their peers' summaries.

One *turn* is: every active path reasons for up to ``T`` tokens (stopping at
the think-end tag, and for ``leap_t`` also at a model-written ``<summarize>``);
then every path still reasoning gets a LeaP block -- summarize (at most
``summary_max_tokens``, closed by the engine if cut off), route among the
paths that are still active, read the peers' summaries and a reflection cue.
A path that wrote the think-end tag goes on without LeaP blocks and writes
its answer until EOS.  A path whose budget or context runs out, in either
phase, receives the forced-answer suffix and ``forced_answer_tokens`` more
tokens, so every path ends with an answer.

:func:`peer_loop` is shared with ``leap_t`` and ``independent`` (no exchange).
"""

from __future__ import annotations

from inference.engine import EngineContext, PathState, ProblemRun
from inference.problems import Problem


def run(ctx: EngineContext, problem: Problem) -> ProblemRun:
    """LeaP: a summary + peer exchange every ``T`` tokens."""
    return peer_loop(ctx, problem, exchange=True, model_summarizes=False)


def peer_loop(
    ctx: EngineContext, problem: Problem, exchange: bool, model_summarizes: bool
) -> ProblemRun:
    """The turn loop of LeaP, LeaP-T (``model_summarizes``) and independent sampling."""
    proto = ctx.protocol
    paths = ctx.new_paths(problem)
    trace = ctx.new_trace(problem, paths)
    rng = ctx.rng(problem)
    stop = ctx.reasoning_stops(model_summarizes)
    turn = 0
    while any(not p.finished for p in paths):
        turn += 1
        # 1. reasoning chunk, or the forced answer of a path out of budget or context
        active = [p for p in paths if not p.finished]
        forced, forced_requests = ctx.force_answers(problem, active, turn)
        reasoning = [p for p in active if not p.finished and p not in forced]
        requests = [ctx.reasoning_request(problem, p, stop, turn) for p in reasoning]
        if not requests + forced_requests:
            continue
        results = yield requests + forced_requests
        writers: list[PathState] = []
        for p, r in zip(reasoning, results[: len(reasoning)], strict=True):
            r = ctx.record_reasoning(p, r, stop)
            if p.finished or p.answering or not ctx.can_grow(p) or not ctx.block_due(p):
                continue
            if r.stop_string == proto.summary_open:
                if ctx.self_opened(problem, p, turn):  # the model opened the summary itself
                    writers.append(p)
            elif exchange and ctx.block_fits(p):
                ctx.open_summary(problem, p, turn)
                writers.append(p)
        ctx.finish_forced(forced, results[len(reasoning) :])
        # 2. LeaP block, plus the forced answers of paths that just ran out
        idle = [p for p in reasoning if p not in writers]
        forced, forced_requests = ctx.force_answers(problem, idle, turn)
        if not (writers or forced_requests):
            continue
        results = yield from ctx.leap_block(
            problem, trace, writers, writers, turn, rng, extra=forced_requests
        )
        ctx.finish_forced(forced, results)
    return trace
