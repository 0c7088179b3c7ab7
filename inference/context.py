"""Will a path fit in the model's context?  Checked before any model loads.

A LeaP path holds more than its generated-token budget: every LeaP block adds
engine text (trigger, tags, opening, cue) and ``top_k`` peer summaries of up
to ``summary_max_tokens`` each, and the forced answer adds its suffix.  When
``max_model_len`` cannot hold prompt + budget + that overhead, paths end early
with finish ``context`` -- results then differ from the paper's, so the user
hears it before hours of GPU time are spent (``--strict`` makes it an error).

Without a tokenizer the text is estimated at 3 characters per token (English
and LaTeX usually take 3.5-4.5), so the estimate errs on the safe side.

A LeaP-T model opens blocks itself, possibly sooner than every ``T`` tokens,
so its block count is a minimum and the message says so.  The engine never
lets a block (the engine's or the model's) eat the room kept for the forced
answer: near the limit blocks are skipped, which also changes results.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path

from inference.args import EMBEDDED_MODEL, LeapArguments, ModelArguments
from inference.methods import REGISTRY
from inference.problems import Problem
from inference.protocol import Protocol, load_protocol
from leapt.config import ConfigError

logger = logging.getLogger(__name__)

#: characters per token of the estimate (low on purpose: overestimates tokens)
CHARS_PER_TOKEN = 3
#: tokens a chat template adds around the user turn (role markers)
TEMPLATE_TOKENS = 32
#: tokens of a peer label and quotes around one peer summary
PEER_LABEL_TOKENS = 6


def _tokens(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN)


@dataclass(frozen=True)
class ContextNeed:
    """The estimated token count of the longest path, by part."""

    prompt: int
    budget: int
    blocks: int
    per_block: int
    forced: int
    #: the model may open more blocks than ``blocks`` (LeaP-T)
    more_blocks: bool = False

    @property
    def total(self) -> int:
        return self.prompt + self.budget + self.blocks * self.per_block + self.forced


def context_need(
    leap_args: LeapArguments, problems: list[Problem], protocol: Protocol
) -> ContextNeed:
    """Estimate what the longest path of these settings may need."""
    a = leap_args
    announce = protocol.announces(a.method, a.announce)
    longest = max(
        (
            protocol.user_message(p.problem, p.options, a.task, announce)
            + (protocol.prefill if announce else "")
            for p in problems
        ),
        key=len,
        default="",
    )
    prompt = _tokens(longest + (a.system_prompt or "")) + TEMPLATE_TOKENS
    peers = (a.n - 1) if a.router == "all" else min(a.top_k, a.n - 1)
    engine_text = (
        max(map(len, protocol.summary_triggers))
        + len(protocol.summary_open)
        + max(map(len, protocol.summary_openings))
        + len(protocol.summary_close)
        + len(protocol.peer_block([]))
        + max(len(protocol.reflection_cue), len(protocol.no_peers_cue))
    )
    per_block = _tokens(" " * engine_text) + peers * (a.summary_max_tokens + PEER_LABEL_TOKENS)
    method = REGISTRY[a.method]
    blocks = method.blocks(a.max_tokens, a.T, a.max_turns)
    if method.quotes_previous_layer and a.moa_layers > 1:
        prompt += a.n * (a.summary_max_tokens + PEER_LABEL_TOKENS)
    forced = _tokens(protocol.forced_answer(a.task)) + a.forced_answer_tokens
    return ContextNeed(prompt, a.max_tokens, blocks, per_block, forced, method.model_opens_blocks)


def known_max_len(model_args: ModelArguments) -> int | None:
    """``max_model_len`` if set, else ``max_position_embeddings`` of the model's config.json.

    The config is read from a local model folder or, for a Hub id, from the
    Hugging Face cache, fetching the config alone when it is not cached (an
    unknown id is refused here, in one line, before anything loads).
    """
    if model_args.max_model_len is not None:
        return model_args.max_model_len
    if model_args.backend == "openai" or model_args.model == EMBEDDED_MODEL:
        return (
            None  # a server's limit is asked for at load; the embedded model is not converted yet
        )
    config: Path | None = Path(model_args.model).expanduser() / "config.json"
    if not config.is_file():
        from huggingface_hub import try_to_load_from_cache

        try:
            cached = try_to_load_from_cache(model_args.model, "config.json")
        except ValueError:  # not a valid Hub id either
            cached = None
        if not isinstance(cached, str):
            from inference.models import check_hub_model

            cached = check_hub_model(model_args.model)
        config = Path(cached) if isinstance(cached, str) else None
    if config is None:
        return None
    try:
        return json.loads(config.read_text(encoding="utf-8")).get("max_position_embeddings")
    except (OSError, ValueError):
        return None


def check_context_fits(
    model_args: ModelArguments, leap_args: LeapArguments, problems: list[Problem]
) -> ContextNeed | None:
    """Warn (or with ``strict`` raise ConfigError) when a path may outgrow the context."""
    limit = known_max_len(model_args)
    if (
        limit is None
        and problems
        and model_args.backend != "openai"
        and model_args.model != EMBEDDED_MODEL
    ):
        logger.warning(
            "the context length of %s is unknown before loading (its config.json gives no "
            "max_position_embeddings); set 'max_model_len' to check that paths fit",
            model_args.model,
        )
    if limit is None or not problems:
        return None
    need = context_need(leap_args, problems, load_protocol(leap_args.protocol))
    room = limit - need.total
    if room >= 0:
        if need.more_blocks and room < need.per_block:
            logger.warning(
                "max_model_len %d holds a '%s' path of %d blocks (~%d tokens) but no block "
                "more (~%d each); the model opens blocks itself and may write more, which the "
                "engine then skips near the limit",
                *(limit, leap_args.method, need.blocks, need.total, need.per_block),
            )
        return need
    message = (
        f"max_model_len {limit} may not hold a '{leap_args.method}' path: prompt "
        f"~{need.prompt} + budget {need.budget} + LeaP overhead "
        f"~{need.blocks * need.per_block} ({need.blocks} blocks x ~{need.per_block}"
        f"{' or more' if need.more_blocks else ''}) + forced answer ~{need.forced} = "
        f"~{need.total} tokens; paths that fill the context skip their last blocks and end "
        "early with finish 'context' (raise 'max_model_len', or lower 'max_tokens', "
        "'summary_max_tokens' or 'top_k')"
    )
    if model_args.strict:
        raise ConfigError(message)
    logger.warning(message)
    return need
