"""Independent sampling: N paths that never see each other (the baseline).

The same turn loop as LeaP without the exchange, so budget, context and
forced answers follow exactly the same rules.
"""

from __future__ import annotations

from inference.engine import EngineContext, ProblemRun
from inference.methods.leap import peer_loop
from inference.problems import Problem


def run(ctx: EngineContext, problem: Problem) -> ProblemRun:
    """Independent sampling for one problem."""
    return peer_loop(ctx, problem, exchange=False, model_summarizes=False)
