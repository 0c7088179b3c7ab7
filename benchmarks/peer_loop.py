"""What does LeaP's peer loop cost compared with what it generates and what the backend can do?

One process, one fixed seed, one backend (``--backend hf|vllm``), one model
(the embedded SmolLM2-135M by default, ``--model tiny`` for a tiny Qwen2 built
on the spot, or ``--model DIR``), P problems x N paths, four workloads side by side:

(a) ``leap``: ``leapt infer``'s own path (``run_inference``, traces streamed to disk);
(b) independent sampling made to generate exactly as many tokens per path as
    (a), in the same chunks of T: what LeaP would cost if its exchange were free;
(c) the published implementation's pattern, written here as the reference:
    every path's full text re-sent (and re-tokenized) each turn, a global
    barrier per turn across all problems, the engine fed micro-batches of 16;
(d) the limit: the backend generating as many tokens in one plain batched call.

For each it prints generated tokens, seconds, tokens/s and the peak RSS of the
process tree, then the ratios.  The workloads generate slightly different token
counts (EOS comes when it comes), so time ratios are of seconds per generated
token.  ``--json`` ends the output with one JSON line.  ``--serial`` adds (a)
with one problem in flight at a time (what keeping many problems' rounds in
flight together buys).  Outputs go to a temporary folder and are thrown away.

    python benchmarks/peer_loop.py --backend hf --num_problems 8 --n 4 --json
"""

from __future__ import annotations

import contextlib
import json
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from inference.args import LeapArguments, ModelArguments  # noqa: E402
from inference.backends.base import GenerationRequest, SamplingSettings  # noqa: E402
from leapt.config import parse_config  # noqa: E402

#: micro-batch the reference implementation feeds its engine
NAIVE_MICRO_BATCH = 16


class PeakRSS:
    """Peak resident memory of this process and its children (vLLM's engine core), sampled."""

    def __init__(self, interval: float = 0.1):
        import psutil

        self.process, self.interval, self.peak = psutil.Process(), interval, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _rss(self) -> int:
        total = 0
        for proc in [self.process, *self.process.children(recursive=True)]:
            with contextlib.suppress(Exception):  # a child that just exited
                total += proc.memory_info().rss
        return total

    def _watch(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._rss())
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakRSS:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._rss())


def measure(label: str, work: Callable[[], int]) -> dict[str, Any]:
    """Run ``work`` (returns generated tokens) and record time, tokens/s and peak RSS."""
    with PeakRSS() as rss:
        start = time.perf_counter()
        tokens = work()
        seconds = time.perf_counter() - start
    row = {
        "label": label,
        "tokens": tokens,
        "seconds": round(seconds, 2),
        "tokens_per_s": round(tokens / seconds, 1),
        "peak_rss_mb": round(rss.peak / 2**20),
    }
    print(
        f"  {label:<32} {tokens:6d} tok {seconds:8.1f} s {row['tokens_per_s']:7.1f} tok/s "
        f"peak RSS {row['peak_rss_mb']:6d} MB",
        flush=True,
    )
    return row


def run_leap(backend, leap_args: LeapArguments, problems, out: Path, concurrent: int | None):
    """(a): the real ``run_inference``; returns its traces for (b)'s per-path budgets."""
    from inference.run import run_inference
    from inference.trace import read_traces

    run_inference(
        ModelArguments(),
        leap_args,
        problems,
        out,
        backend=backend,
        progress=False,
        concurrent_problems=concurrent,
    )
    return read_traces(out / "traces.jsonl")


def run_matched_independent(backend, leap_args: LeapArguments, problems, budgets) -> int:
    """(b): each path generates exactly its (a) token count in chunks of T, no exchange.

    An EOS before the budget is kept in the context and sampling goes on, so
    the token count matches (a) whatever the model does.
    """
    from inference.engine import EngineContext, run_problems
    from inference.protocol import load_protocol

    ctx = EngineContext(backend, load_protocol(leap_args.protocol), leap_args)
    eos = backend.tokenizer.eos_token_id
    total = 0

    def runner(_ctx, problem):
        paths = ctx.new_paths(problem)
        left = list(budgets[problem.id])
        turn = 0
        while any(left):
            turn += 1
            live = [p for p in paths if left[p.index] > 0]
            requests = [
                GenerationRequest(
                    list(p.token_ids),
                    min(leap_args.T, left[p.index]),
                    [],
                    ctx.seed(problem, p.index, turn, "reason"),
                )
                for p in live
            ]
            results = yield requests
            for p, r in zip(live, results, strict=True):
                ids = r.token_ids + ([eos] if r.stop_reason == "eos" else [])
                p.token_ids.extend(ids)
                left[p.index] = max(0, left[p.index] - len(ids))
        return ctx.new_trace(problem, paths)

    def on_done(trace) -> None:
        nonlocal total
        total += sum(budgets[trace.id])

    run_problems(problems, runner, ctx, on_done, max_concurrent=len(problems))
    return total


