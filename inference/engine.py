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
    Done,
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
from leapt.chat import use_chat_template

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
    #: the problem and path this is, stable across turns (``GenerationRequest.path_key``)
    key: str = ""
    record: PathRecord = field(default_factory=PathRecord)
    #: the model closed its reasoning (think-end tag); it now writes the answer, with no LeaP blocks
    answering: bool = False
    #: the backend could not grow the path: its context reached the model's limit
    context_full: bool = False
    #: how the path ends once its forced answer comes back (``forced`` or ``context``)
    closing: Finish | None = None
    #: ids count and text of the reasoning the model wrote since the engine last wrote
    #: (one chunk, or several when blocks were skipped): what a trim may cut, and where
    #: a stop string split across two chunks is looked for
    model_run: tuple[int, str] = (0, "")
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
        use_chat_template(self.tokenizer, self.leap_args.chat_template)
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
            self.tokenizer,
            problem.problem,
            problem.options,
            self.leap_args.task,
            self.announce,
            self.leap_args.system_prompt,
        )
        prefill = self.protocol.assistant_prefill(self.announce)
        ids = self.encode(prompt) + (self.encode(prefill) if prefill else [])
        paths = []
        for i in range(self.leap_args.n if n is None else n):
            state = PathState(i, list(ids), key=f"{problem.id}\x1f{i}")
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
        path.model_run = (0, "")

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

    def block_fits(self, path: PathState, engine_opened: bool = True) -> bool:
        """Whether a whole LeaP block (its text, summary and peers' notes) fits in the context.

        Near the end of the context a path skips its blocks and reasons on, so
        that the peers' notes never push it past the room kept for its answer.
        A block the model opened itself (``engine_opened=False``) needs no
        trigger, tag or opening from the engine: the model already wrote its tag.
        """
        if self.max_context is None:
            return self.can_grow(path)
        return self.can_grow(path) and self.headroom(path) > self._block_tokens(engine_opened)

    def _block_tokens(self, engine_opened: bool) -> int:
        """An upper bound on the tokens one LeaP block adds to a path."""
        key = f"block-{engine_opened}"
        if key not in self._cache:
            a, proto = self.leap_args, self.protocol
            peers = a.n - 1 if a.router == "all" else min(a.top_k, a.n - 1)
            opened = (
                max(map(self._len, proto.summary_triggers))
                + self._len(proto.summary_open)
                + max(map(self._len, proto.summary_openings))
                if engine_opened
                else 0
            )
            note = max(map(self._len, proto.summary_openings)) + a.summary_max_tokens
            label = self._len(proto.peer_label.format(i=a.n)) + 4  # label, colon, quotes, newline
            self._cache[key] = (
                opened
                + self._len(proto.summary_close)
                + a.summary_max_tokens
                + self._len(proto.peer_block([]))
                + peers * (note + label)
                + max(self._len(proto.reflection_cue), self._len(proto.no_peers_cue))
            )
        return self._cache[key]

    def _len(self, text: str) -> int:
        return len(self.encode(text))

    def cap(self, path: PathState, tokens: int) -> int:
        """``tokens`` limited by the path's budget and context headroom (at least 1)."""
        return max(1, min(tokens, self.remaining(path), self.headroom(path)))

    def request(self, path: PathState, max_tokens: int, stop: list[str], seed: int):
        return GenerationRequest(list(path.token_ids), max_tokens, list(stop), seed, path.key)

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

    def record_reasoning(
        self, path: PathState, result: GenerationResult, stop: list[str]
    ) -> GenerationResult:
        """Append a reasoning/answer chunk, update how the path stands, return what was kept.

        R1-style models write their final answer *after* the think-end tag, so
        that tag does not end a path: it starts the answer phase, which runs
        without LeaP blocks until EOS (finish ``think_end``).  A path whose
        budget or context runs out, in either phase, gets its forced answer
        from :meth:`force_answers` in the next round.

        A backend matches ``stop`` strings only inside the new tokens, so a
        multi-token tag split across two chunks (``<summ`` | ``arize>``) is
        found here: the chunk is cut right after the tag and recorded as
        stopped by it (the tokens past it still count against the budget).
        """
        kept = result
        spanning = None if path.answering else self._stop_across(path, result, stop)
        if spanning is not None:
            end, tag = spanning
            kept = self._through(result, end, tag)
        self.add_model(path, kept, spent=len(result.token_ids))
        count, text = path.model_run
        path.model_run = (count + len(kept.token_ids), text + kept.text)
        if not path.answering:
            path.chunks += 1
        if kept.stop_reason == "eos":
            path.finish("think_end" if path.answering else "eos")
        elif not path.answering and kept.stop_string == self.protocol.think_end:
            path.answering = True
        return kept

    def _stop_across(
        self, path: PathState, result: GenerationResult, stop: list[str]
    ) -> tuple[int, str] | None:
        """A stop string begun in the path's previous chunk and finished in ``result``.

        Returns where it ends in ``result.text`` (characters) and which it is;
        it comes before any stop the backend found inside the new text.
        """
        before = path.model_run[1]
        hits = []
        for tag in stop:
            tail = before[max(0, len(before) - len(tag) + 1) :]
            at = (tail + result.text).find(tag)
            if tail and 0 <= at < len(tail):
                hits.append((at, tag, at + len(tag) - len(tail)))
        if not hits:
            return None
        _, tag, end = min(hits)
        return end, tag

    def self_opened(self, problem: Problem, path: PathState, turn: int) -> bool:
        """The model wrote the opening summarize tag itself: start its block, or skip it.

        ``self_summary_mode`` ``keep``: the model's tag opens the block and its
        summary follows the tag.  ``authors`` (as the authors' code): the tag
        only ended the chunk; it is cut with the unfinished paragraph and the
        engine opens the block exactly as at the end of a chunk (trigger,
        tag, opening), so the early stop is one turn like any other.  A block
        that no longer fits the context is skipped as the engine's own are:
        the model's tag is cut and the path reasons on, keeping the room for
        its answer.  Returns whether the path now writes a summary.

        The authors cut back to the last blank line anywhere in the text; here
        the cut stays within the model's latest text (without a blank line in
        it, only the tag goes), so engine and peer text are never cut.
        """
        authors = self.leap_args.self_summary_mode == "authors"
        if authors or not self.block_fits(path, engine_opened=False):
            self._cut_run(path, path.model_run[1].rfind(self.protocol.summary_open))
            if not (authors and self.block_fits(path)):
                return False
            self._trim_to_paragraph(path)
            self._write_opening(problem, path, turn)
        return True

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
        self._write_opening(problem, path, turn)

    def _write_opening(self, problem: Problem, path: PathState, turn: int) -> None:
        """The engine's part of a block's start: a trigger, the summarize tag and an opening."""
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

    def _through(self, result: GenerationResult, chars: int, tag: str) -> GenerationResult:
        """The shortest prefix of ``result``'s ids whose text reaches ``chars``, stopped by ``tag``."""
        decode = self._decode
        lo, hi = 0, len(result.token_ids)
        while lo < hi:  # smallest k with len(decode(ids[:k])) >= chars
            mid = (lo + hi) // 2
            if len(decode(result.token_ids[:mid])) >= chars:
                hi = mid
            else:
                lo = mid + 1
        ids = result.token_ids[:lo]
        return GenerationResult(ids, decode(ids), "stop", tag)

    def _decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=False)

    def _trim_to_paragraph(self, path: PathState) -> None:
        """Drop the model's latest text after its last blank line (an unfinished paragraph)."""
        at = path.model_run[1].rfind("\n\n")
        if at > 0:
            self._cut_run(path, at)

    def _cut_run(self, path: PathState, chars: int) -> None:
        """Keep only the first ``chars`` characters of the model's latest text (no-op if < 0)."""
        count, text = path.model_run
        if count == 0 or chars < 0:
            return
        run = GenerationResult(path.token_ids[len(path.token_ids) - count :], text, "length")
        kept = self._cut(run, chars)
        drop = count - len(kept.token_ids)
        if drop:
            del path.token_ids[len(path.token_ids) - drop :]
            last = path.record.segments[-1]
            cut_chars = len(text) - len(kept.text)
            path.record.segments[-1] = Segment(last.kind, last.text[: len(last.text) - cut_chars])
        path.model_run = (len(kept.token_ids), kept.text)


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


