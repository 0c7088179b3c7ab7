"""LeaP-T: LeaP run on a model trained to summarize on its own.

As :mod:`inference.methods.leap`, and a model-written ``<summarize>`` starts
a LeaP block right there (no trigger sentence: the model opened it).  By
default its prompt does not announce the protocol: the trained model already
knows the format.
"""

from __future__ import annotations

from inference.engine import EngineContext, ProblemRun
from inference.methods.leap import peer_loop
from inference.problems import Problem


def run(ctx: EngineContext, problem: Problem) -> ProblemRun:
    """LeaP-T for one problem."""
    return peer_loop(ctx, problem, exchange=True, model_summarizes=True)
