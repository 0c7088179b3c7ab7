"""How big is the viewer page of a paper-sized run, and does it stay usable?

Writes a synthetic ``traces.jsonl`` in the real trace schema (``--num_problems``
problems x ``--n`` paths x ``--tokens`` tokens each, a LeaP block every
``--T`` tokens with ``--top_k`` routed peers, ~4 characters a token), builds the
``leapt view`` page, and prints its size and build time.  With ``--browser``
it also opens the page in headless chromium and prints how long the page takes
to be ready (problem list + first problem rendered) and to switch problems.
Outputs go to a temporary folder (or ``--keep DIR``).

    python benchmarks/viewer_size.py --num_problems 30 --n 32 --tokens 16384 --browser
"""

from __future__ import annotations

import random
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

WORDS = [
    "so",
    "we",
    "get",
    "then",
    "the",
    "sum",
    "of",
    "x",
    "and",
    "y",
    "is",
    "equal",
    "to",
    "12",
    "wait",
    "let",
    "me",
    "check",
    "again",
    "because",
]


def _text(rng: random.Random, tokens: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(tokens))  # ~4 characters per word


@dataclass
class ViewerSizeArguments:
    """The synthetic run's size, and whether to time the page in a browser."""

    num_problems: int = 30
    n: int = 32
    tokens: int = 16384
    T: int = 4096
    top_k: int = 4
    summary_tokens: int = 200
    browser: bool = field(default=False, metadata={"help": "also time the page in chromium"})
    keep: str | None = field(
        default=None, metadata={"help": "write into this folder instead of a temporary one"}
    )


def synthetic_trace(index: int, args: ViewerSizeArguments, rng: random.Random):
    from inference.protocol import load_protocol
    from inference.routing import route
    from inference.trace import PathRecord, RoutingRecord, Segment, Trace

    proto = load_protocol()
    paths = [
        PathRecord(segments=[Segment("prompt", f"Problem {index}: " + _text(rng, 80))])
        for _ in range(args.n)
    ]
    routing = []
    turns = max(1, args.tokens // args.T)
    for turn in range(1, turns):
        summaries = {k: _text(rng, args.summary_tokens) for k in range(args.n)}
        routed = route(summaries, "dispersed", args.top_k, rng)
        for k, path in enumerate(paths):
            path.segments += [
                Segment("model", _text(rng, args.T)),
                Segment("prompt", proto.summary_request()),
                Segment("model", summaries[k] + proto.summary_close),
                Segment("peer", proto.peer_block([summaries[q] for q in routed[k]])),
                Segment("prompt", proto.reflection_cue),
            ]
            routing.append(RoutingRecord(turn=turn, path=k, peers=routed[k]))
    for k, path in enumerate(paths):
        path.segments.append(Segment("model", _text(rng, args.T) + f" \\boxed{{{k % 3}}}"))
        path.final_answer, path.correct = str(k % 3), k % 3 == 0
        path.generated_tokens, path.finish = args.tokens, "think_end"
    config = {
        "method": "leap",
        "n": args.n,
        "T": args.T,
        "top_k": args.top_k,
        "router": "dispersed",
    }
    return Trace(
        id=f"q{index}",
        problem=f"Problem {index}",
        answer="0",
        config=config,
        model="synthetic",
        paths=paths,
        routing=routing,
    )


def main() -> None:
    from leapt.config import parse_config

    (args,) = parse_config(
        (ViewerSizeArguments,), None, "benchmarks/viewer_size.py", __doc__.split("\n\n")[0]
    )

    from eval.viewer.cli import load_groups
    from eval.viewer.page import write_page
    from inference.trace import TraceFile

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(args.keep or tmp)
        rng = random.Random(0)
        traces = TraceFile(out / "run" / "traces.jsonl")
        for i in range(args.num_problems):
            traces.append(synthetic_trace(i, args, rng))
        print(f"traces.jsonl: {traces.path.stat().st_size / 1e6:.1f} MB")
        start = time.perf_counter()
        size = write_page(load_groups(out / "run"), out / "view.html", "synthetic")
        print(f"page: {size / 1e6:.1f} MB, built in {time.perf_counter() - start:.1f} s")
        if args.browser:
            _time_in_browser(out)


def _time_in_browser(out: Path) -> None:
    from tests.browser import Chromium

    with Chromium(out, wait=600) as chrome:
        start = time.perf_counter()
        chrome.open((out / "view.html").as_uri())
        print(f"browser: problem list + first problem ready in {time.perf_counter() - start:.1f} s")
        cells = chrome.evaluate("document.querySelectorAll('.cell').length")
        nodes = chrome.evaluate("document.getElementsByTagName('*').length")
        print(f"browser: first problem shows {cells} cells, {nodes} DOM elements in the page")
        ms = chrome.evaluate(
            "(() => { const t = performance.now();"
            " document.querySelectorAll('#problems tbody tr')[1].click();"
            " document.body.offsetHeight; return performance.now() - t; })()"
        )
        print(f"browser: switching to another problem (parse + render + layout): {ms:.0f} ms")
        ms = chrome.evaluate(
            "(() => { const t = performance.now(); const s = document.querySelector('#search');"
            " s.value = 'q1'; s.dispatchEvent(new Event('input')); return performance.now() - t; })()"
        )
        print(f"browser: filtering the problem list: {ms:.0f} ms")
        print(f"browser: page errors: {chrome.errors or 'none'}")


if __name__ == "__main__":
    main()
