"""The inference methods: LeaP, LeaP-T and independent sampling.

Each method is a per-problem coroutine driven by :func:`inference.engine.run_problems`.
One *turn* is: every active path reasons for up to ``T`` tokens (stopping at
the think-end tag, and for ``leap_t`` also at a model-written ``<summarize>``);
then every path still reasoning gets a LeaP block -- summarize (at most
``summary_max_tokens``, closed by the engine if cut off), route among the
paths that are still active, read the peers' summaries and a reflection cue.
A path that wrote the think-end tag goes on without LeaP blocks and writes
its answer until EOS.  A path whose budget runs out while still reasoning
receives the forced-answer suffix and ``forced_answer_tokens`` more tokens,
so every path ends with an answer.
"""

from __future__ import annotations

from collections.abc import Callable

from inference.backends.base import GenerationRequest
from inference.engine import EngineContext, PathState, ProblemRun
from inference.problems import Problem
from inference.routing import route
from inference.trace import RoutingRecord


def run_leap(ctx: EngineContext, problem: Problem) -> ProblemRun:
    """LeaP: a summary + peer exchange every ``T`` tokens."""
    return _peer_loop(ctx, problem, exchange=True, model_summarizes=False)


def run_leap_t(ctx: EngineContext, problem: Problem) -> ProblemRun:
    """LeaP-T: as LeaP, and a model-written ``<summarize>`` starts a LeaP block right there."""
    return _peer_loop(ctx, problem, exchange=True, model_summarizes=True)


def run_independent(ctx: EngineContext, problem: Problem) -> ProblemRun:
    """Independent sampling: N paths that never see each other (the baseline)."""
    return _peer_loop(ctx, problem, exchange=False, model_summarizes=False)


def _peer_loop(
    ctx: EngineContext, problem: Problem, exchange: bool, model_summarizes: bool
) -> ProblemRun:
    args, proto = ctx.leap_args, ctx.protocol
    paths = ctx.new_paths(problem)
    trace = ctx.new_trace(problem, paths)
    rng = ctx.rng(problem)
    stop = [proto.think_end] + ([proto.summary_open] if model_summarizes else [])
    turn = 0
    while any(not p.finished for p in paths):
        turn += 1
        # 1. reasoning chunk (or the forced answer if a summary used up the budget)
        active = [p for p in paths if not p.finished]
        forced, forced_requests = _force_answers(ctx, problem, active, turn)
        reasoning = [p for p in active if not p.finished and p not in forced]
        requests = [ctx.reasoning_request(problem, p, stop, turn) for p in reasoning]
        requests += forced_requests
        if not requests:
            continue
        results = yield requests
        needs_block: list[PathState] = []
        for p, r in zip(reasoning, results[: len(reasoning)], strict=True):
            ctx.record_reasoning(p, r)
            if p.finished or p.answering:
                continue
            if r.stop_string == proto.summary_open:
                needs_block.append(p)  # the model opened the summary itself
            elif ctx.remaining(p) > 0 and exchange:
                ctx.add_text(p, "prompt", proto.summary_request())
                needs_block.append(p)
        _finish_forced(ctx, forced, results[len(reasoning) :])
        # 2. LeaP block: summaries, plus forced answers of paths that hit the budget
        candidates = [
            p for p in reasoning if not p.finished and not p.answering and p not in needs_block
        ]
        forced, forced_requests = _force_answers(ctx, problem, candidates, turn)
        if not (needs_block or forced_requests):
            continue
        requests = [
            ctx.request(
                p,
                _summary_cap(ctx, p),
                [proto.summary_close],
                ctx.seed(problem, p.index, turn, "summary"),
            )
            for p in needs_block
        ] + forced_requests
        results = yield requests
        summaries: dict[int, str] = {}
        for p, r in zip(needs_block, results[: len(needs_block)], strict=True):
            ctx.add_model(p, r, summary=True)
            text = r.text
            if r.stop_string == proto.summary_close:
                text = text[: text.rfind(proto.summary_close)]
            else:
                ctx.add_text(p, "prompt", proto.summary_close)  # truncated: the engine closes it
            summaries[p.index] = text.strip()
        _finish_forced(ctx, forced, results[len(needs_block) :])
        # 3. route among the paths still active and inject the peers' summaries
        routed = route(summaries, args.router, args.top_k, rng) if summaries else {}
        for p in needs_block:
            peers = routed[p.index]
            trace.routing.append(RoutingRecord(turn=turn, path=p.index, peers=peers))
            ctx.add_text(p, "peer", proto.peer_block([summaries[q] for q in peers]))
            ctx.add_text(p, "prompt", proto.reflection_cue)
    return trace


def _summary_cap(ctx: EngineContext, path: PathState) -> int:
    """A summary may not outrun the path's budget (it is closed there, then the path answers)."""
    return max(1, min(ctx.leap_args.summary_max_tokens, ctx.remaining(path)))


def _force_answers(
    ctx: EngineContext, problem: Problem, paths: list[PathState], turn: int
) -> tuple[list[PathState], list[GenerationRequest]]:
    """Close the paths among ``paths`` whose budget is spent.

    Each gets the forced-answer suffix and a request for the answer tokens;
    with ``forced_answer_tokens == 0`` the path simply ends with finish ``budget``.
    """
    forced, requests = [], []
    tokens = ctx.leap_args.forced_answer_tokens
    for p in paths:
        if ctx.remaining(p) > 0:
            continue
        if tokens <= 0:
            p.finish("budget")
            continue
        ctx.add_text(p, "prompt", ctx.protocol.forced_answer(ctx.leap_args.task))
        seed = ctx.seed(problem, p.index, turn, "forced")
        requests.append(ctx.request(p, tokens, [], seed))
        forced.append(p)
    return forced, requests


def _finish_forced(ctx: EngineContext, paths: list[PathState], results) -> None:
    for p, r in zip(paths, results, strict=True):
        ctx.add_model(p, r)
        p.finish("forced")


#: method name -> per-problem coroutine factory (leap_s and moa register here too)
METHOD_RUNNERS: dict[str, Callable[[EngineContext, Problem], ProblemRun]] = {
    "leap": run_leap,
    "leap_t": run_leap_t,
    "independent": run_independent,
}


def _register_baselines() -> None:
    """Add the LeaP-S and Mixture-of-Agents baselines (modules that build on this one)."""
    from inference.leap_s import run_leap_s
    from inference.moa import run_moa

    METHOD_RUNNERS.update({"leap_s": run_leap_s, "moa": run_moa})


_register_baselines()
