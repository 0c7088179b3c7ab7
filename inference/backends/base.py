"""The one small interface every generation backend implements.

The engine owns the token ids of every path and asks a backend to *continue*
them: each request carries the full context as token ids, a token cap, stop
strings and a per-request seed.  Backends never re-tokenize the context, so a
path's ids are exactly what the model saw (no decode -> re-encode drift).

Requests arrive in *groups* (one group = one round of one problem) through
``submit``; ``collect`` hands back whichever groups are complete.  A problem
therefore advances as soon as its own requests return instead of waiting for
every other problem's (a summary round need not wait for another problem's
long reasoning chunk), while the backend keeps many groups in flight to fill
its batch.  Streaming backends share that bookkeeping through
:class:`GroupedBackend`; a backend with only ``generate`` is driven through
:class:`RoundBatcher`: all pending groups in one call, as before.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

StopReason = Literal["stop", "eos", "length", "context"]


@dataclass(frozen=True)
class SamplingSettings:
    """Sampling knobs shared by all requests of a run (paper: 0.6 / 0.95 / 40)."""

    temperature: float = 0.6
    top_p: float = 0.95
    top_k: int = 40
    min_p: float = 0.0


@dataclass
class GenerationRequest:
    """Continue ``token_ids`` by at most ``max_tokens`` tokens.

    ``stop`` strings end generation *including* the stop string in the output
    (the engine needs ``</summarize>`` or ``</think>`` in the path); ``seed``
    is distinct per path and turn so N identical prompts still give N samples.
    ``path_key`` names the path the request continues: each request of a path
    extends the previous one's context, so a data-parallel backend sends all
    of them to one model copy, whose prefix cache holds that context.
    """

    token_ids: list[int]
    max_tokens: int
    stop: list[str] = field(default_factory=list)
    seed: int = 0
    path_key: str = ""


@dataclass
class GenerationResult:
    """New tokens for one request and why generation ended.

    ``stop_reason`` is ``"stop"`` when a stop string was produced (then
    ``stop_string`` names it and ``text``, the decoding of ``token_ids``,
    contains it; the last token may carry a few characters past it), ``"eos"`` when the
    model emitted its end-of-sequence token (not included in ``token_ids``),
    ``"length"`` when ``max_tokens`` ran out, and ``"context"`` when the
    context reached the model's length limit first (possibly with no new
    token): the path cannot grow any more, so the engine must end it.
    """

    token_ids: list[int]
    text: str
    stop_reason: StopReason
    stop_string: str | None = None


class Backend(Protocol):
    """What the engine needs from a model server or library."""

    #: a Hugging Face tokenizer with the model's chat template
    tokenizer: object
    #: a short name used in traces (Hub id or path)
    model_name: str

    def generate(
        self, requests: list[GenerationRequest], sampling: SamplingSettings
    ) -> list[GenerationResult]:
        """Run all ``requests`` (in any internal order); results align with requests."""
        ...

    def close(self) -> None:
        """Release the model and any server or worker processes."""
        ...


@dataclass
class TokenCounts:
    """Tokens a backend computed, kept as running totals (read before and after a workload).

    ``prefilled`` counts prompt tokens whose keys/values the model computed,
    ``cached`` those served from a prefix cache instead (KV reuse, vLLM's prefix
    caching), ``decoded`` the tokens sampled (an end-of-sequence token included,
    though results leave it out).  So ``prefilled + cached`` is the length of every
    prompt that reached the model, and the time of a run can be priced per token.
    """

    prefilled: int = 0
    cached: int = 0
    decoded: int = 0


#: a finished group: the key it was submitted with and its results, aligned with its requests
Done = tuple[Hashable, list[GenerationResult]]


class Submitter(Protocol):
    """Streaming submission: groups of requests go in, complete groups come out."""

    def submit(
        self, key: Hashable, requests: list[GenerationRequest], sampling: SamplingSettings
    ) -> None:
        """Queue one group of requests under ``key`` (returns at once)."""
        ...

    def collect(self) -> list[Done]:
        """Block until at least one submitted group is complete; return every complete group."""
        ...


class RoundBatcher:
    """A ``generate``-only backend as a Submitter: ``collect`` runs all pending groups in one call."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.pending: list[tuple[Hashable, list[GenerationRequest], SamplingSettings]] = []

    def submit(
        self, key: Hashable, requests: list[GenerationRequest], sampling: SamplingSettings
    ) -> None:
        if self.pending and sampling != self.pending[0][2]:
            raise ValueError("one round may not mix sampling settings")
        self.pending.append((key, requests, sampling))

    def collect(self) -> list[Done]:
        if not self.pending:
            raise RuntimeError("collect() with nothing submitted")
        groups, self.pending = self.pending, []
        results = self.backend.generate([r for _, reqs, _ in groups for r in reqs], groups[0][2])
        done, offset = [], 0
        for key, reqs, _ in groups:
            done.append((key, results[offset : offset + len(reqs)]))
            offset += len(reqs)
        return done


