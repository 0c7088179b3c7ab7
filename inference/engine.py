"""The scheduler and path bookkeeping behind every method.

A method is a *coroutine per problem*: it yields the generation requests of
its next round and receives their results, and finally returns the
problem's :class:`Trace`.  :func:`run_problems` drives many such coroutines at
once, keeps the rounds of all active problems in flight at the backend
together (so a batching backend stays full) and advances each problem as soon
as its own round returns.  One that finishes is handed to ``on_done`` at once
and a waiting problem takes its place, so early finishers never wait for
slow ones.

Each path keeps the exact token ids the model saw (engine text is encoded
once and appended; model tokens are appended as generated) plus its segments
labelled by author: ``prompt`` (engine), ``model`` (sampled) or ``peer``.
"""

from __future__ import annotations

import hashlib
import itertools
import random
from collections import deque
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass, field
from typing import Any

from inference.args import LeapArguments
from inference.backends.base import (
    Backend,
    GenerationRequest,
    GenerationResult,
    SamplingSettings,
    submitter,
)
from inference.problems import Problem
from inference.protocol import Protocol
from inference.trace import Finish, PathRecord, Segment, SegmentKind, Trace

#: a method's per-problem coroutine: yields requests, receives results, returns the trace
ProblemRun = Generator[list[GenerationRequest], list[GenerationResult], Trace]


def derive_seed(*parts: Any) -> int:
    """A stable 31-bit seed from the run seed and request coordinates (process-independent)."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


@dataclass
class PathState:
    """One reasoning path in flight: its token ids, segments and counters."""

    index: int
    token_ids: list[int]
    record: PathRecord = field(default_factory=PathRecord)
    #: the model closed its reasoning (think-end tag); it now writes the answer, with no LeaP blocks
    answering: bool = False

    @property
    def finished(self) -> bool:
        return self.record.finish is not None

    def add(self, kind: SegmentKind, text: str) -> None:
        """Append text to the segments, merging with a previous segment of the same kind."""
        segments = self.record.segments
        if segments and segments[-1].kind == kind and len(segments) > 1:
            segments[-1] = Segment(kind, segments[-1].text + text)
        else:
            segments.append(Segment(kind, text))

    def finish(self, how: Finish) -> None:
        self.record.finish = how


@dataclass
class EngineContext:
    """Everything a method needs besides the problem: model, wording and knobs."""

    backend: Backend
    protocol: Protocol
    leap_args: LeapArguments
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def tokenizer(self) -> Any:
        return self.backend.tokenizer

    @property
    def sampling(self) -> SamplingSettings:
        a = self.leap_args
        return SamplingSettings(a.temperature, a.top_p, a.sampling_top_k, a.min_p)

    def encode(self, text: str) -> list[int]:
        return list(self.tokenizer.encode(text, add_special_tokens=False))

    def seed(self, problem: Problem, path: int, turn: int, phase: str) -> int:
        """Per-request seed: distinct per path and turn, fixed by the run seed."""
        return derive_seed(self.leap_args.seed, problem.id, path, turn, phase)

    def rng(self, problem: Problem) -> random.Random:
        """The problem's own random stream (e.g. for the random router)."""
        return random.Random(derive_seed(self.leap_args.seed, problem.id, "rng"))

    def new_paths(self, problem: Problem, n: int | None = None) -> list[PathState]:
        """``n`` paths that start from the chat-templated prompt (one prompt segment)."""
        prompt = self.protocol.build_prompt(
            self.tokenizer, problem.problem, problem.options, self.leap_args.task
        )
        ids = self.encode(prompt)
        paths = []
        for i in range(self.leap_args.n if n is None else n):
            state = PathState(i, list(ids))
            state.record.segments.append(Segment("prompt", prompt))
            paths.append(state)
        return paths

    def new_trace(self, problem: Problem, paths: Iterable[PathState]) -> Trace:
        return Trace(
            id=problem.id,
            problem=problem.problem,
            answer=problem.answer,
            options=problem.options,
            method=self.leap_args.method,
            config=dict(self.config),
            model=self.backend.model_name,
            paths=[p.record for p in paths],
        )

    # -- path edits ----------------------------------------------------------------

    def add_text(self, path: PathState, kind: SegmentKind, text: str) -> None:
        """Engine-written text (prompt or peer): encode once, append ids and a segment."""
        path.token_ids.extend(self.encode(text))
        path.add(kind, text)

    def add_model(self, path: PathState, result: GenerationResult, summary: bool = False) -> None:
        """Sampled tokens: append ids as generated and count them (summaries separately too)."""
        path.token_ids.extend(result.token_ids)
        path.add("model", result.text)
        path.record.generated_tokens += len(result.token_ids)
        if summary:
            path.record.summary_tokens += len(result.token_ids)

    def remaining(self, path: PathState) -> int:
        """Tokens left in the path's whole budget (summaries count against it)."""
        return self.leap_args.max_tokens - path.record.generated_tokens

    def request(self, path: PathState, max_tokens: int, stop: list[str], seed: int):
        return GenerationRequest(list(path.token_ids), max_tokens, list(stop), seed)

    def reasoning_request(
        self, problem: Problem, path: PathState, stop: list[str], turn: int
    ) -> GenerationRequest:
        """The next chunk of up to ``T`` tokens; after the think-end tag, of the answer (no stops)."""
        tokens = min(self.leap_args.T, self.remaining(path))
        seed = self.seed(problem, path.index, turn, "reason")
        return self.request(path, tokens, [] if path.answering else stop, seed)

    def record_reasoning(self, path: PathState, result: GenerationResult) -> None:
        """Append a reasoning/answer chunk and update how the path stands.

        R1-style models write their final answer *after* the think-end tag, so
        that tag does not end a path: it starts the answer phase, which runs
        without LeaP blocks until EOS (finish ``think_end``) or the budget
        (finish ``budget``: the answer was cut off).
        """
        self.add_model(path, result)
        if result.stop_reason == "eos":
            path.finish("think_end" if path.answering else "eos")
        elif not path.answering and result.stop_string == self.protocol.think_end:
            path.answering = True
        if path.answering and not path.finished and self.remaining(path) <= 0:
            path.finish("budget")