def run_naive(backend, leap_args: LeapArguments, problems) -> int:
    """(c): the reference pattern: text re-sent and re-tokenized, global barriers, batches of 16."""
    from inference.protocol import load_protocol

    proto = load_protocol(leap_args.protocol)
    tok = backend.tokenizer
    sampling = SamplingSettings(
        leap_args.temperature, leap_args.top_p, leap_args.sampling_top_k, leap_args.min_p
    )
    prompts = {
        p.id: proto.build_prompt(tok, p.problem, p.options, leap_args.task) for p in problems
    }
    paths = [  # [problem id, path index, full text, generated tokens, done]
        [p.id, i, prompts[p.id], 0, False] for p in problems for i in range(leap_args.n)
    ]

    def call(batch: list[list], caps: list[int], stop: list[str]) -> list:
        results = []
        for start in range(0, len(batch), NAIVE_MICRO_BATCH):
            chunk = batch[start : start + NAIVE_MICRO_BATCH]
            requests = [
                GenerationRequest(tok.encode(path[2], add_special_tokens=False), cap, stop, seed)
                for seed, (path, cap) in enumerate(zip(chunk, caps[start:], strict=False))
            ]
            results += backend.generate(requests, sampling)
        return results

    turn = 0
    while any(not p[4] for p in paths):
        turn += 1
        live = [p for p in paths if not p[4]]
        caps = [min(leap_args.T, leap_args.max_tokens - p[3]) for p in live]
        for p, r in zip(live, call(live, caps, [proto.think_end]), strict=True):
            p[2] += tok.decode(r.token_ids)
            p[3] += len(r.token_ids)
            p[4] = r.stop_reason != "length" or p[3] >= leap_args.max_tokens
        live = [p for p in live if not p[4]]
        if not live:
            break
        for p in live:
            p[2] += proto.summary_request()
        caps = [
            max(1, min(leap_args.summary_max_tokens, leap_args.max_tokens - p[3])) for p in live
        ]
        summaries: dict[tuple[str, int], str] = {}
        for p, r in zip(live, call(live, caps, [proto.summary_close]), strict=True):
            text = tok.decode(r.token_ids)
            p[2] += text if r.stop_reason == "stop" else text + proto.summary_close
            p[3] += len(r.token_ids)
            summaries[(p[0], p[1])] = text.replace(proto.summary_close, "").strip()
        for (
            p
        ) in live:  # peers: the next top_k paths of the same problem (routing is not timed here)
            peers = [(p[0], (p[1] + k) % leap_args.n) for k in range(1, leap_args.top_k + 1)]
            p[2] += proto.peer_block([summaries[q] for q in peers if q in summaries])
            p[2] += proto.reflection_cue
            p[4] = p[3] >= leap_args.max_tokens
    return sum(p[3] for p in paths)


def run_limit(backend, leap_args: LeapArguments, problems, tokens: int) -> int:
    """(d): one plain batched call over the P x N prompts, as many tokens in total as (a)."""
    from inference.protocol import load_protocol

    proto = load_protocol(leap_args.protocol)
    tok = backend.tokenizer
    rows = [
        tok.encode(
            proto.build_prompt(tok, p.problem, p.options, leap_args.task), add_special_tokens=False
        )
        for p in problems
        for _ in range(leap_args.n)
    ]
    cap = max(1, round(tokens / len(rows)))
    sampling = SamplingSettings(
        leap_args.temperature, leap_args.top_p, leap_args.sampling_top_k, leap_args.min_p
    )
    requests = [GenerationRequest(ids, cap, [], seed) for seed, ids in enumerate(rows)]
    return sum(len(r.token_ids) for r in backend.generate(requests, sampling))