def submitter(backend: Backend) -> Submitter:
    """The backend itself when it streams (has ``submit``/``collect``), else a RoundBatcher."""
    if hasattr(backend, "submit") and hasattr(backend, "collect"):
        return backend  # type: ignore[return-value]
    return RoundBatcher(backend)


def generate_all(
    backend: Submitter, requests: list[GenerationRequest], sampling: SamplingSettings
) -> list[GenerationResult]:
    """``generate`` for a streaming backend: one group, waited for (nothing else in flight)."""
    key = object()
    backend.submit(key, requests, sampling)
    while True:
        for done_key, results in backend.collect():
            if done_key is not key:
                raise RuntimeError("generate() called while other groups were in flight")
            return results


class GroupedBackend:
    """What every streaming backend shares: ``generate``, ``submit`` and ``collect`` over groups.

    A subclass only starts one request on its model (:meth:`_start`) and waits
    for some to end (:meth:`_wait`), filling in results with :meth:`_finish`.
    Requests that cannot produce a token are answered here without the model,
    the same way for every backend: a context already at ``max_model_len``
    (``"context"``) and a cap of no tokens (``"length"``).
    """

    tokenizer: Any
    model_name: str
    #: context limit in tokens, when the backend knows one
    max_model_len: int | None

    def __init__(self) -> None:
        #: tokens the model computed so far (requests answered without the model count nothing)
        self.counts = TokenCounts()
        #: each group in flight: its results, aligned with its requests (None while running)
        self.groups: dict[Hashable, list[GenerationResult | None]] = {}

    def generate(
        self, requests: list[GenerationRequest], sampling: SamplingSettings
    ) -> list[GenerationResult]:
        """Run ``requests`` as one group and wait for it; results align with requests."""
        return generate_all(self, requests, sampling)

    def submit(
        self, key: Hashable, requests: list[GenerationRequest], sampling: SamplingSettings
    ) -> None:
        """Queue one group under ``key``: start each request that can run (returns at once)."""
        if key in self.groups:
            raise ValueError(f"group {key!r} is already in flight")
        self.groups[key] = [None] * len(requests)
        for slot, request in enumerate(requests):
            if self.max_model_len is not None and len(request.token_ids) >= self.max_model_len:
                # the model would reject the request: tell the engine the path cannot grow
                self._finish(key, slot, GenerationResult([], "", "context"))
            elif request.max_tokens < 1:
                self._finish(key, slot, GenerationResult([], "", "length"))
            else:
                self._start(key, slot, request, sampling)

    def collect(self) -> list[Done]:
        """Wait until at least one group is complete; return every complete group."""
        if not self.groups:
            raise RuntimeError("collect() with nothing submitted")
        while True:
            done = [k for k, results in self.groups.items() if all(r is not None for r in results)]
            if done:
                return [(k, self.groups.pop(k)) for k in done]  # type: ignore[misc]
            self._wait()

    def _finish(self, key: Hashable, slot: int, result: GenerationResult) -> None:
        self.groups[key][slot] = result

    def _start(
        self, key: Hashable, slot: int, request: GenerationRequest, sampling: SamplingSettings
    ) -> None:
        """Begin generating ``request``; its result goes to ``_finish(key, slot, ...)``."""
        raise NotImplementedError

    def _wait(self) -> None:
        """Block until at least one started request has been finished."""
        raise NotImplementedError
