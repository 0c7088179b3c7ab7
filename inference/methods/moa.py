"""Mixture-of-Agents baseline: layers of agents reading the previous layer's answers.

Layer 1 is plain independent sampling (``n`` agents).  Each later layer runs
``n`` fresh agents whose question is followed by the *conclusions* of every
agent of the layer before (the text after the think-end tag, or else the
extracted final answer), each cut to ``summary_max_tokens`` tokens and quoted
in the protocol's peer block.  The last layer's agents are the graded paths.

Every layer is driven by the same engine loop as ``independent`` (budget,
forced answers, seeds), so no generation logic is duplicated here.  In the
trace the quoted conclusions are a ``peer`` segment, and each final path's
``generated_tokens`` also counts an equal share of the earlier layers' tokens
so that per-problem totals include all the compute spent.
"""

from __future__ import annotations

import dataclasses
from functools import lru_cache
from pathlib import Path

from inference.answers import answer_text, extract_answer
from inference.engine import EngineContext, ProblemRun
from inference.methods.independent import run as run_independent
from inference.problems import Problem
from inference.trace import PathRecord, Segment, Trace
from leapt.config import load_yaml

WORDING_FILE = Path(__file__).with_name("moa.yaml")


@lru_cache(maxsize=1)
def wording() -> dict[str, str]:
    """The MoA sentences (packaged ``moa.yaml``)."""
    return load_yaml(WORDING_FILE, "MoA wording file")


def conclusion(ctx: EngineContext, path: PathRecord) -> str:
    """What an agent concluded: its text after the think-end tag, else its extracted answer.

    Only conclusions are passed on: whole reasoning traces of ``n`` agents would
    not fit in the next layer's context.
    """
    text = answer_text(path)
    after_think = (
        text.split(ctx.protocol.think_end)[-1].strip() if ctx.protocol.think_end in text else ""
    )
    if after_think:
        text = after_think
    else:
        answer = extract_answer(text, ctx.leap_args.task)
        text = wording()["no_conclusion"] if answer is None else answer
    ids = ctx.encode(text)
    cap = ctx.leap_args.summary_max_tokens
    return (
        ctx.tokenizer.decode(ids[:cap], skip_special_tokens=True).strip()
        if len(ids) > cap
        else text
    )


def _label_peer_text(trace: Trace, block: str) -> None:
    """Split each path's first prompt segment so the quoted answers are marked ``peer``."""
    for path in trace.paths:
        first = path.segments[0]
        at = first.text.find(block)
        if first.kind != "prompt" or at < 0:
            continue
        path.segments[:1] = [
            Segment("prompt", first.text[:at]),
            Segment("peer", block),
            Segment("prompt", first.text[at + len(block) :]),
        ]


def run(ctx: EngineContext, problem: Problem) -> ProblemRun:
    """Mixture-of-Agents for one problem (see the module docstring)."""
    layer_problem = dataclasses.replace(problem, id=f"{problem.id}#moa1")
    trace = yield from run_independent(ctx, layer_problem)
    spent = 0
    for layer in range(2, ctx.leap_args.moa_layers + 1):
        spent += sum(p.generated_tokens for p in trace.paths)
        block = ctx.protocol.peer_block([conclusion(ctx, p) for p in trace.paths])
        layer_problem = dataclasses.replace(
            problem,
            id=f"{problem.id}#moa{layer}",
            problem=f"{problem.problem}\n\n{wording()['previous_answers_intro']}{block}",
        )
        trace = yield from run_independent(ctx, layer_problem)
        _label_peer_text(trace, block)
    share, extra = divmod(spent, len(trace.paths))
    for i, path in enumerate(trace.paths):
        path.generated_tokens += share + (1 if i < extra else 0)
    trace.id, trace.problem = problem.id, problem.problem
    return trace