MethodRunner = Callable[[EngineContext, Problem], ProblemRun]


def run_problems(
    problems: Iterable[Problem],
    runner: MethodRunner,
    ctx: EngineContext,
    on_done: Callable[[Trace], None],
    max_concurrent: int,
    on_round: Callable[[int, int], None] | None = None,
) -> None:
    """Drive one coroutine per problem; each advances as soon as its own requests return.

    Every problem's round goes to the backend as one group (see
    :class:`~inference.backends.base.Submitter`); whenever groups complete,
    their problems take their next step and submit again, so no problem waits
    for another's requests (a ``generate``-only backend still runs all pending
    groups in one call).  At most ``max_concurrent`` problems are in flight; a
    finished problem is passed to ``on_done`` immediately and the next waiting
    one is admitted.  Results do not depend on this order: each request
    carries its own seed.  ``on_round(active_problems, requests)`` is called
    after each batch of completed groups.
    """
    backend = submitter(ctx.backend)
    waiting = deque(problems)
    active: dict[int, ProblemRun] = {}
    keys = itertools.count()

    def advance(key: int, results: list[GenerationResult] | None) -> None:
        run = active[key]
        try:
            requests = next(run) if results is None else run.send(results)
        except StopIteration as stop:
            del active[key]
            on_done(stop.value)
            return
        if not requests:
            raise RuntimeError("a method yielded an empty round")
        backend.submit(key, requests, ctx.sampling)

    while waiting or active:
        while waiting and len(active) < max_concurrent:
            key = next(keys)
            active[key] = runner(ctx, waiting.popleft())
            advance(key, None)
        if not active:
            continue
        done = backend.collect()
        for key, results in done:
            advance(key, results)
        if on_round is not None:
            on_round(len(active), sum(len(results) for _, results in done))
