"""A small LeaP run made by the real engine (scripted model text) for the viewer tests.

The scripted model writes distinct summaries, so the router's choices are
meaningful, and hostile text (``<script>``, ``</script>``, an ``<img onerror>``)
in the problem, the reasoning and the summaries, so escaping is exercised in
every place text reaches the page.  One problem is long enough to fold.
"""

from __future__ import annotations

from pathlib import Path

from inference.args import LeapArguments
from inference.problems import Problem
from inference.trace import Trace
from tests.scripted_model import EOS, run_scripted

HOSTILE = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">'
PROBLEMS = [
    Problem("p1", f"What is 2 + 2? {HOSTILE}", "4"),
    Problem("p2", "What is 3 * 5? </script><!-- " + "Think about multiplication. " * 70, "15"),
]
#: what each path writes as its summary; distinct lengths and wording, so similarities differ
SUMMARIES = [
    "I added the numbers and got 4.",
    f"So far: 2 + 2 = 4, checked twice by counting on fingers. {HOSTILE}",
    "Unsure; maybe 5?",
    "The sum of two and two is four, which I verified by a second method and by subtraction.",
]
N, TOP_K = 4, 2


def script(path: int, turn: int, phase: str):
    if phase == "summary":
        return f"{SUMMARIES[path]} (turn {turn}) </summarize>"
    if turn >= 3:
        answer = 4 if path != 2 else 5
        return (f" Done. </think> The answer is \\boxed{{{answer}}}.", EOS)
    if path == 1 and turn == 1:  # opens its summary itself (LeaP-T stops there; others go on)
        return "Turn 1, path 1: time to sum up. <summarize>"
    return f"Turn {turn}, path {path}: let me compute {HOSTILE} carefully. "


def build_run(out_dir: Path, tokenizer_dir: Path, method: str = "leap") -> list[Trace]:
    """Run ``method`` (n=4, top_k=2, dispersed router) on the two problems into ``out_dir``."""
    from eval.grading import make_grader

    leap_args = LeapArguments(method=method, n=N, top_k=TOP_K, T=48, max_tokens=400)
    moa_layer_ids = [f"{p.id}#moa{layer}" for p in PROBLEMS for layer in (1, 2)]
    traces, _ = run_scripted(
        out_dir,
        tokenizer_dir,
        script,
        leap_args,
        PROBLEMS,
        seed_ids=moa_layer_ids,
        grade=make_grader("math"),
    )
    return traces
