"""The inference methods, one module each, and the one registry that describes them.

A method is a module with ``run(ctx, problem) -> ProblemRun``: a per-problem
coroutine driven by :func:`inference.engine.run_problems`, built from the
steps :class:`inference.engine.EngineContext` shares (force answers, one
LeaP block, close a summary).  Adding a method means writing its module and
adding its :class:`Method` entry here: the entry holds every fact other code
needs about the method (option checks, the context estimate), so no other
module names methods.  This registry imports nothing: the engine imports a
method's module only when a run asks for it (:func:`inference.engine.method_runner`),
so ``inference.args`` and ``inference.context`` read the facts without importing the engine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Method:
    """One method's module and the facts the option checks and context estimate need."""

    #: module holding the method's ``run``
    module: str
    #: its paths read routed peer summaries, so ``top_k`` must leave a peer besides the path itself
    routed: bool = False
    #: LeaP blocks in one path: one every ``T`` tokens, a single one, or none
    leap_blocks: Literal["every_T", "once", "none"] = "none"
    #: with more than one layer, a later layer's prompt quotes the ``n`` previous conclusions
    quotes_previous_layer: bool = False
    #: the model may open a block itself before ``T`` tokens (LeaP-T), so ``blocks`` is a minimum
    model_opens_blocks: bool = False

    def blocks(self, max_tokens: int, T: int, max_turns: int | None = None) -> int:
        """How many LeaP blocks the longest path of a ``max_tokens`` budget holds at the
        engine's pace (one every ``T`` tokens; more when ``model_opens_blocks``).

        ``max_turns`` caps them: a block between two turns, one after a single turn.
        """
        if self.leap_blocks == "every_T":
            blocks = math.ceil(max_tokens / T)
            return blocks if max_turns is None else min(blocks, max(1, max_turns - 1))
        return 1 if self.leap_blocks == "once" else 0


#: method name -> its entry, in the order reports show them (baseline first)
REGISTRY: dict[str, Method] = {
    "independent": Method("inference.methods.independent"),
    "leap": Method("inference.methods.leap", routed=True, leap_blocks="every_T"),
    "leap_t": Method(
        "inference.methods.leap_t", routed=True, leap_blocks="every_T", model_opens_blocks=True
    ),
    "leap_s": Method("inference.methods.leap_s", routed=True, leap_blocks="once"),
    "moa": Method("inference.methods.moa", quotes_previous_layer=True),
}