@dataclass
class PeerLoopArguments:
    """The workload measured: backend, model, problems x paths and the LeaP budget."""

    backend: str = field(default="hf", metadata={"choices": ("hf", "vllm")})
    model: str | None = field(
        default=None, metadata={"help": "model folder, 'tiny', or the embedded default"}
    )
    num_problems: int = field(default=8, metadata={"help": "synthetic problems to run"})
    n: int = 4
    T: int = 64
    max_tokens: int = 256
    summary_max_tokens: int = 48
    hf_batch_size: int = 32
    max_model_len: int = 2048
    seed: int = 0
    serial: bool = field(default=False, metadata={"help": "also (a) one problem at a time"})
    json: bool = field(default=False, metadata={"help": "end with one JSON line"})


def load(args: PeerLoopArguments, model_dir: str):
    from inference.backends import load_backend

    model_args = ModelArguments(
        model=model_dir,
        backend=args.backend,
        hf_batch_size=args.hf_batch_size,
        max_model_len=args.max_model_len,
    )
    return load_backend(model_args)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    (args,) = parse_config(
        (PeerLoopArguments,), argv, "benchmarks/peer_loop.py", __doc__.split("\n\n")[0]
    )

    from inference.args import EMBEDDED_MODEL
    from inference.problems import synthetic_problems

    with tempfile.TemporaryDirectory() as tmp:
        model_dir = args.model or EMBEDDED_MODEL
        if model_dir == "tiny":
            from tests.tiny_model import build_tiny_model

            model_dir = str(build_tiny_model(Path(tmp) / "tiny"))
        leap_args = LeapArguments(
            n=args.n,
            T=args.T,
            top_k=2,
            max_tokens=args.max_tokens,
            summary_max_tokens=args.summary_max_tokens,
            forced_answer_tokens=16,
            seed=args.seed,
        )
        problems = synthetic_problems(args.num_problems, seed=args.seed)
        print(
            f"{args.backend} backend, {model_dir}, {args.num_problems} problems x {args.n} paths, "
            f"T={args.T}, max_tokens={args.max_tokens}, summary_max_tokens={args.summary_max_tokens}",
            flush=True,
        )
        start = time.perf_counter()
        backend = load(args, model_dir)
        load_seconds = round(time.perf_counter() - start, 1)
        print(f"  backend loaded in {load_seconds} s", flush=True)
        try:
            # warm-up: imports, answer extraction, first-call setup of the backend
            run_leap(backend, leap_args, problems[:1], Path(tmp) / "warm-up", None)
            traces: list = []

            def leap(concurrent: int | None = None) -> int:
                traces[:] = run_leap(
                    backend, leap_args, problems, Path(tmp) / f"a{concurrent}", concurrent
                )
                return sum(p.generated_tokens for t in traces for p in t.paths)

            rows = {"leap": measure("(a) leap", leap)}
            budgets = {t.id: [p.generated_tokens for p in t.paths] for t in traces}
            summary_tokens = sum(p.summary_tokens for t in traces for p in t.paths)
            rows["independent"] = measure(
                "(b) independent, same tokens",
                lambda: run_matched_independent(backend, leap_args, problems, budgets),
            )
            rows["naive"] = measure(
                "(c) reference pattern", lambda: run_naive(backend, leap_args, problems)
            )
            total = rows["leap"]["tokens"]
            rows["limit"] = measure(
                "(d) limit: one batched call",
                lambda: run_limit(backend, leap_args, problems, total),
            )
            if args.serial:
                rows["serial"] = measure("(a) one problem at a time", lambda: leap(1))
        finally:
            backend.close()

    def per_token(key: str) -> float:
        return rows[key]["seconds"] / max(1, rows[key]["tokens"])

    result = {
        "backend": args.backend,
        "model": args.model or EMBEDDED_MODEL,
        "num_problems": args.num_problems,
        "n": args.n,
        "T": args.T,
        "max_tokens": args.max_tokens,
        "load_seconds": load_seconds,
        "leap_summary_tokens": summary_tokens,
        "leap_over_independent": round(per_token("leap") / per_token("independent"), 2),
        "naive_over_leap": round(per_token("naive") / per_token("leap"), 2),
        "limit_over_leap": round(
            rows["limit"]["tokens_per_s"] / max(1e-9, rows["leap"]["tokens_per_s"]), 2
        ),
        **(
            {"serial_over_leap": round(per_token("serial") / per_token("leap"), 2)}
            if args.serial
            else {}
        ),
        "runs": list(rows.values()),
    }
    print(
        f"leap/independent {result['leap_over_independent']}x, "
        f"naive/leap {result['naive_over_leap']}x, limit/leap {result['limit_over_leap']}x "
        f"(seconds per generated token; leap spent {summary_tokens} of its "
        f"{rows['leap']['tokens']} tokens on summaries)"
    )
    if args.json:
        print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
