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
import importlib
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
from inference.methods import REGISTRY
from inference.problems import Problem
from inference.protocol import Protocol
from inference.routing import route
from inference.trace import Finish, PathRecord, RoutingRecord, Segment, SegmentKind, Trace

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
    #: the backend could not grow the path: its context reached the model's limit
    context_full: bool = False
    #: how the path ends once its forced answer comes back (``forced`` or ``context``)
    closing: Finish | None = None
    #: the ids count and text of the latest reasoning chunk (for ``trim_to_paragraph``)
    last_chunk: tuple[int, str] = (0, "")
    #: the engine-written first words of the summary being written (peers read them too)
    opening: str = ""
    #: reasoning chunks written before the think-end tag (``max_turns`` caps them)
    chunks: int = 0

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
    """Everything a method needs besides the problem, and the steps all methods share.

    The shared steps -- force the answers of paths out of budget or context
    (:meth:`force_answers` / :meth:`finish_forced`), run one LeaP block
    (:meth:`leap_block`), close a summary (:meth:`close_summaries`) -- live
    here once, so every method applies the same budget, context and wording
    rules.
    """

    backend: Backend
    protocol: Protocol
    leap_args: LeapArguments
    config: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        #: whether the model writes a thinking section closed by the think-end tag
        self.thinking = self.protocol.model_thinks(self.tokenizer)
        #: whether the first turn carries the protocol preamble and the assistant pre-fill
        self.announce = self.protocol.announces(self.leap_args.method, self.leap_args.announce)
        self.config.setdefault("protocol_switches", self.protocol_switches())
        self._cache: dict[str, int] = {}

    def protocol_switches(self) -> dict[str, Any]:
        """The protocol choices that change what the model sees (recorded in the trace config)."""
        return {
            "announce": self.announce,
            "thinking": self.thinking,
            "trim_to_paragraph": self.protocol.trim_to_paragraph,
            "summary_triggers": len(self.protocol.summary_triggers),
            "summary_openings": len(self.protocol.summary_openings),
        }

    @property
    def tokenizer(self) -> Any:
        return self.backend.tokenizer

    @property
    def sampling(self) -> SamplingSettings:
        a = self.leap_args
        return SamplingSettings(a.temperature, a.top_p, a.sampling_top_k, a.min_p)

    @property
    def max_context(self) -> int | None:
        """The backend's context limit in tokens, when it knows one."""
        return getattr(self.backend, "max_model_len", None)

    def encode(self, text: str) -> list[int]:
        return list(self.tokenizer.encode(text, add_special_tokens=False))

    def seed(self, problem: Problem, path: int, turn: int, phase: str) -> int:
        """Per-request seed: distinct per path and turn, fixed by the run seed."""
        return derive_seed(self.leap_args.seed, problem.id, path, turn, phase)

    def rng(self, problem: Problem) -> random.Random:
        """The problem's own random stream (e.g. for the random router)."""
        return random.Random(derive_seed(self.leap_args.seed, problem.id, "rng"))

    def wording_rng(self, problem: Problem, path: int, turn: int) -> random.Random:
        """The stream that picks a block's trigger and opening: same seed, same text."""
        return random.Random(self.seed(problem, path, turn, "wording"))

    def new_paths(self, problem: Problem, n: int | None = None) -> list[PathState]:
        """``n`` paths that start from the chat-templated prompt.

        The first segment is the templated prompt; an announced protocol's
        assistant pre-fill follows as a second ``prompt`` segment (it is part
        of the assistant turn, and never trained on).
        """
        prompt = self.protocol.build_prompt(
            self.tokenizer, problem.problem, problem.options, self.leap_args.task, self.announce
        )
        prefill = self.protocol.assistant_prefill(self.announce)
        ids = self.encode(prompt) + (self.encode(prefill) if prefill else [])
        paths = []
        for i in range(self.leap_args.n if n is None else n):
            state = PathState(i, list(ids))
            state.record.segments.append(Segment("prompt", prompt))
            if prefill:
                state.record.segments.append(Segment("prompt", prefill))
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

    def add_model(
        self,
        path: PathState,
        result: GenerationResult,
        summary: bool = False,
        spent: int | None = None,
    ) -> None:
        """Sampled tokens: append ids as generated and count them (summaries separately too).

        ``spent`` counts tokens that were generated but cut from ``result``
        (they cost compute, so they count against the budget).
        """
        path.token_ids.extend(result.token_ids)
        path.add("model", result.text)
        used = len(result.token_ids) if spent is None else spent
        path.record.generated_tokens += used
        if summary:
            path.record.summary_tokens += used
        if result.stop_reason == "context":
            path.context_full = True

    def remaining(self, path: PathState) -> int:
        """Tokens left in the path's whole budget (summaries count against it)."""
        return self.leap_args.max_tokens - path.record.generated_tokens

    def forced_suffix(self, path: PathState) -> str:
        """The forced-answer text for ``path``: it closes the thinking only if still open."""
        return self.protocol.forced_answer(
            self.leap_args.task, close_thinking=self.thinking and not path.answering
        )

    def headroom(self, path: PathState) -> int:
        """Tokens the path may still generate while keeping room for its forced answer."""
        if self.max_context is None:
            return self.leap_args.max_tokens
        key = f"suffix-{self.thinking and not path.answering}"
        if key not in self._cache:
            self._cache[key] = self._len(self.forced_suffix(path))
        reserve = self._cache[key] + self.leap_args.forced_answer_tokens
        return self.max_context - len(path.token_ids) - reserve

    def turns_spent(self, path: PathState) -> bool:
        """The path has written its ``max_turns`` reasoning chunks: its answer is forced next."""
        turns = self.leap_args.max_turns
        return turns is not None and not path.answering and path.chunks >= turns

    def block_due(self, path: PathState) -> bool:
        """Whether a LeaP block may follow the chunk just written, as ``max_turns`` allows.

        The authors' loop runs its blocks *between* turns (none after the last),
        except that a single turn is still followed by one block before the answer.
        """
        turns = self.leap_args.max_turns
        return turns is None or path.chunks < turns or path.chunks == 1

    def can_grow(self, path: PathState) -> bool:
        """Budget left and room in the context (beyond the forced answer's reserve)."""
        return self.remaining(path) > 0 and self.headroom(path) > 0 and not path.context_full

    def block_fits(self, path: PathState) -> bool:
        """Whether a whole LeaP block (its text, summary and peers' notes) fits in the context.

        Near the end of the context a path skips its blocks and reasons on, so
        that the peers' notes never push it past the room kept for its answer.
        """
        if self.max_context is None:
            return self.can_grow(path)
        return self.can_grow(path) and self.headroom(path) > self._block_tokens()

    def _block_tokens(self) -> int:
        """An upper bound on the tokens one LeaP block adds to a path."""
        if "block" not in self._cache:
            a, proto = self.leap_args, self.protocol
            peers = a.n - 1 if a.router == "all" else min(a.top_k, a.n - 1)
            longest = max(map(self._len, proto.summary_triggers)) + max(
                map(self._len, proto.summary_openings)
            )
            note = max(map(self._len, proto.summary_openings)) + a.summary_max_tokens
            label = self._len(proto.peer_label.format(i=a.n)) + 4  # label, colon, quotes, newline
            self._cache["block"] = (
                longest
                + self._len(proto.summary_open + proto.summary_close)
                + a.summary_max_tokens
                + self._len(proto.peer_block([]))
                + peers * (note + label)
                + max(self._len(proto.reflection_cue), self._len(proto.no_peers_cue))
            )
        return self._cache["block"]

    def _len(self, text: str) -> int:
        return len(self.encode(text))

    def cap(self, path: PathState, tokens: int) -> int:
        """``tokens`` limited by the path's budget and context headroom (at least 1)."""
        return max(1, min(tokens, self.remaining(path), self.headroom(path)))

    def request(self, path: PathState, max_tokens: int, stop: list[str], seed: int):
        return GenerationRequest(list(path.token_ids), max_tokens, list(stop), seed)

    def reasoning_stops(self, model_summarizes: bool = False) -> list[str]:
        """Stops of a reasoning chunk: the think-end tag, and ``<summarize>`` for LeaP-T."""
        return [self.protocol.think_end] + (
            [self.protocol.summary_open] if model_summarizes else []
        )

    def reasoning_request(
        self, problem: Problem, path: PathState, stop: list[str], turn: int
    ) -> GenerationRequest:
        """The next chunk of up to ``T`` tokens; after the think-end tag, of the answer (no stops)."""
        seed = self.seed(problem, path.index, turn, "reason")
        return self.request(
            path, self.cap(path, self.leap_args.T), [] if path.answering else stop, seed
        )

    def record_reasoning(self, path: PathState, result: GenerationResult) -> None:
        """Append a reasoning/answer chunk and update how the path stands.

        R1-style models write their final answer *after* the think-end tag, so
        that tag does not end a path: it starts the answer phase, which runs
        without LeaP blocks until EOS (finish ``think_end``).  A path whose
        budget or context runs out, in either phase, gets its forced answer
        from :meth:`force_answers` in the next round.
        """
        self.add_model(path, result)
        path.last_chunk = (len(result.token_ids), result.text)
        if not path.answering:
            path.chunks += 1
        if result.stop_reason == "eos":
            path.finish("think_end" if path.answering else "eos")
        elif not path.answering and result.stop_string == self.protocol.think_end:
            path.answering = True

    # -- shared steps --------------------------------------------------------------

    def force_answers(
        self, problem: Problem, paths: list[PathState], turn: int
    ) -> tuple[list[PathState], list[GenerationRequest]]:
        """Close the paths among ``paths`` that can no longer grow.

        A path out of budget or out of turns (``max_turns``) ends ``forced``, one
        out of context ``context``.
        Each gets the forced-answer suffix and a request for the answer tokens
        that fit; with ``forced_answer_tokens == 0``, or no room left in the
        context, it ends at once (``budget`` or ``context``) without an answer.
        """
        forced, requests = [], []
        for p in paths:
            if p.finished or (self.can_grow(p) and not self.turns_spent(p)):
                continue
            out_of_context = p.context_full or (self.remaining(p) > 0 and self.headroom(p) <= 0)
            suffix = self.forced_suffix(p)
            if self.max_context is not None:
                room = self.max_context - len(p.token_ids) - len(self.encode(suffix))
            else:  # no known limit: room unless the backend said the context is full
                room = 0 if p.context_full else self.leap_args.forced_answer_tokens
            tokens = min(self.leap_args.forced_answer_tokens, room)
            if tokens <= 0:  # no answer: forced_answer_tokens is 0, or the context has no room
                no_room = room <= 0 < self.leap_args.forced_answer_tokens
                p.finish("context" if out_of_context or no_room else "budget")
                continue
            self.add_text(p, "prompt", suffix)
            p.closing = "context" if out_of_context else "forced"
            requests.append(
                self.request(p, tokens, [], self.seed(problem, p.index, turn, "forced"))
            )
            forced.append(p)
        return forced, requests

    def finish_forced(self, paths: list[PathState], results: list[GenerationResult]) -> None:
        """Record the forced answers requested by :meth:`force_answers` and end those paths."""
        for p, r in zip(paths, results, strict=True):
            self.add_model(p, r)
            p.finish(p.closing or "forced")

    def open_summary(self, problem: Problem, path: PathState, turn: int) -> None:
        """Start a LeaP block: (trim to the last paragraph,) trigger, ``<summarize>``, opening."""
        if self.protocol.trim_to_paragraph:
            self._trim_to_paragraph(path)
        rng = self.wording_rng(problem, path.index, turn)
        trigger = self.protocol.pick_trigger(rng)
        path.opening = self.protocol.pick_opening(rng)
        self.add_text(path, "prompt", trigger + self.protocol.summary_open + path.opening)

    def summary_requests(
        self, problem: Problem, paths: list[PathState], turn: int
    ) -> list[GenerationRequest]:
        """One summary request per path; it ends at the close tag, the think-end tag or EOS."""
        stops = [self.protocol.summary_close, self.protocol.think_end]
        cap = self.leap_args.summary_max_tokens
        return [
            self.request(p, self.cap(p, cap), stops, self.seed(problem, p.index, turn, "summary"))
            for p in paths
        ]

    def close_summaries(
        self, paths: list[PathState], results: list[GenerationResult]
    ) -> dict[int, str]:
        """Record each summary and return the peers' copy of it, by path index.

        A summary that stops at its close tag is kept as written.  One cut by
        the token cap, ended by EOS or by the think-end tag is closed by the
        engine; a think-end tag is cut off first (its tokens still count), so
        it reaches neither the peers nor the path, which keeps reasoning.
        """
        proto = self.protocol
        summaries: dict[int, str] = {}
        for p, r in zip(paths, results, strict=True):
            kept = r
            if r.stop_string == proto.think_end:
                kept = self._cut(r, r.text.rfind(proto.think_end))
            self.add_model(p, kept, summary=True, spent=len(r.token_ids))
            text = kept.text
            if r.stop_string == proto.summary_close:
                text = text[: text.rfind(proto.summary_close)]
            else:
                self.add_text(p, "prompt", proto.summary_close)
            summaries[p.index] = (p.opening + text).strip()
            p.opening = ""
        return summaries

    def exchange(
        self,
        trace: Trace,
        summaries: dict[int, str],
        readers: list[PathState],
        turn: int,
        rng: random.Random,
    ) -> None:
        """Route among the summaries' writers and give each reader its peers' notes and cue."""
        args = self.leap_args
        routed = (
            route(summaries, args.router, args.top_k, rng, args.hybrid_mode) if summaries else {}
        )
        for p in readers:
            peers = routed.get(p.index, [])
            trace.routing.append(RoutingRecord(turn=turn, path=p.index, peers=peers))
            self.add_text(p, "peer", self.protocol.peer_block([summaries[q] for q in peers]))
            self.add_text(p, "prompt", self.protocol.cue(bool(peers)))

    def leap_block(
        self,
        problem: Problem,
        trace: Trace,
        writers: list[PathState],
        readers: list[PathState],
        turn: int,
        rng: random.Random,
        extra: list[GenerationRequest] | None = None,
    ) -> Generator[list[GenerationRequest], list[GenerationResult], list[GenerationResult]]:
        """One LeaP block: ``writers`` (summary already opened) summarize, ``readers`` read peers.

        ``extra`` requests (e.g. forced answers) ride in the same round; their
        results are returned.
        """
        extra = extra or []
        results = yield self.summary_requests(problem, writers, turn) + extra
        summaries = self.close_summaries(writers, results[: len(writers)])
        self.exchange(trace, summaries, [p for p in readers if not p.finished], turn, rng)
        return results[len(writers) :]

    # -- helpers ---------------------------------------------------------------------

    def _cut(self, result: GenerationResult, chars: int) -> GenerationResult:
        """The longest prefix of ``result``'s ids whose text stays within ``chars`` characters."""
        decode = self._decode
        lo, hi = 0, len(result.token_ids)
        while lo < hi:  # largest k with len(decode(ids[:k])) <= chars
            mid = (lo + hi + 1) // 2
            if len(decode(result.token_ids[:mid])) <= chars:
                lo = mid
            else:
                hi = mid - 1
        ids = result.token_ids[:lo]
        return GenerationResult(ids, decode(ids), result.stop_reason, None)

    def _decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=False)

    def _trim_to_paragraph(self, path: PathState) -> None:
        """Drop the latest chunk's text after its last blank line (an unfinished paragraph)."""
        count, text = path.last_chunk
        at = text.rfind("\n\n")
        if count == 0 or at <= 0:
            return
        chunk = GenerationResult(path.token_ids[len(path.token_ids) - count :], text, "length")
        kept = self._cut(chunk, at)
        drop = count - len(kept.token_ids)
        if drop == 0:
            return
        del path.token_ids[len(path.token_ids) - drop :]
        last = path.record.segments[-1]
        cut_chars = len(text) - len(kept.text)
        path.record.segments[-1] = Segment(last.kind, last.text[: len(last.text) - cut_chars])
        path.last_chunk = (0, "")


class NoProgressError(RuntimeError):
    """A round generated no token and ended no path: the run would loop forever."""


def guard_progress(problem: Problem, run: ProblemRun) -> ProblemRun:
    """Wrap a method's coroutine so that a round without progress raises instead of looping.

    A round makes progress when any result carries a token or ends for a
    reason other than the token cap (EOS, a stop string, a full context).
    """
    try:
        requests = next(run)
    except StopIteration as stop:  # every path ended before its first request (no room at all)
        return stop.value
    while True:
        results = yield requests
        if all(not r.token_ids and r.stop_reason == "length" for r in results):
            raise NoProgressError(
                f"problem {problem.id}: a round of {len(results)} requests generated nothing "
                "and finished no path (does the backend report a full context?)"
            )
        try:
            requests = run.send(results)
        except StopIteration as stop:
            return stop.value


MethodRunner = Callable[[EngineContext, Problem], ProblemRun]


def method_runner(name: str) -> MethodRunner:
    """The ``run`` of registered method ``name``, wrapped so a round without progress raises."""
    run = importlib.import_module(REGISTRY[name].module).run

    def guarded(ctx: EngineContext, problem: Problem) -> ProblemRun:
        return guard_progress(problem, run(ctx, problem))

    return guarded


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
