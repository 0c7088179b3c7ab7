"""The one small interface every generation backend implements.

The engine owns the token ids of every path and asks a backend to *continue*
them: each request carries the full context as token ids, a token cap, stop
strings and a per-request seed.  Backends never re-tokenize the context, so a
path's ids are exactly what the model saw (no decode -> re-encode drift), and
all requests of a round (all paths of all active problems) arrive in one call
so a batching backend can keep its batch full.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

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
    """

    token_ids: list[int]
    max_tokens: int
    stop: list[str] = field(default_factory=list)
    seed: int = 0


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