class Scheduler:
    """The streaming core of :func:`run_problems`, open to problems that arrive while it runs.

    Each started problem is one coroutine whose rounds go to the backend as
    groups (see :class:`~inference.backends.base.Submitter`); :meth:`step`
    waits for some groups to complete and advances their problems, which
    submit their next round at once.  ``leapt infer`` feeds it a fixed list;
    ``leapt serve`` starts problems as requests arrive and cancels those whose
    client went away, so requests batch together exactly as the problems of
    one run do.  Every problem brings its own sampling settings, and results
    do not depend on what shares the batch: each request carries its own seed.
    """

    def __init__(self, backend: Backend) -> None:
        self.backend = submitter(backend)
        #: problems in flight: their coroutine, sampling and what to call with the trace
        self.active: dict[int, tuple[ProblemRun, SamplingSettings, Callable[[Trace], None]]] = {}
        #: groups submitted and not yet collected (a cancelled problem's may still be here)
        self.in_flight: set[int] = set()
        self._keys = itertools.count()

    def start(
        self, run: ProblemRun, sampling: SamplingSettings, on_done: Callable[[Trace], None]
    ) -> int:
        """Admit one problem and submit its first round; returns its key (for :meth:`cancel`)."""
        key = next(self._keys)
        self.active[key] = (run, sampling, on_done)
        self._advance(key, None)
        return key

    def cancel(self, key: int) -> None:
        """Drop a problem: it submits no further round, and its round in flight is discarded."""
        entry = self.active.pop(key, None)
        if entry is not None:
            entry[0].close()

    def step(self) -> list[Done]:
        """Wait for at least one group to complete; advance its problem. Returns the groups."""
        done = self.backend.collect()
        for key, results in done:
            self.in_flight.discard(key)
            if key in self.active:
                self._advance(key, results)
        return done

    def _advance(self, key: int, results: list[GenerationResult] | None) -> None:
        run, sampling, on_done = self.active[key]
        try:
            requests = next(run) if results is None else run.send(results)
        except StopIteration as stop:
            del self.active[key]
            on_done(stop.value)
            return
        if not requests:
            raise RuntimeError("a method yielded an empty round")
        self.backend.submit(key, requests, sampling)
        self.in_flight.add(key)


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
    scheduler = Scheduler(ctx.backend)
    waiting = deque(problems)
    while waiting or scheduler.active:
        while waiting and len(scheduler.active) < max_concurrent:
            scheduler.start(runner(ctx, waiting.popleft()), ctx.sampling, on_done)
        if not scheduler.active:
            continue
        done = scheduler.step()
        if on_round is not None:
            on_round(len(scheduler.active), sum(len(results) for _, results in done))
